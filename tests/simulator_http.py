"""Raw HTTPS to the tenant simulator, for the tests that look at its wire behaviour rather than
through GraphClient: its TLS trust, a client-credentials token, and a client holding one."""

from __future__ import annotations

import ssl

import httpx

from testbed.simulator import TenantSimulator

# The bundled Contoso scenario's tenant.
CONTOSO = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"


def tls(sim: TenantSimulator) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(sim.ca_bundle))


def token_response(sim: TenantSimulator, tenant: str, **form: str) -> httpx.Response:
    data = {
        "grant_type": "client_credentials",
        "client_id": sim.client_id,
        "client_secret": sim.client_secret,
        "scope": f"{sim.base_url}/.default",
        **form,
    }
    return httpx.post(f"{sim.base_url}/{tenant}/oauth2/v2.0/token", data=data, verify=tls(sim))


def client(sim: TenantSimulator, tenant: str = CONTOSO) -> httpx.Client:
    token = token_response(sim, tenant).json()["access_token"]
    return httpx.Client(base_url=sim.base_url, verify=tls(sim), headers={"Authorization": f"Bearer {token}"})

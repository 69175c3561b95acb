"""The credentials PartnerGuard signs in with: the app to Graph, the managed identity to storage.

Every credential is built explicitly (SPEC §5): never `DefaultAzureCredential`, which reads
`AZURE_CLIENT_ID` as a managed identity and would collide with the app's client id.

The app signs in to each monitored tenant with, in this order of precedence:
1. `AZURE_CLIENT_CERTIFICATE_PATH` -> CertificateCredential (local use);
2. `AZURE_CLIENT_SECRET` -> ClientSecretCredential (local use);
3. `AZURE_FEDERATED_TOKEN_FILE` -> ClientAssertionCredential whose assertion is the file's JWT,
   issued by an external identity provider the app trusts through a federated identity
   credential (CI: GitHub Actions' OIDC token; docs/examples/github-code-scanning.yml). The
   settings allow only one of 1-3 (and not 3 with a dedicated Graph identity);
4. `PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID` (or, when unset, `PARTNERGUARD_IDENTITY_CLIENT_ID`) ->
   ClientAssertionCredential whose assertion is a token of that user-assigned managed identity for
   the cloud's federated-credential audience (in Azure: the managed identity is a federated
   credential of the multi-tenant app, so no secret exists).

In Azure the Graph identity is a managed identity of its own that holds no Azure role and serves
only as the app's federated credential; the service identity (`PARTNERGUARD_IDENTITY_CLIENT_ID`)
signs in to storage, queues, tables, ACS and Application Insights (`service_identity`) and never
to Graph. So a token of the service identity opens PartnerGuard's own data and no customer
tenant (docs/deploy.md, "Who can read every customer tenant").

These are the *synchronous* azure-identity credentials, on purpose: the async ones
(`azure.identity.aio`) need aiohttp, which the deployed app does not otherwise ship, and must
each be closed. `GraphClient` runs `get_token` in a worker thread, so a slow token endpoint never
stalls the event loop, and MSAL's in-memory cache answers every call but one an hour per tenant.

The managed identity behind the federated assertion is built once per process (per client id)
and shared by every tenant's credential: its token is the same for all of them, and one
instance means one HTTP session and one token cache, however many clients come and go. The
app's own token stays per tenant (one ClientAssertionCredential each).
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import certifi
from azure.core.credentials import TokenCredential
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import (
    CertificateCredential,
    ClientAssertionCredential,
    ClientSecretCredential,
    ManagedIdentityCredential,
)

from partnerguard.logs import register_secret
from partnerguard.settings import ConfigError, Settings

_CA_LOCK = threading.Lock()
# This process's private directory for combined CA files (created on first use, mode 0700) and
# the files written there, by content digest.
_ca_directory: Path | None = None
_CA_FILES: dict[str, Path] = {}


def _private_ca_directory() -> Path:
    """A directory only this process's user can enter, created by this process (never a
    predictable shared path another local user could have planted a file in); removed at exit."""
    global _ca_directory
    if _ca_directory is None:
        directory = Path(tempfile.mkdtemp(prefix="partnerguard-ca-"))  # mkdtemp: mode 0700
        atexit.register(shutil.rmtree, directory, ignore_errors=True)
        _ca_directory = directory
    return _ca_directory


def combined_ca_file(ca_bundle: Path | None) -> str | None:
    """A PEM file with certifi's public roots and `ca_bundle`'s CAs, or None without extra CAs.

    `PARTNERGUARD_CA_BUNDLE` adds CAs, it never replaces the public roots; azure-identity sends
    through `requests`, which takes only a file path, so we write the union into this process's
    private directory (`_private_ca_directory`), once per content: every credential of the
    process shares it, and a changed bundle gets a new file. A file is only ever trusted because
    this process wrote it, never because it exists.
    """
    if ca_bundle is None:
        return None
    public_roots = Path(certifi.where()).read_bytes()
    combined = public_roots.rstrip(b"\n") + b"\n" + ca_bundle.read_bytes()
    digest = hashlib.sha256(combined).hexdigest()[:32]
    with _CA_LOCK:
        target = _CA_FILES.get(digest)
        if target is None:
            directory = _private_ca_directory()
            # mkstemp creates the file 0600 and exclusively; written whole, then given its name.
            handle, partial = tempfile.mkstemp(dir=directory, prefix="partial-", suffix=".pem")
            with os.fdopen(handle, "wb") as file:
                file.write(combined)
            target = directory / f"ca-{digest}.pem"
            Path(partial).replace(target)
            _CA_FILES[digest] = target
    return str(target)


def _transport_options(settings: Settings) -> dict[str, Any]:
    options: dict[str, Any] = {}
    ca_file = combined_ca_file(settings.ca_bundle)
    if ca_file is not None:
        options["connection_verify"] = ca_file
    return options


def _authority_options(settings: Settings) -> dict[str, Any]:
    return {
        "authority": settings.authority_host,
        # Instance discovery asks login.microsoftonline.com to vouch for the authority; it only
        # knows Microsoft's own hosts (see partnerguard.clouds).
        "disable_instance_discovery": not settings.instance_discovery,
        **_transport_options(settings),
    }


def build_graph_credential(settings: Settings, tenant_id: str) -> TokenCredential:
    """The app's credential for Graph in `tenant_id` (the partner tenant or a customer's)."""
    settings.require_graph()
    client_id = settings.client_id
    assert client_id is not None  # require_graph() guarantees it; this narrows the type
    options = _authority_options(settings)
    if settings.client_certificate_path is not None:
        return CertificateCredential(
            tenant_id,
            client_id,
            certificate_path=str(settings.client_certificate_path),
            password=settings.client_certificate_password,
            **options,
        )
    if settings.client_secret is not None:
        return ClientSecretCredential(tenant_id, client_id, settings.client_secret, **options)
    if settings.federated_token_file is not None:
        return ClientAssertionCredential(
            tenant_id, client_id, federated_token_reader(settings.federated_token_file), **options
        )
    assertion_identity = settings.graph_assertion_identity
    if assertion_identity is not None:
        identity = _shared_managed_identity(assertion_identity, _transport_options(settings))
        assertion_scope = f"{settings.cloud.assertion_audience}/.default"

        def managed_identity_assertion() -> str:
            # Called by MSAL only when it has no valid app token for this tenant; the managed
            # identity credential caches its own token, so this is rarely a network call.
            token: str = identity.get_token(assertion_scope).token
            return token

        return ClientAssertionCredential(tenant_id, client_id, managed_identity_assertion, **options)
    raise ConfigError("AZURE_CLIENT_SECRET", "no credential configured")  # unreachable after require_graph()


def federated_token_reader(path: Path) -> Callable[[], str]:
    """The assertion callback for AZURE_FEDERATED_TOKEN_FILE: the file's token, read afresh at
    every call.

    azure-identity calls it whenever the app needs a new token for a tenant (the first call per
    tenant, then about hourly), so a token refreshed in the file is used from the next sign-in
    on: GitHub's OIDC tokens live minutes and a `scan --all` may outlive one; Kubernetes rotates
    its projected tokens the same way. Nothing is cached here, and the token is registered with
    the log redaction so no log line can carry it. A missing or empty file is a sign-in failure
    naming the setting (the scan reports it per tenant), never the file's content.
    """

    def read_token() -> str:
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else type(error).__name__
            raise ClientAuthenticationError(
                message=f"AZURE_FEDERATED_TOKEN_FILE: cannot read the federated token file {path}: {reason}"
            ) from None
        if not token:
            raise ClientAuthenticationError(
                message=f"AZURE_FEDERATED_TOKEN_FILE: the federated token file {path} is empty"
            )
        register_secret(token)
        return token

    return read_token


def service_identity(settings: Settings) -> ManagedIdentityCredential:
    """The user-assigned managed identity (PARTNERGUARD_IDENTITY_CLIENT_ID) for Azure services
    other than Graph (Communication Services): the same process-wide credential. Never the Graph
    identity, which holds no Azure role."""
    if settings.identity_client_id is None:
        raise ConfigError("PARTNERGUARD_IDENTITY_CLIENT_ID", "not set; the managed identity is needed here")
    return _shared_managed_identity(settings.identity_client_id, _transport_options(settings))


_MANAGED_IDENTITIES_LOCK = threading.Lock()
# One ManagedIdentityCredential per (client id, CA file) for the life of the process; never closed
# by a GraphClient (the ClientAssertionCredential it closes only calls into it).
_MANAGED_IDENTITIES: dict[tuple[str, str | None], ManagedIdentityCredential] = {}


def _shared_managed_identity(client_id: str, transport_options: dict[str, Any]) -> ManagedIdentityCredential:
    key = (client_id, transport_options.get("connection_verify"))
    with _MANAGED_IDENTITIES_LOCK:
        identity = _MANAGED_IDENTITIES.get(key)
        if identity is None:
            identity = ManagedIdentityCredential(client_id=client_id, **transport_options)
            _MANAGED_IDENTITIES[key] = identity
        return identity

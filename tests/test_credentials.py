"""Which credential PartnerGuard builds from which settings (sign-in itself: test_graph_client).

The managed-identity tests drive the real azure-identity classes against the tenant simulator's
App Service managed-identity endpoint (testbed/simulator), which knows exactly one identity: a
sign-in only succeeds when the credential asks for that identity's token.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs

import certifi
import pytest
import trustme
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import (
    CertificateCredential,
    ClientAssertionCredential,
    ClientSecretCredential,
    ManagedIdentityCredential,
)

import partnerguard.credentials as credentials_module
from partnerguard.credentials import build_graph_credential, combined_ca_file, service_identity
from partnerguard.graph.tls import ssl_context
from partnerguard.settings import ConfigError, Settings
from partnerguard.storage.identity import storage_identity
from testbed.simulator import TenantSimulator, generate_tenant

PARTNER = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
CLIENT_ID = "11111111-2222-4333-8444-555555555555"
IDENTITY_ID = "99999999-8888-4777-8666-555555555555"


@pytest.fixture
def certificate(tmp_path: Path) -> Path:
    ca = trustme.CA(key_type=trustme.KeyType.RSA)
    cert = ca.issue_cert("partnerguard-app", key_type=trustme.KeyType.RSA)
    path = tmp_path / "app.pem"
    cert.private_key_and_cert_chain_pem.write_to_path(str(path))
    return path


def settings_from(**env: str) -> Settings:
    return Settings.from_env({"AZURE_TENANT_ID": PARTNER, "AZURE_CLIENT_ID": CLIENT_ID, **env})


def test_certificate_wins_over_managed_identity(certificate: Path) -> None:
    settings = settings_from(
        AZURE_CLIENT_CERTIFICATE_PATH=str(certificate), PARTNERGUARD_IDENTITY_CLIENT_ID=IDENTITY_ID
    )
    assert isinstance(build_graph_credential(settings, PARTNER), CertificateCredential)


def test_secret_wins_over_managed_identity() -> None:
    settings = settings_from(AZURE_CLIENT_SECRET="s3cret", PARTNERGUARD_IDENTITY_CLIENT_ID=IDENTITY_ID)
    assert isinstance(build_graph_credential(settings, PARTNER), ClientSecretCredential)


def test_managed_identity_becomes_a_client_assertion() -> None:
    settings = settings_from(PARTNERGUARD_IDENTITY_CLIENT_ID=IDENTITY_ID)
    assert isinstance(build_graph_credential(settings, PARTNER), ClientAssertionCredential)


def test_no_credential_is_a_configuration_error() -> None:
    with pytest.raises(ConfigError, match="AZURE_CLIENT_SECRET"):
        build_graph_credential(settings_from(), PARTNER)


def test_never_default_azure_credential() -> None:
    source = Path(credentials_module.__file__).read_text()
    assert "DefaultAzureCredential(" not in source


def test_storage_identity_is_one_credential_per_identity() -> None:
    settings = Settings.from_env(
        {
            "PARTNERGUARD_STORAGE__tableServiceUri": "https://acct.table.core.windows.net",
            "PARTNERGUARD_STORAGE__queueServiceUri": "https://acct.queue.core.windows.net",
            "PARTNERGUARD_STORAGE__clientId": IDENTITY_ID,
        }
    )
    identity = storage_identity(settings.storage)
    assert isinstance(identity, ManagedIdentityCredential)
    # Tables and queues, every client of the process: the same credential, one session, one cache.
    assert storage_identity(settings.storage) is identity


def test_extra_ca_bundle_adds_to_the_public_roots(tmp_path: Path) -> None:
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    combined = combined_ca_file(bundle)
    assert combined is not None
    text = Path(combined).read_bytes()
    assert ca.cert_pem.bytes() in text
    assert Path(certifi.where()).read_bytes().strip() in text
    assert combined_ca_file(bundle) == combined  # same content, same file
    assert combined_ca_file(None) is None
    context = ssl_context(bundle)
    public_only = ssl_context(None)
    assert len(context.get_ca_certs()) == len(public_only.get_ca_certs()) + 1


def test_combined_ca_file_lives_in_a_private_directory_of_this_process(tmp_path: Path) -> None:
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    combined = Path(combined_ca_file(bundle) or "")
    directory = combined.parent
    assert directory != Path(tempfile.gettempdir())  # never a shared, predictable path
    assert directory.stat().st_uid == os.getuid()
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert combined.stat().st_uid == os.getuid()
    assert stat.S_IMODE(combined.stat().st_mode) == 0o600
    # Another bundle, another file - in the same directory: one directory per process.
    other = tmp_path / "other.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    assert Path(combined_ca_file(other) or "").parent == directory


def test_a_planted_combined_ca_file_is_never_trusted(tmp_path: Path) -> None:
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    expected = Path(certifi.where()).read_bytes().rstrip(b"\n") + b"\n" + ca.cert_pem.bytes()
    digest = hashlib.sha256(expected).hexdigest()[:32]
    # Where the file used to go: any local user could create it first.
    planted = Path(tempfile.gettempdir()) / f"partnerguard-ca-{digest}.pem"
    attacker = trustme.CA()
    if not planted.exists():
        planted.write_bytes(attacker.cert_pem.bytes())
    try:
        combined = combined_ca_file(bundle)
        assert combined is not None and Path(combined) != planted
        assert Path(combined).read_bytes() == expected
        assert attacker.cert_pem.bytes() not in Path(combined).read_bytes()
    finally:
        planted.unlink(missing_ok=True)


class CountingManagedIdentity:
    built: ClassVar[list[CountingManagedIdentity]] = []

    def __init__(self, client_id: str, **options: object) -> None:
        self.client_id = client_id
        self.scopes: list[str] = []
        CountingManagedIdentity.built.append(self)

    def get_token(self, scope: str) -> AccessToken:
        self.scopes.append(scope)
        return AccessToken(f"mi-token-for-{self.client_id}", 2_000_000_000)


class RecordingAssertionCredential:
    def __init__(self, tenant_id: str, client_id: str, func: Callable[[], str], **options: object) -> None:
        self.tenant_id = tenant_id
        self.func = func


def test_the_managed_identity_is_built_once_per_process_and_tokens_stay_per_tenant(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    CountingManagedIdentity.built = []
    monkeypatch.setattr(credentials_module, "_MANAGED_IDENTITIES", {})
    monkeypatch.setattr(credentials_module, "ManagedIdentityCredential", CountingManagedIdentity)
    monkeypatch.setattr(credentials_module, "ClientAssertionCredential", RecordingAssertionCredential)
    settings = settings_from(PARTNERGUARD_IDENTITY_CLIENT_ID=IDENTITY_ID)
    customer = "0b0b0b0b-1111-4222-8333-444444444444"
    credentials = [build_graph_credential(settings, tenant) for tenant in (PARTNER, customer, PARTNER)]
    assert [c.tenant_id for c in credentials] == [PARTNER, customer, PARTNER]  # type: ignore[attr-defined]
    assert len({id(c) for c in credentials}) == 3  # the app's token: one credential per tenant
    assertions = [c.func() for c in credentials]  # type: ignore[attr-defined]
    assert len(CountingManagedIdentity.built) == 1  # ...one managed identity behind them all
    assert assertions == [f"mi-token-for-{IDENTITY_ID}"] * 3
    # Another identity client id gets its own.
    other = settings_from(PARTNERGUARD_IDENTITY_CLIENT_ID="88888888-8888-4777-8666-555555555555")
    build_graph_credential(other, PARTNER).func()  # type: ignore[attr-defined]
    assert len(CountingManagedIdentity.built) == 2


# -- the Graph identity and the service identity, against the simulator ------------------------

# An identity the simulator's managed-identity endpoint does not know: asking for its token fails.
UNKNOWN_IDENTITY = "77777777-6666-4555-8444-333333333333"


@pytest.fixture(scope="module")
def sim() -> Iterator[TenantSimulator]:
    with TenantSimulator([generate_tenant(PARTNER, 10, seed=21, role="partner")]) as simulator:
        yield simulator


@pytest.fixture
def on_app_service(sim: TenantSimulator, monkeypatch: pytest.MonkeyPatch) -> TenantSimulator:
    """The process as App Service runs it: IDENTITY_ENDPOINT/IDENTITY_HEADER point at the
    simulator, and no managed identity is left over from another test."""
    for name, value in sim.managed_identity_environment().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(credentials_module, "_MANAGED_IDENTITIES", {})
    sim.clear_requests()
    return sim


def app_settings(sim: TenantSimulator, **identities: str) -> Settings:
    environment = sim.environment()
    del environment["AZURE_CLIENT_SECRET"]
    return Settings.from_env({**environment, **identities})


def identities_asked_for(sim: TenantSimulator) -> list[str]:
    """The client_id of every managed-identity token request the simulator answered."""
    return [parse_qs(r.query)["client_id"][0] for r in sim.requests if r.path == "/msi/token"]


@pytest.mark.simulator
def test_the_graph_identity_is_the_apps_federated_credential_not_the_service_identity(
    on_app_service: TenantSimulator,
) -> None:
    sim = on_app_service
    settings = app_settings(
        sim,
        PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID=sim.managed_identity_client_id,
        PARTNERGUARD_IDENTITY_CLIENT_ID=UNKNOWN_IDENTITY,
    )
    token = build_graph_credential(settings, PARTNER).get_token(settings.graph_scope)
    assert token.token
    assert identities_asked_for(sim) == [sim.managed_identity_client_id]
    exchanges = [r for r in sim.requests if r.path.endswith("/oauth2/v2.0/token")]
    assert exchanges and all(r.status == 200 for r in exchanges)


@pytest.mark.simulator
def test_with_a_graph_identity_set_the_service_identity_is_never_the_assertion(
    on_app_service: TenantSimulator,
) -> None:
    sim = on_app_service
    # The service identity is the one the simulator knows; the Graph identity is not. A fallback
    # to the service identity would sign in here, and must not.
    settings = app_settings(
        sim,
        PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID=UNKNOWN_IDENTITY,
        PARTNERGUARD_IDENTITY_CLIENT_ID=sim.managed_identity_client_id,
    )
    with pytest.raises(ClientAuthenticationError):
        build_graph_credential(settings, PARTNER).get_token(settings.graph_scope)
    assert set(identities_asked_for(sim)) == {UNKNOWN_IDENTITY}


@pytest.mark.simulator
def test_without_a_graph_identity_the_service_identity_is_the_fallback(on_app_service: TenantSimulator) -> None:
    sim = on_app_service
    settings = app_settings(sim, PARTNERGUARD_IDENTITY_CLIENT_ID=sim.managed_identity_client_id)
    assert build_graph_credential(settings, PARTNER).get_token(settings.graph_scope).token
    assert identities_asked_for(sim) == [sim.managed_identity_client_id]


@pytest.mark.simulator
def test_azure_services_use_the_service_identity_never_the_graph_identity(on_app_service: TenantSimulator) -> None:
    sim = on_app_service
    settings = app_settings(
        sim,
        PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID=UNKNOWN_IDENTITY,
        PARTNERGUARD_IDENTITY_CLIENT_ID=sim.managed_identity_client_id,
    )
    # The simulator's identity issues tokens for the token-exchange audience only.
    assert service_identity(settings).get_token(f"{settings.cloud.assertion_audience}/.default").token
    assert identities_asked_for(sim) == [sim.managed_identity_client_id]

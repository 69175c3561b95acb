"""AZURE_FEDERATED_TOKEN_FILE: the app signs in with a JWT from an external identity provider (a
fake GitHub Actions here) that it trusts through a federated identity credential, as the
code-scanning workflow of docs/examples/ does with GitHub's OIDC token.

Real parts only: azure-identity's ClientAssertionCredential against the tenant simulator's token
endpoint over HTTPS, which checks the assertion as Entra does (issuer, subject and audience of a
registered federated credential, the issuer's signature, the lifetime), the command line in
process, Azurite. The simulator keeps every external assertion it judged
(`sim.federated_assertions`: a fingerprint per token), which is how these tests see which token
a sign-in used.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientAssertionCredential
from cryptography.hazmat.primitives.asymmetric import rsa

from partnerguard.credentials import build_graph_credential
from partnerguard.settings import ConfigError, Settings
from testbed.simulator import (
    TOKEN_EXCHANGE_AUDIENCE,
    FederatedIdentityCredential,
    TenantSimulator,
    bundled_scenarios,
    generate_tenant,
)
from tests.cli_harness import run_cli
from tests.graph_sim import fast_simulator, pace_to

pytestmark = [pytest.mark.azurite, pytest.mark.simulator]

PARTNER = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
FABRIKAM = "c0ffee00-1b2c-4d3e-8f90-a1b2c3d4e5f6"
GITHUB = "https://token.actions.githubusercontent.com"
SUBJECT = "repo:contoso/partnerguard-ci:ref:refs/heads/main"
# The settings that may carry another app credential: none of them is set in these tests.
OTHER_CREDENTIALS = (
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "PARTNERGUARD_IDENTITY_CLIENT_ID",
    "PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID",
)


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def github_key() -> rsa.RSAPrivateKey:
    """The fake GitHub's signing key; the simulator is told its public half, as Entra reads it
    from the issuer's published keys."""
    return new_key()


@pytest.fixture(scope="module")
def simulator(github_key: rsa.RSAPrivateKey) -> Iterator[TenantSimulator]:
    """The bundled tenants; the app trusts the fake GitHub's tokens for SUBJECT."""
    with fast_simulator(bundled_scenarios()) as sim:
        sim.add_federated_credential(FederatedIdentityCredential(GITHUB, SUBJECT, github_key.public_key()))
        yield sim


def github_token(
    key: rsa.RSAPrivateKey,
    *,
    subject: str = SUBJECT,
    audience: str = TOKEN_EXCHANGE_AUDIENCE,
    issuer: str = GITHUB,
    issued_at: float | None = None,
    lifetime_s: int = 300,
) -> str:
    """A token as GitHub Actions' OIDC provider issues it (RS256, `kid`, short-lived)."""
    now = int(time.time() if issued_at is None else issued_at)
    claims = {
        "iss": issuer,
        "sub": subject,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime_s,
        "jti": hashlib.sha256(str(time.perf_counter_ns()).encode()).hexdigest()[:16],
        "repository": "contoso/partnerguard-ci",
        "ref": "refs/heads/main",
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "github-test-key"})


def fingerprint(token: str) -> str:
    """What the simulator records of a token (entra_id.FederatedAssertion.fingerprint)."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def write_token(path: Path, token: str) -> None:
    """As the workflow writes it: mode 600, replaced whole (never a half-written file)."""
    partial = path.with_suffix(".partial")
    partial.write_text(token + "\n", encoding="utf-8")
    partial.chmod(0o600)
    partial.replace(path)


@pytest.fixture
def token_file(tmp_path: Path, github_key: rsa.RSAPrivateKey) -> Path:
    path = tmp_path / "github-oidc.jwt"
    write_token(path, github_token(github_key))
    return path


@pytest.fixture
def oidc_env(
    simulator: TenantSimulator, cli_storage: str, token_file: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The process's environment with the token file as the only app credential (beside where
    the simulated Graph and sign-in live, which tenants to scan, and the job's storage)."""
    sim_env = simulator.environment()
    env = {
        "AZURE_TENANT_ID": simulator.home_tenant_id,
        "AZURE_CLIENT_ID": simulator.client_id,
        "AZURE_FEDERATED_TOKEN_FILE": str(token_file),
        "GRAPH_ENDPOINT": sim_env["GRAPH_ENDPOINT"],
        "AZURE_AUTHORITY_HOST": sim_env["AZURE_AUTHORITY_HOST"],
        "PARTNERGUARD_CA_BUNDLE": sim_env["PARTNERGUARD_CA_BUNDLE"],
        "PARTNERGUARD_TENANTS": sim_env["PARTNERGUARD_TENANTS"],
        "PARTNERGUARD_STORAGE": cli_storage,
    }
    for name in OTHER_CREDENTIALS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    pace_to(simulator, monkeypatch)
    simulator.clear_requests()
    return env


@pytest.fixture
def raw_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record of PartnerGuard and the SDKs, unredacted, at the levels the command line
    lets through. The command line replaces the root logger's handlers (caplog's included), so
    caplog's handler sits on these loggers instead; the records it sees are raw, before the
    redacting formatter: a token in them would be a token someone tried to log."""
    loggers = [logging.getLogger(name) for name in ("partnerguard", "checks", "azure", "msal", "httpx", "urllib3")]
    for logger in loggers:
        logger.addHandler(caplog.handler)
    yield caplog
    for logger in loggers:
        logger.removeHandler(caplog.handler)


# -- sign-in with the real credential -----------------------------------------------------------


def test_the_token_file_signs_the_app_in_over_https(
    oidc_env: dict[str, str], simulator: TenantSimulator, token_file: Path
) -> None:
    settings = Settings.from_env(oidc_env)
    credential = build_graph_credential(settings, PARTNER)
    assert isinstance(credential, ClientAssertionCredential)
    before = len(simulator.federated_assertions)
    assert credential.get_token(settings.graph_scope).token
    (judged,) = simulator.federated_assertions[before:]
    assert (judged.tenant_id, judged.issuer, judged.subject, judged.refused_with) == (PARTNER, GITHUB, SUBJECT, None)
    assert judged.fingerprint == fingerprint(token_file.read_text(encoding="utf-8").strip())
    exchanges = [r for r in simulator.requests if r.path.endswith("/oauth2/v2.0/token")]
    assert [r.status for r in exchanges] == [200]


def test_the_token_file_is_read_again_at_every_sign_in(
    oidc_env: dict[str, str], simulator: TenantSimulator, token_file: Path, github_key: rsa.RSAPrivateKey
) -> None:
    """GitHub's tokens live minutes and a `scan --all` may outlive one: the workflow refreshes the
    file, and the next tenant's sign-in must present the new token, not one read at start."""
    settings = Settings.from_env(oidc_env)
    first = token_file.read_text(encoding="utf-8").strip()
    before = len(simulator.federated_assertions)
    assert build_graph_credential(settings, PARTNER).get_token(settings.graph_scope).token
    second = github_token(github_key)
    assert second != first
    write_token(token_file, second)
    assert build_graph_credential(settings, FABRIKAM).get_token(settings.graph_scope).token
    judged = simulator.federated_assertions[before:]
    assert [(j.tenant_id, j.fingerprint, j.refused_with) for j in judged] == [
        (PARTNER, fingerprint(first), None),
        (FABRIKAM, fingerprint(second), None),
    ]


def test_one_credential_presents_the_refreshed_token_at_its_next_sign_in(
    tmp_path: Path, github_key: rsa.RSAPrivateKey
) -> None:
    """The same credential signing in again (a tenant's token renewed, hourly in a long-running
    process) reads the file again too: no copy of the token is kept between sign-ins. The
    simulator issues access tokens that are already due, so each get_token signs in afresh."""
    path = tmp_path / "oidc.jwt"
    first, second = github_token(github_key), github_token(github_key)
    write_token(path, first)
    tenant = generate_tenant(PARTNER, 5, seed=3, role="partner")
    with TenantSimulator([tenant], token_lifetime_s=0, enforce_limits=False) as sim:
        sim.add_federated_credential(FederatedIdentityCredential(GITHUB, SUBJECT, github_key.public_key()))
        sim_env = sim.environment()
        settings = Settings.from_env(
            {
                **{
                    name: sim_env[name] for name in ("GRAPH_ENDPOINT", "AZURE_AUTHORITY_HOST", "PARTNERGUARD_CA_BUNDLE")
                },
                "AZURE_TENANT_ID": PARTNER,
                "AZURE_CLIENT_ID": sim.client_id,
                "AZURE_FEDERATED_TOKEN_FILE": str(path),
            }
        )
        credential = build_graph_credential(settings, PARTNER)
        assert credential.get_token(settings.graph_scope).token
        write_token(path, second)
        assert credential.get_token(settings.graph_scope).token
        assert [(j.fingerprint, j.refused_with) for j in sim.federated_assertions] == [
            (fingerprint(first), None),
            (fingerprint(second), None),
        ]


def test_a_code_scanning_run_needs_only_the_token_file(
    oidc_env: dict[str, str],
    simulator: TenantSimulator,
    token_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    raw_logs: pytest.LogCaptureFixture,
) -> None:
    """The workflow's command, with the token file as the only credential: every tenant signs in
    with it and the SARIF is written."""
    sarif = tmp_path / "partnerguard.sarif"
    code, out, err = run_cli(capsys, "scan", "--all", "--format", "sarif", "--output", str(sarif), "--no-alerts")
    assert code in (0, 1), err  # 1: findings; never a failed run or a configuration error
    assert sarif.is_file()
    tenants = set(oidc_env["PARTNERGUARD_TENANTS"].split(","))
    judged = [j for j in simulator.federated_assertions if j.fingerprint == fingerprint(token_file.read_text().strip())]
    consented = {t.tenant_id for t in simulator.tenants if t.consented}
    assert {j.tenant_id for j in judged} == consented & tenants
    assert all(j.refused_with is None for j in judged)
    token = token_file.read_text(encoding="utf-8").strip()
    for text in (out, err, raw_logs.text, sarif.read_text(encoding="utf-8")):
        assert token not in text and token.split(".")[2] not in text


# -- refusals: what Entra refuses, the command line says clearly, never with the token ---------


def wrong_subject(key: rsa.RSAPrivateKey) -> str:
    return github_token(key, subject="repo:contoso/partnerguard-ci:pull_request")


def wrong_audience(key: rsa.RSAPrivateKey) -> str:
    return github_token(key, audience="https://github.com/contoso")  # GitHub's default audience


def wrong_issuer(key: rsa.RSAPrivateKey) -> str:
    return github_token(key, issuer="https://token.actions.example.com")


def bad_signature(key: rsa.RSAPrivateKey) -> str:
    return github_token(new_key())  # GitHub's claims, another key


def expired(key: rsa.RSAPrivateKey) -> str:
    return github_token(key, issued_at=time.time() - 900, lifetime_s=300)


@pytest.mark.parametrize(
    ("make_token", "aadsts"),
    [
        (wrong_subject, "AADSTS70021"),
        (wrong_audience, "AADSTS70021"),
        (wrong_issuer, "AADSTS70021"),
        (bad_signature, "AADSTS700027"),
        (expired, "AADSTS700024"),
    ],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_a_refused_token_is_a_clear_failure_without_the_token(
    make_token: object,
    aadsts: str,
    oidc_env: dict[str, str],
    simulator: TenantSimulator,
    token_file: Path,
    github_key: rsa.RSAPrivateKey,
    capsys: pytest.CaptureFixture[str],
    raw_logs: pytest.LogCaptureFixture,
) -> None:
    assert callable(make_token)
    token = make_token(github_key)
    write_token(token_file, token)
    before = len(simulator.federated_assertions)
    code, out, err = run_cli(capsys, "-v", "scan", "--tenant", PARTNER, "--format", "json", "--no-alerts")
    assert code == 3, (out, err)  # the run failed: never "no findings", never "findings"
    assert aadsts in out + err
    refusals = {j.refused_with for j in simulator.federated_assertions[before:]}
    assert refusals == {int(aadsts.removeprefix("AADSTS"))}
    assert any(aadsts in record.getMessage() for record in raw_logs.records)  # the logs were seen
    signature = token.split(".")[2]
    for text in (out, err, raw_logs.text):
        assert token not in text and signature not in text


def test_a_token_file_gone_at_sign_in_names_the_setting(
    oidc_env: dict[str, str], token_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file existed when the settings were read (they check it) and is gone when a tenant
    signs in: a failure naming the setting, not a crash."""
    settings = Settings.from_env(oidc_env)
    credential = build_graph_credential(settings, PARTNER)
    token_file.unlink()
    with pytest.raises(ClientAuthenticationError, match="AZURE_FEDERATED_TOKEN_FILE"):
        credential.get_token(settings.graph_scope)
    token_file.write_text("\n", encoding="utf-8")
    with pytest.raises(ClientAuthenticationError, match=r"AZURE_FEDERATED_TOKEN_FILE: .* is empty"):
        credential.get_token(settings.graph_scope)


# -- one app credential ----------------------------------------------------------------------


def test_the_token_file_alone_is_a_graph_credential(token_file: Path) -> None:
    settings = Settings.from_env(
        {"AZURE_TENANT_ID": PARTNER, "AZURE_CLIENT_ID": PARTNER, "AZURE_FEDERATED_TOKEN_FILE": str(token_file)}
    )
    settings.require_graph()
    assert settings.federated_token_file == token_file
    assert str(token_file) not in settings.secret_values()  # a path, not a secret; its content never read here


@pytest.mark.parametrize(
    "other",
    ["AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID"],
)
def test_the_token_file_and_another_app_credential_is_a_configuration_error(
    other: str, token_file: Path, tmp_path: Path
) -> None:
    certificate = tmp_path / "app.pem"
    certificate.write_text("placeholder", encoding="utf-8")
    values = {
        "AZURE_CLIENT_SECRET": "a-client-secret-value",
        "AZURE_CLIENT_CERTIFICATE_PATH": str(certificate),
        "PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID": "99999999-8888-4777-8666-555555555555",
    }
    environment = {
        "AZURE_TENANT_ID": PARTNER,
        "AZURE_CLIENT_ID": PARTNER,
        "AZURE_FEDERATED_TOKEN_FILE": str(token_file),
        other: values[other],
    }
    with pytest.raises(ConfigError, match=f"AZURE_FEDERATED_TOKEN_FILE: set together with {other}") as raised:
        Settings.from_env(environment)
    assert raised.value.setting == "AZURE_FEDERATED_TOKEN_FILE"


def test_the_command_line_refuses_a_secret_beside_the_token_file(
    oidc_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "a-client-secret-value")
    code, out, err = run_cli(capsys, "scan", "--tenant", PARTNER, "--no-alerts")
    assert code == 2
    assert "AZURE_FEDERATED_TOKEN_FILE" in err and "AZURE_CLIENT_SECRET" in err
    assert "a-client-secret-value" not in out + err


def test_a_missing_token_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="AZURE_FEDERATED_TOKEN_FILE: no such file"):
        Settings.from_env(
            {
                "AZURE_TENANT_ID": PARTNER,
                "AZURE_CLIENT_ID": PARTNER,
                "AZURE_FEDERATED_TOKEN_FILE": str(tmp_path / "absent.jwt"),
            }
        )


def test_the_service_identity_stays_beside_the_token_file_which_signs_in(
    oidc_env: dict[str, str], simulator: TenantSimulator, token_file: Path
) -> None:
    """PARTNERGUARD_IDENTITY_CLIENT_ID also names the identity for storage and ACS; with a token
    file set, Graph signs in with the file, never through the managed identity."""
    settings = Settings.from_env({**oidc_env, "PARTNERGUARD_IDENTITY_CLIENT_ID": simulator.managed_identity_client_id})
    before = len(simulator.federated_assertions)
    assert build_graph_credential(settings, PARTNER).get_token(settings.graph_scope).token
    assert [j.fingerprint for j in simulator.federated_assertions[before:]] == [
        fingerprint(token_file.read_text(encoding="utf-8").strip())
    ]
    assert not [r for r in simulator.requests if r.path == "/msi/token"]

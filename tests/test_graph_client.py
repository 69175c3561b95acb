"""GraphClient against the tenant simulator: sign-in, paging, $select, errors, retries, $batch."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

import pytest

from partnerguard.credentials import build_graph_credential
from partnerguard.graph.client import GraphClient
from partnerguard.graph.errors import (
    ConsentMissing,
    GraphRequestError,
    LicenceRequired,
    PermissionDenied,
    SignInFailed,
    Throttled,
)
from partnerguard.graph.requests import (
    CONDITIONAL_ACCESS_POLICIES,
    ORGANIZATION,
    PER_USER_MFA_STATE,
    USER_REGISTRATION_DETAILS,
    USERS,
    ApiVersion,
)
from partnerguard.settings import Settings
from testbed.simulator import TenantSimulator, generate_tenant
from tests.graph_sim import NO_AUDIT_LOG, NOT_CONSENTED, PARTNER, UNLICENSED, fast_client, run, secret_settings

pytestmark = pytest.mark.simulator

PARTNER_USERS = 2500  # three pages of 999


@pytest.fixture(scope="module")
def sim() -> Iterator[TenantSimulator]:
    no_audit = generate_tenant(NO_AUDIT_LOG, 40, seed=3)
    no_audit.granted_permissions = {"User.Read.All", "Organization.Read.All", "Policy.Read.All"}
    not_consented = generate_tenant(NOT_CONSENTED, 10, seed=4)
    not_consented.consented = False
    tenants = [
        generate_tenant(PARTNER, PARTNER_USERS, seed=1, role="partner", display_name="Contoso Partner"),
        generate_tenant(UNLICENSED, 60, seed=2, licences=()),
        no_audit,
        not_consented,
    ]
    with TenantSimulator(tenants, enforce_limits=True) as simulator:
        yield simulator


@pytest.fixture(autouse=True)
def clean_faults(sim: TenantSimulator) -> Iterator[None]:
    sim.faults.clear()
    yield
    sim.faults.clear()


def user_count_read_with(settings: Settings) -> int:
    async def read() -> int:
        async with GraphClient(settings, PARTNER) as client:
            return len(await client.collect(USERS.request()))

    return run(read())


# -- signing in ---------------------------------------------------------------------------------


def test_sign_in_with_client_secret(sim: TenantSimulator) -> None:
    assert user_count_read_with(secret_settings(sim)) == PARTNER_USERS


def test_sign_in_with_certificate(sim: TenantSimulator) -> None:
    environment = sim.environment()
    del environment["AZURE_CLIENT_SECRET"]
    environment["AZURE_CLIENT_CERTIFICATE_PATH"] = str(sim.certificate_path)
    assert user_count_read_with(Settings.from_env(environment)) == PARTNER_USERS


def test_sign_in_with_managed_identity_assertion(sim: TenantSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in sim.managed_identity_environment().items():
        monkeypatch.setenv(name, value)
    environment = sim.environment()
    del environment["AZURE_CLIENT_SECRET"]
    environment["PARTNERGUARD_IDENTITY_CLIENT_ID"] = sim.managed_identity_client_id
    sim.clear_requests()
    assert user_count_read_with(Settings.from_env(environment)) == PARTNER_USERS
    paths = [record.path for record in sim.requests]
    assert any(path == "/msi/token" for path in paths)  # the managed identity's token...
    token_calls = [r for r in sim.requests if r.path.endswith("/oauth2/v2.0/token")]
    assert token_calls and all(r.status == 200 for r in token_calls)  # ...exchanged for the app's


def test_a_tenant_without_consent_is_consent_missing(sim: TenantSimulator) -> None:
    async def read() -> None:
        async with GraphClient(secret_settings(sim), NOT_CONSENTED) as client:
            await client.collect(USERS.request())

    with pytest.raises(ConsentMissing) as caught:
        run(read())
    assert caught.value.code.startswith("AADSTS")
    assert caught.value.unavailable().reason_code == f"error:{caught.value.code}"


def test_a_wrong_secret_is_sign_in_failed(sim: TenantSimulator) -> None:
    settings = secret_settings(sim, AZURE_CLIENT_SECRET="not-the-secret")

    async def read() -> None:
        async with GraphClient(settings, PARTNER) as client:
            await client.collect(ORGANIZATION.request())

    with pytest.raises(SignInFailed) as caught:
        run(read())
    assert not isinstance(caught.value, ConsentMissing)
    assert "not-the-secret" not in str(caught.value)


def test_a_rejected_token_is_renewed_once(sim: TenantSimulator) -> None:
    async def read_twice() -> tuple[int, int]:
        async with fast_client(secret_settings(sim), PARTNER) as client:
            first = len(await client.collect(ORGANIZATION.request()))
            sim.expire_tokens()  # Graph now answers 401 to the token the client holds
            second = len(await client.collect(ORGANIZATION.request()))
            return first, second

    sim.clear_requests()
    assert run(read_twice()) == (1, 1)
    statuses = [r.status for r in sim.requests if r.path == "/v1.0/organization"]
    assert statuses == [200, 401, 200]


def test_tokens_never_reach_the_logs(sim: TenantSimulator, caplog: pytest.LogCaptureFixture) -> None:
    settings = secret_settings(sim)
    token = build_graph_credential(settings, PARTNER).get_token(settings.graph_scope).token
    caplog.set_level(logging.DEBUG)
    sim.inject_fault(
        r"^/v1\.0/organization$", status=403, times=1, body=json.dumps({"error": {"code": "X", "message": "m"}})
    )

    async def read() -> None:
        async with fast_client(settings, PARTNER) as client:
            with pytest.raises(GraphRequestError):
                await client.collect(ORGANIZATION.request())
            await client.collect(USERS.request())

    run(read())
    assert caplog.records  # the libraries did log at debug level
    assert token not in caplog.text
    assert settings.client_secret and settings.client_secret not in caplog.text


# -- reading ------------------------------------------------------------------------------------


def test_paging_follows_next_links_to_the_end(sim: TenantSimulator) -> None:
    sim.clear_requests()

    async def read() -> list[list[dict[str, object]]]:
        async with GraphClient(secret_settings(sim), PARTNER) as client:
            return [page async for page in client.pages(USERS.request())]

    pages = run(read())
    assert [len(page) for page in pages] == [999, 999, 502]
    ids = [user["id"] for page in pages for user in page]
    assert len(set(ids)) == PARTNER_USERS
    assert set(ids) == {user["id"] for user in sim.tenant(PARTNER).users}
    assert len([r for r in sim.requests if r.path == "/v1.0/users"]) == 3


def test_select_is_honoured(sim: TenantSimulator) -> None:
    async def read() -> list[dict[str, object]]:
        async with GraphClient(secret_settings(sim), PARTNER) as client:
            return await client.collect(USERS.request())

    users = run(read())
    assert all({key for key in user if not key.startswith("@")} == set(USERS.select) for user in users)


def test_a_repeated_next_link_is_caught(sim: TenantSimulator) -> None:
    loop_link = f"{sim.base_url}/v1.0/users?$skiptoken=again"
    page = json.dumps({"value": [{"id": "x"}], "@odata.nextLink": loop_link})
    sim.inject_fault(r"^/v1\.0/users$", status=200, times=3, body=page)

    async def read() -> None:
        async with GraphClient(secret_settings(sim), PARTNER) as client:
            await client.collect(USERS.request())

    with pytest.raises(GraphRequestError) as caught:
        run(read())
    assert caught.value.code == "RepeatedNextLink"


def test_a_next_link_to_another_host_is_refused(sim: TenantSimulator) -> None:
    page = json.dumps({"value": [], "@odata.nextLink": "https://attacker.example/v1.0/users?$skiptoken=1"})
    sim.inject_fault(r"^/v1\.0/users$", status=200, times=1, body=page)

    async def read() -> None:
        async with GraphClient(secret_settings(sim), PARTNER) as client:
            await client.collect(USERS.request())

    with pytest.raises(GraphRequestError) as caught:
        run(read())
    assert caught.value.code == "UnexpectedNextLink"


def test_licence_403_is_licence_required(sim: TenantSimulator) -> None:
    async def read(request_name: str) -> None:
        request = USER_REGISTRATION_DETAILS if request_name == "report" else CONDITIONAL_ACCESS_POLICIES
        async with GraphClient(secret_settings(sim), UNLICENSED) as client:
            await client.collect(request.request())

    for request_name in ("report", "policies"):
        with pytest.raises(LicenceRequired) as caught:
            run(read(request_name))
        unavailable = caught.value.unavailable()
        assert unavailable.reason_code == "licence:AAD_PREMIUM"


def test_missing_permission_names_it(sim: TenantSimulator) -> None:
    async def read() -> None:
        async with GraphClient(secret_settings(sim), NO_AUDIT_LOG) as client:
            await client.collect(USER_REGISTRATION_DETAILS.request())

    with pytest.raises(PermissionDenied) as caught:
        run(read())
    assert caught.value.unavailable().reason_code == "permission:AuditLog.Read.All"


# -- retries ------------------------------------------------------------------------------------


def statuses_of(sim: TenantSimulator, path: str) -> list[int]:
    return [record.status for record in sim.requests if record.path == path and not record.in_batch]


def test_429_with_retry_after_is_retried_after_waiting(sim: TenantSimulator) -> None:
    sim.clear_requests()
    sim.inject_fault(r"^/v1\.0/organization$", status=429, times=2, retry_after=1)

    async def read() -> list[dict[str, object]]:
        async with fast_client(secret_settings(sim), PARTNER) as client:
            return await client.collect(ORGANIZATION.request())

    started = time.monotonic()
    assert len(run(read())) == 1
    assert time.monotonic() - started >= 2.0  # honoured Retry-After: 1, twice
    assert statuses_of(sim, "/v1.0/organization") == [429, 429, 200]


def test_429_without_retry_after_is_retried_with_back_off(sim: TenantSimulator) -> None:
    sim.clear_requests()
    sim.inject_fault(r"^/v1\.0/identity/conditionalAccess/policies$", status=429, times=1)

    async def read() -> list[dict[str, object]]:
        async with fast_client(secret_settings(sim), PARTNER) as client:
            return await client.collect(CONDITIONAL_ACCESS_POLICIES.request())

    assert len(run(read())) == len(sim.tenant(PARTNER).conditional_access_policies)
    assert statuses_of(sim, "/v1.0/identity/conditionalAccess/policies") == [429, 200]


def test_throttled_for_good_is_throttled(sim: TenantSimulator) -> None:
    sim.inject_fault(r"^/v1\.0/organization$", status=429, times=50, retry_after=0)

    async def read() -> None:
        async with fast_client(secret_settings(sim), PARTNER, max_retries=2) as client:
            await client.collect(ORGANIZATION.request())

    with pytest.raises(Throttled):
        run(read())


def test_503_and_a_reset_connection_are_retried(sim: TenantSimulator) -> None:
    sim.clear_requests()
    sim.inject_fault(r"^/v1\.0/organization$", status=503, times=1)
    sim.inject_fault(r"^/v1\.0/organization$", times=1, body="reset")

    async def read() -> list[dict[str, object]]:
        async with fast_client(secret_settings(sim), PARTNER) as client:
            return await client.collect(ORGANIZATION.request())

    assert run(read())[0]["displayName"] == "Contoso Partner"
    assert statuses_of(sim, "/v1.0/organization") == [503, 0, 200]


# -- $batch -------------------------------------------------------------------------------------


def test_batch_sends_relative_urls_and_returns_results_in_order(sim: TenantSimulator) -> None:
    users = sim.tenant(PARTNER).users[:45]
    tenant = sim.tenant(PARTNER)
    tenant.per_user_mfa_states = {users[0]["id"]: "enforced", users[1]["id"]: "enabled"}
    sim.clear_requests()

    async def read() -> list[object]:
        async with GraphClient(secret_settings(sim), PARTNER) as client:
            results = await client.batch(
                [PER_USER_MFA_STATE.request(user_id=user["id"]) for user in users], ApiVersion.BETA
            )
            return [result.body["perUserMfaState"] if result.ok else result.error for result in results]

    states = run(read())
    assert states == ["enforced", "enabled"] + ["disabled"] * 43
    envelopes = [r for r in sim.requests if r.path == "/beta/$batch"]
    assert len(envelopes) == 3  # 20 + 20 + 5
    sub_requests = [r for r in sim.requests if r.in_batch]
    assert len(sub_requests) == 45
    assert all(r.status == 200 and r.path.startswith("/beta/users/") for r in sub_requests)


def test_batch_retries_throttled_sub_requests(sim: TenantSimulator) -> None:
    users = sim.tenant(PARTNER).users[100:110]
    sim.clear_requests()
    sim.inject_fault(r"^/beta/users/[^/]+/authentication/requirements$", status=429, times=3, retry_after=1)

    async def read() -> list[bool]:
        async with fast_client(secret_settings(sim), PARTNER) as client:
            results = await client.batch([PER_USER_MFA_STATE.request(user_id=user["id"]) for user in users])
            return [result.ok for result in results]

    assert run(read()) == [True] * 10
    sub_statuses = [r.status for r in sim.requests if r.in_batch]
    assert sub_statuses.count(429) == 3
    assert sub_statuses.count(200) == 10
    assert len([r for r in sim.requests if r.path == "/beta/$batch"]) == 2


def test_batch_reports_sub_request_errors(sim: TenantSimulator) -> None:
    async def read() -> list[tuple[int, str | None]]:
        async with GraphClient(secret_settings(sim), PARTNER) as client:
            results = await client.batch([PER_USER_MFA_STATE.request(user_id="00000000-0000-4000-8000-000000000000")])
            return [(result.status, result.error.code if result.error else None) for result in results]

    [(status, code)] = run(read())
    assert status == 404
    assert code == "Request_ResourceNotFound"

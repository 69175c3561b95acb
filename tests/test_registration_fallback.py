"""The mfa.registration fallback: per-user methods in $batch, paced, cached a day, within a budget.

Against the tenant simulator (limits off; the client's pacer shortened so the tests take seconds,
batch sizes unchanged) and Azurite for the method cache.
"""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableServiceClient

import checks.mfa_registration as mfa_registration
from partnerguard.collect import collect_snapshot
from partnerguard.graph.client import GraphClient
from partnerguard.model import CheckOutcome, Status, TenantSnapshot, Unavailable
from partnerguard.pipeline import check_context
from partnerguard.storage.method_cache import MethodCache
from testbed.azurite import AzuriteProcess
from testbed.simulator import TenantSimulator, bundled_scenarios, generate_tenant
from testbed.simulator.ground_truth import admin_user_ids, expected_mfa_registration_subjects
from testbed.simulator.recording import RequestRecord
from tests.graph_sim import fast_pacer, run, secret_settings

pytestmark = pytest.mark.simulator

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
UNLICENSED = "1f1f1f1f-1111-4222-8333-444444444444"
LAGGING = "2f2f2f2f-1111-4222-8333-444444444444"
NO_METHOD_PERMISSION = "3f3f3f3f-1111-4222-8333-444444444444"
GROUP_ADMIN = "4f4f4f4f-1111-4222-8333-444444444444"
COMPLETE = "8f8f8f8f-1111-4222-8333-444444444444"
ROLE_GROUP = "9e9e9e9e-0000-4000-8000-000000000001"
GROUP_ADMIN_USER = "9e9e9e9e-0000-4000-8000-000000000002"
METHODS_PATH = "/authentication/methods"
PASSWORD_TYPE = "#microsoft.graph.passwordAuthenticationMethod"


@pytest.fixture(scope="module")
def sim() -> Iterator[TenantSimulator]:
    unlicensed = generate_tenant(
        UNLICENSED, 23, seed=11, licences=(), mfa_policy=False, incapable=3, guests=2, disabled=1
    )
    lagging = generate_tenant(LAGGING, 40, seed=12, unregistered=3)
    no_permission = generate_tenant(NO_METHOD_PERMISSION, 12, seed=13, licences=())
    no_permission.granted_permissions = {
        "User.Read.All",
        "Organization.Read.All",
        "Policy.Read.All",
        "Policy.Read.AuthenticationMethod",
        "RoleManagement.Read.Directory",
        "Application.Read.All",
    }
    group_admin = generate_tenant(GROUP_ADMIN, 15, seed=14, licences=(), admins=0, mfa_policy=False)
    # A role-assignable group holding Global Administrator: its member is an admin too.
    member = next(
        user for user in group_admin.users if user.get("accountEnabled", True) and user["userType"] == "Member"
    )
    member_id = member["id"]
    group_admin.group_transitive_members[ROLE_GROUP] = [
        {"@odata.type": "#microsoft.graph.user", "id": member_id, "displayName": member["displayName"]}
    ]
    group_admin.role_assignments.append(
        {
            "id": str(uuid.uuid4()),
            "principalId": ROLE_GROUP,
            "roleDefinitionId": "62e90394-69f5-4237-9190-012177145e10",
            "directoryScopeId": "/",
            "appScopeId": None,
            "condition": None,
        }
    )
    complete = generate_tenant(COMPLETE, 20, seed=15)
    litware = next(t for t in bundled_scenarios() if t.display_name.startswith("Litware"))
    tenants = [unlicensed, lagging, no_permission, group_admin, complete, litware]
    with TenantSimulator(tenants, enforce_limits=False) as simulator:
        yield simulator


@pytest.fixture
def method_cache(azurite: AzuriteProcess, table_prefix: str) -> Iterator[MethodCache]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    cache = MethodCache(service, table_prefix)
    cache.ensure_tables()
    yield cache
    service.delete_table(cache.table.table_name)
    cache.close()
    service.close()


def collect(
    sim: TenantSimulator,
    tenant_id: str,
    *,
    cache: MethodCache | None = None,
    budget: float = 300.0,
    clock: Callable[[], float] | None = None,
) -> TenantSnapshot:
    settings = secret_settings(sim)

    async def go() -> TenantSnapshot:
        async with GraphClient(settings, tenant_id, pacer=fast_pacer(), retry_delay_seconds=0.05) as client:
            return await collect_snapshot(
                client,
                settings,
                tenant_id,
                NOW,
                method_cache=cache,
                fallback_budget_s=budget,
                clock=clock or time.monotonic,
            )

    return run(go())


def method_reads(sim: TenantSimulator, tenant_id: str) -> list[RequestRecord]:
    return [r for r in sim.requests if r.tenant_id == tenant_id and r.path.endswith(METHODS_PATH)]


def in_scope_user_ids(sim: TenantSimulator, tenant_id: str) -> set[str]:
    return {
        user["id"]
        for user in sim.tenant(tenant_id).users
        if user.get("accountEnabled", True) and user["userType"] != "Guest"
    }


def registration_outcome(sim: TenantSimulator, snapshot: TenantSnapshot) -> CheckOutcome:
    return mfa_registration.execute(snapshot, check_context(secret_settings(sim), NOW))


def test_unlicensed_tenant_is_assessed_through_the_fallback_in_batches(
    sim: TenantSimulator, method_cache: MethodCache
) -> None:
    sim.clear_requests()
    tenant = sim.tenant(UNLICENSED)
    snapshot = collect(sim, UNLICENSED, cache=method_cache)

    assert isinstance(snapshot.registration_details, Unavailable)
    assert snapshot.registration_details.reason_code == "licence:AAD_PREMIUM"
    methods = snapshot.user_auth_methods
    assert isinstance(methods, dict)
    expected_users = in_scope_user_ids(sim, UNLICENSED)
    assert set(methods) == expected_users  # enabled members only: no guest, no disabled user
    some_user = next(iter(expected_users))
    assert list(methods[some_user]) == [m["@odata.type"] for m in tenant.authentication_methods[some_user]]
    assert snapshot.enabled_auth_method_ids == frozenset(
        {"MicrosoftAuthenticator", "Fido2", "Sms", "SoftwareOath", "TemporaryAccessPass"}
    )
    assert snapshot.admin_user_ids == frozenset(admin_user_ids(tenant))
    assert snapshot.unassessed_user_ids == frozenset()

    # Every method read went through $batch, five sub-requests (the reports class) per batch.
    reads = method_reads(sim, UNLICENSED)
    assert len(reads) == len(expected_users)
    assert all(r.in_batch for r in reads)
    batches = [r for r in sim.requests if r.tenant_id == UNLICENSED and r.path == "/beta/$batch"]
    # Beta batches also carry the per-user MFA reads (directory class, 20 per batch).
    requirement_reads = [r for r in sim.requests if r.tenant_id == UNLICENSED and r.path.endswith("/requirements")]
    assert len(batches) == math.ceil(len(expected_users) / 5) + math.ceil(len(requirement_reads) / 20)
    # Admins first: the first batch's sub-requests are the admins'.
    first_five = {r.path.split("/")[3] for r in reads[:5]}  # /beta/users/{id}/...
    assert first_five == set(admin_user_ids(tenant))

    outcome = registration_outcome(sim, snapshot)
    assert {f.subject_id for f in outcome.findings} == expected_mfa_registration_subjects(tenant)
    assert outcome.status is Status.FAIL


def test_a_second_collection_reads_methods_from_the_cache(sim: TenantSimulator, method_cache: MethodCache) -> None:
    first = collect(sim, UNLICENSED, cache=method_cache)
    sim.clear_requests()
    second = collect(sim, UNLICENSED, cache=method_cache)
    # All but the admins': theirs are read every scan (mfa.phishing-resistant-admins must see a
    # key registered or removed since the last scan).
    assert {r.path.split("/")[3] for r in method_reads(sim, UNLICENSED)} == admin_user_ids(sim.tenant(UNLICENSED))
    assert second.user_auth_methods == first.user_auth_methods
    assert second.unassessed_user_ids == frozenset()


def test_the_budget_stops_the_reads_admins_first_and_the_rest_is_unassessed(sim: TenantSimulator) -> None:
    tenant = sim.tenant(UNLICENSED)
    sim.clear_requests()

    def clock() -> float:
        # One "second" per method read so far: a budget of 7 admits two batches (5 + 5).
        return float(len(method_reads(sim, UNLICENSED)))

    snapshot = collect(sim, UNLICENSED, budget=7.0, clock=clock)
    methods = snapshot.user_auth_methods
    assert isinstance(methods, dict)
    assert len(methods) == 10
    assert set(admin_user_ids(tenant)) <= set(methods)
    in_scope = in_scope_user_ids(sim, UNLICENSED)
    assert snapshot.unassessed_user_ids == frozenset(in_scope - set(methods))
    assert len(snapshot.unassessed_user_ids) == len(in_scope) - 10

    outcome = registration_outcome(sim, snapshot)
    assert outcome.status is Status.NOT_ASSESSED
    left = len(in_scope) - 10
    assert outcome.evidence == {
        "unassessed_users": left,
        "not_reached_users": left,
        "unreadable_users": 0,
        "in_scope_users": len(in_scope),
        "assessed_users": 10,
        "mfa_capable_users": 10 - len(outcome.findings),
    }
    assert snapshot.unreadable_user_ids == frozenset()


def test_a_user_whose_methods_cannot_be_read_is_unreadable_not_out_of_time(sim: TenantSimulator) -> None:
    # 500 is not retried: the first methods sub-request fails for good.
    sim.inject_fault(r"/authentication/methods$", status=500, times=1)
    try:
        snapshot = collect(sim, UNLICENSED)
    finally:
        sim.faults.clear()
    assert len(snapshot.unreadable_user_ids) == 1
    assert snapshot.unassessed_user_ids == frozenset()
    outcome = registration_outcome(sim, snapshot)
    assert outcome.status is Status.NOT_ASSESSED
    assessed = len(in_scope_user_ids(sim, UNLICENSED)) - 1
    assert outcome.evidence == {
        "unassessed_users": 1,
        "not_reached_users": 0,
        "unreadable_users": 1,
        "in_scope_users": assessed + 1,
        "assessed_users": assessed,
        "mfa_capable_users": assessed - len(outcome.findings),
    }
    assert "time budget" not in (outcome.reason or "")


def test_fallback_user_ids_follow_mfa_registration_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    from partnerguard.collect import fallback_user_ids
    from partnerguard.model import User

    users = [
        User("member", "M", "m@x.example", True, "Member"),
        User("guest", "G", "g@x.example", True, "Guest"),
        User("disabled", "D", "d@x.example", False, "Member"),
    ]
    licence = Unavailable("no P1", "licence:AAD_PREMIUM")
    assert fallback_user_ids(users, licence, include_guests=False) == ["member"]
    assert fallback_user_ids(users, licence, include_guests=True) == ["member", "guest"]
    # One rule, mfa.registration's: the collector asks it rather than re-implementing it.
    calls: list[tuple[str, bool]] = []

    def recording_scope(user: User, include_guests: bool) -> bool:
        calls.append((user.id, include_guests))
        return user.id == "disabled"

    monkeypatch.setattr("partnerguard.collect.in_scope", recording_scope)
    assert fallback_user_ids(users, licence, include_guests=True) == ["disabled"]
    assert calls == [("member", True), ("guest", True), ("disabled", True)]


def test_fallback_user_ids_add_admins_out_of_scope_but_not_disabled_ones() -> None:
    from partnerguard.collect import fallback_user_ids
    from partnerguard.model import User

    users = [
        User("member", "M", "m@x.example", True, "Member"),
        User("guest", "G", "g_y.example#EXT#@x.example", True, "Guest"),
        User("disabled", "D", "d@x.example", False, "Member"),
    ]
    admins = frozenset({"guest", "disabled"})
    licence = Unavailable("no P1", "licence:AAD_PREMIUM")
    # mfa.phishing-resistant-admins judges a guest admin though INCLUDE_GUESTS is off.
    assert fallback_user_ids(users, licence, include_guests=False, admins=admins) == ["member", "guest"]
    assert fallback_user_ids(users, [], include_guests=False, admins=admins) == ["member", "guest"]


def test_the_next_scan_reads_only_what_the_budget_left(sim: TenantSimulator, method_cache: MethodCache) -> None:
    sim.clear_requests()
    first = collect(
        sim, UNLICENSED, cache=method_cache, budget=7.0, clock=lambda: float(len(method_reads(sim, UNLICENSED)))
    )
    left = first.unassessed_user_ids
    assert left
    sim.clear_requests()
    second = collect(sim, UNLICENSED, cache=method_cache)
    admins = admin_user_ids(sim.tenant(UNLICENSED))
    assert {r.path.split("/")[3] for r in method_reads(sim, UNLICENSED)} == set(left) | admins
    assert second.unassessed_user_ids == frozenset()


def test_only_users_the_report_lacks_are_read_with_p1(sim: TenantSimulator) -> None:
    tenant = sim.tenant(LAGGING)
    sim.clear_requests()
    snapshot = collect(sim, LAGGING)
    reported = {row["id"] for row in tenant.user_registration_details}
    lacking = in_scope_user_ids(sim, LAGGING) - reported
    assert len(lacking) == 3
    assert isinstance(snapshot.user_auth_methods, dict)
    assert set(snapshot.user_auth_methods) == lacking
    assert {r.path.split("/")[3] for r in method_reads(sim, LAGGING)} == lacking
    outcome = registration_outcome(sim, snapshot)
    assert {f.subject_id for f in outcome.findings} == expected_mfa_registration_subjects(tenant)


def test_no_fallback_when_the_report_covers_everyone(sim: TenantSimulator) -> None:
    sim.clear_requests()
    snapshot = collect(sim, COMPLETE)
    assert snapshot.user_auth_methods is None
    assert snapshot.admin_user_ids is None
    paths = [r.path for r in sim.requests if r.tenant_id == COMPLETE]
    assert not any(path.endswith(METHODS_PATH) for path in paths)
    # The methods policy and the role assignments are read once each, every scan, for
    # mfa.phishing-resistant-admins (which methods count; who the admins are), fallback or not.
    assert isinstance(snapshot.enabled_auth_method_ids, frozenset) and "Fido2" in snapshot.enabled_auth_method_ids
    assert isinstance(snapshot.admin_roles, dict) and set(snapshot.admin_roles) == admin_user_ids(sim.tenant(COMPLETE))
    assert paths.count("/beta/policies/authenticationMethodsPolicy") == 1
    assert paths.count("/v1.0/roleManagement/directory/roleAssignments") == 1


def test_missing_method_permission_names_it(sim: TenantSimulator) -> None:
    snapshot = collect(sim, NO_METHOD_PERMISSION)
    assert isinstance(snapshot.user_auth_methods, Unavailable)
    assert snapshot.user_auth_methods.reason_code == "permission:UserAuthenticationMethod.Read.All"
    outcome = registration_outcome(sim, snapshot)
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.reason_code == "licence:AAD_PREMIUM"  # the report's reason leads
    assert outcome.reason is not None and "UserAuthenticationMethod.Read.All" in outcome.reason


def test_members_of_a_role_assignable_group_are_admins(sim: TenantSimulator) -> None:
    snapshot = collect(sim, GROUP_ADMIN)
    admins = snapshot.admin_user_ids
    assert isinstance(admins, frozenset)
    member_id = sim.tenant(GROUP_ADMIN).group_transitive_members[ROLE_GROUP][0]["id"]
    assert admins == frozenset({member_id})  # the user, not the group's id


def test_method_cache_batches_and_freshness(method_cache: MethodCache) -> None:
    tenant_id = "5f5f5f5f-1111-4222-8333-444444444444"
    users = {str(uuid.UUID(int=i)): ("#microsoft.graph.fido2AuthenticationMethod",) for i in range(1, 251)}
    assert method_cache.put_many(tenant_id, users, NOW) == 3  # 100 + 100 + 50
    stale_user = str(uuid.UUID(int=999))
    method_cache.put_many(tenant_id, {stale_user: ()}, NOW - timedelta(days=2))
    fresh_after = NOW - timedelta(days=1)

    # Many users: one partition query; few: point reads. Both keep only fresh, asked-for rows.
    everyone = method_cache.get_many(tenant_id, [*users, stale_user], fresh_after)
    assert everyone == users
    few = method_cache.get_many(tenant_id, [next(iter(users)), stale_user, "not-cached"], fresh_after)
    assert few == {next(iter(users)): users[next(iter(users))]}
    assert method_cache.get_many("6f6f6f6f-1111-4222-8333-444444444444", list(users), fresh_after) == {}
    # A user with no method at all is cached as such (and judged "no method" by the check).
    assert method_cache.get_many(tenant_id, [stale_user], NOW - timedelta(days=3)) == {stale_user: ()}


def test_method_cache_ignores_rows_it_cannot_read(method_cache: MethodCache) -> None:
    tenant_id = "7f7f7f7f-1111-4222-8333-444444444444"
    user_id = str(uuid.uuid4())
    method_cache.put_many(tenant_id, {user_id: ("#microsoft.graph.fido2AuthenticationMethod",)}, NOW)
    entity = method_cache.table.get_entity(tenant_id, user_id)
    entity["methods"] = '{"not": "a list"}'
    method_cache.table.upsert_entity(entity)
    assert method_cache.get_many(tenant_id, [user_id], NOW - timedelta(days=1)) == {}


def test_beta_only_methods_count(sim: TenantSimulator) -> None:
    """v1.0 lists only the methods it knows: a hardware OATH token is on beta alone."""
    litware = next(t for t in sim.tenants if t.display_name.startswith("Litware"))
    hardware_token_users = {
        user_id
        for user_id, methods in litware.authentication_methods.items()
        if {m["@odata.type"] for m in methods} == {PASSWORD_TYPE, "#microsoft.graph.hardwareOathAuthenticationMethod"}
    }
    assert hardware_token_users  # the scenario has one
    sim.clear_requests()
    snapshot = collect(sim, litware.tenant_id)
    assert (
        isinstance(snapshot.enabled_auth_method_ids, frozenset) and "HardwareOath" in snapshot.enabled_auth_method_ids
    )
    assert all(r.path.startswith("/beta/") for r in method_reads(sim, litware.tenant_id))
    outcome = registration_outcome(sim, snapshot)
    assert {f.subject_id for f in outcome.findings} == expected_mfa_registration_subjects(litware)
    assert not hardware_token_users & {f.subject_id for f in outcome.findings}

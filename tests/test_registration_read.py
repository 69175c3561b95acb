"""The registration report read whole at most once a day, filtered in between (issue 16).

Against the tenant simulator over HTTPS (limits off; the client's pacer shortened, batch sizes
unchanged) and the roster in Azurite. Each scan's requests are counted from the simulator's own
record, and every verdict is compared with the simulator's ground truth.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

import checks.mfa_registration as mfa_registration
from partnerguard.collect import collect_snapshot
from partnerguard.graph.client import GraphClient
from partnerguard.model import CheckOutcome, RegistrationDetail, TenantSnapshot
from partnerguard.pipeline import Scanner, check_context
from partnerguard.read_plan import ReadPlan
from partnerguard.storage import ScanStore
from partnerguard.storage.method_cache import MethodCache
from partnerguard.storage.registration_roster import HEADER_ROW, RegistrationRoster, pack
from testbed.azurite import AzuriteProcess
from testbed.simulator import TenantScenario, TenantSimulator, bundled_scenarios, generate_tenant
from testbed.simulator.generate import make_authentication_methods, make_registration_detail, make_user
from testbed.simulator.ground_truth import admin_user_ids, expected_mfa_registration_subjects
from testbed.simulator.recording import RequestRecord
from tests.graph_sim import fast_pacer, pace_to, run, secret_settings
from tests.simulator_http import client as raw_client

pytestmark = pytest.mark.simulator

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
LARGE = "5a5a5a5a-1111-4222-8333-444444444444"  # 2,500 users: 3 report pages read whole
SMALL = "5b5b5b5b-1111-4222-8333-444444444444"  # 40 users, 3 the report lacks
REPORT_PATH = "/reports/authenticationMethods/userRegistrationDetails"
METHODS_PATH = "/authentication/methods"


@pytest.fixture
def sim() -> Iterator[TenantSimulator]:
    # A simulator per test: the tests change the tenants' registrations between scans.
    # One admin in LARGE, none in SMALL: a filtered read also reads every admin's row by id, and
    # reads whole instead when that costs more than the report's pages (SMALL has one page).
    large = generate_tenant(LARGE, 2_500, seed=31, admins=1)
    small = generate_tenant(SMALL, 40, seed=32, unregistered=3, admins=0)
    with TenantSimulator([large, small, *bundled_scenarios()], enforce_limits=False) as simulator:
        yield simulator


@pytest.fixture
def service(azurite: AzuriteProcess) -> Iterator[TableServiceClient]:
    client = TableServiceClient.from_connection_string(azurite.connection_string)
    yield client
    client.close()


@pytest.fixture
def roster(service: TableServiceClient, table_prefix: str) -> Iterator[RegistrationRoster]:
    store = RegistrationRoster(service, table_prefix)
    store.ensure_tables()
    yield store
    service.delete_table(store.table.table_name)
    store.close()


@pytest.fixture
def method_cache(service: TableServiceClient, table_prefix: str) -> Iterator[MethodCache]:
    cache = MethodCache(service, table_prefix)
    cache.ensure_tables()
    yield cache
    service.delete_table(cache.table.table_name)
    cache.close()


def collect(
    sim: TenantSimulator,
    tenant_id: str,
    now: datetime,
    roster: RegistrationRoster | None,
    *,
    plan: ReadPlan | None = None,
    cache: MethodCache | None = None,
) -> TenantSnapshot:
    settings = secret_settings(sim)

    async def go() -> TenantSnapshot:
        async with GraphClient(settings, tenant_id, pacer=fast_pacer(), retry_delay_seconds=0.05) as client:
            return await collect_snapshot(
                client,
                settings,
                tenant_id,
                now,
                method_cache=cache,
                registration_roster=roster,
                read_plan=plan or ReadPlan(),
                fallback_budget_s=300.0,
                clock=time.monotonic,
            )

    sim.clear_requests()
    return run(go())


def outcome(sim: TenantSimulator, snapshot: TenantSnapshot) -> CheckOutcome:
    return mfa_registration.execute(snapshot, check_context(secret_settings(sim), snapshot.collected_at))


def subjects(result: CheckOutcome) -> set[str]:
    return {finding.subject_id for finding in result.findings}


def report_requests(sim: TenantSimulator, tenant_id: str) -> list[RequestRecord]:
    return [r for r in sim.requests if r.tenant_id == tenant_id and REPORT_PATH in r.path]


def whole_pages(sim: TenantSimulator, tenant_id: str) -> int:
    """Pages of the report read without a filter."""
    return sum(1 for r in report_requests(sim, tenant_id) if r.path.endswith(REPORT_PATH) and "filter" not in r.query)


def filtered_pages(sim: TenantSimulator, tenant_id: str) -> list[str]:
    return [r.query for r in report_requests(sim, tenant_id) if r.path.endswith(REPORT_PATH) and "filter" in r.query]


def point_reads(sim: TenantSimulator, tenant_id: str) -> list[RequestRecord]:
    """Rows read by id, but for the admins' rows every filtered read takes fresh (`admin_reads`)."""
    admins = admin_user_ids(sim.tenant(tenant_id))
    return [r for r in all_point_reads(sim, tenant_id) if r.path.rsplit("/", 1)[1] not in admins]


def all_point_reads(sim: TenantSimulator, tenant_id: str) -> list[RequestRecord]:
    return [r for r in report_requests(sim, tenant_id) if not r.path.endswith(REPORT_PATH)]


def admin_reads(sim: TenantSimulator, tenant_id: str) -> list[str]:
    """The user ids of admins' rows read by id, in request order."""
    admins = admin_user_ids(sim.tenant(tenant_id))
    return [user_id for r in all_point_reads(sim, tenant_id) if (user_id := r.path.rsplit("/", 1)[1]) in admins]


def row_of(tenant: TenantScenario, user_id: str) -> dict[str, Any]:
    row = next(row for row in tenant.user_registration_details if row["id"] == user_id)
    assert isinstance(row, dict)
    return row


def add_user(tenant: TenantScenario, *, strong: bool, reported: bool) -> str:
    """A member created since the last full read; `reported`: the report already lists them."""
    user_id = str(uuid.uuid4())
    user = make_user(user_id, f"new{user_id[:8]}@example.com", f"New {user_id[:8]}")
    methods = ["microsoftAuthenticatorPush"] if strong else []
    tenant.users.append(user)
    tenant.authentication_methods[user_id] = make_authentication_methods(user, methods, random.Random(7))
    if reported:
        tenant.user_registration_details.append(make_registration_detail(user, methods))
    return user_id


def test_the_first_scan_reads_whole_and_stores_the_roster(sim: TenantSimulator, roster: RegistrationRoster) -> None:
    snapshot = collect(sim, LARGE, NOW, roster)
    assert snapshot.registration_read is not None
    assert (snapshot.registration_read.kind, snapshot.registration_read.as_of) == ("full", NOW)
    assert whole_pages(sim, LARGE) == 3
    assert filtered_pages(sim, LARGE) == []

    stored = roster.load(LARGE)
    assert stored is not None
    assert (stored.read_at, stored.pages) == (NOW, 3)
    rows = {row["id"]: row for row in sim.tenant(LARGE).user_registration_details}
    enabled = {user["id"] for user in sim.tenant(LARGE).users if user.get("accountEnabled", True)}
    assert set(stored.rows) == set(rows) & enabled
    for user_id, detail in stored.rows.items():
        row = rows[user_id]
        assert (detail.is_mfa_capable, detail.is_mfa_registered, detail.is_admin) == (
            row["isMfaCapable"],
            row["isMfaRegistered"],
            row["isAdmin"],
        )
        assert (detail.user_type, detail.methods_registered) == (row["userType"], tuple(row["methodsRegistered"]))

    result = outcome(sim, snapshot)
    assert subjects(result) == expected_mfa_registration_subjects(sim.tenant(LARGE))
    assert result.evidence["registration_read"] == "full"
    assert result.evidence["registration_read_as_of"] == "2026-12-01T09:00:00Z"


def test_between_full_reads_only_not_capable_rows_are_read_and_changes_are_seen(
    sim: TenantSimulator, roster: RegistrationRoster
) -> None:
    tenant = sim.tenant(LARGE)
    first = outcome(sim, collect(sim, LARGE, NOW, roster))
    # Between the scans one capable member loses MFA and one reported user gains it.
    capable = next(
        row for row in tenant.user_registration_details if row["isMfaCapable"] and row["userType"] == "member"
    )
    loser = capable["id"]
    capable.update(isMfaCapable=False, isMfaRegistered=False, methodsRegistered=["email"])
    gainer = sorted(subjects(first))[0]
    row_of(tenant, gainer).update(isMfaCapable=True, isMfaRegistered=True, methodsRegistered=["fido2"])

    snapshot = collect(sim, LARGE, NOW + timedelta(hours=6), roster)
    assert snapshot.registration_read is not None
    assert (snapshot.registration_read.kind, snapshot.registration_read.as_of) == ("filtered", NOW)
    # One page of `isMfaCapable eq false` rows instead of the report's three.
    assert whole_pages(sim, LARGE) == 0
    assert len(filtered_pages(sim, LARGE)) == 1
    assert "isMfaCapable%20eq%20false" in filtered_pages(sim, LARGE)[0]
    assert point_reads(sim, LARGE) == []
    # Besides the admins' rows, read fresh by id in one $batch (their roster rows may be stale).
    assert admin_reads(sim, LARGE) == sorted(admin_user_ids(tenant))
    assert all(r.in_batch for r in all_point_reads(sim, LARGE))

    result = outcome(sim, snapshot)
    assert loser in subjects(result)
    assert gainer not in subjects(result)
    assert subjects(result) == expected_mfa_registration_subjects(tenant)
    assert result.evidence["registration_read"] == "filtered"
    assert result.evidence["registration_read_as_of"] == "2026-12-01T09:00:00Z"
    # Coverage counts come from the roster: everyone in scope is still assessed.
    assert result.evidence["assessed_users"] == result.evidence["in_scope_users"]
    loser_finding = next(finding for finding in result.findings if finding.subject_id == loser)
    assert loser_finding.evidence["methodsRegistered"] == ["email"]
    # The roster is what the full read returned: the filtered scan does not rewrite it.
    stored = roster.load(LARGE)
    assert stored is not None and stored.read_at == NOW


def test_users_the_full_read_lacked_go_to_the_fallback_without_reads_by_id(
    sim: TenantSimulator, roster: RegistrationRoster, method_cache: MethodCache
) -> None:
    tenant = sim.tenant(SMALL)
    first = collect(sim, SMALL, NOW, roster, cache=method_cache)
    lagging = {user["id"] for user in tenant.users} - {row["id"] for row in tenant.user_registration_details}
    assert len(lagging) == 3 and isinstance(first.user_auth_methods, dict) and set(first.user_auth_methods) == lagging
    stored = roster.load(SMALL)
    assert stored is not None and stored.absent == lagging

    snapshot = collect(sim, SMALL, NOW + timedelta(hours=1), roster, cache=method_cache)
    assert snapshot.registration_read is not None and snapshot.registration_read.kind == "filtered"
    assert point_reads(sim, SMALL) == [] and whole_pages(sim, SMALL) == 0
    # The fallback judges them as after the full read (their methods cached by it).
    assert isinstance(snapshot.user_auth_methods, dict) and set(snapshot.user_auth_methods) == lagging
    assert (
        subjects(outcome(sim, snapshot)) == subjects(outcome(sim, first)) == expected_mfa_registration_subjects(tenant)
    )


def test_new_users_are_read_by_id_unless_a_full_read_costs_less(
    sim: TenantSimulator, roster: RegistrationRoster, method_cache: MethodCache
) -> None:
    tenant = sim.tenant(LARGE)
    collect(sim, LARGE, NOW, roster, cache=method_cache)
    new_incapable = add_user(tenant, strong=False, reported=True)  # among the not-capable rows
    capable = add_user(tenant, strong=True, reported=True)
    lacking = add_user(tenant, strong=True, reported=False)  # the report lags behind them

    snapshot = collect(sim, LARGE, NOW + timedelta(hours=1), roster, cache=method_cache)
    assert snapshot.registration_read is not None and snapshot.registration_read.kind == "filtered"
    assert whole_pages(sim, LARGE) == 0 and len(filtered_pages(sim, LARGE)) == 1
    # Two users read by id in one $batch (cheaper than the three pages of a full read); the one
    # the report lacks answers 404 and reaches the fallback, which reads only their methods.
    reads = point_reads(sim, LARGE)
    assert [(r.path.rsplit("/", 1)[1], r.status, r.in_batch) for r in reads] == [
        (capable, 200, True),
        (lacking, 404, True),
    ]
    methods_read = [r.path for r in sim.requests if r.tenant_id == LARGE and r.path.endswith(METHODS_PATH)]
    assert methods_read == [f"/beta/users/{lacking}{METHODS_PATH}"]
    result = outcome(sim, snapshot)
    assert new_incapable in subjects(result)
    assert capable not in subjects(result) and lacking not in subjects(result)
    assert subjects(result) == expected_mfa_registration_subjects(tenant)
    # Both joined the roster (one as a row, one as a user the report lacks): read once only.
    stored = roster.load(LARGE)
    assert stored is not None and stored.read_at == NOW
    assert capable in stored.rows and lacking in stored.absent
    again = collect(sim, LARGE, NOW + timedelta(hours=1, minutes=30), roster, cache=method_cache)
    assert again.registration_read is not None and again.registration_read.kind == "filtered"
    assert point_reads(sim, LARGE) == [] and whole_pages(sim, LARGE) == 0
    assert subjects(outcome(sim, again)) == expected_mfa_registration_subjects(tenant)

    # Six more: six requests by id cost more than a full read (three pages, four at most for the
    # report grown by these users, by the rows a page held in the last full read).
    for _ in range(6):
        add_user(tenant, strong=True, reported=True)
    snapshot = collect(sim, LARGE, NOW + timedelta(hours=2), roster, cache=method_cache)
    assert snapshot.registration_read is not None
    assert (snapshot.registration_read.kind, snapshot.registration_read.as_of) == ("full", NOW + timedelta(hours=2))
    assert point_reads(sim, LARGE) == [] and whole_pages(sim, LARGE) == 3
    assert subjects(outcome(sim, snapshot)) == expected_mfa_registration_subjects(tenant)
    stored = roster.load(LARGE)
    disabled = {user["id"] for user in tenant.users if user.get("accountEnabled") is False}
    assert stored is not None and stored.absent == {lacking} | disabled  # the report omits disabled users


def test_after_a_day_the_report_is_read_whole_again(sim: TenantSimulator, roster: RegistrationRoster) -> None:
    collect(sim, LARGE, NOW, roster)
    almost = collect(sim, LARGE, NOW + timedelta(hours=23, minutes=59), roster)
    assert almost.registration_read is not None and almost.registration_read.kind == "filtered"
    day = collect(sim, LARGE, NOW + timedelta(days=1), roster)
    assert day.registration_read is not None
    assert (day.registration_read.kind, day.registration_read.as_of) == ("full", NOW + timedelta(days=1))
    assert whole_pages(sim, LARGE) == 3 and filtered_pages(sim, LARGE) == []
    stored = roster.load(LARGE)
    assert stored is not None and stored.read_at == NOW + timedelta(days=1)


def test_the_full_reads_plan_and_no_roster_store_read_whole_every_scan(
    sim: TenantSimulator, roster: RegistrationRoster
) -> None:
    for minutes in (0, 15):
        snapshot = collect(sim, LARGE, NOW + timedelta(minutes=minutes), roster, plan=ReadPlan.full_reads())
        assert snapshot.registration_read is not None and snapshot.registration_read.kind == "full"
        assert whole_pages(sim, LARGE) == 3 and filtered_pages(sim, LARGE) == []
    assert roster.load(LARGE) is None  # the baseline keeps none: it would never read one
    for minutes in (30, 45):
        snapshot = collect(sim, LARGE, NOW + timedelta(minutes=minutes), None)
        assert snapshot.registration_read is not None and snapshot.registration_read.kind == "full"
        assert whole_pages(sim, LARGE) == 3


def test_every_bundled_scenario_gives_the_full_reads_verdicts(
    sim: TenantSimulator, roster: RegistrationRoster, method_cache: MethodCache
) -> None:
    filtered = 0
    for tenant in [t for t in sim.tenants if t.tenant_id not in (LARGE, SMALL)]:
        first = collect(sim, tenant.tenant_id, NOW, roster, cache=method_cache)
        # Registrations change between the scans: every third reported user flips.
        for index, row in enumerate(tenant.user_registration_details):
            if index % 3 == 0:
                row["isMfaCapable"] = not row["isMfaCapable"]
        second = collect(sim, tenant.tenant_id, NOW + timedelta(hours=4), roster, cache=method_cache)
        baseline = collect(sim, tenant.tenant_id, NOW + timedelta(hours=4), None, cache=method_cache)
        truth = expected_mfa_registration_subjects(tenant)
        assert subjects(outcome(sim, second)) == truth, tenant.display_name
        assert subjects(outcome(sim, baseline)) == truth, tenant.display_name
        second_result, baseline_result = outcome(sim, second), outcome(sim, baseline)
        assert second_result.status == baseline_result.status, tenant.display_name
        assert second_result.findings == baseline_result.findings, tenant.display_name
        if second.registration_read is not None and second.registration_read.kind == "filtered":
            filtered += 1
            assert first.registration_read is not None and first.registration_read.kind == "full"
    # The bundled tenants' reports are one page each, and each has admins: one filtered page plus
    # their rows by id would cost more than reading whole, so every scan reads whole (fresh for
    # admins too); LARGE and SMALL above show the filtered path.
    assert filtered == 0


def test_a_crash_while_writing_leaves_the_previous_roster_readable(roster: RegistrationRoster) -> None:
    tenant = str(uuid.uuid4())
    old = [detail(index, capable=index % 7 != 0) for index in range(3_000)]
    roster.replace(tenant, old, NOW, 3)

    class CrashBeforeSwitch(RegistrationRoster):
        def _switch(self, *args: Any) -> None:
            raise RuntimeError("process died after writing the chunks")

    crashing = CrashBeforeSwitch(roster.service, roster.table.table_name.removesuffix("regroster"))
    new = [detail(index, capable=True) for index in range(5_000)]
    with pytest.raises(RuntimeError):
        crashing.replace(tenant, new, NOW + timedelta(days=1), 5)
    loaded = roster.load(tenant)
    assert loaded is not None
    assert (loaded.read_at, loaded.pages, len(loaded.rows)) == (NOW, 3, 3_000)
    assert list(loaded.rows.values()) == old

    # The next write switches generations and deletes every other one, the crashed one included.
    roster.replace(tenant, new, NOW + timedelta(days=2), 5)
    loaded = roster.load(tenant)
    assert loaded is not None and list(loaded.rows.values()) == new
    keys = [e["RowKey"] for e in roster.table.query_entities("PartitionKey eq @p", parameters={"p": tenant})]
    generation = roster.table.get_entity(tenant, HEADER_ROW)["generation"]
    assert all(key == HEADER_ROW or key.startswith(f"g{generation}|") for key in keys)

    # An append on a roster another scan replaced meanwhile changes nothing.
    stale = roster.load(tenant)
    assert stale is not None
    roster.replace(tenant, old, NOW + timedelta(days=3), 3)
    assert not roster.append(tenant, stale, [detail(90_000, capable=False)], ["lagging-user"])
    current = roster.load(tenant)
    assert current is not None and list(current.rows.values()) == old and current.absent == frozenset()
    assert roster.append(tenant, current, [detail(90_000, capable=False)], ["lagging-user"])
    appended = roster.load(tenant)
    assert appended is not None and appended.read_at == NOW + timedelta(days=3)
    assert list(appended.rows.values()) == [*old, detail(90_000, capable=False)]
    assert appended.absent == {"lagging-user"}
    keys = [e["RowKey"] for e in roster.table.query_entities("PartitionKey eq @p", parameters={"p": tenant})]

    # A generation missing a chunk (another writer deleted it) is no roster: the scan reads whole.
    # (The refused append left a chunk in the replaced generation: garbage the next replace deletes.)
    in_use = f"g{appended.generation}|"
    roster.table.delete_entity(tenant, next(key for key in keys if key.startswith(in_use)))
    assert roster.load(tenant) is None


def test_a_100000_user_roster_fits_in_a_few_entities(roster: RegistrationRoster) -> None:
    tenant = str(uuid.uuid4())
    rows = [detail(index, capable=index % 20 != 0, admin=index % 1000 == 0) for index in range(100_000)]
    chunks, users = pack(rows)
    assert users == 100_000 and len(chunks) <= 15
    roster.replace(tenant, rows, NOW, 101)
    loaded = roster.load(tenant)
    assert loaded is not None and loaded.pages == 101
    assert list(loaded.rows.values()) == rows


def detail(index: int, *, capable: bool, admin: bool = False) -> RegistrationDetail:
    methods = ("microsoftAuthenticatorPush", "mobilePhone") if capable else (("email",) if index % 2 else ())
    return RegistrationDetail(
        id=str(uuid.UUID(int=index + 1)),
        user_principal_name="",
        user_display_name="",
        user_type="guest" if index % 50 == 1 else "member",
        is_admin=admin,
        is_mfa_capable=capable,
        is_mfa_registered=capable,
        methods_registered=methods,
    )


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("$filter=isAdmin eq true", 400),
        ("$filter=userType eq 'guest'", 400),
        ("$filter=isMfaCapable eq false and isAdmin eq true", 400),
        ("$filter=isMfaCapable ne true", 400),
        ("$filter=lastUpdatedDateTime ge 2026-01-01T00:00:00Z", 400),
        ("$filter=isMfaCapable eq false", 200),
        ("$filter=methodsRegistered/any(m: m eq 'email')", 200),
        ("$filter=startswith(userPrincipalName,'user')", 200),
    ],
)
def test_the_simulator_accepts_only_the_documented_registration_filters(
    sim: TenantSimulator, query: str, status: int
) -> None:
    with raw_client(sim, LARGE) as http:
        response = http.get(f"/v1.0{REPORT_PATH}?{query}")
    assert response.status_code == status, response.text
    if status == 400:
        assert response.json()["error"]["code"] == "BadRequest"
    elif "isMfaCapable" in query:
        rows = response.json()["value"]
        assert rows and all(row["isMfaCapable"] is False for row in rows)
        expected = [r for r in sim.tenant(LARGE).user_registration_details if not r["isMfaCapable"]]
        assert {row["id"] for row in rows} == {r["id"] for r in expected}


def test_the_simulator_serves_one_users_row_and_404_for_a_user_the_report_lacks(sim: TenantSimulator) -> None:
    tenant = sim.tenant(SMALL)
    reported = tenant.user_registration_details[0]
    lacking = next(
        user["id"]
        for user in tenant.users
        if user.get("accountEnabled", True) and not any(r["id"] == user["id"] for r in tenant.user_registration_details)
    )
    with raw_client(sim, SMALL) as http:
        found = http.get(f"/v1.0{REPORT_PATH}/{reported['id']}")
        missing = http.get(f"/v1.0{REPORT_PATH}/{lacking}")
        refused = http.get(f"/v1.0{REPORT_PATH}/{reported['id']}?$select=id")
    assert found.status_code == 200
    assert {key: value for key, value in found.json().items() if not key.startswith("@odata")} == reported
    assert missing.status_code == 404
    assert refused.status_code == 400  # the page documents no query options


@pytest.mark.parametrize(("plan", "second_read"), [(None, "filtered"), (ReadPlan.full_reads(), "full")])
def test_the_scanner_keeps_the_roster_beside_its_store_and_reads_as_its_plan_says(
    sim: TenantSimulator,
    scan_store: ScanStore,
    monkeypatch: pytest.MonkeyPatch,
    plan: ReadPlan | None,
    second_read: str,
) -> None:
    pace_to(sim, monkeypatch)
    settings = secret_settings(sim)
    scanner = Scanner(settings, scan_store) if plan is None else Scanner(settings, scan_store, read_plan=plan)
    reads = []
    for _ in range(2):
        sim.clear_requests()
        result = run(scanner.scan(LARGE))
        assert result.report is not None
        check = next(c for c in result.report.to_document()["checks"] if c["id"] == "mfa.registration")
        assert {f["subject_id"] for f in check["findings"]} == expected_mfa_registration_subjects(sim.tenant(LARGE))
        reads.append((check["evidence"]["registration_read"], whole_pages(sim, LARGE)))
    assert reads == [("full", 3), (second_read, 3 if second_read == "full" else 0)]
    roster = RegistrationRoster(scan_store.service, scan_store.prefix)
    try:
        assert (roster.load(LARGE) is not None) == (plan is None)
    finally:
        scan_store.service.delete_table(roster.table.table_name)
        roster.close()


def test_a_roster_store_that_fails_costs_a_full_read_not_the_scan(
    sim: TenantSimulator, service: TableServiceClient, caplog: pytest.LogCaptureFixture
) -> None:
    # Its table was never created: every load and write fails.
    broken = RegistrationRoster(service, "t" + uuid.uuid4().hex[:12])
    try:
        for hours in (0, 1):
            snapshot = collect(sim, LARGE, NOW + timedelta(hours=hours), broken)
            assert snapshot.registration_read is not None and snapshot.registration_read.kind == "full"
            assert whole_pages(sim, LARGE) == 3
            assert subjects(outcome(sim, snapshot)) == expected_mfa_registration_subjects(sim.tenant(LARGE))
    finally:
        broken.close()
    assert "registration roster not stored" in caplog.text


@pytest.mark.parametrize("status", [500, 400])
def test_a_filtered_read_that_fails_is_answered_by_a_full_read(
    sim: TenantSimulator, roster: RegistrationRoster, status: int
) -> None:
    """The filter is only a saving: a server error or a refused `isMfaCapable eq false` read
    (not a sign-in, permission or licence refusal) costs a full read, not the day's verdict."""
    collect(sim, LARGE, NOW, roster)
    later = NOW + timedelta(hours=6)
    sim.inject_fault(REPORT_PATH + "$", status=status)  # the next report page: the filtered one
    snapshot = collect(sim, LARGE, later, roster)
    # A fault is answered before the tenant is known: its record names none.
    failed = [r for r in sim.requests if r.path.endswith(REPORT_PATH) and r.status == status]
    assert len(failed) == 1 and "isMfaCapable%20eq%20false" in failed[0].query
    assert snapshot.registration_read is not None
    assert (snapshot.registration_read.kind, snapshot.registration_read.as_of) == ("full", later)
    assert whole_pages(sim, LARGE) == 3
    result = outcome(sim, snapshot)
    assert result.evidence["registration_read"] == "full"
    assert result == outcome(sim, collect(sim, LARGE, later, None, plan=ReadPlan.full_reads()))
    assert subjects(result) == expected_mfa_registration_subjects(sim.tenant(LARGE))


def test_the_filtered_page_is_read_before_the_admins_are_awaited(
    sim: TenantSimulator, roster: RegistrationRoster
) -> None:
    """Who the admins are waits on the user list, service principals and role-assignable groups:
    the filtered page need not wait for them, only the admins' reads by id do."""
    from partnerguard.collect import read_users
    from partnerguard.registration_read import read_registration

    collect(sim, LARGE, NOW, roster)
    sim.clear_requests()
    pages_when_asked: list[int] = []
    admins = admin_user_ids(sim.tenant(LARGE))

    async def admin_ids() -> set[str]:
        pages_when_asked.append(len(filtered_pages(sim, LARGE)))
        return admins

    async def go() -> Any:
        settings = secret_settings(sim)
        async with GraphClient(settings, LARGE, pacer=fast_pacer(), retry_delay_seconds=0.05) as client:
            return await read_registration(
                client,
                LARGE,
                NOW + timedelta(hours=1),
                read_users(client),
                include_guests=False,
                roster=roster,
                admin_ids=admin_ids(),
            )

    read = run(go())
    assert read.info.kind == "filtered"
    assert pages_when_asked == [1]
    assert read.admin_reads == len(admins) and admin_reads(sim, LARGE) == sorted(admins)

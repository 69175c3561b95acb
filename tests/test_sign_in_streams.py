"""Filtered and resumable sign-in reads (issue 16) over the tenant simulator and Azurite.

Every read goes through the real msgraph transport to the simulator over HTTPS and stores in
Azurite. The deadline's clock is the number of sign-in pages the simulator has served, so "stop
after k pages" is exact and needs no sleeping. "Reference" stores read the same log with
full reads in one go: the baseline every other way of reading must reproduce.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import pytest
from azure.data.tables import TableServiceClient

import partnerguard.sign_in_streams as sign_in_streams
from checks import legacy_auth_sign_ins, sam_password_grant, sign_ins_single_factor
from partnerguard.graph.client import GraphClient
from partnerguard.graph.pacing import ApiClass, ClassLimits, Pacer
from partnerguard.model import (
    CheckContext,
    CheckOutcome,
    SignInAggregate,
    SignInReadState,
    Status,
    TenantSnapshot,
    Unavailable,
)
from partnerguard.read_plan import SignInFilterMode
from partnerguard.sign_in_collection import WATERMARK_OVERLAP, SignInCollection, collect_sign_ins
from partnerguard.sign_in_streams import FILTERED_REQUESTS, INTERACTIVE, LEGACY_CLIENT_APPS, NON_INTERACTIVE
from partnerguard.storage.sign_in_aggregates import AggregateRecord, SignInStore, StreamState
from testbed.azurite import AzuriteProcess
from testbed.simulator import TenantScenario, TenantSimulator, bundled_scenarios, generate_tenant
from testbed.simulator.generate import generate_sign_ins, make_sign_in
from testbed.simulator.query_options import QueryError, parse_query
from tests.graph_sim import run, secret_settings
from tests.sign_in_builders import APP, OTHER_USER, USER, legacy, sign_in

pytestmark = [pytest.mark.simulator, pytest.mark.azurite]

TENANT = "5e1f0000-1111-4222-8333-444444444444"
BIG = "5e1f0000-2222-4222-8333-444444444444"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WEEK = timedelta(hours=168)
SIGN_INS_PATH = "/beta/auditLogs/signIns"
SIGN_IN_CHECKS = (legacy_auth_sign_ins, sign_ins_single_factor, sam_password_grant)
UNPACED = Pacer({api_class: ClassLimits(per_tenant=None, per_process=None) for api_class in ApiClass})
BIG_USERS = 150


@pytest.fixture(scope="module")
def sim() -> Iterator[TenantSimulator]:
    big = generate_tenant(BIG, BIG_USERS, seed=5)
    big.sign_ins = []
    generate_sign_ins(big, NOW, 168, single_factor_share=0.01, seed=3)
    # Multi-factor sign-ins through legacy clients that can do MFA: only the legacy queries find them.
    user = big.users[7]
    for index, app in enumerate(("Exchange ActiveSync", "IMAP4", "Exchange Web Services")):
        big.sign_ins.append(
            make_sign_in(
                f"00000000-0000-4000-8000-00000000010{index}",
                (NOW - timedelta(hours=10 + index)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                user,
                home_tenant_id=BIG,
                app_id=APP,
                app_display_name="Mail",
                client_app_used=app,
                authentication_requirement="multiFactorAuthentication",
                event_type=NON_INTERACTIVE if index else INTERACTIVE,
            )
        )
    tenants = [generate_tenant(TENANT, 5, seed=21), big, *bundled_scenarios()]
    with TenantSimulator(tenants, enforce_limits=False) as simulator:
        yield simulator


@pytest.fixture(autouse=True)
def fresh_tenant(sim: TenantSimulator) -> Iterator[None]:
    sim.faults.clear()
    sim.tenant(TENANT).sign_ins = []
    sim.clear_requests()
    yield


@pytest.fixture
def service(azurite: AzuriteProcess) -> Iterator[TableServiceClient]:
    client = TableServiceClient.from_connection_string(azurite.connection_string)
    yield client
    client.close()


@pytest.fixture
def stores(service: TableServiceClient, table_prefix: str) -> Iterator[Callable[..., SignInStore]]:
    """Fresh sign-in stores, each with its own tables (`kind` lets a test make a crashing one)."""
    made: list[SignInStore] = []

    def make(name: str, kind: type[SignInStore] = SignInStore, **options: Any) -> SignInStore:
        store = kind(service, f"{table_prefix}{name}", **options)
        store.ensure_tables()
        made.append(store)
        return store

    yield make
    for store in made:
        for table in (store.aggregates_table, store.watermarks_table):
            service.delete_table(table.table_name)
        store.close()


def sign_in_requests(sim: TenantSimulator) -> list[str]:
    """The $filter of every sign-in page the simulator served, in order."""
    return [dict(parse_qsl(record.query))["$filter"] for record in sim.requests if record.path == SIGN_INS_PATH]


def collect(
    sim: TenantSimulator,
    store: SignInStore,
    now: datetime,
    tenant_id: str = TENANT,
    *,
    plan: SignInFilterMode = "never",
    user_count: int | None = None,
    pages: int | None = None,
) -> SignInCollection:
    """One scan's sign-in read; with `pages`, its deadline passes once that many more sign-in
    pages have been served (the clock counts pages)."""
    settings = secret_settings(sim)

    def clock() -> float:
        return float(len(sign_in_requests(sim)))

    async def go() -> SignInCollection:
        async with GraphClient(settings, tenant_id, pacer=UNPACED, retry_delay_seconds=0.05) as client:
            return await collect_sign_ins(
                client,
                store,
                tenant_id,
                now,
                WEEK,
                plan=plan,
                user_count=user_count,
                deadline=None if pages is None else clock() + pages,
                clock=clock,
            )

    return run(go())


def aggregates(result: SignInCollection) -> list[SignInAggregate]:
    assert not isinstance(result.aggregates, Unavailable), result.aggregates
    return list(result.aggregates)


def in_window(found: Sequence[SignInAggregate], rule: str, now: datetime) -> set[str]:
    return {a.subject_id for a in found if a.rule == rule and a.last_seen >= now - WEEK}


def judged(
    tenant_id: str, now: datetime, found: Sequence[SignInAggregate], read: SignInReadState | None
) -> dict[str, CheckOutcome]:
    snapshot = TenantSnapshot(tenant_id, tenant_id, "customer", now, sign_in_aggregates=tuple(found), sign_in_read=read)
    context = CheckContext(now=now)
    return {check.METADATA.id: check.execute(snapshot, context) for check in SIGN_IN_CHECKS}


def add(sim: TenantSimulator, sign_ins: Iterable[dict[str, Any]]) -> None:
    sim.tenant(TENANT).sign_ins.extend(sign_ins)


def hours_ago(hours: float, now: datetime = NOW) -> datetime:
    return now - timedelta(hours=hours)


# -- the three modes agree, with each other and with the ground truth ---------------------------


def with_sign_ins(tenants: Iterable[TenantScenario]) -> list[TenantScenario]:
    return [tenant for tenant in tenants if tenant.has_entra_premium and tenant.sign_ins]


@pytest.mark.parametrize("name", [t.display_name for t in with_sign_ins(bundled_scenarios())])
def test_every_mode_gives_the_same_aggregates_and_checks_as_the_ground_truth(
    sim: TenantSimulator, stores: Callable[..., SignInStore], name: str
) -> None:
    tenant = next(t for t in sim.tenants if t.display_name == name)
    now = datetime.now(UTC)  # bundled scenarios' times are relative to when they were loaded
    results = {
        plan: collect(sim, stores(plan), now, tenant.tenant_id, plan=plan, user_count=len(tenant.users))
        for plan in ("never", "always", "auto")
    }
    baseline = aggregates(results["never"])
    for plan, result in results.items():
        assert aggregates(result) == baseline, plan
        assert result.read is not None and result.read.complete
    assert set(results["always"].modes.values()) == {"filtered"}
    for rule in ("legacy-auth.sign-ins", "sign-ins.single-factor", "sam.password-grant"):
        assert in_window(baseline, rule, now) == tenant.sign_in_subjects(rule, now), rule
    outcomes = {plan: judged(tenant.tenant_id, now, aggregates(r), r.read) for plan, r in results.items()}
    assert outcomes["always"] == outcomes["auto"] == outcomes["never"]


def test_filtered_reads_ask_fewer_pages_than_full_reads_of_a_large_tenant(
    sim: TenantSimulator, stores: Callable[..., SignInStore]
) -> None:
    full = collect(sim, stores("full"), NOW, BIG, plan="never")
    full_pages = len(sign_in_requests(sim))
    sim.clear_requests()
    filtered = collect(sim, stores("filtered"), NOW, BIG, plan="always")
    filtered_pages = len(sign_in_requests(sim))
    sim.clear_requests()
    auto = collect(sim, stores("auto"), NOW, BIG, plan="auto", user_count=BIG_USERS)
    auto_pages = len(sign_in_requests(sim))

    big = sim.tenant(BIG)
    assert full_pages >= len(big.sign_ins) // 1000  # every sign-in, 1,000 a page
    assert filtered_pages == 2 * FILTERED_REQUESTS  # nothing matches more than a page's worth
    assert aggregates(filtered) == aggregates(full) == aggregates(auto)
    assert {a.subject_id for a in aggregates(full) if a.rule == "legacy-auth.sign-ins"} >= {
        f"{big.users[7]['id']}|exchange activesync",
        f"{big.users[7]['id']}|imap4",
        f"{big.users[7]['id']}|exchange web services",
    }
    # 150 users over a week: ~3,000 interactive sign-ins (4 pages: full is cheaper), ~30,000
    # non-interactive ones (31 pages: filtered is).
    assert auto.modes == {INTERACTIVE: "full", NON_INTERACTIVE: "filtered"}
    assert auto_pages < filtered_pages < full_pages  # auto takes the cheaper read of each


def test_the_legacy_queries_name_each_documented_client_exactly(
    sim: TenantSimulator, stores: Callable[..., SignInStore]
) -> None:
    collect(sim, stores("a"), NOW, plan="always")
    filters = sign_in_requests(sim)
    assert len(filters) == 2 * FILTERED_REQUESTS
    for event_type in (INTERACTIVE, NON_INTERACTIVE):
        mine = [f for f in filters if f"t eq '{event_type}'" in f]
        assert all("status/errorCode eq 0" in f for f in mine)
        assert sum("authenticationRequirement eq 'singleFactorAuthentication'" in f for f in mine) == 1
        assert sorted(f.split("clientAppUsed eq '")[1].split("'")[0] for f in mine if "clientAppUsed" in f) == sorted(
            app.replace("'", "''") for app in LEGACY_CLIENT_APPS
        )


# -- switching modes -----------------------------------------------------------------------------


def test_switching_full_filtered_full_never_double_counts_nor_loses_a_sign_in(
    sim: TenantSimulator, stores: Callable[..., SignInStore]
) -> None:
    switching, reference = stores("switching"), stores("reference")
    batches = [
        [legacy(hours_ago(30)), legacy(hours_ago(1.5)), sign_in(hours_ago(1), user_id=OTHER_USER, protocol="ropc",
                                                                 requirement="singleFactorAuthentication")],
        [legacy(NOW + timedelta(minutes=20)), legacy(NOW + timedelta(minutes=40), client_app="POP3"),
         sign_in(NOW + timedelta(minutes=50), client_app="Exchange ActiveSync", event_type=NON_INTERACTIVE)],
        [legacy(NOW + timedelta(minutes=70)), sign_in(NOW + timedelta(minutes=80), user_id=OTHER_USER,
                                                       protocol="ropc", requirement="singleFactorAuthentication")],
    ]  # fmt: skip
    plans: list[SignInFilterMode] = ["never", "always", "never"]
    for index, (batch, plan) in enumerate(zip(batches, plans, strict=True)):
        add(sim, batch)
        now = NOW + timedelta(hours=index)
        switched = collect(sim, switching, now, plan=plan)
        assert switched.modes == {INTERACTIVE: plan_mode(plan), NON_INTERACTIVE: plan_mode(plan)}
        assert aggregates(switched) == aggregates(collect(sim, reference, now, plan="never")), index
        # The other mode's streams are gone; the new ones count only what is newer than the switch.
        streams = switching.streams(TENANT)
        assert {state.mode for state in streams.values()} == {plan_mode(plan)}
    final = {(a.rule, a.subject_id): a.count for a in aggregates(switched)}
    assert final[("legacy-auth.sign-ins", f"{USER}|imap4")] == 4
    assert final[("sam.password-grant", f"{APP}|{OTHER_USER}")] == 2
    assert final[("legacy-auth.sign-ins", f"{USER}|exchange activesync")] == 1


def plan_mode(plan: SignInFilterMode) -> str:
    return "full" if plan == "never" else "filtered"


def test_auto_switches_a_tenant_to_full_reads_once_its_range_is_short(
    sim: TenantSimulator, stores: Callable[..., SignInStore]
) -> None:
    store = stores("auto")
    add(sim, [legacy(hours_ago(3)), legacy(NOW + timedelta(minutes=5))])
    # A week of 1,000 users: ~20,000 interactive sign-ins expected, more than 14 requests' worth.
    first = collect(sim, store, NOW, plan="auto", user_count=1000)
    assert first.modes == {INTERACTIVE: "filtered", NON_INTERACTIVE: "filtered"}
    # Fifteen minutes plus the overlap: ~1 and ~3 pages; the full read is cheaper.
    later = NOW + timedelta(minutes=15)
    second = collect(sim, store, later, plan="auto", user_count=1000)
    assert second.modes == {INTERACTIVE: "full", NON_INTERACTIVE: "full"}
    state = store.streams(TENANT)[INTERACTIVE]
    assert (state.floor, state.read_through) == (NOW, later)
    assert {(a.rule, a.count) for a in aggregates(second)} == {
        ("legacy-auth.sign-ins", 2),
        ("sign-ins.single-factor", 2),
    }


# -- resumable across executions -----------------------------------------------------------------


def spread(count: int, newest: datetime, **fields: Any) -> list[dict[str, Any]]:
    """`count` sign-ins a minute apart, on whole seconds, newest first."""
    return [sign_in(newest - timedelta(minutes=index), **fields) for index in range(count)]


def resumable_log() -> list[dict[str, Any]]:
    """2,500 interactive sign-ins over two days (3 pages) with legacy ones among the newest and
    ROPC ones only among the oldest; 1,200 non-interactive ones (2 pages)."""
    log = spread(2500, hours_ago(1))
    for index in range(0, 200, 10):
        log[index] = legacy(parse(log[index]["createdDateTime"]), user_id=OTHER_USER)
    for index in range(2300, 2500, 50):
        log[index] = sign_in(
            parse(log[index]["createdDateTime"]), protocol="ropc", requirement="singleFactorAuthentication"
        )
    return log + spread(1200, hours_ago(2), event_type=NON_INTERACTIVE, client_app="Mobile Apps and Desktop clients")


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def test_a_read_stopped_at_its_deadline_continues_without_re_reading_or_double_counting(
    sim: TenantSimulator, stores: Callable[..., SignInStore]
) -> None:
    add(sim, resumable_log())
    store, reference = stores("resumed"), stores("reference")
    later = NOW + timedelta(minutes=10)

    stopped = collect(sim, store, NOW, pages=2)
    assert sign_in_requests(sim) == [full_filter(NOW - WEEK, NOW, INTERACTIVE)] * 2
    assert stopped.read is not None and not stopped.read.complete and stopped.read.pages == 2
    frontier = hours_ago(1) - timedelta(minutes=1999)  # the oldest of the first 2,000
    # Every sign-in newer than `read_back_to` is read: with the non-interactive stream not yet
    # begun, that is only "now" (conservative; the check says so rather than overstate it).
    assert stopped.read.read_back_to == NOW
    state = store.streams(TENANT)[INTERACTIVE]
    assert (state.range_since, state.range_until, state.frontier, state.range_pages) == (NOW - WEEK, NOW, frontier, 2)

    # What the checks say meanwhile: the legacy sign-ins were among the newest, ROPC's not yet read.
    partial = judged(TENANT, NOW, aggregates(stopped), stopped.read)
    assert partial["legacy-auth.sign-ins"].status == Status.FAIL
    assert partial["legacy-auth.sign-ins"].evidence["signInRead"] == "incomplete"
    assert partial["legacy-auth.sign-ins"].evidence["readBackTo"] == NOW.isoformat()
    assert partial["sam.password-grant"].status == Status.NOT_ASSESSED
    reason = partial["sam.password-grant"].reason or ""
    assert reason.startswith(f"sign-in log read in progress: read back to {NOW.isoformat()} of the 168-hour")
    assert reason.endswith("it continues in the next execution")

    sim.clear_requests()
    resumed = collect(sim, store, later)
    assert sign_in_requests(sim) == [
        full_filter(NOW - WEEK, frontier, INTERACTIVE),  # the rest of the range: one page, nothing re-read
        full_filter(later - WEEK, later, NON_INTERACTIVE),  # the stream not yet begun
        full_filter(later - WEEK, later, NON_INTERACTIVE),
        full_filter(NOW - WATERMARK_OVERLAP, later, INTERACTIVE),  # then the first up to now
    ]
    assert resumed.read is not None and resumed.read.complete

    sim.clear_requests()
    long_run = collect(sim, reference, later)
    assert len(sign_in_requests(sim)) == 5
    assert aggregates(resumed) == aggregates(long_run)
    assert judged(TENANT, later, aggregates(resumed), resumed.read) == judged(
        TENANT, later, aggregates(long_run), long_run.read
    )
    counts = {(a.rule, a.subject_id): a.count for a in aggregates(resumed)}
    assert counts[("legacy-auth.sign-ins", f"{OTHER_USER}|imap4")] == 20
    assert counts[("sam.password-grant", f"{APP}|{USER}")] == 4


def full_filter(since: datetime, until: datetime, event_type: str) -> str:
    def literal(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return (
        f"createdDateTime ge {literal(since)} and createdDateTime le {literal(until)} "
        f"and signInEventTypes/any(t: t eq '{event_type}')"
    )


class CrashAfterAggregates(SignInStore):
    """Dies once, at the checkpoint of the `at`-th page: its aggregates are stored, it is not."""

    def __init__(self, service: TableServiceClient, prefix: str, at: int) -> None:
        super().__init__(service, prefix)
        self.at = at

    def save_stream(self, tenant_id: str, state: StreamState, now: datetime) -> None:
        if state.range_pages == self.at and self.at:
            self.at = 0
            raise RuntimeError("simulated crash before the checkpoint")
        super().save_stream(tenant_id, state, now)

    def saved_aggregates(self, tenant_id: str) -> list[AggregateRecord]:
        return list(self.aggregates(tenant_id))


def test_a_crash_between_a_pages_aggregates_and_its_checkpoint_recounts_nothing(
    sim: TenantSimulator, stores: Callable[..., SignInStore], service: TableServiceClient
) -> None:
    add(sim, resumable_log())
    crashing = stores("crashing", CrashAfterAggregates, at=2)
    with pytest.raises(RuntimeError, match="simulated crash"):
        collect(sim, crashing, NOW)
    # Page 2's aggregates are stored, the checkpoint still says page 1.
    state = crashing.streams(TENANT)[INTERACTIVE]
    assert state.range_pages == 1
    assert sum(r.count for r in crashing.aggregates(TENANT) if r.rule == "legacy-auth.sign-ins") == 20

    sim.clear_requests()
    recovered = collect(sim, crashing, NOW)
    assert sign_in_requests(sim)[0] == full_filter(NOW - WEEK, state.frontier or NOW, INTERACTIVE)
    long_run = collect(sim, stores("reference"), NOW)
    assert aggregates(recovered) == aggregates(long_run)


def test_a_read_that_never_starts_a_page_reports_no_progress(
    sim: TenantSimulator, stores: Callable[..., SignInStore]
) -> None:
    add(sim, resumable_log())
    nothing = collect(sim, stores("a"), NOW, pages=0)
    assert sign_in_requests(sim) == []
    assert nothing.read is not None and not nothing.read.complete and not nothing.read.progressed
    assert judged(TENANT, NOW, aggregates(nothing), nothing.read)["legacy-auth.sign-ins"].status == Status.NOT_ASSESSED


def test_a_first_read_in_many_executions_ends_with_the_findings_of_one_long_run(
    sim: TenantSimulator, stores: Callable[..., SignInStore]
) -> None:
    """The shape of a 100,000-user tenant's first read (thousands of pages), scaled down: a
    budget of a few pages per execution, each a minute after the last, in full and filtered
    mode, until the read completes. A budget needs at least a page per stream to catch up."""
    add(sim, resumable_log())
    # Enough single-factor sign-ins for the filtered single-factor stream to span three pages.
    add(sim, spread(2500, hours_ago(3), user_id=OTHER_USER, requirement="singleFactorAuthentication"))
    # Each execution must fit a page per stream (2 full, 28 filtered) to catch up with "now".
    budgets: dict[SignInFilterMode, int] = {"never": 2, "always": 29}
    for plan, budget in budgets.items():
        store = stores(f"steps{plan}")
        now, executions = NOW, 0
        while True:
            executions += 1
            result = collect(sim, store, now, plan=plan, pages=budget)
            assert result.read is not None
            if result.read.complete:
                break
            assert result.read.progressed
            now += timedelta(minutes=1)
            assert executions < 40
        long_run = collect(sim, stores(f"long{plan}"), now, plan=plan)
        assert aggregates(result) == aggregates(long_run), plan
        assert judged(TENANT, now, aggregates(result), result.read) == judged(
            TENANT, now, aggregates(long_run), long_run.read
        )
        assert executions >= 2  # it did span executions


# -- the simulator holds the client to what Microsoft documents -----------------------------------


@pytest.mark.parametrize(
    "documented",
    [
        "status/errorCode eq 0",
        "authenticationRequirement eq 'singleFactorAuthentication'",
        "startswith(authenticationRequirement,'single')",
        "clientAppUsed eq 'IMAP4'",
        "createdDateTime ge 2026-11-26T00:00:00Z and createdDateTime le 2026-11-26T12:00:00Z",
        "signInEventTypes/any(t: t ne 'interactiveUser')",
    ],
)
def test_the_simulator_accepts_the_documented_sign_in_filters(documented: str) -> None:
    assert parse_query("signIns", [("$filter", documented)], {}, True).filter is not None


@pytest.mark.parametrize(
    "undocumented",
    [
        "authenticationProtocol eq 'ropc'",  # no $filter documented at all
        "clientAppUsed ne 'Browser'",  # eq only
        "startswith(clientAppUsed,'IMAP')",
        "status/errorCode ne 0",
        "createdDateTime gt 2026-11-26T00:00:00Z",
    ],
)
def test_the_simulator_refuses_sign_in_filters_microsoft_does_not_document(undocumented: str) -> None:
    with pytest.raises(QueryError) as refused:
        parse_query("signIns", [("$filter", undocumented)], {}, True)
    assert refused.value.status == 400


def test_the_simulators_sign_in_eq_compares_strings_exactly() -> None:
    parsed = parse_query("signIns", [("$filter", "clientAppUsed eq 'IMAP4'")], {}, True).filter
    assert parsed is not None
    assert parsed({"clientAppUsed": "IMAP4"}) and not parsed({"clientAppUsed": "imap4"})
    # Directory objects keep Graph's case-insensitive comparison.
    users = parse_query("users", [("$filter", "userType eq 'guest'")], {}, True).filter
    assert users is not None and users({"userType": "Guest"})


def test_bundled_scenarios_log_only_what_entra_id_logs() -> None:
    for tenant in bundled_scenarios():
        for item in tenant.sign_ins:
            assert item.get("authenticationRequirement") in ("singleFactorAuthentication", "multiFactorAuthentication")
            if item.get("authenticationProtocol") == "ropc" and item["status"]["errorCode"] == 0:
                assert item["authenticationRequirement"] == "singleFactorAuthentication"
    user = {"id": USER, "displayName": "Isaiah", "userPrincipalName": "isaiah@contoso.example"}
    with pytest.raises(ValueError, match="ROPC"):
        make_sign_in(
            "x", "2026-11-26T10:00:00Z", user, home_tenant_id=TENANT, app_id=APP, app_display_name="App",
            client_app_used="Mobile Apps and Desktop clients", authentication_requirement="multiFactorAuthentication",
            authentication_protocol="ropc",
        )  # fmt: skip


# -- regressions from the review of the sign-in reads ---------------------------------------------


@pytest.mark.parametrize(("plan", "user_count"), [("always", None), ("auto", 10_000)])
def test_a_switch_waits_until_the_filtered_streams_read_through_the_same_instant(
    sim: TenantSimulator, stores: Callable[..., SignInStore], plan: SignInFilterMode, user_count: int | None
) -> None:
    """A deadline between filtered streams leaves them read through different instants; a switch
    to full mode then counts from its floor on, so a sign-in only a lagging stream had still to
    read would be folded but never counted. The switch waits until they are level."""
    store, reference = stores("switching"), stores("reference")
    add(sim, [sign_in(NOW + timedelta(minutes=10), requirement="singleFactorAuthentication")])
    first_plan: SignInFilterMode = "always" if plan == "always" else "auto"
    # Only the first stream (interactive single-factor) reads, through NOW, before the sign-in.
    collect(sim, store, NOW, plan=first_plan, user_count=user_count, pages=1)
    # The 27 streams never begun read first, through NOW + 20 minutes; the deadline stops the
    # read before the single-factor stream, the only one that finds the sign-in.
    later = NOW + timedelta(minutes=20)
    collect(sim, store, later, plan=first_plan, user_count=user_count, pages=2 * FILTERED_REQUESTS - 1)
    streams = store.streams(TENANT)
    assert {s.mode for s in streams.values()} == {"filtered"} and not any(s.in_progress for s in streams.values())
    assert streams[f"{INTERACTIVE}|sf"].read_through == NOW
    assert {s.read_through for k, s in streams.items() if k != f"{INTERACTIVE}|sf"} == {later}

    # The plan ("never"), or auto's estimate for a 35-minute range, now picks full mode.
    switch_plan: SignInFilterMode = "never" if plan == "always" else "auto"
    for minutes in (35, 50):
        now = NOW + timedelta(minutes=minutes)
        result = collect(sim, store, now, plan=switch_plan, user_count=user_count)
        assert result.read is not None and result.read.complete
        counts = {(a.rule, a.subject_id): a.count for a in aggregates(result)}
        assert counts == {("sign-ins.single-factor", f"{USER}|{APP}"): 1}
        assert aggregates(result) == aggregates(collect(sim, reference, now, plan="never")), minutes
    # The first of the two finished in filtered mode (levelling the streams); the second switched.
    assert result.modes[INTERACTIVE] == "full"


def test_a_legacy_value_added_to_filtered_mode_does_not_recount_what_full_mode_counted(
    sim: TenantSimulator, stores: Callable[..., SignInStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new legacy clientAppUsed value adds a stream to filtered mode; what the earlier full
    mode counted (everything up to the siblings' floor) the new stream must not count again."""
    store, reference = stores("added"), stores("reference")
    add(sim, [sign_in(hours_ago(5), client_app="Foo Legacy", requirement="multiFactorAuthentication")])
    key = ("legacy-auth.sign-ins", f"{USER}|foo legacy")
    assert {(a.rule, a.subject_id): a.count for a in aggregates(collect(sim, store, NOW, plan="never"))} == {key: 1}
    later = NOW + timedelta(minutes=15)
    switched = collect(sim, store, later, plan="always")
    assert switched.modes[INTERACTIVE] == "filtered"
    assert {(a.rule, a.subject_id): a.count for a in aggregates(switched)} == {key: 1}

    # A release documents one more legacy value: filtered mode gains a stream for it.
    monkeypatch.setattr(sign_in_streams, "LEGACY_CLIENT_APPS", (*LEGACY_CLIENT_APPS, "Foo Legacy"))
    latest = NOW + timedelta(minutes=30)
    sim.clear_requests()
    result = collect(sim, store, latest, plan="always")
    assert any("clientAppUsed eq 'Foo Legacy'" in f for f in sign_in_requests(sim))  # the new stream read
    assert {(a.rule, a.subject_id): a.count for a in aggregates(result)} == {key: 1}
    new = store.streams(TENANT)[f"{INTERACTIVE}|legacy:Foo Legacy"]
    assert new.floor == store.streams(TENANT)[f"{INTERACTIVE}|sf"].floor == NOW  # the switch's
    assert aggregates(result) == aggregates(collect(sim, reference, latest, plan="never"))


def test_a_page_that_only_re_serves_folded_sign_ins_is_no_progress(
    sim: TenantSimulator, stores: Callable[..., SignInStore]
) -> None:
    """1,001 sign-ins within one second: a read stopped after the first page resumes from that
    second (the $filter's precision), and with a one-page budget Graph serves the same 1,000
    again, all folded before. That execution read a page but moved nothing on: queuing a
    continuation for it would repeat it for ever."""
    second = hours_ago(2)
    add(sim, [sign_in(second + timedelta(microseconds=index)) for index in range(1001)])
    crowded = second + timedelta(microseconds=1)  # the oldest of the newest 1,000
    store = stores("crowded")
    first = collect(sim, store, NOW, pages=1)
    assert first.read is not None and not first.read.complete and first.read.progressed
    state = store.streams(TENANT)[INTERACTIVE]
    assert (state.frontier, len(state.frontier_ids)) == (crowded, 1)

    sim.clear_requests()
    again = collect(sim, store, NOW, pages=1)
    assert sign_in_requests(sim) == [full_filter(NOW - WEEK, second + timedelta(seconds=1), INTERACTIVE)]
    assert again.read is not None and not again.read.complete and again.read.pages == 1
    assert not again.read.progressed
    resumed = store.streams(TENANT)[INTERACTIVE]
    assert (resumed.frontier, resumed.frontier_ids, resumed.range_read) == (  # nothing moved on
        state.frontier,
        state.frontier_ids,
        state.range_read,
    )

    # Without the one-page budget the read follows Graph's next page and completes.
    done = collect(sim, store, NOW)
    assert done.read is not None and done.read.complete
    assert aggregates(done) == aggregates(collect(sim, stores("reference"), NOW))

"""collect_sign_ins over the tenant simulator and Azurite: incremental reads, folding, errors.

The client paces itself to Graph's limits elsewhere (test_graph_pacing); here it runs unpaced
against a simulator that does not throttle, so that several scans of a tenant take seconds.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import subprocess
import sys
import tracemalloc
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from azure.data.tables import TableServiceClient

from partnerguard.graph.client import GraphClient
from partnerguard.graph.pacing import ApiClass, ClassLimits, Pacer
from partnerguard.model import SignInAggregate, Unavailable
from partnerguard.settings import Settings
from partnerguard.sign_in_collection import (
    INTERACTIVE,
    NON_INTERACTIVE,
    WATERMARK_OVERLAP,
    WINDOW_MARGIN,
    collect_sign_ins,
)
from partnerguard.storage.keys import tenant_key
from partnerguard.storage.sign_in_aggregates import AggregateRecord, SignInStore, StreamState
from testbed.azurite import AzuriteProcess
from testbed.simulator import TenantSimulator, generate_tenant
from tests.graph_sim import run, secret_settings
from tests.sign_in_builders import APP, OTHER_USER, USER, legacy, sign_in

pytestmark = [pytest.mark.simulator, pytest.mark.azurite]

TENANT = "51a0c0de-1111-4222-8333-444444444444"
UNLICENSED = "51a0c0de-2222-4222-8333-444444444444"
NO_AUDIT_PERMISSION = "51a0c0de-3333-4222-8333-444444444444"
BIG = "51a0c0de-4444-4222-8333-444444444444"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WEEK = timedelta(hours=168)
THIRD_USER = "0f3c2b1a-5d4e-4f60-8a7b-9c0d1e2f3a4b"
LEGACY_RULE = "legacy-auth.sign-ins"
SINGLE_FACTOR_RULE = "sign-ins.single-factor"
ROPC_RULE = "sam.password-grant"
SIGN_INS_PATH = "/beta/auditLogs/signIns"
REPO = Path(__file__).resolve().parents[1]

UNPACED = Pacer({api_class: ClassLimits(per_tenant=None, per_process=None) for api_class in ApiClass})


@pytest.fixture(scope="module")
def sim() -> Iterator[TenantSimulator]:
    no_audit = generate_tenant(NO_AUDIT_PERMISSION, 5, seed=13)
    no_audit.granted_permissions = {"User.Read.All", "Organization.Read.All", "Policy.Read.All"}
    tenants = [
        generate_tenant(TENANT, 5, seed=11),
        generate_tenant(UNLICENSED, 5, seed=12, licences=()),
        no_audit,
    ]
    with TenantSimulator(tenants, enforce_limits=False) as simulator:
        yield simulator


@pytest.fixture(autouse=True)
def fresh_tenant(sim: TenantSimulator) -> Iterator[None]:
    sim.faults.clear()
    sim.tenant(TENANT).sign_ins = []
    sim.clear_requests()
    yield
    sim.faults.clear()


@pytest.fixture
def service(azurite: AzuriteProcess) -> Iterator[TableServiceClient]:
    client = TableServiceClient.from_connection_string(azurite.connection_string)
    yield client
    client.close()


@pytest.fixture
def store(service: TableServiceClient, table_prefix: str) -> Iterator[SignInStore]:
    sign_in_store = SignInStore(service, prefix=table_prefix)
    sign_in_store.ensure_tables()
    yield sign_in_store
    for table in (sign_in_store.aggregates_table, sign_in_store.watermarks_table):
        service.delete_table(table.table_name)
    sign_in_store.close()


def scan(
    sim: TenantSimulator, store: SignInStore, now: datetime, tenant_id: str = TENANT, lookback: timedelta = WEEK
) -> list[SignInAggregate] | Unavailable:
    settings = secret_settings(sim)

    async def go() -> list[SignInAggregate] | Unavailable:
        async with GraphClient(settings, tenant_id, pacer=UNPACED, retry_delay_seconds=0.05) as client:
            result = (await collect_sign_ins(client, store, tenant_id, now, lookback)).aggregates
        return result if isinstance(result, Unavailable) else list(result)

    return run(go())


def aggregates_of(result: list[SignInAggregate] | Unavailable) -> dict[tuple[str, str], SignInAggregate]:
    assert not isinstance(result, Unavailable), result
    return {(aggregate.rule, aggregate.subject_id): aggregate for aggregate in result}


def counts_of(result: list[SignInAggregate] | Unavailable) -> dict[tuple[str, str], int]:
    return {key: aggregate.count for key, aggregate in aggregates_of(result).items()}


def sign_in_filters(sim: TenantSimulator) -> list[str]:
    """The $filter of every sign-in request the simulator answered, in order (paging included)."""
    return [dict(parse_qsl(record.query))["$filter"] for record in sim.requests if record.path == SIGN_INS_PATH]


def first_page_filters(sim: TenantSimulator) -> list[str]:
    return [
        dict(parse_qsl(record.query))["$filter"]
        for record in sim.requests
        if record.path == SIGN_INS_PATH and "$skiptoken" not in record.query
    ]


def expected_filter(since: datetime, until: datetime, event_type: str) -> str:
    def literal(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    return (
        f"createdDateTime ge {literal(since)} and createdDateTime le {literal(until)} "
        f"and signInEventTypes/any(t: t eq '{event_type}')"
    )


def add(sim: TenantSimulator, sign_ins: Iterable[dict[str, Any]], tenant_id: str = TENANT) -> None:
    sim.tenant(tenant_id).sign_ins.extend(sign_ins)


def hours_ago(hours: float, now: datetime = NOW) -> datetime:
    return now - timedelta(hours=hours)


# -- reading the right range -------------------------------------------------------------------


def test_first_scan_reads_the_whole_window_of_both_event_types(sim: TenantSimulator, store: SignInStore) -> None:
    add(
        sim,
        [
            legacy(hours_ago(1)),
            legacy(hours_ago(30)),
            legacy(hours_ago(169)),  # before the window: never read
            sign_in(hours_ago(2), requirement="singleFactorAuthentication", event_type=NON_INTERACTIVE),
            sign_in(hours_ago(3), user_id=OTHER_USER, protocol="ropc", requirement="singleFactorAuthentication"),
            legacy(hours_ago(4), user_id=THIRD_USER, error_code=50126),  # failed: counts for nothing
            sign_in(hours_ago(5)),  # MFA in a browser: no rule
        ],
    )
    counts = counts_of(scan(sim, store, NOW))
    assert counts == {
        (LEGACY_RULE, f"{USER}|imap4"): 2,
        (SINGLE_FACTOR_RULE, f"{USER}|{APP}"): 3,  # two legacy + one non-interactive
        (SINGLE_FACTOR_RULE, f"{OTHER_USER}|{APP}"): 1,
        (ROPC_RULE, f"{APP}|{OTHER_USER}"): 1,
    }
    assert sign_in_filters(sim) == [
        expected_filter(NOW - WEEK, NOW, INTERACTIVE),
        expected_filter(NOW - WEEK, NOW, NON_INTERACTIVE),
    ]
    single = aggregates_of(scan(sim, store, NOW))[(SINGLE_FACTOR_RULE, f"{USER}|{APP}")]
    assert single.event_types == (INTERACTIVE, NON_INTERACTIVE)
    assert (single.first_seen, single.last_seen) == (hours_ago(30), hours_ago(1))


def test_second_scan_reads_from_where_the_first_ended_less_the_overlap(
    sim: TenantSimulator, store: SignInStore
) -> None:
    add(sim, [legacy(hours_ago(3)), sign_in(hours_ago(5), event_type=NON_INTERACTIVE)])
    scan(sim, store, NOW)
    add(
        sim,
        [
            legacy(NOW + timedelta(hours=2)),
            sign_in(NOW + timedelta(hours=1), requirement="singleFactorAuthentication", event_type=NON_INTERACTIVE),
        ],
    )
    sim.clear_requests()
    later = NOW + timedelta(hours=6)
    counts = counts_of(scan(sim, store, later))
    # From the first scan's `until` (its now), not from its newest sign-in: a quiet stream does
    # not re-read its quiet hours.
    assert sign_in_filters(sim) == [
        expected_filter(NOW - WATERMARK_OVERLAP, later, INTERACTIVE),
        expected_filter(NOW - WATERMARK_OVERLAP, later, NON_INTERACTIVE),
    ]
    assert counts[(LEGACY_RULE, f"{USER}|imap4")] == 2
    assert counts[(SINGLE_FACTOR_RULE, f"{USER}|{APP}")] == 3
    # Stored aggregates are complete from the purge cutoff (window + margin) on.
    covered = later - WEEK - WINDOW_MARGIN
    streams = store.streams(TENANT)
    assert {key: (s.read_through, s.covered_from, s.in_progress) for key, s in streams.items()} == {
        INTERACTIVE: (later, covered, False),
        NON_INTERACTIVE: (later, covered, False),
    }


def test_a_scan_with_nothing_new_re_reads_the_overlap_and_counts_nothing_twice(
    sim: TenantSimulator, store: SignInStore
) -> None:
    add(sim, [legacy(hours_ago(h)) for h in (0.5, 1, 1.5)])
    first = counts_of(scan(sim, store, NOW))
    again = counts_of(scan(sim, store, NOW + timedelta(minutes=30)))
    assert first == again == {(LEGACY_RULE, f"{USER}|imap4"): 3, (SINGLE_FACTOR_RULE, f"{USER}|{APP}"): 3}


def test_a_late_sign_in_inside_the_overlap_is_folded_without_double_counting(
    sim: TenantSimulator, store: SignInStore
) -> None:
    add(sim, [legacy(hours_ago(1)), legacy(hours_ago(0.1), user_id=THIRD_USER)])
    scan(sim, store, NOW)
    # Written to the log after the first scan read past their time, but inside the overlap.
    add(
        sim,
        [
            legacy(hours_ago(0.5)),  # newer than what USER had counted: counted
            legacy(hours_ago(1.5), user_id=OTHER_USER, client_app="POP3"),  # a new subject
        ],
    )
    aggregates = aggregates_of(scan(sim, store, NOW + timedelta(hours=1)))
    assert aggregates[(LEGACY_RULE, f"{USER}|imap4")].count == 2
    assert aggregates[(LEGACY_RULE, f"{USER}|imap4")].last_seen == hours_ago(0.5)
    assert aggregates[(LEGACY_RULE, f"{THIRD_USER}|imap4")].count == 1
    assert aggregates[(LEGACY_RULE, f"{OTHER_USER}|pop3")].count == 1
    assert aggregates[(LEGACY_RULE, f"{OTHER_USER}|pop3")].first_seen == hours_ago(1.5)


def test_failed_sign_ins_are_ignored_but_the_ranges_complete(sim: TenantSimulator, store: SignInStore) -> None:
    add(sim, [legacy(hours_ago(2), error_code=50126), legacy(hours_ago(1), error_code=50074)])
    assert scan(sim, store, NOW) == []
    # Both ranges were read to the end (one of them empty): the next scan starts from NOW.
    assert {key: state.read_through for key, state in store.streams(TENANT).items()} == {
        INTERACTIVE: NOW,
        NON_INTERACTIVE: NOW,
    }


def test_many_pages_are_followed(sim: TenantSimulator, store: SignInStore) -> None:
    add(sim, [legacy(NOW - timedelta(minutes=index)) for index in range(2500)])
    counts = counts_of(scan(sim, store, NOW))
    assert counts[(LEGACY_RULE, f"{USER}|imap4")] == 2500
    assert len(sign_in_filters(sim)) == 3 + 1  # three interactive pages, one non-interactive


def test_aggregates_that_age_out_of_the_window_are_purged(sim: TenantSimulator, store: SignInStore) -> None:
    add(sim, [legacy(hours_ago(100)), legacy(hours_ago(1), user_id=OTHER_USER)])
    assert len(counts_of(scan(sim, store, NOW))) == 4
    later = NOW + timedelta(hours=80)  # window starts at NOW-88h: the first user's sign-in is gone
    assert set(counts_of(scan(sim, store, later))) == {
        (LEGACY_RULE, f"{OTHER_USER}|imap4"),
        (SINGLE_FACTOR_RULE, f"{OTHER_USER}|{APP}"),
    }
    assert {record.subject_id for record in store.aggregates(TENANT)} == {f"{OTHER_USER}|imap4", f"{OTHER_USER}|{APP}"}


def test_a_longer_look_back_re_reads_the_longer_window(sim: TenantSimulator, store: SignInStore) -> None:
    add(sim, [legacy(hours_ago(1)), legacy(hours_ago(40))])
    assert counts_of(scan(sim, store, NOW, lookback=timedelta(hours=24)))[(LEGACY_RULE, f"{USER}|imap4")] == 1
    sim.clear_requests()
    aggregates = aggregates_of(scan(sim, store, NOW, lookback=timedelta(hours=48)))
    assert first_page_filters(sim)[0] == expected_filter(hours_ago(48), NOW, INTERACTIVE)
    imap = aggregates[(LEGACY_RULE, f"{USER}|imap4")]
    # The older sign-in is folded; it is older than what was counted, so the count stays "at least 1".
    assert (imap.first_seen, imap.count) == (hours_ago(40), 1)


def test_a_look_back_shortened_then_lengthened_re_reads_what_was_purged(
    sim: TenantSimulator, store: SignInStore
) -> None:
    add(sim, [legacy(hours_ago(40)), legacy(hours_ago(1), user_id=OTHER_USER)])
    assert (LEGACY_RULE, f"{USER}|imap4") in counts_of(scan(sim, store, NOW, lookback=timedelta(hours=48)))
    # A day's look-back purges the first user's aggregates...
    assert (LEGACY_RULE, f"{USER}|imap4") not in counts_of(scan(sim, store, NOW, lookback=timedelta(hours=24)))
    # ...so two days again must read two days again, not trust the older coverage.
    sim.clear_requests()
    counts = counts_of(scan(sim, store, NOW, lookback=timedelta(hours=48)))
    assert first_page_filters(sim)[0] == expected_filter(hours_ago(48), NOW, INTERACTIVE)
    assert counts[(LEGACY_RULE, f"{USER}|imap4")] == 1


# -- errors ------------------------------------------------------------------------------------


def test_without_entra_id_p1_sign_ins_are_unavailable_for_the_licence(sim: TenantSimulator, store: SignInStore) -> None:
    result = scan(sim, store, NOW, tenant_id=UNLICENSED)
    assert isinstance(result, Unavailable)
    assert result.reason_code == "licence:AAD_PREMIUM"
    assert len([r for r in sim.requests if r.path == SIGN_INS_PATH]) == 1  # the second stream is not tried
    # Nothing was read: the range begun stays to be read from its start.
    state = store.streams(UNLICENSED)[INTERACTIVE]
    assert (state.read_through, state.frontier, state.range_since) == (None, None, NOW - WEEK)


def test_without_audit_log_permission_sign_ins_are_unavailable(sim: TenantSimulator, store: SignInStore) -> None:
    result = scan(sim, store, NOW, tenant_id=NO_AUDIT_PERMISSION)
    assert isinstance(result, Unavailable)
    assert result.reason_code == "permission:AuditLog.Read.All"


def test_no_directory_read_access_names_directory_read_all(sim: TenantSimulator, store: SignInStore) -> None:
    body = (
        '{"error": {"code": "Authentication_ApplicationHasNoDirectoryReadAccess", '
        '"message": "Calling principal does not have required MSGraph permissions."}}'
    )
    sim.inject_fault(r"/auditLogs/signIns$", status=403, body=body)
    result = scan(sim, store, NOW)
    assert isinstance(result, Unavailable)
    assert result.reason_code == "permission:Directory.Read.All"


class FaultAfterFirstStream(SignInStore):
    """Makes Graph fail the next sign-in request once the first stream's aggregates are saved."""

    def __init__(self, service: TableServiceClient, prefix: str, sim: TenantSimulator) -> None:
        super().__init__(service, prefix)
        self.sim = sim

    def save_aggregates(self, tenant_id: str, records: Iterable[AggregateRecord]) -> int:
        transactions = super().save_aggregates(tenant_id, records)
        self.sim.inject_fault(r"/auditLogs/signIns$", status=400)
        return transactions


def test_a_failure_in_the_second_stream_keeps_the_first_streams_progress(
    sim: TenantSimulator, store: SignInStore, service: TableServiceClient, table_prefix: str
) -> None:
    add(sim, [legacy(hours_ago(1)), legacy(hours_ago(2), event_type=NON_INTERACTIVE)])
    result = scan(sim, FaultAfterFirstStream(service, table_prefix, sim), NOW)
    assert isinstance(result, Unavailable)
    assert result.reason_code == "error:UnknownError"  # the injected fault's code
    streams = store.streams(TENANT)
    assert (streams[INTERACTIVE].read_through, streams[INTERACTIVE].covered_from) == (NOW, NOW - WEEK)
    assert streams[NON_INTERACTIVE].read_through is None
    assert {(r.key, r.count, tuple(r.event_types)) for r in store.aggregates(TENANT)} == {
        ((LEGACY_RULE, f"{USER}|imap4"), 1, (INTERACTIVE,)),
        ((SINGLE_FACTOR_RULE, f"{USER}|{APP}"), 1, (INTERACTIVE,)),
    }


# -- crashes -----------------------------------------------------------------------------------


class CrashingStore(SignInStore):
    """Raises once where it is told to, as a process killed at that point would stop."""

    def __init__(self, service: TableServiceClient, prefix: str, crash_at: str) -> None:
        super().__init__(service, prefix)
        self.crash_at = crash_at

    def _crash(self, where: str) -> None:
        if self.crash_at == where:
            self.crash_at = ""
            raise RuntimeError(f"simulated crash at {where}")

    def save_stream(self, tenant_id: str, state: StreamState, now: datetime) -> None:
        if state.frontier is not None:  # a page's checkpoint (not the start of a range)
            self._crash("checkpoint")
        super().save_stream(tenant_id, state, now)

    def save_aggregates(self, tenant_id: str, records: Iterable[AggregateRecord]) -> int:
        records = list(records)
        if self.crash_at == "aggregates":
            # Half the rows reach storage, then the process dies.
            super().save_aggregates(tenant_id, records[: len(records) // 2])
            self._crash("aggregates")
        return super().save_aggregates(tenant_id, records)


def test_a_crash_before_the_checkpoint_re_reads_without_double_counting(
    sim: TenantSimulator, store: SignInStore, service: TableServiceClient, table_prefix: str
) -> None:
    add(sim, [legacy(hours_ago(h)) for h in (1, 2, 3)])
    crashing = CrashingStore(service, table_prefix, crash_at="checkpoint")
    with pytest.raises(RuntimeError, match="simulated crash"):
        scan(sim, crashing, NOW)
    state = store.streams(TENANT)[INTERACTIVE]
    assert (state.read_through, state.frontier, state.range_until) == (None, None, NOW)
    assert {r.key: r.count for r in store.aggregates(TENANT)} == {
        (LEGACY_RULE, f"{USER}|imap4"): 3,
        (SINGLE_FACTOR_RULE, f"{USER}|{APP}"): 3,
    }
    sim.clear_requests()
    later = NOW + timedelta(minutes=5)
    counts = counts_of(scan(sim, store, later))
    # The range in progress first (from its start: no checkpoint was written), then the stream
    # never read, then the rest of the first one's up to now.
    assert first_page_filters(sim) == [
        expected_filter(NOW - WEEK, NOW, INTERACTIVE),
        expected_filter(later - WEEK, later, NON_INTERACTIVE),
        expected_filter(NOW - WATERMARK_OVERLAP, later, INTERACTIVE),
    ]
    assert counts == {(LEGACY_RULE, f"{USER}|imap4"): 3, (SINGLE_FACTOR_RULE, f"{USER}|{APP}"): 3}


def test_a_crash_between_aggregate_transactions_re_reads_without_double_counting(
    sim: TenantSimulator, store: SignInStore, service: TableServiceClient, table_prefix: str
) -> None:
    users = [f"00000000-0000-4000-8000-{index:012d}" for index in range(150)]
    add(sim, [legacy(hours_ago(1 + index / 100), user_id=user) for index, user in enumerate(users)])
    add(sim, [legacy(hours_ago(0.5), user_id=users[0])])
    crashing = CrashingStore(service, table_prefix, crash_at="aggregates")
    with pytest.raises(RuntimeError, match="simulated crash"):
        scan(sim, crashing, NOW)
    written = len(list(store.aggregates(TENANT)))
    assert 0 < written < 300
    counts = counts_of(scan(sim, store, NOW))
    assert len(counts) == 300
    assert counts[(LEGACY_RULE, f"{users[0]}|imap4")] == 2
    assert all(counts[(LEGACY_RULE, f"{user}|imap4")] == 1 for user in users[1:])


# -- scale ------------------------------------------------------------------------------------


def big_week(now: datetime, total: int, users: int) -> list[dict[str, Any]]:
    """`total` sign-ins over the week before `now`: a fifth of them failed, the rest spread over
    legacy, single-factor, ROPC and MFA sign-ins, half of them non-interactive."""
    step = WEEK / total
    kinds = ("legacy", "single", "ropc", "mfa", "failed")
    sign_ins: list[dict[str, Any]] = []
    for index in range(total):
        created = now - step * (index + 1)
        user = f"00000000-0000-4000-8000-{index % users:012d}"
        event_type = INTERACTIVE if index % 2 else NON_INTERACTIVE
        kind = kinds[index % len(kinds)]
        if kind == "legacy":
            sign_ins.append(legacy(created, user_id=user, event_type=event_type))
        elif kind == "single":
            sign_ins.append(
                sign_in(created, user_id=user, requirement="singleFactorAuthentication", event_type=event_type)
            )
        elif kind == "ropc":
            # ROPC cannot perform MFA: Entra ID logs a successful one as single-factor.
            sign_ins.append(
                sign_in(
                    created,
                    user_id=user,
                    protocol="ropc",
                    requirement="singleFactorAuthentication",
                    event_type=event_type,
                )
            )
        elif kind == "mfa":
            sign_ins.append(sign_in(created, user_id=user, event_type=event_type))
        else:
            sign_ins.append(legacy(created, user_id=user, event_type=event_type, error_code=50126))
    return sign_ins


@contextlib.contextmanager
def simulator_process(scenario: dict[str, Any], directory: Path) -> Iterator[Settings]:
    """`python -m testbed.simulator` in its own process, so that memory traced here is
    PartnerGuard's alone; yields the settings its `export` lines name."""
    path = directory / "scenario.json"
    path.write_text(json.dumps(scenario), encoding="utf-8")
    process = subprocess.Popen(
        [sys.executable, "-m", "testbed.simulator", str(path), "--no-limits"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
    )
    try:
        assert process.stdout is not None
        environment: dict[str, str] = {}
        for line in process.stdout:
            if line.startswith("# export"):
                break  # the commented federated lines come after every export line
            if line.startswith("export "):
                name, _, value = line.removeprefix("export ").strip().partition("=")
                environment[name] = shlex.split(value)[0] if value else ""
        assert "AZURE_TENANT_ID" in environment, "the simulator process printed no settings"
        yield Settings.from_env(environment)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_sign_ins_fold_in_memory_that_follows_aggregates_not_sign_ins(store: SignInStore, tmp_path: Path) -> None:
    # Speed is measured by `make bench`, not here; this test proves correctness at volume and that
    # pages are folded and dropped (peak memory bounded by the aggregates, not the sign-ins).
    total, users = 10_000, 1_000
    scenario = {
        "tenantId": BIG,
        "displayName": "Ten thousand sign-ins",
        "role": "customer",
        "licences": ["AAD_PREMIUM"],
        "signIns": big_week(NOW, total, users),
    }
    with simulator_process(scenario, tmp_path) as settings:

        async def go(now: datetime) -> list[SignInAggregate] | Unavailable:
            async with GraphClient(settings, BIG, pacer=UNPACED) as client:
                result = (await collect_sign_ins(client, store, BIG, now, WEEK)).aggregates
            return result if isinstance(result, Unavailable) else list(result)

        aggregates = aggregates_of(run(go(NOW)))
        # Every successful legacy, single-factor and ROPC sign-in counted exactly once.
        assert sum(a.count for a in aggregates.values() if a.rule == LEGACY_RULE) == total // 5
        assert sum(a.count for a in aggregates.values() if a.rule == ROPC_RULE) == total // 5
        assert sum(a.count for a in aggregates.values() if a.rule == SINGLE_FACTOR_RULE) == 3 * total // 5

        # Again: nothing new, so only the overlap is read and nothing is counted twice.
        again = aggregates_of(run(go(NOW + timedelta(minutes=10))))
        assert {k: a.count for k, a in again.items()} == {k: a.count for k, a in aggregates.items()}

        # The full window once more from scratch, traced, for the fold's peak memory.
        for key in list(aggregates):
            store.delete_aggregates(BIG, [key])
        for event_type in (INTERACTIVE, NON_INTERACTIVE):
            store.watermarks_table.delete_entity(tenant_key(BIG), event_type)
        tracemalloc.start()
        rebuilt = aggregates_of(run(go(NOW)))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert {k: a.count for k, a in rebuilt.items()} == {k: a.count for k, a in aggregates.items()}
    # Holding the 10,000 parsed sign-ins alone would take several times this.
    assert peak < 16 * 2**20

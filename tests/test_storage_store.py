"""ScanStore against a real Azurite: lifecycle, reports, batching, keys, limits, runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.data.tables import TableServiceClient
from azure.identity import ManagedIdentityCredential
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from partnerguard.model import (
    CheckOutcome,
    CheckResult,
    Finding,
    Report,
    Severity,
    Status,
    SubjectType,
    TenantInfo,
)
from partnerguard.settings import ConfigError, StorageSettings
from partnerguard.storage import ScanStore
from partnerguard.storage.keys import utf16_units
from partnerguard.storage.limits import MAX_STRING_UNITS, check_entity, entity_bytes, to_json
from testbed.azurite import AzuriteProcess
from tests.storage_builders import REGISTRATION, SECRETS, finding, new_tenant, result

pytestmark = pytest.mark.azurite

T0 = datetime(2025, 5, 1, 8, 0, tzinfo=UTC)
HOSTILE = "\u202e<img src=x onerror=alert(1)>\x00\x07\x1f\x7f\x85\u200f'\"%/\\#?\U0001f525"


def scan(
    store: ScanStore,
    tenant: TenantInfo,
    at: datetime,
    results: Sequence[CheckResult],
    excepted: frozenset[tuple[str, str]] = frozenset(),
) -> Report:
    run_id = store.start_run(tenant, at)
    return store.complete_run(tenant, run_id, at, at + timedelta(minutes=1), results, excepted)


def states(report: Report) -> dict[tuple[str, str], str]:
    return {(c.id, f.finding.subject_id): f.state for c in report.checks for f in c.findings}


def test_lifecycle_new_open_resolved_new_again(scan_store: ScanStore) -> None:
    tenant = new_tenant()
    first = scan(
        scan_store,
        tenant,
        T0,
        [result(REGISTRATION, [finding("a"), finding("b")]), result(SECRETS, [finding("app:k1")])],
    )
    assert set(states(first).values()) == {"new"}

    second = scan(
        scan_store,
        tenant,
        T0 + timedelta(hours=6),
        [result(REGISTRATION, [finding("a"), finding("b")]), result(SECRETS)],
    )
    assert states(second) == {("mfa.registration", "a"): "open", ("mfa.registration", "b"): "open"}
    active = scan_store.active_findings(tenant.id)
    assert set(active) == {("mfa.registration", "a"), ("mfa.registration", "b")}
    assert active["mfa.registration", "a"].first_seen == T0 + timedelta(minutes=1)
    assert active["mfa.registration", "a"].first_run_id == first.run_id
    assert active["mfa.registration", "a"].last_run_id == second.run_id
    [resolved] = scan_store.list_findings(tenant.id, state="resolved").findings
    assert (resolved.check_id, resolved.subject_id, resolved.state) == ("apps.client-secrets", "app:k1", "resolved")
    assert resolved.resolved_at == T0 + timedelta(hours=6, minutes=1)

    third = scan(
        scan_store,
        tenant,
        T0 + timedelta(hours=12),
        [result(REGISTRATION, [finding("a")]), result(SECRETS, [finding("app:k1")])],
    )
    assert states(third) == {("mfa.registration", "a"): "open", ("apps.client-secrets", "app:k1"): "new"}
    back = scan_store.active_findings(tenant.id)
    assert back["apps.client-secrets", "app:k1"].first_run_id == third.run_id  # it came back: a new finding
    assert back["apps.client-secrets", "app:k1"].resolved_at is None
    assert [f.subject_id for f in scan_store.list_findings(tenant.id, state="resolved").findings] == ["b"]
    assert len(scan_store.list_findings(tenant.id, state="all").findings) == 3


@pytest.mark.parametrize("status", [Status.NOT_ASSESSED, Status.ERROR])
def test_a_check_that_was_not_assessed_keeps_its_findings(scan_store: ScanStore, status: Status) -> None:
    tenant = new_tenant()
    first = scan(scan_store, tenant, T0, [result(REGISTRATION, [finding("a")]), result(SECRETS, [finding("s")])])
    scan(scan_store, tenant, T0 + timedelta(hours=1), [result(REGISTRATION, status=status), result(SECRETS)])
    active = scan_store.active_findings(tenant.id)
    assert set(active) == {("mfa.registration", "a")}
    assert active["mfa.registration", "a"].state == "new"  # untouched
    assert active["mfa.registration", "a"].last_run_id == first.run_id

    scan(scan_store, tenant, T0 + timedelta(hours=2), [result(REGISTRATION), result(SECRETS)])
    assert scan_store.active_findings(tenant.id) == {}


def test_partial_findings_of_an_unassessed_check_are_recorded(scan_store: ScanStore) -> None:
    tenant = new_tenant()
    scan(scan_store, tenant, T0, [result(REGISTRATION, [finding("a"), finding("b")])])
    report = scan(
        scan_store, tenant, T0 + timedelta(hours=1), [result(REGISTRATION, [finding("c")], Status.NOT_ASSESSED)]
    )
    assert states(report) == {("mfa.registration", "c"): "new"}
    assert set(scan_store.active_findings(tenant.id)) == {("mfa.registration", s) for s in "abc"}


def test_excepted_findings_and_a_lapsed_exception(scan_store: ScanStore) -> None:
    tenant = new_tenant()
    excepted = frozenset({("mfa.registration", "svc")})
    first = scan(scan_store, tenant, T0, [result(REGISTRATION, [finding("svc")])], excepted)
    assert states(first) == {("mfa.registration", "svc"): "excepted"}
    assert first.checks[0].status is Status.PASS  # every finding excepted
    assert scan_store.active_findings(tenant.id)["mfa.registration", "svc"].state == "excepted"

    second = scan(scan_store, tenant, T0 + timedelta(days=1), [result(REGISTRATION, [finding("svc")])])
    assert states(second) == {("mfa.registration", "svc"): "new"}  # alerts as if it were new
    assert second.checks[0].status is Status.FAIL


def test_reports_read_back_exactly(scan_store: ScanStore) -> None:
    tenant = new_tenant("Fabrikam \u202e & <Co>")
    results = [
        result(
            REGISTRATION,
            [
                finding("b", "Bob", Severity.CRITICAL, roles=["Global Administrator"]),
                finding("a", "alice", n=1, nested={"x": [1, 2, None]}),
            ],
        ),
        CheckResult(
            SECRETS,
            CheckOutcome(
                Status.NOT_ASSESSED, (), "no licence", "licence:AAD_PREMIUM", evidence={"unassessed_users": 12}
            ),
        ),
    ]
    started = T0 + timedelta(microseconds=123456)
    run_id = scan_store.start_run(tenant, started)
    report = scan_store.complete_run(tenant, run_id, started, started + timedelta(seconds=95), results)
    stored = scan_store.get_report(tenant.id, run_id)
    latest = scan_store.latest_report(tenant.id)
    assert stored is not None and latest is not None
    assert stored.to_document() == report.to_document() == latest.to_document()
    assert stored == report
    assert [f.finding.subject_id for f in stored.checks[0].findings] == ["b", "a"]  # most severe first

    # A later run that has not completed (or failed without a report) is not the latest report.
    later = scan_store.start_run(tenant, T0 + timedelta(hours=1))
    assert scan_store.latest_report(tenant.id) == report
    scan_store.fail_run(tenant.id, later, "graph_unavailable", "Graph answered 503", T0 + timedelta(hours=1))
    assert scan_store.latest_report(tenant.id) == report
    assert scan_store.get_report(tenant.id, later) is None
    assert scan_store.latest_report(new_tenant().id) is None
    assert scan_store.get_report(tenant.id, "no-such-run") is None
    assert scan_store.get_report(tenant.id, "../bad") is None


def test_a_run_with_an_error_check_is_failed_but_keeps_its_report(scan_store: ScanStore) -> None:
    tenant = new_tenant()
    report = scan(scan_store, tenant, T0, [result(REGISTRATION, status=Status.ERROR), result(SECRETS)])
    assert report.status == "failed"
    run = scan_store.get_run(tenant.id, report.run_id)
    assert run is not None
    assert (run.status, run.has_report, run.error) == (
        "failed",
        True,
        {"code": "check_error", "message": "checks ended in error: mfa.registration"},
    )
    assert scan_store.latest_report(tenant.id) == report


def test_fail_run(scan_store: ScanStore) -> None:
    tenant = new_tenant()
    run_id = scan_store.start_run(tenant, T0)
    running = scan_store.get_run(tenant.id, run_id)
    assert running is not None and running.status == "running" and running.started == T0
    scan_store.fail_run(tenant.id, run_id, "consent_missing", "AADSTS65001: no consent", T0 + timedelta(seconds=4))
    failed = scan_store.get_run(tenant.id, run_id)
    assert failed is not None
    assert failed.status == "failed"
    assert failed.error == {"code": "consent_missing", "message": "AADSTS65001: no consent"}
    assert failed.finished == T0 + timedelta(seconds=4)
    assert failed.to_document()["error"] == failed.error
    assert scan_store.latest_report(tenant.id) is None
    assert scan_store.get_run(tenant.id, "unknown-run") is None


def test_list_runs_newest_first(scan_store: ScanStore) -> None:
    tenant = new_tenant()
    made = [scan(scan_store, tenant, T0 + timedelta(hours=h), [result(REGISTRATION)]).run_id for h in (0, 6, 12)]
    queued = scan_store.queue_run(tenant, T0 + timedelta(hours=18))
    runs = scan_store.list_runs(tenant.id)
    assert [r.run_id for r in runs] == [queued, *reversed(made)]
    assert [r.status for r in runs] == ["queued", "succeeded", "succeeded", "succeeded"]
    assert runs[1].summary == {"pass": 1, "fail": 0, "not_assessed": 0, "error": 0}
    assert [r.run_id for r in scan_store.list_runs(tenant.id, top=2)] == [queued, made[2]]
    assert scan_store.list_runs(new_tenant().id) == []


def test_queued_runs_start_and_go_stale(scan_store: ScanStore) -> None:
    tenant = new_tenant()
    queued_at = T0 + timedelta(hours=1)
    run_id = scan_store.queue_run(tenant, queued_at)
    active = scan_store.active_run(tenant.id, queued_at + timedelta(seconds=5))
    assert active is not None and (active.run_id, active.status) == (run_id, "queued")
    assert scan_store.start_run(tenant, queued_at + timedelta(seconds=10), run_id=run_id) == run_id
    running = scan_store.active_run(tenant.id, queued_at + timedelta(seconds=15))
    assert running is not None and running.status == "running" and running.queued_at == queued_at
    assert scan_store.active_run(tenant.id, queued_at + timedelta(hours=3)) is None  # a crashed worker
    scan_store.complete_run(tenant, run_id, queued_at, queued_at + timedelta(minutes=1), [result(REGISTRATION)])
    assert scan_store.active_run(tenant.id, queued_at + timedelta(minutes=2)) is None


def test_alert_status(scan_store: ScanStore) -> None:
    tenant = new_tenant()
    report = scan(scan_store, tenant, T0, [result(REGISTRATION, [finding("a")])])
    scan_store.set_alert_status(tenant.id, report.run_id, "failed", "ACS answered 429")
    run = scan_store.get_run(tenant.id, report.run_id)
    assert run is not None and (run.alert_status, run.alert_error) == ("failed", "ACS answered 429")
    scan_store.set_alert_status(tenant.id, report.run_id, "sent")
    run = scan_store.get_run(tenant.id, report.run_id)
    assert run is not None and run.to_document()["alert"] == {"status": "sent", "error": None}
    with pytest.raises(ValueError):
        scan_store.set_alert_status(tenant.id, report.run_id, "lost")


class CountingSubmit:
    def __init__(self, store: ScanStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: dict[str, list[int]] = {}
        for table in (store.runs, store.findings, store.run_findings):
            monkeypatch.setattr(table, "submit_transaction", self.wrap(table.table_name, table.submit_transaction))

    def wrap(self, name: str, submit: Any) -> Any:
        def counted(operations: Any, **kwargs: Any) -> Any:
            operations = list(operations)
            self.calls.setdefault(name, []).append(len(operations))
            return submit(operations, **kwargs)

        return counted


def test_2500_findings_are_written_in_batches(scan_store: ScanStore, monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = new_tenant()
    counter = CountingSubmit(scan_store, monkeypatch)
    findings = [finding(str(uuid.uuid4()), f"User {i}", upn=f"user{i}@contoso.com") for i in range(2500)]
    report = scan(scan_store, tenant, T0, [result(REGISTRATION, findings)])
    assert counter.calls[scan_store.findings.table_name] == [100] * 25
    assert counter.calls[scan_store.run_findings.table_name] == [100] * 25
    assert len(scan_store.active_findings(tenant.id)) == 2500
    stored = scan_store.latest_report(tenant.id)
    assert stored is not None and stored.to_document() == report.to_document()

    # Resolving them all: 25 merge transactions, nothing for the (empty) run findings.
    counter.calls.clear()
    scan(scan_store, tenant, T0 + timedelta(hours=6), [result(REGISTRATION)])
    assert counter.calls == {scan_store.findings.table_name: [100] * 25}
    assert scan_store.active_findings(tenant.id) == {}


def test_hostile_text_stays_within_the_limits_and_reads_back(scan_store: ScanStore) -> None:
    tenant = new_tenant(HOSTILE * 500)
    hostile = [
        Finding(
            subject_id=f"{HOSTILE}|{i}",
            subject_type=SubjectType.USER,
            subject_name=HOSTILE * 400,  # ~10 KB
            detail=(HOSTILE + "\n") * 2000,
            severity=Severity.HIGH,
            evidence={"display": HOSTILE * 100, "blob": "x" * 100_000, "rtl": "\u202e\u2067"},
        )
        for i in range(150)
    ]
    long_id = Finding("\U0001f600" * 20_000, SubjectType.USER, "astral", "", Severity.LOW)
    outcome = CheckOutcome(Status.FAIL, (*hostile, long_id), evidence={"huge": ["y" * 1000] * 200})
    report = scan(scan_store, tenant, T0, [CheckResult(REGISTRATION, outcome), result(SECRETS)])

    stored = scan_store.get_report(tenant.id, report.run_id)
    assert stored is not None and stored.to_document() == report.to_document()
    [check, _] = report.checks
    assert len(check.findings) == 151
    assert check.evidence["truncated"] is True
    first = next(f.finding for f in check.findings if f.finding.subject_id.endswith("|0"))
    assert first.subject_id == f"{HOSTILE}|0"
    assert first.evidence["truncated"] is True and first.evidence["rtl"] == "\u202e\u2067"
    assert set(scan_store.active_findings(tenant.id)) == {
        ("mfa.registration", f.finding.subject_id) for f in check.findings
    }

    service = scan_store.service
    for table in (scan_store.runs, scan_store.findings, scan_store.run_findings):
        for entity in service.get_table_client(table.table_name).list_entities():
            plain = {k: v for k, v in entity.items()}
            check_entity(plain)
            assert entity_bytes(plain) <= 1024 * 1024
            assert all(utf16_units(v) <= MAX_STRING_UNITS for v in plain.values() if isinstance(v, str))


@pytest.fixture(scope="module")
def shared_store(azurite: AzuriteProcess) -> Iterator[ScanStore]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    store = ScanStore(service, prefix="keys" + uuid.uuid4().hex[:8])
    store.ensure_tables()
    yield store
    for table in (store.runs, store.findings, store.run_findings):
        service.delete_table(table.table_name)
    store.close()


subject_ids = st.lists(
    st.text(
        alphabet=st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=["Cs"]),
        min_size=0,
        max_size=40,
    )
    | st.text(min_size=400, max_size=700),
    min_size=1,
    max_size=8,
    unique=True,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=subject_ids)
def test_any_subject_id_round_trips_through_storage(shared_store: ScanStore, ids: list[str]) -> None:
    tenant = new_tenant()
    report = scan(shared_store, tenant, T0, [result(REGISTRATION, [finding(s) for s in ids])])
    assert set(shared_store.active_findings(tenant.id)) == {("mfa.registration", s) for s in ids}
    stored = shared_store.get_report(tenant.id, report.run_id)
    assert stored is not None and stored.to_document() == report.to_document()
    page = shared_store.list_findings(tenant.id, check_id="mfa.registration", top=1000)
    assert sorted(f.subject_id for f in page.findings) == sorted(ids)
    scan(shared_store, tenant, T0 + timedelta(hours=1), [result(REGISTRATION)])
    assert shared_store.active_findings(tenant.id) == {}


def test_lone_surrogates_are_replaced_not_fatal(scan_store: ScanStore) -> None:
    tenant = new_tenant()
    report = scan(scan_store, tenant, T0, [result(REGISTRATION, [finding("a\ud800b", "\udfff")])])
    assert states(report) == {("mfa.registration", "a\ufffdb"): "new"}
    assert set(scan_store.active_findings(tenant.id)) == {("mfa.registration", "a\ufffdb")}


def test_findings_are_paged_filtered_and_isolated_per_tenant(scan_store: ScanStore) -> None:
    tenant, other = new_tenant(), new_tenant()
    scan(
        scan_store,
        tenant,
        T0,
        [result(REGISTRATION, [finding(f"u{i:03d}") for i in range(250)]), result(SECRETS, [finding("app:1")])],
    )
    scan(scan_store, other, T0, [result(REGISTRATION, [finding("theirs")])])
    seen: list[str] = []
    continuation: str | None = None
    pages = 0
    while True:
        page = scan_store.list_findings(tenant.id, top=100, continuation=continuation)
        seen.extend(f.subject_id for f in page.findings)
        pages += 1
        if page.next is None:
            break
        continuation = page.next
    assert pages == 3
    assert sorted(seen) == sorted([f"u{i:03d}" for i in range(250)] + ["app:1"])
    only = scan_store.list_findings(tenant.id, check_id="apps.client-secrets")
    assert [f.subject_id for f in only.findings] == ["app:1"] and only.next is None
    assert [f.to_document()["check_id"] for f in only.findings] == ["apps.client-secrets"]
    assert scan_store.list_findings(tenant.id, check_id="gdap.expiring").findings == []
    assert set(scan_store.active_findings(other.id)) == {("mfa.registration", "theirs")}
    for bad in ("not base64!", "eyJ4IjogMX0", to_json([1])):
        with pytest.raises(ValueError):
            scan_store.list_findings(tenant.id, continuation=bad)
    with pytest.raises(ValueError):
        scan_store.list_findings(tenant.id, state="open")
    with pytest.raises(ValueError):
        scan_store.list_findings(tenant.id, top=1001)


def test_purge_expired_runs_and_resolved_findings(scan_store: ScanStore) -> None:
    tenant = new_tenant()
    old = scan(scan_store, tenant, T0, [result(REGISTRATION, [finding("gone"), finding("stays")])])
    recent = scan(scan_store, tenant, T0 + timedelta(days=30), [result(REGISTRATION, [finding("stays")])])
    counts = scan_store.purge_expired(tenant.id, T0 + timedelta(days=10))
    assert counts == (1, 0)  # "gone" was resolved on day 30, after the cut-off
    assert [r.run_id for r in scan_store.list_runs(tenant.id)] == [recent.run_id]
    assert scan_store.get_report(tenant.id, old.run_id) is None
    assert list(scan_store.run_findings.list_entities()) != []  # the recent run's findings remain
    counts = scan_store.purge_expired(tenant.id, T0 + timedelta(days=40))
    assert counts == (1, 1)
    assert list(scan_store.run_findings.list_entities()) == []
    assert set(scan_store.active_findings(tenant.id)) == {("mfa.registration", "stays")}


def test_store_from_settings(azurite: AzuriteProcess) -> None:
    store = ScanStore.from_settings(StorageSettings(connection_string=azurite.connection_string), prefix="fs" + "x")
    store.ensure_tables()
    assert store.list_runs(new_tenant().id) == []
    identity = ScanStore.from_settings(
        StorageSettings(
            table_service_uri="https://pgstore.table.core.windows.net",
            queue_service_uri="https://pgstore.queue.core.windows.net",
            managed_identity_client_id="11111111-2222-3333-4444-555555555555",
        )
    )
    assert isinstance(identity.service.credential, ManagedIdentityCredential)
    assert identity.runs.url.startswith("https://pgstore.table.core.windows.net")
    with pytest.raises(ConfigError):
        ScanStore.from_settings(StorageSettings())
    with pytest.raises(ValueError):
        ScanStore.from_settings(StorageSettings(connection_string=azurite.connection_string), prefix="bad-prefix")


def test_an_unnamed_tenant_reads_back(scan_store: ScanStore) -> None:
    tenant = new_tenant("")
    report = scan(scan_store, tenant, T0, [result(REGISTRATION, [finding("a")])])
    assert scan_store.latest_report(tenant.id) == report

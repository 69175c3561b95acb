"""A run repeated after a crash, and an email landing mid-scan, against a real Azurite (issue 15,
cases 4, 5 and 8.1).

A scan message redelivered after a crash between the lifecycle and the run row repeats the same
run — with the tenant as it is *now*, which may have changed since the first attempt. What the
run stores must then be what the repeat found, nothing of the attempt before; and a finding that
turned `new` in the first attempt must still be `new` (its alert still owed). A scan and an alert
email run at the same time: the email's `last_notified` must survive the scan's write.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from partnerguard.model import (
    CheckMetadata,
    CheckResult,
    Report,
    Status,
    TenantInfo,
)
from partnerguard.storage import ScanStore
from tests.storage_builders import REGISTRATION, SECRETS, finding, new_tenant
from tests.storage_builders import result as shared_result

pytestmark = pytest.mark.azurite

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
def result(metadata: CheckMetadata, subjects: Sequence[str] = (), status: Status | None = None) -> CheckResult:
    """A check's result naming these users (`status` for a check that did not assess)."""
    return shared_result(metadata, [finding(subject) for subject in subjects], status)


def listed(report: Report) -> dict[str, dict[str, str]]:
    """check id -> subject id -> state, as the report lists them."""
    return {check.id: {f.finding.subject_id: str(f.state) for f in check.findings} for check in report.checks}


def crash_before_the_run_row(store: ScanStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The next write of a completed run row fails once, as if the worker died right before it:
    the run findings and the lifecycle are stored, the run is not marked completed."""
    crashes: list[str] = []
    upsert = store.runs.upsert_entity

    def dying(entity: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if not crashes and entity.get("has_report") is True:
            crashes.append(str(entity["RowKey"]))
            raise ConnectionError("the worker's host died here")
        return upsert(entity, *args, **kwargs)

    monkeypatch.setattr(store.runs, "upsert_entity", dying)
    return crashes


def attempt(
    store: ScanStore,
    tenant: TenantInfo,
    run_id: str,
    results: Sequence[CheckResult],
    excepted: frozenset[tuple[str, str]] = frozenset(),
) -> Report | None:
    try:
        return store.complete_run(tenant, run_id, T0, T0 + timedelta(minutes=1), results, excepted)
    except ConnectionError:
        return None


def test_case_4_a_repeated_run_replaces_what_its_first_attempt_stored(
    scan_store: ScanStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = new_tenant()
    crashes = crash_before_the_run_row(scan_store, monkeypatch)
    run_id = scan_store.start_run(tenant, T0)
    # First attempt: two users without MFA, a client secret; the worker dies before the run row.
    first = [result(REGISTRATION, ["u1", "u2"]), result(SECRETS, ["app:key1"])]
    assert attempt(scan_store, tenant, run_id, first) is None
    assert crashes == [run_id]

    # The message is redelivered. Meanwhile u2 registered MFA, and reading applications failed.
    second = [result(REGISTRATION, ["u1"]), result(SECRETS, status=Status.ERROR)]
    returned = attempt(scan_store, tenant, run_id, second)

    stored = scan_store.get_report(tenant.id, run_id)
    assert returned is not None and stored is not None
    # The stored report is what the repeat found: u2 is not listed as `new`, and the errored
    # check lists no finding of the attempt before.
    assert listed(stored) == listed(returned) == {REGISTRATION.id: {"u1": "new"}, SECRETS.id: {}}
    assert [c.status for c in stored.checks] == [Status.FAIL, Status.ERROR]
    # u2 was never part of a completed run: nothing to tell about it, neither new nor resolved.
    assert scan_store.resolved_findings(tenant.id, run_id) == []
    assert set(scan_store.active_findings(tenant.id)) == {(REGISTRATION.id, "u1"), (SECRETS.id, "app:key1")}


def test_case_5_a_lapsed_exception_stays_new_when_the_run_is_repeated(
    scan_store: ScanStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = new_tenant()
    excepted = frozenset({(REGISTRATION.id, "u1")})
    earlier = scan_store.start_run(tenant, T0 - timedelta(days=30))
    report = scan_store.complete_run(
        tenant, earlier, T0 - timedelta(days=30), T0 - timedelta(days=30), [result(REGISTRATION, ["u1"])], excepted
    )
    assert listed(report) == {REGISTRATION.id: {"u1": "excepted"}}

    # The exception lapsed: the next run sees u1 as new (it alerts as if new, SPEC §1) ...
    crashes = crash_before_the_run_row(scan_store, monkeypatch)
    run_id = scan_store.start_run(tenant, T0)
    assert attempt(scan_store, tenant, run_id, [result(REGISTRATION, ["u1"])]) is None
    assert crashes == [run_id]
    # ... and its message is redelivered after the crash: still new, so the digest is owed.
    repeated = attempt(scan_store, tenant, run_id, [result(REGISTRATION, ["u1"])])

    assert repeated is not None and listed(repeated) == {REGISTRATION.id: {"u1": "new"}}
    stored = scan_store.get_report(tenant.id, run_id)
    assert stored is not None and listed(stored) == {REGISTRATION.id: {"u1": "new"}}


def test_case_8_1_an_email_sent_while_a_scan_runs_keeps_its_last_notified(
    scan_store: ScanStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = new_tenant()
    first = scan_store.start_run(tenant, T0)
    scan_store.complete_run(tenant, first, T0, T0, [result(REGISTRATION, ["u1"])])
    told = T0 + timedelta(hours=5, minutes=59)

    # The next scan reads the active findings; right after, the first run's digest goes out and
    # records that it told about u1; then the scan writes the lifecycle.
    read_active = scan_store._active_rows

    def read_then_email(tenant_id: str) -> Any:
        rows = read_active(tenant_id)
        scan_store.mark_notified(tenant_id, [(REGISTRATION.id, "u1")], told)
        return rows

    monkeypatch.setattr(scan_store, "_active_rows", read_then_email)
    later = T0 + timedelta(hours=6)
    second = scan_store.start_run(tenant, later)
    report = scan_store.complete_run(tenant, second, later, later, [result(REGISTRATION, ["u1"])])

    assert listed(report) == {REGISTRATION.id: {"u1": "open"}}
    row = scan_store.get_finding(tenant.id, REGISTRATION.id, "u1")
    # Reminders count from it: written back from the scan's older read, it would be gone and
    # the reminder would come early.
    assert row is not None and row.last_notified == told


def test_case_4_a_finding_the_crashed_attempt_resolved_stays_open_when_the_repeat_sees_it(
    scan_store: ScanStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = new_tenant()
    day_before = T0 - timedelta(days=1)
    earlier = scan_store.start_run(tenant, day_before)
    scan_store.complete_run(tenant, earlier, day_before, day_before, [result(REGISTRATION, ["u1"])])

    # First attempt of the next run: reading u1 came back without it (resolved); the worker dies
    # before the run row.
    crashes = crash_before_the_run_row(scan_store, monkeypatch)
    run_id = scan_store.start_run(tenant, T0)
    assert attempt(scan_store, tenant, run_id, [result(REGISTRATION, [])]) is None
    assert crashes == [run_id]
    # The repeat sees u1 again: no completed run ever said it was gone, so it is still open (no
    # second "new" digest), since the day before.
    repeated = attempt(scan_store, tenant, run_id, [result(REGISTRATION, ["u1"])])

    assert repeated is not None and listed(repeated) == {REGISTRATION.id: {"u1": "open"}}
    row = scan_store.get_finding(tenant.id, REGISTRATION.id, "u1")
    assert row is not None and row.state == "open" and row.first_seen == day_before
    assert row.resolved_at is None and row.resolved_run_id is None
    assert scan_store.resolved_findings(tenant.id, run_id) == []


def test_case_4_a_finding_the_crashed_attempt_resolved_is_restored_when_the_repeat_cannot_assess_it(
    scan_store: ScanStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = new_tenant()
    day_before = T0 - timedelta(days=1)
    earlier = scan_store.start_run(tenant, day_before)
    scan_store.complete_run(tenant, earlier, day_before, day_before, [result(REGISTRATION, ["u1"])])
    before = scan_store.get_finding(tenant.id, REGISTRATION.id, "u1")

    crashes = crash_before_the_run_row(scan_store, monkeypatch)
    run_id = scan_store.start_run(tenant, T0)
    assert attempt(scan_store, tenant, run_id, [result(REGISTRATION, [])]) is None
    assert crashes == [run_id]
    # The repeat could not read the check: not seeing u1 then proves nothing (module docstring
    # of storage/lifecycle.py), and the attempt that did not complete proved nothing either.
    repeated = attempt(scan_store, tenant, run_id, [result(REGISTRATION, status=Status.ERROR)])

    assert repeated is not None and listed(repeated) == {REGISTRATION.id: {}}
    assert scan_store.resolved_findings(tenant.id, run_id) == []
    # The row is as the last completed run left it.
    assert scan_store.get_finding(tenant.id, REGISTRATION.id, "u1") == before

"""Exceptions through the pipeline: `Scanner.scan` (injectable clock, snapshot built in code) on a
real Azurite. An exception suppresses exactly its finding until the end of its expiry day."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from checks import CHECK_IDS
from partnerguard.model import Report, TenantSnapshot
from partnerguard.pipeline import Scanner
from partnerguard.settings import Settings
from partnerguard.storage import ScanStore
from partnerguard.storage.accepted_risks import ExceptionRecord, ExceptionStore
from testbed.azurite import AzuriteProcess
from tests.snapshot_builders import TENANT_ID, registration, snapshot, user

pytestmark = pytest.mark.azurite

ALICE, BOB, CAROL = user("alice"), user("bob"), user("carol")
OWNER = "risk.owner@contoso.example"
DAY0 = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)
EXPIRES = date(2025, 6, 10)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def tenant_snapshot(settings: Settings, tenant_id: str, now: datetime) -> TenantSnapshot:
    """Alice and Bob cannot do MFA; nobody is covered by a policy, and per-user MFA is enforced
    for Bob and Carol only, so Alice is a finding of mfa.registration *and* mfa.enforcement
    under the same subject id (her object id)."""
    return snapshot(
        collected_at=now,
        users=[ALICE, BOB, CAROL],
        registration_details=[
            registration(ALICE, capable=False),
            registration(BOB, capable=False),
            registration(CAROL, capable=True),
        ],
        conditional_access_policies=[],
        security_defaults_enabled=False,
        per_user_mfa_states={ALICE.id: "disabled", BOB.id: "enforced", CAROL.id: "enforced"},
    )


@pytest.fixture
def clock() -> Clock:
    return Clock(DAY0)


@pytest.fixture
def stores(azurite: AzuriteProcess, table_prefix: str, clock: Clock) -> Iterator[tuple[ScanStore, ExceptionStore]]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    scans = ScanStore(service, prefix=table_prefix)
    exceptions = ExceptionStore(service, prefix=table_prefix, check_ids=CHECK_IDS, clock=clock)
    scans.ensure_tables()
    exceptions.ensure_tables()
    yield scans, exceptions
    for table in (scans.runs, scans.findings, scans.run_findings, exceptions.exceptions, exceptions.audit):
        service.delete_table(table.table_name)
    service.close()


def scan(stores: tuple[ScanStore, ExceptionStore], clock: Clock, at: datetime) -> Report:
    scans, _ = stores
    clock.now = at
    # The scanner finds the exceptions beside its own tables (same service, same prefix).
    scanner = Scanner(Settings(tenant_id=TENANT_ID), scans, snapshot_source=tenant_snapshot, clock=clock)
    result = asyncio.run(scanner.scan(TENANT_ID))
    assert result.report is not None, result.error
    return result.report


def findings(report: Report) -> dict[tuple[str, str], tuple[str, dict[str, Any]]]:
    return {
        (c.id, f.finding.subject_id): (f.state, dict(f.finding.evidence)) for c in report.checks for f in c.findings
    }


def states(report: Report) -> dict[tuple[str, str], str]:
    return {key: state for key, (state, _) in findings(report).items()}


def status(report: Report, check_id: str) -> str:
    return next(str(c.status) for c in report.checks if c.id == check_id)


def except_alice(exceptions: ExceptionStore) -> ExceptionRecord:
    return exceptions.add(
        TENANT_ID, "mfa.registration", ALICE.id, "Break-glass account; FIDO2 key in the safe", OWNER, EXPIRES
    )


def test_an_exception_suppresses_exactly_its_finding_until_it_expires(
    stores: tuple[ScanStore, ExceptionStore], clock: Clock
) -> None:
    scans, exceptions = stores
    before = scan(stores, clock, DAY0)
    assert states(before)["mfa.registration", ALICE.id] == "new"
    assert states(before)["mfa.enforcement", ALICE.id] == "new"

    exception = except_alice(exceptions)
    under = scan(stores, clock, DAY0 + timedelta(hours=6))
    found = findings(under)
    state, evidence = found["mfa.registration", ALICE.id]
    assert state == "excepted"
    assert evidence["exception"] == {
        "id": exception.id,
        "reason": "Break-glass account; FIDO2 key in the safe",
        "accepted_by": OWNER,
        "expires": "2025-06-10",
    }
    assert next(iter(evidence)) == "exception"  # the check's own evidence follows, unchanged
    # Same check, another subject: still failing. Same subject, another check: still failing.
    assert found["mfa.registration", BOB.id][0] == "open"
    assert found["mfa.enforcement", ALICE.id][0] == "open"
    assert "exception" not in found["mfa.registration", BOB.id][1]
    assert "exception" not in found["mfa.enforcement", ALICE.id][1]
    assert status(under, "mfa.registration") == "fail"
    assert scans.active_findings(TENANT_ID)["mfa.registration", ALICE.id].state == "excepted"

    # The stored report says the same: `report` reads this back.
    stored = scans.latest_report(TENANT_ID)
    assert stored is not None and stored.to_document() == under.to_document()

    # Valid through the last second before its expiry day (UTC)...
    last_moment = scan(stores, clock, datetime(2025, 6, 9, 23, 59, 59, tzinfo=UTC))
    assert states(last_moment)["mfa.registration", ALICE.id] == "excepted"
    # ...and the day it expires (SPEC §1), the finding alerts as if it were new.
    expired = scan(stores, clock, datetime(2025, 6, 10, 0, 0, tzinfo=UTC))
    state, evidence = findings(expired)["mfa.registration", ALICE.id]
    assert (state, "exception" in evidence) == ("new", False)
    lifecycle = scans.active_findings(TENANT_ID)["mfa.registration", ALICE.id]
    assert lifecycle.state == "new"
    assert lifecycle.first_seen == DAY0  # seen all along: new again for alerting, not a new finding
    assert states(scan(stores, clock, datetime(2025, 6, 10, 6, 0, tzinfo=UTC)))["mfa.registration", ALICE.id] == "open"


def test_a_check_whose_every_finding_is_excepted_passes(stores: tuple[ScanStore, ExceptionStore], clock: Clock) -> None:
    _, exceptions = stores
    except_alice(exceptions)
    exceptions.add(TENANT_ID, "mfa.registration", BOB.id, "Leaving on Friday", OWNER, EXPIRES)
    report = scan(stores, clock, DAY0)
    assert status(report, "mfa.registration") == "pass"
    assert {s for (check, _), s in states(report).items() if check == "mfa.registration"} == {"excepted"}
    assert status(report, "mfa.enforcement") == "fail"  # Alice is still not challenged


def test_removing_an_exception_makes_the_next_scan_report_the_finding_new(
    stores: tuple[ScanStore, ExceptionStore], clock: Clock
) -> None:
    _, exceptions = stores
    exception = except_alice(exceptions)
    assert states(scan(stores, clock, DAY0))["mfa.registration", ALICE.id] == "excepted"
    exceptions.remove(exception.id, "ciso@contoso.example", "No longer acceptable")
    assert states(scan(stores, clock, DAY0 + timedelta(hours=6)))["mfa.registration", ALICE.id] == "new"


def test_an_exception_for_another_tenant_or_a_subject_not_found_changes_nothing(
    stores: tuple[ScanStore, ExceptionStore], clock: Clock
) -> None:
    _, exceptions = stores
    exceptions.add("22222222-3333-4444-5555-666666666666", "mfa.registration", ALICE.id, "x", OWNER, EXPIRES)
    exceptions.add(TENANT_ID, "mfa.registration", CAROL.id, "Carol is fine anyway", OWNER, EXPIRES)
    report = scan(stores, clock, DAY0)
    assert "excepted" not in states(report).values()
    assert ("mfa.registration", CAROL.id) not in states(report)

"""Resolution reasons: a finding of a sign-in evidence check that disappears is "no longer
observed" (it aged out of the look-back window), any other is "fixed" (issue item 6)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from partnerguard.model import (
    CheckMetadata,
    CheckOutcome,
    CheckResult,
    Finding,
    Report,
    Severity,
    SignInAggregate,
    Status,
    SubjectType,
    TenantInfo,
    TenantSnapshot,
)
from partnerguard.pipeline import Scanner
from partnerguard.settings import Settings
from partnerguard.storage import ScanStore
from partnerguard.storage.keys import finding_row_key
from partnerguard.storage.lifecycle import (
    RESOLUTION_FIXED,
    RESOLUTION_NO_LONGER_OBSERVED,
    ActiveFinding,
    plan_lifecycle,
)
from tests.snapshot_builders import TENANT_ID, registration, snapshot, user

T0 = datetime(2025, 5, 1, 8, 0, tzinfo=UTC)
SIGN_INS = CheckMetadata(
    "legacy-auth.sign-ins", "No legacy sign-ins", Severity.HIGH, "why", "fix", (), "P1", evidence_window=True
)
REGISTRATION = CheckMetadata("mfa.registration", "Every user can do MFA", Severity.HIGH, "why", "fix", (), None)


def result(metadata: CheckMetadata, subjects: Sequence[str], status: Status | None = None) -> CheckResult:
    findings = tuple(Finding(s, SubjectType.USER, s, "detail", Severity.HIGH) for s in subjects)
    outcome = CheckOutcome.from_findings(findings) if status is None else CheckOutcome(status, findings, "r", "c")
    return CheckResult(metadata, outcome)


def active(check_id: str, subject: str, state: str = "open") -> tuple[str, ActiveFinding]:
    key = finding_row_key(check_id, subject)
    return key, ActiveFinding(key, check_id, state, T0, "old-run")


# -- the planner --------------------------------------------------------------------------------


def test_the_planner_names_why_each_row_resolves() -> None:
    rows = dict(
        [
            active("legacy-auth.sign-ins", "u1|imap4"),
            active("legacy-auth.sign-ins", "u2|pop3", "excepted"),
            active("legacy-auth.sign-ins", "u3|imap4"),  # still seen
            active("mfa.registration", "u1"),
            active("mfa.registration", "u2", "new"),
        ]
    )
    plan = plan_lifecycle([result(SIGN_INS, ["u3|imap4"]), result(REGISTRATION, [])], rows, frozenset(), "run", T0)
    assert plan.resolutions == {
        finding_row_key("legacy-auth.sign-ins", "u1|imap4"): RESOLUTION_NO_LONGER_OBSERVED,
        finding_row_key("legacy-auth.sign-ins", "u2|pop3"): RESOLUTION_NO_LONGER_OBSERVED,
        finding_row_key("mfa.registration", "u1"): RESOLUTION_FIXED,
        finding_row_key("mfa.registration", "u2"): RESOLUTION_FIXED,
    }
    assert sorted(plan.resolutions) == sorted(plan.resolved)


@pytest.mark.parametrize("status", [Status.NOT_ASSESSED, Status.ERROR])
def test_a_check_that_did_not_see_its_data_resolves_nothing(status: Status) -> None:
    rows = dict([active("legacy-auth.sign-ins", "u1|imap4"), active("mfa.registration", "u1")])
    plan = plan_lifecycle(
        [result(SIGN_INS, [], status), result(REGISTRATION, [], status)], rows, frozenset(), "run", T0
    )
    assert plan.resolved == [] and plan.resolutions == {}


# -- the store ----------------------------------------------------------------------------------


def store_scan(store: ScanStore, tenant: TenantInfo, at: datetime, results: Sequence[CheckResult]) -> Report:
    run_id = store.start_run(tenant, at)
    return store.complete_run(tenant, run_id, at, at + timedelta(minutes=1), results)


@pytest.mark.azurite
def test_the_store_records_the_resolution_and_clears_it_when_a_finding_returns(scan_store: ScanStore) -> None:
    tenant = TenantInfo(str(uuid.uuid4()), "Contoso", "partner")
    store_scan(scan_store, tenant, T0, [result(SIGN_INS, ["u1|imap4"]), result(REGISTRATION, ["u1"])])
    second = T0 + timedelta(hours=6)
    store_scan(scan_store, tenant, second, [result(SIGN_INS, []), result(REGISTRATION, [])])

    resolved = {f.check_id: f for f in scan_store.list_findings(tenant.id, state="resolved").findings}
    assert resolved["legacy-auth.sign-ins"].resolution == "no longer observed"
    assert resolved["mfa.registration"].resolution == "fixed"
    document = resolved["legacy-auth.sign-ins"].to_document()
    assert (document["state"], document["resolution"], document["resolved_at"]) == (
        "resolved",
        "no longer observed",
        "2025-05-01T14:01:00Z",
    )
    assert scan_store.get_finding(tenant.id, "mfa.registration", "u1") == resolved["mfa.registration"]
    assert scan_store.get_finding(tenant.id, "mfa.registration", "nobody") is None

    # The sign-in comes back: the finding is new and active again, with no resolution.
    store_scan(scan_store, tenant, T0 + timedelta(hours=12), [result(SIGN_INS, ["u1|imap4"]), result(REGISTRATION, [])])
    back = scan_store.active_findings(tenant.id)["legacy-auth.sign-ins", "u1|imap4"]
    assert (back.state, back.resolution, back.resolved_at) == ("new", None, None)
    assert back.to_document()["resolution"] is None
    # Resolved again, it records the reason again.
    store_scan(scan_store, tenant, T0 + timedelta(hours=18), [result(SIGN_INS, []), result(REGISTRATION, [])])
    again = scan_store.get_finding(tenant.id, "legacy-auth.sign-ins", "u1|imap4")
    assert again is not None and (again.state, again.resolution) == ("resolved", "no longer observed")


# -- end to end: the real sign-in check ages a finding out of the window ------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


ALICE, BOB = user("alice"), user("bob")
SIGNED_IN = datetime(2025, 6, 1, 8, 0, tzinfo=UTC)
IMAP = SignInAggregate(
    rule="legacy-auth.sign-ins",
    subject_id=f"{ALICE.id}|imap4",
    user_id=ALICE.id,
    user_principal_name=ALICE.user_principal_name,
    user_display_name=ALICE.display_name,
    app_id="00000002-0000-0ff1-ce00-000000000000",
    app_display_name="Office 365 Exchange Online",
    client_app_used="IMAP4",
    first_seen=SIGNED_IN,
    last_seen=SIGNED_IN,
    count=3,
    event_types=("interactiveUser",),
)


@pytest.mark.azurite
def test_a_sign_in_that_ages_out_of_the_window_is_no_longer_observed_not_fixed(scan_store: ScanStore) -> None:
    bob_capable = False

    async def source(settings: Settings, tenant_id: str, now: datetime) -> TenantSnapshot:
        # The stored aggregate never changes: only the clock moves past the look-back window.
        return snapshot(
            collected_at=now,
            users=[ALICE, BOB],
            registration_details=[registration(ALICE, capable=True), registration(BOB, capable=bob_capable)],
            conditional_access_policies=[],
            security_defaults_enabled=True,
            sign_in_aggregates=[IMAP],
        )

    settings = Settings(tenant_id=TENANT_ID, signin_lookback_hours=24)
    clock = Clock(SIGNED_IN + timedelta(hours=1))
    scanner = Scanner(settings, scan_store, snapshot_source=source, clock=clock)

    first = asyncio.run(scanner.scan(TENANT_ID)).report
    assert first is not None
    current = {(c.id, f.finding.subject_id) for c in first.checks for f in c.findings}
    assert ("legacy-auth.sign-ins", IMAP.subject_id) in current
    assert ("mfa.registration", BOB.id) in current

    bob_capable = True  # Bob registers a method: that finding is fixed
    clock.now = SIGNED_IN + timedelta(hours=25)  # the sign-in is now older than the 24-hour window
    second = asyncio.run(scanner.scan(TENANT_ID)).report
    assert second is not None
    checks = {c.id: c for c in second.checks}
    assert checks["legacy-auth.sign-ins"].status is Status.PASS
    assert checks["mfa.registration"].status is Status.PASS

    resolved = {(f.check_id, f.subject_id): f for f in scan_store.list_findings(TENANT_ID, "resolved").findings}
    assert resolved["legacy-auth.sign-ins", IMAP.subject_id].resolution == "no longer observed"
    assert resolved["mfa.registration", BOB.id].resolution == "fixed"
    assert resolved["legacy-auth.sign-ins", IMAP.subject_id].resolved_at == clock.now


def test_only_the_sign_in_checks_are_window_evidence() -> None:
    """The catalogue says which checks resolve as "no longer observed": the three sign-in checks."""
    from checks import ALL_CHECKS

    window = {check.METADATA.id for check in ALL_CHECKS if check.METADATA.evidence_window}
    assert window == {"legacy-auth.sign-ins", "sign-ins.single-factor", "sam.password-grant"}

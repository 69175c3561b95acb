"""The lifecycle planner on its own: states and resolutions from active rows and one run."""

from __future__ import annotations

from datetime import UTC, datetime

from partnerguard.model import CheckMetadata, CheckOutcome, CheckResult, Finding, Severity, Status, SubjectType
from partnerguard.storage.keys import finding_row_key
from partnerguard.storage.lifecycle import ActiveFinding, plan_lifecycle

EARLIER = datetime(2025, 1, 1, tzinfo=UTC)
NOW = datetime(2025, 1, 2, tzinfo=UTC)


def check(check_id: str, subjects: list[str], status: Status | None = None) -> CheckResult:
    metadata = CheckMetadata(check_id, check_id, Severity.HIGH, "", "", (), None)
    findings = tuple(Finding(s, SubjectType.USER, s, "", Severity.HIGH) for s in subjects)
    outcome = CheckOutcome.from_findings(findings) if status is None else CheckOutcome(status, findings)
    return CheckResult(metadata, outcome)


def active(check_id: str, subject: str, state: str) -> tuple[str, ActiveFinding]:
    key = finding_row_key(check_id, subject)
    return key, ActiveFinding(key, check_id, state, EARLIER, "old-run")


def test_states_and_resolutions() -> None:
    rows = dict(
        [
            active("a", "kept", "new"),
            active("a", "fixed", "open"),
            active("a", "lapsed", "excepted"),
            active("a", "accepted", "excepted"),
            active("b", "unseen", "open"),  # check b is not assessed this run
        ]
    )
    plan = plan_lifecycle(
        [check("a", ["kept", "lapsed", "accepted", "fresh"]), check("b", [], Status.NOT_ASSESSED)],
        rows,
        {("a", "accepted")},
        "this-run",
        NOW,
    )
    assert plan.states == {
        "a": {"kept": "open", "lapsed": "new", "accepted": "excepted", "fresh": "new"},
        "b": {},
    }
    assert plan.resolved == [finding_row_key("a", "fixed")]
    by_subject = {c.finding.subject_id: c for c in plan.current}
    assert (by_subject["kept"].first_seen, by_subject["kept"].first_run_id) == (EARLIER, "old-run")
    assert (by_subject["fresh"].first_seen, by_subject["fresh"].first_run_id) == (NOW, "this-run")


def test_an_errored_check_resolves_nothing() -> None:
    rows = dict([active("a", "x", "open")])
    plan = plan_lifecycle([check("a", [], Status.ERROR)], rows, (), "r", NOW)
    assert plan.resolved == [] and plan.current == []

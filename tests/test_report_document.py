"""The partnerguard.report/v1 document (SPEC §2), its round trip, and the run status rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from partnerguard.cli import exit_code
from partnerguard.model import (
    REPORT_SCHEMA,
    CheckMetadata,
    CheckOutcome,
    CheckResult,
    Finding,
    Report,
    Severity,
    Status,
    SubjectType,
    TenantInfo,
    build_report,
)
from partnerguard.render.json_document import render_json
from partnerguard.render.table import render_report

STARTED = datetime(2026, 11, 26, 6, 0, 0, tzinfo=UTC)
FINISHED = datetime(2026, 11, 26, 6, 0, 42, tzinfo=UTC)


def _meta(check_id: str, severity: Severity = Severity.HIGH) -> CheckMetadata:
    return CheckMetadata(check_id, f"Title of {check_id}", severity, "why", "fix it", ("User.Read.All",), None)


def _finding(subject: str, name: str, severity: Severity = Severity.HIGH) -> Finding:
    return Finding(subject, SubjectType.USER, name, f"{name} is not MFA capable", severity, {"upn": f"{subject}@x"})


def _report(*outcomes: tuple[str, CheckOutcome], states: dict[str, dict[str, str]] | None = None) -> Report:
    results = [CheckResult(_meta(cid), outcome) for cid, outcome in outcomes]
    return build_report(TenantInfo("t-1", "Contoso", "partner"), "run-1", STARTED, FINISHED, results, states or {})


def test_document_shape_and_round_trip() -> None:
    report = _report(
        (
            "mfa.registration",
            CheckOutcome.from_findings([_finding("u2", "Bob"), _finding("u1", "Alice", Severity.CRITICAL)]),
        ),
        ("mfa.enforcement", CheckOutcome.from_findings([], note="Security defaults are on.")),
        ("legacy-auth.sign-ins", CheckOutcome.not_assessed("No P1 licence.", "licence:AAD_PREMIUM")),
        states={"mfa.registration": {"u1": "open"}},
    )
    doc = report.to_document()
    assert doc["schema"] == REPORT_SCHEMA
    assert doc["status"] == "succeeded"
    assert doc["summary"] == {"pass": 1, "fail": 1, "not_assessed": 1, "error": 0}
    assert doc["started"] == "2026-11-26T06:00:00Z"
    registration = doc["checks"][0]
    assert set(registration) == {
        "id",
        "title",
        "severity",
        "status",
        "reason",
        "reason_code",
        "remediation",
        "findings",
    }
    # Most severe first; the lifecycle's state where the store gave one, else new.
    assert [(f["subject_id"], f["state"]) for f in registration["findings"]] == [("u1", "open"), ("u2", "new")]
    assert set(registration["findings"][0]) == {
        "subject_id",
        "subject_type",
        "subject_name",
        "detail",
        "severity",
        "state",
        "evidence",
    }
    assert doc["checks"][1]["reason"] == "Security defaults are on." and doc["checks"][1]["status"] == "pass"
    assert doc["checks"][2]["reason_code"] == "licence:AAD_PREMIUM"
    again = Report.from_document(json.loads(json.dumps(doc)))
    assert again.to_document() == doc


def test_an_error_fails_the_run_and_exits_3() -> None:
    report = _report(
        ("mfa.registration", CheckOutcome.from_findings([_finding("u1", "Alice")])),
        ("mfa.enforcement", CheckOutcome(Status.ERROR, reason="boom", reason_code="error:KeyError")),
    )
    assert report.status == "failed"
    assert exit_code(report, strict=False) == 3


def test_exit_codes_for_fail_not_assessed_and_strict() -> None:
    failing = _report(("a", CheckOutcome.from_findings([_finding("u1", "Alice")])))
    unassessed = _report(("a", CheckOutcome.from_findings([])), ("b", CheckOutcome.not_assessed("x", "cloud")))
    assert exit_code(failing, strict=False) == 1
    assert exit_code(unassessed, strict=False) == 0
    assert exit_code(unassessed, strict=True) == 1


def test_all_excepted_findings_make_the_check_pass() -> None:
    report = _report(
        ("mfa.registration", CheckOutcome.from_findings([_finding("u1", "Alice")])),
        states={"mfa.registration": {"u1": "excepted"}},
    )
    assert report.checks[0].status is Status.PASS
    assert report.checks[0].findings[0].state == "excepted"


def test_renderers_keep_hostile_names_inert() -> None:
    hostile = "\x1b[31m<script>alert(1)</script>\u202eevil\nFAKE"
    report = _report(("mfa.registration", CheckOutcome.from_findings([_finding("u1", hostile)])))
    table = render_report(report)
    assert "\x1b" not in table and "\u202e" not in table and "\nFAKE" not in table
    text = render_json([report], many=False)
    assert "\u202e" not in text and "\x1b" not in text
    assert json.loads(text)["checks"][0]["findings"][0]["subject_name"] == hostile
    many = json.loads(render_json([report, report], many=True))
    assert many["schema"] == "partnerguard.reports/v1" and len(many["reports"]) == 2


def test_a_failing_check_without_findings_stays_failed() -> None:
    report = _report(("mfa.registration", CheckOutcome(Status.FAIL, ())))
    assert report.checks[0].status is Status.FAIL

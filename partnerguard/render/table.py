"""The readable report for people on a terminal (`--format table`, the default).

Every tenant-controlled string goes through `safe_text`, so a display name cannot inject
terminal escapes or reorder the line. Long finding lists are cut per check with a count of the
rest: the JSON format carries everything.
"""

from __future__ import annotations

from collections.abc import Iterable

from partnerguard.model import CheckReport, Report, Status
from partnerguard.text import safe_text

FINDINGS_SHOWN_PER_CHECK = 15
NAME_WIDTH = 40

_STATUS_LABEL = {
    Status.PASS: "PASS",
    Status.FAIL: "FAIL",
    Status.NOT_ASSESSED: "N/A ",
    Status.ERROR: "ERR ",
}


def render_report(report: Report, findings_per_check: int = FINDINGS_SHOWN_PER_CHECK) -> str:
    lines: list[str] = []
    tenant = report.tenant
    summary = report.summary
    lines.append(f"PartnerGuard report — {safe_text(tenant.name, 80)} ({tenant.id}, {tenant.role} tenant)")
    lines.append(
        f"Run {report.run_id}  {report.started:%Y-%m-%d %H:%M:%S} UTC  status: {report.status}  "
        f"pass {summary['pass']} · fail {summary['fail']} · not assessed {summary['not_assessed']} · "
        f"error {summary['error']}"
    )
    lines.append("")
    width = max(len(c.id) for c in report.checks) if report.checks else 10
    for check in report.checks:
        counts = _finding_counts(check)
        lines.append(
            f"  {_STATUS_LABEL[check.status]}  {check.id:<{width}}  {check.severity:<8}  "
            f"{safe_text(check.title, 70)}{counts}"
        )
        if check.reason:
            lines.append(f"        {safe_text(check.reason, 300)}")
    for check in report.checks:
        if not check.findings:
            continue
        lines.append("")
        lines.append(f"{check.id} — {len(check.findings)} finding(s)")
        for item in check.findings[:findings_per_check]:
            finding = item.finding
            name = safe_text(finding.subject_name, NAME_WIDTH)
            lines.append(
                f"  [{item.state:<8}] {finding.severity:<8} {name:<{NAME_WIDTH}}  {safe_text(finding.detail, 160)}"
            )
        hidden = len(check.findings) - findings_per_check
        if hidden > 0:
            lines.append(f"  … and {hidden} more (use --format json for all of them)")
        lines.append(f"  What to do: {safe_text(check.remediation, 400)}")
    return "\n".join(lines) + "\n"


def render_reports(reports: Iterable[Report]) -> str:
    return "\n".join(render_report(r) for r in reports)


def _finding_counts(check: CheckReport) -> str:
    if not check.findings:
        return ""
    new = sum(1 for f in check.findings if f.state == "new")
    excepted = sum(1 for f in check.findings if f.state == "excepted")
    parts = [f"{len(check.findings)} finding(s)"]
    if new:
        parts.append(f"{new} new")
    if excepted:
        parts.append(f"{excepted} excepted")
    return "  (" + ", ".join(parts) + ")"

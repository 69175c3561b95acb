"""The readable report for people on a terminal (`--format table`, the default).

Every tenant-controlled string goes through `safe_text`, so a display name cannot inject
terminal escapes or reorder the line. Findings are grouped as the digest email groups them
(`partnerguard.finding_groups`): within a check, each kind of finding (same state, severity and
sentence) is one line, followed by the subjects it applies to, administrators first, so twenty
users with the same problem take two lines instead of twenty. Long lists are cut (kinds per
check, subjects per kind) with a count of the rest: the JSON format carries everything.
"""

from __future__ import annotations

from collections.abc import Iterable

from partnerguard.finding_groups import admin_user_ids, group_by_detail, user_object_id
from partnerguard.model import CheckReport, Report, ReportFinding, Status
from partnerguard.text import safe_text

# Kinds of finding shown per check, and subjects shown per kind; the rest is counted.
GROUPS_SHOWN_PER_CHECK = 8
SUBJECTS_SHOWN_PER_GROUP = 8
NAME_WIDTH = 40
DETAIL_WIDTH = 300
# Where a kind's subjects start: under its sentence, past the state and severity columns.
_INDENT = " " * 22

_STATUS_LABEL = {
    Status.PASS: "PASS",
    Status.FAIL: "FAIL",
    Status.NOT_ASSESSED: "N/A ",
    Status.ERROR: "ERR ",
}


def render_report(report: Report, groups_per_check: int = GROUPS_SHOWN_PER_CHECK) -> str:
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
    admins = admin_user_ids(
        (str(item.finding.subject_type), item.finding.subject_id, item.finding.evidence)
        for check in report.checks
        for item in check.findings
    )
    for check in report.checks:
        if not check.findings:
            continue
        lines.append("")
        lines.append(f"{check.id} — {len(check.findings)} finding(s)")
        lines.extend(_finding_lines(check, admins, groups_per_check))
        lines.append(f"  What to do: {safe_text(check.remediation, 400)}")
    return "\n".join(lines) + "\n"


def _finding_lines(check: CheckReport, admins: frozenset[str], groups_per_check: int) -> list[str]:
    """A check's findings, one kind a line (in the report's order), then that kind's subjects."""

    def is_admin(item: ReportFinding) -> bool:
        return user_object_id(str(item.finding.subject_type), item.finding.subject_id) in admins

    buckets: dict[tuple[str, str], list[ReportFinding]] = {}
    for item in check.findings:
        buckets.setdefault((item.state, str(item.finding.severity)), []).append(item)
    groups = [
        group
        for items in buckets.values()
        for group in group_by_detail(
            items,
            detail=lambda item: item.finding.detail,
            name=lambda item: item.finding.subject_name or item.finding.subject_id,
            is_admin=is_admin,
        )
    ]
    lines = []
    for group in groups[:groups_per_check]:
        first = group.members[0].item
        lines.append(f"  [{first.state:<8}] {first.finding.severity:<8} {safe_text(group.sentence, DETAIL_WIDTH)}")
        subjects = []
        for member in group.members[:SUBJECTS_SHOWN_PER_GROUP]:
            subject = safe_text(member.name, NAME_WIDTH)
            if member.is_admin:
                subject += " (admin)"
            if member.particulars:
                subject += f" ({safe_text(' · '.join(member.particulars), NAME_WIDTH)})"
            subjects.append(subject)
        more = group.count - len(subjects)
        lines.append(f"{_INDENT}{group.count}: {', '.join(subjects)}{f', … and {more} more' if more > 0 else ''}")
    hidden = groups[groups_per_check:]
    if hidden:
        count = sum(group.count for group in hidden)
        lines.append(
            f"  … and {count} more finding(s) of {len(hidden)} other kind(s) (use --format json for all of them)"
        )
    return lines


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

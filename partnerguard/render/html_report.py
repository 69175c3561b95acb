"""`--format html` and the dashboard: one self-contained HTML page over one or more tenants.

The page has, per tenant, a summary (MFA coverage, checks by status, findings), a chart of
compliance over the stored runs (inline SVG) and the checks with their remediation; then one
table of every finding with filters (tenant, state, severity, check, free text) and, per
finding, its details. It loads nothing: no external stylesheet, font, image or script, so the
file works offline and can be mailed to an auditor.

Almost every string on it comes from tenants PartnerGuard does not control (display names,
app and policy names, tenant names) or from storage holding such strings. Three layers keep
them inert:

- the Jinja2 environment autoescapes every value (`&`, `<`, `>`, quotes), and its `finalize`
  passes every value through `safe_text`, which makes control characters and bidirectional
  overrides visible and caps what a 10 KB name may take; tenant text never goes into a script,
  a URL or an attribute other than as an escaped value;
- the only script is a constant file (templates/report.js) that reads the table with
  `textContent` and only toggles `hidden` and sets `textContent`: it never turns data into
  markup;
- a Content-Security-Policy (a `<meta>` in the file; the HTTP header on the dashboard) allows
  no source at all but this stylesheet and this script, each by its SHA-256 hash: an injected
  `<script>` or `onerror=` would not run even if escaping failed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from checks import CHECK_IDS
from partnerguard import __version__
from partnerguard.model import CheckReport, Report, ReportMetrics, Severity, Status, TenantInfo, iso
from partnerguard.render.compliance_chart import compliance_chart
from partnerguard.render.history import NO_HISTORY, TenantHistory
from partnerguard.render.mfa_coverage import mfa_coverage
from partnerguard.text import safe_text

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "report.html.j2"

# The page's only stylesheet and script, inserted byte for byte and allowed by their hashes.
STYLE = (TEMPLATES / "report.css").read_text(encoding="utf-8")
SCRIPT = (TEMPLATES / "report.js").read_text(encoding="utf-8")


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


STYLE_HASH = _sha256(STYLE)
SCRIPT_HASH = _sha256(SCRIPT)
# The policy the page states in its own <meta> (a file opened from disk has no HTTP headers).
# `frame-ancestors` is ignored in a <meta>; the dashboard adds it in the header.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; "
    f"style-src '{STYLE_HASH}'; "
    f"script-src '{SCRIPT_HASH}'; "
    "img-src 'none'; object-src 'none'; base-uri 'none'; form-action 'none'"
)

# Display caps for tenant-controlled text (the CSV and JSON carry up to storage's caps).
NAME_LIMIT = 200
ID_LIMIT = 160
DETAIL_CELL_LIMIT = 300
DETAIL_LIMIT = 4000
REASON_LIMIT = 1000
REMEDIATION_LIMIT = 4000
EVIDENCE_LIMIT = 16_000
EVIDENCE_VALUE_LIMIT = 1000

STATUS_LABELS = {
    Status.PASS: "pass",
    Status.FAIL: "fail",
    Status.NOT_ASSESSED: "not assessed",
    Status.ERROR: "error",
}
SEVERITY_ORDER = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW)
STATE_ORDER = ("new", "open", "excepted")
SUBJECT_TYPE_LABELS = {
    "user": "user",
    "policy": "policy",
    "application": "application",
    "servicePrincipal": "service principal",
    "relationship": "GDAP relationship",
    "tenant": "tenant",
}
# "1. Do this. 2. Then that." → a list: the catalogue writes its steps inline.
_STEP = re.compile(r"(?:^|\s)(\d{1,2})\.\s+")


@dataclass(frozen=True)
class Monitoring:
    """What the dashboard adds to a tenant: how its monitoring is doing (see `GET /api/tenants`)."""

    consent: str
    consent_error: str | None
    last_run: Mapping[str, Any] | None
    last_run_error: str | None
    last_successful_run_age_hours: float | None
    stale: bool


@dataclass(frozen=True)
class TenantEntry:
    """One tenant on the page: its latest report (None when no run completed yet), its stored
    history, and, on the dashboard, its monitoring status."""

    tenant: TenantInfo
    report: Report | None
    history: TenantHistory = NO_HISTORY
    monitoring: Monitoring | None = None


def _inert(value: object) -> object:
    """Every printed value: one line of text with control and bidi characters made visible.

    Markup passes untouched: only the constant stylesheet and script are Markup. None prints
    nothing (an absent optional value), never the word "None".
    """
    if isinstance(value, Markup):
        return value
    if value is None:
        return ""
    return safe_text(value)


_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    # Every value is escaped, whatever the template's name.
    autoescape=True,
    finalize=_inert,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_html_reports(
    reports: Sequence[Report], histories: Mapping[str, TenantHistory] | None, generated: datetime
) -> str:
    """The page for the CLI: the given reports, each with its stored history when known."""
    entries = [
        TenantEntry(report.tenant, report, (histories or {}).get(report.tenant.id, NO_HISTORY)) for report in reports
    ]
    return render_html(entries, generated, title="PartnerGuard compliance report")


def render_html(
    entries: Sequence[TenantEntry],
    generated: datetime,
    *,
    title: str,
    findings_limit: int | None = None,
    more_findings_hint: str | None = None,
) -> str:
    """The page over `entries`. `findings_limit` caps the findings listed per tenant (the
    dashboard's, whose full lists are in the findings API named by `more_findings_hint`)."""
    tenants = [_tenant_view(index, entry) for index, entry in enumerate(entries, start=1)]
    findings: list[dict[str, Any]] = []
    for view, entry in zip(tenants, entries, strict=True):
        rows = _finding_rows(view, entry)
        if findings_limit is not None and len(rows) > findings_limit:
            view["findings_unlisted"] = len(rows) - findings_limit
            rows = rows[:findings_limit]
        findings.extend(rows)
    return _environment.get_template(TEMPLATE).render(
        title=title,
        generated=_moment(generated),
        version=__version__,
        csp=CONTENT_SECURITY_POLICY,
        style=Markup(STYLE),  # noqa: S704 (a constant file, allowed by its hash)
        script=Markup(SCRIPT),  # noqa: S704 (a constant file, allowed by its hash)
        tenants=tenants,
        findings=findings,
        filters=_filters(tenants, findings),
        dashboard=any(entry.monitoring is not None for entry in entries),
        more_findings_hint=more_findings_hint,
    )


def _moment(moment: datetime | None) -> dict[str, str] | None:
    if moment is None:
        return None
    return {"iso": iso(moment), "text": f"{moment:%Y-%m-%d %H:%M} UTC"}


def _tenant_view(index: int, entry: TenantEntry) -> dict[str, Any]:
    report = entry.report
    tenant = entry.tenant
    view: dict[str, Any] = {
        "index": index,
        "anchor": f"tenant-{index}",
        "id": safe_text(tenant.id, ID_LIMIT),
        "name": safe_text(tenant.name or tenant.id, NAME_LIMIT),
        "role": tenant.role,
        "report": None,
        "chart": compliance_chart(entry.history.runs),
        "monitoring": _monitoring_view(entry.monitoring, report),
        "findings_unlisted": 0,
    }
    if report is None:
        return view
    coverage = mfa_coverage(report)
    findings = [item for check in report.checks for item in check.findings]
    view["report"] = {
        "run_id": safe_text(report.run_id, ID_LIMIT),
        "status": report.status,
        "started": _moment(report.started),
        "finished": _moment(report.finished),
        "summary": report.summary,
        "summary_bar": _summary_bar(report.summary),
        "coverage": None
        if coverage is None
        else {
            "percent": coverage.percent,
            "label": _percent_label(coverage.percent),
            "capable": coverage.capable,
            "assessed": coverage.assessed,
            "unassessed": coverage.in_scope - coverage.assessed,
            "in_scope": coverage.in_scope,
        },
        "coverage_note": None if coverage is not None else _coverage_note(report),
        "strength": _strength_view(report.metrics),
        "findings_total": len(findings),
        "findings_by_state": {state: sum(1 for f in findings if f.state == state) for state in STATE_ORDER},
        "findings_by_severity": [
            {"severity": str(severity), "count": sum(1 for f in findings if f.finding.severity is severity)}
            for severity in SEVERITY_ORDER
        ],
        "checks": [_check_view(index, position, check) for position, check in enumerate(report.checks, start=1)],
    }
    return view


def _percent_label(percent: float) -> str:
    """One decimal, rounded down, so 99.96 % (one user uncovered) never reads as 100 %."""
    if percent >= 100:
        return "100 %"
    return f"{math.floor(percent * 10) / 10:.1f} %"


def _share_label(count: int, total: int) -> str:
    """A share to one decimal that never rounds a person away: 1 of 3,000 reads 0.1 %, not
    0.0 %, and 2,999 of 3,000 reads 99.9 %, not 100 %."""
    if total <= 0:
        return "—"
    if count >= total:
        return "100 %"
    if count <= 0:
        return "0 %"
    return f"{min(99.9, max(0.1, round(100.0 * count / total, 1))):.1f} %"


# The report's method-strength figures (SPEC §2 `metrics`), in the order the page lists them:
# (label, count of all users, count of admins, whether more is better).
_STRENGTH_ROWS = (
    ("MFA capable", "mfa_capable", "admins_mfa_capable", True),
    ("Phishing-resistant method", "phishing_resistant", "admins_phishing_resistant", True),
    ("Phone (SMS or voice) only", "phone_only", "admins_phone_only", False),
)


def _strength_view(metrics: ReportMetrics | None) -> dict[str, Any] | None:
    """Three figures for all users in scope and the same for admins: count, total and share."""
    if metrics is None:
        return None
    users, admins = metrics.users_in_scope, metrics.admins

    def cell(count: int, total: int) -> dict[str, Any]:
        return {"count": count, "total": total, "label": _share_label(count, total)}

    return {
        "users": users,
        "admins": admins,
        "as_of": _moment(metrics.as_of),
        "rows": [
            {
                "label": label,
                "key": users_key,
                "good": good,
                "users": cell(getattr(metrics, users_key), users),
                "admins": cell(getattr(metrics, admins_key), admins),
            }
            for label, users_key, admins_key, good in _STRENGTH_ROWS
        ],
        "phishing_resistant": _share_label(metrics.phishing_resistant, users),
        "admins_phishing_resistant": _share_label(metrics.admins_phishing_resistant, admins),
    }


def _coverage_note(report: Report) -> str:
    check = next((c for c in report.checks if c.id == "mfa.registration"), None)
    if check is None:
        return "This report has no mfa.registration check."
    if check.status is Status.ERROR or check.status is Status.NOT_ASSESSED:
        return f"Not measured: mfa.registration is {STATUS_LABELS[check.status]}."
    return "Not recorded by the run that produced this report (an older version)."


def _summary_bar(summary: Mapping[str, int]) -> list[dict[str, Any]]:
    """Checks by status as segments of a 100-wide bar."""
    total = sum(summary.values()) or 1
    segments, x = [], 0.0
    for status in (Status.PASS, Status.NOT_ASSESSED, Status.ERROR, Status.FAIL):
        count = summary.get(str(status), 0)
        if count:
            width = 100.0 * count / total
            segments.append({"status": str(status), "x": round(x, 3), "width": round(width, 3), "count": count})
            x += width
    return segments


def _check_view(tenant_index: int, position: int, check: CheckReport) -> dict[str, Any]:
    states = {state: sum(1 for f in check.findings if f.state == state) for state in STATE_ORDER}
    return {
        "anchor": f"check-{tenant_index}-{position}",
        "id": safe_text(check.id, ID_LIMIT),
        "title": safe_text(check.title, NAME_LIMIT),
        "severity": str(check.severity),
        "status": str(check.status),
        "status_label": STATUS_LABELS[check.status],
        "reason": safe_text(check.reason, REASON_LIMIT) if check.reason else None,
        "reason_code": safe_text(check.reason_code, ID_LIMIT) if check.reason_code else None,
        "remediation": _steps(safe_text(check.remediation, REMEDIATION_LIMIT)),
        "findings": len(check.findings),
        "states": states,
    }


def _steps(text: str) -> list[str]:
    """The remediation as its numbered steps, or as one paragraph when it has none."""
    marks = list(_STEP.finditer(text))
    if len(marks) < 2 or marks[0].group(1) != "1" or marks[0].start() != 0:
        return [text]
    steps = []
    for mark, following in zip(marks, [*marks[1:], None], strict=True):
        end = following.start() if following is not None else len(text)
        steps.append(text[mark.end() : end].strip())
    return [step for step in steps if step]


def _monitoring_view(monitoring: Monitoring | None, report: Report | None) -> dict[str, Any] | None:
    if monitoring is None:
        return None
    last = monitoring.last_run
    newer_run = None
    if last is not None and (report is None or last.get("run_id") != report.run_id):
        # The newest run is not the report's: it is queued or running, or it failed without a report.
        newer_run = {
            "run_id": safe_text(last.get("run_id") or "", ID_LIMIT),
            "status": safe_text(last.get("status") or "", 20),
        }
    age = monitoring.last_successful_run_age_hours
    return {
        "consent": safe_text(monitoring.consent, 20),
        "consent_error": safe_text(monitoring.consent_error, REASON_LIMIT) if monitoring.consent_error else None,
        "last_run_status": safe_text(last.get("status") or "", 20) if last else None,
        "last_run_error": safe_text(monitoring.last_run_error, REASON_LIMIT) if monitoring.last_run_error else None,
        "newer_run": newer_run,
        "age": None if age is None else f"{age:.1f} h ago",
        "stale": monitoring.stale,
    }


def _finding_rows(view: Mapping[str, Any], entry: TenantEntry) -> list[dict[str, Any]]:
    report = entry.report
    if report is None:
        return []
    rows = []
    for position, check in enumerate(report.checks, start=1):
        for item in check.findings:
            finding = item.finding
            dates = entry.history.dates(check.id, finding.subject_id)
            exception = finding.evidence.get("exception") if item.state == "excepted" else None
            evidence = {key: value for key, value in finding.evidence.items() if key != "exception"}
            rows.append(
                {
                    "tenant_index": view["index"],
                    "tenant_name": view["name"],
                    "tenant_anchor": view["anchor"],
                    "check_id": safe_text(check.id, ID_LIMIT),
                    "check_title": safe_text(check.title, NAME_LIMIT),
                    "check_anchor": f"check-{view['index']}-{position}",
                    "severity": str(finding.severity),
                    "state": safe_text(item.state, 20),
                    "subject_type": SUBJECT_TYPE_LABELS.get(str(finding.subject_type), str(finding.subject_type)),
                    "subject_name": safe_text(finding.subject_name, NAME_LIMIT) if finding.subject_name else None,
                    "subject_id": safe_text(finding.subject_id, ID_LIMIT),
                    "detail_short": safe_text(finding.detail, DETAIL_CELL_LIMIT),
                    "detail": safe_text(finding.detail, DETAIL_LIMIT),
                    "first_seen": _moment(dates.first_seen) if dates else None,
                    "last_seen": _moment(dates.last_seen) if dates else None,
                    "exception": _exception_view(exception),
                    "evidence": _evidence_lines(evidence),
                }
            )
    rows.sort(key=lambda row: -Severity(row["severity"]).rank)  # stable: report order within a severity
    return rows


def _exception_view(exception: object) -> dict[str, str] | None:
    if not isinstance(exception, Mapping):
        return None
    return {
        key: safe_text(exception.get(key) or "", REASON_LIMIT) for key in ("id", "reason", "accepted_by", "expires")
    }


def _evidence_lines(evidence: Mapping[str, Any]) -> list[str]:
    """The evidence as indented JSON, one printed value per line. `ensure_ascii` turns every
    non-ASCII character (bidi overrides included) into a \\u escape; autoescaping does the rest."""
    if not evidence:
        return []
    text = json.dumps(_clip_strings(evidence), indent=2, ensure_ascii=True, sort_keys=True, default=str)
    if len(text) > EVIDENCE_LIMIT:
        text = text[:EVIDENCE_LIMIT] + "\n…"
    return text.split("\n")


def _clip_strings(value: Any) -> Any:
    """Evidence with every string cut to EVIDENCE_VALUE_LIMIT: a 10 KB name stays readable."""
    if isinstance(value, str):
        return value if len(value) <= EVIDENCE_VALUE_LIMIT else value[: EVIDENCE_VALUE_LIMIT - 1] + "…"
    if isinstance(value, Mapping):
        return {str(key): _clip_strings(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_clip_strings(item) for item in value]
    return value


def _filters(tenants: Sequence[Mapping[str, Any]], findings: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The filter choices: only values some finding has, in a meaningful order."""
    present_states = {row["state"] for row in findings}
    present_severities = {row["severity"] for row in findings}
    titles: dict[str, str] = {}
    for row in findings:
        titles.setdefault(row["check_id"], row["check_title"])
    # Catalogue order; a check this version does not know (an old stored report) goes last.
    checks = sorted(titles, key=lambda check_id: CHECK_IDS.index(check_id) if check_id in CHECK_IDS else len(CHECK_IDS))
    tenants_with_findings = {row["tenant_index"] for row in findings}
    return {
        "tenants": [
            {"value": str(t["index"]), "label": t["name"]} for t in tenants if t["index"] in tenants_with_findings
        ],
        "states": [state for state in STATE_ORDER if state in present_states],
        "severities": [str(s) for s in SEVERITY_ORDER if str(s) in present_severities],
        "checks": [{"value": check_id, "label": f"{check_id} — {titles[check_id]}"} for check_id in checks],
    }

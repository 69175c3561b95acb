"""`--format csv`: one row per finding, for spreadsheets and the tools teams feed findings into.

Cells hold tenant-controlled text (display names, app and policy names, tenant names), and a
spreadsheet runs a cell that starts with `=`, `+`, `-` or `@` as a formula (CSV injection:
`=HYPERLINK(...)` exfiltrates, DDE runs commands). Following OWASP's guidance, every cell is
quoted and a cell whose text could start a formula gets a leading `'`, which spreadsheets show
as text. Control characters and bidirectional overrides are made visible (`safe_text`), so a
name can neither break a row in two nor read backwards, and names and details are capped like
in storage, so a 10 KB display name stays a cell of readable size.

Checks without findings have no row; their status is in every row of their findings as
`check_status`, and the JSON and SARIF formats list every check.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence

from partnerguard.model import Report, iso
from partnerguard.render.history import NO_HISTORY, TenantHistory
from partnerguard.text import safe_text

COLUMNS = (
    "tenant_id",
    "tenant_name",
    "run_id",
    "run_started",
    "check_id",
    "check_title",
    "check_status",
    "severity",
    "state",
    "subject_type",
    "subject_id",
    "subject_name",
    "detail",
    "first_seen",
    "last_seen",
    "excepted_until",
)
# The caps storage applies to tenant-controlled text (partnerguard/storage/limits.py).
NAME_LIMIT = 1024
DETAIL_LIMIT = 4096
ID_LIMIT = 4096

# Characters that make a spreadsheet read a cell as a formula (OWASP "CSV Injection"), with
# their full-width forms, which some spreadsheets normalise to the ASCII ones.
_FORMULA_START = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")


def neutralise(value: str) -> str:
    """A cell that no spreadsheet reads as a formula.

    Leading spaces do not protect a formula (spreadsheets trim them), so the test looks past them.
    """
    stripped = value.lstrip(" ")
    if value and (value[0] in _FORMULA_START or (stripped and stripped[0] in _FORMULA_START)):
        return "'" + value
    return value


def _cell(value: object, limit: int | None = None) -> str:
    return neutralise(safe_text(value if value is not None else "", limit))


def render_csv(reports: Sequence[Report], histories: Mapping[str, TenantHistory] | None = None) -> str:
    """The findings of `reports` as CSV (RFC 4180: every cell quoted, CRLF line ends), with a header.

    `histories` maps a tenant id to its stored context (first and last seen of each finding).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for report in reports:
        history = (histories or {}).get(report.tenant.id, NO_HISTORY)
        writer.writerows(_rows(report, history))
    return buffer.getvalue()


def _rows(report: Report, history: TenantHistory) -> Iterable[list[str]]:
    for check in report.checks:
        for item in check.findings:
            finding = item.finding
            dates = history.dates(check.id, finding.subject_id)
            exception = finding.evidence.get("exception") if item.state == "excepted" else None
            expires = exception.get("expires") if isinstance(exception, Mapping) else None
            yield [
                _cell(report.tenant.id, ID_LIMIT),
                _cell(report.tenant.name, NAME_LIMIT),
                _cell(report.run_id, ID_LIMIT),
                iso(report.started),
                _cell(check.id, ID_LIMIT),
                _cell(check.title, NAME_LIMIT),
                str(check.status),
                str(finding.severity),
                _cell(item.state),
                str(finding.subject_type),
                _cell(finding.subject_id, ID_LIMIT),
                _cell(finding.subject_name, NAME_LIMIT),
                _cell(finding.detail, DETAIL_LIMIT),
                iso(dates.first_seen) if dates and dates.first_seen else "",
                iso(dates.last_seen) if dates and dates.last_seen else "",
                _cell(expires) if expires else "",
            ]

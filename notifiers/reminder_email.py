"""The reminder email: a tenant's critical findings that are still open, re-sent at an interval.

A digest tells of a finding once, the run it appears. A critical finding nobody fixes would then
go quiet; with `ALERT_REMINDER_HOURS` set (SPEC §5) the alert worker sends this reminder every
that many hours while the tenant has open critical findings. It lists each of them, oldest
first, with how long it has been open, what to do about its check (the catalogue's remediation)
and links to the tenant's findings in the HTTP API.

Escaping is the one every alert email shares (`notifiers.email_view`): each tenant-controlled
string capped and made inert, the HTML autoescaped, the subject one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from checks import CHECK_IDS
from notifiers.catalogue_text import catalogue_entry
from notifiers.email_view import (
    DETAIL_LIMIT,
    ID_LIMIT,
    NAME_LIMIT,
    REMEDIATION_LIMIT,
    RenderedEmail,
    clip,
    elapsed,
    findings_path,
    findings_url,
    plural,
    render_email,
    subject_name,
    subject_view,
    tenant_view,
)
from partnerguard.model import FindingState, Severity, TenantInfo, iso
from partnerguard.storage.records import FindingRecord

HTML_TEMPLATE = "reminder.html.j2"
TEXT_TEMPLATE = "reminder.txt.j2"

# A tenant that never fixed its first scan can have hundreds of open critical findings (every
# user without MFA): the reminder lists the oldest and counts the rest, which the API serves.
MAX_LISTED = 200

# The states of a finding still waiting for someone: excepted findings are accepted risks and
# resolved ones are gone, neither is reminded.
_REMINDED_STATES = (FindingState.NEW, FindingState.OPEN)


@dataclass(frozen=True)
class Reminder:
    """A tenant's open critical findings as of `as_of` (all of them, in any order)."""

    tenant: TenantInfo
    findings: tuple[FindingRecord, ...]
    as_of: datetime
    # ALERT_REMINDER_HOURS: how often this reminder is sent, which the email tells its reader.
    interval_hours: int

    def __post_init__(self) -> None:
        if not self.findings:
            raise ValueError("a reminder needs at least one open critical finding")
        if isinstance(self.interval_hours, bool) or not isinstance(self.interval_hours, int) or self.interval_hours < 1:
            raise ValueError(f"the reminder interval must be a whole number of hours >= 1, got {self.interval_hours!r}")
        if self.as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware")
        for record in self.findings:
            where = f"{record.check_id}/{record.subject_id}"
            # Another tenant's finding here is a caller's bug that would leak one customer's
            # findings into another customer's email: refuse rather than render.
            if record.tenant_id.lower() != self.tenant.id.lower():
                raise ValueError(
                    f"finding {where} of tenant {record.tenant_id!r} in the reminder of tenant {self.tenant.id!r}"
                )
            if record.state not in _REMINDED_STATES:
                raise ValueError(f"finding {where} is {record.state!r}, not new or open")
            # The subject says "critical findings": a lesser one would make it lie.
            if record.severity != Severity.CRITICAL:
                raise ValueError(f"finding {where} is {record.severity!r}, not critical")


def _check_position(check_id: str) -> tuple[int, str]:
    """Catalogue order; checks this version does not know come last, by id."""
    try:
        return (CHECK_IDS.index(check_id), check_id)
    except ValueError:
        return (len(CHECK_IDS), check_id)


def ordered(findings: tuple[FindingRecord, ...]) -> list[FindingRecord]:
    """Oldest first (unknown first-seen last), then catalogue order, then by name and id."""
    return sorted(
        findings,
        key=lambda r: (
            r.first_seen is None,
            r.first_seen.timestamp() if r.first_seen else 0.0,
            _check_position(r.check_id),
            r.subject_name.casefold(),
            r.subject_id,
        ),
    )


def _subject(reminder: Reminder) -> str:
    count = plural(len(reminder.findings), "critical finding")
    return f"PartnerGuard reminder: {subject_name(reminder.tenant)} — {count} still open"


def _view(reminder: Reminder, public_url: str | None) -> dict[str, Any]:
    """Everything the templates print, each tenant-controlled string capped and made inert."""
    tenant_id = reminder.tenant.id
    findings = ordered(reminder.findings)
    rows = []
    for record in findings[:MAX_LISTED]:
        title, _ = catalogue_entry(record.check_id)
        rows.append(
            {
                "check_title": clip(title, NAME_LIMIT),
                "check_id": clip(record.check_id, ID_LIMIT),
                "subject": subject_view(record.subject_type, record.subject_name, record.subject_id),
                "detail": clip(record.detail, DETAIL_LIMIT),
                "first_seen": iso(record.first_seen) if record.first_seen else "",
                "open_for": elapsed(record.first_seen, reminder.as_of) if record.first_seen else "",
            }
        )

    guidance = []
    for check_id in sorted({r.check_id for r in findings}, key=_check_position):
        title, remediation = catalogue_entry(check_id)
        guidance.append(
            {
                "title": clip(title, NAME_LIMIT),
                "check_id": clip(check_id, ID_LIMIT),
                "remediation": clip(remediation, REMEDIATION_LIMIT),
                # The API answers 400 to a check it does not know: only catalogue checks get a link.
                "url": findings_url(public_url, tenant_id, check=check_id) if check_id in CHECK_IDS else None,
                "count": sum(1 for r in findings if r.check_id == check_id),
            }
        )

    total = len(findings)
    oldest = findings[0].first_seen
    summary = f"{plural(total, 'critical finding')} {'is' if total == 1 else 'are'} still open in this tenant"
    summary += f"; the oldest has been open for {elapsed(oldest, reminder.as_of)}." if oldest else "."
    interval = plural(reminder.interval_hours, "hour")
    return {
        "subject": _subject(reminder),
        "summary": summary,
        "tenant": tenant_view(reminder.tenant),
        "as_of": iso(reminder.as_of),
        "findings": rows,
        "findings_total": total,
        "findings_more": max(total - MAX_LISTED, 0),
        "guidance": guidance,
        "why": (
            f"PartnerGuard sends this reminder every {interval} while critical findings stay open in a tenant; "
            "set ALERT_REMINDER_HOURS=0 to stop."
        ),
        "links": {"active": findings_url(public_url, tenant_id)},
        # Shown when there is no public URL, so the reader still knows where to look.
        "api_path": findings_path(tenant_id),
    }


def render_reminder(reminder: Reminder, public_url: str | None) -> RenderedEmail:
    """The reminder as a subject, an HTML body and a plain-text body.

    `public_url` is PARTNERGUARD_PUBLIC_URL (settings.public_url); without it the email names the
    API path but links nowhere.
    """
    return render_email(HTML_TEMPLATE, TEXT_TEMPLATE, _view(reminder, public_url))

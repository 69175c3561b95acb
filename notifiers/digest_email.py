"""The digest email: one message per tenant per run, rendered as HTML and plain text.

A digest lists what changed in one run of one tenant: the findings that are new (most severe
first), then the ones this run resolved (saying whether they were fixed or merely no longer
observed in the sign-in look-back window), then how many findings are still open. It names the
tenant, each check, what to do about it, and links to the HTTP API's findings
(`{PARTNERGUARD_PUBLIC_URL}/api/tenants/{id}/findings`, SPEC §4).

Every tenant-controlled string is capped and made inert, and the HTML is autoescaped, by the
helpers and the template environment all alert emails share (`notifiers.email_view`, which
explains both layers). The HTML is meant for Outlook's Word-based renderer as well as browsers.

Sending is not done here: `render_digest` returns a `RenderedEmail`, which `notifiers.outbox`
writes as an `.eml` file and `notifiers.acs` sends through ACS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from notifiers.email_view import (
    DETAIL_LIMIT,
    ID_LIMIT,
    NAME_LIMIT,
    REMEDIATION_LIMIT,
    SEVERITY_LABELS,
    SUBJECT_NAME_LIMIT,
    TEMPLATE_ENVIRONMENT,
    TEMPLATES,
    RenderedEmail,
    clip,
    findings_path,
    findings_url,
    plural,
    render_email,
    severity_view,
    subject_name,
    subject_view,
    tenant_view,
)
from partnerguard.model import FindingState, Report, Severity, TenantInfo, iso
from partnerguard.storage.lifecycle import RESOLUTION_FIXED, RESOLUTION_NO_LONGER_OBSERVED
from partnerguard.storage.records import FindingRecord

# What this module offered before the shared helpers moved to `notifiers.email_view`;
# callers (the outbox, the transports, tests) import these from here.
__all__ = [
    "DETAIL_LIMIT",
    "HTML_TEMPLATE",
    "ID_LIMIT",
    "MAX_LISTED_NEW",
    "MAX_LISTED_RESOLVED",
    "NAME_LIMIT",
    "REMEDIATION_LIMIT",
    "SUBJECT_NAME_LIMIT",
    "TEMPLATES",
    "TEMPLATE_ENVIRONMENT",
    "TEXT_TEMPLATE",
    "CheckGuidance",
    "Digest",
    "NewFinding",
    "OpenCount",
    "RenderedEmail",
    "ResolvedFinding",
    "findings_url",
    "render_digest",
]

HTML_TEMPLATE = "digest.html.j2"
TEXT_TEMPLATE = "digest.txt.j2"

# A first scan of a large tenant can have thousands of new findings. Listing them all would make
# a message mail servers reject (or nobody reads); the digest lists the most severe and counts
# the rest, which the linked API serves in full.
MAX_LISTED_NEW = 200
MAX_LISTED_RESOLVED = 100

_RESOLUTION_WORDING = {
    RESOLUTION_FIXED: ("Fixed", "The check no longer finds it."),
    RESOLUTION_NO_LONGER_OBSERVED: (
        "No longer observed",
        "The sign-in evidence aged out of the look-back window; nothing proves the behaviour stopped.",
    ),
}
# Rows resolved before the lifecycle recorded why carry no resolution: say only that it resolved.
_UNKNOWN_RESOLUTION_WORDING = ("Resolved", "")


@dataclass(frozen=True)
class NewFinding:
    check_id: str
    check_title: str
    subject_id: str
    subject_type: str
    subject_name: str
    detail: str
    severity: Severity


@dataclass(frozen=True)
class ResolvedFinding:
    check_id: str
    check_title: str
    subject_id: str
    subject_type: str
    subject_name: str
    detail: str
    # None when the stored row carries a severity this version does not know.
    severity: Severity | None
    # FindingRecord.resolution: "fixed", "no longer observed", or None for older rows.
    resolution: str | None
    resolved_at: datetime | None


@dataclass(frozen=True)
class CheckGuidance:
    """What to do about one check's findings (the check's remediation)."""

    check_id: str
    title: str
    remediation: str


@dataclass(frozen=True)
class OpenCount:
    check_id: str
    title: str
    count: int


@dataclass(frozen=True)
class Digest:
    """What one run of one tenant changed, in the order the email lists it."""

    tenant: TenantInfo
    run_id: str
    finished: datetime
    # Most severe first; then in the report's check order, then by name.
    new: tuple[NewFinding, ...]
    resolved: tuple[ResolvedFinding, ...]
    # Checks with findings still open after this run, in the report's check order; no zeros.
    still_open: tuple[OpenCount, ...]
    # What to do, for each check that has a new finding, most severe first.
    guidance: tuple[CheckGuidance, ...]

    @property
    def total_still_open(self) -> int:
        return sum(c.count for c in self.still_open)

    @property
    def has_changes(self) -> bool:
        """Whether the run changed anything worth a message (a digest of counts alone is not)."""
        return bool(self.new or self.resolved)

    @classmethod
    def from_run(
        cls,
        report: Report,
        resolved: Sequence[FindingRecord],
        still_open: Mapping[str, int],
    ) -> Digest:
        """The digest of `report`'s run.

        `resolved` are the lifecycle rows this run resolved; `still_open` maps a check id to how
        many of the tenant's findings are still open after the run (state `open`: neither the new
        ones this digest lists nor excepted ones), as the store counts them. The store's counts
        are used, not the report's, because a check that could not be assessed keeps its open
        findings in storage while the report shows none for it.
        """
        tenant_id = report.tenant.id
        for record in resolved:
            # A record of another tenant here is a caller's bug that would leak one customer's
            # findings into another customer's email: refuse rather than render.
            if record.tenant_id.lower() != tenant_id.lower():
                raise ValueError(
                    f"resolved finding of tenant {record.tenant_id!r} in the digest of tenant {tenant_id!r}"
                )
            if record.state != FindingState.RESOLVED:
                raise ValueError(f"finding {record.check_id}/{record.subject_id} is {record.state!r}, not resolved")
        for check_id, count in still_open.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ValueError(f"still-open count of {check_id!r} must be a whole number >= 0, got {count!r}")

        position = {check.id: index for index, check in enumerate(report.checks)}
        titles = {check.id: check.title for check in report.checks}
        unknown_position = len(position)

        new = [
            NewFinding(
                check_id=check.id,
                check_title=check.title,
                subject_id=item.finding.subject_id,
                subject_type=str(item.finding.subject_type),
                subject_name=item.finding.subject_name,
                detail=item.finding.detail,
                severity=item.finding.severity,
            )
            for check in report.checks
            for item in check.findings
            if item.state == FindingState.NEW
        ]
        new.sort(key=lambda f: (-f.severity.rank, position[f.check_id], f.subject_name.casefold(), f.subject_id))

        resolved_items = [
            ResolvedFinding(
                check_id=record.check_id,
                check_title=titles.get(record.check_id, record.check_id),
                subject_id=record.subject_id,
                subject_type=record.subject_type,
                subject_name=record.subject_name,
                detail=record.detail,
                severity=_severity(record.severity),
                resolution=record.resolution,
                resolved_at=record.resolved_at,
            )
            for record in resolved
        ]
        resolved_items.sort(
            key=lambda f: (
                -(f.severity.rank if f.severity else -1),
                position.get(f.check_id, unknown_position),
                f.check_id,
                f.subject_name.casefold(),
                f.subject_id,
            )
        )

        open_counts = sorted(
            (
                OpenCount(check_id, titles.get(check_id, check_id), count)
                for check_id, count in still_open.items()
                if count
            ),
            key=lambda c: (position.get(c.check_id, unknown_position), c.check_id),
        )

        remediation = {check.id: check.remediation for check in report.checks}
        guidance = [
            CheckGuidance(check_id, titles[check_id], remediation[check_id])
            # dict.fromkeys keeps first appearance, so guidance follows the severity order of `new`.
            for check_id in dict.fromkeys(f.check_id for f in new)
        ]

        return cls(
            tenant=report.tenant,
            run_id=report.run_id,
            finished=report.finished,
            new=tuple(new),
            resolved=tuple(resolved_items),
            still_open=tuple(open_counts),
            guidance=tuple(guidance),
        )


def _severity(value: str) -> Severity | None:
    try:
        return Severity(value)
    except ValueError:
        return None


def _subject(digest: Digest) -> str:
    name = subject_name(digest.tenant)
    parts = [f"{len(digest.new)} new"]
    if digest.new:
        parts[0] += f" ({SEVERITY_LABELS[digest.new[0].severity].lower()})"
    parts.append(f"{len(digest.resolved)} resolved")
    parts.append(f"{digest.total_still_open} still open")
    return f"PartnerGuard: {name} — {', '.join(parts)}"


def _view(digest: Digest, public_url: str | None) -> dict[str, Any]:
    """Everything the templates print, each tenant-controlled string capped and made inert."""
    tenant_id = digest.tenant.id
    new_rows = [
        {
            "severity": severity_view(f.severity),
            "check_title": clip(f.check_title, NAME_LIMIT),
            "check_id": clip(f.check_id, ID_LIMIT),
            "subject": subject_view(f.subject_type, f.subject_name, f.subject_id),
            "detail": clip(f.detail, DETAIL_LIMIT),
        }
        for f in digest.new[:MAX_LISTED_NEW]
    ]
    resolved_rows = []
    for r in digest.resolved[:MAX_LISTED_RESOLVED]:
        label, explanation = _RESOLUTION_WORDING.get(r.resolution or "", _UNKNOWN_RESOLUTION_WORDING)
        resolved_rows.append(
            {
                "severity": severity_view(r.severity),
                "check_title": clip(r.check_title, NAME_LIMIT),
                "check_id": clip(r.check_id, ID_LIMIT),
                "subject": subject_view(r.subject_type, r.subject_name, r.subject_id),
                "detail": clip(r.detail, DETAIL_LIMIT),
                "resolution": label,
                "explanation": explanation,
                "resolved_at": iso(r.resolved_at) if r.resolved_at else "",
            }
        )
    guidance = [
        {
            "title": clip(g.title, NAME_LIMIT),
            "check_id": clip(g.check_id, ID_LIMIT),
            "remediation": clip(g.remediation, REMEDIATION_LIMIT),
            "url": findings_url(public_url, tenant_id, check=g.check_id),
            "count": sum(1 for f in digest.new if f.check_id == g.check_id),
        }
        for g in digest.guidance
    ]
    still_open = [
        {
            "title": clip(c.title, NAME_LIMIT),
            "check_id": clip(c.check_id, ID_LIMIT),
            "count": c.count,
            "url": findings_url(public_url, tenant_id, check=c.check_id),
        }
        for c in digest.still_open
    ]
    total_open = digest.total_still_open
    summary = (
        f"{plural(len(digest.new), 'new finding')}, {len(digest.resolved)} resolved, "
        f"{plural(total_open, 'finding')} still open."
    )
    return {
        "subject": _subject(digest),
        "summary": summary,
        "tenant": tenant_view(digest.tenant),
        "run_id": clip(digest.run_id, ID_LIMIT),
        "finished": iso(digest.finished),
        "new": new_rows,
        "new_total": len(digest.new),
        "new_more": max(len(digest.new) - MAX_LISTED_NEW, 0),
        "resolved": resolved_rows,
        "resolved_total": len(digest.resolved),
        "resolved_more": max(len(digest.resolved) - MAX_LISTED_RESOLVED, 0),
        "guidance": guidance,
        "still_open": still_open,
        "still_open_total": total_open,
        "links": {
            "active": findings_url(public_url, tenant_id),
            "resolved": findings_url(public_url, tenant_id, state="resolved"),
        },
        # Shown when there is no public URL, so the reader still knows where to look.
        "api_path": findings_path(tenant_id),
    }


def render_digest(digest: Digest, public_url: str | None) -> RenderedEmail:
    """The digest as a subject, an HTML body and a plain-text body.

    `public_url` is PARTNERGUARD_PUBLIC_URL (settings.public_url); without it the email names the
    API path but links nowhere.
    """
    return render_email(HTML_TEMPLATE, TEXT_TEMPLATE, _view(digest, public_url))

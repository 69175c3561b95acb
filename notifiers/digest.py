"""The digest email: one message per tenant per run, rendered as HTML and plain text.

A digest lists what changed in one run of one tenant: the findings that are new (most severe
first), then the ones this run resolved (saying whether they were fixed or merely no longer
observed in the sign-in look-back window), then how many findings are still open. It names the
tenant, each check, what to do about it, and links to the HTTP API's findings
(`{PARTNERGUARD_PUBLIC_URL}/api/tenants/{id}/findings`, SPEC §4).

Almost every string in a digest comes from a tenant PartnerGuard does not control (display
names, app names, policy names, the tenant's own name) or from storage that holds such strings.
Two layers keep them inert:

- every value a template prints goes through `_inert` (Jinja2's `finalize`): `safe_text` makes
  control characters, ANSI escapes and bidirectional overrides visible as escapes, so a name can
  neither forge lines in the plain-text part nor read backwards, and the view model caps its
  length, so a 10 KB display name cannot bury the message;
- the HTML template is autoescaped (`select_autoescape` on `.html.j2`), so markup in a name is
  shown as text, never parsed.

The HTML is meant for Outlook's Word-based renderer as well as browsers: table layout, inline
styles only, no script, no stylesheet, no image, nothing loaded from anywhere.

Sending is not done here: `render_digest` returns a `RenderedEmail`, which `notifiers.outbox`
writes as an `.eml` file (and, with the alerts issue, ACS sends).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import jinja2
from markupsafe import Markup

from checks.base import Severity
from partnerguard.report import FindingState, Report, TenantInfo, iso
from partnerguard.storage.lifecycle import RESOLUTION_FIXED, RESOLUTION_NO_LONGER_OBSERVED
from partnerguard.storage.records import FindingRecord
from partnerguard.text import safe_text

TEMPLATES = Path(__file__).resolve().parent / "templates"
HTML_TEMPLATE = "digest.html.j2"
TEXT_TEMPLATE = "digest.txt.j2"

# Length caps for what a tenant controls. A display name may be up to 256 characters in Entra
# ID, but nothing stops storage or a report document from carrying more; past these limits the
# value is cut with an ellipsis (the full value stays in the API the email links to).
NAME_LIMIT = 200
ID_LIMIT = 160
DETAIL_LIMIT = 1000
REMEDIATION_LIMIT = 2000
# The subject line is read in a list of messages: keep the tenant's part of it short.
SUBJECT_NAME_LIMIT = 80

# A first scan of a large tenant can have thousands of new findings. Listing them all would make
# a message mail servers reject (or nobody reads); the digest lists the most severe and counts
# the rest, which the linked API serves in full.
MAX_LISTED_NEW = 200
MAX_LISTED_RESOLVED = 100

# safe_text leaves the Unicode line and paragraph separators alone, yet some mail clients break
# lines on them: a name could still fake a line of its own in the plain-text part.
_LINE_SEPARATORS = str.maketrans({"\u2028": "\\u2028", "\u2029": "\\u2029"})

_SEVERITY_LABELS = {
    Severity.CRITICAL: "Critical",
    Severity.HIGH: "High",
    Severity.MEDIUM: "Medium",
    Severity.LOW: "Low",
}
# (background, text) colours of the severity badge: constants, never tenant data.
_SEVERITY_COLOURS = {
    Severity.CRITICAL: ("#82071e", "#ffffff"),
    Severity.HIGH: ("#cf222e", "#ffffff"),
    Severity.MEDIUM: ("#9a6700", "#ffffff"),
    Severity.LOW: ("#57606a", "#ffffff"),
}
_UNKNOWN_SEVERITY_COLOURS = ("#d0d7de", "#1b1f24")

_SUBJECT_TYPE_LABELS = {
    "user": "User",
    "policy": "Policy",
    "application": "Application",
    "servicePrincipal": "Service principal",
    "relationship": "GDAP relationship",
    "tenant": "Tenant",
}

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
class RenderedEmail:
    """A digest ready to send: a one-line subject and the two alternative bodies."""

    subject: str
    html: str
    text: str


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


def _inert(value: object) -> str:
    """Every value a digest template prints: one line, control and bidi characters visible.

    `Markup` passes untouched: in these templates only a macro's output is Markup (template
    literals around values that were themselves finalized and escaped), and turning it back into
    a plain string would escape the macro's tags. The view model never holds Markup.
    """
    if isinstance(value, Markup):
        return value
    return safe_text(value).translate(_LINE_SEPARATORS)


def _clip(value: object, limit: int) -> str:
    return safe_text(value, limit=limit).translate(_LINE_SEPARATORS)


def _plural(count: int, singular: str, plural: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (plural or singular + 's')}"


def findings_url(public_url: str | None, tenant_id: str, **query: str) -> str | None:
    """The HTTP API's findings of a tenant (SPEC §4), or None without a public URL.

    The base is checked even though settings validate PARTNERGUARD_PUBLIC_URL: the link ends up
    in an `href`, and only http(s) may ever go there (a `javascript:` URL survives escaping).
    """
    if not public_url:
        return None
    parts = urlsplit(public_url)
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
        raise ValueError(f"the public URL must be an https:// URL, got {public_url!r}")
    if parts.query or parts.fragment:
        raise ValueError(f"the public URL must have no query or fragment, got {public_url!r}")
    url = f"{public_url.rstrip('/')}/api/tenants/{quote(tenant_id, safe='')}/findings"
    return f"{url}?{urlencode(query)}" if query else url


def _subject(digest: Digest) -> str:
    name = _clip(digest.tenant.name or digest.tenant.id, SUBJECT_NAME_LIMIT)
    parts = [f"{len(digest.new)} new"]
    if digest.new:
        parts[0] += f" ({_SEVERITY_LABELS[digest.new[0].severity].lower()})"
    parts.append(f"{len(digest.resolved)} resolved")
    parts.append(f"{digest.total_still_open} still open")
    return f"PartnerGuard: {name} — {', '.join(parts)}"


def _severity_view(severity: Severity | None) -> dict[str, str]:
    if severity is None:
        background, colour = _UNKNOWN_SEVERITY_COLOURS
        return {"label": "Unknown", "background": background, "colour": colour}
    background, colour = _SEVERITY_COLOURS[severity]
    return {"label": _SEVERITY_LABELS[severity], "background": background, "colour": colour}


def _subject_view(subject_type: str, name: str, subject_id: str) -> dict[str, str]:
    return {
        "type": _SUBJECT_TYPE_LABELS.get(subject_type, _clip(subject_type, 40) or "Subject"),
        # A finding without a name (a deleted user) is still identified by its id.
        "name": _clip(name, NAME_LIMIT) if name else _clip(subject_id, ID_LIMIT),
        "id": _clip(subject_id, ID_LIMIT),
    }


def _view(digest: Digest, public_url: str | None) -> dict[str, Any]:
    """Everything the templates print, each tenant-controlled string capped and made inert."""
    tenant_id = digest.tenant.id
    new_rows = [
        {
            "severity": _severity_view(f.severity),
            "check_title": _clip(f.check_title, NAME_LIMIT),
            "check_id": _clip(f.check_id, ID_LIMIT),
            "subject": _subject_view(f.subject_type, f.subject_name, f.subject_id),
            "detail": _clip(f.detail, DETAIL_LIMIT),
        }
        for f in digest.new[:MAX_LISTED_NEW]
    ]
    resolved_rows = []
    for r in digest.resolved[:MAX_LISTED_RESOLVED]:
        label, explanation = _RESOLUTION_WORDING.get(r.resolution or "", _UNKNOWN_RESOLUTION_WORDING)
        resolved_rows.append(
            {
                "severity": _severity_view(r.severity),
                "check_title": _clip(r.check_title, NAME_LIMIT),
                "check_id": _clip(r.check_id, ID_LIMIT),
                "subject": _subject_view(r.subject_type, r.subject_name, r.subject_id),
                "detail": _clip(r.detail, DETAIL_LIMIT),
                "resolution": label,
                "explanation": explanation,
                "resolved_at": iso(r.resolved_at) if r.resolved_at else "",
            }
        )
    guidance = [
        {
            "title": _clip(g.title, NAME_LIMIT),
            "check_id": _clip(g.check_id, ID_LIMIT),
            "remediation": _clip(g.remediation, REMEDIATION_LIMIT),
            "url": findings_url(public_url, tenant_id, check=g.check_id),
            "count": sum(1 for f in digest.new if f.check_id == g.check_id),
        }
        for g in digest.guidance
    ]
    still_open = [
        {
            "title": _clip(c.title, NAME_LIMIT),
            "check_id": _clip(c.check_id, ID_LIMIT),
            "count": c.count,
            "url": findings_url(public_url, tenant_id, check=c.check_id),
        }
        for c in digest.still_open
    ]
    total_open = digest.total_still_open
    summary = (
        f"{_plural(len(digest.new), 'new finding')}, {len(digest.resolved)} resolved, "
        f"{_plural(total_open, 'finding')} still open."
    )
    return {
        "subject": _subject(digest),
        "summary": summary,
        "tenant": {
            "name": _clip(digest.tenant.name or digest.tenant.id, NAME_LIMIT),
            "id": _clip(tenant_id, ID_LIMIT),
            "role": "partner tenant" if digest.tenant.role == "partner" else "customer tenant",
        },
        "run_id": _clip(digest.run_id, ID_LIMIT),
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
        "api_path": f"/api/tenants/{quote(tenant_id, safe='')}/findings",
    }


TEMPLATE_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    # HTML templates are escaped; the plain-text one is not (escaping would print &amp;), which
    # is why `finalize` makes every printed value inert for both. Any other template, or one
    # from a string, is escaped: the safe default.
    autoescape=jinja2.select_autoescape(
        enabled_extensions=("html.j2",),
        disabled_extensions=("txt.j2",),
        default_for_string=True,
        default=True,
    ),
    finalize=_inert,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def render_digest(digest: Digest, public_url: str | None) -> RenderedEmail:
    """The digest as a subject, an HTML body and a plain-text body.

    `public_url` is PARTNERGUARD_PUBLIC_URL (settings.public_url); without it the email names the
    API path but links nowhere.
    """
    view = _view(digest, public_url)
    html = TEMPLATE_ENVIRONMENT.get_template(HTML_TEMPLATE).render(view)
    text = TEMPLATE_ENVIRONMENT.get_template(TEXT_TEMPLATE).render(view)
    return RenderedEmail(subject=view["subject"], html=html, text=text)

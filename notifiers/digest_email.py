"""The digest email: one message per tenant per run, rendered as HTML and plain text.

A digest tells what one run of one tenant changed, in the order a reader needs it, so that it
reads in about a minute however many findings the run has:

1. a **summary**, one row per check that changed or still has open findings: how many findings
   are new (how many of them critical), resolved and still open, and the one thing to do first
   (the first step of the check's remediation). Above it, "start here": the check whose new
   findings are the most severe (then the most numerous), and why it was chosen;
2. the **new findings grouped by check, then by what is wrong**: each kind of finding is one
   sentence followed by the subjects it applies to, administrators first
   (`partnerguard.finding_groups`), rather than the same sentence once per user;
3. the **resolved findings**, grouped the same way with how each resolved (fixed, or merely no
   longer observed in the sign-in look-back window), and a closing link to everything.

Listing is capped: a few subjects per group, a few groups per check, a few groups per digest.
Every count is the full count, and whatever is not listed is one link away: the check's
findings in the HTTP API (`{PARTNERGUARD_PUBLIC_URL}/api/tenants/{id}/findings?check=…`,
SPEC §4) and the run's full report (`…/scans/{runId}`, which also holds every remediation step).
The subject line says what changed ("3 new (1 critical), 2 resolved"). The plain-text and HTML
parts are rendered from one view model, so they say the same.

Every tenant-controlled string is capped and made inert, and the HTML is autoescaped, by the
helpers and the template environment all alert emails share (`notifiers.email_view`, which
explains both layers). The HTML is meant for Outlook's Word-based renderer as well as browsers.

Sending is not done here: `render_digest` returns a `RenderedEmail`, which `notifiers.outbox`
writes as an `.eml` file and `notifiers.acs` sends through ACS.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

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
    api_url,
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
from partnerguard.finding_groups import DetailGroup, admin_user_ids, group_by_detail, user_object_id
from partnerguard.model import FindingState, Report, Severity, TenantInfo, iso
from partnerguard.storage.lifecycle import RESOLUTION_FIXED, RESOLUTION_NO_LONGER_OBSERVED
from partnerguard.storage.records import FindingRecord

# What this module offered before the shared helpers moved to `notifiers.email_view`;
# callers (the outbox, the transports, tests) import these from here.
__all__ = [
    "DETAIL_LIMIT",
    "HTML_TEMPLATE",
    "ID_LIMIT",
    "MAX_GROUPS_LISTED",
    "MAX_GROUPS_PER_CHECK",
    "MAX_SUBJECTS_PER_GROUP",
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

# A first scan of a large tenant can have thousands of new findings; listed one by one they make
# a message nobody reads (the demo's partner tenant: 88 findings, 154 KB). The digest lists each
# kind of finding once with a few of its subjects, a few kinds per check, and a few kinds in all
# (new and resolved together), and links to the rest; every count stays the full count. These
# are what fits the demo's partner digest on about two screens (tests/test_digest_contoso.py).
MAX_SUBJECTS_PER_GROUP = 4
MAX_GROUPS_PER_CHECK = 2
MAX_GROUPS_LISTED = 6
# The first step of a remediation, as the summary quotes it, is cut here (the full steps are in
# the run's report the digest links to).
ACTION_LIMIT = 600

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
    # Whether some finding of the report marks this user as holding an administrator role
    # (`partnerguard.finding_groups.admin_user_ids`); False means "not known to be".
    is_admin: bool = False


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
    is_admin: bool = False


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
    # The check's remediation when the report knows the check ("" for an id it does not list).
    remediation: str = ""


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
        admins = admin_user_ids(
            (str(item.finding.subject_type), item.finding.subject_id, item.finding.evidence)
            for check in report.checks
            for item in check.findings
        ) | admin_user_ids((r.subject_type, r.subject_id, r.evidence) for r in resolved)

        def is_admin(subject_type: str, subject_id: str) -> bool:
            return user_object_id(subject_type, subject_id) in admins

        new = [
            NewFinding(
                check_id=check.id,
                check_title=check.title,
                subject_id=item.finding.subject_id,
                subject_type=str(item.finding.subject_type),
                subject_name=item.finding.subject_name,
                detail=item.finding.detail,
                severity=item.finding.severity,
                is_admin=is_admin(str(item.finding.subject_type), item.finding.subject_id),
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
                is_admin=is_admin(record.subject_type, record.subject_id),
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

        remediation = {check.id: check.remediation for check in report.checks}
        open_counts = sorted(
            (
                OpenCount(check_id, titles.get(check_id, check_id), count, remediation.get(check_id, ""))
                for check_id, count in still_open.items()
                if count
            ),
            key=lambda c: (position.get(c.check_id, unknown_position), c.check_id),
        )

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


# A remediation is written as numbered steps ("1. … 2. …"); the first is what to do first.
_STEP_ONE = re.compile(r"\s*1\.\s+(?P<step>.*?)(?=\s+2\.\s|\Z)", re.DOTALL)
_FIRST_SENTENCE = re.compile(r"\s*(?P<step>.*?[.!?])(?=\s|\Z)", re.DOTALL)

# How a group names its subjects, by the type they share.
_PLURAL_TYPES = {
    "user": "users",
    "policy": "policies",
    "application": "applications",
    "servicePrincipal": "service principals",
    "relationship": "GDAP relationships",
    "tenant": "tenants",
}

F = TypeVar("F", NewFinding, ResolvedFinding)


def first_step(remediation: str) -> str:
    """The first thing a remediation says to do: its step 1, else its first sentence."""
    text = remediation.strip()
    match = _STEP_ONE.match(text) or _FIRST_SENTENCE.match(text)
    return match.group("step").strip() if match else text


def _rank(severity: Severity | None) -> int:
    return severity.rank if severity is not None else -1


def _subject(digest: Digest) -> str:
    """What changed, as a list of messages shows it: "88 new (31 critical), 3 resolved"."""
    name = subject_name(digest.tenant)
    return f"PartnerGuard: {name} — {len(digest.new)} new{_top_count(digest)}, {len(digest.resolved)} resolved"


def _top_count(digest: Digest) -> str:
    """ " (12 critical)": how many new findings have the run's highest severity ("" if none)."""
    if not digest.new:
        return ""
    top = digest.new[0].severity
    return f" ({sum(1 for f in digest.new if f.severity == top)} {SEVERITY_LABELS[top].lower()})"


@dataclass
class _CheckChange:
    """What the run changed for one check, before any of it is capped."""

    check_id: str
    title: str
    new: list[NewFinding]
    resolved: list[ResolvedFinding]
    still_open: int
    remediation: str

    @property
    def top_severity(self) -> Severity | None:
        return self.new[0].severity if self.new else None

    @property
    def at_top(self) -> int:
        return sum(1 for f in self.new if f.severity == self.top_severity)

    @property
    def admins(self) -> int:
        """New findings about administrators: within a severity, their checks come first."""
        return sum(1 for f in self.new if f.is_admin)


def _changes(digest: Digest) -> list[_CheckChange]:
    """One entry per check the run changed or that still has open findings, most urgent first.

    Most urgent: the most severe new findings, then the most about administrators, then the most
    of them at that severity, then the most new findings; checks with nothing new follow
    (resolved, then still open), each in the order the digest holds them (the report's order).
    """
    changes: dict[str, _CheckChange] = {}

    def entry(check_id: str, title: str) -> _CheckChange:
        if check_id not in changes:
            changes[check_id] = _CheckChange(check_id, title, [], [], 0, "")
        return changes[check_id]

    for f in digest.new:
        entry(f.check_id, f.check_title).new.append(f)
    for g in digest.guidance:
        entry(g.check_id, g.title).remediation = g.remediation
    for r in digest.resolved:
        entry(r.check_id, r.check_title).resolved.append(r)
    for c in digest.still_open:
        change = entry(c.check_id, c.title)
        change.still_open = c.count
        change.remediation = change.remediation or c.remediation
    order = list(changes)
    return sorted(
        changes.values(),
        key=lambda c: (-_rank(c.top_severity), -c.admins, -c.at_top, -len(c.new), order.index(c.check_id)),
    )


def _why(first: _CheckChange, changes: Sequence[_CheckChange]) -> str:
    """Why the digest says to start with `first`'s check."""
    assert first.top_severity is not None
    label = SEVERITY_LABELS[first.top_severity].lower()
    admins = sum(1 for f in first.new if f.is_admin and f.severity == first.top_severity)
    reason = f"it has the most severe new findings of this run ({first.at_top} {label}"
    reason += f", {admins} about administrators)" if admins else ")"
    rivals = [c for c in changes[1:] if c.top_severity == first.top_severity]
    tied = [c for c in rivals if c.at_top == first.at_top]
    if tied:
        # Equal at the top: it comes first by the order the summary gives (admins, then size).
        reason += f", as many as {plural(len(tied), 'other check')} (listed next)"
    elif rivals:
        reason += f", more than the {plural(len(rivals), 'other check')} with {label} ones"
    return reason


def _group_kind(subject_types: Iterable[str], count: int) -> str:
    """ "3 users", "1 policy", "2 subjects" (when a group mixes types)."""
    kinds = set(subject_types)
    kind = next(iter(kinds)) if len(kinds) == 1 else ""
    label = _PLURAL_TYPES.get(kind, "subjects")
    if count == 1:
        label = {"policies": "policy", "GDAP relationships": "GDAP relationship"}.get(label, label.removesuffix("s"))
    return f"{count} {label}"


def _groups(findings: Sequence[F], bucket: Callable[[F], Any]) -> list[DetailGroup[F]]:
    """`findings` (in the digest's order) grouped by `bucket`, then by what their detail says.

    Groups with the most severe findings come first, then those about administrators, then the
    largest: the group that reaches most people at the highest risk is read first.
    """
    buckets: dict[Any, list[F]] = {}
    for f in findings:
        buckets.setdefault(bucket(f), []).append(f)
    groups = [
        group
        for items in buckets.values()
        for group in group_by_detail(
            items,
            detail=lambda f: f.detail,
            name=lambda f: f.subject_name or f.subject_id,
            is_admin=lambda f: f.is_admin,
        )
    ]
    groups.sort(key=lambda g: (-_rank(g.members[0].item.severity), -g.admins, -g.count))
    return groups


def _group_view(group: DetailGroup[F]) -> dict[str, Any]:
    shown = group.members[:MAX_SUBJECTS_PER_GROUP]
    first = group.members[0].item
    view: dict[str, Any] = {
        "severity": severity_view(first.severity),
        "sentence": clip(group.sentence, DETAIL_LIMIT),
        "count": group.count,
        "kind": _group_kind((m.item.subject_type for m in group.members), group.count),
        "subjects": [
            {
                "name": subject_view(m.item.subject_type, m.item.subject_name, m.item.subject_id)["name"],
                "admin": m.is_admin,
                # What this subject's finding said where the sentence shows "…".
                "particulars": clip(" · ".join(m.particulars), NAME_LIMIT),
            }
            for m in shown
        ],
        "more": group.count - len(shown),
    }
    if isinstance(first, ResolvedFinding):
        label, explanation = _RESOLUTION_WORDING.get(first.resolution or "", _UNKNOWN_RESOLUTION_WORDING)
        view["resolution"] = label
        view["explanation"] = explanation
    return view


class _Budget:
    """How many more groups the digest lists (MAX_GROUPS_LISTED), shared by all sections."""

    def __init__(self, groups: int) -> None:
        self.left = groups

    def take(self, groups: Sequence[DetailGroup[F]]) -> list[DetailGroup[F]]:
        taken = list(groups[: min(MAX_GROUPS_PER_CHECK, self.left)])
        self.left -= len(taken)
        return taken


def _section(
    change: _CheckChange, findings: Sequence[F], groups: Sequence[DetailGroup[F]], budget: _Budget, url: str | None
) -> dict[str, Any]:
    listed = budget.take(groups)
    return {
        "title": clip(change.title, NAME_LIMIT),
        "check_id": clip(change.check_id, ID_LIMIT),
        "total": len(findings),
        "groups": [_group_view(g) for g in listed],
        # The rest of the check's findings, counted so that listed + more is always the total.
        "more_findings": len(findings) - sum(g.count for g in listed),
        "more_groups": len(groups) - len(listed),
        "url": url,
    }


def _view(digest: Digest, public_url: str | None) -> dict[str, Any]:
    """Everything the templates print, each tenant-controlled string capped and made inert."""
    tenant_id = digest.tenant.id
    changes = _changes(digest)

    start = None
    if changes and changes[0].new:
        first = changes[0]
        start = {
            "title": clip(first.title, NAME_LIMIT),
            "check_id": clip(first.check_id, ID_LIMIT),
            "why": _why(first, changes),
            "action": clip(first_step(first.remediation), ACTION_LIMIT),
        }

    summary_rows = []
    for index, change in enumerate(changes):
        top = change.top_severity
        action = first_step(change.remediation) if change.new or change.still_open else ""
        if index == 0 and start is not None:
            # Said once, just above the summary, with why it comes first.
            action = "Start here (above)."
        summary_rows.append(
            {
                "title": clip(change.title, NAME_LIMIT),
                "check_id": clip(change.check_id, ID_LIMIT),
                "new": len(change.new),
                "new_top": f"{change.at_top} {SEVERITY_LABELS[top].lower()}" if top is not None else "",
                "resolved": len(change.resolved),
                "still_open": change.still_open,
                "action": clip(action, ACTION_LIMIT) if action else "Nothing left to do for this check.",
                "url": findings_url(public_url, tenant_id, check=change.check_id),
            }
        )

    budget = _Budget(MAX_GROUPS_LISTED)
    new_sections = [
        _section(
            change,
            change.new,
            _groups(change.new, lambda f: f.severity),
            budget,
            findings_url(public_url, tenant_id, check=change.check_id),
        )
        for change in changes
        if change.new
    ]
    resolved_sections = [
        _section(
            change,
            change.resolved,
            _groups(change.resolved, lambda r: (r.resolution or "", r.severity)),
            budget,
            findings_url(public_url, tenant_id, state="resolved", check=change.check_id),
        )
        for change in sorted(
            (c for c in changes if c.resolved), key=lambda c: -max(_rank(r.severity) for r in c.resolved)
        )
    ]

    new_total = len(digest.new)
    new_summary = plural(new_total, "new finding") + _top_count(digest)
    total_open = digest.total_still_open
    summary = f"{new_summary}, {len(digest.resolved)} resolved, {plural(total_open, 'finding')} still open."
    quoted_run = quote(digest.run_id, safe="")
    return {
        "subject": _subject(digest),
        "summary": summary,
        "tenant": tenant_view(digest.tenant),
        "run_id": clip(digest.run_id, ID_LIMIT),
        "finished": iso(digest.finished),
        "start": start,
        "checks": summary_rows,
        "new_total": new_total,
        "new_sections": new_sections,
        "resolved_total": len(digest.resolved),
        "resolved_sections": resolved_sections,
        "still_open_total": total_open,
        "limits": {"subjects": MAX_SUBJECTS_PER_GROUP, "groups": MAX_GROUPS_PER_CHECK},
        "links": {
            "active": findings_url(public_url, tenant_id),
            "resolved": findings_url(public_url, tenant_id, state="resolved"),
            "report": api_url(public_url, f"/api/tenants/{quote(tenant_id, safe='')}/scans/{quoted_run}"),
        },
        # Shown when there is no public URL, so the reader still knows where to look.
        "api_path": findings_path(tenant_id),
        "report_path": clip(f"/api/tenants/{quote(tenant_id, safe='')}/scans/{quoted_run}", ID_LIMIT * 2),
    }


def render_digest(digest: Digest, public_url: str | None) -> RenderedEmail:
    """The digest as a subject, an HTML body and a plain-text body.

    `public_url` is PARTNERGUARD_PUBLIC_URL (settings.public_url); without it the email names the
    API paths but links nowhere.
    """
    return render_email(HTML_TEMPLATE, TEXT_TEMPLATE, _view(digest, public_url))

"""What an alert says in Microsoft Teams: one Adaptive Card, posted to a Workflows webhook.

The Office 365 connectors (incoming webhooks) are retired; a partner creates a Teams *Workflows*
flow ("Post to a channel when a webhook request is received") and gives PartnerGuard its URL
(ALERT_TEAMS_WEBHOOK_URL). That flow takes the body Microsoft documents for the trigger "When a
Teams webhook request is received" (https://learn.microsoft.com/connectors/teams/#microsoft-teams-webhook;
https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using):
a `message` whose attachments are Adaptive Cards (Workflows take Adaptive Cards only, never the
connectors' MessageCard).

**Version.** Teams renders Adaptive Cards up to schema 1.5 ("Teams is also limited to version
1.5", https://learn.microsoft.com/microsoft-copilot-studio/guidance/adaptive-cards-overview; the
Teams cards reference says the same). The card declares 1.4 and uses only elements of 1.0-1.2
(TextBlock, FactSet, Container, Action.OpenUrl), so clients that lag behind still render it.
The test bench validates every card against Microsoft's 1.4 JSON schema.

**Size.** Teams refuses a message over about 28 KB ("Request Entity too large", HTTP 413:
https://learn.microsoft.com/connectors/teams/#known-issues-and-limitations; the incoming-webhook
page states 28 KB too). The serialized message is kept within `PAYLOAD_BUDGET` (24 KB, a margin
for what the flow adds around it) by listing fewer findings and saying how many more the report
holds ("…and 37 more in the report"); the counts by severity are always complete.

**Tenant text.** Teams renders a TextBlock's `text` and a Fact's `title`/`value` as Markdown
("Text formatting in cards",
https://learn.microsoft.com/microsoftteams/platform/task-modules-and-cards/cards/cards-format:
bold, italic, bulleted and numbered lists, links): a display name `[click](https://evil.example)`
would become a link that hides its destination, `**x**` emphasis, `- x` a list, and
`{{DATE(...)}}` a date function (https://learn.microsoft.com/adaptive-cards/authoring-cards/text-features).
Every string that is not a constant of this module goes through `md`: made one inert line and
capped (`clip`, as the emails do), then a backslash put before each character that Markdown could
read as syntax (`_MARKDOWN_SYNTAX`, `_BLOCK_MARKER`), which CommonMark defines as the literal
character. Only those: CommonMark lets any punctuation be escaped, but Teams clients have shown
such backslashes literally (microsoft/AdaptiveCards#5590 and #7474 on mobile; Teams-AdaptiveCards-
Mobile#58, fixed on Android only in December 2023; MicrosoftDocs/msteams-docs#5793), so
`contoso.com`, `user.name@contoso.com`, `Jean-Luc` and `O'Brien` are sent exactly as written.
A bare URL in a name may still be linked by the client, but such a link shows where it goes.

**Links.** Buttons (`Action.OpenUrl`) go only to URLs PartnerGuard builds itself: the HTTP API
under PARTNERGUARD_PUBLIC_URL, and a health card's admin-consent URL of each tenant whose consent
is missing ("Grant consent: <tenant>", the one link on that card that fixes something). Teams
shows at most six actions on a card ("You can have up to six",
https://learn.microsoft.com/microsoftteams/platform/task-modules-and-cards/cards/design-effective-cards):
the report's links come first in the count, and consent buttons take what is left; every consent
URL is also written in the card's text, so a tenant without a button still has its link.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from notifiers.alert_content import AlertContent, AlertPart
from notifiers.catalogue_text import catalogue_entry
from notifiers.digest_email import Digest
from notifiers.email_view import (
    ID_LIMIT,
    SEVERITY_LABELS,
    api_url,
    clip,
    elapsed,
    findings_url,
    plural,
    subject_view,
)
from notifiers.health_email import HealthAlert, HealthKind, HealthProblem
from notifiers.reminder_email import Reminder, ordered
from partnerguard.model import Severity, TenantInfo, iso

CARD_VERSION = "1.4"
ADAPTIVE_CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
# Teams' documented limit for a posted message, and the budget this module keeps under it.
TEAMS_PAYLOAD_LIMIT = 28 * 1024
PAYLOAD_BUDGET = 24 * 1024

# A card is read at a glance in a channel: shorter caps than the email's, the rest is in the report.
CARD_NAME_LIMIT = 120
CARD_DETAIL_LIMIT = 300
CARD_REMEDIATION_LIMIT = 500
# How many findings (or problems, or checks' guidance) a list starts with before the size budget
# cuts it further: the most severe (or oldest) first.
MAX_LISTED = 20
# The list lengths tried, longest first, until the message fits the budget.
_LISTING_STEPS = (MAX_LISTED, 15, 10, 6, 3, 1, 0)

DASHBOARD_PATH = "/api/dashboard"
_HEALTH_PATH = "/api/tenants"

# Teams shows at most six actions on a card (design-effective-cards, above).
MAX_ACTIONS = 6
# An action's title is plain text (Markdown is rendered only in TextBlocks and facts) on a button.
ACTION_TITLE_LIMIT = 40

# What Markdown can read as syntax anywhere in a line: emphasis (* _), links and images ([ ] ( ) !),
# the escape itself (\\), code (`), strike-through (~), HTML, autolinks and entities (< > &), the
# TextBlock date and time functions ({ }), tables (|). CommonMark: "Any ASCII punctuation
# character may be backslash-escaped" and is then literal.
_MARKDOWN_SYNTAX = re.compile(r"([\\`*_\[\]()!~<>&{}|])")
# What is syntax only where a block starts: a heading (#), a list item (- + or 1. 1)), a thematic
# break (---). A value is one line, but may start a TextBlock, so its first character is escaped
# when it is one of these (`*`, `>` and `)` are escaped everywhere already). A number's `.` is
# escaped only where a list could start: before a space or at the end of the value (text may follow).
_BLOCK_MARKER = re.compile(r"^(?:[#+-]|[0-9]{1,9}(?=\.(?:[ ]|$)))")

_RESOLUTION_LABELS = {"fixed": "Fixed", "no longer observed": "No longer observed"}
_REMINDER_WHY = (
    "PartnerGuard sends this reminder while critical findings stay open; set ALERT_REMINDER_HOURS=0 to stop."
)
_HEALTH_HEADINGS: dict[HealthKind, str] = {
    "consent": "Consent missing or failing",
    "stale": "Tenants not scanned",
    "poison": "Messages PartnerGuard could not process",
}
_HEALTH_ACTIONS: dict[HealthKind, str] = {
    "consent": "A Global Administrator of the tenant must grant admin consent to the PartnerGuard app again.",
    "stale": "GET /api/tenants lists each tenant's consent and last run; the run's error says why it failed.",
    "poison": "Inspect the poison queue named here in PartnerGuard's storage account, fix the cause, "
    "then delete the messages.",
}


def md(value: object, limit: int) -> str:
    """`value` as inert Markdown text: one line, capped at `limit` characters, syntax escaped."""
    # Leading spaces would make an indented code block of a value that starts a TextBlock, and a
    # paragraph never shows them anyway (CommonMark strips a paragraph's initial whitespace).
    text = _MARKDOWN_SYNTAX.sub(r"\\\1", clip(value, limit).lstrip(" "))
    marker = _BLOCK_MARKER.match(text)
    if marker is None:
        return text
    if marker.group(0)[0].isdigit():
        end = marker.end()
        return f"{text[:end]}\\{text[end:]}"  # 1\. is no list item
    return f"\\{text}"


def serialize(message: dict[str, Any]) -> bytes:
    """The exact bytes posted: compact UTF-8 JSON (what the size budget is measured on)."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# -- card elements ---------------------------------------------------------------------------


def _text(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


def _heading(text: str) -> dict[str, Any]:
    return _text(text, weight="Bolder", spacing="Medium", separator=True)


def _facts(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    return {"type": "FactSet", "facts": [{"title": title, "value": value} for title, value in pairs]}


def _more(total: int, listed: int) -> list[dict[str, Any]]:
    if total <= listed:
        return []
    return [_text(md(f"…and {total - listed} more in the report.", 100), isSubtle=True, spacing="Small")]


def _severity_label(severity: Severity | None) -> str:
    return SEVERITY_LABELS[severity] if severity is not None else "Unknown"


def _subject(subject_type: str, name: str, subject_id: str) -> str:
    view = subject_view(subject_type, name, subject_id)
    return f"{md(view['type'], 40)}: {md(name or subject_id, CARD_NAME_LIMIT)}"


def _finding(label: str, check_title: str, subject: str, detail: str, note: str = "") -> list[dict[str, Any]]:
    line = f"**{label}** · {md(check_title, CARD_NAME_LIMIT)} — {subject}"
    blocks = [_text(line, spacing="Small")]
    extra = " · ".join(part for part in (md(detail, CARD_DETAIL_LIMIT) if detail else "", note) if part)
    if extra:
        blocks.append(_text(extra, isSubtle=True, spacing="None"))
    return blocks


def _tenant_line(tenant: TenantInfo, tail: str) -> dict[str, Any]:
    role = "Partner tenant" if tenant.role == "partner" else "Customer tenant"
    return _text(f"{role} {md(tenant.id, ID_LIMIT)} · {tail}", isSubtle=True, spacing="None")


def _guidance(title: str, remediation: str) -> dict[str, Any]:
    return _text(f"**{md(title, CARD_NAME_LIMIT)}**: {md(remediation, CARD_REMEDIATION_LIMIT)}", spacing="Small")


def _title(text: str) -> dict[str, Any]:
    return _text(text, size="Medium", weight="Bolder")


def _severity_counts(severities: Iterable[Severity | None]) -> list[tuple[str, str]]:
    counts = Counter(severities)
    order: list[Severity | None] = [*sorted(Severity, key=lambda s: -s.rank), None]
    return [(f"{_severity_label(s)} (new)", str(counts[s])) for s in order if counts[s]]


# -- the parts -------------------------------------------------------------------------------


def _digest(digest: Digest, listed: int) -> list[dict[str, Any]]:
    tenant = md(digest.tenant.name or digest.tenant.id, CARD_NAME_LIMIT)
    new, resolved, still_open = len(digest.new), len(digest.resolved), digest.total_still_open
    body = [
        _title(f"PartnerGuard: {tenant} — {new} new, {resolved} resolved, {still_open} still open"),
        _tenant_line(digest.tenant, f"run {md(digest.run_id, ID_LIMIT)} finished {md(iso(digest.finished), 40)}"),
        _facts(
            [
                ("New", str(new)),
                *_severity_counts(f.severity for f in digest.new),
                ("Resolved", str(resolved)),
                ("Still open", str(still_open)),
            ]
        ),
    ]
    if digest.new:
        body.append(_heading("Most severe new findings" if new > listed else "New findings"))
        for f in digest.new[:listed]:
            subject = _subject(f.subject_type, f.subject_name, f.subject_id)
            body += _finding(_severity_label(f.severity), f.check_title, subject, f.detail)
        body += _more(new, listed)
    if digest.resolved:
        body.append(_heading("Resolved"))
        for r in digest.resolved[:listed]:
            label = _RESOLUTION_LABELS.get(r.resolution or "", "Resolved")
            subject = _subject(r.subject_type, r.subject_name, r.subject_id)
            aged_out = "The evidence aged out of the look-back window; nothing proves the behaviour stopped."
            note = md(aged_out, 200) if r.resolution == "no longer observed" else ""
            body += _finding(label, r.check_title, subject, "", note)
        body += _more(resolved, listed)
    if digest.guidance:
        body.append(_heading("What to do"))
        for g in digest.guidance[:listed]:
            body.append(_guidance(g.title, g.remediation))
        body += _more(len(digest.guidance), listed)
    return body


def _reminder(reminder: Reminder, listed: int) -> list[dict[str, Any]]:
    tenant = md(reminder.tenant.name or reminder.tenant.id, CARD_NAME_LIMIT)
    findings = ordered(reminder.findings)
    total = len(findings)
    oldest = findings[0].first_seen
    body = [
        _title(f"PartnerGuard reminder: {tenant} — {plural(total, 'critical finding')} still open"),
        _tenant_line(reminder.tenant, f"as of {md(iso(reminder.as_of), 40)}"),
        _facts(
            [
                ("Critical, open", str(total)),
                ("Oldest open for", elapsed(oldest, reminder.as_of) if oldest else "unknown"),
                ("Reminder every", plural(reminder.interval_hours, "hour")),
            ]
        ),
        _heading("Oldest open findings" if total > listed else "Open findings"),
    ]
    for record in findings[:listed]:
        title, _ = catalogue_entry(record.check_id)
        subject = _subject(record.subject_type, record.subject_name, record.subject_id)
        note = md(f"Open for {elapsed(record.first_seen, reminder.as_of)}.", 100) if record.first_seen else ""
        body += _finding("Critical", title, subject, record.detail, note)
    body += _more(total, listed)
    checks = list(dict.fromkeys(r.check_id for r in findings))
    body.append(_heading("What to do"))
    for check_id in checks[:listed]:
        title, remediation = catalogue_entry(check_id)
        if remediation:
            body.append(_guidance(title, remediation))
    body += _more(len(checks), listed)
    body.append(_text(md(_REMINDER_WHY, 200), isSubtle=True))
    return body


def _of_kind(alert: HealthAlert, kind: HealthKind) -> list[HealthProblem]:
    """The alert's problems of `kind`, oldest first (unknown age last), then by tenant id."""
    problems = [p for p in alert.problems if p.kind == kind]
    problems.sort(key=lambda p: (p.since is None, p.since.timestamp() if p.since else 0.0, p.tenant_id or ""))
    return problems


def _problem(problem: HealthProblem, as_of: datetime) -> list[dict[str, Any]]:
    if problem.tenant_id:
        name = md(problem.tenant_name or problem.tenant_id, CARD_NAME_LIMIT)
        who = f"**{name}** ({md(problem.tenant_id, ID_LIMIT)})"
    else:
        who = "**Queue**"
    since = f" Since {md(iso(problem.since), 40)} ({elapsed(problem.since, as_of)})." if problem.since else ""
    blocks = [_text(f"{who}: {md(problem.detail, CARD_DETAIL_LIMIT)}{since}", spacing="Small")]
    if problem.consent_url:
        blocks.append(_text(f"Admin consent: {md(problem.consent_url, 2000)}", isSubtle=True, spacing="None"))
    return blocks


def _health(alert: HealthAlert, listed: int) -> list[dict[str, Any]]:
    counts = Counter(p.kind for p in alert.problems)
    body = [
        _title(f"PartnerGuard health: {plural(len(alert.problems), 'problem')} need attention"),
        _text(f"As of {md(iso(alert.as_of), 40)}", isSubtle=True, spacing="None"),
        _facts((_HEALTH_HEADINGS[kind], str(counts[kind])) for kind in _HEALTH_HEADINGS if counts[kind]),
    ]
    for kind, heading in _HEALTH_HEADINGS.items():
        problems = _of_kind(alert, kind)
        if not problems:
            continue
        body.append(_heading(heading))
        body.append(_text(md(_HEALTH_ACTIONS[kind], 1000), isSubtle=True, spacing="None"))
        for problem in problems[:listed]:
            body += _problem(problem, alert.as_of)
        body += _more(len(problems), listed)
    return body


def _part(part: AlertPart, listed: int) -> list[dict[str, Any]]:
    if isinstance(part, Digest):
        return _digest(part, listed)
    if isinstance(part, HealthAlert):
        return _health(part, listed)
    return _reminder(part, listed)


def _action(title: str, url: str) -> dict[str, Any]:
    return {"type": "Action.OpenUrl", "title": title, "url": url}


def _report_actions(parts: Sequence[AlertPart], public_url: str | None) -> list[dict[str, Any]]:
    """Buttons to the report: the tenant's findings (one tenant's alert), the tenants' status (a
    health alert), the dashboard. Only with a public URL (checked https by `api_url`)."""
    dashboard = api_url(public_url, DASHBOARD_PATH)
    if dashboard is None:
        return []
    actions: list[dict[str, Any]] = []
    tenants = {p.tenant.id for p in parts if isinstance(p, Digest | Reminder)}
    if len(tenants) == 1:
        url = findings_url(public_url, next(iter(tenants)))
        assert url is not None
        actions.append(_action("Open the tenant's findings", url))
    if any(isinstance(p, HealthAlert) for p in parts):
        url = api_url(public_url, _HEALTH_PATH)
        assert url is not None
        actions.append(_action("Open the tenants' status", url))
    actions.append(_action("Open the dashboard", dashboard))
    return actions


def _consent_actions(parts: Sequence[AlertPart]) -> list[dict[str, Any]]:
    """A "Grant consent" button per tenant whose consent is missing, in the order the card lists
    them. The URL is PartnerGuard's own (partnerguard.alerts.monitor.consent_url: the login host of
    its cloud, the tenant id, its app id), checked by `HealthProblem` as every linked URL is; the
    title is plain text, so the tenant's name is only made one line and capped."""
    actions: list[dict[str, Any]] = []
    seen: set[str] = set()
    for part in parts:
        if not isinstance(part, HealthAlert):
            continue
        for problem in _of_kind(part, "consent"):
            if problem.consent_url is None or problem.consent_url in seen:
                continue
            seen.add(problem.consent_url)
            tenant = clip(problem.tenant_name or problem.tenant_id, ACTION_TITLE_LIMIT - len("Grant consent: "))
            actions.append(_action(f"Grant consent: {tenant}", problem.consent_url))
    return actions


def _actions(parts: Sequence[AlertPart], public_url: str | None) -> list[dict[str, Any]]:
    """The card's buttons, at most `MAX_ACTIONS`: the consent buttons first (they fix something),
    as many as the report's links leave room for, then the report's links."""
    report = _report_actions(parts, public_url)
    return _consent_actions(parts)[: MAX_ACTIONS - len(report)] + report


def _message(body: list[dict[str, Any]], actions: list[dict[str, Any]], fallback: str) -> dict[str, Any]:
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": CARD_VERSION,
        "body": body,
        # What a client too old for the card shows instead (plain text, not Markdown).
        "fallbackText": fallback,
    }
    if actions:
        card["actions"] = actions
    return {
        "type": "message",
        "attachments": [{"contentType": ADAPTIVE_CARD_CONTENT_TYPE, "contentUrl": None, "content": card}],
    }


def render_teams_message(content: AlertContent) -> dict[str, Any]:
    """The Workflows webhook body for `content`: one Adaptive Card, within `PAYLOAD_BUDGET`."""
    actions = _actions(content.parts, content.public_url)
    fallback = "PartnerGuard alert: open the PartnerGuard dashboard for the details."
    for listed in _LISTING_STEPS:
        body: list[dict[str, Any]] = []
        for index, part in enumerate(content.parts):
            blocks = _part(part, listed)
            if index:
                # Each further alert in its own container, set apart by a line.
                blocks = [{"type": "Container", "separator": True, "spacing": "ExtraLarge", "items": blocks}]
            body += blocks
        message = _message(body, actions, fallback)
        if len(serialize(message)) <= PAYLOAD_BUDGET:
            return message
    # Even the counts alone are too long (very many alerts in one message): say so, briefly.
    notice = md(f"PartnerGuard has {plural(len(content.parts), 'alert')}; open the dashboard for the details.", 200)
    return _message([_title("PartnerGuard alerts"), _text(notice)], actions, fallback)

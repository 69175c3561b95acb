"""What every PartnerGuard email shares: the rendered message, the template environment, and
the helpers that turn stored values into what a template may print.

Almost every string in an alert comes from a tenant PartnerGuard does not control (display
names, app names, policy names, the tenant's own name) or from storage that holds such strings.
Two layers keep them inert, for every renderer (`digest_email`, `reminder_email`, `health_email`,
`grouped_email`):

- every value a template prints goes through `inert` (Jinja2's `finalize`): `safe_text` makes
  control characters, ANSI escapes, bidirectional overrides and Unicode line separators visible
  as escapes, so a name can neither forge lines in the plain-text part nor read backwards; and
  each view model caps lengths with `clip`, so a 10 KB display name cannot bury the message;
- HTML templates (`*.html.j2`) are autoescaped, so markup in a name is shown as text.

An HTML template renders only the message's *body*; `render_email` wraps it in the one document
layout (`email_document.html.j2`). The body alone is kept as `RenderedEmail.html_fragment`, which
is what `notifiers.grouped_email` puts into a combined message. Styles and small macros that
several templates use are in `email_parts.html.j2`.

The HTML is meant for Outlook's Word-based renderer as well as browsers: table layout, inline
styles only, no script, no stylesheet, no image, nothing loaded from anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import jinja2
from markupsafe import Markup

from partnerguard.model import Severity, TenantInfo
from partnerguard.text import safe_text

TEMPLATES = Path(__file__).resolve().parent / "templates"
DOCUMENT_TEMPLATE = "email_document.html.j2"

# Length caps for what a tenant controls. A display name may be up to 256 characters in Entra
# ID, but nothing stops storage or a report document from carrying more; past these limits the
# value is cut with an ellipsis (the full value stays in the API the email links to).
NAME_LIMIT = 200
ID_LIMIT = 160
DETAIL_LIMIT = 1000
REMEDIATION_LIMIT = 2000
# The subject line is read in a list of messages: keep the tenant's part of it short.
SUBJECT_NAME_LIMIT = 80

SEVERITY_LABELS = {
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

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

# The content of a document's body, for an email whose fragment was not given. Our renderers
# always give it; the tags are ours (tenant text is escaped, so `</body>` cannot come from a name).
_BODY = re.compile(r"<body\b[^>]*>(?P<content>.*)</body\s*>", re.IGNORECASE | re.DOTALL)
_DOCUMENT_TAG = re.compile(r"<(?:!doctype|html|head|body)\b", re.IGNORECASE)


def body_of(html: str) -> str:
    """The HTML inside `<body>` of a document, or `html` itself when it is already a fragment."""
    match = _BODY.search(html)
    if match:
        return match.group("content")
    if _DOCUMENT_TAG.search(html):
        # A document whose body cannot be found would nest a second <html> in a combined message.
        raise ValueError("the HTML is a document without a complete <body> element")
    return html


@dataclass(frozen=True)
class RenderedEmail:
    """An email ready to send: a one-line subject and the two alternative bodies.

    `html_fragment` is the HTML inside `html`'s `<body>`, what a combined message embeds. The
    renderers of this package set it from the same rendering as `html`; left empty, it is taken
    from `html`, so an email built elsewhere (a test, a message read back from storage) still
    combines. `dataclasses.replace` of `html` alone keeps the old fragment: give both.
    """

    subject: str
    html: str
    text: str
    html_fragment: str = ""

    def __post_init__(self) -> None:
        if not self.html_fragment and self.html:
            object.__setattr__(self, "html_fragment", body_of(self.html))


def inert(value: object) -> str:
    """Every value a template prints: one line, control and bidi characters visible.

    `Markup` passes untouched: in these templates only a macro's output or a body our own
    renderers produced is Markup (template literals around values that were themselves
    finalized and escaped), and turning it back into a plain string would escape its tags (or,
    in a plain-text part, its line breaks). View models never hold Markup of tenant data.
    """
    if isinstance(value, Markup):
        return value
    return safe_text(value)


def clip(value: object, limit: int) -> str:
    """`value` made inert and cut to `limit` characters (with an ellipsis)."""
    return safe_text(value, limit=limit)


def plural(count: int, singular: str, plural_form: str | None = None) -> str:
    return f"{count} {singular if count == 1 else (plural_form or singular + 's')}"


def elapsed(since: datetime, until: datetime) -> str:
    """How long from `since` to `until`, in whole days and hours ("3 days 4 hours")."""
    hours = int((until - since).total_seconds() // 3600)
    if hours < 1:
        return "less than an hour"
    days, hours = divmod(hours, 24)
    if not days:
        return plural(hours, "hour")
    # Past a week the hours are noise.
    if not hours or days >= 7:
        return plural(days, "day")
    return f"{plural(days, 'day')} {plural(hours, 'hour')}"


def checked_link(url: str, what: str) -> str:
    """`url` if it may go into an `href`: https, or http on loopback (local runs, the simulator).

    Escaping keeps a URL inside its attribute, but a `javascript:` or `data:` URL survives
    escaping and runs when clicked: only these schemes are ever linked.
    """
    parts = urlsplit(url)
    loopback = parts.hostname in _LOOPBACK_HOSTS
    if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
        raise ValueError(f"the {what} must be an https:// URL, got {url!r}")
    return url


def api_url(public_url: str | None, path: str, **query: str) -> str | None:
    """`{public_url}{path}` of the HTTP API (SPEC §4), or None without a public URL.

    The base is checked even though settings validate PARTNERGUARD_PUBLIC_URL: the link ends up
    in an `href`. `path` is ours; a tenant id in it must already be quoted.
    """
    if not public_url:
        return None
    checked_link(public_url, "public URL")
    parts = urlsplit(public_url)
    if parts.query or parts.fragment:
        raise ValueError(f"the public URL must have no query or fragment, got {public_url!r}")
    url = f"{public_url.rstrip('/')}{path}"
    return f"{url}?{urlencode(query)}" if query else url


def findings_path(tenant_id: str) -> str:
    return f"/api/tenants/{quote(tenant_id, safe='')}/findings"


def findings_url(public_url: str | None, tenant_id: str, **query: str) -> str | None:
    """The HTTP API's findings of a tenant (SPEC §4), or None without a public URL."""
    return api_url(public_url, findings_path(tenant_id), **query)


def severity_view(severity: Severity | None) -> dict[str, str]:
    if severity is None:
        background, colour = _UNKNOWN_SEVERITY_COLOURS
        return {"label": "Unknown", "background": background, "colour": colour}
    background, colour = _SEVERITY_COLOURS[severity]
    return {"label": SEVERITY_LABELS[severity], "background": background, "colour": colour}


def subject_view(subject_type: str, name: str, subject_id: str) -> dict[str, str]:
    return {
        "type": _SUBJECT_TYPE_LABELS.get(subject_type, clip(subject_type, 40) or "Subject"),
        # A finding without a name (a deleted user) is still identified by its id.
        "name": clip(name, NAME_LIMIT) if name else clip(subject_id, ID_LIMIT),
        "id": clip(subject_id, ID_LIMIT),
    }


def tenant_view(tenant: TenantInfo) -> dict[str, str]:
    return {
        "name": clip(tenant.name or tenant.id, NAME_LIMIT),
        "id": clip(tenant.id, ID_LIMIT),
        "role": "partner tenant" if tenant.role == "partner" else "customer tenant",
    }


def subject_name(tenant: TenantInfo) -> str:
    """The tenant as a subject line names it: short and inert."""
    return clip(tenant.name or tenant.id, SUBJECT_NAME_LIMIT)


TEMPLATE_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    # HTML templates are escaped; plain-text ones are not (escaping would print &amp;), which
    # is why `finalize` makes every printed value inert for both. Any other template, or one
    # from a string, is escaped: the safe default.
    autoescape=jinja2.select_autoescape(
        enabled_extensions=("html.j2",),
        disabled_extensions=("txt.j2",),
        default_for_string=True,
        default=True,
    ),
    finalize=inert,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def render_email(html_template: str, text_template: str, view: Mapping[str, Any]) -> RenderedEmail:
    """The email of `view` (whose `subject` is already one inert line).

    The HTML template renders the body; the document around it comes from the layout. The body
    is passed to the layout as Markup because it is our own template's output, escaped already:
    escaping it again would print its tags.
    """
    fragment = TEMPLATE_ENVIRONMENT.get_template(html_template).render(view)
    body = Markup(fragment)  # noqa: S704 (our template's output, escaped when rendered)
    html = TEMPLATE_ENVIRONMENT.get_template(DOCUMENT_TEMPLATE).render(subject=view["subject"], body=body)
    text = TEMPLATE_ENVIRONMENT.get_template(text_template).render(view)
    return RenderedEmail(subject=view["subject"], html=html, text=text, html_fragment=fragment)

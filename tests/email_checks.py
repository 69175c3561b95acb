"""What every email test needs: the HTML as a mail client's parser sees it, the markup an email may
contain, hostile tenant strings, and builders for the rows and check metadata an email is made from."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime
from html.parser import HTMLParser

from notifiers.email_view import NAME_LIMIT, RenderedEmail
from partnerguard.model import CheckMetadata, Severity
from partnerguard.storage.records import FindingRecord

TENANT_ID = "8f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
PUBLIC_URL = "https://partnerguard.example.net"
# Public URLs an email must refuse to link to: not https (loopback aside), no host, or with a query.
REFUSED_PUBLIC_URLS = [
    "javascript:alert(1)",
    "http://partnerguard.example.net",
    "https://",
    "https://x.example/?a=1",
    "ftp://x.example",
]
# The scan run a digest reports on.
RUN_STARTED = datetime(2026, 11, 26, 6, 0, 0, tzinfo=UTC)
RUN_FINISHED = datetime(2026, 11, 26, 6, 0, 42, tzinfo=UTC)

XSS_IMG = "<img src=x onerror=alert(1)>"
XSS_SCRIPT = "<script>alert(2)</script>"
# Breaking out of an attribute, had any tenant value been put in one.
XSS_ATTR = '" onmouseover="alert(3)'
HOSTILE_MARKUP = f"{XSS_IMG}{XSS_SCRIPT}{XSS_ATTR}"
# A tenant id that tries to leave the link's attribute and path, and what it must become in the link.
HOSTILE_TENANT_ID = f"x{XSS_ATTR}/../admin"
HOSTILE_TENANT_FINDINGS_URL = f"{PUBLIC_URL}/api/tenants/x%22%20onmouseover%3D%22alert%283%29%2F..%2Fadmin/findings"

# Line breaks, terminal escapes, NUL, bidi overrides and Unicode separators: each could forge a
# line or disguise a name if it reached an email raw.
HOSTILE_TEXT = "evil\nFORGED: line\r\x1b[2J\x00\u202egnp.exe\u2066x\u2069\u200f\x85\u2028FAKE\u2029"
# Tenant names that would start a header or a line of their own in the subject.
MULTI_LINE_NAMES = ["Contoso\r\nBcc: attacker@evil.example", "Contoso\nSubject: x", "Contoso\u2028x"]

# What an email's HTML may contain: its own layout, nothing a tenant could add.
ALLOWED_TAGS = {"html", "head", "meta", "title", "body", "table", "tr", "th", "td", "h1", "h2", "p", "strong", "span"}
ALLOWED_TAGS |= {"br", "a"}
ALLOWED_ATTRIBUTES = {
    "lang",
    "http-equiv",
    "content",
    "name",
    "role",
    "width",
    "cellpadding",
    "cellspacing",
    "border",
    "style",
    "align",
    "bgcolor",
    "href",
}
# Characters that must never reach the plain-text part from a value: C0/C1 controls (except the
# template's own line feeds), DEL, bidi formatting characters, Unicode line separators.
UNSAFE_TEXT = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u061c\u2028\u2029]")


class HtmlElements(HTMLParser):
    """Every element, attribute, text node and doctype of a document, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        # HTMLParser reports a self-closing tag as a start and an end, so both counts include it.
        self.starts: Counter[str] = Counter()
        self.ends: Counter[str] = Counter()
        self.attributes: set[str] = set()
        self.hrefs: list[str] = []
        self.text: list[str] = []
        self.declarations: list[str] = []

    @property
    def tags(self) -> set[str]:
        return set(self.starts)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.starts[tag] += 1
        for name, value in attrs:
            self.attributes.add(name)
            if name == "href" and value is not None:
                self.hrefs.append(value)

    def handle_endtag(self, tag: str) -> None:
        self.ends[tag] += 1

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_decl(self, decl: str) -> None:
        self.declarations.append(decl)


def parse_html(html: str) -> HtmlElements:
    parser = HtmlElements()
    parser.feed(html)
    parser.close()
    return parser


def assert_in_order(document: str, *needles: str) -> None:
    positions = [document.index(needle) for needle in needles]
    assert positions == sorted(positions), list(zip(needles, positions, strict=True))


def email_part(rendered: RenderedEmail, part: str) -> str:
    """The "html" or the "text" part of an email (tests are parametrized over both)."""
    return rendered.html if part == "html" else rendered.text


def heading(title: str, part: str) -> str:
    """A section heading as that part shows it: the plain-text part writes headings in capitals."""
    return title if part == "html" else title.upper()


def assert_only_allowed_markup(html: str) -> HtmlElements:
    """The document holds only the email's own elements and attributes; returns it parsed for further checks."""
    parsed = parse_html(html)
    assert parsed.tags <= ALLOWED_TAGS, parsed.tags - ALLOWED_TAGS
    assert parsed.attributes <= ALLOWED_ATTRIBUTES, parsed.attributes - ALLOWED_ATTRIBUTES
    return parsed


def assert_hostile_markup_is_text(html: str) -> HtmlElements:
    """An email rendered from HOSTILE_MARKUP values shows them as text and adds no element or attribute."""
    parsed = assert_only_allowed_markup(html)
    text = "".join(parsed.text)
    assert XSS_IMG in text and XSS_SCRIPT in text and XSS_ATTR in text
    assert "<img" not in html and "<script" not in html
    return parsed


def assert_hostile_text_is_inert(rendered: RenderedEmail) -> None:
    """An email rendered from HOSTILE_TEXT values: no unsafe character and no forged line in any part."""
    for document in (rendered.text, rendered.html, rendered.subject):
        assert not UNSAFE_TEXT.search(document), UNSAFE_TEXT.findall(document)
        # No value made a line of its own.
        assert not any(line.startswith(("FORGED", "FAKE")) for line in document.splitlines())
    # Made visible, not dropped: a reader can see something odd is in the name.
    assert "evil\\x0aFORGED: line\\x0d\\x1b[2J\\x00\\u202egnp.exe" in rendered.text


def assert_huge_values_are_capped(rendered: RenderedEmail, letters: str) -> None:
    """An email rendered from 10 KiB runs of each of `letters`, the tenant or subject name made of "A"s."""
    assert len(rendered.subject) < 200
    for document in (rendered.html, rendered.text):
        for letter in letters:
            longest = max((len(run) for run in re.findall(f"{letter}+", document)), default=0)
            assert longest <= 2000, (letter, longest)
        assert "A" * (NAME_LIMIT + 1) not in document
        assert "A" * (NAME_LIMIT - 1) + "…" in document


def check_metadata(
    check_id: str, title: str, severity: Severity = Severity.HIGH, remediation: str = "Fix it."
) -> CheckMetadata:
    return CheckMetadata(check_id, title, severity, "why", remediation, ("User.Read.All",), None)


def finding_record(
    check_id: str,
    subject_id: str,
    name: str,
    *,
    tenant_id: str = TENANT_ID,
    state: str = "open",
    severity: str = "critical",
    detail: str = "",
    subject_type: str = "user",
    first_seen: datetime | None = None,
    resolved_at: datetime | None = None,
    resolution: str | None = None,
) -> FindingRecord:
    """A stored finding row about a user; an empty `detail` says the user is flagged."""
    return FindingRecord(
        tenant_id=tenant_id,
        check_id=check_id,
        subject_id=subject_id,
        subject_type=subject_type,
        subject_name=name,
        detail=detail or f"{name} is flagged",
        severity=severity,
        state=state,
        first_seen=first_seen,
        resolved_at=resolved_at,
        resolution=resolution,
    )

"""The reminder email: which findings it lists, in which order, what it says, and that tenant text stays inert."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from markupsafe import escape

from checks import get_check
from notifiers.email_view import NAME_LIMIT
from notifiers.reminder import MAX_LISTED, Reminder, render_reminder
from partnerguard.report import TenantInfo
from partnerguard.storage.records import FindingRecord
from tests.test_notifier_digest import (
    ALLOWED_ATTRIBUTES,
    ALLOWED_TAGS,
    HOSTILE_TEXT,
    UNSAFE_TEXT,
    XSS_ATTR,
    XSS_IMG,
    XSS_SCRIPT,
    _in_order,
    _parse,
)

TENANT = "8f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f"
PUBLIC_URL = "https://partnerguard.example.net"
AS_OF = datetime(2026, 11, 26, 6, 0, 0, tzinfo=UTC)
CONTOSO = TenantInfo(TENANT, "Contoso", "customer")

REGISTRATION = get_check("mfa.registration").METADATA
ENFORCEMENT = get_check("mfa.enforcement").METADATA


def _record(
    check_id: str,
    subject_id: str,
    name: str,
    first_seen: datetime | None,
    *,
    state: str = "open",
    severity: str = "critical",
    tenant_id: str = TENANT,
    detail: str = "",
) -> FindingRecord:
    return FindingRecord(
        tenant_id=tenant_id,
        check_id=check_id,
        subject_id=subject_id,
        subject_type="user",
        subject_name=name,
        detail=detail or f"{name} is flagged",
        severity=severity,
        state=state,
        first_seen=first_seen,
    )


def _reminder(*findings: FindingRecord, tenant: TenantInfo = CONTOSO, interval_hours: int = 24) -> Reminder:
    return Reminder(tenant=tenant, findings=findings, as_of=AS_OF, interval_hours=interval_hours)


def _mixed_reminder() -> Reminder:
    """Findings given newest first, two seen at the same moment in reverse catalogue order."""
    same_moment = AS_OF - timedelta(days=3, hours=8)
    return _reminder(
        _record("mfa.enforcement", "u-new", "Nina Newest", AS_OF - timedelta(hours=5), state="new"),
        _record("mfa.enforcement", "u-tie-enf", "Ezra Enforcement", same_moment),
        _record("mfa.registration", "u-tie-reg", "Rita Registration", same_moment),
        _record("future.check", "u-unknown", "Uma Unknown", AS_OF - timedelta(days=1, hours=6)),
        _record("mfa.registration", "u-undated", "Dora Undated", None),
        _record("mfa.registration", "u-oldest", "Olga Oldest", AS_OF - timedelta(days=9)),
    )


@pytest.mark.parametrize("part", ["html", "text"])
def test_findings_are_listed_oldest_first_then_in_check_order(part: str) -> None:
    rendered = render_reminder(_mixed_reminder(), PUBLIC_URL)
    document = rendered.html if part == "html" else rendered.text
    _in_order(
        document,
        "Olga Oldest",
        # Seen at the same moment: mfa.registration comes before mfa.enforcement in the catalogue.
        "Rita Registration",
        "Ezra Enforcement",
        "Uma Unknown",
        "Nina Newest",
        # A row without a first-seen time cannot say how old it is: last.
        "Dora Undated",
    )


def test_each_finding_says_its_check_subject_detail_and_how_long_it_has_been_open() -> None:
    text = render_reminder(_mixed_reminder(), PUBLIC_URL).text
    blocks = {block.split("\n")[1].strip(): block for block in text.split("\n* ")[1:] if "\n  User: " in block}

    oldest = blocks["User: Olga Oldest (id u-oldest)"]
    assert oldest.startswith(f"{REGISTRATION.title} (mfa.registration)")
    assert "Olga Oldest is flagged" in oldest
    assert "First seen 2026-11-17T06:00:00Z, open for 9 days" in oldest
    assert "open for 3 days 8 hours" in blocks["User: Rita Registration (id u-tie-reg)"]
    assert "open for 5 hours" in blocks["User: Nina Newest (id u-new)"]
    assert "First seen: not recorded" in blocks["User: Dora Undated (id u-undated)"]
    # A check this version does not know is named by its id.
    assert blocks["User: Uma Unknown (id u-unknown)"].startswith("future.check (future.check)")
    assert "6 critical findings are still open in this tenant; the oldest has been open for 9 days." in text


@pytest.mark.parametrize("part", ["html", "text"])
def test_what_to_do_gives_each_checks_remediation_in_catalogue_order(part: str) -> None:
    rendered = render_reminder(_mixed_reminder(), PUBLIC_URL)
    document = rendered.html if part == "html" else rendered.text
    what_to_do = document.split("What to do" if part == "html" else "WHAT TO DO", 1)[1]
    # The HTML part shows the remediation escaped (it has "admin center > Users").
    shown = str if part == "text" else lambda value: str(escape(value))
    registration_remedy = shown(REGISTRATION.remediation)
    enforcement_remedy = shown(ENFORCEMENT.remediation)
    _in_order(
        what_to_do, REGISTRATION.title, registration_remedy, ENFORCEMENT.title, enforcement_remedy, "future.check"
    )
    assert "(mfa.registration, 3 open)" in what_to_do and "(mfa.enforcement, 2 open)" in what_to_do


def test_the_email_links_to_the_tenants_findings_and_says_why_it_was_sent() -> None:
    rendered = render_reminder(_mixed_reminder(), PUBLIC_URL + "/")
    base = f"{PUBLIC_URL}/api/tenants/{TENANT}/findings"
    hrefs = _parse(rendered.html).hrefs
    assert base in hrefs
    for check_id in ("mfa.registration", "mfa.enforcement"):
        assert f"{base}?check={check_id}" in hrefs
    # The API refuses a check id it does not know (400): such a check links to nothing of its own.
    assert not any("future.check" in href for href in hrefs)
    assert all(href.startswith(base) for href in hrefs)
    for document in (rendered.html, rendered.text):
        assert "Contoso" in document and TENANT in document and "2026-11-26T06:00:00Z" in document
        assert "every 24 hours while critical findings stay open" in document
        assert "ALERT_REMINDER_HOURS=0" in document
    assert rendered.subject == "PartnerGuard reminder: Contoso — 6 critical findings still open"


def test_one_finding_and_one_hour_are_singular() -> None:
    rendered = render_reminder(_reminder(_record("mfa.registration", "u", "Ann", AS_OF), interval_hours=1), None)
    assert rendered.subject == "PartnerGuard reminder: Contoso — 1 critical finding still open"
    assert "1 critical finding is still open in this tenant; the oldest has been open for less than an hour." in (
        rendered.text
    )
    assert "every 1 hour while" in rendered.text


def test_without_a_public_url_the_email_names_the_api_path_and_links_nowhere() -> None:
    rendered = render_reminder(_mixed_reminder(), None)
    assert "a" not in _parse(rendered.html).tags
    for document in (rendered.html, rendered.text):
        assert f"/api/tenants/{TENANT}/findings" in document
        assert "PARTNERGUARD_PUBLIC_URL" in document


@pytest.mark.parametrize(
    "public_url",
    [
        "javascript:alert(1)",
        "http://partnerguard.example.net",
        "https://",
        "https://x.example/?a=1",
        "data:text/html,x",
    ],
)
def test_only_https_public_urls_become_links(public_url: str) -> None:
    with pytest.raises(ValueError, match="public URL"):
        render_reminder(_mixed_reminder(), public_url)


def test_loopback_http_is_linked_for_local_runs() -> None:
    hrefs = _parse(render_reminder(_mixed_reminder(), "http://127.0.0.1:7071").html).hrefs
    assert f"http://127.0.0.1:7071/api/tenants/{TENANT}/findings" in hrefs


def test_a_long_list_shows_the_oldest_and_counts_the_rest() -> None:
    findings = [
        _record("mfa.registration", f"u{i:04}", f"User {i:04}", AS_OF - timedelta(hours=i))
        for i in range(MAX_LISTED + 7)
    ]
    rendered = render_reminder(_reminder(*findings), PUBLIC_URL)
    listed = [line for line in rendered.text.splitlines() if line.startswith("  User: ")]
    assert len(listed) == MAX_LISTED
    assert listed[0] == f"  User: User {MAX_LISTED + 6:04} (id u{MAX_LISTED + 6:04})"
    assert f"... and 7 more open critical findings: {PUBLIC_URL}/api/tenants/{TENANT}/findings" in rendered.text
    assert "and 7 more open critical findings" in rendered.html
    assert f"OPEN CRITICAL FINDINGS ({MAX_LISTED + 7})" in rendered.text


def _hostile_reminder(tenant_id: str = TENANT) -> Reminder:
    hostile = f"{XSS_IMG}{XSS_SCRIPT}{XSS_ATTR}"
    return _reminder(
        replace(
            _record(f"x{XSS_SCRIPT}", f"id-{XSS_IMG}", hostile, AS_OF, tenant_id=tenant_id, detail=XSS_SCRIPT),
            subject_type=XSS_IMG,
        ),
        _record("mfa.registration", "u2", hostile, AS_OF, tenant_id=tenant_id),
        tenant=TenantInfo(tenant_id, f"Contoso {XSS_SCRIPT}", "customer"),
    )


def test_tenant_markup_is_text_in_the_html_part() -> None:
    html = render_reminder(_hostile_reminder(), PUBLIC_URL).html
    parsed = _parse(html)
    assert parsed.tags <= ALLOWED_TAGS, parsed.tags - ALLOWED_TAGS
    assert parsed.attributes <= ALLOWED_ATTRIBUTES, parsed.attributes - ALLOWED_ATTRIBUTES
    text = "".join(parsed.text)
    assert XSS_IMG in text and XSS_SCRIPT in text and XSS_ATTR in text
    assert "<img" not in html and "<script" not in html


def test_a_hostile_tenant_id_cannot_leave_the_link() -> None:
    html = render_reminder(_hostile_reminder(tenant_id=f"x{XSS_ATTR}/../admin"), PUBLIC_URL).html
    parsed = _parse(html)
    assert parsed.attributes <= ALLOWED_ATTRIBUTES
    assert parsed.hrefs
    for href in parsed.hrefs:
        assert href.startswith(f"{PUBLIC_URL}/api/tenants/x%22%20onmouseover%3D%22alert%283%29%2F..%2Fadmin/findings")


def test_plain_text_part_is_not_html_escaped() -> None:
    rendered = render_reminder(
        _reminder(_record("mfa.registration", "u", "A&B", AS_OF), tenant=TenantInfo(TENANT, "R&D <Ltd>", "partner")),
        PUBLIC_URL,
    )
    assert "R&D <Ltd>" in rendered.text and "A&B" in rendered.text and "&amp;" not in rendered.text
    assert "R&amp;D &lt;Ltd&gt;" in rendered.html


def test_controls_and_bidi_marks_are_inert_everywhere() -> None:
    record = _record("mfa.registration", HOSTILE_TEXT, HOSTILE_TEXT, AS_OF, detail=HOSTILE_TEXT)
    rendered = render_reminder(_reminder(record, tenant=TenantInfo(TENANT, HOSTILE_TEXT, "customer")), PUBLIC_URL)
    for document in (rendered.text, rendered.html, rendered.subject):
        assert not UNSAFE_TEXT.search(document), UNSAFE_TEXT.findall(document)
        assert not any(line.startswith(("FORGED", "FAKE")) for line in document.splitlines())
    assert "evil\\x0aFORGED: line\\x0d\\x1b[2J\\x00\\u202egnp.exe" in rendered.text


@pytest.mark.parametrize("name", ["Contoso\r\nBcc: attacker@evil.example", "Contoso\nSubject: x", "Contoso\u2028x"])
def test_subject_is_one_line_whatever_the_tenant_name(name: str) -> None:
    reminder = _reminder(_record("mfa.registration", "u", "Ann", AS_OF), tenant=TenantInfo(TENANT, name, "customer"))
    subject = render_reminder(reminder, PUBLIC_URL).subject
    assert not any(char in subject for char in "\r\n\u2028\u2029")
    assert subject.startswith("PartnerGuard reminder: Contoso\\")
    assert subject.endswith("— 1 critical finding still open")


def test_ten_kilobyte_names_are_capped_everywhere() -> None:
    huge = "A" * 10_240
    record = replace(_record("B" * 10_240, "D" * 10_240, huge, AS_OF, detail="E" * 10_240), subject_type="F" * 10_240)
    rendered = render_reminder(_reminder(record, tenant=TenantInfo(TENANT, huge, "customer")), PUBLIC_URL)
    assert len(rendered.subject) < 200
    for document in (rendered.html, rendered.text):
        for letter in "ABDEF":
            longest = max((len(run) for run in re.findall(f"{letter}+", document)), default=0)
            assert longest <= 2000, (letter, longest)
        assert "A" * (NAME_LIMIT + 1) not in document
        assert "A" * (NAME_LIMIT - 1) + "…" in document
    assert len(rendered.html) < 40_000 and len(rendered.text) < 15_000


@pytest.mark.parametrize(
    ("finding", "message"),
    [
        (_record("mfa.registration", "u", "X", AS_OF, tenant_id="00000000-0000-4000-8000-000000000000"), "tenant"),
        (_record("mfa.registration", "u", "X", AS_OF, state="resolved"), "not new or open"),
        (_record("mfa.registration", "u", "X", AS_OF, state="excepted"), "not new or open"),
        (_record("mfa.registration", "u", "X", AS_OF, severity="high"), "not critical"),
    ],
)
def test_findings_that_are_not_open_critical_findings_of_this_tenant_are_refused(
    finding: FindingRecord, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _reminder(finding)


def test_a_reminder_of_nothing_or_without_an_interval_is_refused() -> None:
    record = _record("mfa.registration", "u", "X", AS_OF)
    with pytest.raises(ValueError, match="at least one"):
        _reminder()
    for interval in (0, -3, True):
        with pytest.raises(ValueError, match="interval"):
            _reminder(record, interval_hours=interval)
    with pytest.raises(ValueError, match="timezone"):
        Reminder(CONTOSO, (record,), datetime(2026, 11, 26, 6), 24)

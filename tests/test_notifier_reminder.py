"""The reminder email: which findings it lists, in which order, what it says, and that tenant text stays inert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from markupsafe import escape

from checks import get_check
from notifiers.reminder_email import MAX_LISTED, Reminder, render_reminder
from partnerguard.model import TenantInfo
from partnerguard.storage.records import FindingRecord
from tests.email_checks import (
    HOSTILE_MARKUP,
    HOSTILE_TENANT_FINDINGS_URL,
    HOSTILE_TENANT_ID,
    HOSTILE_TEXT,
    MULTI_LINE_NAMES,
    PUBLIC_URL,
    TENANT_ID,
    XSS_IMG,
    XSS_SCRIPT,
    assert_hostile_markup_is_text,
    assert_hostile_text_is_inert,
    assert_huge_values_are_capped,
    assert_in_order,
    assert_only_allowed_markup,
    email_part,
    finding_record,
    heading,
    parse_html,
)

AS_OF = datetime(2026, 11, 26, 6, 0, 0, tzinfo=UTC)
CONTOSO = TenantInfo(TENANT_ID, "Contoso", "customer")

REGISTRATION = get_check("mfa.registration").METADATA
ENFORCEMENT = get_check("mfa.enforcement").METADATA


def _reminder(*findings: FindingRecord, tenant: TenantInfo = CONTOSO, interval_hours: int = 24) -> Reminder:
    return Reminder(tenant=tenant, findings=findings, as_of=AS_OF, interval_hours=interval_hours)


def _mixed_reminder() -> Reminder:
    """Findings given newest first, two seen at the same moment in reverse catalogue order."""
    same_moment = AS_OF - timedelta(days=3, hours=8)
    return _reminder(
        finding_record("mfa.enforcement", "u-new", "Nina Newest", first_seen=AS_OF - timedelta(hours=5), state="new"),
        finding_record("mfa.enforcement", "u-tie-enf", "Ezra Enforcement", first_seen=same_moment),
        finding_record("mfa.registration", "u-tie-reg", "Rita Registration", first_seen=same_moment),
        finding_record("future.check", "u-unknown", "Uma Unknown", first_seen=AS_OF - timedelta(days=1, hours=6)),
        finding_record("mfa.registration", "u-undated", "Dora Undated", first_seen=None),
        finding_record("mfa.registration", "u-oldest", "Olga Oldest", first_seen=AS_OF - timedelta(days=9)),
    )


@pytest.mark.parametrize("part", ["html", "text"])
def test_findings_are_listed_oldest_first_then_in_check_order(part: str) -> None:
    document = email_part(render_reminder(_mixed_reminder(), PUBLIC_URL), part)
    assert_in_order(
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
    document = email_part(render_reminder(_mixed_reminder(), PUBLIC_URL), part)
    what_to_do = document.split(heading("What to do", part), 1)[1]
    # The HTML part shows the remediation escaped (it has "admin center > Users").
    shown = str if part == "text" else lambda value: str(escape(value))
    registration_remedy = shown(REGISTRATION.remediation)
    enforcement_remedy = shown(ENFORCEMENT.remediation)
    assert_in_order(
        what_to_do, REGISTRATION.title, registration_remedy, ENFORCEMENT.title, enforcement_remedy, "future.check"
    )
    assert "(mfa.registration, 3 open)" in what_to_do and "(mfa.enforcement, 2 open)" in what_to_do


def test_the_email_links_to_the_tenants_findings_and_says_why_it_was_sent() -> None:
    rendered = render_reminder(_mixed_reminder(), PUBLIC_URL + "/")
    base = f"{PUBLIC_URL}/api/tenants/{TENANT_ID}/findings"
    hrefs = parse_html(rendered.html).hrefs
    assert base in hrefs
    for check_id in ("mfa.registration", "mfa.enforcement"):
        assert f"{base}?check={check_id}" in hrefs
    # The API refuses a check id it does not know (400): such a check links to nothing of its own.
    assert not any("future.check" in href for href in hrefs)
    assert all(href.startswith(base) for href in hrefs)
    for document in (rendered.html, rendered.text):
        assert "Contoso" in document and TENANT_ID in document and "2026-11-26T06:00:00Z" in document
        assert "every 24 hours while critical findings stay open" in document
        assert "ALERT_REMINDER_HOURS=0" in document
    assert rendered.subject == "PartnerGuard reminder: Contoso — 6 critical findings still open"


def test_one_finding_and_one_hour_are_singular() -> None:
    ann = finding_record("mfa.registration", "u", "Ann", first_seen=AS_OF)
    rendered = render_reminder(_reminder(ann, interval_hours=1), None)
    assert rendered.subject == "PartnerGuard reminder: Contoso — 1 critical finding still open"
    assert "1 critical finding is still open in this tenant; the oldest has been open for less than an hour." in (
        rendered.text
    )
    assert "every 1 hour while" in rendered.text


def test_without_a_public_url_the_email_names_the_api_path_and_links_nowhere() -> None:
    rendered = render_reminder(_mixed_reminder(), None)
    assert "a" not in parse_html(rendered.html).tags
    for document in (rendered.html, rendered.text):
        assert f"/api/tenants/{TENANT_ID}/findings" in document
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
    hrefs = parse_html(render_reminder(_mixed_reminder(), "http://127.0.0.1:7071").html).hrefs
    assert f"http://127.0.0.1:7071/api/tenants/{TENANT_ID}/findings" in hrefs


def test_a_long_list_shows_the_oldest_and_counts_the_rest() -> None:
    findings = [
        finding_record("mfa.registration", f"u{i:04}", f"User {i:04}", first_seen=AS_OF - timedelta(hours=i))
        for i in range(MAX_LISTED + 7)
    ]
    rendered = render_reminder(_reminder(*findings), PUBLIC_URL)
    listed = [line for line in rendered.text.splitlines() if line.startswith("  User: ")]
    assert len(listed) == MAX_LISTED
    assert listed[0] == f"  User: User {MAX_LISTED + 6:04} (id u{MAX_LISTED + 6:04})"
    assert f"... and 7 more open critical findings: {PUBLIC_URL}/api/tenants/{TENANT_ID}/findings" in rendered.text
    assert "and 7 more open critical findings" in rendered.html
    assert f"OPEN CRITICAL FINDINGS ({MAX_LISTED + 7})" in rendered.text


def _hostile_reminder(tenant_id: str = TENANT_ID) -> Reminder:
    return _reminder(
        finding_record(
            f"x{XSS_SCRIPT}",
            f"id-{XSS_IMG}",
            HOSTILE_MARKUP,
            tenant_id=tenant_id,
            detail=XSS_SCRIPT,
            subject_type=XSS_IMG,
            first_seen=AS_OF,
        ),
        finding_record("mfa.registration", "u2", HOSTILE_MARKUP, tenant_id=tenant_id, first_seen=AS_OF),
        tenant=TenantInfo(tenant_id, f"Contoso {XSS_SCRIPT}", "customer"),
    )


def test_tenant_markup_is_text_in_the_html_part() -> None:
    assert_hostile_markup_is_text(render_reminder(_hostile_reminder(), PUBLIC_URL).html)


def test_a_hostile_tenant_id_cannot_leave_the_link() -> None:
    html = render_reminder(_hostile_reminder(tenant_id=HOSTILE_TENANT_ID), PUBLIC_URL).html
    parsed = assert_only_allowed_markup(html)
    assert parsed.hrefs
    for href in parsed.hrefs:
        assert href.startswith(HOSTILE_TENANT_FINDINGS_URL)


def test_plain_text_part_is_not_html_escaped() -> None:
    record = finding_record("mfa.registration", "u", "A&B", first_seen=AS_OF)
    rendered = render_reminder(_reminder(record, tenant=TenantInfo(TENANT_ID, "R&D <Ltd>", "partner")), PUBLIC_URL)
    assert "R&D <Ltd>" in rendered.text and "A&B" in rendered.text and "&amp;" not in rendered.text
    assert "R&amp;D &lt;Ltd&gt;" in rendered.html


def test_controls_and_bidi_marks_are_inert_everywhere() -> None:
    record = finding_record("mfa.registration", HOSTILE_TEXT, HOSTILE_TEXT, first_seen=AS_OF, detail=HOSTILE_TEXT)
    rendered = render_reminder(_reminder(record, tenant=TenantInfo(TENANT_ID, HOSTILE_TEXT, "customer")), PUBLIC_URL)
    assert_hostile_text_is_inert(rendered)


@pytest.mark.parametrize("name", MULTI_LINE_NAMES)
def test_subject_is_one_line_whatever_the_tenant_name(name: str) -> None:
    ann = finding_record("mfa.registration", "u", "Ann", first_seen=AS_OF)
    reminder = _reminder(ann, tenant=TenantInfo(TENANT_ID, name, "customer"))
    subject = render_reminder(reminder, PUBLIC_URL).subject
    assert not any(char in subject for char in "\r\n\u2028\u2029")
    assert subject.startswith("PartnerGuard reminder: Contoso\\")
    assert subject.endswith("— 1 critical finding still open")


def test_ten_kilobyte_names_are_capped_everywhere() -> None:
    huge = "A" * 10_240
    record = finding_record(
        "B" * 10_240, "D" * 10_240, huge, detail="E" * 10_240, subject_type="F" * 10_240, first_seen=AS_OF
    )
    rendered = render_reminder(_reminder(record, tenant=TenantInfo(TENANT_ID, huge, "customer")), PUBLIC_URL)
    assert_huge_values_are_capped(rendered, "ABDEF")
    assert len(rendered.html) < 40_000 and len(rendered.text) < 15_000


@pytest.mark.parametrize(
    ("finding", "message"),
    [
        (
            finding_record(
                "mfa.registration", "u", "X", tenant_id="00000000-0000-4000-8000-000000000000", first_seen=AS_OF
            ),
            "tenant",
        ),
        (finding_record("mfa.registration", "u", "X", state="resolved", first_seen=AS_OF), "not new or open"),
        (finding_record("mfa.registration", "u", "X", state="excepted", first_seen=AS_OF), "not new or open"),
        (finding_record("mfa.registration", "u", "X", severity="high", first_seen=AS_OF), "not critical"),
    ],
)
def test_findings_that_are_not_open_critical_findings_of_this_tenant_are_refused(
    finding: FindingRecord, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _reminder(finding)


def test_a_reminder_of_nothing_or_without_an_interval_is_refused() -> None:
    record = finding_record("mfa.registration", "u", "X", first_seen=AS_OF)
    with pytest.raises(ValueError, match="at least one"):
        _reminder()
    for interval in (0, -3, True):
        with pytest.raises(ValueError, match="interval"):
            _reminder(record, interval_hours=interval)
    with pytest.raises(ValueError, match="timezone"):
        Reminder(CONTOSO, (record,), datetime(2026, 11, 26, 6), 24)

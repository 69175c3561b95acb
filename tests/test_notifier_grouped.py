"""Several alerts as one message: one document, every alert whole and in order, nothing escaped twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from notifiers.digest_email import Digest, render_digest
from notifiers.email_view import RenderedEmail, body_of
from notifiers.grouped_email import combine
from notifiers.health_email import HealthAlert, HealthProblem, render_health_alert
from notifiers.reminder_email import Reminder, render_reminder
from partnerguard.model import (
    CheckOutcome,
    CheckResult,
    Finding,
    Severity,
    Status,
    SubjectType,
    TenantInfo,
    build_report,
)
from tests.email_checks import (
    HOSTILE_MARKUP,
    PUBLIC_URL,
    RUN_FINISHED,
    RUN_STARTED,
    TENANT_ID,
    UNSAFE_TEXT,
    XSS_IMG,
    XSS_SCRIPT,
    assert_hostile_markup_is_text,
    assert_in_order,
    check_metadata,
    finding_record,
    parse_html,
)

AS_OF = datetime(2026, 11, 26, 6, 5, 0, tzinfo=UTC)
CONTOSO = TENANT_ID
FABRIKAM = "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9"


def _digest(tenant_id: str, tenant_name: str, user_name: str) -> RenderedEmail:
    report = build_report(
        TenantInfo(tenant_id, tenant_name, "customer"),
        f"run-{tenant_name[:3].lower()}",
        RUN_STARTED,
        RUN_FINISHED,
        [
            CheckResult(
                check_metadata("mfa.registration", "Every user can do MFA", remediation="Register a strong method."),
                CheckOutcome(
                    Status.FAIL,
                    [Finding(f"u-{user_name}", SubjectType.USER, user_name, f"{user_name} has no MFA", Severity.HIGH)],
                ),
            )
        ],
        {},
    )
    return render_digest(Digest.from_run(report, [], {"mfa.registration": 1}), PUBLIC_URL)


def _reminder() -> RenderedEmail:
    record = finding_record(
        "mfa.enforcement",
        "u-ruth",
        "Ruth Reminded",
        tenant_id=CONTOSO,
        detail="not challenged for MFA",
        first_seen=AS_OF - timedelta(days=2),
    )
    return render_reminder(Reminder(TenantInfo(CONTOSO, "Contoso", "customer"), (record,), AS_OF, 24), PUBLIC_URL)


def _health() -> RenderedEmail:
    problem = HealthProblem("poison", None, None, "2 messages in partnerguard-alerts-poison", AS_OF)
    return render_health_alert(HealthAlert((problem,), AS_OF), PUBLIC_URL)


def test_one_email_is_sent_as_it_is() -> None:
    email = _digest(CONTOSO, "Contoso", "Carol Critical")
    assert combine([email], AS_OF) is email


def test_two_digests_make_one_document_with_both_tenants_findings_in_order() -> None:
    contoso = _digest(CONTOSO, "Contoso", "Carol Contoso")
    fabrikam = _digest(FABRIKAM, "Fabrikam", "Fred Fabrikam")
    combined = combine([contoso, fabrikam], AS_OF)

    tags = parse_html(combined.html)
    for element in ("html", "head", "title", "body"):
        assert tags.starts[element] == 1 and tags.ends[element] == 1, element
    assert [d.lower() for d in tags.declarations] == ["doctype html"]
    # Every table the bodies opened is closed: the layout around them is intact.
    assert tags.starts["table"] == tags.ends["table"] and tags.starts["td"] == tags.ends["td"]

    for document in (combined.html, combined.text):
        assert_in_order(
            document,
            contoso.subject,  # the table of contents first
            fabrikam.subject,
            CONTOSO,
            "Carol Contoso",
            FABRIKAM,
            "Fred Fabrikam",
        )
    hrefs = parse_html(combined.html).hrefs
    assert f"{PUBLIC_URL}/api/tenants/{CONTOSO}/findings" in hrefs
    assert f"{PUBLIC_URL}/api/tenants/{FABRIKAM}/findings" in hrefs


def test_each_alert_is_embedded_exactly_as_rendered() -> None:
    emails = [_digest(CONTOSO, "Contoso", "Carol Contoso"), _reminder(), _health()]
    combined = combine(emails, AS_OF)
    # Bodies are inserted verbatim (neither escaped again nor unescaped), in order.
    positions = [combined.html.index(email.html_fragment) for email in emails]
    assert positions == sorted(positions)
    text_positions = [combined.text.index(email.text.rstrip("\n")) for email in emails]
    assert text_positions == sorted(text_positions)
    assert "Alert 2 of 3" in combined.html and "ALERT 3 OF 3: PartnerGuard health:" in combined.text
    # The combined message's own body is what it would contribute if combined again.
    assert body_of(combined.html) == combined.html_fragment


def test_subject_names_the_count_and_the_first_alert() -> None:
    emails = [_digest(CONTOSO, "Contoso", "Carol"), _reminder(), _health()]
    subject = combine(emails, AS_OF).subject
    assert subject == "PartnerGuard: 3 alerts — Contoso — 1 new (1 high), 0 resolved, and 2 more"


def test_hostile_names_stay_escaped_once_in_the_combined_html() -> None:
    emails = [
        _digest(CONTOSO, f"Contoso {XSS_SCRIPT}", HOSTILE_MARKUP),
        _digest(FABRIKAM, "Fabrikam", HOSTILE_MARKUP),
    ]
    combined = combine(emails, AS_OF)

    parsed = assert_hostile_markup_is_text(combined.html)
    # Escaped once: shown as the text it is, never as "&lt;img" spelled out.
    assert "".join(parsed.text).count(XSS_IMG) >= 2
    assert "&amp;lt;" not in combined.html and "&amp;#" not in combined.html
    # The plain-text part shows the names as they are, not HTML-escaped.
    assert HOSTILE_MARKUP in combined.text and "&lt;" not in combined.text


@pytest.mark.parametrize("subject", ["Digest\r\nBcc: attacker@evil.example", "Digest\u2028x", "A" * 10_240])
def test_subject_is_one_short_line_even_from_a_foreign_email(subject: str) -> None:
    foreign = RenderedEmail(subject=subject, html="<p>x</p>", text="x\n")
    combined = combine([foreign, _health()], AS_OF)
    assert not UNSAFE_TEXT.search(combined.subject)
    assert len(combined.subject) < 200
    # The table of contents is inert too (the foreign subject is not ours).
    assert not any(line.startswith("Bcc:") for line in combined.text.splitlines())
    assert "A" * 250 not in combined.text and "A" * 250 not in combined.html


def test_the_fragment_of_an_email_built_elsewhere_is_taken_from_its_body() -> None:
    document = '<!DOCTYPE html><html><head><title>t</title></head><body style="x"><p>Hello</p></body></html>'
    assert RenderedEmail("s", document, "t").html_fragment == "<p>Hello</p>"
    assert RenderedEmail("s", "<p>Just a fragment</p>", "t").html_fragment == "<p>Just a fragment</p>"
    with pytest.raises(ValueError, match="body"):
        RenderedEmail("s", "<html><head></head><p>no body</p></html>", "t")

    combined = combine([RenderedEmail("s", document, "t"), _health()], AS_OF)
    tags = parse_html(combined.html)
    assert tags.starts["html"] == tags.starts["body"] == tags.starts["title"] == 1
    assert "<p>Hello</p>" in combined.html


def test_a_rendered_fragment_is_exactly_the_body_of_its_document() -> None:
    for email in (_digest(CONTOSO, "Contoso", "Carol"), _reminder(), _health()):
        assert email.html_fragment and body_of(email.html) == email.html_fragment


def test_combined_html_is_self_contained_for_outlook() -> None:
    combined = combine([_digest(CONTOSO, "Contoso", "Carol"), _reminder(), _health()], AS_OF)
    parsed = parse_html(combined.html)
    assert {"style", "link", "img", "script", "iframe", "object", "form"}.isdisjoint(parsed.tags)
    assert "url(" not in combined.html and "@import" not in combined.html
    assert 'http-equiv="Content-Type"' in combined.html


def test_nothing_to_combine_or_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="nothing"):
        combine([], AS_OF)
    with pytest.raises(ValueError, match="timezone"):
        combine([_health(), _health()], datetime(2026, 11, 26, 6))

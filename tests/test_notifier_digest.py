"""The digest email's content: what it lists, in which order, and that tenant text stays inert."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from notifiers.digest_email import (
    MAX_LISTED_NEW,
    TEMPLATE_ENVIRONMENT,
    Digest,
    RenderedEmail,
    findings_url,
    render_digest,
)
from partnerguard.model import (
    CheckOutcome,
    CheckResult,
    Finding,
    Report,
    Severity,
    Status,
    SubjectType,
    TenantInfo,
    build_report,
)
from partnerguard.storage.records import FindingRecord
from tests.email_checks import (
    HOSTILE_MARKUP,
    HOSTILE_TENANT_FINDINGS_URL,
    HOSTILE_TENANT_ID,
    HOSTILE_TEXT,
    MULTI_LINE_NAMES,
    PUBLIC_URL,
    REFUSED_PUBLIC_URLS,
    RUN_FINISHED,
    RUN_STARTED,
    TENANT_ID,
    XSS_IMG,
    XSS_SCRIPT,
    assert_hostile_markup_is_text,
    assert_hostile_text_is_inert,
    assert_huge_values_are_capped,
    assert_in_order,
    assert_only_allowed_markup,
    check_metadata,
    email_part,
    finding_record,
    heading,
    parse_html,
)

RESOLVED_AT = datetime(2026, 11, 26, 6, 0, 40, tzinfo=UTC)


def _finding(subject_id: str, name: str, severity: Severity, detail: str = "") -> Finding:
    return Finding(subject_id, SubjectType.USER, name, detail or f"{name} is not MFA capable", severity)


def _report(
    results: list[CheckResult], states: dict[str, dict[str, str]] | None = None, name: str = "Contoso"
) -> Report:
    return build_report(
        TenantInfo(TENANT_ID, name, "partner"), "run-2", RUN_STARTED, RUN_FINISHED, results, states or {}
    )


def _resolved(
    check_id: str,
    subject_id: str,
    name: str,
    resolution: str | None,
    severity: str = "high",
    tenant_id: str = TENANT_ID,
    state: str = "resolved",
    detail: str = "",
) -> FindingRecord:
    return finding_record(
        check_id,
        subject_id,
        name,
        tenant_id=tenant_id,
        state=state,
        severity=severity,
        detail=detail or f"{name} was flagged",
        resolved_at=RESOLVED_AT,
        resolution=resolution,
    )


def _mixed_report() -> Report:
    """Two checks, findings in every state, severities deliberately out of order."""
    registration = check_metadata("mfa.registration", "Every user can do MFA", remediation="Register a strong method.")
    sign_ins = check_metadata("legacy-auth.sign-ins", "No legacy sign-ins", remediation="Block legacy authentication.")
    return _report(
        [
            CheckResult(
                registration,
                CheckOutcome(
                    Status.FAIL,
                    [
                        _finding("u-medium", "Mallory Medium", Severity.MEDIUM),
                        _finding("u-critical", "Carol Critical", Severity.CRITICAL),
                        _finding("u-open", "Olivia Open", Severity.CRITICAL),
                    ],
                ),
            ),
            CheckResult(
                sign_ins,
                CheckOutcome(
                    Status.FAIL,
                    [
                        _finding("u-high|imap4", "Harry High", Severity.HIGH),
                        _finding("u-excepted|pop3", "Eve Excepted", Severity.CRITICAL),
                    ],
                ),
            ),
        ],
        states={
            "mfa.registration": {"u-open": "open"},
            "legacy-auth.sign-ins": {"u-excepted|pop3": "excepted"},
        },
    )


def _mixed_digest() -> Digest:
    return Digest.from_run(
        _mixed_report(),
        [
            _resolved("legacy-auth.sign-ins", "u-gone|imap4", "Gina Gone", "no longer observed"),
            _resolved("mfa.registration", "u-fixed", "Fred Fixed", "fixed", severity="medium"),
            _resolved("mfa.registration", "u-old", "Otto Oldrow", None, severity="critical"),
        ],
        {"mfa.registration": 4, "legacy-auth.sign-ins": 0, "gdap.expiring": 2},
    )


def test_digest_lists_only_new_findings_most_severe_first() -> None:
    digest = _mixed_digest()

    # Open and excepted findings are not news; new ones are ordered by severity across checks.
    assert [f.subject_id for f in digest.new] == ["u-critical", "u-high|imap4", "u-medium"]
    assert [g.check_id for g in digest.guidance] == ["mfa.registration", "legacy-auth.sign-ins"]
    assert [(c.check_id, c.count) for c in digest.still_open] == [("mfa.registration", 4), ("gdap.expiring", 2)]
    assert digest.total_still_open == 6
    assert digest.has_changes


def test_resolved_findings_sorted_and_worded_by_resolution() -> None:
    digest = _mixed_digest()
    assert [r.subject_id for r in digest.resolved] == ["u-old", "u-gone|imap4", "u-fixed"]

    text = render_digest(digest, PUBLIC_URL).text
    blocks = {block.split("\n")[1].strip(): block for block in text.split("\n* ")[1:] if "\n  User: " in block}
    assert blocks["User: Fred Fixed (id u-fixed)"].startswith("Fixed: Every user can do MFA (mfa.registration)")
    gone = blocks["User: Gina Gone (id u-gone|imap4)"]
    assert gone.startswith("No longer observed: No legacy sign-ins (legacy-auth.sign-ins)")
    assert "aged out of the look-back window" in gone
    # A row resolved before resolutions were recorded claims neither.
    old = blocks["User: Otto Oldrow (id u-old)"]
    assert old.startswith("Resolved: ") and "Fixed" not in old and "no longer observed" not in old.lower()

    html = render_digest(digest, PUBLIC_URL).html
    # The resolution column comes before the subject in each row.
    assert_in_order(html, "Otto Oldrow", "No longer observed", "Gina Gone", ">Fixed<", "Fred Fixed")


@pytest.mark.parametrize("part", ["html", "text"])
def test_rendered_sections_in_order_new_resolved_still_open(part: str) -> None:
    document = email_part(render_digest(_mixed_digest(), PUBLIC_URL), part)
    new, resolved, still_open = (
        heading(title, part) for title in ("New findings (3)", "Resolved (3)", "Still open (6)")
    )
    assert_in_order(
        document,
        new,
        "Carol Critical",
        "Harry High",
        "Mallory Medium",
        "Register a strong method.",
        "Block legacy authentication.",
        resolved,
        "Otto Oldrow",
        still_open,
    )
    assert "Olivia Open" not in document and "Eve Excepted" not in document
    open_section = document.split(still_open, 1)[1]
    assert_in_order(open_section, "Every user can do MFA", "gdap.expiring")  # report order; unknown checks last
    assert "No legacy sign-ins" not in open_section  # a zero count is not listed


def test_the_email_names_tenant_check_remedy_and_links_to_the_findings_api() -> None:
    rendered = render_digest(_mixed_digest(), PUBLIC_URL + "/")
    base = f"{PUBLIC_URL}/api/tenants/{TENANT_ID}/findings"
    parsed = parse_html(rendered.html)
    assert base in parsed.hrefs
    assert f"{base}?check=mfa.registration" in parsed.hrefs
    assert f"{base}?check=legacy-auth.sign-ins" in parsed.hrefs
    assert all(href.startswith(base) for href in parsed.hrefs)
    for document in (rendered.html, rendered.text):
        assert "Contoso" in document and TENANT_ID in document and "run-2" in document
        assert "Register a strong method." in document
        assert base in document
    assert rendered.subject == "PartnerGuard: Contoso — 3 new (critical), 3 resolved, 6 still open"


def test_without_a_public_url_the_email_names_the_api_path_and_links_nowhere() -> None:
    rendered = render_digest(_mixed_digest(), None)
    assert "a" not in parse_html(rendered.html).tags
    assert f"/api/tenants/{TENANT_ID}/findings" in rendered.text
    assert "PARTNERGUARD_PUBLIC_URL" in rendered.text


@pytest.mark.parametrize("public_url", REFUSED_PUBLIC_URLS)
def test_only_https_public_urls_become_links(public_url: str) -> None:
    with pytest.raises(ValueError, match="public URL"):
        render_digest(_mixed_digest(), public_url)


def test_loopback_http_is_accepted_for_local_runs() -> None:
    assert findings_url("http://127.0.0.1:7071", TENANT_ID) == f"http://127.0.0.1:7071/api/tenants/{TENANT_ID}/findings"


def _hostile_digest(tenant_id: str = TENANT_ID) -> Digest:
    report = build_report(
        TenantInfo(tenant_id, f"Contoso {XSS_SCRIPT}", "customer"),
        "run-2",
        RUN_STARTED,
        RUN_FINISHED,
        [
            CheckResult(
                check_metadata("mfa.registration", "Every user can do MFA"),
                CheckOutcome(
                    Status.FAIL,
                    [Finding(f"id-{XSS_IMG}", SubjectType.USER, HOSTILE_MARKUP, f"detail {XSS_SCRIPT}", Severity.HIGH)],
                ),
            )
        ],
        {},
    )
    resolved = finding_record(
        "mfa.registration",
        "u2",
        HOSTILE_MARKUP,
        tenant_id=tenant_id,
        state="resolved",
        severity=XSS_SCRIPT,
        detail=XSS_IMG,
        subject_type=XSS_IMG,
        resolution=XSS_IMG,
    )
    return Digest.from_run(report, [resolved], {XSS_SCRIPT: 1})


def test_tenant_markup_is_text_in_the_html_part() -> None:
    parsed = assert_hostile_markup_is_text(render_digest(_hostile_digest(), PUBLIC_URL).html)
    assert "img" not in parsed.tags and "script" not in parsed.tags
    assert not any(attribute.startswith("on") for attribute in parsed.attributes)


def test_a_hostile_tenant_id_cannot_leave_the_link() -> None:
    parsed = assert_only_allowed_markup(render_digest(_hostile_digest(tenant_id=HOSTILE_TENANT_ID), PUBLIC_URL).html)
    for href in parsed.hrefs:
        assert href.startswith(HOSTILE_TENANT_FINDINGS_URL)


def test_plain_text_part_is_not_html_escaped() -> None:
    report = _report(
        [
            CheckResult(
                check_metadata("mfa.registration", "R&D check"),
                CheckOutcome(Status.FAIL, [_finding("u", "A&B", Severity.LOW)]),
            )
        ],
        name="R&D <Ltd>",
    )
    rendered = render_digest(Digest.from_run(report, [], {}), PUBLIC_URL)
    assert "R&D <Ltd>" in rendered.text and "A&B" in rendered.text
    assert "&amp;" not in rendered.text
    assert "R&amp;D &lt;Ltd&gt;" in rendered.html


def test_controls_and_bidi_marks_are_inert_in_both_parts() -> None:
    report = _report(
        [
            CheckResult(
                check_metadata("mfa.registration", "Every user can do MFA"),
                CheckOutcome(Status.FAIL, [_finding(HOSTILE_TEXT, HOSTILE_TEXT, Severity.HIGH, HOSTILE_TEXT)]),
            )
        ],
        name=HOSTILE_TEXT,
    )
    resolved = _resolved("mfa.registration", "u2", HOSTILE_TEXT, "fixed")
    rendered = render_digest(Digest.from_run(report, [resolved], {"mfa.registration": 1}), PUBLIC_URL)

    assert_hostile_text_is_inert(rendered)
    assert "\\u2028FAKE\\u2029" in rendered.text


def test_every_printed_value_is_inert_even_one_the_view_model_forgot_to_clip() -> None:
    # The second layer: a value added to a template later, without going through the view
    # model's capping, still cannot add a line or a bidi override.
    template = TEMPLATE_ENVIRONMENT.from_string("[{{ value }}]")
    assert template.render(value="a\nb\u202ec\u2028") == "[a\\x0ab\\u202ec\\u2028]"
    assert template.render(value=XSS_IMG) == "[&lt;img src=x onerror=alert(1)&gt;]"


@pytest.mark.parametrize("name", MULTI_LINE_NAMES)
def test_subject_is_one_line_whatever_the_tenant_name(name: str) -> None:
    report = _report([], name=name)
    subject = render_digest(Digest.from_run(report, [], {}), PUBLIC_URL).subject
    assert "\r" not in subject and "\n" not in subject and "\u2028" not in subject
    assert subject.startswith("PartnerGuard: Contoso\\x0") or subject.startswith("PartnerGuard: Contoso\\u2028")
    assert subject.endswith("— 0 new, 0 resolved, 0 still open")


def test_ten_kilobyte_names_are_capped_everywhere() -> None:
    huge = "A" * 10_240
    report = _report(
        [
            CheckResult(
                check_metadata("mfa.registration", "B" * 10_240, remediation="C" * 10_240),
                CheckOutcome(Status.FAIL, [Finding("D" * 10_240, SubjectType.USER, huge, "E" * 10_240, Severity.HIGH)]),
            )
        ],
        name=huge,
    )
    resolved = _resolved("mfa.registration", "F" * 10_240, huge, "fixed", detail="E" * 10_240)
    rendered = render_digest(Digest.from_run(report, [resolved], {"mfa.registration": 1}), PUBLIC_URL)

    assert_huge_values_are_capped(rendered, "ABCDEF")
    assert len(rendered.html) < 40_000 and len(rendered.text) < 15_000


def test_a_huge_first_scan_lists_the_most_severe_and_counts_the_rest() -> None:
    findings = [_finding(f"u{i:04}", f"User {i:04}", Severity.HIGH) for i in range(MAX_LISTED_NEW + 50)]
    findings.append(_finding("u-crit", "Zed Critical", Severity.CRITICAL))
    report = _report(
        [CheckResult(check_metadata("mfa.registration", "Every user can do MFA"), CheckOutcome(Status.FAIL, findings))]
    )
    rendered = render_digest(Digest.from_run(report, [], {}), PUBLIC_URL)

    listed = [line for line in rendered.text.splitlines() if line.startswith("* [")]
    assert len(listed) == MAX_LISTED_NEW
    assert listed[0] == "* [Critical] Every user can do MFA (mfa.registration)"
    assert f"... and 51 more new findings: {PUBLIC_URL}/api/tenants/{TENANT_ID}/findings" in rendered.text
    assert "NEW FINDINGS (251)" in rendered.text
    assert "and 51 more new findings" in rendered.html


def test_a_run_with_nothing_new_says_so() -> None:
    digest = Digest.from_run(_report([]), [], {"mfa.registration": 3})
    assert not digest.has_changes
    rendered = render_digest(digest, PUBLIC_URL)
    assert "No new findings in this run." in rendered.text and "Nothing was resolved in this run." in rendered.text
    assert "No new findings in this run." in rendered.html
    assert rendered.subject.endswith("0 new, 0 resolved, 3 still open")


def test_another_tenants_resolved_finding_is_refused() -> None:
    other = _resolved("mfa.registration", "u", "Someone", "fixed", tenant_id="00000000-0000-4000-8000-000000000000")
    with pytest.raises(ValueError, match="tenant"):
        Digest.from_run(_mixed_report(), [other], {})


def test_an_active_finding_is_not_accepted_as_resolved() -> None:
    with pytest.raises(ValueError, match="not resolved"):
        Digest.from_run(_mixed_report(), [_resolved("mfa.registration", "u", "X", None, state="open")], {})


@pytest.mark.parametrize("count", [-1, 1.5, True, "3"])
def test_still_open_counts_must_be_whole_numbers(count: object) -> None:
    with pytest.raises(ValueError, match="still-open"):
        Digest.from_run(_mixed_report(), [], {"mfa.registration": count})  # type: ignore[dict-item]


def test_html_is_self_contained_for_outlook() -> None:
    html = render_digest(_mixed_digest(), PUBLIC_URL).html
    parsed = parse_html(html)
    # Inline styles only: no <style> block, no stylesheet or image to fetch, no script.
    assert {"style", "link", "img", "script", "iframe", "object", "form"}.isdisjoint(parsed.tags)
    assert "url(" not in html and "@import" not in html
    assert "table" in parsed.tags and 'http-equiv="Content-Type"' in html
    assert isinstance(render_digest(_mixed_digest(), PUBLIC_URL), RenderedEmail)

"""The digest email's content: what it lists, in which order, and that tenant text stays inert."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from notifiers.digest_email import (
    MAX_GROUPS_LISTED,
    MAX_GROUPS_PER_CHECK,
    MAX_SUBJECTS_PER_GROUP,
    TEMPLATE_ENVIRONMENT,
    Digest,
    RenderedEmail,
    findings_url,
    first_step,
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


def _finding(
    subject_id: str, name: str, severity: Severity, detail: str = "", evidence: dict[str, object] | None = None
) -> Finding:
    return Finding(subject_id, SubjectType.USER, name, detail or f"{name} is not MFA capable", severity, evidence or {})


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
    resolved = text.split("\nRESOLVED (3)\n", 1)[1]
    # Each check's resolved findings, most severe check first; each kind says how it resolved.
    registration, sign_ins = resolved.split("No legacy sign-ins (legacy-auth.sign-ins): 1 resolved\n")
    assert "  [High] No longer observed: Gina Gone was flagged\n" in sign_ins
    assert "aged out of the look-back window" in sign_ins and "    1 user: Gina Gone\n" in sign_ins
    assert "  [Medium] Fixed: Fred Fixed was flagged\n" in registration
    # A row resolved before resolutions were recorded claims neither.
    assert "  [Critical] Resolved: Otto Oldrow was flagged\n    1 user: Otto Oldrow\n" in registration
    assert_in_order(registration, "Otto Oldrow", "Fred Fixed")

    html = render_digest(digest, PUBLIC_URL).html
    # The resolution comes before the sentence and the subjects.
    assert_in_order(html, "Resolved:", "Otto Oldrow", "Fixed:", "Fred Fixed", "No longer observed:", "Gina Gone")


@pytest.mark.parametrize("part", ["html", "text"])
def test_rendered_sections_in_order_summary_new_resolved(part: str) -> None:
    document = email_part(render_digest(_mixed_digest(), PUBLIC_URL), part)
    summary, new, resolved = (heading(title, part) for title in ("Summary", "New findings (3)", "Resolved (3)"))
    # Start with the check of the most severe new finding, and its first step, above the summary.
    start = document.split(summary, 1)[0].split("Start here", 1)[1]
    assert "Every user can do MFA" in start and "Register a strong method." in start
    assert_in_order(
        summary + document.split(summary, 1)[1],
        summary,
        "Every user can do MFA",
        "No legacy sign-ins",
        "Block legacy authentication.",
        "gdap.expiring",  # still open only, so after the checks with news; unknown to the report
        new,
        "Carol Critical",
        "Mallory Medium",
        "Harry High",
        resolved,
        "Otto Oldrow",
    )
    assert "Olivia Open" not in document and "Eve Excepted" not in document
    # Still-open counts are in the summary, per check; a zero count is shown as 0, not left out.
    assert "6 findings still open" in document


def test_the_summary_counts_each_checks_new_resolved_and_open_findings() -> None:
    text = render_digest(_mixed_digest(), PUBLIC_URL).text
    summary = text.split("\nSUMMARY\n", 1)[1].split("\nNEW FINDINGS", 1)[0]
    assert "* Every user can do MFA\n  2 new (1 critical), 2 resolved, 4 still open. First step: Start here" in summary
    assert "* No legacy sign-ins\n  1 new (1 high), 1 resolved, 0 still open. First step: Block legacy" in summary
    assert "* gdap.expiring\n  0 new, 0 resolved, 2 still open. First step: " in summary


def test_the_email_names_tenant_check_remedy_and_links_to_the_findings_api() -> None:
    rendered = render_digest(_mixed_digest(), PUBLIC_URL + "/")
    base = f"{PUBLIC_URL}/api/tenants/{TENANT_ID}/findings"
    parsed = parse_html(rendered.html)
    assert base in parsed.hrefs
    assert f"{base}?check=mfa.registration" in parsed.hrefs
    assert f"{base}?check=legacy-auth.sign-ins" in parsed.hrefs
    assert f"{PUBLIC_URL}/api/tenants/{TENANT_ID}/scans/run-2" in parsed.hrefs  # the run's full report
    assert all(href.startswith(f"{PUBLIC_URL}/api/tenants/{TENANT_ID}/") for href in parsed.hrefs)
    for document in (rendered.html, rendered.text):
        assert "Contoso" in document and TENANT_ID in document and "run-2" in document
        assert "Register a strong method." in document
        assert base in document
    # The subject says what changed: how many new (and how many of the worst), how many resolved.
    assert rendered.subject == "PartnerGuard: Contoso — 3 new (1 critical), 3 resolved"


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
    # Every link stays under the tenant's own (quoted) path: the findings and the run's report.
    tenant_base = HOSTILE_TENANT_FINDINGS_URL.removesuffix("findings")
    assert HOSTILE_TENANT_FINDINGS_URL in parsed.hrefs
    for href in parsed.hrefs:
        assert href.startswith(tenant_base), href
        assert href[len(tenant_base) :].split("?")[0] in ("findings", "scans/run-2"), href


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
    assert subject.endswith("— 0 new, 0 resolved")


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


def test_a_huge_first_scan_says_each_kind_once_and_counts_the_rest() -> None:
    findings = [_finding(f"u{i:04}", f"User {i:04}", Severity.HIGH) for i in range(250)]
    findings.append(_finding("u-crit", "Zed Critical", Severity.CRITICAL))
    report = _report(
        [CheckResult(check_metadata("mfa.registration", "Every user can do MFA"), CheckOutcome(Status.FAIL, findings))]
    )
    rendered = render_digest(Digest.from_run(report, [], {}), PUBLIC_URL)

    text = rendered.text
    assert "NEW FINDINGS (251)" in text and "Every user can do MFA (mfa.registration): 251 new" in text
    # The most severe kind first; the user's name, masked in the shared sentence, is not repeated.
    assert_in_order(text, "  [Critical] Zed Critical is not MFA capable", "  [High] … is not MFA capable")
    shown = ", ".join(f"User {i:04}" for i in range(MAX_SUBJECTS_PER_GROUP))
    assert f"    250 users: {shown}, and {250 - MAX_SUBJECTS_PER_GROUP} more\n" in text
    assert "User 0249" not in text
    assert len(text) < 5_000 and len(rendered.html) < 15_000
    assert f"and {250 - MAX_SUBJECTS_PER_GROUP} more" in rendered.html


def test_a_run_with_nothing_new_says_so() -> None:
    digest = Digest.from_run(_report([]), [], {"mfa.registration": 3})
    assert not digest.has_changes
    rendered = render_digest(digest, PUBLIC_URL)
    assert "No new findings in this run." in rendered.text and "Nothing was resolved in this run." in rendered.text
    assert "No new findings in this run." in rendered.html
    assert rendered.subject.endswith("0 new, 0 resolved")
    assert "3 findings still open" in rendered.text


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


def _grouped_report() -> Report:
    """Eight users with one sentence (one of them an admin only another check says so), two with
    another, and the same admin's own finding in the check that knows admins."""
    enforcement = check_metadata(
        "mfa.enforcement", "Every sign-in requires MFA", remediation="1. Create one policy for all users. 2. Test it."
    )
    registration = check_metadata("mfa.registration", "Every user can do MFA", remediation="Register a method.")
    disabled = "Per-user MFA state is 'disabled', so nothing challenges this user's sign-ins."
    enforced = [_finding(f"u{i}", f"User {i}", Severity.CRITICAL, disabled) for i in range(8)]
    enforced += [
        _finding(f"v{i}", f"Vera {i}", Severity.CRITICAL, "Per-user MFA state is 'enabled'.") for i in range(2)
    ]
    admin_row = _finding("u7", "User 7", Severity.HIGH, "No method registered.", evidence={"isAdmin": True})
    return _report(
        [
            CheckResult(enforcement, CheckOutcome(Status.FAIL, enforced)),
            CheckResult(registration, CheckOutcome(Status.FAIL, [admin_row])),
        ]
    )


@pytest.mark.parametrize("part", ["html", "text"])
def test_each_kind_of_finding_is_said_once_then_its_subjects_admins_first(part: str) -> None:
    document = email_part(render_digest(Digest.from_run(_grouped_report(), [], {}), PUBLIC_URL), part)
    sentence = "Per-user MFA state is 'disabled', so nothing challenges this user's sign-ins."
    assert document.replace("&#39;", "'").count(sentence) == 1
    # User 7 is an admin by mfa.registration's evidence, so first in mfa.enforcement's group too.
    shown = ["User 7", *(f"User {i}" for i in range(MAX_SUBJECTS_PER_GROUP - 1))]
    assert_in_order(document, "8 users:", *shown, f"and {8 - MAX_SUBJECTS_PER_GROUP} more")
    assert "User 7</strong> (admin)" in document or "User 7 (admin)" in document
    assert f"User {MAX_SUBJECTS_PER_GROUP - 1}," not in document.split("8 users:", 1)[1].split("more", 1)[0]
    # The larger kind first at the same severity; both kinds of the check listed.
    assert_in_order(document, "8 users:", "2 users:", "Vera 0", "Vera 1")


def test_the_text_and_html_parts_say_the_same() -> None:
    rendered = render_digest(_mixed_digest(), PUBLIC_URL)
    html_text = "".join(parse_html(rendered.html).text)
    # Every sentence, name, count and first step of the plain text is in the HTML's text.
    for needle in (
        "Carol Critical is not MFA capable",
        "Harry High",
        "Gina Gone was flagged",
        "2 new",
        "1 critical",
        "Register a strong method.",
        "Block legacy authentication.",
        "aged out of the look-back window",
        "3 new findings (1 critical), 3 resolved, 6 findings still open.",
    ):
        assert needle in rendered.text and needle in html_text, needle


def test_caps_per_kind_per_check_and_per_digest_keep_every_count() -> None:
    # More checks with more kinds than the digest lists: each check's count is whole, and what
    # is not listed is counted and linked.
    results = []
    for index in range(MAX_GROUPS_LISTED):
        metadata = check_metadata(f"check.{index}", f"Check {index}", remediation=f"Fix {index}.")
        findings = [
            _finding(f"c{index}-k{kind}-u{user}", f"U{user}", Severity.HIGH, f"Kind {'x' * kind} of {index}.")
            for kind in range(MAX_GROUPS_PER_CHECK + 1)
            for user in range(3)
        ]
        results.append(CheckResult(metadata, CheckOutcome(Status.FAIL, findings)))
    digest = Digest.from_run(_report(results), [], {})
    text = render_digest(digest, PUBLIC_URL).text
    per_check = 3 * (MAX_GROUPS_PER_CHECK + 1)
    sections = text.split("\nNEW FINDINGS", 1)[1].split("\nRESOLVED", 1)[0]
    listed_groups = sections.count("  [High] ")
    assert listed_groups == MAX_GROUPS_LISTED
    for index in range(MAX_GROUPS_LISTED):
        section = sections.split(f"Check {index} (check.{index}): {per_check} new", 1)[1].split("\nCheck ", 1)[0]
        listed = sum(int(n) for n in re.findall(r"^    (\d+) users:", section, re.MULTILINE))
        more = re.search(r"\.\.\. (\d+) more", section)
        link = f"{PUBLIC_URL}/api/tenants/{TENANT_ID}/findings?check=check.{index}"
        if listed:
            assert more is not None and listed + int(more.group(1)) == per_check
        else:
            assert section.startswith(", not listed here: ")
        assert link in section


def test_start_here_is_the_check_with_the_most_severe_then_most_numerous_new_findings() -> None:
    rendered = render_digest(Digest.from_run(_grouped_report(), [], {}), PUBLIC_URL)
    start = rendered.text.split("Start here: ", 1)[1].split("\n\n", 1)[0]
    assert start.startswith("Every sign-in requires MFA (mfa.enforcement), because it has the most severe new")
    assert "(10 critical, 1 about administrators)" in start
    assert start.endswith("\n  Create one policy for all users.")  # step 1 only
    # The summary does not repeat it; the other check's first step is its first sentence.
    assert "First step: Start here (above)." in rendered.text
    assert "First step: Register a method." in rendered.text


def test_equal_checks_are_not_called_more_and_the_one_about_admins_comes_first() -> None:
    # Two checks with one high finding each; the second check's is about an administrator.
    apps = check_metadata("apps.client-secrets", "No client secrets", remediation="Rotate it.")
    admins = check_metadata(
        "mfa.phishing-resistant-admins", "Admins use phishing-resistant MFA", remediation="Add a key."
    )
    report = _report(
        [
            CheckResult(apps, CheckOutcome(Status.FAIL, [_finding("a1", "App 1", Severity.HIGH, "Has a secret.")])),
            CheckResult(
                admins,
                CheckOutcome(
                    Status.FAIL,
                    [
                        _finding(
                            "u1",
                            "Uma Admin",
                            Severity.HIGH,
                            "No phishing-resistant method.",
                            evidence={"isAdmin": True},
                        )
                    ],
                ),
            ),
        ]
    )
    text = render_digest(Digest.from_run(report, [], {}), PUBLIC_URL).text
    start = text.split("Start here: ", 1)[1].split("\n\n", 1)[0]
    assert start.startswith("Admins use phishing-resistant MFA (mfa.phishing-resistant-admins)")
    assert "as many as 1 other check (listed next)" in start and "more than" not in start
    assert_in_order(text, "SUMMARY", "* Admins use phishing-resistant MFA", "* No client secrets")


@pytest.mark.parametrize(
    ("remediation", "step"),
    [
        ("1. Open the portal. 2. Fix it. 3. Check.", "Open the portal."),
        ("1. In Entra > Users, check v1.2 of it. 2. Then.", "In Entra > Users, check v1.2 of it."),
        ("Register a strong method. Then test it.", "Register a strong method."),
        ("No full stop", "No full stop"),
    ],
)
def test_first_step_of_a_remediation(remediation: str, step: str) -> None:
    assert first_step(remediation) == step

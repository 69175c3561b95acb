"""The health alert: each kind of problem explained, in order, linked, and every caller or tenant string inert."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from notifiers.health_email import MAX_LISTED_PER_KIND, HealthAlert, HealthKind, HealthProblem, render_health_alert
from tests.email_checks import (
    HOSTILE_MARKUP,
    HOSTILE_TEXT,
    MULTI_LINE_NAMES,
    PUBLIC_URL,
    REFUSED_PUBLIC_URLS,
    TENANT_ID,
    XSS_ATTR,
    XSS_IMG,
    XSS_SCRIPT,
    assert_hostile_markup_is_text,
    assert_hostile_text_is_inert,
    assert_huge_values_are_capped,
    assert_in_order,
    email_part,
    heading,
    parse_html,
)

AS_OF = datetime(2026, 11, 26, 6, 0, 0, tzinfo=UTC)
CONTOSO = TENANT_ID
FABRIKAM = "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9"
NORTHWIND = "aa11bb22-cc33-4d44-8e55-ff6677889900"
CONSENT_URL = (
    f"https://login.microsoftonline.com/{FABRIKAM}/adminconsent?client_id=11111111-2222-4333-8444-555555555555"
)


def _stale(tenant_id: str, name: str, days: int) -> HealthProblem:
    since = AS_OF - timedelta(days=days)
    return HealthProblem("stale", tenant_id, name, f"no successful scan since {since:%Y-%m-%dT%H:%M:%SZ}", since)


def _consent(tenant_id: str, name: str, consent_url: str | None = CONSENT_URL) -> HealthProblem:
    return HealthProblem(
        "consent",
        tenant_id,
        name,
        "AADSTS7000229: The client application is missing service principal in the tenant",
        AS_OF - timedelta(hours=30),
        consent_url=consent_url,
    )


def _poison(queue: str = "partnerguard-scans-poison", count: int = 3) -> HealthProblem:
    return HealthProblem("poison", None, None, f"{count} messages in {queue}", AS_OF - timedelta(hours=2))


def _alert(*problems: HealthProblem) -> HealthAlert:
    return HealthAlert(problems=problems, as_of=AS_OF)


def _mixed_alert() -> HealthAlert:
    """Every kind, given in the reverse of the order the email lists them."""
    return _alert(
        _poison(),
        _stale(NORTHWIND, "Northwind", 2),
        _stale(CONTOSO, "Contoso", 6),
        _consent(FABRIKAM, "Fabrikam"),
    )


@pytest.mark.parametrize("part", ["html", "text"])
def test_problems_are_grouped_by_kind_consent_first_longest_standing_first(part: str) -> None:
    document = email_part(render_health_alert(_mixed_alert(), PUBLIC_URL), part)
    consent, stale, poison = (
        heading(title, part)
        for title in (
            "Consent missing or failing (1)",
            "Tenants not scanned (2)",
            "Messages PartnerGuard could not process (1)",
        )
    )
    assert_in_order(
        document, consent, "Fabrikam", stale, "Contoso", "Northwind", poison, "3 messages in partnerguard-scans-"
    )


@pytest.mark.parametrize("part", ["html", "text"])
def test_each_kind_says_what_it_means_and_what_to_do(part: str) -> None:
    document = email_part(render_health_alert(_mixed_alert(), PUBLIC_URL), part)
    sections = re.split(r"Tenants not scanned \(2\)|TENANTS NOT SCANNED \(2\)", document)
    consent_part, rest = sections
    stale_part, poison_part = re.split(r"Messages PartnerGuard could not|MESSAGES PARTNERGUARD COULD NOT", rest)

    assert "revoked or never granted" in consent_part
    assert "Global Administrator (or Privileged Role Administrator)" in consent_part
    assert "adminconsent?client_id=" in consent_part
    assert "AADSTS7000229" in consent_part
    assert "twice the schedule" in stale_part and "cannot prove" in stale_part
    assert "GET /api/tenants/{id}/scans/{run_id}" in stale_part
    assert "no successful scan since 2026-11-20T06:00:00Z" in stale_part
    assert "-poison" in poison_part and "carries its reason" in poison_part
    # When each problem started, and how long ago.
    assert "2026-11-20T06:00:00Z" in stale_part and "6 days ago" in stale_part
    assert "1 day 6 hours ago" in consent_part and "2 hours ago" in poison_part


def test_links_go_to_the_tenants_api_and_the_consent_url() -> None:
    rendered = render_health_alert(_mixed_alert(), PUBLIC_URL + "/")
    hrefs = parse_html(rendered.html).hrefs
    assert set(hrefs) == {f"{PUBLIC_URL}/api/tenants", CONSENT_URL}
    assert f"{PUBLIC_URL}/api/tenants" in rendered.text
    assert f"Grant admin consent: {CONSENT_URL}" in rendered.text


def test_without_a_public_url_the_email_names_the_api_path_and_links_only_the_consent_url() -> None:
    rendered = render_health_alert(_mixed_alert(), None)
    parsed = parse_html(rendered.html)
    assert parsed.hrefs == [CONSENT_URL]
    for document in ("".join(parsed.text), rendered.text):
        assert "GET /api/tenants on the PartnerGuard app" in document
        assert "PARTNERGUARD_PUBLIC_URL" in document


def test_a_consent_problem_without_a_url_links_nowhere_but_still_says_what_to_do() -> None:
    rendered = render_health_alert(_alert(_consent(FABRIKAM, "Fabrikam", consent_url=None)), None)
    assert "a" not in parse_html(rendered.html).tags
    assert "Grant admin consent:" not in rendered.text
    assert "must grant admin consent to the PartnerGuard app again" in rendered.text


@pytest.mark.parametrize(
    ("problems", "subject"),
    [
        (
            _mixed_alert().problems,
            "PartnerGuard health: 1 tenant without working consent, 2 tenants not scanned, "
            "1 queue with unprocessed messages",
        ),
        ((_stale(CONTOSO, "Contoso", 3),), "PartnerGuard health: 1 tenant not scanned — Contoso"),
        ((_consent(FABRIKAM, ""),), f"PartnerGuard health: 1 tenant without working consent — {FABRIKAM}"),
        ((_poison(), _poison("partnerguard-alerts-poison")), "PartnerGuard health: 2 queues with unprocessed messages"),
    ],
)
def test_subject_counts_each_kind(problems: tuple[HealthProblem, ...], subject: str) -> None:
    assert render_health_alert(_alert(*problems), PUBLIC_URL).subject == subject


@pytest.mark.parametrize("public_url", REFUSED_PUBLIC_URLS)
def test_only_https_public_urls_become_links(public_url: str) -> None:
    with pytest.raises(ValueError, match="public URL"):
        render_health_alert(_mixed_alert(), public_url)


@pytest.mark.parametrize(
    "consent_url",
    ["javascript:alert(1)", "http://login.microsoftonline.com/x/adminconsent", "data:text/html,x", "//evil.example/x"],
)
def test_only_https_consent_urls_are_accepted(consent_url: str) -> None:
    with pytest.raises(ValueError, match="consent URL"):
        _consent(FABRIKAM, "Fabrikam", consent_url=consent_url)


def test_loopback_http_is_linked_for_local_runs() -> None:
    local_consent = "http://127.0.0.1:8443/x/adminconsent?client_id=y"
    rendered = render_health_alert(_alert(_consent(FABRIKAM, "F", local_consent)), "http://localhost:7071")
    assert set(parse_html(rendered.html).hrefs) == {"http://localhost:7071/api/tenants", local_consent}


def _hostile_alert() -> HealthAlert:
    return _alert(
        HealthProblem("stale", f"id-{XSS_IMG}", HOSTILE_MARKUP, f"detail {XSS_SCRIPT}", AS_OF),
        # An https URL that tries to leave its attribute.
        _consent(FABRIKAM, HOSTILE_MARKUP, consent_url=f"https://login.example/x{XSS_ATTR}"),
        HealthProblem("poison", None, None, f"{XSS_IMG} in a-poison", None),
    )


def test_tenant_markup_is_text_in_the_html_part() -> None:
    parsed = assert_hostile_markup_is_text(render_health_alert(_hostile_alert(), PUBLIC_URL).html)
    assert not any(attribute.startswith("on") for attribute in parsed.attributes)
    # The quote stayed inside the href, as the URL's own character.
    assert f"https://login.example/x{XSS_ATTR}" in parsed.hrefs


def test_plain_text_part_is_not_html_escaped() -> None:
    rendered = render_health_alert(_alert(_stale(CONTOSO, "R&D <Ltd>", 3)), PUBLIC_URL)
    assert "R&D <Ltd>" in rendered.text and "&amp;" not in rendered.text
    assert "R&amp;D &lt;Ltd&gt;" in rendered.html


def test_controls_and_bidi_marks_are_inert_everywhere() -> None:
    alert = _alert(
        HealthProblem("stale", HOSTILE_TEXT, HOSTILE_TEXT, HOSTILE_TEXT, AS_OF),
        HealthProblem("poison", None, None, HOSTILE_TEXT, None),
    )
    assert_hostile_text_is_inert(render_health_alert(alert, PUBLIC_URL))


@pytest.mark.parametrize("name", MULTI_LINE_NAMES)
def test_subject_is_one_line_whatever_the_tenant_name(name: str) -> None:
    subject = render_health_alert(_alert(_stale(CONTOSO, name, 3)), PUBLIC_URL).subject
    assert not any(char in subject for char in "\r\n\u2028\u2029")
    assert subject.startswith("PartnerGuard health: 1 tenant not scanned — Contoso\\")


def test_ten_kilobyte_values_are_capped_everywhere() -> None:
    alert = _alert(
        HealthProblem("stale", "B" * 10_240, "A" * 10_240, "C" * 10_240, AS_OF),
        HealthProblem("consent", CONTOSO, "A" * 10_240, "D", AS_OF, consent_url="https://x.example/" + "E" * 10_240),
    )
    assert_huge_values_are_capped(render_health_alert(alert, PUBLIC_URL), "ABCE")


def test_many_stale_tenants_are_listed_up_to_a_limit_and_counted() -> None:
    problems = [_stale(f"t{i:04}", f"Tenant {i:04}", 3) for i in range(MAX_LISTED_PER_KIND + 5)]
    rendered = render_health_alert(_alert(*problems), PUBLIC_URL)
    assert sum(1 for line in rendered.text.splitlines() if line.startswith("* Tenant ")) == MAX_LISTED_PER_KIND
    assert f"TENANTS NOT SCANNED ({MAX_LISTED_PER_KIND + 5})" in rendered.text
    assert f"... and 5 more: {PUBLIC_URL}/api/tenants" in rendered.text
    assert "and 5 more" in rendered.html


@pytest.mark.parametrize(
    ("kind", "tenant_id", "tenant_name", "consent_url", "message"),
    [
        ("poison", CONTOSO, None, None, "queue, not a tenant"),
        ("stale", None, None, None, "needs the tenant id"),
        ("consent", "", "Contoso", None, "needs the tenant id"),
        ("stale", CONTOSO, "Contoso", CONSENT_URL, "no consent URL"),
        ("expired", CONTOSO, "Contoso", None, "unknown health problem kind"),
    ],
)
def test_inconsistent_problems_are_refused(
    kind: str, tenant_id: str | None, tenant_name: str | None, consent_url: str | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        HealthProblem(kind, tenant_id, tenant_name, "x", None, consent_url=consent_url)  # type: ignore[arg-type]


def test_an_alert_needs_a_problem_and_aware_times() -> None:
    with pytest.raises(ValueError, match="at least one"):
        _alert()
    with pytest.raises(ValueError, match="timezone"):
        HealthAlert((_poison(),), datetime(2026, 11, 26, 6))
    kind: HealthKind = "stale"
    with pytest.raises(ValueError, match="timezone"):
        HealthProblem(kind, CONTOSO, "Contoso", "x", datetime(2026, 11, 26, 6))

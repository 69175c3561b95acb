"""The Teams card: what it tells, that Microsoft's Adaptive Card schema accepts it, that tenant
text stays inert Markdown, and that it stays under Teams' payload limit whatever the findings."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from notifiers.alert_content import AlertPart
from notifiers.email_view import clip, findings_url
from notifiers.health_email import HealthAlert, HealthProblem
from notifiers.teams_card import (
    ACTION_TITLE_LIMIT,
    CARD_NAME_LIMIT,
    PAYLOAD_BUDGET,
    TEAMS_PAYLOAD_LIMIT,
    md,
    render_teams_message,
    serialize,
)
from testbed.teams_fake import TeamsPost, card_problems, envelope_problems
from tests.channel_builders import (
    AS_OF,
    CONSENT_URL,
    HOSTILE_NAMES,
    HUGE,
    MARKDOWN_LINK,
    ORDINARY_NAMES,
    OWN_MARKDOWN,
    content,
    digest,
    health,
    markdown_inline,
    reminder,
)
from tests.email_checks import PUBLIC_URL, TENANT_ID


def card_of(message: dict[str, Any]) -> dict[str, Any]:
    assert envelope_problems(message) == []
    card: dict[str, Any] = message["attachments"][0]["content"]
    return card


def texts(message: dict[str, Any]) -> list[str]:
    return TeamsPost(card_of(message), serialize(message)).texts()


def shown(message: dict[str, Any]) -> str:
    """The card's text as a reader sees it (Markdown rendered to plain text), one line per block."""
    return "\n".join(markdown_inline(text)[1] for text in texts(message))


def test_a_digest_card_tells_the_tenant_what_changed_the_counts_the_findings_and_what_to_do() -> None:
    message = render_teams_message(content(digest(5, resolved=2)))
    card = card_of(message)
    assert card["version"] == "1.4"
    seen = shown(message)
    assert "PartnerGuard: Contoso — 5 new, 2 resolved, 4 still open" in seen
    assert f"Customer tenant {TENANT_ID}" in seen
    # Counts by severity of the new findings, all of them.
    assert "Critical (new): 2" in seen and "High (new): 1" in seen and "Medium (new): 1" in seen
    assert "Low (new): 1" in seen
    # Findings most severe first, each with check, subject and detail.
    first = seen.index("Critical · Every user can do MFA — User: User 0")
    assert first < seen.index("High · Every user can do MFA — User: User 2") < seen.index("Low · ")
    assert "User 0 has no MFA method" in seen
    assert "Fixed · No legacy sign-ins — User: Gone 0" in seen
    assert "No longer observed · No legacy sign-ins — User: Gone 1" in seen
    assert "Every user can do MFA: Register a strong method." in seen
    assert "more in the report" not in seen
    assert [(a["title"], a["url"]) for a in card["actions"]] == [
        ("Open the tenant's findings", findings_url(PUBLIC_URL, TENANT_ID)),
        ("Open the dashboard", f"{PUBLIC_URL}/api/dashboard"),
    ]


def test_without_a_public_url_the_card_links_nowhere() -> None:
    assert "actions" not in card_of(render_teams_message(content(digest(), public_url=None)))


def test_reminder_and_health_cards_say_what_is_open_and_what_is_wrong() -> None:
    message = render_teams_message(content(reminder(3)))
    seen = shown(message)
    assert "PartnerGuard reminder: Contoso — 3 critical findings still open" in seen
    assert "Oldest open for: 3 days 2 hours" in seen
    # Oldest first, with how long each has been open.
    assert seen.index("User: User 2") < seen.index("User: User 1") < seen.index("User: User 0")
    assert "User 2 is flagged · Open for 3 days 2 hours." in seen
    assert "ALERT_REMINDER_HOURS=0" in seen
    assert [a["title"] for a in card_of(message)["actions"]] == ["Open the tenant's findings", "Open the dashboard"]

    message = render_teams_message(content(health()))
    seen = shown(message)
    assert "PartnerGuard health: 3 problems need attention" in seen
    assert seen.index("Consent missing or failing") < seen.index("Tenants not scanned") < seen.index("Messages")
    assert "Fabrikam (22222222-2222-4333-8444-555555555555): AADSTS65001: consent missing" in seen
    assert "Queue: 3 messages in partnerguard-scans-poison" in seen
    assert [(a["title"], a["url"]) for a in card_of(message)["actions"]] == [
        ("Grant consent: Fabrikam", CONSENT_URL),
        ("Open the tenants' status", f"{PUBLIC_URL}/api/tenants"),
        ("Open the dashboard", f"{PUBLIC_URL}/api/dashboard"),
    ]
    # The button does not replace the link in the text (a client that shows no buttons).
    assert f"Admin consent: {CONSENT_URL}" in seen


def test_several_alerts_share_one_valid_card_each_set_apart() -> None:
    message = render_teams_message(content(health(), digest(2), reminder(1)))
    body = card_of(message)["body"]
    assert [block["type"] for block in body if block["type"] == "Container"] == ["Container", "Container"]
    seen = shown(message)
    assert seen.index("PartnerGuard health") < seen.index("PartnerGuard: Contoso") < seen.index("reminder")


def test_the_schema_check_can_fail() -> None:
    """The validator the stand-in uses refuses a misspelt property and an unknown element."""
    assert card_problems({"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock", "txt": "x"}]})
    assert card_problems({"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "Table2"}]})
    assert card_problems({"type": "AdaptiveCard", "version": "1.6", "body": []})  # above Teams' 1.5
    assert not card_problems({"type": "AdaptiveCard", "version": "1.4", "body": []})


def test_the_markdown_check_can_fail() -> None:
    """Unescaped, these strings are a link, emphasis, a heading, a list, an image, HTML, code, a
    quote and a rule; escaped, each is its own text."""
    for raw, kind in [
        (MARKDOWN_LINK, "link_open"),
        ("<https://evil.example>", "link_open"),
        ("**bold**", "strong_open"),
        ("_it_", "em_open"),
        ("# Heading", "heading_open"),
        ("## Heading", "heading_open"),
        ("- item", "bullet_list_open"),
        ("+ item", "bullet_list_open"),
        ("* item", "bullet_list_open"),
        ("1. one", "ordered_list_open"),
        ("12) twelve", "ordered_list_open"),
        ("> quoted", "blockquote_open"),
        ("---", "hr"),
        ("![x](https://evil.example/p.png)", "image"),
        ("a <img src=x>", "html_inline"),
        ("<div>x</div>", "html_block"),
        ("a `code` b", "code_inline"),
        ("```", "fence"),
        ("~~~", "fence"),
    ]:
        assert kind in markdown_inline(raw)[0], raw
        kinds, text = markdown_inline(md(raw, 200))
        assert kinds <= OWN_MARKDOWN - {"strong_open", "strong_close"}, raw
        assert text == raw
    # Shown as written only once escaped: an entity, a link reference definition, an escape.
    for raw in ["&amp; &#65;", "[x]: https://evil.example", "a \\* b", "{{TIME(2017-02-14T06:08:39Z)}}"]:
        assert markdown_inline(raw)[1] != raw or "{{" in raw, raw
        kinds, text = markdown_inline(md(raw, 200))
        assert kinds <= OWN_MARKDOWN - {"strong_open", "strong_close"} and text == raw, raw
    # Indented four spaces, a value would be a code block: the spaces, never shown, are dropped.
    assert markdown_inline(md("    code", 200)) == ({"paragraph_open", "inline", "text", "paragraph_close"}, "code")


def test_only_what_markdown_could_read_is_escaped() -> None:
    """Teams clients have shown CommonMark's escapes literally (contoso\\.com): punctuation that
    Markdown does not read, and a block marker anywhere but at the start, stay as written."""
    plain = "a.b, c: d; e@f/g 'h' \"i\" j? 50% k=l m-n #1 x+y 2. $3 ^4"
    assert md(plain, 200) == plain
    assert md("2026-11-20T06:00:00Z", 40) == "2026-11-20T06:00:00Z"
    assert md("1.2.3", 40) == "1.2.3"
    for name in ORDINARY_NAMES:
        assert md(name, 200) == name


@pytest.mark.parametrize("name", ORDINARY_NAMES)
def test_ordinary_names_reach_the_card_without_a_backslash(name: str) -> None:
    """A tenant, a user and a detail with dots, an at sign, a hyphen or an apostrophe: the card's
    JSON holds each exactly as written, and a digest's card holds no backslash at all."""
    message = render_teams_message(content(digest(2, name=name, subject_name=name, detail=name)))
    assert b"\\" not in serialize(message)
    assert f"PartnerGuard: {name} — " in texts(message)[0]
    assert any(f"User: {name}" in text for text in texts(message))
    for part in (reminder(1, name=name, subject_name=name), health(name=name, detail=name)):
        raw = "\n".join(texts(render_teams_message(content(part))))
        assert name in raw and f"\\{name}" not in raw
        # No backslash before these anywhere (a dot after a number that starts a value aside:
        # "1. For each user" in a check's remediation would be a list item).
        assert re.search(r"(?<![0-9])\\\.|\\[@'-]", raw) is None, raw


def consent_problems(count: int) -> HealthAlert:
    """`count` tenants whose consent is missing, the oldest first."""
    problems = tuple(
        HealthProblem(
            "consent",
            f"{index:08d}-2222-4333-8444-555555555555",
            f"Tenant {index}",
            "AADSTS65001: consent missing",
            AS_OF - timedelta(days=30 - index),
            consent_url=f"https://login.microsoftonline.com/{index:08d}-2222-4333-8444-555555555555/adminconsent?client_id=x",
        )
        for index in range(count)
    )
    return HealthAlert(problems, AS_OF)


@pytest.mark.parametrize("public_url", [PUBLIC_URL, None])
def test_consent_buttons_fit_within_the_six_actions_teams_shows(public_url: str | None) -> None:
    """Eight tenants without consent: the card has at most six buttons (Teams' "You can have up to
    six"), the report's links kept, consent buttons for the oldest problems in what is left, and
    every tenant's consent URL still in the text."""
    alert = consent_problems(8)
    message = render_teams_message(content(alert, public_url=public_url))
    actions = card_of(message)["actions"]
    assert len(actions) == 6
    report = ["Open the tenants' status", "Open the dashboard"] if public_url else []
    buttons = 6 - len(report)
    assert [a["title"] for a in actions] == [f"Grant consent: Tenant {i}" for i in range(buttons)] + report
    assert [a["url"] for a in actions[:buttons]] == [p.consent_url for p in alert.problems[:buttons]]
    seen = shown(message)
    for problem in alert.problems:
        assert f"Admin consent: {problem.consent_url}" in seen


def test_few_consent_problems_get_a_button_each() -> None:
    message = render_teams_message(content(consent_problems(2), public_url=None))
    assert [a["title"] for a in card_of(message)["actions"]] == ["Grant consent: Tenant 0", "Grant consent: Tenant 1"]


@pytest.mark.parametrize("hostile", HOSTILE_NAMES)
def test_tenant_text_is_shown_as_written_never_as_markdown(hostile: str) -> None:
    """A hostile tenant name, subject name, detail and check title: every text block of the card
    renders to plain text (our bold labels aside) that shows the string, made one line."""
    parts: list[AlertPart] = [
        digest(2, name=hostile, subject_name=hostile, detail=hostile),
        reminder(1, name=hostile, subject_name=hostile),
        health(name=hostile, detail=hostile),
    ]
    for part in parts:
        message = render_teams_message(content(part))
        for text in texts(message):
            kinds, _ = markdown_inline(text)
            assert kinds <= OWN_MARKDOWN, (text, kinds)
        seen = shown(message)
        assert clip(hostile, CARD_NAME_LIMIT) in seen
        assert "FORGED" not in seen or "evil\\x0aFORGED" in seen  # the line break is visible, not a line
        # Nothing a tenant wrote reached the card's links: they go to the API or to the consent
        # URL PartnerGuard built; a button's title (plain text) shows the name made one line.
        for action in card_of(message).get("actions", []):
            assert action["url"].startswith(PUBLIC_URL + "/api/") or action["url"] == CONSENT_URL
            if action["url"] == CONSENT_URL:
                name = clip(hostile, ACTION_TITLE_LIMIT - len("Grant consent: "))
                assert action["title"] == f"Grant consent: {name}"
                assert len(action["title"]) <= ACTION_TITLE_LIMIT and "\n" not in action["title"]


def test_4000_character_names_and_details_are_capped() -> None:
    message = render_teams_message(content(digest(3, name=HUGE, subject_name=HUGE, detail=HUGE)))
    seen = shown(message)
    longest = max(len(run) for run in re.findall("A+", seen))
    assert longest <= 300
    assert "A" * (CARD_NAME_LIMIT - 1) + "…" in seen


@pytest.mark.parametrize("letter", ["A", "界", "🛡"])
def test_thousands_of_findings_fit_teams_limit_and_say_how_many_more(letter: str) -> None:
    """5,000 findings with 4,000-character names (one, three and four UTF-8 bytes a character)."""
    huge = letter * 4000
    message = render_teams_message(content(digest(5000, name=huge, subject_name=huge, detail=huge, resolved=300)))
    size = len(serialize(message))
    assert size <= PAYLOAD_BUDGET < TEAMS_PAYLOAD_LIMIT
    seen = shown(message)
    listed_new = sum(1 for line in seen.splitlines() if line.startswith(("Critical · ", "High · ", "Medium · ")))
    assert listed_new >= 1
    assert f"…and {5000 - listed_new} more in the report." in seen
    assert "New: 5000" in seen and "Resolved: 300" in seen  # the counts stay whole
    listed_resolved = sum(1 for line in seen.splitlines() if line.startswith(("Fixed · ", "No longer observed · ")))
    assert f"…and {300 - listed_resolved} more in the report." in seen


def test_a_small_digest_is_listed_whole() -> None:
    message = render_teams_message(content(digest(20, resolved=0)))
    seen = shown(message)
    assert sum(1 for line in seen.splitlines() if " · Every user can do MFA — " in line) == 20
    assert "more in the report" not in seen

"""The Teams card: what it tells, that Microsoft's Adaptive Card schema accepts it, that tenant
text stays inert Markdown, and that it stays under Teams' payload limit whatever the findings."""

from __future__ import annotations

import re
from typing import Any

import pytest

from notifiers.alert_content import AlertPart
from notifiers.email_view import clip, findings_url
from notifiers.teams_card import (
    CARD_NAME_LIMIT,
    PAYLOAD_BUDGET,
    TEAMS_PAYLOAD_LIMIT,
    md,
    render_teams_message,
    serialize,
)
from testbed.teams_fake import TeamsPost, card_problems, envelope_problems
from tests.channel_builders import (
    HOSTILE_NAMES,
    HUGE,
    MARKDOWN_LINK,
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
    assert [a["title"] for a in card_of(message)["actions"]] == ["Open the tenants' status", "Open the dashboard"]


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
    """Unescaped, these strings are a link, emphasis, a heading, a list, an image and HTML."""
    for raw, kind in [
        (MARKDOWN_LINK, "link_open"),
        ("**bold**", "strong_open"),
        ("_it_", "em_open"),
        ("# Heading", "heading_open"),
        ("- item", "bullet_list_open"),
        ("1. one", "ordered_list_open"),
        ("![x](https://evil.example/p.png)", "image"),
        ("a <img src=x>", "html_inline"),
        ("<div>x</div>", "html_block"),
    ]:
        assert kind in markdown_inline(raw)[0], raw
        kinds, text = markdown_inline(md(raw, 200))
        assert kinds <= OWN_MARKDOWN - {"strong_open", "strong_close"}, raw
        assert text == raw


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
        # Nothing a tenant wrote reached the card's links.
        for action in card_of(message).get("actions", []):
            assert action["url"].startswith(PUBLIC_URL + "/api/")


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

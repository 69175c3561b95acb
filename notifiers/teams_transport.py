"""Alerts to a Microsoft Teams channel, through the Workflows webhook of ALERT_TEAMS_WEBHOOK_URL.

Each alert is one Adaptive Card (`notifiers.teams_card`) POSTed once (`notifiers.webhook_post`).
A Workflows webhook offers no way to ask whether it already took a message, and no
de-duplication: delivery is at-least-once, so a send that timed out after Teams took it posts the
card a second time when the alert worker retries (docs/alerts.md, docs/reliability.md). The
`recipients` of an email destination mean nothing here and are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence

from notifiers.alert_content import AlertContent
from notifiers.teams_card import render_teams_message, serialize
from notifiers.webhook_post import WebhookChannel

NAME = "teams"


class TeamsTransport(WebhookChannel):
    """Alerts to one Teams Workflows webhook, one Adaptive Card each."""

    channel = NAME

    def send(self, operation_id: str, recipients: Sequence[str], content: AlertContent) -> str | None:
        body = serialize(render_teams_message(content))
        self._poster.post(body, {"Content-Type": "application/json"})
        return NAME

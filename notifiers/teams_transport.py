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
from notifiers.alert_transport import Lookup
from notifiers.teams_card import render_teams_message, serialize
from notifiers.webhook_post import CONNECT_TIMEOUT, READ_TIMEOUT, Verify, WebhookPoster

NAME = "teams"


class TeamsTransport:
    """An `AlertTransport` (notifiers/alert_transport.py) to one Teams Workflows webhook."""

    confirms_operations = False
    # One card per alert: a channel reads one digest per post, and the card's size budget is
    # spent on one tenant's findings.
    max_alerts = 1

    def __init__(
        self,
        url: str,
        *,
        verify: Verify = True,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self._poster = WebhookPoster(
            NAME, url, verify=verify, connect_timeout=connect_timeout, read_timeout=read_timeout
        )

    @property
    def name(self) -> str:
        return NAME

    def __repr__(self) -> str:
        return "TeamsTransport()"

    def lookup(self, operation_id: str) -> Lookup:
        # Nothing to ask: Workflows keep no record a caller can query.
        return Lookup("unknown")

    def send(self, operation_id: str, recipients: Sequence[str], content: AlertContent) -> str | None:
        body = serialize(render_teams_message(content))
        self._poster.post(body, {"Content-Type": "application/json"})
        return NAME

    def close(self) -> None:
        self._poster.close()

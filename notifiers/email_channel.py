"""Alerts by email: what alerts say, rendered as one email and handed to an email transport.

Each part becomes its email (a digest, a reminder, the monitor's problems); several become one
message under a table of contents (`notifiers.grouped_email`), which is how alerts waiting for
the same recipients fit ACS's hourly quota after it throttled.
"""

from __future__ import annotations

from collections.abc import Sequence

from notifiers.alert_content import AlertContent, AlertPart
from notifiers.alert_transport import Lookup
from notifiers.digest_email import Digest, render_digest
from notifiers.email_transport import EmailTransport
from notifiers.email_view import RenderedEmail
from notifiers.grouped_email import combine
from notifiers.health_email import HealthAlert, render_health_alert
from notifiers.reminder_email import render_reminder

# A grouped email carries at most this many alerts; the rest go in the next one.
MAX_GROUP = 25


def render_part(part: AlertPart, public_url: str | None) -> RenderedEmail:
    if isinstance(part, Digest):
        return render_digest(part, public_url)
    if isinstance(part, HealthAlert):
        return render_health_alert(part, public_url)
    return render_reminder(part, public_url)


def render_alert_email(content: AlertContent) -> RenderedEmail:
    """The one email that carries `content` (a single part is its own email, unchanged)."""
    return combine([render_part(part, content.public_url) for part in content.parts], content.as_of)


class EmailChannel:
    """An `AlertTransport` (notifiers/alert_transport.py) over an email transport."""

    confirms_operations = True
    max_alerts = MAX_GROUP

    def __init__(self, transport: EmailTransport) -> None:
        self.transport = transport

    @property
    def name(self) -> str:
        return self.transport.name

    def lookup(self, operation_id: str) -> Lookup:
        return self.transport.lookup(operation_id)

    def send(self, operation_id: str, recipients: Sequence[str], content: AlertContent) -> str | None:
        return self.transport.send(operation_id, recipients, render_alert_email(content))

    def close(self) -> None:
        self.transport.close()

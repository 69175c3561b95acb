"""What one message tells, before any channel renders it.

The alert composer (partnerguard/alerts/compose.py) turns alert rows into an `AlertContent`: the
parts it carries, in order (the monitor's own problems first: they say the other news may be
incomplete). Each channel renders the same content its own way: an email
(notifiers/email_channel.py), a Teams Adaptive Card, a signed JSON webhook call. So every
channel says the same thing about the same alerts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from notifiers.digest_email import Digest
from notifiers.health_email import HealthAlert
from notifiers.reminder_email import Reminder

AlertPart = Digest | Reminder | HealthAlert


@dataclass(frozen=True)
class AlertContent:
    parts: tuple[AlertPart, ...]
    # When the message was composed (the grouped email's "as of").
    as_of: datetime
    # PARTNERGUARD_PUBLIC_URL: the base of links to the HTTP API and the dashboard, if known.
    public_url: str | None

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError("an alert message carries at least one part")
        if self.as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware")

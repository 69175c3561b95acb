"""Where a tenant's alerts go: its destinations, one alert row each (SPEC §5, issue 17).

A destination is an email recipient set, a Teams Workflows webhook or a signed JSON webhook.
A tenant's destinations are the defaults (`ALERT_RECIPIENTS`, `ALERT_TEAMS_WEBHOOK_URL`,
`ALERT_WEBHOOK_URL`) plus what `ALERT_RECIPIENTS_BY_TENANT` and `ALERT_ROUTES_BY_TENANT` add
for it: its extra addresses join the default recipient set (one email), its own Teams or
webhook URL is one more destination. The monitor's problems of no tenant (poison queues) go
to the defaults.

Every destination gets its own alert row under the same deterministic alert id, in its own
partition (an email recipient set; a channel and whose setting names it, never the URL:
`partnerguard.storage.alert_outbox.destination_key`), so each is delivered, retried,
throttled and failed on its own: a Teams outage never holds back the email, and an email sent
is never sent again because the webhook failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from partnerguard.settings import Settings
from partnerguard.storage.alert_outbox import CHANNEL_PREFIXES, destination_key, recipients_key

Channel = Literal["email", "teams", "webhook"]
DEFAULT_OWNER = "default"
# How people call them (the command line, the demo).
CHANNEL_NAMES: dict[Channel, str] = {"email": "email", "teams": "Teams", "webhook": "the webhook"}


@dataclass(frozen=True)
class Destination:
    channel: Channel
    # The email addresses of an email destination; empty for the other channels.
    recipients: tuple[str, ...] = ()
    # The URL of a Teams or webhook destination: a secret, never logged or stored.
    url: str | None = field(default=None, repr=False)
    # Whose setting names a Teams or webhook destination: `default`, or the tenant id of its
    # route. The partition follows it, not the URL, so a rotated URL delivers what was owed.
    owner: str = DEFAULT_OWNER

    @property
    def partition(self) -> str:
        if self.channel == "email":
            return recipients_key(self.recipients)
        return destination_key(self.channel, self.owner)

    @property
    def stored_recipients(self) -> tuple[str, ...]:
        """What the alert row records as its recipients: the addresses, or the channel's name."""
        return self.recipients if self.channel == "email" else (self.channel,)

    @property
    def label(self) -> str:
        """How logs and the command line name it (no address list, no URL)."""
        if self.channel == "email":
            return f"email to {len(self.recipients)} recipient(s)"
        return self.channel


def channel_of(partition: str) -> Channel:
    """The channel of an alert partition (its prefix)."""
    for channel in ("email", "teams", "webhook"):
        if partition.startswith(CHANNEL_PREFIXES[channel]):
            return channel
    raise ValueError(f"not an alert partition: {partition!r}")


def _channels(settings: Settings, tenant_id: str | None) -> list[Destination]:
    """The default Teams and webhook destinations, then the tenant's own (a tenant URL equal to
    a default one is the default destination: one card, not two)."""
    found: list[Destination] = []
    route = settings.alert_routes_by_tenant.get(tenant_id.lower()) if tenant_id else None
    pairs: tuple[tuple[Channel, str | None, str | None], ...] = (
        ("teams", settings.alert_teams_webhook_url, route.teams_url if route else None),
        ("webhook", settings.alert_webhook_url, route.webhook_url if route else None),
    )
    for channel, default_url, own_url in pairs:
        if default_url:
            found.append(Destination(channel, url=default_url))
        if own_url and own_url != default_url and tenant_id:
            found.append(Destination(channel, url=own_url, owner=tenant_id.lower()))
    return found


def destinations_for(settings: Settings, tenant_id: str | None) -> list[Destination]:
    """The destinations of `tenant_id`'s alerts (None: of the monitor's problems of no tenant)."""
    recipients = settings.recipients_for(tenant_id) if tenant_id else settings.alert_recipients
    found = [Destination("email", recipients=recipients)] if recipients else []
    return found + _channels(settings, tenant_id)


def destination_of(settings: Settings, partition: str) -> Destination | None:
    """The configured Teams or webhook destination whose partition this is; None when no
    setting names it any more (its channel was removed since the alert was owed)."""
    owners: list[str | None] = [None, *settings.alert_routes_by_tenant]
    for owner in owners:
        for destination in _channels(settings, owner):
            if destination.partition == partition:
                return destination
    return None

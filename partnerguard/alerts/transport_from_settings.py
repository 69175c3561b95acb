"""The email transport and the channels the settings ask for (SPEC §5).

`build_transport`: the email transport, or None when no email goes anywhere:

- `ACS_CONNECTION_STRING`: ACS with its access key (HMAC), for a partner without managed identity;
- `ACS_ENDPOINT`: ACS with the user-assigned managed identity (`PARTNERGUARD_IDENTITY_CLIENT_ID`),
  which needs the "Communication and Email Service Owner" role, or a custom role with
  `Microsoft.Communication/CommunicationServices/Read` and `/Write`, on the ACS resource;
- `EMAIL_OUTBOX_DIR`: `.eml` files, for local use and the demo.

Settings validation guarantees a transport whenever recipients are configured.

`build_channel`: the Teams Workflows webhook or the signed JSON webhook of one destination
(`partnerguard.alerts.routing`), from `ALERT_TEAMS_WEBHOOK_URL`, `ALERT_WEBHOOK_URL` and
`ALERT_WEBHOOK_SECRET` or a tenant's `ALERT_ROUTES_BY_TENANT`.

A CA bundle (`PARTNERGUARD_CA_BUNDLE`) is trusted for ACS and the webhooks too, like for every
other service.
"""

from __future__ import annotations

from typing import Any

from notifiers.acs import AcsTransport
from notifiers.alert_transport import AlertTransport
from notifiers.email_transport import EmailTransport
from notifiers.outbox import EmlOutbox
from partnerguard.alerts.routing import Destination
from partnerguard.credentials import combined_ca_file, service_identity
from partnerguard.settings import Settings

# The From address of `.eml` files when EMAIL_SENDER is not set (a reserved, unroutable domain).
OUTBOX_SENDER = "partnerguard@outbox.invalid"


def build_transport(settings: Settings) -> EmailTransport | None:
    options: dict[str, Any] = {}
    ca_file = combined_ca_file(settings.ca_bundle)
    if ca_file is not None:
        options["connection_verify"] = ca_file
    if settings.acs_connection_string:
        assert settings.email_sender is not None  # settings require it with ACS
        return AcsTransport.from_connection_string(settings.acs_connection_string, settings.email_sender, **options)
    if settings.acs_endpoint:
        assert settings.email_sender is not None and settings.identity_client_id is not None
        credential = service_identity(settings)
        return AcsTransport.from_endpoint(settings.acs_endpoint, credential, settings.email_sender, **options)
    if settings.email_outbox_dir is not None:
        return EmlOutbox(settings.email_outbox_dir, settings.email_sender or OUTBOX_SENDER)
    return None


def build_channel(settings: Settings, destination: Destination) -> AlertTransport:
    """The transport of a Teams or webhook destination (imported here: a deployment without
    these channels never loads them)."""
    from notifiers.teams_transport import TeamsTransport
    from notifiers.webhook_transport import WebhookTransport

    assert destination.url is not None, "email destinations use build_transport"
    verify = combined_ca_file(settings.ca_bundle)
    if destination.channel == "teams":
        return TeamsTransport(destination.url, verify=verify)
    assert settings.alert_webhook_secret is not None  # settings require it with any webhook
    return WebhookTransport(destination.url, settings.alert_webhook_secret, verify=verify)

"""The email transport the settings ask for (SPEC §5), or None when alerts go nowhere.

- `ACS_CONNECTION_STRING`: ACS with its access key (HMAC), for a partner without managed identity;
- `ACS_ENDPOINT`: ACS with the user-assigned managed identity (`PARTNERGUARD_IDENTITY_CLIENT_ID`),
  which needs the "Communication and Email Service Owner" role, or a custom role with
  `Microsoft.Communication/CommunicationServices/Read` and `/Write`, on the ACS resource;
- `EMAIL_OUTBOX_DIR`: `.eml` files, for local use and the demo.

Settings validation guarantees a transport whenever recipients are configured. A CA bundle
(`PARTNERGUARD_CA_BUNDLE`) is trusted for ACS too, like for every other service.
"""

from __future__ import annotations

from typing import Any

from notifiers.acs import AcsTransport
from notifiers.email_transport import EmailTransport
from notifiers.outbox import EmlOutbox
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

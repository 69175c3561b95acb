"""How an email leaves PartnerGuard: what an email transport (ACS, `.eml` files) offers.

An email transport sends a rendered message and can be asked whether it already knows an
operation: that lookup is what makes email exactly once (notifiers/alert_transport.py, whose
errors and `Lookup` every email transport uses). `notifiers.email_channel.EmailChannel`
renders what alerts say into the email and drives the transport.

After an ambiguous send (a timeout or reset after the request left, a 5xx), the service may
have accepted the message and its lookup may not know it yet (Azure/azure-sdk-for-python#35849),
so the delivery waits ALERT_SETTLE_SECONDS before it trusts a "never seen"
(partnerguard/alerts/delivery.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from notifiers.alert_transport import Lookup
from notifiers.email_view import RenderedEmail


class EmailTransport(Protocol):
    """Sends rendered alerts; `name` says where they go (for logs and the CLI)."""

    @property
    def name(self) -> str: ...

    def lookup(self, operation_id: str) -> Lookup:
        """What the service knows of `operation_id`. Raises the errors above."""
        ...

    def send(self, operation_id: str, recipients: Sequence[str], email: RenderedEmail) -> str | None:
        """Hand the message over under `operation_id`; return where it went (a path) or None.

        Returns once the service accepted it; raises the errors above otherwise."""
        ...

    def close(self) -> None: ...

"""Alerts to a PSA tool or an automation: the signed JSON document of ALERT_WEBHOOK_URL.

Each alert is one `partnerguard.alert-webhook/v1` document (`notifiers.webhook_payload`), signed
with ALERT_WEBHOOK_SECRET at the moment it is sent, and POSTed once (`notifiers.webhook_post`).
A generic receiver offers no lookup, so delivery is at-least-once: a send that timed out after
the receiver took it is sent again, with the same `Idempotency-Key` (the operation id, stable
across retries), which is how the receiver drops the repeat (docs/alerts.md). The `recipients` of
an email destination mean nothing here and are ignored.
"""

from __future__ import annotations

from collections.abc import Sequence

from notifiers.alert_content import AlertContent
from notifiers.webhook_payload import render_webhook_payload, serialize, signed_headers
from notifiers.webhook_post import CONNECT_TIMEOUT, READ_TIMEOUT, Verify, WebhookChannel
from partnerguard.clock import Clock, utc_now
from partnerguard.logs import register_secret

NAME = "webhook"


class WebhookTransport(WebhookChannel):
    """Alerts to one signed JSON webhook, one `partnerguard.alert-webhook/v1` document each."""

    channel = NAME

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        verify: Verify = True,
        clock: Clock = utc_now,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        if not secret:
            raise ValueError("the webhook needs its signing secret")
        register_secret(secret)
        self._secret = secret
        self._clock = clock
        super().__init__(url, verify=verify, connect_timeout=connect_timeout, read_timeout=read_timeout)

    def send(self, operation_id: str, recipients: Sequence[str], content: AlertContent) -> str | None:
        document = render_webhook_payload(operation_id, content)
        body = serialize(document)
        # Signed now, not when the alert was composed: the receiver's replay window starts here.
        timestamp = int(self._clock().timestamp())
        headers = signed_headers(self._secret, timestamp, body, operation_id=operation_id, kind=document["kind"])
        self._poster.post(body, headers)
        return NAME

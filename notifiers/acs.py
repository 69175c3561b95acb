"""Azure Communication Services Email as an `EmailTransport` (SPEC §5: ACS_ENDPOINT with the
managed identity, or ACS_CONNECTION_STRING; EMAIL_SENDER).

Built on the real `azure.communication.email.EmailClient`, with two deliberate departures from
its defaults:

- **a send is never retried by the SDK** (`retry_total=0` on `begin_send`): azure-core retries a
  POST that met a 500/503/504, and ACS, which does not de-duplicate on `Operation-Id`, would then
  send the email twice (tests/test_acs_fake.py shows it). The alert worker retries instead,
  after asking ACS whether it already has the operation;
- **no polling**: the worker marks an alert delivered when ACS accepts it (202). Waiting for the
  operation to finish would hold a Functions invocation for minutes and change nothing: an
  accepted message is ACS's to deliver, and a later `lookup` tells what became of it.

The lookup is `GET /emails/operations/{id}` through the client's `send_request` (the SDK has no
method for it). A 404 means ACS does not know the operation *now*: it has answered 404 for an
operation it had accepted and delivered (Azure/azure-sdk-for-python#35849), and Microsoft
documents no retention for operation status (REST "Email - Get Send Result"). So a 404 after an
ambiguous send is trusted only once ALERT_SETTLE_SECONDS have passed (partnerguard/alerts/
delivery.py). The lookup is bounded in time (LOOKUP_MAX_SECONDS): its own few retries, and a
Retry-After is never slept out inside it (azure-core would, for as long as the service says,
while the worker holds the email's lease) but handed to the worker as `SendThrottled`.

401 and 403 are `SendDenied`: ACS refused the caller, not the message (an HMAC date outside
the service's clock skew, a role assignment to the managed identity still propagating after a
deploy, which Azure documents can take up to 30 minutes): retried for a bounded time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from notifiers.alert_transport import (
    Lookup,
    OperationState,
    SendDenied,
    SendRejected,
    SendThrottled,
    SendUnavailable,
)
from notifiers.digest_email import RenderedEmail
from notifiers.retry_after import retry_after_seconds

if TYPE_CHECKING:
    from azure.communication.email import EmailClient
    from azure.core.credentials import TokenCredential

log = logging.getLogger(__name__)

# The api-version of every call: the SDK's default, named so the lookup uses the same one.
API_VERSION = "2025-09-01"
# Every request ends well inside the delivery lease (partnerguard/alerts/delivery.py: 5
# minutes, renewed just before the send), so a lease that runs out means its send is over.
CONNECTION_TIMEOUT = 10
READ_TIMEOUT = 60
# The lookup: a few attempts with short waits, none of them the service's Retry-After.
LOOKUP_READ_TIMEOUT = 20
LOOKUP_RETRIES = 2
LOOKUP_BACKOFF_SECONDS = 0.5
LOOKUP_MAX_SECONDS = (LOOKUP_RETRIES + 1) * (CONNECTION_TIMEOUT + LOOKUP_READ_TIMEOUT) + LOOKUP_BACKOFF_SECONDS * (
    2**LOOKUP_RETRIES - 1
)
# Statuses that mean the request may succeed later; any other 4xx is a refusal for good.
_TRANSIENT_STATUSES = frozenset({408, 500, 502, 503, 504})
# The service refused the caller, not the message: may pass once a clock or a role catches up.
_DENIED_STATUSES = frozenset({401, 403})
# ACS operation statuses (REST "Email - Get Send Result").
_DELIVERED: dict[str, OperationState] = {"Succeeded": "delivered", "Failed": "failed", "Canceled": "failed"}


def connection_string_endpoint(connection_string: str) -> str:
    """The `endpoint=` part of an ACS connection string, whatever the order of its parts."""
    parts = dict(part.partition("=")[::2] for part in connection_string.split(";") if "=" in part)
    lowered = {key.strip().lower(): value.strip() for key, value in parts.items()}
    return lowered.get("endpoint", "(endpoint not named)")


def connection_string_key(connection_string: str) -> str | None:
    """The access key of an ACS connection string (to register as a secret for the logs)."""
    parts = dict(part.partition("=")[::2] for part in connection_string.split(";") if "=" in part)
    lowered = {key.strip().lower(): value.strip() for key, value in parts.items()}
    return lowered.get("accesskey") or None


def email_document(sender: str, recipients: Sequence[str], email: RenderedEmail, operation_id: str) -> dict[str, Any]:
    """The ACS `EmailMessage` JSON (REST "Email - Send")."""
    return {
        "senderAddress": sender,
        "recipients": {"to": [{"address": address} for address in recipients]},
        "content": {"subject": email.subject, "plainText": email.text, "html": email.html},
        # Lets a reader (or a support case) tie the message to PartnerGuard's outbox record.
        "headers": {"X-PartnerGuard-Operation-Id": operation_id},
        # An alert about security posture is no marketing mail: no tracking pixels or links.
        "userEngagementTrackingDisabled": True,
    }


def _service_error(error: Exception, action: str) -> Exception:
    """Map an azure-core error to a transport error; the message names status and code only."""
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    if isinstance(error, HttpResponseError) and error.status_code is not None:
        status = error.status_code
        code = getattr(error.error, "code", None) if error.error is not None else None
        text = f"ACS answered {status}{f' {code}' if code else ''} to the {action}"
        if status == 429:
            response: Any = error.response
            headers = dict(response.headers) if response is not None else {}
            return SendThrottled(text, retry_after_seconds(headers))
        if status in _TRANSIENT_STATUSES:
            return SendUnavailable(text)
        if status in _DENIED_STATUSES:
            return SendDenied(text)
        return SendRejected(text)
    if isinstance(error, ServiceRequestError):
        # azure-core: "no request was sent" (connection refused, DNS, TLS handshake): ACS cannot
        # have accepted anything.
        return SendUnavailable(f"ACS could not be reached for the {action}: {type(error).__name__}", ambiguous=False)
    if isinstance(error, ServiceResponseError):
        # The request left; the answer did not come back (a timeout, a reset): maybe accepted.
        return SendUnavailable(f"ACS did not answer the {action}: {type(error).__name__}")
    return error


class AcsTransport:
    """Sends through one ACS resource from one sender address."""

    def __init__(
        self,
        client: EmailClient,
        sender: str,
        endpoint: str,
        *,
        read_timeout: float = READ_TIMEOUT,
        lookup_read_timeout: float = LOOKUP_READ_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.sender = sender
        self.endpoint = endpoint
        # Tests shorten these to meet a hanging service within seconds.
        self.read_timeout = read_timeout
        self.lookup_read_timeout = lookup_read_timeout
        self.sleep = sleep

    @classmethod
    def from_connection_string(
        cls, connection_string: str, sender: str, *, read_timeout: float = READ_TIMEOUT, **client_options: Any
    ) -> AcsTransport:
        from azure.communication.email import EmailClient

        client = EmailClient.from_connection_string(connection_string, api_version=API_VERSION, **client_options)
        # The endpoint only, for messages and records: the connection string holds the access
        # key, in any order of its parts (the SDK accepts `accesskey=…;endpoint=…` too).
        endpoint = connection_string_endpoint(connection_string)
        return cls(client, sender, endpoint, read_timeout=read_timeout, lookup_read_timeout=read_timeout)

    @classmethod
    def from_endpoint(
        cls, endpoint: str, credential: TokenCredential, sender: str, **client_options: Any
    ) -> AcsTransport:
        from azure.communication.email import EmailClient

        return cls(EmailClient(endpoint, credential, api_version=API_VERSION, **client_options), sender, endpoint)

    @property
    def name(self) -> str:
        return f"Azure Communication Services ({self.endpoint})"

    def lookup(self, operation_id: str) -> Lookup:
        from azure.core.exceptions import ServiceRequestError, ServiceResponseError
        from azure.core.rest import HttpRequest

        path = f"/emails/operations/{quote(operation_id, safe='')}?api-version={API_VERSION}"
        failure: SendUnavailable | None = None
        for attempt in range(LOOKUP_RETRIES + 1):
            if attempt:
                # Few, short retries of our own: the worker defers the alert itself rather than
                # hold its lease through minutes of azure-core back-off or a long Retry-After.
                self.sleep(LOOKUP_BACKOFF_SECONDS * 2 ** (attempt - 1))
            try:
                response = self.client.send_request(
                    HttpRequest("GET", path),
                    retry_total=0,
                    connection_timeout=CONNECTION_TIMEOUT,
                    read_timeout=self.lookup_read_timeout,
                )
            except (ServiceRequestError, ServiceResponseError) as error:
                failure = SendUnavailable(f"ACS could not be reached for the lookup: {type(error).__name__}")
                failure.__cause__ = error
                continue
            status = response.status_code
            if status in _TRANSIENT_STATUSES:
                failure = SendUnavailable(f"ACS answered {status} to the lookup")
                continue
            return self._lookup_answer(response)
        assert failure is not None
        raise failure

    def _lookup_answer(self, response: Any) -> Lookup:
        status = response.status_code
        if status == 404:
            return Lookup("unknown")
        if status == 429:
            raise SendThrottled("ACS answered 429 to the lookup", retry_after_seconds(dict(response.headers)))
        if status in _DENIED_STATUSES:
            raise SendDenied(f"ACS answered {status} to the lookup")
        if status != 200:
            raise SendRejected(f"ACS answered {status} to the lookup")
        try:
            body = response.json()
        except ValueError as error:
            raise SendUnavailable("ACS answered the lookup with a body that is not JSON") from error
        operation_status = body.get("status") if isinstance(body, dict) else None
        state: OperationState = _DELIVERED.get(str(operation_status), "accepted")
        detail = body.get("error") if isinstance(body, dict) else None
        message = None
        if state == "failed" and isinstance(detail, dict):
            message = f"{detail.get('code', 'Failed')}: {detail.get('message', '')}".strip()
        return Lookup(state, message)

    def send(self, operation_id: str, recipients: Sequence[str], email: RenderedEmail) -> str | None:
        document = email_document(self.sender, recipients, email, operation_id)
        try:
            # polling=False: accepted is enough (module docstring); retry_total=0: see above.
            self.client.begin_send(
                document,
                operation_id=operation_id,
                polling=False,
                retry_total=0,
                connection_timeout=CONNECTION_TIMEOUT,
                read_timeout=self.read_timeout,
            )
        except Exception as error:
            mapped = _service_error(error, "send")
            if mapped is error:
                raise
            raise mapped from error
        return None

    def close(self) -> None:
        self.client.close()

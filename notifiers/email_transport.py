"""How an alert leaves PartnerGuard: the contract every email transport keeps.

Alert delivery (partnerguard/alerts/delivery.py) is exactly once because it asks the transport
before any send whether it already knows the operation, and sends only when it does not
(SPEC §6: ACS documents no de-duplication on `Operation-Id`). A transport therefore offers two
calls and reports their failures as three kinds the worker treats differently:

- `SendThrottled`: the service is busy (ACS 429); nothing was accepted; retry after
  `retry_after` seconds (or a back-off of our own when the service gave none);
- `SendRejected`: the service refused the message for good (bad sender, bad recipient,
  forbidden): retrying cannot help, the alert is failed and its message poisoned;
- `SendDenied` (a kind of `SendRejected`): the service refused the caller, not the message (ACS
  401/403: a clock out of step with the service's, a role assignment still propagating after a
  deploy). Nothing was accepted; the alert is retried for a bounded time before it fails;
- `SendUnavailable`: anything else (5xx, connection reset, timeout): retry later. What matters is
  that nothing here retries a *send* by itself: a retried send after an accepted one is a
  duplicate email; only `lookup` may be retried freely. A failed send is *ambiguous* unless the
  transport knows the request never reached the service (the connection was refused, a local
  file could not be written): the service may have accepted it, and its lookup may not know it
  yet (Azure/azure-sdk-for-python#35849), so the delivery waits ALERT_SETTLE_SECONDS before it
  trusts a "never seen" (partnerguard/alerts/delivery.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from notifiers.digest_email import RenderedEmail

# What a transport knows of an operation: "unknown" means it was never accepted (send it);
# anything else means it was (never send it again). "failed" is the service accepting the
# message and then failing to deliver it (ACS operation status Failed/Canceled).
OperationState = Literal["unknown", "accepted", "delivered", "failed"]


@dataclass(frozen=True)
class Lookup:
    state: OperationState
    error: str | None = None


class TransportError(Exception):
    """A send or lookup that did not go through; the message never holds a secret."""


class SendThrottled(TransportError):
    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class SendRejected(TransportError):
    """Permanent: the same request would be refused again."""


class SendDenied(SendRejected):
    """The service refused the caller (401/403) before taking anything: permanent unless it is
    a clock or a role assignment that has not caught up yet, so retried for a bounded time."""


class SendUnavailable(TransportError):
    """Transient: the service or the network failed; a later attempt may succeed.

    `ambiguous`: for a send, whether the service may have accepted the message all the same (a
    timeout or reset after the request left, a 5xx); False only when it certainly did not."""

    def __init__(self, message: str, *, ambiguous: bool = True) -> None:
        super().__init__(message)
        self.ambiguous = ambiguous


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

"""How an alert leaves PartnerGuard: the contract every channel keeps (email, Teams, webhook).

Alert delivery (partnerguard/alerts/delivery.py) is exactly once where the channel can tell
whether it already took an operation, and at-least-once where it cannot:

- **email** (ACS, `.eml` files) offers a lookup by operation id (`confirms_operations`): the
  delivery asks before every send and sends only when the service never saw the operation
  (SPEC §6: ACS documents no de-duplication on `Operation-Id`);
- **Teams** (a Workflows webhook) and the **JSON webhook** offer no lookup: `lookup` answers
  "unknown" without asking anyone, so a send that timed out is sent again (a Teams card may
  repeat; the webhook carries an idempotency key, the operation id, so its receiver can drop
  the repeat). docs/reliability.md says so.

A transport reports failures as four kinds the worker treats differently:

- `SendThrottled`: the service is busy (429); nothing was accepted; retry after `retry_after`
  seconds (or a back-off of our own when the service gave none);
- `SendRejected`: the service refused the message for good (bad sender, bad recipient, a
  webhook URL that no longer exists): retrying cannot help, the alert is failed and its message
  poisoned;
- `SendDenied` (a kind of `SendRejected`): the service refused the caller, not the message
  (401/403: a clock out of step with the service's, a role assignment still propagating after a
  deploy). Nothing was accepted; the alert is retried for a bounded time before it fails;
- `SendUnavailable`: anything else (5xx, connection reset, timeout): retry later. Nothing here
  retries a *send* by itself: a retried send after an accepted one is a duplicate; only `lookup`
  may be retried freely. A failed send is *ambiguous* unless the transport knows the request
  never reached the service (the connection was refused, a local file could not be written).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from notifiers.alert_content import AlertContent

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


class AlertTransport(Protocol):
    """Delivers what some alerts say through one channel to one destination."""

    @property
    def name(self) -> str:
        """Where alerts go, for logs, the CLI and the stored email row: never a secret (a
        webhook URL is one), so channels say "teams" or "webhook", not the URL."""
        ...

    @property
    def confirms_operations(self) -> bool:
        """Whether `lookup` can tell that an earlier send was accepted. Without it, waiting for
        a lookup to catch up (ALERT_SETTLE_SECONDS) is pointless and is skipped."""
        ...

    @property
    def max_alerts(self) -> int:
        """How many alerts one message may carry (an email groups them after throttling; a card
        or a webhook call carries one, as its receiver expects one per digest)."""
        ...

    def lookup(self, operation_id: str) -> Lookup:
        """What the service knows of `operation_id`. Raises the errors above."""
        ...

    def send(self, operation_id: str, recipients: Sequence[str], content: AlertContent) -> str | None:
        """Render `content` for the channel and hand it over under `operation_id`; return where it
        went (a path, a redacted destination) or None. `recipients` are the email addresses of
        an email destination, empty for the other channels.

        Returns once the service accepted it; raises the errors above otherwise."""
        ...

    def close(self) -> None: ...

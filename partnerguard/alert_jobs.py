"""The alert worker: what one message of `partnerguard-alerts` does (the Functions blueprint in
partnerguard/functions/alert_worker.py only calls `process_alert_message`).

- malformed messages, unknown alerts and alerts refused for good are poisoned with their reason
  (`partnerguard-alerts-poison`) and complete: a retry cannot help;
- throttling (ACS 429), a lease held by another worker, a settle window after a send in doubt
  and short outages (ACS 5xx, timeouts, 401/403 for a while) re-queue the message with a delay
  — Retry-After, the rest of the lease or of the window, or exponential back-off, with jitter —
  and complete, so waiting never uses up the host's `maxDequeueCount`; after MAX_DEFERRALS
  (about two days) the alert is failed and poisoned;
- anything else (storage unreachable, a bug) raises for the host to retry; on the last attempt
  the failure is first recorded on the alert and its run, then the host poisons the message.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Literal

from partnerguard.alerts.delivery import (
    AlertBusy,
    AlertFailed,
    AlertSettling,
    AlertThrottled,
    AlertUnavailable,
    UnknownAlert,
    backoff_seconds,
)
from partnerguard.alerts.messages import GRACE, MAX_DEFERRALS, AlertMessage, parse_alert_message, send_alert_message
from partnerguard.logs import safe_error
from partnerguard.queues.documents import MalformedMessage
from partnerguard.queues.poison import poison
from partnerguard.text import safe_text

if TYPE_CHECKING:
    from partnerguard.services import Services

log = logging.getLogger(__name__)

# The longest a deferred message waits before it is tried again.
MAX_DELAY_SECONDS = 3600.0

AlertAction = Literal["sent", "already", "dropped", "deferred", "failed", "poisoned"]


@dataclass(frozen=True)
class AlertOutcome:
    """What the alert worker did with one message (for logs and tests)."""

    action: AlertAction
    operation_id: str | None = None
    delay_seconds: int | None = None


def _poison_alert(services: Services, body: bytes | str, reason: str, message_id: str | None, count: int) -> None:
    log.error("alert message %s poisoned: %s", safe_text(message_id or "?", 100), safe_error(reason, 500))
    poison(services.alert_poison_queue(), body, reason, services.clock(), message_id, count)


def _defer(services: Services, message: AlertMessage, delay: int) -> None:
    """The same alert again in `delay` seconds; the alert remembers it, so the timer's sweep
    does not queue a second message meanwhile."""
    send_alert_message(services.alert_queue(), AlertMessage(message.ref, message.deferrals + 1), delay)
    alert = services.alerts.get(message.ref.partition, message.ref.alert_id)
    if alert is not None:
        services.alerts.schedule(alert, services.clock() + timedelta(seconds=delay) + GRACE)


async def process_alert_message(
    services: Services, body: bytes | str, *, message_id: str | None = None, dequeue_count: int = 1
) -> AlertOutcome:
    """Deliver the alert one message names, exactly once (partnerguard/alerts/delivery.py)."""
    try:
        message = parse_alert_message(body)
    except MalformedMessage as malformed:
        await asyncio.to_thread(_poison_alert, services, body, malformed.reason, message_id, dequeue_count)
        return AlertOutcome("poisoned")
    delivery = services.delivery()
    if delivery is None:
        reason = "alerts go nowhere: no email transport, Teams or webhook channel is configured"
        await asyncio.to_thread(_poison_alert, services, body, reason, message_id, dequeue_count)
        return AlertOutcome("poisoned")
    ref = message.ref
    try:
        result = await asyncio.to_thread(delivery.deliver, ref)
        return AlertOutcome(result.action, result.operation_id)
    except UnknownAlert as unknown:
        await asyncio.to_thread(_poison_alert, services, body, str(unknown), message_id, dequeue_count)
        return AlertOutcome("poisoned")
    except AlertFailed as failed:
        reason = f"delivery failed for good: {failed}"
        await asyncio.to_thread(_poison_alert, services, body, reason, message_id, dequeue_count)
        return AlertOutcome("failed")
    except (AlertThrottled, AlertBusy, AlertSettling, AlertUnavailable) as waiting:
        if message.deferrals >= MAX_DEFERRALS:
            reason = f"still not delivered after {message.deferrals} deferrals: {waiting}"
            await asyncio.to_thread(delivery.give_up, ref, reason)
            await asyncio.to_thread(_poison_alert, services, body, reason, message_id, dequeue_count)
            return AlertOutcome("failed")
        retry_after = waiting.retry_after if isinstance(waiting, AlertThrottled | AlertBusy | AlertSettling) else None
        delay = int(backoff_seconds(message.deferrals + 1, retry_after, MAX_DELAY_SECONDS, random.random))
        await asyncio.to_thread(_defer, services, message, delay)
        log.warning("alert %s: %s; queued again in %d s", ref.alert_id, safe_error(waiting, 300), delay)
        return AlertOutcome("deferred", delay_seconds=delay)
    except Exception as error:
        if dequeue_count >= services.host.max_dequeue_count:
            reason = f"gave up after {dequeue_count} attempts: {type(error).__name__}: {safe_error(error, 300)}"
            log.error("alert %s: %s", ref.alert_id, reason)
            try:
                await asyncio.to_thread(delivery.give_up, ref, reason)
            except Exception:
                # Storage is what fails, most likely: the alert stays pending, and the timer's
                # sweep queues it again once storage answers.
                log.exception("alert %s: could not record the failure", ref.alert_id)
        else:
            log.warning(
                "alert %s: attempt %d of %d failed (%s); the host retries it",
                ref.alert_id,
                dequeue_count,
                services.host.max_dequeue_count,
                type(error).__name__,
            )
        raise

"""Exactly-once delivery of alerts (issue 5 §4; SPEC §6).

ACS does not de-duplicate on `Operation-Id`, and a queue message may be delivered twice, so
delivery is a sequence of steps, each recorded before the next, where a crash between any two
of them leads to one email:

1. the alert row exists (written by the policy before its message was queued);
2. an **email record** is written with a deterministic operation id (a UUIDv5 of the alert ids
   it carries), and the alerts are **claimed** into it (ETag-conditioned: one email per alert);
3. the transport is asked whether it knows the operation (ACS: `GET /emails/operations/{id}`;
   the outbox: whether the `.eml` exists). Only when it does not is the email rendered and
   sent; the send itself is never retried inside the SDK (notifiers/acs.py);
4. once the service accepted it, the email record, then the alerts, then the runs' `alert`
   status are marked `sent`, and the findings told about get `last_notified`.

A retry after a crash finds the alert claimed, resumes its email record, and step 3 tells
whether the earlier attempt's send went through. Failures:

- **429** (`AlertThrottled`): nothing was accepted (the lookup just said so), so the email record
  is dropped and its alerts released, flagged `throttled`: the next try sends every alert
  pending for the same recipients as one email, which is how hundreds of tenants fit ACS's
  per-hour quota. The worker re-queues with the service's `Retry-After` (or a back-off of its
  own, with jitter);
- **permanent** (`AlertFailed`: a refused sender or recipient, a message ACS accepted and then
  failed): recorded on the alerts, the email and the runs (`alert.status = failed`, with the
  error, visible in the HTTP API); the worker poisons the message;
- **transient** (`AlertUnavailable`): the claims stay; the host retries, and on the last attempt
  `give_up` records the failure as above.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from notifiers.transport import EmailTransport, SendRejected, SendThrottled, SendUnavailable
from partnerguard.alerts.compose import compose
from partnerguard.alerts.policy import AlertRef
from partnerguard.settings import Settings
from partnerguard.storage.alerts import (
    ALERT_DROPPED,
    ALERT_FAILED,
    ALERT_PENDING,
    ALERT_SENT,
    DONE_STATES,
    AlertRecord,
    AlertStore,
    EmailRecord,
)
from partnerguard.storage.store import ScanStore
from partnerguard.text import safe_text

log = logging.getLogger(__name__)

# A grouped email carries at most this many alerts; the rest go in the next one.
MAX_GROUP = 25
# Fixed, so operation ids are the same in every process and every retry (UUIDv5 of alert ids).
OPERATION_NAMESPACE = uuid.UUID("5b7d8a0e-2f4c-4f5e-9a51-7c1e0b9d3a42")


class DeliveryError(Exception):
    pass


class UnknownAlert(DeliveryError):
    """The message names no stored alert: nothing can ever deliver it."""


class AlertThrottled(DeliveryError):
    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AlertFailed(DeliveryError):
    """Failed for good; recorded on the alerts and their runs."""


class AlertUnavailable(DeliveryError):
    """The transport or storage failed for now; the claims stay, a retry resumes."""


@dataclass(frozen=True)
class Delivery:
    """What one `deliver` did."""

    action: str  # "sent" | "already" | "dropped"
    operation_id: str | None = None
    alert_ids: tuple[str, ...] = ()
    target: str | None = None
    tenants: tuple[str, ...] = field(default=())


def operation_id_for(alert_ids: Sequence[str]) -> str:
    return str(uuid.uuid5(OPERATION_NAMESPACE, "\n".join(sorted(alert_ids))))


class AlertDelivery:
    def __init__(
        self,
        settings: Settings,
        store: ScanStore,
        alerts: AlertStore,
        transport: EmailTransport,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.store = store
        self.alerts = alerts
        self.transport = transport
        self.clock = clock

    # -- the steps ----------------------------------------------------------------------------

    def deliver(self, ref: AlertRef) -> Delivery:
        """Deliver the alert `ref` (and whatever shares its email) once; see the module docstring."""
        alert = self.alerts.get(ref.partition, ref.alert_id)
        if alert is None:
            raise UnknownAlert(f"no alert {ref.alert_id} in {ref.partition}")
        if alert.state in DONE_STATES:
            return Delivery("already", alert.email, (alert.alert_id,))
        email = self._email_of(alert)
        return self._send(email)

    def _email_of(self, alert: AlertRecord) -> EmailRecord:
        """The email that carries `alert`: the one it was claimed into, or a new one."""
        now = self.clock()
        for _ in range(5):
            if alert.email:
                existing = self.alerts.get_email(alert.partition, alert.email)
                if existing is not None:
                    return existing
                # Claimed into an email whose record is gone (dropped after a 429 while this
                # worker read the alert): re-create it under the same id, looked up before any send.
                return self.alerts.open_email(alert.partition, alert.email, [alert.alert_id], now)
            group = [alert]
            if alert.throttled:
                others = self.alerts.pending_unclaimed(alert.partition, MAX_GROUP)
                group += [other for other in others if other.alert_id != alert.alert_id][: MAX_GROUP - 1]
            operation_id = operation_id_for([a.alert_id for a in group])
            email = self.alerts.open_email(alert.partition, operation_id, [a.alert_id for a in group], now)
            claimed = [a.alert_id for a in group if self.alerts.claim(a, operation_id)]
            if alert.alert_id in claimed:
                if tuple(claimed) != email.alert_ids:
                    self.alerts.set_email_alerts(alert.partition, operation_id, claimed)
                    email = EmailRecord(alert.partition, operation_id, tuple(claimed), email.state, email.created)
                return email
            # Another worker changed the alert meanwhile: release what we took and look again.
            if claimed:
                self.alerts.release_claims(alert.partition, claimed)
            self.alerts.drop_email(alert.partition, operation_id)
            reread = self.alerts.get(alert.partition, alert.alert_id)
            if reread is None:
                raise UnknownAlert(f"alert {alert.alert_id} vanished")
            alert = reread
        raise AlertUnavailable(f"could not claim alert {alert.alert_id}: it kept changing")

    def _members(self, email: EmailRecord) -> list[AlertRecord]:
        """The alerts this email carries, as stored now: only those claimed into it."""
        members = []
        for alert_id in email.alert_ids:
            alert = self.alerts.get(email.partition, alert_id)
            if alert is not None and alert.email == email.operation_id:
                members.append(alert)
        return members

    def _send(self, email: EmailRecord) -> Delivery:
        members = self._members(email)
        if email.state in DONE_STATES:
            # An earlier attempt finished the email and stopped before marking everything.
            self._settle(email, members, email.state, email.target, email.error, {})
            return Delivery("already", email.operation_id, tuple(a.alert_id for a in members), email.target)
        if not members:
            self.alerts.finish_email(email.partition, email.operation_id, ALERT_DROPPED, self.clock())
            return Delivery("dropped", email.operation_id)
        operation_id = email.operation_id
        try:
            known = self.transport.lookup(operation_id)
        except SendThrottled as throttled:
            # The earlier attempt's fate is unknown: keep the claims, try again later.
            raise AlertThrottled(str(throttled), throttled.retry_after) from throttled
        except SendUnavailable as unavailable:
            raise AlertUnavailable(str(unavailable)) from unavailable
        except SendRejected as rejected:
            self._settle(email, members, ALERT_FAILED, None, str(rejected), {})
            raise AlertFailed(str(rejected)) from rejected

        now = self.clock()
        composed = compose(self.settings, self.store, members, now)
        if known.state == "failed":
            reason = f"the email service accepted the message and then failed it: {known.error or 'no reason given'}"
            self._settle(email, members, ALERT_FAILED, self.transport.name, reason, {})
            raise AlertFailed(reason)
        target: str | None = self.transport.name
        if known.state == "unknown":
            if composed.dropped:
                dropped = [a for a in members if a.alert_id in composed.dropped]
                self._mark(email.partition, dropped, ALERT_DROPPED, None)
                members = [a for a in members if a.alert_id not in composed.dropped]
            if composed.email is None:
                self._settle(email, members, ALERT_DROPPED, None, None, {})
                return Delivery("dropped", operation_id, tuple(a.alert_id for a in members))
            recipients = members[0].recipients
            try:
                sent_to = self.transport.send(operation_id, recipients, composed.email)
            except SendThrottled as throttled:
                # 429 on the send: ACS took nothing. Regroup on the next try.
                self.alerts.release(email.partition, [a.alert_id for a in members], str(throttled))
                self.alerts.drop_email(email.partition, operation_id)
                raise AlertThrottled(str(throttled), throttled.retry_after) from throttled
            except SendUnavailable as unavailable:
                raise AlertUnavailable(str(unavailable)) from unavailable
            except SendRejected as rejected:
                self._settle(email, members, ALERT_FAILED, None, str(rejected), {})
                raise AlertFailed(str(rejected)) from rejected
            target = sent_to or target
            log.info(
                "alert email %s sent to %d recipient(s) via %s", operation_id, len(recipients), self.transport.name
            )
        else:
            log.info("alert email %s was already accepted by an earlier attempt; not sent again", operation_id)
        self._settle(email, members, ALERT_SENT, target, None, composed.notified)
        return Delivery(
            "sent",
            operation_id,
            tuple(a.alert_id for a in members),
            target,
            tuple(sorted({a.tenant_id for a in members if a.tenant_id})),
        )

    def _settle(
        self,
        email: EmailRecord,
        members: Sequence[AlertRecord],
        state: str,
        target: str | None,
        error: str | None,
        notified: dict[str, list[tuple[str, str]]],
    ) -> None:
        """Record the outcome: the email first, then its alerts, then their runs and findings."""
        now = self.clock()
        if email.state not in DONE_STATES:
            self.alerts.finish_email(email.partition, email.operation_id, state, now, target, error)
        self._mark(email.partition, members, state, error)
        for tenant_id, keys in notified.items():
            if keys:
                self.store.mark_notified(tenant_id, keys, now)

    def _mark(self, partition: str, members: Sequence[AlertRecord], state: str, error: str | None) -> None:
        """The alerts' state, and the `alert` status of the runs they are about (SPEC §4)."""
        self.alerts.set_state(partition, [a.alert_id for a in members if a.state == ALERT_PENDING], state, error)
        run_status = {ALERT_SENT: "sent", ALERT_FAILED: "failed", ALERT_DROPPED: "none"}[state]
        for alert in members:
            if alert.kind == "run" and alert.tenant_id and alert.run_id:
                self.store.set_alert_status(alert.tenant_id, alert.run_id, run_status, error)

    def give_up(self, ref: AlertRef, reason: str) -> None:
        """The last attempt failed: record the failure on the alert (and its email and runs)."""
        alert = self.alerts.get(ref.partition, ref.alert_id)
        if alert is None or alert.state in DONE_STATES:
            return
        reason = safe_text(reason, 500)
        email = self.alerts.get_email(alert.partition, alert.email) if alert.email else None
        if email is None:
            self._mark(alert.partition, [alert], ALERT_FAILED, reason)
        else:
            self._settle(email, self._members(email), ALERT_FAILED, None, reason, {})


# The command line waits for throttling and outages this long at most per alert, then records
# the failure (exit code 3): a person is watching, and the Functions app is the one that waits.
CLI_ATTEMPTS = 4
CLI_MAX_WAIT_SECONDS = 60.0


def backoff_seconds(attempt: int, retry_after: float | None, cap: float, jitter: Callable[[], float]) -> float:
    """The service's Retry-After when it gave one, else exponential back-off with full jitter."""
    if retry_after is not None:
        return min(max(retry_after, 1.0), cap)
    return min(cap, 2.0 ** min(attempt, 16) * (0.5 + jitter()))


def deliver_now(
    delivery: AlertDelivery,
    ref: AlertRef,
    sleep: Callable[[float], None],
    jitter: Callable[[], float],
    attempts: int = CLI_ATTEMPTS,
) -> Delivery | AlertFailed:
    """Deliver synchronously (the command line), retrying throttling and outages a few times.

    Returns the delivery, or the failure (already recorded) when it failed for good."""
    for attempt in range(1, attempts + 1):
        try:
            return delivery.deliver(ref)
        except AlertFailed as failed:
            return failed
        except (AlertThrottled, AlertUnavailable) as error:
            if attempt == attempts:
                reason = f"gave up after {attempts} attempts: {error}"
                delivery.give_up(ref, reason)
                return AlertFailed(reason)
            retry_after = error.retry_after if isinstance(error, AlertThrottled) else None
            wait = backoff_seconds(attempt, retry_after, CLI_MAX_WAIT_SECONDS, jitter)
            log.warning("alert %s: %s; trying again in %.0f s", ref.alert_id, error, wait)
            sleep(wait)
    raise AssertionError("unreachable: the loop returns on its last attempt")

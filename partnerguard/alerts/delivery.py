"""Exactly-once delivery of alerts (issue 5 §4; SPEC §6).

ACS does not de-duplicate on `Operation-Id`, a queue message may be delivered twice, and two
workers may hold messages for one alert at the same time. Delivery is a sequence of steps, each
recorded before the next, so that a crash between any two of them, or two workers racing, still
sends one email (the rows are described in `partnerguard/storage/alert_outbox.py`):

1. the **alert** row exists (written by the policy before its message was queued);
2. the alert is **claimed** into an email: an ETag-conditioned update of the alert sets its
   `email` to a deterministic operation id (a UUIDv5 of the alert ids it goes out with and
   their generation), and the **email** row is created. One alert is in one email at a time;
3. one worker takes the email's **lease** (an ETag-conditioned update to `sending`, for
   `LEASE`); any other worker finds it leased and comes back later (`AlertBusy`). The send's
   own timeouts are well inside the lease, so a lease that runs out means the send is over;
4. under the lease, the transport is asked whether it knows the operation (ACS:
   `GET /emails/operations/{id}`; the outbox: whether the `.eml` exists). Only when it does not
   is the email composed, the alerts it carries written to the email row, and the email sent —
   never retried inside the SDK (notifiers/acs.py);
5. once the service accepted it, the email row, then the alerts, then the runs' `alert` status
   and the findings' `last_notified` are marked.

A retry after a crash finds the alert claimed, takes the lease once it is free, and step 4
tells whether the earlier send went through; if it did, the alerts it carried are the ones the
email row lists. Failures:

- **429** on the send (`AlertThrottled`): ACS took nothing (the lookup just said so). The email
  becomes `throttled` (its id is never used again) and its alerts are released into a new
  generation, flagged `throttled`: the next try carries every alert pending for the same
  recipients in one email, which is how hundreds of tenants fit ACS's hourly quota. The worker
  re-queues with the service's `Retry-After` (or a back-off of its own), with jitter;
- **refused for good** (`AlertFailed`: a refused sender or recipient, a message ACS accepted and
  then failed): recorded on the email, the alerts and the runs (`alert.status = failed` with the
  error, in the HTTP API); the worker poisons the message;
- **unavailable for now** (`AlertUnavailable`: 5xx, timeouts, a lookup that failed): the lease
  is given back and the claims stay; the worker re-queues with back-off.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from notifiers.email_transport import EmailTransport, SendRejected, SendThrottled, SendUnavailable
from partnerguard.alerts.compose import compose
from partnerguard.alerts.policy import AlertRef
from partnerguard.settings import Settings
from partnerguard.storage.alert_outbox import (
    ALERT_DROPPED,
    ALERT_FAILED,
    ALERT_PENDING,
    ALERT_SENT,
    DONE_STATES,
    EMAIL_THROTTLED,
    AlertRecord,
    AlertStore,
    EmailRecord,
)
from partnerguard.storage.store import ScanStore
from partnerguard.text import safe_text

log = logging.getLogger(__name__)

# A grouped email carries at most this many alerts; the rest go in the next one.
MAX_GROUP = 25
# How long one worker may hold an email for its lookup and send. The ACS send's own timeouts
# (notifiers/acs.py) are far shorter, so when a lease runs out its send is over.
LEASE = timedelta(minutes=5)
# How long after a send the service's verdict is still looked for (ACS keeps operations for
# at least a day; delivery takes minutes).
VERIFY_WINDOW = timedelta(hours=24)
# Fixed, so operation ids are the same in every process and every retry (UUIDv5 of alert ids).
OPERATION_NAMESPACE = uuid.UUID("5b7d8a0e-2f4c-4f5e-9a51-7c1e0b9d3a42")
# How often `deliver` starts over when other workers keep changing the rows it reads.
_MAX_ROUNDS = 6


class DeliveryError(Exception):
    pass


class UnknownAlert(DeliveryError):
    """The message names no stored alert: nothing can ever deliver it."""


class AlertThrottled(DeliveryError):
    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AlertBusy(DeliveryError):
    """Another worker holds the email's lease: come back when it runs out."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AlertFailed(DeliveryError):
    """Failed for good; recorded on the alerts and their runs."""


class AlertUnavailable(DeliveryError):
    """The transport failed for now; the claims stay, a retry resumes."""


DeliveryAction = Literal["sent", "already", "dropped"]


@dataclass(frozen=True)
class Delivery:
    """What one `deliver` did."""

    action: DeliveryAction
    operation_id: str | None = None
    alert_ids: tuple[str, ...] = ()
    target: str | None = None


def operation_id_for(alerts: Sequence[AlertRecord]) -> str:
    """The email's id: the same for the same alerts in the same generation, in any order."""
    generation = max(alert.generation for alert in alerts)
    key = "\n".join(sorted(alert.alert_id for alert in alerts)) + f"\n#{generation}"
    return str(uuid.uuid5(OPERATION_NAMESPACE, key))


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

    def deliver(self, ref: AlertRef) -> Delivery:
        """Deliver the alert `ref` (and whatever shares its email) once; see the module docstring."""
        for _ in range(_MAX_ROUNDS):
            alert = self.alerts.get(ref.partition, ref.alert_id)
            if alert is None:
                raise UnknownAlert(f"no alert {ref.alert_id} in {ref.partition}")
            if alert.state in DONE_STATES:
                return Delivery("already", alert.email, (alert.alert_id,))
            if not alert.email:
                self._claim_group(alert)
                continue  # read the alert again: claimed by us, or by another worker
            email = self.alerts.open_email(alert.partition, alert.email, self.clock())
            if email.state in DONE_STATES:
                if alert.alert_id in email.alert_ids:
                    # The email went out (or failed) and a crash came before this alert was marked.
                    self._mark([alert], email.state, email.error)
                    return Delivery("already", email.operation_id, (alert.alert_id,), email.target)
                # Claimed into an email that finished without it (it was composed before the
                # claim landed): owed again, in a new email.
                self.alerts.release([alert], email.operation_id, throttled=False)
                continue
            if email.state == EMAIL_THROTTLED:
                # ACS refused that email and a crash came before this alert was released.
                self.alerts.release([alert], email.operation_id, throttled=True)
                continue
            now = self.clock()
            leased = self.alerts.lease(email, now, LEASE)
            if leased is None:
                fresh = self.alerts.get_email(email.partition, email.operation_id)
                if fresh is not None and fresh.lease_live(now) and fresh.lease_until is not None:
                    wait = max((fresh.lease_until - now).total_seconds(), 1.0)
                    raise AlertBusy(f"email {email.operation_id} is being sent by another worker", wait)
                continue  # it changed between our reads: look again
            try:
                return self._send(leased)
            except DeliveryError:
                raise
            except Exception:
                # A bug or a storage failure mid-way: free the email for the next try now rather
                # than when the lease runs out. Safe: every try looks the operation up first.
                current = self.alerts.get_email(leased.partition, leased.operation_id)
                if current is not None and current.state not in DONE_STATES:
                    self.alerts.unlease(current)
                raise
        raise AlertUnavailable(f"alert {ref.alert_id} kept changing under other workers; trying later")

    def _claim_group(self, alert: AlertRecord) -> None:
        """Claim `alert` (and, after throttling, the other pending alerts of its recipients)."""
        group = [alert]
        if alert.throttled:
            others = self.alerts.pending_unclaimed(alert.partition, MAX_GROUP)
            group += [other for other in others if other.alert_id != alert.alert_id][: MAX_GROUP - 1]
        operation_id = operation_id_for(group)
        for member in group:
            self.alerts.claim(member, operation_id)

    def _send(self, email: EmailRecord) -> Delivery:
        """Under the lease: look the operation up, and send it only when the service never saw it."""
        try:
            known = self.transport.lookup(email.operation_id)
        except SendThrottled as throttled:
            self.alerts.unlease(email)
            raise AlertThrottled(str(throttled), throttled.retry_after) from throttled
        except SendUnavailable as unavailable:
            self.alerts.unlease(email)
            raise AlertUnavailable(str(unavailable)) from unavailable
        except SendRejected as rejected:
            raise self._refused(email, self._claimed(email), str(rejected)) from rejected

        if known.state in ("accepted", "delivered"):
            # An earlier attempt's send went through; what it carried is on the email row.
            carried = [a for a in self._claimed(email) if a.alert_id in email.alert_ids]
            log.info("alert email %s was accepted by an earlier attempt; not sent again", email.operation_id)
            self._settle(email, carried, ALERT_SENT, email.target or self.transport.name, None)
            return Delivery("sent", email.operation_id, tuple(a.alert_id for a in carried), email.target)
        if known.state == "failed":
            carried = [a for a in self._claimed(email) if a.alert_id in email.alert_ids]
            reason = f"the email service accepted the message and then failed it: {known.error or 'no reason given'}"
            raise self._refused(email, carried, reason)

        members = self._claimed(email)
        composed = compose(self.settings, self.store, members, self.clock())
        dropped = [a for a in members if a.alert_id in composed.dropped]
        carried = [a for a in members if a.alert_id in composed.included]
        if dropped:
            self._mark(dropped, ALERT_DROPPED, None)
        if composed.email is None or not carried:
            self.alerts.finish_email(email, ALERT_DROPPED, self.clock())
            return Delivery("dropped", email.operation_id, tuple(a.alert_id for a in dropped))
        recorded = self.alerts.record_contents(email, [a.alert_id for a in carried])
        if recorded is None:
            raise AlertBusy(f"lost the lease of email {email.operation_id}", LEASE.total_seconds())
        recipients = carried[0].recipients
        try:
            sent_to = self.transport.send(email.operation_id, recipients, composed.email)
        except SendThrottled as throttled:
            # 429 on the send: ACS took nothing. That email is never used again; its alerts are
            # owed again, together with whatever else waits for the same recipients.
            self.alerts.finish_email(recorded, EMAIL_THROTTLED, self.clock(), error=str(throttled))
            self.alerts.release(carried, email.operation_id, throttled=True, error=str(throttled))
            raise AlertThrottled(str(throttled), throttled.retry_after) from throttled
        except SendUnavailable as unavailable:
            self.alerts.unlease(recorded)
            raise AlertUnavailable(str(unavailable)) from unavailable
        except SendRejected as rejected:
            raise self._refused(recorded, carried, str(rejected)) from rejected
        target = sent_to or self.transport.name
        log.info(
            "alert email %s sent to %d recipient(s) via %s", email.operation_id, len(recipients), self.transport.name
        )
        self._settle(recorded, carried, ALERT_SENT, target, None)
        for tenant_id, keys in composed.notified.items():
            if keys:
                self.store.mark_notified(tenant_id, keys, self.clock())
        return Delivery("sent", email.operation_id, tuple(a.alert_id for a in carried), target)

    def _claimed(self, email: EmailRecord) -> list[AlertRecord]:
        return self.alerts.claimed_by(email.partition, email.operation_id)

    def _refused(self, email: EmailRecord, alerts: Sequence[AlertRecord], reason: str) -> AlertFailed:
        """Record a refusal for good and return the error to raise."""
        self._settle(email, alerts, ALERT_FAILED, None, reason)
        return AlertFailed(reason)

    def _settle(
        self, email: EmailRecord, alerts: Sequence[AlertRecord], state: str, target: str | None, error: str | None
    ) -> None:
        """Record the outcome: the email first, then its alerts and their runs."""
        self.alerts.finish_email(email, state, self.clock(), target, error)
        self._mark(alerts, state, error)

    def _mark(self, alerts: Sequence[AlertRecord], state: str, error: str | None) -> None:
        """The alerts' state, and the `alert` status of the runs they are about (SPEC §4)."""
        pending = [a for a in alerts if a.state == ALERT_PENDING]
        self.alerts.set_state(pending, state, error)
        run_status = {ALERT_SENT: "sent", ALERT_FAILED: "failed", ALERT_DROPPED: "none"}[state]
        for alert in pending:
            if alert.kind == "run" and alert.tenant_id and alert.run_id:
                self.store.set_alert_status(alert.tenant_id, alert.run_id, run_status, error)

    def verify_sent(self, now: datetime, window: timedelta = VERIFY_WINDOW) -> int:
        """Look again at emails the service accepted in the last `window`: one it failed to
        deliver after all (ACS: operation `Failed`, e.g. `EmailDropped`) has its alerts and runs
        marked `failed`, so the HTTP API shows it; one delivered is not looked at again. Returns
        how many failed. Lookups that fail now are tried again at the next call."""
        failed = 0
        for email in self.alerts.unverified(now - window):
            try:
                known = self.transport.lookup(email.operation_id)
            except (SendThrottled, SendUnavailable, SendRejected) as error:
                log.warning("could not check alert email %s: %s", email.operation_id, safe_text(error, 200))
                continue
            if known.state == "delivered":
                self.alerts.confirm(email, ALERT_SENT)
            elif known.state == "failed":
                reason = f"accepted, then not delivered by the email service: {known.error or 'no reason given'}"
                log.error("alert email %s: %s", email.operation_id, safe_text(reason, 300))
                self.alerts.confirm(email, ALERT_FAILED, reason)
                carried = self.alerts.of_email(email)
                self.alerts.set_state(carried, ALERT_FAILED, reason)
                for alert in carried:
                    if alert.kind == "run" and alert.tenant_id and alert.run_id:
                        self.store.set_alert_status(alert.tenant_id, alert.run_id, "failed", reason)
                failed += 1
        return failed

    def give_up(self, ref: AlertRef, reason: str) -> None:
        """The alert could not be delivered within its retries: record the failure on it and its
        run. Its email, if any, is left as it is: whether an interrupted send went through is
        unknown, and the record must not claim otherwise."""
        alert = self.alerts.get(ref.partition, ref.alert_id)
        if alert is None or alert.state in DONE_STATES:
            return
        self._mark([alert], ALERT_FAILED, safe_text(reason, 500))


# The command line waits for throttling and outages this long at most per alert: a person is
# watching. What is still owed then stays owed (the next scan, or the Functions app, sends it).
CLI_ATTEMPTS = 4
CLI_MAX_WAIT_SECONDS = 60.0


def backoff_seconds(attempt: int, retry_after: float | None, cap: float, jitter: Callable[[], float]) -> float:
    """The service's Retry-After when it gave one, else exponential back-off; always with up to
    20 % jitter added, so messages deferred together do not all come back at the same moment."""
    base = max(retry_after, 1.0) if retry_after is not None else 2.0 ** min(attempt, 16)
    return min(cap, base * (1.0 + 0.2 * jitter()))


@dataclass(frozen=True)
class Deferred:
    """Still owed after the command line's attempts (throttled or unavailable), not failed."""

    reason: str


def deliver_now(
    delivery: AlertDelivery,
    ref: AlertRef,
    sleep: Callable[[float], None],
    jitter: Callable[[], float],
    attempts: int = CLI_ATTEMPTS,
) -> Delivery | AlertFailed | Deferred:
    """Deliver synchronously (the command line), waiting out throttling and outages a few times.

    Returns the delivery; the failure (already recorded) when it failed for good; or `Deferred`
    when it is still owed after the attempts."""
    for attempt in range(1, attempts + 1):
        try:
            return delivery.deliver(ref)
        except AlertFailed as failed:
            return failed
        except (AlertThrottled, AlertBusy, AlertUnavailable) as error:
            if attempt == attempts:
                return Deferred(str(error))
            retry_after = error.retry_after if isinstance(error, AlertThrottled | AlertBusy) else None
            wait = backoff_seconds(attempt, retry_after, CLI_MAX_WAIT_SECONDS, jitter)
            log.warning("alert %s: %s; trying again in %.0f s", ref.alert_id, error, wait)
            sleep(wait)
    raise AssertionError("unreachable: the loop returns on its last attempt")

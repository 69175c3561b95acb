"""Exactly-once delivery of alerts by email, at-least-once to Teams and webhooks (issues 5, 15, 17).

Every alert row lives in its destination's partition (partnerguard/alerts/routing.py): an email
recipient set, a Teams Workflows webhook or a signed JSON webhook; the partition names the
channel that delivers it (`transport_for`). The steps below are the same for every channel.
What differs is the lookup: email can be asked whether it already took an operation; Teams and
webhooks cannot (`AlertTransport.confirms_operations`), so after a send in doubt (a timeout, a
5xx) they are sent again at once, without a settle window that no lookup could end. That is
at-least-once: a Teams card may repeat; a webhook repeat carries the same idempotency key (the
operation id) for its receiver to drop. A 429, an outage or a refusal is handled as for ACS.

ACS does not de-duplicate on `Operation-Id`, a queue message may be delivered twice, and two
workers may hold messages for one alert at the same time. Delivery is a sequence of steps, each
recorded before the next, so that a crash between any two of them, or two workers racing, still
sends one email (the rows are described in `partnerguard/storage/alert_outbox.py`):

1. the **alert** row exists (written by the policy before its message was queued);
2. the alert is **claimed** into an email: an ETag-conditioned update of the alert sets its
   `email` to a deterministic operation id (a UUIDv5 of the alert ids it goes out with and
   their generation), and the **email** row is created. One alert is in one email at a time;
3. one worker takes the email's **lease** (an ETag-conditioned update to `sending`, for
   `LEASE`); any other worker finds it leased and comes back later (`AlertBusy`). From then on
   every write of the email row is conditioned on the ETag of the lease's own last write, so a
   worker whose lease was taken over changes nothing (and never frees another's lease);
4. under the lease, the transport is asked whether it knows the operation (ACS:
   `GET /emails/operations/{id}`; the outbox: whether the `.eml` exists). Only when it does not
   is the email composed; then, **immediately before the send**, the lease is checked (a
   worker whose lease ran out while it looked up and composed starts over and never sends)
   and renewed in the same write that records the alerts the email carries and the attempt;
   a renewal that landed too late to cover the send (`SEND_WINDOW`) is given back unused.
   The send itself is never retried inside the SDK (notifiers/acs.py) and ends well inside the
   renewed lease;
5. once the service accepted it, the email row, then the alerts, then the runs' `alert` status
   and the findings' `last_notified` are marked.

A retry after a crash finds the alert claimed, takes the lease once it is free, and step 4
tells whether the earlier send went through; if it did, the alerts it carried are the ones the
email row lists (an alert claimed into it too late is delivered at once, in a new email).

**A "never seen" is not proof.** ACS has answered 404 for an operation it had accepted and
delivered (Azure/azure-sdk-for-python#35849) and documents no retention for operation status.
So after an *ambiguous* attempt (a timeout or reset after the request left, a 5xx, a 202 that
never arrived because the worker died), the email is not sent again before
`ALERT_SETTLE_SECONDS` have passed since the attempt was over and a lookup made after that
still answers 404 (`AlertSettling` says when to come back). An alert is never dropped to avoid
a duplicate. The guarantee, exactly: every alert is delivered or fails visibly; an email goes
out twice only if ACS, asked more than ALERT_SETTLE_SECONDS after the attempt it accepted was
over, answers that it never saw it (docs/reliability.md).

Failures:

- **429** on the send (`AlertThrottled`): ACS took nothing. The email becomes `throttled` (its
  id is never used again) and its alerts are released into a new generation, flagged
  `throttled`: the next try carries every alert pending for the same recipients in one email,
  which is how hundreds of tenants fit ACS's hourly quota. The worker re-queues with the
  service's `Retry-After` (or a back-off of its own), with jitter;
- **refused for good** (`AlertFailed`: a refused sender or recipient, a message ACS accepted and
  then failed): recorded on the email, the alerts and the runs (`alert.status = failed` with the
  error, in the HTTP API); the worker poisons the message;
- **the caller refused** (401/403, `SendDenied`: a clock out of step, a role assignment still
  propagating after a deploy): retried like an outage for `DENIED_GRACE`, then failed for good;
- **unavailable for now** (`AlertUnavailable`: 5xx, timeouts, a lookup that failed): the lease
  is given back and the claims stay; the worker re-queues with back-off.
"""

from __future__ import annotations

import logging
import math
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Literal

from notifiers.alert_transport import AlertTransport, SendDenied, SendRejected, SendThrottled, SendUnavailable
from notifiers.email_channel import EmailChannel
from notifiers.email_transport import EmailTransport
from partnerguard.alerts.compose import compose
from partnerguard.alerts.policy import AlertRef
from partnerguard.alerts.routing import (
    CHANNEL_NAMES,
    Channel,
    Destination,
    channel_of,
    destination_of,
    destinations_for,
)
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

# How long one worker may hold an email: renewed immediately before the send, it covers the
# send's own timeouts (notifiers/acs.py: 10 s to connect, 60 s to read) many times over, so when
# a lease runs out its send is over. An attempt whose worker died mid-send is over, for the
# settle window, when the lease that covered it ends.
LEASE = timedelta(minutes=5)
# What the renewed lease must still cover when the send starts, however long the write that
# renewed it took (a slow storage call, retried): the send's own timeouts (70 s) with room to
# spare. A renewal that lands later than that is given back, and the worker starts over.
SEND_WINDOW = timedelta(minutes=2)
# How long ACS refusing the caller (401/403) is retried before the alert fails: a role
# assignment can take up to 30 minutes to take effect (Troubleshoot Azure RBAC), and an HMAC
# date out of the service's skew window needs a clock to be put right.
DENIED_GRACE = timedelta(hours=1)
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


class AlertSettling(DeliveryError):
    """An earlier send of the email may have been accepted, and the service does not know it
    (yet): nothing is sent before ALERT_SETTLE_SECONDS after that attempt; come back then."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AlertFailed(DeliveryError):
    """Failed for good; recorded on the alerts and their runs."""


class AlertUnavailable(DeliveryError):
    """The transport failed for now; the claims stay, a retry resumes."""


class _LeaseLost(Exception):
    """This worker's lease ran out or was taken over before it sent: start over."""


class _Held:
    """The email as this worker's own last write left it: the ETag every next write is
    conditioned on (never a fresh read, which could be another worker's lease)."""

    def __init__(self, email: EmailRecord) -> None:
        self.email = email


DeliveryAction = Literal["sent", "already", "dropped"]


@dataclass(frozen=True)
class Delivery:
    """What one `deliver` did."""

    action: DeliveryAction
    operation_id: str | None = None
    alert_ids: tuple[str, ...] = ()
    target: str | None = None
    channel: Channel = "email"


def operation_id_for(alerts: Sequence[AlertRecord]) -> str:
    """The message's id: the same for the same alerts of one destination in the same generation,
    in any order. The destination is part of it: the same news owed to the email and to the
    webhook goes out as two operations (a webhook's idempotency key is never an ACS operation id),
    and the same alert owed to a new recipient set (the recipients changed mid-incident) is never
    taken for the operation ACS already accepted for the old one."""
    generation = max(alert.generation for alert in alerts)
    partitions = {alert.partition for alert in alerts}
    if len(partitions) != 1:
        raise ValueError("one message carries the alerts of one destination")
    # An email in flight keeps the id its alerts were claimed under (stored on them): a change
    # here only affects claims made after it.
    key = "\n".join(sorted(alert.alert_id for alert in alerts)) + f"\n#{generation}\n@{alerts[0].partition}"
    return str(uuid.uuid5(OPERATION_NAMESPACE, key))


class AlertDelivery:
    """Delivers alerts through the channel their partition names: email partitions through
    `transport`, Teams and webhook partitions through what `channels` builds for the
    destination the settings name (notifiers/alert_transport.py)."""

    def __init__(
        self,
        settings: Settings,
        store: ScanStore,
        alerts: AlertStore,
        transport: EmailTransport | None,
        clock: Callable[[], datetime],
        channels: Callable[[Destination], AlertTransport] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.alerts = alerts
        self.email = EmailChannel(transport) if transport is not None else None
        self.channels = channels
        self.clock = clock
        self._built: dict[str, AlertTransport] = {}
        self._building = threading.Lock()

    def transport_for(self, partition: str) -> AlertTransport | None:
        """The channel of `partition`; None when nothing configured delivers there any more."""
        if channel_of(partition) == "email":
            return self.email
        with self._building:  # one transport per destination, however many workers ask at once
            if partition not in self._built:
                destination = destination_of(self.settings, partition)
                if destination is None or self.channels is None:
                    return None
                self._built[partition] = self.channels(destination)
            return self._built[partition]

    def close(self) -> None:
        """Close the channels this delivery built (the email transport belongs to its caller)."""
        for transport in self._built.values():
            transport.close()
        self._built.clear()

    @property
    def settle(self) -> timedelta:
        return timedelta(seconds=self.settings.alert_settle_seconds)

    def deliver(self, ref: AlertRef) -> Delivery:
        """Deliver the alert `ref` (and whatever shares its message) once; see the module docstring."""
        return replace(self._deliver(ref), channel=channel_of(ref.partition))

    def _deliver(self, ref: AlertRef) -> Delivery:
        for _ in range(_MAX_ROUNDS):
            alert = self.alerts.get(ref.partition, ref.alert_id)
            if alert is None:
                raise UnknownAlert(f"no alert {ref.alert_id} in {ref.partition}")
            if alert.state in DONE_STATES:
                return Delivery("already", alert.email, (alert.alert_id,))
            transport = self.transport_for(alert.partition)
            if transport is None:
                # Its URL changed or was removed since the alert was owed: nothing can deliver
                # it, and saying so (failed, on the run) beats retrying for two days.
                reason = "the alert's channel is no longer configured (its setting was removed)"
                self._mark([alert], ALERT_FAILED, reason)
                raise AlertFailed(reason)
            if not alert.email:
                self._claim_group(alert, transport)
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
            held = _Held(leased)
            try:
                result = self._send(held, transport)
            except _LeaseLost:
                log.warning("alert email %s: the lease ran out before the send; starting over", email.operation_id)
                continue
            except DeliveryError:
                raise
            except Exception:
                # A bug or a storage failure mid-way: free the email for the next try now rather
                # than when the lease runs out, conditionally on this worker's own lease (a lease
                # another worker took meanwhile stays theirs). Safe: every try looks the
                # operation up first, and an attempt in doubt stays in doubt.
                try:
                    self.alerts.unlease(held.email)
                except Exception:
                    log.warning("alert email %s: could not give the lease back", email.operation_id, exc_info=True)
                raise
            if result.action == "sent" and alert.alert_id not in result.alert_ids:
                # The email went out (an earlier attempt's) without this alert, claimed into it
                # too late: it is delivered now, in a new email, not at the next sweep.
                continue
            return result
        raise AlertUnavailable(f"alert {ref.alert_id} kept changing under other workers; trying later")

    def _claim_group(self, alert: AlertRecord, transport: AlertTransport) -> None:
        """Claim `alert` (and, after throttling, the other pending alerts of its destination, as
        many as one message of its channel carries)."""
        group = [alert]
        limit = transport.max_alerts
        if alert.throttled and limit > 1:
            others = self.alerts.pending_unclaimed(alert.partition, limit)
            group += [other for other in others if other.alert_id != alert.alert_id][: limit - 1]
        operation_id = operation_id_for(group)
        for member in group:
            self.alerts.claim(member, operation_id)

    def _send(self, held: _Held, transport: AlertTransport) -> Delivery:
        """Under the lease: look the operation up, and send it only when the service never saw it
        (and, after an attempt in doubt, still has not seen it once the settle window is over).
        A channel without a lookup is sent again after an attempt in doubt: at least once."""
        email = held.email
        looked_at = self.clock()
        try:
            known = transport.lookup(email.operation_id)
        except SendThrottled as throttled:
            self.alerts.unlease(email, clear_denied=email.denied_since is not None)
            raise AlertThrottled(str(throttled), throttled.retry_after) from throttled
        except SendUnavailable as unavailable:
            # Any answer but 401/403 ends a run of refusals: the grace counts an unbroken run.
            self.alerts.unlease(email, clear_denied=email.denied_since is not None)
            raise AlertUnavailable(str(unavailable)) from unavailable
        except SendDenied as denied:
            raise self._denied(email, str(denied), after_send=False) from denied
        except SendRejected as rejected:
            raise self._refused(email, self._claimed(email), str(rejected)) from rejected

        if known.state in ("accepted", "delivered"):
            # An earlier attempt's send went through; what it carried is on the email row.
            carried = [a for a in self._claimed(email) if a.alert_id in email.alert_ids]
            log.info("alert email %s was accepted by an earlier attempt; not sent again", email.operation_id)
            # That attempt may have ended (a 500 after ACS took it, a crash) before it marked the
            # findings it told about: mark them now, or a reminder would come an interval early.
            self._notified(compose(self.settings, self.store, carried, self.clock()).notified)
            self._settle(email, carried, ALERT_SENT, email.target or transport.name, None)
            return Delivery("sent", email.operation_id, tuple(a.alert_id for a in carried), email.target)
        if known.state == "failed":
            carried = [a for a in self._claimed(email) if a.alert_id in email.alert_ids]
            reason = f"the email service accepted the message and then failed it: {known.error or 'no reason given'}"
            raise self._refused(email, carried, reason)

        settled_from = email.settle_from(LEASE) if transport.confirms_operations else None
        if settled_from is not None and looked_at < settled_from + self.settle:
            # The last attempt may have been accepted, and a lookup may not know it yet.
            ready = settled_from + self.settle
            self.alerts.unlease(email, clear_denied=email.denied_since is not None)
            wait = max((ready - self.clock()).total_seconds(), 1.0)
            raise AlertSettling(
                f"email {email.operation_id}: an earlier send may have been accepted; not sent again "
                f"before {ready:%Y-%m-%d %H:%M:%S} UTC (ALERT_SETTLE_SECONDS)",
                wait,
            )

        members = self._claimed(email)
        composed = compose(self.settings, self.store, members, self.clock())
        dropped = [a for a in members if a.alert_id in composed.dropped]
        carried = [a for a in members if a.alert_id in composed.included]
        if dropped:
            self._mark(dropped, ALERT_DROPPED, None)
        if composed.content is None or not carried:
            if not self.alerts.finish_email(email, ALERT_DROPPED, self.clock()):
                raise _LeaseLost
            return Delivery("dropped", email.operation_id, tuple(a.alert_id for a in dropped))
        now = self.clock()
        if not email.lease_live(now):
            raise _LeaseLost
        began = self.alerts.begin_send(email, [a.alert_id for a in carried], now, LEASE)
        if began is None:
            raise _LeaseLost
        held.email = began
        if began.lease_until is None or began.lease_until - self.clock() < SEND_WINDOW:
            # The renewal took so long that what is left of the lease might not cover the send:
            # nothing was sent, so say so, give the email back, and start over.
            self.alerts.unlease(began, ambiguous=False)
            raise _LeaseLost
        # Email addresses for an email; the other channels' rows name only their channel.
        recipients = carried[0].recipients if channel_of(began.partition) == "email" else ()
        try:
            sent_to = transport.send(began.operation_id, recipients, composed.content)
        except SendThrottled as throttled:
            if not transport.confirms_operations:
                # A channel without a lookup keeps its message, and so its id: an earlier attempt
                # in doubt may have been taken, and the retry must carry the same idempotency
                # key for the receiver to drop it. (One alert per message: nothing to regroup.)
                self.alerts.unlease(began, ambiguous=False)
                raise AlertThrottled(str(throttled), throttled.retry_after) from throttled
            # 429 on the send: ACS took nothing. That email is never used again; its alerts are
            # owed again, together with whatever else waits for the same recipients.
            if self.alerts.finish_email(began, EMAIL_THROTTLED, self.clock(), error=str(throttled)):
                self.alerts.release(carried, began.operation_id, throttled=True, error=str(throttled))
            raise AlertThrottled(str(throttled), throttled.retry_after) from throttled
        except SendUnavailable as unavailable:
            # In doubt unless the transport knows the request never reached the service; either
            # way, when the client gave up on it is when the settle window starts.
            self.alerts.unlease(began, ambiguous=unavailable.ambiguous, attempt_ended=self.clock())
            raise AlertUnavailable(str(unavailable)) from unavailable
        except SendDenied as denied:
            raise self._denied(began, str(denied), after_send=True) from denied
        except SendRejected as rejected:
            raise self._refused(began, carried, str(rejected)) from rejected
        target = sent_to or transport.name
        log.info("alert message %s sent via %s to %d address(es)", began.operation_id, transport.name, len(recipients))
        # The findings first, then the email's outcome: a crash between the two leaves the email
        # in doubt, and the next try finds it accepted and marks the findings again (above).
        self._notified(composed.notified)
        self._settle(began, carried, ALERT_SENT, target, None)
        return Delivery("sent", began.operation_id, tuple(a.alert_id for a in carried), target)

    def _notified(self, notified: Mapping[str, Sequence[tuple[str, str]]]) -> None:
        """Record that an accepted email told about these findings (their `last_notified`)."""
        for tenant_id, keys in notified.items():
            if keys:
                self.store.mark_notified(tenant_id, keys, self.clock())

    def _claimed(self, email: EmailRecord) -> list[AlertRecord]:
        return self.alerts.claimed_by(email.partition, email.operation_id)

    def _denied(self, email: EmailRecord, reason: str, *, after_send: bool) -> DeliveryError:
        """The service refused the caller (401/403): retried until DENIED_GRACE after the first
        refusal of an unbroken run (any other answer clears `denied_since`, begin_send among
        them), then failed for good. Nothing was accepted by a refused send."""
        now = self.clock()
        since = email.denied_since or now
        if now - since >= DENIED_GRACE:
            hours = DENIED_GRACE.total_seconds() / 3600
            carried = [a for a in self._claimed(email) if a.alert_id in email.alert_ids] if after_send else None
            return self._refused(
                email, carried if carried is not None else self._claimed(email), f"{reason} for {hours:g} h"
            )
        self.alerts.unlease(email, ambiguous=False if after_send else None, denied_since=since)
        until = since + DENIED_GRACE
        return AlertUnavailable(f"{reason}; tried again until {until:%Y-%m-%d %H:%M} UTC (a clock or role catching up)")

    def _refused(self, email: EmailRecord, alerts: Sequence[AlertRecord], reason: str) -> DeliveryError:
        """Record a refusal for good and return the error to raise."""
        if not self._settle(email, alerts, ALERT_FAILED, None, reason):
            # The lease was lost meanwhile: the worker holding it now decides.
            return AlertUnavailable(f"email {email.operation_id}: lost the lease while recording a refusal")
        return AlertFailed(reason)

    def _settle(
        self, email: EmailRecord, alerts: Sequence[AlertRecord], state: str, target: str | None, error: str | None
    ) -> bool:
        """Record the outcome under the lease: the email first, then its alerts and their runs.
        False when the lease was lost: then only an email the service accepted still marks the
        alerts it carried (that is true whoever finishes the row)."""
        transport = self.transport_for(email.partition)
        verifiable = transport is not None and transport.confirms_operations
        finished = self.alerts.finish_email(email, state, self.clock(), target, error, verifiable=verifiable)
        if finished or state == ALERT_SENT:
            self._mark(alerts, state, error)
        return bool(finished)

    def _mark(self, alerts: Sequence[AlertRecord], state: str, error: str | None) -> None:
        """The alerts' state, and the `alert` status of the runs they are about (SPEC §4)."""
        pending = [a for a in alerts if a.state == ALERT_PENDING]
        self.alerts.set_state(pending, state, error)
        for alert in pending:
            if alert.kind == "run" and alert.tenant_id and alert.run_id:
                outcome = self._run_outcome(alert, state, error)
                if outcome is not None:
                    self.store.set_alert_status(alert.tenant_id, alert.run_id, *outcome)

    def _run_outcome(self, alert: AlertRecord, state: str, error: str | None) -> tuple[str, str | None] | None:
        """The run's `alert` status once every destination of its digest is done: `failed` (with
        each failed channel's reason) if any failed, else `sent` if any sent, else `none`; None
        while another destination still owes it (the run stays `pending`). Written only when
        final, so two destinations finishing at once can only write the same answer."""
        outcomes = {alert.partition: (state, error)}
        for destination in destinations_for(self.settings, alert.tenant_id):
            if destination.partition not in outcomes:
                other = self.alerts.get(destination.partition, alert.alert_id)
                if other is not None:
                    outcomes[destination.partition] = (other.state, other.error)
        states = [outcome_state for outcome_state, _ in outcomes.values()]
        if ALERT_PENDING in states:
            return None
        failed = [(partition, reason) for partition, (done, reason) in outcomes.items() if done == ALERT_FAILED]
        if failed:
            if len(outcomes) == 1:
                return "failed", failed[0][1]
            return "failed", "; ".join(f"{CHANNEL_NAMES[channel_of(p)]}: {reason}" for p, reason in sorted(failed))
        return ("sent", None) if ALERT_SENT in states else ("none", None)

    def verify_sent(self, now: datetime, window: timedelta = VERIFY_WINDOW) -> int:
        """Look again at emails the service accepted in the last `window`: one it failed to
        deliver after all (ACS: operation `Failed`, e.g. `EmailDropped`) has its alerts and runs
        marked `failed`, so the HTTP API shows it; one delivered is not looked at again. Returns
        how many failed. Lookups that fail now are tried again at the next call."""
        failed = 0
        for email in self.alerts.unverified(now - window):
            transport = self.transport_for(email.partition)
            if transport is None or not transport.confirms_operations:
                continue  # nothing can tell (finish_email marks such messages verified)
            try:
                known = transport.lookup(email.operation_id)
            except (SendThrottled, SendUnavailable, SendRejected) as error:
                log.warning("could not check alert email %s: %s", email.operation_id, safe_text(error, 200))
                continue
            if known.state == "delivered":
                self.alerts.confirm(email, ALERT_SENT)
            elif known.state == "failed":
                reason = f"accepted, then not delivered by the email service: {known.error or 'no reason given'}"
                log.error("alert email %s: %s", email.operation_id, safe_text(reason, 300))
                if not self.alerts.confirm(email, ALERT_FAILED, reason):
                    continue  # another timer got there first
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


# The command line waits for throttling, outages and settle windows up to this long in all per
# alert: a person is watching. What is still owed then stays owed (the next scan, or the
# Functions app, sends it). A settle window longer than what is left of it is not waited for.
CLI_WAIT_BUDGET_SECONDS = 240.0
CLI_ATTEMPTS = 4  # tries after throttling or an outage (settle windows are waited out apart)
CLI_MAX_WAIT_SECONDS = 60.0  # the longest back-off between those


def backoff_seconds(attempt: int, retry_after: float | None, cap: float, jitter: Callable[[], float]) -> float:
    """The service's Retry-After when it gave one, else exponential back-off; always with up to
    20 % jitter added, so messages deferred together do not all come back at the same moment."""
    base = max(retry_after, 1.0) if retry_after is not None else 2.0 ** min(attempt, 16)
    return min(cap, base * (1.0 + 0.2 * jitter()))


@dataclass(frozen=True)
class Deferred:
    """Still owed after the command line's attempts (throttled, unavailable, settling), not failed."""

    reason: str


def deliver_now(
    delivery: AlertDelivery,
    ref: AlertRef,
    sleep: Callable[[float], None],
    jitter: Callable[[], float],
    attempts: int = CLI_ATTEMPTS,
    budget: float = CLI_WAIT_BUDGET_SECONDS,
) -> Delivery | AlertFailed | Deferred:
    """Deliver synchronously (the command line), waiting out throttling, outages and settle
    windows within `budget` seconds in all.

    Returns the delivery; the failure (already recorded) when it failed for good; or `Deferred`
    when it is still owed."""
    waited = 0.0
    failures = 0
    while True:
        try:
            return delivery.deliver(ref)
        except AlertFailed as failed:
            return failed
        except AlertSettling as settling:
            # Exactly as long as the window needs (rounded up), or not at all.
            wait = float(math.ceil(settling.retry_after))
            error: DeliveryError = settling
        except (AlertThrottled, AlertBusy, AlertUnavailable) as other:
            failures += 1
            if failures >= attempts:
                return Deferred(str(other))
            retry_after = other.retry_after if isinstance(other, AlertThrottled | AlertBusy) else None
            wait = backoff_seconds(failures, retry_after, CLI_MAX_WAIT_SECONDS, jitter)
            error = other
        if waited + wait > budget:
            return Deferred(str(error))
        log.warning("alert %s: %s; trying again in %.0f s", ref.alert_id, error, wait)
        sleep(wait)
        waited += wait

"""Sends that end in doubt, leases that run out, workers that overlap (issue 15, cases 1, 2, 3,
8.3 and 8.4), on Azurite, with a clock the test moves.

Two ACS stand-ins: the ACS Email fake behind the real `EmailClient` (tests/…/testbed/acs_fake.py)
where the wire matters — it can accept a send and answer 500, accept it and never answer, refuse
the caller with 401/403, and answer lookups 404 for a lag after accepting, as ACS has
(Azure/azure-sdk-for-python#35849) — and an in-process `ScriptedAcs` (tests/delivery_harness.py)
where another worker has to run in the middle of a call.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from notifiers.acs import AcsTransport
from notifiers.alert_transport import SendDenied, SendUnavailable
from partnerguard.alerts.delivery import LEASE, AlertDelivery, AlertFailed, Delivery, DeliveryError
from partnerguard.alerts.policy import AlertRef
from partnerguard.storage import ScanStore
from partnerguard.storage.alert_outbox import AlertRecord, AlertStore
from testbed.acs_fake import AcsEmailFake
from testbed.azurite import AzuriteProcess
from tests.delivery_harness import ManualClock, ScriptedAcs, alert_stores, owe, problem, settings_for

pytestmark = pytest.mark.azurite

SENDER = "alerts@partnerguard.contoso.example"
SETTLE = 30  # ALERT_SETTLE_SECONDS in these tests
LAG = 20  # seconds the ACS fake's lookups answer 404 after accepting
BACKOFF = 2.4  # the worker's first back-off after an outage (2 s plus jitter)


@pytest.fixture
def stores(azurite: AzuriteProcess, table_prefix: str) -> Iterator[tuple[ScanStore, AlertStore]]:
    yield from alert_stores(azurite.connection_string, table_prefix)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def acs(clock: ManualClock) -> Iterator[AcsEmailFake]:
    with AcsEmailFake(clock=clock.seconds, lookup_lag=LAG) as fake:
        yield fake


@dataclass(frozen=True)
class OneAlert:
    """One alert owed, and a worker that delivers it through the real SDK to the ACS stand-in."""

    alert: AlertRecord
    alerts: AlertStore
    worker: AlertDelivery


@pytest.fixture
def one_alert(stores: tuple[ScanStore, AlertStore], clock: ManualClock, acs: AcsEmailFake) -> Iterator[OneAlert]:
    store, alerts = stores
    settings = settings_for(SETTLE)
    (alert,) = owe(settings, alerts, 1, clock())
    transport = sdk_transport(acs)
    yield OneAlert(alert, alerts, AlertDelivery(settings, store, alerts, transport, clock))
    transport.close()


def sdk_transport(fake: AcsEmailFake, **options: float) -> AcsTransport:
    return AcsTransport.from_connection_string(
        fake.connection_string, SENDER, connection_verify=str(fake.ca_bundle), **options
    )


def retry_until_failed(
    worker: AlertDelivery, ref: AlertRef, clock: ManualClock, attempts: int, every_seconds: float
) -> list[str]:
    """Deliver `attempts` times, `every_seconds` apart on the test's clock, until the alert fails
    for good: "retried" for each attempt that will be tried again, "failed" for the last."""
    outcomes: list[str] = []
    for _ in range(attempts):
        try:
            worker.deliver(ref)
        except AlertFailed:
            outcomes.append("failed")
            break
        except DeliveryError:
            outcomes.append("retried")
        clock.advance(every_seconds)
    return outcomes


def until_delivered(worker: AlertDelivery, ref: AlertRef, clock: ManualClock, first_wait: float) -> list[str]:
    """Deliver as the alert worker does: after each deferral, come back when it says (the
    clock moves that far); returns what each try raised, ending with "delivered"."""
    tries: list[str] = []
    wait = first_wait
    for _ in range(12):
        clock.advance(wait)
        try:
            worker.deliver(ref)
        except DeliveryError as deferred:
            tries.append(type(deferred).__name__)
            wait = max(float(getattr(deferred, "retry_after", None) or BACKOFF), 1.0)
            continue
        tries.append("delivered")
        return tries
    raise AssertionError(f"not delivered after {tries}")


# -- case 1: a 404 after an ambiguous send is not proof -------------------------------------------


def test_case_1_an_accepted_send_answered_500_is_not_sent_again_while_lookups_lag(
    one_alert: OneAlert, clock: ManualClock, acs: AcsEmailFake
) -> None:
    alert, alerts, worker = one_alert.alert, one_alert.alerts, one_alert.worker
    acs.fail_next(500, after_accept=True)  # ACS takes the email, the client sees a 500

    with pytest.raises(DeliveryError):
        worker.deliver(AlertRef.of(alert))
    # The worker comes back after its back-off; for 20 s ACS's lookups say "never seen".
    tries = until_delivered(worker, AlertRef.of(alert), clock, BACKOFF)

    assert len(acs.sent) == 1, f"sent {len(acs.sent)} times ({tries})"
    stored = alerts.get(alert.partition, alert.alert_id)
    assert stored is not None and stored.state == "sent"


def test_case_1_a_send_refused_before_acceptance_goes_out_once_after_the_settle_window(
    one_alert: OneAlert, clock: ManualClock, acs: AcsEmailFake
) -> None:
    alert, worker = one_alert.alert, one_alert.worker
    acs.fail_next(500)  # refused before ACS took it: from the client, the same 500
    tried_at = clock()

    with pytest.raises(DeliveryError):
        worker.deliver(AlertRef.of(alert))
    until_delivered(worker, AlertRef.of(alert), clock, BACKOFF)

    (email,) = acs.sent
    assert problem(alert) in (email.plain_text or "")
    # Not before the window: until then a "never seen" may be ACS not knowing it yet.
    assert clock() - tried_at >= timedelta(seconds=SETTLE)


def test_an_accepted_send_the_service_never_answers_is_sent_once(
    stores: tuple[ScanStore, AlertStore], clock: ManualClock, acs: AcsEmailFake
) -> None:
    store, alerts = stores
    settings = settings_for(SETTLE)
    (alert,) = owe(settings, alerts, 1, clock())
    transport = sdk_transport(acs, read_timeout=1.0)  # production waits 60 s to read
    worker = AlertDelivery(settings, store, alerts, transport, clock)
    acs.hang_next()  # taken, then no answer until the client gives up

    with pytest.raises(DeliveryError):
        worker.deliver(AlertRef.of(alert))
    acs.release_hangs()
    until_delivered(worker, AlertRef.of(alert), clock, BACKOFF)

    assert len(acs.sent) == 1
    transport.close()


# -- case 2: a lease that runs out during a slow lookup and send ----------------------------------


def test_case_2_a_worker_returning_at_lease_expiry_does_not_send_while_the_first_send_is_in_flight(
    stores: tuple[ScanStore, AlertStore], clock: ManualClock
) -> None:
    store, alerts = stores
    settings = settings_for(SETTLE)
    (alert,) = owe(settings, alerts, 1, clock())
    acs = ScriptedAcs()
    first = AlertDelivery(settings, store, alerts, acs, clock)
    second = AlertDelivery(settings, store, alerts, acs, clock)
    seen: list[Delivery | DeliveryError] = []

    def slow_lookup(_: str) -> None:
        # 3 × (10 s connect + 60 s read) and a Retry-After slept out: most of the lease gone.
        clock.advance(290)

    def another_worker_meanwhile(_: str) -> None:
        # While the first send is on its way, the five minutes of the first lease are over and
        # the same alert's other message arrives (AlertBusy sent it back for exactly then).
        clock.advance(20)
        try:
            seen.append(second.deliver(AlertRef.of(alert)))
        except DeliveryError as error:
            seen.append(error)

    acs.on_lookup.append(slow_lookup)
    acs.in_flight.append(another_worker_meanwhile)

    result = first.deliver(AlertRef.of(alert))

    assert result.action == "sent"
    assert len(acs.emails) == 1, "the second worker sent the email the first was sending"
    assert [type(outcome).__name__ for outcome in seen] == ["AlertBusy"]


def test_case_2_a_worker_whose_lease_ran_out_during_its_lookup_looks_again_before_it_sends(
    stores: tuple[ScanStore, AlertStore], clock: ManualClock
) -> None:
    store, alerts = stores
    settings = settings_for(SETTLE)
    (alert,) = owe(settings, alerts, 1, clock())
    acs = ScriptedAcs()
    acs.on_lookup.append(lambda _: clock.advance(LEASE.total_seconds() + 60))  # a six-minute lookup

    result = AlertDelivery(settings, store, alerts, acs, clock).deliver(AlertRef.of(alert))

    assert result.action == "sent" and len(acs.emails) == 1
    # Its lease lapsed while it looked: it took it again and asked again before sending.
    assert len(acs.lookups) == 2


def test_case_2_a_lease_renewal_that_lands_too_late_is_given_back_before_any_send(
    stores: tuple[ScanStore, AlertStore], clock: ManualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, alerts = stores
    settings = settings_for(SETTLE)
    (alert,) = owe(settings, alerts, 1, clock())
    acs = ScriptedAcs()
    first = AlertDelivery(settings, store, alerts, acs, clock)
    second = AlertDelivery(settings, store, alerts, acs, clock)
    renew = AlertStore.begin_send
    slow: list[bool] = []

    def slow_once(self: AlertStore, *args: object, **kwargs: object) -> object:
        renewed = renew(self, *args, **kwargs)  # type: ignore[arg-type]
        if not slow:
            slow.append(True)
            clock.advance(250)  # the write was retried for minutes before it landed
        return renewed

    def another_worker_meanwhile(_: str) -> None:
        clock.advance(100)  # the renewed lease (from before the slow write) runs out mid-send
        with contextlib.suppress(DeliveryError):
            second.deliver(AlertRef.of(alert))

    monkeypatch.setattr(AlertStore, "begin_send", slow_once)
    acs.in_flight.append(another_worker_meanwhile)

    result = first.deliver(AlertRef.of(alert))

    assert result.action == "sent"
    assert len(acs.emails) == 1


# -- case 3: the catch-all handler frees only its own lease ---------------------------------------


def test_case_3_a_worker_failing_after_its_lease_was_taken_over_leaves_the_other_lease_alone(
    stores: tuple[ScanStore, AlertStore], clock: ManualClock
) -> None:
    store, alerts = stores
    settings = settings_for(SETTLE)
    (alert,) = owe(settings, alerts, 1, clock())
    acs = ScriptedAcs()
    taken = []

    def overtaken_then_bug(operation_id: str) -> None:
        clock.advance(LEASE.total_seconds() + 1)
        # Another worker takes the email whose lease ran out, and is sending it now ...
        email = alerts.get_email(alert.partition, operation_id)
        assert email is not None
        taken.append(alerts.lease(email, clock(), LEASE))
        # ... when this one fails on something unexpected.
        raise RuntimeError("a bug in this worker")

    acs.on_lookup.append(overtaken_then_bug)
    with pytest.raises(RuntimeError):
        AlertDelivery(settings, store, alerts, acs, clock).deliver(AlertRef.of(alert))

    (other,) = taken
    assert other is not None
    email = alerts.get_email(alert.partition, other.operation_id)
    assert email is not None and email.state == "sending" and email.lease_until == other.lease_until
    # A third worker finds the email still held and waits: it does not send it beside the other.
    with pytest.raises(DeliveryError):
        AlertDelivery(settings, store, alerts, acs, clock).deliver(AlertRef.of(alert))
    assert acs.emails == []


# -- case 8.3: 401/403 is retried for a bounded time ----------------------------------------------


@pytest.mark.parametrize("status", [401, 403])
def test_case_8_3_a_send_refused_with_401_or_403_is_retried_not_failed(
    one_alert: OneAlert, clock: ManualClock, acs: AcsEmailFake, status: int
) -> None:
    alert, alerts, worker = one_alert.alert, one_alert.alerts, one_alert.worker
    acs.fail_next(status)  # role assignment still propagating, or the clock out of step

    with pytest.raises(DeliveryError) as first:
        worker.deliver(AlertRef.of(alert))
    assert not isinstance(first.value, AlertFailed)
    stored = alerts.get(alert.partition, alert.alert_id)
    assert stored is not None and stored.state == "pending"
    # ACS took nothing with a 401/403: no settle window to wait out.
    clock.advance(BACKOFF)
    assert worker.deliver(AlertRef.of(alert)).action == "sent"

    assert len(acs.sent) == 1


def test_case_8_3_a_lookup_refused_for_more_than_an_hour_fails_the_alert(
    one_alert: OneAlert, clock: ManualClock, acs: AcsEmailFake
) -> None:
    alert, alerts, worker = one_alert.alert, one_alert.alerts, one_alert.worker
    acs.fail_next(403, times=8, target="status")

    outcomes = retry_until_failed(worker, AlertRef.of(alert), clock, attempts=8, every_seconds=15 * 60)

    # Retried for an hour after the first refusal (at 0, 15, 30, 45 minutes), then failed visibly.
    assert outcomes == ["retried"] * 4 + ["failed"]
    stored = alerts.get(alert.partition, alert.alert_id)
    assert stored is not None and stored.state == "failed" and stored.error is not None and "403" in stored.error
    assert acs.sent == []


def test_case_8_3_the_grace_counts_an_unbroken_run_of_refusals_not_the_first_refusal_ever(
    stores: tuple[ScanStore, AlertStore], clock: ManualClock
) -> None:
    # A 403, then hours of 5xx, then a 403 again: the new refusal starts a new hour of grace.
    store, alerts = stores
    settings = settings_for(SETTLE)
    (alert,) = owe(settings, alerts, 1, clock())

    def answer(error: Exception) -> Callable[[str], None]:
        def hook(_operation_id: str) -> None:
            raise error

        return hook

    denied = SendDenied("ACS answered 403 to the lookup")
    outage = SendUnavailable("ACS answered 503 to the lookup")
    acs = ScriptedAcs(on_lookup=[answer(denied)] + [answer(outage)] * 4 + [answer(denied)])
    worker = AlertDelivery(settings, store, alerts, acs, clock)

    outcomes = retry_until_failed(worker, AlertRef.of(alert), clock, attempts=6, every_seconds=45 * 60)
    assert outcomes == ["retried"] * 6
    stored = alerts.get(alert.partition, alert.alert_id)
    assert stored is not None and stored.state == "pending"
    assert worker.deliver(AlertRef.of(alert)).action == "sent"
    assert len(acs.emails) == 1


# -- case 8.4: an alert that joined an accepted email is delivered at once -------------------------


def test_case_8_4_an_alert_claimed_into_an_email_acs_already_took_is_sent_now(
    stores: tuple[ScanStore, AlertStore], clock: ManualClock
) -> None:
    store, alerts = stores
    settings = settings_for(SETTLE)
    first, late = owe(settings, alerts, 2, clock())
    acs = ScriptedAcs(sends=["accept-500"])
    worker = AlertDelivery(settings, store, alerts, acs, clock)
    with pytest.raises(DeliveryError):
        worker.deliver(AlertRef.of(first))  # ACS took it; the answer was a 500
    claimed = alerts.get(first.partition, first.alert_id)
    current = alerts.get(late.partition, late.alert_id)
    assert claimed is not None and claimed.email and current is not None
    # A regrouping worker puts the other alert of the same recipients into that email, late.
    assert alerts.claim(current, claimed.email)

    clock.advance(BACKOFF)
    worker.deliver(AlertRef.of(late))

    stored = alerts.get(late.partition, late.alert_id)
    assert stored is not None and stored.state == "sent", "left for the timer's next sweep"
    assert (acs.mentions(first), acs.mentions(late)) == (1, 1)

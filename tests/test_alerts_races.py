"""Exactly once under concurrency: several workers delivering alerts of one recipient set at the
same time (duplicate queue messages, throttled alerts waking together), on Azurite, with a
transport that records every send and can hold a lookup open so the workers overlap.

These are the windows a review found in the first design (two workers both sending one email;
a worker deleting another's email record; a regrouped alert reusing an abandoned email): each
test here fails on that design."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from azure.data.tables import TableServiceClient

from notifiers.alert_transport import Lookup, SendThrottled
from notifiers.digest_email import RenderedEmail
from notifiers.health_email import HealthProblem
from partnerguard.alerts.delivery import LEASE, AlertBusy, AlertDelivery, AlertThrottled, Delivery, DeliveryError
from partnerguard.alerts.policy import AlertRef, HealthIncident, record_health
from partnerguard.settings import Settings
from partnerguard.storage import ScanStore
from partnerguard.storage.alert_outbox import AlertRecord, AlertStore
from testbed.azurite import AzuriteProcess

pytestmark = pytest.mark.azurite

NOW = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
SETTINGS = Settings.from_env(
    {
        "PARTNERGUARD_STORAGE": "UseDevelopmentStorage=true",
        "ALERT_RECIPIENTS": "secops@contoso.example",
        "EMAIL_OUTBOX_DIR": "/nonexistent/outbox",  # not used: the transport below records sends
    }
)


class RecordingTransport:
    """Records every send; `hold` makes lookups wait for each other (so workers overlap);
    `throttle` answers that many sends with 429."""

    name = "recording transport"

    def __init__(self, hold: int = 0, throttle: int = 0) -> None:
        self.sent: list[tuple[str, str]] = []
        self.known: set[str] = set()
        self.throttle = throttle
        self.barrier = threading.Barrier(hold) if hold > 1 else None
        self.lock = threading.Lock()

    def lookup(self, operation_id: str) -> Lookup:
        if self.barrier is not None:
            # The other worker may never get here (it found the email leased): that is fine.
            with contextlib.suppress(threading.BrokenBarrierError):
                self.barrier.wait(timeout=2)
        with self.lock:
            return Lookup("accepted" if operation_id in self.known else "unknown")

    def send(self, operation_id: str, recipients: Sequence[str], email: RenderedEmail) -> str | None:
        with self.lock:
            if self.throttle:
                self.throttle -= 1
                raise SendThrottled("ACS answered 429", 5.0)
            self.sent.append((operation_id, email.text))
            self.known.add(operation_id)
        return None

    def close(self) -> None:
        return None


@pytest.fixture
def stores(azurite: AzuriteProcess, table_prefix: str) -> Iterator[tuple[ScanStore, AlertStore]]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    store = ScanStore(service, prefix=table_prefix)
    store.ensure_tables()
    alerts = AlertStore(service, table_prefix)
    alerts.ensure_tables()
    yield store, alerts
    service.delete_table(alerts.table.table_name)
    store.close()


def owe(alerts: AlertStore, count: int) -> list[AlertRecord]:
    """`count` health alerts for one recipient set, each naming its own problem."""
    tag = uuid.uuid4().hex[:6]
    incidents = [
        HealthIncident(
            HealthProblem(kind="poison", tenant_id=None, tenant_name=None, detail=f"problem-{tag}-{i}", since=NOW),
            f"queue{i}",
            f"{tag}{i}",
        )
        for i in range(count)
    ]
    return record_health(SETTINGS, alerts, incidents, NOW)


def delivery(stores: tuple[ScanStore, AlertStore], transport: RecordingTransport) -> AlertDelivery:
    store, alerts = stores
    return AlertDelivery(SETTINGS, store, alerts, transport, lambda: NOW)


def mentions(transport: RecordingTransport, records: Sequence[AlertRecord]) -> dict[str, int]:
    """How many sent emails name each alert's problem."""
    return {
        record.alert_id: sum(1 for _, text in transport.sent if str(record.payload["problems"][0]["detail"]) in text)
        for record in records
    }


def deliver_concurrently(worker: AlertDelivery, refs: Sequence[AlertRef]) -> list[Delivery | DeliveryError]:
    def one(ref: AlertRef) -> Delivery | DeliveryError:
        try:
            return worker.deliver(ref)
        except DeliveryError as error:
            return error

    with ThreadPoolExecutor(max_workers=len(refs)) as pool:
        return list(pool.map(one, refs))


def test_two_workers_on_one_alert_send_one_email(stores: tuple[ScanStore, AlertStore]) -> None:
    (alert,) = owe(stores[1], 1)
    transport = RecordingTransport(hold=2)

    outcomes = deliver_concurrently(delivery(stores, transport), [AlertRef.of(alert)] * 2)

    assert len(transport.sent) == 1
    # One worker sent it; the other found the email leased and comes back later.
    assert sorted(type(o).__name__ for o in outcomes) == ["AlertBusy", "Delivery"]
    busy = next(o for o in outcomes if isinstance(o, AlertBusy))
    assert busy.retry_after > 0
    # Coming back, it finds the alert delivered.
    assert delivery(stores, transport).deliver(AlertRef.of(alert)).action == "already"
    assert len(transport.sent) == 1


def test_throttled_alerts_waking_together_are_each_sent_exactly_once(stores: tuple[ScanStore, AlertStore]) -> None:
    _, alerts = stores
    owed = owe(alerts, 6)
    transport = RecordingTransport(throttle=6)
    worker = delivery(stores, transport)
    for record in owed:  # every first try meets a 429
        with pytest.raises(AlertThrottled):
            worker.deliver(AlertRef.of(record))
    assert all(a.throttled and not a.email for a in alerts.all(owed[0].partition))

    # Their deferred messages come back at the same moment, on six workers.
    outcomes = deliver_concurrently(worker, [AlertRef.of(record) for record in owed])
    # Those that found an email leased come back again once it is free.
    for record, outcome in zip(owed, outcomes, strict=True):
        if isinstance(outcome, AlertBusy):
            worker.deliver(AlertRef.of(record))

    assert set(mentions(transport, owed).values()) == {1}  # every problem told, none twice
    assert len(transport.sent) < len(owed)  # grouped: fewer emails than alerts
    assert {a.state for a in alerts.all(owed[0].partition)} == {"sent"}


def test_an_alert_throttled_and_then_read_by_a_stale_worker_is_still_delivered(
    stores: tuple[ScanStore, AlertStore],
) -> None:
    _, alerts = stores
    (alert,) = owe(alerts, 1)
    transport = RecordingTransport(throttle=1)
    worker = delivery(stores, transport)
    with pytest.raises(AlertThrottled):
        worker.deliver(AlertRef.of(alert))
    abandoned = alerts.emails(alert.partition)
    assert [e.state for e in abandoned] == ["throttled"]

    # A stale worker acting on the abandoned email finds nothing to lease (it is finished).
    assert alerts.lease(abandoned[0], NOW, LEASE) is None
    result = worker.deliver(AlertRef.of(alert))

    assert result.action == "sent" and result.operation_id != abandoned[0].operation_id
    assert mentions(transport, [alert]) == {alert.alert_id: 1}
    stored = alerts.get(alert.partition, alert.alert_id)
    assert stored is not None and stored.state == "sent" and stored.generation == 1


def test_an_alert_claimed_into_an_email_that_went_out_without_it_is_sent_again(
    stores: tuple[ScanStore, AlertStore],
) -> None:
    """A worker composed and sent an email; a late claim put one more alert into it. That alert
    was not in the email (the email row lists what it carried), so it is owed again."""
    _, alerts = stores
    first, late = owe(alerts, 2)
    transport = RecordingTransport()
    worker = delivery(stores, transport)
    sent = worker.deliver(AlertRef.of(first))
    assert sent.alert_ids == (first.alert_id,)
    current = alerts.get(late.partition, late.alert_id)
    assert current is not None and sent.operation_id is not None
    assert alerts.claim(current, sent.operation_id)  # the late claim

    again = worker.deliver(AlertRef.of(late))

    assert again.action == "sent" and again.operation_id != sent.operation_id
    assert mentions(transport, [first, late]) == {first.alert_id: 1, late.alert_id: 1}

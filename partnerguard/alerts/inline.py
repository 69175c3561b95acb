"""Alerts delivered synchronously, by the command line's `scan` and the demo (SPEC §3).

The same policy and the same exactly-once delivery as the Functions app, without the queue:
after the scans, alerts still owed from earlier (throttled, or interrupted) are delivered, then
every alert the runs owe is recorded and delivered, waiting out ACS throttling, short outages
and settle windows after a send in doubt for up to four minutes per alert
(`delivery.deliver_now`). One refused for good is recorded as failed (the run's `alert.status`)
and makes the command exit 3; one still throttled or settling stays owed and goes out with the
next scan (or from the Functions app).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from partnerguard.alerts.delivery import AlertDelivery, AlertFailed, Deferred, Delivery, deliver_now
from partnerguard.alerts.policy import AlertRef, owed_after_scan
from partnerguard.alerts.transport_from_settings import build_channel, build_transport
from partnerguard.clock import Clock, utc_now
from partnerguard.settings import Settings
from partnerguard.storage.alert_outbox import AlertStore
from partnerguard.storage.store import ScanStore


@dataclass
class InlineOutcome:
    delivered: list[Delivery] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # why, one line per failed alert
    deferred: list[str] = field(default_factory=list)  # why, one line per alert still owed
    transport: str | None = None  # where emails went; None when no email goes anywhere

    @property
    def sent(self) -> list[Delivery]:
        return [d for d in self.delivered if d.action == "sent"]


def deliver_for_runs(
    settings: Settings,
    store: ScanStore,
    runs: Sequence[tuple[str, str]],
    clock: Clock | None = None,
    sleep: Callable[[float], None] | None = None,
) -> InlineOutcome:
    """Record and deliver what the (tenant id, run id) runs owe; nothing without a destination.
    `clock` and `sleep` (default: the wall clock, `time.sleep`) time leases, settle windows and
    waits together: a test moves one clock that both read."""
    clock = clock or utc_now
    sleep = sleep or time.sleep
    outcome = InlineOutcome()
    if not settings.alerts_configured:
        return outcome
    transport = build_transport(settings)
    alerts = AlertStore(store.service, store.prefix)
    alerts.ensure_tables()
    outcome.transport = transport.name if transport is not None else None
    delivery = AlertDelivery(settings, store, alerts, transport, clock, partial(build_channel, settings))
    try:
        owed = alerts.due(clock())
        for tenant_id, run_id in runs:
            owed += owed_after_scan(settings, store, alerts, tenant_id, run_id, clock())
        # One alert is owed to each destination: the same id in several partitions.
        for record in {(record.partition, record.alert_id): record for record in owed}.values():
            result = deliver_now(delivery, AlertRef.of(record), sleep, random.random)
            if isinstance(result, AlertFailed):
                outcome.failed.append(f"alert {record.alert_id}: {result}")
            elif isinstance(result, Deferred):
                outcome.deferred.append(f"alert {record.alert_id}: {result.reason}")
            else:
                outcome.delivered.append(result)
    finally:
        delivery.close()
        if transport is not None:
            transport.close()
    return outcome

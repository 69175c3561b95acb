"""The alert queue's message: which alert to deliver, and nothing about any tenant.

Version 1 (`partnerguard.alert/v1`), exactly these keys:

    {"schema": "partnerguard.alert/v1", "partition": "r-|t-|w-<32 hex>", "alert_id": "<alert id>",
     "deferrals": <int ≥ 0>}

The alert row (partnerguard/storage/alert_outbox.py) is written before its message, so the worker
always finds it and a redelivered message is harmless. `deferrals` counts how often ACS asked us
to wait (429): the worker re-queues the message with a delay instead of failing the attempt,
so throttling never uses up the host's `maxDequeueCount`, and gives up after MAX_DEFERRALS.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from partnerguard.alerts.policy import AlertRef
from partnerguard.queues.documents import MalformedMessage, decode_document
from partnerguard.storage.alert_outbox import ALERT_ID_RE, DONE_STATES, PARTITION_RE, AlertRecord, AlertStore

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

SCHEMA = "partnerguard.alert/v1"
# With back-off capped at an hour, about two days of ACS refusing us before the alert fails.
MAX_DEFERRALS = 60
_KEYS = frozenset({"schema", "partition", "alert_id", "deferrals"})


@dataclass(frozen=True)
class AlertMessage:
    ref: AlertRef
    deferrals: int = 0

    def to_json(self) -> str:
        document = {
            "schema": SCHEMA,
            "partition": self.ref.partition,
            "alert_id": self.ref.alert_id,
            "deferrals": self.deferrals,
        }
        return json.dumps(document, separators=(",", ":"))


def parse_alert_message(body: str | bytes) -> AlertMessage:
    """The message as the host hands it over (base64 already decoded), strictly checked."""
    document = decode_document(body, SCHEMA, _KEYS)
    partition, alert_id, deferrals = document["partition"], document["alert_id"], document["deferrals"]
    if not isinstance(partition, str) or not PARTITION_RE.fullmatch(partition):
        raise MalformedMessage("partition is not a destination key (r-, t- or w- and 32 hex digits)")
    if not isinstance(alert_id, str) or not ALERT_ID_RE.fullmatch(alert_id):
        raise MalformedMessage("alert_id is not an alert id")
    if isinstance(deferrals, bool) or not isinstance(deferrals, int) or not 0 <= deferrals <= MAX_DEFERRALS:
        raise MalformedMessage(f"deferrals is not a whole number from 0 to {MAX_DEFERRALS}")
    return AlertMessage(AlertRef(partition, alert_id), deferrals)


def send_alert_message(client: QueueClient, message: AlertMessage, delay_seconds: int = 0) -> None:
    """Queue `message`, invisible for `delay_seconds` (the back-off after ACS throttled)."""
    client.send_message(message.to_json(), visibility_timeout=delay_seconds or None)


# How long a queued alert may wait for its worker before the timer queues it again: well past
# the queue's polling and a worker's retries, well inside the schedule.
GRACE = timedelta(minutes=15)


def queue_owed(
    alerts: AlertStore, queue: QueueClient, owed: Iterable[AlertRecord], now: datetime, delay_seconds: int = 0
) -> int:
    """Queue one message for each owed alert that has none on its way; returns how many.

    An alert remembers when its message should have been handled (`next_attempt`): an alert
    noticed again while its message is in flight (the next timer tick, a redelivered scan
    message) is not queued twice, and one whose message was lost is queued again after GRACE.
    Duplicates would still be harmless (delivery is exactly once); this keeps them rare."""
    queued = 0
    for record in owed:
        if record.state in DONE_STATES or (record.next_attempt is not None and record.next_attempt > now):
            continue
        send_alert_message(queue, AlertMessage(AlertRef.of(record)), delay_seconds)
        alerts.schedule(record, now + timedelta(seconds=delay_seconds) + GRACE)
        queued += 1
    return queued

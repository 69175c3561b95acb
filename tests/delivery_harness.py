"""What the delivery tests share (tests/test_alerts_ambiguous_sends.py and the CLI's settle-window
tests): a clock the test moves (never a frozen one: leases run out and settle windows pass only
when the test says so), alerts owed on Azurite, and an in-process ACS whose every call a test can
script — accept then fail, stall while another worker runs, refuse the caller.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from azure.data.tables import TableServiceClient

from notifiers.alert_transport import Lookup, SendUnavailable
from notifiers.digest_email import RenderedEmail
from notifiers.health_email import HealthProblem
from partnerguard.alerts.policy import HealthIncident, record_health
from partnerguard.settings import Settings
from partnerguard.storage import ScanStore
from partnerguard.storage.alert_outbox import AlertRecord, AlertStore

START = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
RECIPIENT = "secops@contoso.example"


class ManualClock:
    """Now, as the test sets it: moved by `advance`, or by code that sleeps through `sleep`."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def sleep(self, seconds: float) -> None:
        """A sleep that takes no real time: the clock moves instead."""
        self.slept.append(seconds)
        self.advance(seconds)

    def seconds(self) -> float:
        """Monotonic seconds for the ACS fake's lookup lag (`AcsEmailFake(clock=...)`)."""
        return (self.now - START).total_seconds()


def settings_for(settle_seconds: int | None = None, **extra: str) -> Settings:
    environment = {
        "PARTNERGUARD_STORAGE": "UseDevelopmentStorage=true",
        "ALERT_RECIPIENTS": RECIPIENT,
        "EMAIL_OUTBOX_DIR": "/nonexistent/outbox",  # not used: the tests hand the delivery a transport
        **extra,
    }
    if settle_seconds is not None:
        environment["ALERT_SETTLE_SECONDS"] = str(settle_seconds)
    return Settings.from_env(environment)


def alert_stores(connection_string: str, prefix: str) -> Iterator[tuple[ScanStore, AlertStore]]:
    """A scan store and an alert outbox on Azurite under `prefix` (for a fixture)."""
    service = TableServiceClient.from_connection_string(connection_string)
    store = ScanStore(service, prefix=prefix)
    store.ensure_tables()
    alerts = AlertStore(service, prefix)
    alerts.ensure_tables()
    yield store, alerts
    service.delete_table(alerts.table.table_name)
    store.close()


def owe(settings: Settings, alerts: AlertStore, count: int, now: datetime) -> list[AlertRecord]:
    """`count` health alerts for one recipient set, each naming its own problem."""
    tag = uuid.uuid4().hex[:6]
    incidents = [
        HealthIncident(
            HealthProblem(kind="poison", tenant_id=None, tenant_name=None, detail=f"problem-{tag}-{i}", since=now),
            f"queue{i}",
            f"{tag}{i}",
        )
        for i in range(count)
    ]
    return record_health(settings, alerts, incidents, now)


def problem(record: AlertRecord) -> str:
    return str(record.payload["problems"][0]["detail"])


Hook = Callable[[str], None]


@dataclass
class ScriptedAcs:
    """ACS Email in process, as `EmailTransport`. Without a script it accepts every send and knows
    every accepted operation; `sends` scripts the next sends' outcomes in order ("202",
    "accept-500": taken and answered 500, "refuse-500": not taken, or an exception to raise);
    `on_lookup` / `on_send` run at the start of the next call (another worker's turn, the clock
    moving); `in_flight` runs while a send is on its way, before ACS takes it."""

    accepted: dict[str, datetime] = field(default_factory=dict)
    emails: list[tuple[str, str]] = field(default_factory=list)  # (operation id, text)
    sends: list[str | Exception] = field(default_factory=list)
    on_lookup: list[Hook] = field(default_factory=list)
    on_send: list[Hook] = field(default_factory=list)
    in_flight: list[Hook] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)
    name: str = "scripted ACS"

    def lookup(self, operation_id: str) -> Lookup:
        self.lookups.append(operation_id)
        if self.on_lookup:
            self.on_lookup.pop(0)(operation_id)
        return Lookup("accepted" if operation_id in self.accepted else "unknown")

    def send(self, operation_id: str, recipients: Sequence[str], email: RenderedEmail) -> str | None:
        if self.on_send:
            self.on_send.pop(0)(operation_id)
        outcome = self.sends.pop(0) if self.sends else "202"
        if isinstance(outcome, Exception):
            raise outcome
        if self.in_flight:
            self.in_flight.pop(0)(operation_id)
        if outcome == "refuse-500":
            raise SendUnavailable("ACS answered 500 to the send")
        self.accepted[operation_id] = START
        self.emails.append((operation_id, email.text))
        if outcome == "accept-500":
            raise SendUnavailable("ACS answered 500 to the send")
        return None

    def mentions(self, record: AlertRecord) -> int:
        """How many accepted emails tell the alert's problem."""
        return sum(1 for _, text in self.emails if problem(record) in text)

    def close(self) -> None:
        return None

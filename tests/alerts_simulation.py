"""A deterministic simulation of the alert path (issue 15): seeded random schedules over the real
delivery code, counting the emails each alert ends up in.

What is real: the alert worker (`partnerguard.alert_jobs.process_alert_message`, with its
deferrals, poison and give-up), the delivery (`partnerguard.alerts.delivery`), the outbox
(`partnerguard.storage.alert_outbox.AlertStore`), the policy that records health alerts and the
timer's sweep of alerts whose message was lost (`partnerguard.alerts.messages.queue_owed`).
What is simulated, on one clock the schedule moves (`SimClock`, whole seconds):

- **Table Storage**: `tests/memory_tables.py` (ETags, conditional updates, queries), which
  tests/test_memory_tables.py holds to Azurite's answers; a schedule can run on Azurite too;
- **the queue and the Functions host**: messages with visibility times and dequeue counts; a
  message whose invocation raised comes back after `visibilityTimeout`, one whose worker died
  after its lease; after `maxDequeueCount` deliveries it goes to the poison queue; a message
  can be lost outright (the timer's sweep must queue its alert again);
- **ACS Email** (`SimAcs`): a send may be accepted and answered 202, accepted and answered
  500, accepted and never answered (the client times out), refused with 5xx before acceptance,
  never reach the service (connection refused), or be answered 429 or 401/403; a lookup may
  fail with 429, 5xx or 401/403, and does not know an accepted operation for a lag after
  accepting it — a lag usually inside ALERT_SETTLE_SECONDS and sometimes beyond it (ACS
  forgetting, Azure/azure-sdk-for-python#35849).

**Schedules.** Two or three workers and a timer run as threads, but only one at a time: every
storage call, queue send and ACS call is a step at which the scheduler (a seeded
`random.Random`) decides who moves next — another worker, the timer, the clock (by seconds or by
many minutes, so leases run out mid-delivery and settle windows pass), a lost message, or a crash
of the worker at that step (a `BaseException`: no handler of the product runs, as when a process
dies). The one bound on the clock is the one the product relies on: a send ends within its
client timeouts (10 s to connect, 60 s to read) of the write that renewed its lease. After the
faulty phase comes a healthy one (no new faults) that runs until nothing is owed.

**What is counted.** Every email ACS accepted, and the alerts it carried (read from the email's
text). An alert is *lost* when no email carried it and it is not recorded `failed` (or when it
is recorded `sent` and no email carried it). A *duplicate* is a second email carrying an alert;
it is *inside the documented window* when ACS, asked about an operation that carried the alert
at least ALERT_SETTLE_SECONDS after accepting it, answered that it never saw it — the one case
the guarantee allows (docs/reliability.md) — and *outside* it otherwise (a bug).

`python -m tests.alerts_simulation --schedules 10000` is `make soak`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import re
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from azure.core.exceptions import ServiceResponseError

from notifiers.acs import CONNECTION_TIMEOUT, READ_TIMEOUT
from notifiers.alert_transport import Lookup, SendDenied, SendThrottled, SendUnavailable
from notifiers.digest_email import RenderedEmail
from notifiers.health_email import HealthProblem
from partnerguard import alert_jobs
from partnerguard.alerts.delivery import AlertDelivery
from partnerguard.alerts.messages import queue_owed
from partnerguard.alerts.policy import HealthIncident, record_health
from partnerguard.host_config import HostConfig
from partnerguard.settings import Settings
from partnerguard.storage import ScanStore
from partnerguard.storage.alert_outbox import EMAIL_PREFIX, EMAIL_SENDING, AlertStore
from tests.memory_tables import MemoryTableService

START = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
RECIPIENT = "secops@contoso.example"
TENANT_RECIPIENT = "northwind-admins@contoso.example"
TENANT = "b2b2b2b2-0000-4000-8000-000000000002"
# A send ends within its client timeouts (notifiers/acs.py) of the lease renewal before it.
SEND_BOUND = timedelta(seconds=CONNECTION_TIMEOUT + READ_TIMEOUT)
# The Functions host: a message is retried after visibilityTimeout (host.json); the message of a
# worker that died comes back when the queue trigger's own message lease runs out.
VISIBILITY = timedelta(minutes=1)
CRASH_VISIBILITY = timedelta(minutes=10)
MAX_DEQUEUE = 5
SETTLE_CHOICES = (30, 120, 300)
FAULT_STEPS = 260
HEAL_LIMIT = 6000
TAG_RE = re.compile(r"sim-alert-\d+")
# The seeds `make test` runs (tests/test_faults_alert_simulation.py); the soak runs these and more.
TEST_SCHEDULES = 120
SOAK_SCHEDULES = 10_000
SOAK_RESULTS = Path(__file__).resolve().parent / "alert_simulation_soak.json"


class Crash(BaseException):
    """The worker's process died at this step: nothing of the product's handles it."""


class StorageFault(ServiceResponseError):
    """A storage call that failed, before reaching the table or after its write landed."""


class SimClock:
    """The schedule's clock: moved forward by the scheduler, in whole seconds, never by itself."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)


# -- actors and steps ---------------------------------------------------------------------------

_local = threading.local()


class Actor:
    """A worker (or the timer, or the producer of new alerts): a thread that runs one job at a
    time, and stops at every step until the scheduler lets it go on."""

    def __init__(self, name: str, sim: Simulation) -> None:
        self.name = name
        self.sim = sim
        self.turn = threading.Semaphore(0)
        self.job: Callable[[], Any] | None = None
        self.busy = False
        self.step = ""
        self.crash_next = False
        self.stopping = False
        self.outcome: tuple[str, Any] | None = None
        # While a send is in flight: the clock may not pass this (SEND_BOUND after the renewal).
        self.deadline: datetime | None = None
        self.thread = threading.Thread(target=self._run, name=f"sim-{name}", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        _local.actor = self
        while True:
            self.turn.acquire()
            if self.stopping:
                return
            job = self.job
            assert job is not None
            try:
                self.outcome = ("done", job())
            except Crash:
                self.outcome = ("crashed", None)
            except BaseException as error:
                self.outcome = ("raised", error)
            self.busy, self.job, self.step, self.deadline = False, None, "", None
            self.sim.baton.release()

    def pause(self, step: str) -> None:
        """Called on this actor's thread at a step: hand over, wait for the turn."""
        self.step = step
        self.sim.baton.release()
        self.turn.acquire()
        if self.crash_next:
            self.crash_next = False
            self.deadline = None
            raise Crash(step)

    def start(self, job: Callable[[], Any]) -> None:
        self.job, self.busy, self.outcome = job, True, None
        self.sim.run_turn(self)

    def stop(self) -> None:
        self.stopping = True
        self.turn.release()
        self.thread.join(timeout=5)


def step(name: str) -> None:
    """A point where the scheduler may switch actors, move the clock, or crash this actor."""
    actor: Actor | None = getattr(_local, "actor", None)
    if actor is not None and actor.sim.stepping:
        actor.pause(name)


# -- storage with steps -------------------------------------------------------------------------


class SteppedTable:
    """A table client whose every call is one step (atomic, as one HTTP request is), and which
    notices the write that renews a lease right before a send (the send's clock bound starts
    there). With `trace`, it records each call and its answer (tests/test_memory_tables.py)."""

    def __init__(self, inner: Any, sim: Simulation | None, trace: list[Any] | None = None) -> None:
        self.inner = inner
        self.sim = sim
        self.trace = trace
        self.table_name = inner.table_name

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        step(f"table.{method}")
        fault = self.sim.draw_storage_fault() if self.sim is not None else None
        try:
            if fault == "before":
                raise StorageFault(f"storage unreachable ({method})")
            result = getattr(self.inner, method)(*args, **kwargs)
            if method in ("query_entities", "list_entities"):
                result = list(result)
            if fault == "after":
                raise StorageFault(f"the answer to {method} was lost")
        except Exception as error:
            if self.trace is not None:
                self.trace.append((method, _summary(args, kwargs), "raised", type(error).__name__))
            raise
        if self.trace is not None:
            answer = _answer(result) if method in ("get_entity", "query_entities", "list_entities") else "ok"
            self.trace.append((method, _summary(args, kwargs), "answered", answer))
        if method == "update_entity" and self.sim is not None and "attempt_started" in args[0]:
            self.sim.send_window_opened()
        return result

    def create_entity(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("create_entity", *args, **kwargs)

    def get_entity(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("get_entity", *args, **kwargs)

    def update_entity(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("update_entity", *args, **kwargs)

    def upsert_entity(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("upsert_entity", *args, **kwargs)

    def delete_entity(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("delete_entity", *args, **kwargs)

    def query_entities(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("query_entities", *args, **kwargs)

    def list_entities(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("list_entities", *args, **kwargs)

    def submit_transaction(self, *args: Any, **kwargs: Any) -> Any:
        return self._call("submit_transaction", *args, **kwargs)

    def close(self) -> None:
        self.inner.close()


class SteppedService:
    def __init__(self, inner: Any, sim: Simulation | None, trace: list[Any] | None = None) -> None:
        self.inner = inner
        self.sim = sim
        self.trace = trace

    def get_table_client(self, name: str) -> SteppedTable:
        return SteppedTable(self.inner.get_table_client(name), self.sim, self.trace)

    def create_table_if_not_exists(self, name: str) -> None:
        self.inner.create_table_if_not_exists(name)

    def close(self) -> None:
        return None


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in sorted(value.items()) if k not in ("etag", "date", "version")}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    return type(value).__name__


def _summary(args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    return _plain({"args": list(args), **{k: v for k, v in kwargs.items() if k not in ("etag", "match_condition")}})


def _answer(result: Any) -> Any:
    if isinstance(result, list):
        return [_answer(item) for item in result]
    if isinstance(result, dict):
        # An entity's properties (its ETag's value differs between backends; that it changes
        # is what the traces compare, through the conditional updates' answers).
        return _plain(dict(result))
    return _plain(result)


# -- the queue and the host ---------------------------------------------------------------------


@dataclass
class QueuedMessage:
    id: str
    content: str
    visible_at: datetime
    dequeue_count: int = 0


class SimQueue:
    """A queue as QueueClient's `send_message` sees it; the host side is `Simulation`."""

    def __init__(self, sim: Simulation, name: str) -> None:
        self.sim = sim
        self.name = name
        self.messages: list[QueuedMessage] = []

    def send_message(self, content: str, visibility_timeout: int | None = None, **_: Any) -> None:
        step(f"queue.{self.name}.send")
        self.sim.queued_message(self, content, visibility_timeout or 0)


# -- ACS Email ----------------------------------------------------------------------------------


@dataclass
class Accepted:
    at: datetime
    lag: int  # seconds during which lookups answer 404
    tags: tuple[str, ...]


class SimAcs:
    """ACS Email as the delivery sees it through `EmailTransport` (see the module docstring)."""

    name = "Azure Communication Services (simulated)"

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self.accepted: dict[str, Accepted] = {}
        self.emails: list[tuple[str, tuple[str, ...]]] = []
        # Operations ACS said it never saw at least ALERT_SETTLE_SECONDS after accepting them.
        self.forgotten: dict[str, int] = {}

    def lookup(self, operation_id: str) -> Lookup:
        step("acs.lookup")
        sim = self.sim
        fault = sim.draw_fault("lookup")
        if fault == "429":
            raise SendThrottled("ACS answered 429 to the lookup", float(sim.rng.choice((1, 5, 30))))
        if fault == "503":
            raise SendUnavailable("ACS answered 503 to the lookup")
        if fault == "401":
            raise SendDenied("ACS answered 401 to the lookup")
        known = self.accepted.get(operation_id)
        now = sim.clock()
        if known is not None and now >= known.at + timedelta(seconds=known.lag):
            return Lookup("delivered" if sim.rng.random() < 0.5 else "accepted")
        if known is not None:
            sim.count("lookup answered 404 for an accepted operation")
            if now - known.at >= timedelta(seconds=sim.settle):
                self.forgotten[operation_id] = self.forgotten.get(operation_id, 0) + 1
        return Lookup("unknown")

    def send(self, operation_id: str, recipients: Sequence[str], email: RenderedEmail) -> str | None:
        step("acs.send")  # the request is about to leave
        sim = self.sim
        outcome = sim.draw_fault("send") or "202"
        if outcome in ("202", "accept-500", "accept-hang"):
            tags = tuple(sorted(set(TAG_RE.findall(email.text))))
            self.accepted[operation_id] = Accepted(sim.clock(), sim.draw_lag(), tags)
            self.emails.append((operation_id, tags))
        step("acs.in-flight")  # the answer is on its way (bounded: SEND_BOUND)
        sim.send_window_closed()
        if outcome == "202":
            return None
        if outcome == "accept-500":
            raise SendUnavailable("ACS answered 500 to the send")
        if outcome == "accept-hang":
            raise SendUnavailable("ACS did not answer the send: ServiceResponseTimeoutError")
        if outcome == "refuse-503":
            raise SendUnavailable("ACS answered 503 to the send")
        if outcome == "refuse-connect":
            raise SendUnavailable("ACS could not be reached for the send: ServiceRequestError", ambiguous=False)
        if outcome == "429":
            raise SendThrottled("ACS answered 429 to the send", float(sim.rng.choice((1, 10, 60))))
        if outcome == "401":
            raise SendDenied("ACS answered 401 to the send")
        raise AssertionError(outcome)

    def close(self) -> None:
        return None


# -- the schedule -------------------------------------------------------------------------------

# Per call, while the schedule is faulty.
SEND_FAULTS = (
    ("accept-500", 0.10),
    ("accept-hang", 0.08),
    ("refuse-503", 0.08),
    ("refuse-connect", 0.04),
    ("429", 0.08),
    ("401", 0.03),
)
LOOKUP_FAULTS = (("429", 0.05), ("503", 0.07), ("401", 0.02))
CRASH_RATE = 0.03
STORAGE_FAULT_RATE = 0.01  # of storage calls: fails, half of them after the write landed
LOSE_RATE = 0.05  # of queue sends: a message that never arrives


@dataclass
class Outcome:
    """One schedule's figures."""

    seed: int
    settle: int
    workers: int
    alerts: int = 0
    emails: int = 0
    emails_per_alert: dict[int, int] = field(default_factory=dict)
    lost: int = 0
    failed_visibly: int = 0
    failed_but_delivered: int = 0  # recorded failed although an email carried it (a false alarm)
    duplicates_outside_window: int = 0
    duplicates_inside_window: int = 0
    stuck: bool = False
    faults: dict[str, int] = field(default_factory=dict)
    # Exceptions an actor raised that no fault explains (a bug): must stay empty.
    unexpected: list[str] = field(default_factory=list)
    fingerprint: str = ""


class Simulation:
    def __init__(
        self, seed: int, table_service: Any | None = None, trace: list[Any] | None = None, prefix: str | None = None
    ) -> None:
        import random

        self.seed = seed
        self.rng = random.Random(seed)
        self.settle = self.rng.choice(SETTLE_CHOICES)
        self.clock = SimClock()
        self.faulty = True
        self.stepping = False
        self.baton = threading.Semaphore(0)
        self.faults: Counter[str] = Counter()
        self.unexpected: list[str] = []
        self.queue = SimQueue(self, "alerts")
        self.poison = SimQueue(self, "alerts-poison")
        self.in_flight: dict[str, QueuedMessage] = {}  # actor name -> message it handles
        self._message_ids = 0
        self._alert_numbers = 0
        self.tags: list[str] = []
        self.acs = SimAcs(self)
        settings = Settings.from_env(
            {
                "PARTNERGUARD_STORAGE": "UseDevelopmentStorage=true",
                "ALERT_RECIPIENTS": RECIPIENT,
                "ALERT_RECIPIENTS_BY_TENANT": json.dumps({TENANT: [TENANT_RECIPIENT]}),
                "EMAIL_OUTBOX_DIR": "/nonexistent/outbox",  # not used: SimAcs is the transport
                "ALERT_SETTLE_SECONDS": str(self.settle),
            }
        )
        self.settings = settings
        self.memory = MemoryTableService() if table_service is None else None
        backend = table_service if table_service is not None else self.memory
        self.service = SteppedService(backend, self, trace)
        self.alerts = AlertStore(cast(Any, self.service), prefix or f"sim{seed}")
        self.alerts.ensure_tables()
        self.store = ScanStore(cast(Any, MemoryTableService()), prefix="simscan")
        self.host = HostConfig(timedelta(minutes=30), MAX_DEQUEUE, VISIBILITY)
        workers = self.rng.choice((2, 3))
        self.workers = [Actor(f"worker{n}", self) for n in range(workers)]
        self.timer = Actor("timer", self)
        self.producer = Actor("producer", self)

    # -- what the product calls (as `Services`) --

    def alert_queue(self) -> SimQueue:
        return self.queue

    def alert_poison_queue(self) -> SimQueue:
        return self.poison

    def delivery(self) -> AlertDelivery:
        return AlertDelivery(self.settings, self.store, self.alerts, self.acs, self.clock)

    # -- faults --

    def count(self, kind: str) -> None:
        self.faults[kind] += 1

    def draw_fault(self, call: str) -> str | None:
        if not self.faulty:
            return None
        draw = self.rng.random()
        for kind, rate in SEND_FAULTS if call == "send" else LOOKUP_FAULTS:
            if draw < rate:
                self.count(f"{call} {kind}")
                return kind
            draw -= rate
        return None

    def draw_storage_fault(self) -> str | None:
        if not (self.faulty and self.stepping) or self.rng.random() >= STORAGE_FAULT_RATE:
            return None
        where = "before" if self.rng.random() < 0.5 else "after"
        self.count(f"storage call failed ({'before' if where == 'before' else 'after'} the table)")
        return where

    def draw_lag(self) -> int:
        """How long lookups will not know a just-accepted operation."""
        if not self.faulty:
            return 0
        draw = self.rng.random()
        if draw < 0.4:
            return 0
        if draw < 0.96:
            # Mostly near the end of the window: the edge the settle rule must hold at.
            return self.rng.randint(max(1, self.settle // 2), max(1, self.settle - 1))
        self.count("ACS forgot an accepted operation past ALERT_SETTLE_SECONDS")
        return self.rng.randint(self.settle + 1, self.settle * 3)

    # -- the send's clock bound --

    def send_window_opened(self) -> None:
        actor: Actor | None = getattr(_local, "actor", None)
        if actor is not None:
            actor.deadline = self.clock() + SEND_BOUND

    def send_window_closed(self) -> None:
        actor: Actor | None = getattr(_local, "actor", None)
        if actor is not None:
            actor.deadline = None

    # -- the queue and the host --

    def queued_message(self, queue: SimQueue, content: str, delay: int) -> None:
        if self.faulty and queue is self.queue and self.rng.random() < LOSE_RATE:
            self.count("queue message lost")
            return
        self._message_ids += 1
        queue.messages.append(QueuedMessage(f"m{self._message_ids}", content, self.clock() + timedelta(seconds=delay)))

    def _visible(self) -> list[QueuedMessage]:
        now = self.clock()
        handled = [id(m) for m in self.in_flight.values()]  # the host keeps these leased
        ready = (m for m in self.queue.messages if m.visible_at <= now and id(m) not in handled)
        return sorted(ready, key=lambda m: (m.visible_at, m.id))

    def _deliver(self, worker: Actor, message: QueuedMessage) -> None:
        """The host hands `message` to `worker` (see `_finished` for what happens after)."""
        message.dequeue_count += 1
        self.in_flight[worker.name] = message

        def job() -> Any:
            return _run_coroutine(
                alert_jobs.process_alert_message(
                    cast(Any, self), message.content, message_id=message.id, dequeue_count=message.dequeue_count
                )
            )

        worker.start(job)

    def _finished(self, worker: Actor) -> None:
        message = self.in_flight.pop(worker.name, None)
        if worker.outcome is not None and worker.outcome[0] == "raised":
            # A job may raise what the storage fault raised (the host retries it); anything else
            # is a bug.
            error = worker.outcome[1]
            if not isinstance(error, StorageFault):
                self.unexpected.append(f"{worker.name}: {type(error).__name__}: {error}")
        if message is None or worker.outcome is None:
            return
        kind, _ = worker.outcome
        if kind == "done":
            self.queue.messages.remove(message)
            return
        if kind == "crashed":
            self.count("worker crashed")
            message.visible_at = self.clock() + CRASH_VISIBILITY  # when the host's lease runs out
        elif kind == "raised":
            message.visible_at = self.clock() + VISIBILITY
        if message.dequeue_count >= MAX_DEQUEUE:
            self.queue.messages.remove(message)
            self.poison.messages.append(message)
            self.count("message poisoned by the host")

    # -- the scheduler --

    def run_turn(self, actor: Actor) -> None:
        actor.turn.release()
        self.baton.acquire()
        if not actor.busy:
            self._finished(actor)

    def _paused(self) -> list[Actor]:
        return [a for a in (*self.workers, self.timer, self.producer) if a.busy]

    def _advance(self, seconds: int) -> bool:
        deadlines = [a.deadline for a in self._paused() if a.deadline is not None]
        if deadlines:
            seconds = min(seconds, int((min(deadlines) - self.clock()).total_seconds()))
        if seconds <= 0:
            return False
        before = self.clock()
        self.clock.advance(seconds)
        self._count_lapsed_leases(before, self.clock())
        return True

    def _count_lapsed_leases(self, before: datetime, after: datetime) -> None:
        """Leases that ran out while their email was still `sending` (read past the steps)."""
        table = self.service.inner.get_table_client(self.alerts.table.table_name)
        for row in table.query_entities("state eq @sending", parameters={"sending": EMAIL_SENDING}):
            until = row.get("lease_until")
            if str(row["RowKey"]).startswith(EMAIL_PREFIX) and until is not None and before < until <= after:
                self.count("lease ran out while held")

    def _new_alert(self) -> None:
        self._alert_numbers += 1
        tag = f"sim-alert-{self._alert_numbers}"
        self.tags.append(tag)
        for_tenant = self._alert_numbers % 3 == 0
        problem = HealthProblem(
            kind="stale" if for_tenant else "poison",
            tenant_id=TENANT if for_tenant else None,
            tenant_name="Northwind" if for_tenant else None,
            detail=f"{tag}: no successful scan" if for_tenant else f"{tag}: messages in a poison queue",
            since=START,
        )
        now = self.clock()
        owed = record_health(self.settings, self.alerts, [HealthIncident(problem, tag, tag)], now)
        queue_owed(self.alerts, cast(Any, self.queue), owed, now)

    def _sweep(self) -> None:
        now = self.clock()
        queue_owed(self.alerts, cast(Any, self.queue), self.alerts.due(now), now)

    def _act(self) -> None:
        """One scheduler decision in the faulty phase."""
        rng = self.rng
        paused = self._paused()
        idle = [w for w in self.workers if not w.busy]
        visible = self._visible()
        choices: list[tuple[str, float]] = [("advance", 3.0)]
        if paused:
            choices.append(("resume", 10.0))
        if idle and visible:
            choices.append(("dispatch", 4.0))
        if not self.timer.busy:
            choices.append(("timer", 0.4))
        if not self.producer.busy and self._alert_numbers < 6:
            choices.append(("produce", 0.5))
        total = sum(weight for _, weight in choices)
        draw = rng.random() * total
        action = choices[-1][0]
        for name, weight in choices:
            if draw < weight:
                action = name
                break
            draw -= weight
        if action == "resume":
            actor = rng.choice(paused)
            if actor is not self.producer and rng.random() < CRASH_RATE:
                actor.crash_next = True
                if actor is self.timer:
                    self.count("timer crashed")
            self.run_turn(actor)
        elif action == "dispatch":
            self._deliver(rng.choice(idle), visible[0])
        elif action == "timer":
            self.timer.start(self._sweep)
        elif action == "produce":
            self.producer.start(self._new_alert)
        else:
            kind = rng.random()
            if kind < 0.65:
                seconds = rng.randint(1, 10)
            elif kind < 0.9:
                seconds = rng.randint(10, 90)
            elif kind < 0.98:
                seconds = rng.randint(90, 600)  # past a lease: a worker paused, a slow call
            else:
                seconds = rng.randint(600, 5400)
            self._advance(seconds)

    def _heal(self) -> bool:
        """The healthy phase: no new faults; run until nothing is owed. False when stuck."""
        self.faulty = False
        for _ in range(HEAL_LIMIT):
            paused = self._paused()
            if paused:
                self.run_turn(paused[0])
                continue
            visible = self._visible()
            if visible:
                self._deliver(self.workers[0], visible[0])
                continue
            pending = [a for a in self.alerts_now() if a.state == "pending"]
            if not pending:
                return True
            upcoming = sorted(m.visible_at for m in self.queue.messages)
            if upcoming:
                self._advance(max(1, int((upcoming[0] - self.clock()).total_seconds())))
                continue
            # Nothing queued and something owed: its message was lost; the timer queues it again
            # once it is due.
            self._advance(int(timedelta(minutes=16).total_seconds()))
            self.timer.start(self._sweep)
        return False

    def alerts_now(self) -> list[Any]:
        stepping, self.stepping = self.stepping, False
        try:
            return self.alerts.all()
        finally:
            self.stepping = stepping

    def run(self) -> Outcome:
        outcome = Outcome(self.seed, self.settle, len(self.workers))
        with _product_patched(self.rng), _quiet():
            try:
                for _ in range(3):
                    self._new_alert()
                self.stepping = True
                for _ in range(FAULT_STEPS):
                    self._act()
                outcome.stuck = not self._heal()
            finally:
                self.stepping = False
                for actor in (*self.workers, self.timer, self.producer):
                    if actor.busy:
                        actor.crash_next = True
                        self.run_turn(actor)
                    actor.stop()
        return self._score(outcome)

    def _score(self, outcome: Outcome) -> Outcome:
        carried: Counter[str] = Counter()
        operations_of: dict[str, list[str]] = {}
        for operation_id, tags in self.acs.emails:
            for tag in tags:
                carried[tag] += 1
                operations_of.setdefault(tag, []).append(operation_id)
        states = {_tag_of(alert): alert.state for alert in self.alerts_now()}
        # What is owed is what was recorded: news whose recording failed (a storage fault) was
        # never owed (the monitor notices it again at its next tick).
        self.tags = [tag for tag in self.tags if tag in states]
        per_alert: Counter[int] = Counter()
        for tag in self.tags:
            emails = carried[tag]
            per_alert[emails] += 1
            state = states.get(tag)
            if emails == 0 and state != "failed":
                outcome.lost += 1
            elif emails == 0:
                outcome.failed_visibly += 1
            elif state == "failed":
                outcome.failed_but_delivered += 1
            if emails > 1:
                forgotten = any(op in self.acs.forgotten for op in operations_of[tag])
                if forgotten:
                    outcome.duplicates_inside_window += emails - 1
                else:
                    outcome.duplicates_outside_window += emails - 1
        if outcome.stuck:
            outcome.lost += sum(1 for tag in self.tags if states.get(tag) == "pending")
        outcome.alerts = len(self.tags)
        outcome.emails = len(self.acs.emails)
        outcome.emails_per_alert = dict(sorted(per_alert.items()))
        outcome.faults = dict(sorted(self.faults.items()))
        outcome.unexpected = list(self.unexpected)
        fingerprint = json.dumps(
            [
                outcome.settle,
                outcome.workers,
                [(tag, carried[tag], states.get(tag)) for tag in self.tags],
                [list(email) for email in self.acs.emails],
                outcome.faults,
            ]
        )
        outcome.fingerprint = hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
        return outcome


def _tag_of(alert: Any) -> str:
    found = TAG_RE.search(json.dumps(alert.payload))
    return found.group(0) if found else alert.alert_id


def _run_coroutine(coroutine: Any) -> Any:
    """Run a coroutine that never waits (its `to_thread` calls run inline) to its end."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("the simulated worker waited for something")


async def _inline(function: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    return function(*args, **kwargs)


@contextmanager
def _quiet() -> Iterator[None]:
    """The product's warnings (thousands per run: every deferral says so) are not wanted here."""
    logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


@contextmanager
def _product_patched(rng: Any) -> Iterator[None]:
    """The worker's `asyncio.to_thread` runs inline (one thread per simulated worker, so every
    step is seen) and its jitter comes from the schedule's seed."""
    saved = {name: getattr(alert_jobs, name) for name in ("asyncio", "random")}
    setattr(alert_jobs, "asyncio", SimpleNamespace(to_thread=_inline))  # noqa: B010
    setattr(alert_jobs, "random", SimpleNamespace(random=rng.random))  # noqa: B010
    try:
        yield
    finally:
        for name, module in saved.items():
            setattr(alert_jobs, name, module)


# -- many schedules -----------------------------------------------------------------------------


@dataclass
class Figures:
    schedules: int = 0
    alerts: int = 0
    emails: int = 0
    emails_per_alert: dict[str, int] = field(default_factory=dict)
    lost: int = 0
    failed_visibly: int = 0
    failed_but_delivered: int = 0
    duplicates_outside_window: int = 0
    duplicates_inside_window: int = 0
    stuck: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    unexpected: list[str] = field(default_factory=list)
    fingerprint: str = ""  # of every schedule's outcome, in seed order

    def add(self, outcome: Outcome, digest: Any) -> None:
        self.schedules += 1
        self.alerts += outcome.alerts
        self.emails += outcome.emails
        for emails, count in outcome.emails_per_alert.items():
            self.emails_per_alert[str(emails)] = self.emails_per_alert.get(str(emails), 0) + count
        self.lost += outcome.lost
        self.failed_visibly += outcome.failed_visibly
        self.failed_but_delivered += outcome.failed_but_delivered
        self.duplicates_outside_window += outcome.duplicates_outside_window
        self.duplicates_inside_window += outcome.duplicates_inside_window
        self.stuck += int(outcome.stuck)
        self.unexpected += [f"seed {outcome.seed}: {error}" for error in outcome.unexpected]
        for kind, count in outcome.faults.items():
            self.faults[kind] = self.faults.get(kind, 0) + count
        digest.update(outcome.fingerprint.encode())
        self.fingerprint = digest.hexdigest()[:16]

    @property
    def faults_injected(self) -> int:
        return sum(self.faults.values())


def simulate(schedules: int, first_seed: int = 0, progress: Callable[[int], None] | None = None) -> Figures:
    figures = Figures()
    digest = hashlib.sha256()
    figures.emails_per_alert = {}
    for seed in range(first_seed, first_seed + schedules):
        figures.add(Simulation(seed).run(), digest)
        if progress is not None:
            progress(seed)
    figures.emails_per_alert = dict(sorted(figures.emails_per_alert.items(), key=lambda item: int(item[0])))
    figures.faults = dict(sorted(figures.faults.items()))
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.alerts_simulation", description=__doc__.split("\n")[0])
    parser.add_argument("--schedules", type=int, default=SOAK_SCHEDULES)
    parser.add_argument("--write", action="store_true", help=f"write the figures to {SOAK_RESULTS.name}")
    args = parser.parse_args(argv)
    check = simulate(min(TEST_SCHEDULES, args.schedules))

    def progress(seed: int) -> None:
        if (seed + 1) % 1000 == 0:
            print(f"{seed + 1} schedules", file=sys.stderr)

    figures = simulate(args.schedules, progress=progress)
    document = {
        "schema": "partnerguard.alert-simulation/v1",
        "figures": asdict(figures),
        # What `make test` recomputes: the first schedules' outcomes come out the same, or these
        # figures are of another version of the code.
        "test_schedules": check.schedules,
        "test_fingerprint": check.fingerprint,
    }
    print(json.dumps(document, indent=2))
    failed = figures.lost or figures.duplicates_outside_window or figures.stuck or figures.unexpected
    if args.write and not failed:
        SOAK_RESULTS.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {SOAK_RESULTS}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

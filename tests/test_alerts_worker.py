"""The alert worker's paths that do not end in a plain send (partnerguard/alert_jobs.py), and
the timer's upkeep of the outbox, through the Functions entry points on Azurite, the tenant
simulator and the ACS fake: a lookup ACS throttles is deferred; deferrals run out into a
recorded failure and a poisoned message; the host's last attempt records the failure first; a
lost alert message is queued again by the timer; a self-check that fails fails the timer
invocation after the scans were queued."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from azure.functions.timer import TimerRequest

from partnerguard.alert_jobs import process_alert_message
from partnerguard.alerts.messages import MAX_DEFERRALS, AlertMessage
from partnerguard.alerts.policy import AlertRef
from partnerguard.graph import client as graph_client
from partnerguard.queues.names import ALERT_POISON_QUEUE, ALERT_QUEUE, SCAN_QUEUE
from partnerguard.scan_jobs import MonitorIncomplete
from partnerguard.storage.alert_outbox import AlertRecord, AlertStore
from testbed.azurite import AzuriteProcess
from testbed.simulator import TenantSimulator, generate_tenant
from tests.alerts_harness import AlertsEnv, alerts_env
from tests.functions_index import user_function
from tests.graph_sim import fast_pacer

pytestmark = [pytest.mark.azurite, pytest.mark.simulator]

CUSTOMER = "c3c3c3c3-0000-4000-8000-000000000003"


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[TenantSimulator]:
    monkeypatch.setattr(graph_client, "PROCESS_PACER", fast_pacer())
    tenant = generate_tenant(CUSTOMER, 20, seed=41, display_name="Tailspin", incapable=1)
    with TenantSimulator([tenant], enforce_limits=False) as simulator:
        yield simulator


@pytest.fixture
def env(azurite: AzuriteProcess, table_prefix: str, sim: TenantSimulator, tmp_path: Path) -> Iterator[AlertsEnv]:
    yield from alerts_env(azurite.connection_string, table_prefix, sim, tmp_path)


def scan_without_alerting(env: AlertsEnv) -> AlertRecord:
    """One tick whose alert message is taken off the queue unhandled; the alert it names."""
    env.functions.clock.advance(timedelta(hours=6))
    asyncio.run(user_function("scan_timer")(TimerRequest(past_due=False)))
    env.drain(SCAN_QUEUE, "scan_worker")
    assert len(env.functions.receive(ALERT_QUEUE)) == 1
    (alert,) = env.services.alerts.all()
    assert isinstance(alert, AlertRecord)
    return alert


def run_status(env: AlertsEnv, alert: AlertRecord) -> tuple[str, str | None]:
    """The `alert` of the run the alert is about (SPEC §4)."""
    assert alert.run_id is not None
    run = env.services.store.get_run(CUSTOMER, alert.run_id)
    assert run is not None
    return str(run.alert_status), run.alert_error


def handle(env: AlertsEnv, message: AlertMessage, dequeue_count: int = 1) -> str:
    outcome = asyncio.run(process_alert_message(env.services, message.to_json(), dequeue_count=dequeue_count))
    return outcome.action


def test_a_lookup_acs_throttles_is_deferred_and_then_delivered(env: AlertsEnv) -> None:
    alert = scan_without_alerting(env)
    # The lookup's own two retries (azure-core, honouring Retry-After) meet 429s as well.
    env.acs.fail_next(429, times=3, target="status", retry_after=1)

    assert handle(env, AlertMessage(AlertRef.of(alert))) == "deferred"
    assert env.acs.sent == []
    queue = env.functions.raw_queue(ALERT_QUEUE)
    assert queue.get_queue_properties().approximate_message_count == 1  # itself, later

    env.drain(ALERT_QUEUE, "alert_worker", wait_deferred=15)

    assert len(env.acs.sent) == 1 and run_status(env, alert) == ("sent", None)


def test_deferrals_run_out_into_a_recorded_failure_and_a_poisoned_message(env: AlertsEnv) -> None:
    alert = scan_without_alerting(env)
    env.acs.fail_next(503, times=3)  # ACS keeps failing (ACS's own retries are not used: 3 is plenty)

    assert handle(env, AlertMessage(AlertRef.of(alert), deferrals=MAX_DEFERRALS)) == "failed"

    status, error = run_status(env, alert)
    assert status == "failed" and error is not None and "503" in error
    (poisoned,) = env.functions.json_messages(ALERT_POISON_QUEUE)
    assert poisoned["reason"].startswith(f"still not delivered after {MAX_DEFERRALS} deferrals")
    assert env.acs.sent == []


def test_the_last_attempt_records_the_failure_before_the_host_poisons(
    env: AlertsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    alert = scan_without_alerting(env)

    def broken(self: AlertStore, partition: str, operation_id: str) -> list[AlertRecord]:
        raise ConnectionResetError("storage went away mid-delivery")

    monkeypatch.setattr(AlertStore, "claimed_by", broken)
    message = AlertMessage(AlertRef.of(alert))
    with pytest.raises(ConnectionResetError):
        handle(env, message, dequeue_count=1)
    assert run_status(env, alert)[0] == "pending"  # an earlier attempt: the host retries it

    with pytest.raises(ConnectionResetError):
        handle(env, message, dequeue_count=env.services.host.max_dequeue_count)

    status, error = run_status(env, alert)
    assert status == "failed" and error is not None and "ConnectionResetError" in error
    assert env.acs.sent == []


def test_a_lost_alert_message_is_queued_again_by_the_timer(env: AlertsEnv) -> None:
    alert = scan_without_alerting(env)  # its message is gone

    # Within the grace period the timer leaves it alone: its message may still be on its way.
    env.functions.clock.advance(timedelta(minutes=5))
    asyncio.run(user_function("scan_timer")(TimerRequest(past_due=False)))
    env.drain(SCAN_QUEUE, "scan_worker")
    assert env.acs.sent == []
    assert [m["alert_id"] for m in env.functions.json_messages(ALERT_QUEUE)] == []

    sent = env.cycle()  # hours later: queued again, delivered once

    assert len(sent) == 1 and run_status(env, alert) == ("sent", None)
    assert AlertRef.of(alert).alert_id.startswith(f"run~{CUSTOMER}~")


def test_a_failing_self_check_fails_the_timer_after_the_scans_were_queued(
    env: AlertsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreadable(self: AlertStore, now: object, limit: int = 500) -> list[AlertRecord]:
        raise PermissionError("this identity may not read the alerts table")

    monkeypatch.setattr(AlertStore, "due", unreadable)

    with pytest.raises(MonitorIncomplete, match="owed alerts"):
        asyncio.run(user_function("scan_timer")(TimerRequest(past_due=False)))

    assert len(env.functions.receive(SCAN_QUEUE)) == 1  # the scan was queued all the same


def test_an_email_acs_accepted_and_then_dropped_shows_as_failed_at_the_next_tick(env: AlertsEnv) -> None:
    env.acs.fail_next_operation("EmailDropped", "The recipient's server refused the message.")
    assert len(env.cycle()) == 1
    (alert,) = env.services.alerts.all()
    assert run_status(env, alert) == ("sent", None)  # accepted is all ACS said at the time

    env.cycle()  # the next tick looks again

    status, error = run_status(env, alert)
    assert status == "failed" and error is not None and "EmailDropped" in error
    (email,) = env.services.alerts.emails()
    assert (email.state, email.verified) == ("failed", True)
    assert len(env.acs.sent) == 1  # nothing re-sent


def test_a_delivered_email_is_confirmed_once_and_not_looked_up_again(env: AlertsEnv) -> None:
    env.cycle()
    env.cycle()
    lookups = sum(1 for r in env.acs.requests if r.method == "GET")
    env.cycle()

    (email,) = env.services.alerts.emails()
    assert (email.state, email.verified) == ("sent", True)
    assert sum(1 for r in env.acs.requests if r.method == "GET") == lookups

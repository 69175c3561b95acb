"""What the fault suites (tests/test_faults_*.py) share: the Functions app driven tick by tick as
the host drives it — poison queue included — on the tenant simulator, Azurite and the ACS Email
fake, with Graph timings short enough for a test, and the findings a run reported or the store
holds, to compare with a clean scan's.

The host's part, played here: it hands a queue message to its function; when the function raises
it hands the same message over again, up to host.json's `maxDequeueCount` deliveries, then moves
it to `<queue>-poison` (the worker poisons malformed messages itself, with a reason).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from azure.core.credentials import TokenCredential
from azure.functions.timer import TimerRequest

from partnerguard.graph import client as graph_client
from partnerguard.model import Report, Status
from partnerguard.queues.names import ALERT_POISON_QUEUE, ALERT_QUEUE, SCAN_POISON_QUEUE, SCAN_QUEUE
from partnerguard.settings import Settings
from partnerguard.storage import ScanStore
from partnerguard.storage.records import RunRecord
from testbed.acs_fake import SentEmail
from testbed.simulator import TenantScenario, bundled_scenarios
from tests.alerts_harness import AlertsEnv, host_message
from tests.functions_index import user_function
from tests.graph_sim import fast_pacer

# The bundled partner tenant: a finding for every check, so a lost one shows.
CONTOSO = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
# Each tick moves the services' clock this far: enough to order runs, far too little to age any
# sign-in out of the look-back window (which would resolve findings and send emails of its own).
TICK = timedelta(seconds=10)
# Graph client timings of the fault suites: production's retry logic, with shorter waits.
GRAPH_RETRIES = 2  # so a fault answering 3 times in a row exhausts them
GRAPH_RETRY_DELAY_S = 0.05
GRAPH_TIMEOUT_S = 3.0

Finding = tuple[str, str]  # (check id, subject id)


def contoso() -> TenantScenario:
    return next(scenario for scenario in bundled_scenarios() if scenario.tenant_id == CONTOSO)


class QuickGraphClient(graph_client.GraphClient):
    """The production client with the fault suites' timings (retries, back-off, timeout)."""

    def __init__(
        self, settings: Settings, tenant_id: str, credential: TokenCredential | None = None, **options: Any
    ) -> None:
        options.setdefault("max_retries", GRAPH_RETRIES)
        options.setdefault("retry_delay_seconds", GRAPH_RETRY_DELAY_S)
        options.setdefault("timeout_seconds", GRAPH_TIMEOUT_S)
        super().__init__(settings, tenant_id, credential, **options)


@contextmanager
def quick_graph() -> Iterator[None]:
    """Scans (which build their client from `partnerguard.graph.client`) use `QuickGraphClient`
    and a pacer with Graph's request counts but tiny windows."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(graph_client, "PROCESS_PACER", fast_pacer())
        patch.setattr(graph_client, "GraphClient", QuickGraphClient)
        yield


@dataclass
class Handover:
    deliveries: int = 0  # messages handed to the function, redeliveries included
    raised: int = 0  # deliveries that raised (the host retries those)
    poisoned: int = 0  # messages the host moved to the poison queue


@dataclass
class Tick:
    scans: Handover
    alerts: Handover
    emails: list[SentEmail]


def hand_over(
    env: AlertsEnv,
    queue: str,
    function_name: str,
    poison_queue: str,
    between_deliveries: Callable[[int], None] | None = None,
    received: Callable[[], None] | None = None,
) -> Handover:
    """Every visible message of `queue` to its function, as the host does (see the module docstring).
    `received()` runs once the messages are taken from the queue, before the first delivery;
    `between_deliveries(n)` after the n-th delivery of a message raised, before the next."""
    outcome = Handover()
    limit = env.services.host.max_dequeue_count
    messages = env.functions.receive(queue)
    if messages and received is not None:
        received()
    for message in messages:
        for delivery in range(1, limit + 1):
            outcome.deliveries += 1
            if env.invoke(function_name, host_message(message, delivery)):
                break
            outcome.raised += 1
            if delivery == limit:
                env.functions.send_raw(poison_queue, message.content)
                outcome.poisoned += 1
            elif between_deliveries is not None:
                between_deliveries(delivery)
    return outcome


def tick(
    env: AlertsEnv,
    *,
    between_scan_deliveries: Callable[[int], None] | None = None,
    alerts_received: Callable[[], None] | None = None,
    between_alert_deliveries: Callable[[int], None] | None = None,
    deferred_wait_s: float = 0.0,
) -> Tick:
    """One schedule tick: the timer, every scan message, every alert message — and, for up to
    `deferred_wait_s`, the alert messages deferred with a visibility delay (ACS throttling).
    The callbacks are where a test breaks something between two steps."""
    before = len(env.acs.sent)
    env.functions.clock.advance(TICK)
    asyncio.run(user_function("scan_timer")(TimerRequest(past_due=False)))
    scans = hand_over(env, SCAN_QUEUE, "scan_worker", SCAN_POISON_QUEUE, between_scan_deliveries)
    alerts = hand_over(env, ALERT_QUEUE, "alert_worker", ALERT_POISON_QUEUE, between_alert_deliveries, alerts_received)
    deadline = time.monotonic() + deferred_wait_s
    queue = env.functions.raw_queue(ALERT_QUEUE)
    while time.monotonic() < deadline and (queue.get_queue_properties().approximate_message_count or 0) > 0:
        time.sleep(0.25)
        more = hand_over(env, ALERT_QUEUE, "alert_worker", ALERT_POISON_QUEUE, between_alert_deliveries)
        alerts.deliveries += more.deliveries
        alerts.raised += more.raised
        alerts.poisoned += more.poisoned
    return Tick(scans, alerts, env.acs.sent[before:])


def store_of(env: AlertsEnv) -> ScanStore:
    store: ScanStore = env.services.store
    return store


def newest_run(env: AlertsEnv, tenant_id: str = CONTOSO) -> RunRecord:
    runs = store_of(env).list_runs(tenant_id, top=1)
    assert runs, f"no run of tenant {tenant_id}"
    return runs[0]


def report_of(env: AlertsEnv, run: RunRecord) -> Report | None:
    return store_of(env).get_report(run.tenant_id, run.run_id)


def reported(report: Report) -> set[Finding]:
    return {(check.id, finding.finding.subject_id) for check in report.checks for finding in check.findings}


def compared(found: set[Finding], baseline: set[Finding]) -> str:
    """How findings compare with a clean scan's, in the ledger's words."""
    missing, extra = len(baseline - found), len(found - baseline)
    if not missing and not extra:
        return "the clean scan's findings"
    return f"{missing} of the clean scan's findings missing, {extra} more"


def assessed_checks(report: Report) -> set[str]:
    """Checks the run reports as assessed (pass or fail): their findings must be complete."""
    return {check.id for check in report.checks if check.status in (Status.PASS, Status.FAIL)}


def errored_checks(report: Report) -> dict[str, str]:
    return {check.id: check.reason_code or "" for check in report.checks if check.status is Status.ERROR}


def active_findings(env: AlertsEnv, tenant_id: str = CONTOSO) -> set[Finding]:
    return set(store_of(env).active_findings(tenant_id))


def resolved_by(env: AlertsEnv, run: RunRecord) -> set[Finding]:
    return {(f.check_id, f.subject_id) for f in store_of(env).resolved_findings(run.tenant_id, run.run_id)}

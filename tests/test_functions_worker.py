"""The scan worker as the host runs it: its binding from app.get_functions(), and invocations with
azure.functions' QueueMessage built from messages read back from Azurite's queue, scanning the
tenant simulator over real Graph calls and storing in Azurite's tables."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.functions.queue import QueueMessage  # the concrete message the host's converter builds

from partnerguard.model import TenantInfo, TenantSnapshot
from partnerguard.pipeline import Scanner
from partnerguard.queues.names import ALERT_QUEUE, SCAN_POISON_QUEUE, SCAN_QUEUE
from partnerguard.queues.scan_message import ScanMessage, send_scan
from partnerguard.scan_requests import ScanQueued, request_scan
from partnerguard.settings import Settings
from partnerguard.storage.alert_outbox import recipients_key
from partnerguard.storage.keys import new_run_id, run_findings_partition
from testbed.azurite import AzuriteProcess
from testbed.simulator import TenantSimulator, generate_tenant
from tests.functions_index import FunctionsEnv, bindings, functions_env, user_function
from tests.graph_sim import fast_simulator, pace_to

pytestmark = [pytest.mark.azurite, pytest.mark.simulator]

PARTNER = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
CUSTOMER = "0f0f0f0f-1111-4222-8333-444444444444"
NO_CONSENT = "0c0c0c0c-1111-4222-8333-444444444444"


@pytest.fixture(scope="module")
def sim() -> Iterator[TenantSimulator]:
    partner = generate_tenant(PARTNER, 20, seed=11, role="partner", display_name="Contoso Partner")
    # No MFA policy and a few users without MFA: the scan has findings, so an alert is due.
    customer = generate_tenant(CUSTOMER, 40, seed=12, display_name="Fabrikam", mfa_policy=False, incapable=3)
    not_consented = generate_tenant(NO_CONSENT, 10, seed=13, display_name="Litware")
    not_consented.consented = False
    # Graph's request counts over short windows, and scans paced to them (tests/graph_sim.py).
    with fast_simulator([partner, customer, not_consented]) as simulator:
        yield simulator


@pytest.fixture(autouse=True)
def paced_to_the_simulator(sim: TenantSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    pace_to(sim, monkeypatch)


ALERTS_TO = {"ALERT_RECIPIENTS": "secops@contoso.example"}


def alert_message(tenant_id: str, alert_id: str) -> dict[str, Any]:
    return {
        "schema": "partnerguard.alert/v1",
        "partition": recipients_key(["secops@contoso.example"]),
        "alert_id": alert_id,
        "deferrals": 0,
    }


@pytest.fixture
def env(azurite: AzuriteProcess, table_prefix: str, sim: TenantSimulator, tmp_path: Path) -> Iterator[FunctionsEnv]:
    environment = {**sim.environment(), **ALERTS_TO, "EMAIL_OUTBOX_DIR": str(tmp_path / "outbox")}
    yield from functions_env(azurite.connection_string, table_prefix, environment)


def queue_scan(env: FunctionsEnv, tenant_id: str) -> str:
    """Queue a scan as the timer and the API do (guard, run row, message)."""
    outcome = request_scan(
        env.services.store,
        env.services.guard,
        env.services.scan_queue(),
        TenantInfo(tenant_id, tenant_id, env.services.settings.role_of(tenant_id)),
        "api",
        env.clock(),
        env.services.host.guard_ttl,
    )
    assert isinstance(outcome, ScanQueued)
    return outcome.run_id


def queue_message(id: str | None, body: bytes, dequeue_count: int) -> QueueMessage:
    return QueueMessage(id=id, body=body, dequeue_count=dequeue_count)  # type: ignore[no-untyped-call]


def delivered(env: FunctionsEnv) -> QueueMessage:
    """The next scan message as the host delivers it: read back from Azurite, base64-decoded."""
    (message,) = env.receive(SCAN_QUEUE)
    return queue_message(message.id, message.content, message.dequeue_count or 1)


def invoke(message: QueueMessage) -> None:
    asyncio.run(user_function("scan_worker")(message))


def graph_calls(sim: TenantSimulator) -> int:
    return len(sim.requests)


def stored_rows(env: FunctionsEnv, tenant_id: str, run_id: str) -> tuple[int, int, int]:
    store = env.services.store
    runs = list(store.runs.query_entities("PartitionKey eq @pk", parameters={"pk": tenant_id}))
    findings = list(store.findings.query_entities("PartitionKey eq @pk", parameters={"pk": tenant_id}))
    run_findings = list(
        store.run_findings.query_entities(
            "PartitionKey eq @pk", parameters={"pk": run_findings_partition(tenant_id, run_id)}
        )
    )
    return len(runs), len(findings), len(run_findings)


def test_worker_binding() -> None:
    (trigger,) = bindings("scan_worker")
    assert trigger == {
        "direction": "IN",
        "type": "queueTrigger",
        "name": "message",
        "queueName": "partnerguard-scans",
        "connection": "PARTNERGUARD_STORAGE",
    }


def test_the_worker_completes_a_scan_from_a_queued_message(env: FunctionsEnv, sim: TenantSimulator) -> None:
    run_id = queue_scan(env, CUSTOMER)
    message = delivered(env)
    assert message.dequeue_count == 1
    invoke(message)

    run = env.services.store.get_run(CUSTOMER, run_id)
    assert run is not None and run.status == "succeeded" and run.started is not None
    report = env.services.store.get_report(CUSTOMER, run_id)
    assert report is not None and report.tenant.name == "Fabrikam"
    findings = [item for check in report.checks for item in check.findings]
    assert findings and {item.state for item in findings} == {"new"}
    # The tenant is free again, the registry knows the run, and consent is ok.
    assert env.services.guard.holder(CUSTOMER, env.clock()) is None
    tenant = env.services.registry.get(CUSTOMER)
    assert tenant is not None and tenant.consent == "ok" and tenant.name == "Fabrikam"
    assert tenant.last_run is not None and (tenant.last_run.run_id, tenant.last_run.status) == (run_id, "succeeded")
    # doctor's facts for GET /api/tenants, as the scan's sign-in and subscribedSkus found them.
    assert tenant.access is not None and tenant.access["sign_in"] == "ok"
    assert set(tenant.access["roles"]) == sim.tenant(CUSTOMER).roles
    # New findings: one small alert message, and the run says an alert is pending.
    assert env.json_messages(ALERT_QUEUE) == [alert_message(CUSTOMER, f"run~{CUSTOMER}~{run_id}")]
    run = env.services.store.get_run(CUSTOMER, run_id)
    assert run is not None and run.alert_status == "pending"


def test_a_redelivered_message_does_not_duplicate_the_run_or_its_findings(
    env: FunctionsEnv, sim: TenantSimulator
) -> None:
    run_id = queue_scan(env, CUSTOMER)
    message = delivered(env)
    invoke(message)
    rows = stored_rows(env, CUSTOMER, run_id)
    assert rows[0] == 1 and rows[1] > 0 and rows[1] == rows[2]
    first_alerts = env.json_messages(ALERT_QUEUE)
    calls = graph_calls(sim)

    invoke(queue_message(message.id, message.get_body(), 2))

    assert graph_calls(sim) == calls  # nothing scanned again
    assert stored_rows(env, CUSTOMER, run_id) == rows
    assert env.services.store.list_runs(CUSTOMER)[0].status == "succeeded"
    # The alert is owed until it is delivered. Its message is still on its way, so the
    # redelivery queues no second one...
    assert first_alerts and env.json_messages(ALERT_QUEUE) == []
    # ...but had that message been lost, a redelivery after the grace period queues it again,
    # naming the same alert (delivered once).
    env.clock.advance(timedelta(minutes=16))
    invoke(queue_message(message.id, message.get_body(), 3))
    assert env.json_messages(ALERT_QUEUE) == first_alerts


def test_a_run_interrupted_after_writing_findings_is_repeated_as_the_same_run(env: FunctionsEnv) -> None:
    """A worker died after the lifecycle was written but before the run row: the redelivered
    message repeats the run, and its findings stay `new` (they alert), not `open`."""
    run_id = queue_scan(env, CUSTOMER)
    message = delivered(env)
    scanner = Scanner(env.services.settings, env.services.store, clock=env.clock)
    asyncio.run(scanner.scan(CUSTOMER, run_id))
    rows = stored_rows(env, CUSTOMER, run_id)
    env.services.store.start_run(TenantInfo(CUSTOMER, "Fabrikam", "customer"), env.clock(), run_id)  # "running" again

    invoke(queue_message(message.id, message.get_body(), 2))

    report = env.services.store.get_report(CUSTOMER, run_id)
    assert report is not None and report.status == "succeeded"
    assert {item.state for check in report.checks for item in check.findings} == {"new"}
    assert stored_rows(env, CUSTOMER, run_id) == rows


MALFORMED = [
    pytest.param(b"\x8a\xff\x00binary", "not UTF-8 text", id="not-text"),
    pytest.param(b"<scan tenant='x'/>", "not JSON", id="not-json"),
    pytest.param(b'{"schema": "partnerguard.scan/v0"}', "unknown schema", id="wrong-schema"),
    pytest.param(
        json.dumps(
            {
                "schema": "partnerguard.scan/v1",
                "tenant_id": "../../tenants",
                "run_id": "8235746000000-0a1b2c3d4e",
                "requested_at": "2026-11-26T12:00:00+00:00",
                "trigger": "api",
            }
        ).encode(),
        "tenant_id is not a GUID",
        id="bad-guid",
    ),
    pytest.param(b'{"schema": "' + b"x" * 40_000 + b'"}', "message too large", id="huge"),
]


@pytest.mark.parametrize(("body", "reason"), MALFORMED)
def test_a_malformed_message_is_poisoned_with_its_reason(
    env: FunctionsEnv, sim: TenantSimulator, body: bytes, reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Through the real queue: the raw bytes go in base64, as the host expects of any producer.
    env.send_raw(SCAN_QUEUE, body)
    message = delivered(env)
    assert message.get_body() == body
    calls = graph_calls(sim)

    invoke(message)  # returns normally: the host deletes the message, no retries

    (record,) = env.json_messages(SCAN_POISON_QUEUE)
    assert record["schema"] == "partnerguard.poison/v1"
    assert record["reason"].startswith(reason)
    assert record["message_id"] == message.id and record["dequeue_count"] == 1
    assert record["body_bytes"] == len(body)
    if record["body_encoding"] == "utf-8" and not record["truncated"]:
        assert record["body"].encode() == body
    assert reason in caplog.text
    assert graph_calls(sim) == calls
    assert env.receive(SCAN_QUEUE) == []


class FlakySource:
    """A snapshot source whose storage or network fails `failures` times before it works."""

    def __init__(self, failures: int, real: Any) -> None:
        self.failures = failures
        self.real = real

    async def __call__(self, settings: Settings, tenant_id: str, now: datetime) -> TenantSnapshot:
        if self.failures > 0:
            self.failures -= 1
            raise ServiceRequestError("connection reset by peer")
        snapshot: TenantSnapshot = await self.real(settings, tenant_id, now)
        return snapshot


def real_source(env: FunctionsEnv) -> Any:
    return Scanner(env.services.settings, env.services.store).snapshot_source


def test_a_transient_failure_is_left_to_the_host_and_retried(env: FunctionsEnv) -> None:
    env.services.snapshot_source = FlakySource(1, real_source(env))
    run_id = queue_scan(env, CUSTOMER)
    message = delivered(env)
    with pytest.raises(ServiceRequestError):
        invoke(message)
    run = env.services.store.get_run(CUSTOMER, run_id)
    assert run is not None and run.status == "running"  # not failed: the host will retry it
    holder = env.services.guard.holder(CUSTOMER, env.clock())
    assert holder is not None and (holder.run_id, holder.status) == (run_id, "running")

    env.clock.advance(env.services.host.visibility_timeout)
    invoke(queue_message(message.id, message.get_body(), 2))
    run = env.services.store.get_run(CUSTOMER, run_id)
    assert run is not None and run.status == "succeeded"
    assert env.services.guard.holder(CUSTOMER, env.clock()) is None


def test_the_last_attempt_fails_the_run_and_frees_the_tenant(env: FunctionsEnv) -> None:
    attempts = env.services.host.max_dequeue_count
    env.services.snapshot_source = FlakySource(attempts, real_source(env))
    run_id = queue_scan(env, CUSTOMER)
    message = delivered(env)
    for attempt in range(1, attempts + 1):
        with pytest.raises(ServiceRequestError):
            invoke(queue_message(message.id, message.get_body(), attempt))
        run = env.services.store.get_run(CUSTOMER, run_id)
        assert run is not None
        assert run.status == ("failed" if attempt == attempts else "running")
    assert run is not None and run.error is not None and run.error["code"] == "ServiceRequestError"
    assert f"gave up after {attempts} attempts" in run.error["message"]
    assert env.services.guard.holder(CUSTOMER, env.clock()) is None
    tenant = env.services.registry.get(CUSTOMER)
    assert tenant is not None and tenant.last_run is not None and tenant.last_run.status == "failed"
    # The tenant can be scanned again at once.
    queue_scan(env, CUSTOMER)


def test_missing_consent_is_recorded_alerted_once_and_probed_daily(env: FunctionsEnv, sim: TenantSimulator) -> None:
    run_id = queue_scan(env, NO_CONSENT)
    invoke(delivered(env))
    run = env.services.store.get_run(NO_CONSENT, run_id)
    assert run is not None and run.status == "failed"
    assert run.error is not None and run.error["code"] == "consent_missing"
    tenant = env.services.registry.get(NO_CONSENT)
    assert tenant is not None and tenant.consent == "missing" and "AADSTS" in (tenant.consent_error or "")
    # doctor's facts for GET /api/tenants: the scan's sign-in found no consent.
    assert tenant.access is not None and tenant.access["sign_in"] == "no-consent"
    assert tenant.access_checked_at == env.clock()
    (consent_alert,) = env.json_messages(ALERT_QUEUE)
    assert consent_alert["alert_id"].startswith(f"health~consent~{NO_CONSENT}~missing-")
    assert consent_alert == alert_message(NO_CONSENT, consent_alert["alert_id"])
    assert env.services.guard.holder(NO_CONSENT, env.clock()) is None

    # A day later the timer probes it again: still missing, the run fails, but no second alert.
    env.clock.advance(timedelta(days=1))
    second = queue_scan(env, NO_CONSENT)
    invoke(delivered(env))
    failed = env.services.store.get_run(NO_CONSENT, second)
    assert failed is not None and failed.error is not None and failed.error["code"] == "consent_missing"
    assert env.json_messages(ALERT_QUEUE) == []

    # The customer's admin consents: the next probe scans, and consent is ok again.
    sim.tenant(NO_CONSENT).consented = True
    try:
        env.clock.advance(timedelta(days=1))
        third = queue_scan(env, NO_CONSENT)
        invoke(delivered(env))
        healed = env.services.store.get_run(NO_CONSENT, third)
        assert healed is not None and healed.status == "succeeded"
        tenant = env.services.registry.get(NO_CONSENT)
        assert tenant is not None and (tenant.consent, tenant.consent_error) == ("ok", None)
    finally:
        sim.tenant(NO_CONSENT).consented = False


def test_repeated_sign_in_failures_mark_the_tenant_failing_once(
    azurite: AzuriteProcess, table_prefix: str, sim: TenantSimulator, tmp_path: Path
) -> None:
    environment = {**sim.environment(), **ALERTS_TO, "AZURE_CLIENT_SECRET": "not-the-secret-" + "x" * 20}
    environment["EMAIL_OUTBOX_DIR"] = str(tmp_path / "outbox")
    for env in functions_env(azurite.connection_string, table_prefix, environment):
        consents, alerts = [], []
        for _ in range(4):
            run_id = queue_scan(env, CUSTOMER)
            invoke(delivered(env))
            run = env.services.store.get_run(CUSTOMER, run_id)
            assert run is not None and run.error is not None and run.error["code"] == "sign_in_failed"
            tenant = env.services.registry.get(CUSTOMER)
            assert tenant is not None
            consents.append(tenant.consent)
            alerts.append(len(env.json_messages(ALERT_QUEUE)))
            env.clock.advance(timedelta(hours=6))
        assert consents == ["ok", "ok", "failing", "failing"]
        assert alerts == [0, 0, 1, 0]  # reported once, when it became failing


def test_a_message_that_waited_past_its_guard_is_superseded(env: FunctionsEnv, sim: TenantSimulator) -> None:
    stale = queue_scan(env, CUSTOMER)
    message = delivered(env)
    # The message waited past its guard's time-to-live and the API queued a newer scan meanwhile.
    env.clock.advance(env.services.host.guard_ttl)
    newer = queue_scan(env, CUSTOMER)
    calls = graph_calls(sim)
    invoke(message)
    run = env.services.store.get_run(CUSTOMER, stale)
    assert run is not None and run.status == "failed"
    assert run.error is not None and run.error["code"] == "superseded" and newer in run.error["message"]
    assert graph_calls(sim) == calls
    holder = env.services.guard.holder(CUSTOMER, env.clock())
    assert holder is not None and holder.run_id == newer  # the newer scan is untouched


def test_a_message_for_a_run_nobody_queued_still_scans_once(env: FunctionsEnv) -> None:
    """A message whose run row is missing (written by hand, or a producer that crashed between
    the two writes in the other order) creates its run instead of failing forever."""
    run_id = new_run_id(env.clock())
    send_scan(env.services.scan_queue(), ScanMessage(CUSTOMER, run_id, env.clock(), "api"))
    invoke(delivered(env))
    run = env.services.store.get_run(CUSTOMER, run_id)
    assert run is not None and run.status == "succeeded"


def test_a_message_for_a_tenant_nobody_monitors_is_poisoned_not_scanned(
    env: FunctionsEnv, sim: TenantSimulator
) -> None:
    stranger = "0d0d0d0d-1111-4222-8333-444444444444"  # well-formed, but in no setting or registry
    send_scan(env.services.scan_queue(), ScanMessage(stranger, new_run_id(env.clock()), env.clock(), "api"))
    calls = graph_calls(sim)

    invoke(delivered(env))

    assert graph_calls(sim) == calls
    assert env.services.store.list_runs(stranger) == []
    (poisoned,) = env.json_messages(SCAN_POISON_QUEUE)
    assert poisoned["reason"].startswith("the tenant is not monitored")

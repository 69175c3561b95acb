"""The scan timer as the host runs it: its binding from app.get_functions(), and invocations with
azure.functions' TimerRequest against Azurite (tables and queues) and the tenant simulator (GDAP
discovery over real Graph calls). It queues one message per tenant and scans nothing itself."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from azure.functions.timer import TimerRequest  # the concrete request the host's converter builds

from partnerguard.model import TenantInfo
from partnerguard.queues.names import SCAN_QUEUE
from partnerguard.queues.scan_message import parse_scan_message
from partnerguard.scan_jobs import FanOutIncomplete
from testbed.azurite import AzuriteProcess
from testbed.simulator import TenantSimulator, bundled_scenarios
from tests.functions_index import FunctionsEnv, bindings, functions_env, user_function

pytestmark = [pytest.mark.azurite, pytest.mark.simulator]

PARTNER = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
FABRIKAM = "c0ffee00-1b2c-4d3e-8f90-a1b2c3d4e5f6"


@pytest.fixture(scope="module")
def sim() -> Iterator[TenantSimulator]:
    with TenantSimulator(bundled_scenarios()) as simulator:
        yield simulator


def configured(sim: TenantSimulator) -> list[str]:
    return [t.tenant_id for t in sim.tenants]


def live_customers(sim: TenantSimulator) -> list[str]:
    relationships = sim.tenant(PARTNER).delegated_admin_relationships
    return list(
        dict.fromkeys(r["customer"]["tenantId"] for r in relationships if r["status"] in ("active", "expiring"))
    )


def make_env(azurite: AzuriteProcess, prefix: str, sim: TenantSimulator, **env: str) -> Iterator[FunctionsEnv]:
    return functions_env(azurite.connection_string, prefix, {**sim.environment(), **env})


@pytest.fixture
def env(azurite: AzuriteProcess, table_prefix: str, sim: TenantSimulator) -> Iterator[FunctionsEnv]:
    yield from make_env(azurite, table_prefix, sim)


@pytest.fixture
def discovering_env(azurite: AzuriteProcess, table_prefix: str, sim: TenantSimulator) -> Iterator[FunctionsEnv]:
    yield from make_env(azurite, table_prefix, sim, PARTNERGUARD_DISCOVER_CUSTOMERS="true")


def run_timer(past_due: bool = False) -> None:
    asyncio.run(user_function("scan_timer")(TimerRequest(past_due=past_due)))


def queued_tenants(env: FunctionsEnv) -> list[str]:
    return [parse_scan_message(m.content).tenant_id for m in env.receive(SCAN_QUEUE)]


def test_timer_binding() -> None:
    (timer,) = bindings("scan_timer")
    assert timer == {
        "direction": "IN",
        "type": "timerTrigger",
        "name": "timer",
        "schedule": "%SCAN_SCHEDULE%",
        "runOnStartup": False,
        "useMonitor": True,
    }


def test_the_timer_queues_one_message_per_configured_tenant(env: FunctionsEnv, sim: TenantSimulator) -> None:
    requests_before = len(sim.requests)
    run_timer()
    messages = [parse_scan_message(m.content) for m in env.receive(SCAN_QUEUE)]
    assert sorted(m.tenant_id for m in messages) == sorted(configured(sim))
    assert {m.trigger for m in messages} == {"schedule"}
    for message in messages:
        run = env.services.store.get_run(message.tenant_id, message.run_id)
        assert run is not None and run.status == "queued"
        holder = env.services.guard.holder(message.tenant_id, env.clock())
        assert holder is not None and holder.run_id == message.run_id
    # The timer scans nothing: not one Graph request (discovery is off).
    assert len(sim.requests) == requests_before


def test_discovery_adds_the_gdap_customers(discovering_env: FunctionsEnv, sim: TenantSimulator) -> None:
    run_timer()
    tenants = queued_tenants(discovering_env)
    expected = list(dict.fromkeys([*configured(sim), *live_customers(sim)]))
    assert sorted(tenants) == sorted(expected)
    assert len(tenants) == len(set(tenants))  # Fabrikam is configured and discovered: queued once
    assert FABRIKAM in tenants and "b2c3d4e5-0000-4000-8000-00000000cafe" not in tenants  # terminated


def test_a_tenant_with_a_scan_queued_or_running_is_skipped(env: FunctionsEnv, sim: TenantSimulator) -> None:
    run_timer()
    first = {
        parse_scan_message(m.content).tenant_id: parse_scan_message(m.content).run_id for m in env.receive(SCAN_QUEUE)
    }
    # One worker has started Fabrikam's scan; the others still wait in the queue.
    env.services.guard.mark_running(FABRIKAM, first[FABRIKAM], env.clock(), env.services.host.guard_ttl)
    # A second fan-out within the guards' time-to-live (a past-due run right after a scheduled one).
    env.clock.advance(timedelta(minutes=10))
    run_timer()
    assert queued_tenants(env) == []
    # Once a guard's time-to-live has passed (its worker died), the tenant is scanned again.
    env.clock.advance(env.services.host.guard_ttl)
    run_timer()
    assert sorted(queued_tenants(env)) == sorted(configured(sim))


def test_past_due_runs_one_fan_out(env: FunctionsEnv, sim: TenantSimulator, caplog: pytest.LogCaptureFixture) -> None:
    run_timer(past_due=True)
    assert "past due" in caplog.text
    assert sorted(queued_tenants(env)) == sorted(configured(sim))


def test_missing_consent_is_skipped_and_probed_daily(env: FunctionsEnv, sim: TenantSimulator) -> None:
    env.services.registry.set_consent(FABRIKAM, "missing", "AADSTS65001: no consent", env.clock())
    run_timer()
    assert FABRIKAM not in queued_tenants(env)
    env.clock.advance(timedelta(hours=23))  # the other tenants' guards have long expired
    run_timer()
    assert FABRIKAM not in queued_tenants(env)
    env.clock.advance(timedelta(hours=1))
    run_timer()
    assert FABRIKAM in queued_tenants(env)


def test_discovery_failure_still_scans_the_configured_tenants(
    azurite: AzuriteProcess, table_prefix: str, sim: TenantSimulator
) -> None:
    async def broken() -> list[str]:
        raise ConnectionError("no route to Graph")

    environment = {**sim.environment(), "PARTNERGUARD_DISCOVER_CUSTOMERS": "true"}
    for env in functions_env(azurite.connection_string, table_prefix, environment, discover=broken):
        run_timer()
        assert sorted(queued_tenants(env)) == sorted(configured(sim))


def test_one_tenant_failing_to_queue_does_not_stop_the_others(env: FunctionsEnv, sim: TenantSimulator) -> None:
    # The run row of one tenant's next scan already exists: its queue_run fails (409), the rest go on.
    original = env.services.store.queue_run
    calls: list[str] = []

    def flaky(tenant: TenantInfo, now: datetime, run_id: str | None = None) -> str:
        calls.append(tenant.id)
        if tenant.id == FABRIKAM:
            raise ConnectionError("storage hiccup")
        return original(tenant, now, run_id=run_id)

    env.services.store.queue_run = flaky  # type: ignore[method-assign]
    with pytest.raises(FanOutIncomplete, match="1 of"):
        run_timer()
    tenants = queued_tenants(env)
    assert sorted(tenants) == sorted(t for t in configured(sim) if t != FABRIKAM)
    # Fabrikam's guard was released, so the next schedule (or a POST) can queue it.
    assert env.services.guard.holder(FABRIKAM, env.clock()) is None

"""The scan worker continues an unfinished sign-in read at once, and only when it moved forward.

The worker runs as the host runs it (queue message from Azurite, the real pipeline scanning the
tenant simulator, tables in Azurite). A sign-in read that stops at its deadline after reading
pages queues a `continuation` scan; a complete read, or one that read nothing, queues none, so a
continuation can never loop without progress.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from azure.functions.queue import QueueMessage

from partnerguard import collect
from partnerguard.model import TenantInfo, TenantSnapshot
from partnerguard.pipeline import Scanner
from partnerguard.queues.names import SCAN_QUEUE
from partnerguard.queues.scan_message import parse_scan_message
from partnerguard.scan_requests import ScanQueued, request_scan
from partnerguard.settings import Settings
from testbed.azurite import AzuriteProcess
from testbed.simulator import TenantSimulator, generate_tenant
from tests.functions_index import FunctionsEnv, functions_env, user_function
from tests.graph_sim import fast_simulator, pace_to

pytestmark = [pytest.mark.azurite, pytest.mark.simulator]

CUSTOMER = "0f0f5e1f-1111-4222-8333-444444444444"
SIGN_IN_CHECKS = ("legacy-auth.sign-ins", "sign-ins.single-factor", "sam.password-grant")


@pytest.fixture(scope="module")
def sim() -> Iterator[TenantSimulator]:
    customer = generate_tenant(CUSTOMER, 10, seed=31, display_name="Fabrikam")
    with fast_simulator([customer]) as simulator:
        yield simulator


@pytest.fixture(autouse=True)
def paced_to_the_simulator(sim: TenantSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    pace_to(sim, monkeypatch)


@pytest.fixture
def env(azurite: AzuriteProcess, table_prefix: str, sim: TenantSimulator, tmp_path: Path) -> Iterator[FunctionsEnv]:
    environment = {**sim.environment(), "EMAIL_OUTBOX_DIR": str(tmp_path / "outbox")}
    yield from functions_env(azurite.connection_string, table_prefix, environment)


def queue_scan(env: FunctionsEnv) -> str:
    outcome = request_scan(
        env.services.store,
        env.services.guard,
        env.services.scan_queue(),
        TenantInfo(CUSTOMER, CUSTOMER, "customer"),
        "api",
        env.clock(),
        env.services.host.guard_ttl,
    )
    assert isinstance(outcome, ScanQueued)
    return outcome.run_id


def deliver(env: FunctionsEnv) -> dict[str, Any]:
    """Run the worker on the next scan message; returns the message it ran."""
    (message,) = env.receive(SCAN_QUEUE)
    body = message.content
    queued = QueueMessage(id=message.id, body=body, dequeue_count=1)  # type: ignore[no-untyped-call]
    asyncio.run(user_function("scan_worker")(queued))
    document: dict[str, Any] = json.loads(body)
    return document


class StoppedEarly:
    """The real snapshot, as the collector returns it when the sign-in read stopped at its
    deadline after `pages` pages (a first read of a large tenant): the worker's decision rests
    on that field alone."""

    def __init__(self, real: Any, pages: int) -> None:
        self.real = real
        self.pages = pages

    async def __call__(self, settings: Settings, tenant_id: str, now: datetime) -> TenantSnapshot:
        snapshot: TenantSnapshot = await self.real(settings, tenant_id, now)
        read = snapshot.sign_in_read
        assert read is not None and read.complete
        stopped = replace(
            read, complete=False, read_back_to=now - timedelta(hours=100), pages=self.pages, advanced=self.pages > 0
        )
        return replace(snapshot, sign_in_read=stopped)


def real_source(env: FunctionsEnv) -> Any:
    return Scanner(env.services.settings, env.services.store).snapshot_source


def sign_in_checks(env: FunctionsEnv, run_id: str) -> dict[str, tuple[str, str | None]]:
    report = env.services.store.get_report(CUSTOMER, run_id)
    assert report is not None
    return {check.id: (check.status.value, check.reason) for check in report.checks if check.id in SIGN_IN_CHECKS}


def test_an_unfinished_read_that_progressed_queues_a_continuation_at_once(env: FunctionsEnv) -> None:
    env.services.snapshot_source = StoppedEarly(real_source(env), pages=3)
    first = queue_scan(env)
    ran = deliver(env)
    assert ran["run_id"] == first
    # The checks say the read is in progress; none passes over sign-ins nobody read.
    for status, reason in sign_in_checks(env, first).values():
        assert status in ("not_assessed", "fail")
        if status == "not_assessed":
            assert reason is not None and reason.startswith("sign-in log read in progress")
    (continuation,) = env.receive(SCAN_QUEUE)
    message = parse_scan_message(continuation.content)
    assert (message.tenant_id, message.trigger) == (CUSTOMER, "continuation")
    assert message.run_id != first
    run = env.services.store.get_run(CUSTOMER, message.run_id)
    assert run is not None and run.status == "queued"
    holder = env.services.guard.holder(CUSTOMER, env.clock())
    assert holder is not None and holder.run_id == message.run_id  # taken for the continuation

    # The continuation runs like any scan; its read completes, so nothing more is queued.
    env.services.snapshot_source = real_source(env)
    queued = QueueMessage(id=continuation.id, body=continuation.content, dequeue_count=1)  # type: ignore[no-untyped-call]
    asyncio.run(user_function("scan_worker")(queued))
    run = env.services.store.get_run(CUSTOMER, message.run_id)
    assert run is not None and run.status == "succeeded"
    assert {status for status, _ in sign_in_checks(env, message.run_id).values()} <= {"pass", "fail"}
    assert env.receive(SCAN_QUEUE) == []


def test_a_complete_read_queues_no_continuation(env: FunctionsEnv) -> None:
    run_id = queue_scan(env)
    deliver(env)
    run = env.services.store.get_run(CUSTOMER, run_id)
    assert run is not None and run.status == "succeeded"
    assert env.receive(SCAN_QUEUE) == []
    assert env.services.guard.holder(CUSTOMER, env.clock()) is None


def test_a_read_that_made_no_progress_queues_no_continuation(
    env: FunctionsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No time for sign-ins at all: the real read stops before its first page.
    monkeypatch.setattr(collect, "SIGN_IN_SHARE_OF_TIMEOUT", 0.0)
    run_id = queue_scan(env)
    deliver(env)
    checks = sign_in_checks(env, run_id)
    assert {status for status, _ in checks.values()} == {"not_assessed"}
    assert env.receive(SCAN_QUEUE) == []  # no loop: nothing was read, nothing is queued
    assert env.services.guard.holder(CUSTOMER, env.clock()) is None

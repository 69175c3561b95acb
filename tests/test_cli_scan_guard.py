"""`scan` on the command line takes the tenant's scan guard, as the Functions worker does (issue 15,
case 8.2): on storage it shares with a deployment, it never scans a tenant a worker (or another
command) is scanning, and while it scans, the timer and the HTTP API see the tenant busy.

In process (`tests/cli_harness.py`), on Azurite and a tenant simulator of this module's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, cast

import pytest
from azure.data.tables import TableServiceClient

from partnerguard.graph import client as graph_client
from partnerguard.pipeline import Scanner
from partnerguard.scan_requests import guarded_scan
from partnerguard.storage.keys import new_run_id
from partnerguard.storage.scan_guard import GuardHolder, ScanGuard
from partnerguard.storage.store import ScanStore
from testbed.simulator import TenantSimulator, generate_tenant
from tests.cli_harness import run_cli
from tests.graph_sim import fast_pacer

pytestmark = [pytest.mark.azurite, pytest.mark.simulator]

BUSY = "c8c8c8c8-0000-4000-8000-000000000001"
FREE = "c8c8c8c8-0000-4000-8000-000000000002"
EXIT_FINDINGS = 1
EXIT_RUN_FAILED = 3
GIVE_UP = 10.0  # real seconds a test waits for what should come at once (never reached when it works)


@pytest.fixture(scope="module")
def simulator() -> Iterator[TenantSimulator]:
    scenarios = [
        generate_tenant(tenant_id, 10, seed=80 + n, role="partner" if n == 0 else "customer", incapable=1)
        for n, tenant_id in enumerate((BUSY, FREE))
    ]
    with TenantSimulator(scenarios, enforce_limits=False) as sim:
        yield sim


@pytest.fixture(autouse=True)
def fast_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graph_client, "PROCESS_PACER", fast_pacer())


@pytest.fixture
def guard(cli_env: dict[str, str], cli_storage: str) -> Iterator[ScanGuard]:
    """The guard table the command line uses (production names: prefix `pg`)."""
    service = TableServiceClient.from_connection_string(cli_storage)
    scan_guard = ScanGuard(service)
    scan_guard.ensure_tables()
    yield scan_guard
    scan_guard.close()


@pytest.fixture
def store(cli_storage: str) -> Iterator[ScanStore]:
    service = TableServiceClient.from_connection_string(cli_storage)
    scans = ScanStore(service)
    scans.ensure_tables()
    yield scans
    scans.close()


def test_case_8_2_scan_does_not_scan_a_tenant_a_worker_is_scanning(
    guard: ScanGuard,
    store: ScanStore,
    simulator: TenantSimulator,
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = datetime.now(UTC)
    worker_run = new_run_id(now)
    # A Functions worker on the same storage is scanning the tenant.
    assert guard.mark_running(BUSY, worker_run, now, timedelta(minutes=40)) is None
    graph_before = len(simulator.requests)

    code, _, err = run_cli(capsys, "scan", "--tenant", BUSY)

    assert code == EXIT_RUN_FAILED
    assert f"run {worker_run} is running" in err
    assert store.list_runs(BUSY) == [], "the command line started a run of its own"
    assert len(simulator.requests) == graph_before, "the command line read the tenant's Graph"
    holder = guard.holder(BUSY, datetime.now(UTC))
    assert holder is not None and holder.run_id == worker_run  # the worker's guard is untouched


def test_case_8_2_scan_holds_the_guard_while_it_scans_and_frees_it_after(
    guard: ScanGuard, store: ScanStore, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str | None, GuardHolder | None]] = []
    scan = Scanner.scan

    async def observed(self: Scanner, tenant_id: str, run_id: str | None = None, **options: Any) -> Any:
        # What the timer or the HTTP API would find while the command line scans.
        seen.append((run_id, guard.holder(tenant_id, datetime.now(UTC))))
        return await scan(self, tenant_id, run_id, **options)

    monkeypatch.setattr(Scanner, "scan", observed)

    code, _, err = run_cli(capsys, "scan", "--tenant", FREE)

    assert code == EXIT_FINDINGS, err[-2000:]
    ((run_id, holder),) = seen
    assert holder is not None and holder.status == "running" and holder.run_id == run_id
    (run,) = store.list_runs(FREE)
    assert run.run_id == run_id and run.status == "succeeded"
    assert guard.holder(FREE, datetime.now(UTC)) is None  # released once the scan ended


class SlowGuard:
    """A guard whose `acquire` is still under way when the command is interrupted."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.go_on = threading.Event()
        self.finished = threading.Event()
        self.held: set[tuple[str, str]] = set()

    def acquire(self, tenant_id: str, run_id: str, now: datetime, ttl: timedelta) -> GuardHolder | None:
        self.started.set()
        self.go_on.wait(10)
        self.held.add((tenant_id, run_id))
        self.finished.set()
        return None

    def release(self, tenant_id: str, run_id: str) -> bool:
        self.held.discard((tenant_id, run_id))
        return True


def test_case_8_2_ctrl_c_while_the_guard_is_being_taken_leaves_it_free() -> None:
    slow = SlowGuard()
    scanner = SimpleNamespace(settings=SimpleNamespace(role_of=lambda tenant_id: "customer"))
    scan = guarded_scan(cast(Scanner, scanner), cast(ScanGuard, slow), timedelta(minutes=40), lambda: datetime.now(UTC))

    async def interrupted() -> None:
        task = asyncio.create_task(scan(FREE))
        assert await asyncio.to_thread(slow.started.wait, 10)
        task.cancel()  # what asyncio.run does on Ctrl-C
        slow.go_on.set()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(interrupted())

    assert slow.finished.wait(10)
    assert slow.held == set(), "the guard the interrupted call took was never given back"


def test_case_8_2_a_scan_longer_than_the_guard_s_lifetime_keeps_the_guard(guard: ScanGuard) -> None:
    # A command line scan has no time limit: two hours into it, past the guard's 40 minutes, a
    # worker must still find the tenant busy. The services' clock moves only through `sleep`
    # (the renewals' wait) and, at the end, by the scan itself: no real sleep, nothing racing.
    ttl = timedelta(minutes=40)
    now = [datetime(2026, 12, 1, 9, 0, tzinfo=UTC)]
    end = now[0] + timedelta(hours=2)

    def clock() -> datetime:
        return now[0]

    two_hours = asyncio.Event()

    async def sleep(seconds: float) -> None:
        now[0] += timedelta(seconds=seconds)
        if now[0] >= end:
            two_hours.set()
        await asyncio.sleep(0)

    seen: list[GuardHolder | None] = []

    async def long_scan(tenant_id: str, run_id: str) -> Any:
        # The renewals move the clock (each waits for the last); a scan that nothing renews
        # waits at most GIVE_UP real seconds, then two hours have passed all the same.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(two_hours.wait(), GIVE_UP)
        now[0] = max(now[0], end)
        # A worker asking now: busy, with this run.
        seen.append(guard.acquire(tenant_id, new_run_id(clock()), clock(), ttl))
        return SimpleNamespace(tenant_id=tenant_id, run_id=run_id)

    store = SimpleNamespace(queue_run=lambda tenant, when, run_id: None)
    scanner = SimpleNamespace(
        settings=SimpleNamespace(role_of=lambda tenant_id: "customer"), store=store, scan=long_scan
    )
    scan = guarded_scan(cast(Scanner, scanner), guard, ttl, clock, sleep)

    result = asyncio.run(scan(FREE))

    (holder,) = seen
    assert holder is not None and holder.run_id == result.run_id and holder.status == "running"
    assert guard.holder(FREE, clock()) is None  # released once the scan ended

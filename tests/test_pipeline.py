"""Scanner behaviour around the edges of a run: retention after each scan, and a cancelled scan
recorded as failed rather than left running (Azurite; snapshots built in code)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from partnerguard.model import TenantSnapshot
from partnerguard.pipeline import Scanner
from partnerguard.settings import Settings
from partnerguard.storage import ScanStore
from tests.snapshot_builders import TENANT_ID, registration, snapshot, user

T0 = datetime(2026, 1, 5, 6, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def one_incapable_user(settings: Settings, tenant_id: str, now: datetime) -> TenantSnapshot:
    alice = user("alice")
    return snapshot(
        tenant_id=tenant_id,
        collected_at=now,
        users=[alice],
        registration_details=[registration(alice, capable=False)],
        conditional_access_policies=[],
        security_defaults_enabled=True,
    )


def test_runs_older_than_the_retention_are_purged_after_a_scan(scan_store: ScanStore) -> None:
    clock = Clock(T0)
    settings = Settings.from_env({"RUN_RETENTION_DAYS": "30"})
    scanner = Scanner(settings, scan_store, one_incapable_user, clock)
    first = asyncio.run(scanner.scan(TENANT_ID))
    clock.now = T0 + timedelta(days=10)
    second = asyncio.run(scanner.scan(TENANT_ID))
    assert {r.run_id for r in scan_store.list_runs(TENANT_ID)} == {first.run_id, second.run_id}

    clock.now = T0 + timedelta(days=35)
    third = asyncio.run(scanner.scan(TENANT_ID))
    kept = {r.run_id for r in scan_store.list_runs(TENANT_ID)}
    assert kept == {second.run_id, third.run_id}
    assert scan_store.get_report(TENANT_ID, first.run_id) is None


def test_a_cancelled_scan_is_recorded_as_failed(scan_store: ScanStore) -> None:
    started = asyncio.Event()

    async def slow(settings: Settings, tenant_id: str, now: datetime) -> TenantSnapshot:
        started.set()
        await asyncio.sleep(60)
        raise AssertionError("not reached")

    scanner = Scanner(Settings.from_env({}), scan_store, slow, Clock(T0))

    async def cancel_mid_scan() -> None:
        task = asyncio.create_task(scanner.scan(TENANT_ID))
        await started.wait()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return
        raise AssertionError("the scan should have been cancelled")

    asyncio.run(cancel_mid_scan())
    run = scan_store.list_runs(TENANT_ID, top=1)[0]
    assert run.status == "failed"
    assert run.error is not None and run.error["code"] == "cancelled"

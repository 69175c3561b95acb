"""Requesting a scan, for the timer and `POST /api/tenants/{id}/scans` alike: the scan guard
first, then the `queued` run row, then the message. The command line's `scan` takes the same
guard (`guarded_scan`): on shared storage it never scans a tenant a worker is scanning, nor a
worker one it is.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from partnerguard.model import TenantInfo
from partnerguard.queues.scan_message import ScanMessage, send_scan

if TYPE_CHECKING:  # the SDK is imported where it is used, so importing this module stays light
    from azure.storage.queue import QueueClient

    from partnerguard.pipeline import Scanner, ScanResult
    from partnerguard.storage import ScanStore
    from partnerguard.storage.scan_guard import GuardHolder, ScanGuard

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScanQueued:
    run_id: str


@dataclass(frozen=True)
class ScanBusy:
    """The tenant already has a live queued or running scan: this one."""

    holder: GuardHolder


def request_scan(
    store: ScanStore,
    guard: ScanGuard,
    scans: QueueClient,
    tenant: TenantInfo,
    trigger: str,
    now: datetime,
    ttl: timedelta,
) -> ScanQueued | ScanBusy:
    """Queue one scan of `tenant` unless one is queued or running: guard first, then the run row
    (status `queued`), then the message. The guard makes two concurrent requests queue one scan;
    the run row before the message means the worker always finds the run its message names.
    If writing the run or the message fails, the run is marked failed and the guard released, so
    a storage hiccup never blocks the tenant until the guard expires."""
    from partnerguard.storage.keys import new_run_id

    tenant_id = tenant.id.lower()
    run_id = new_run_id(now)
    holder = guard.acquire(tenant_id, run_id, now, ttl)
    if holder is not None:
        return ScanBusy(holder)
    queued = False
    try:
        store.queue_run(tenant, now, run_id=run_id)
        queued = True
        send_scan(scans, ScanMessage(tenant_id, run_id, now, trigger))
    except Exception as error:
        try:
            if queued:
                store.fail_run(
                    tenant_id, run_id, "enqueue_failed", f"could not queue the scan: {type(error).__name__}", now
                )
        finally:
            guard.release(tenant_id, run_id)
        raise
    return ScanQueued(run_id)


class ScanInProgress(Exception):
    """Another run holds the tenant's scan guard (a worker's, or another command's): this scan
    was not started. Its code (`ScanInProgress`) is the report's error code on the command line."""

    def __init__(self, holder: GuardHolder) -> None:
        super().__init__(
            f"run {holder.run_id} is {holder.status} since {holder.since:%Y-%m-%d %H:%M:%S} UTC; "
            "try again when it finishes"
        )
        self.holder = holder


async def _keep_guard(
    guard: ScanGuard,
    tenant_id: str,
    run_id: str,
    ttl: timedelta,
    clock: Callable[[], datetime],
    sleep: Callable[[float], Awaitable[None]],
) -> None:
    """Renew the guard every third of its lifetime until cancelled: a scan on the command line
    has no time limit, and a guard that lapsed mid-scan would let a worker scan the same tenant.
    A renewal under way when cancelled is waited for (it must not land after the release)."""
    every = max(ttl.total_seconds() / 3, 1.0)
    while True:
        await sleep(every)
        renewing = asyncio.ensure_future(asyncio.to_thread(guard.renew, tenant_id, run_id, clock(), ttl))
        try:
            other = await asyncio.shield(renewing)
        except asyncio.CancelledError:
            await asyncio.wait([renewing])
            raise
        except Exception as error:
            log.warning("could not renew the scan guard of %s (%s); trying again", tenant_id, type(error).__name__)
            continue
        if other is not None:
            log.warning("the scan guard of %s lapsed and run %s took it", tenant_id, other.run_id)
            return


def guarded_scan(
    scanner: Scanner,
    guard: ScanGuard,
    ttl: timedelta,
    clock: Callable[[], datetime],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Callable[[str], Coroutine[Any, Any, ScanResult]]:
    """`scanner.scan` under the tenant's scan guard, as the worker scans: the guard taken for a
    `queued` run row, then `running`, renewed every third of `ttl` while the scan runs (`sleep`
    waits between renewals), released when the scan ends (whatever happens). A tenant whose
    guard another run holds is not scanned: its result carries `ScanInProgress`."""
    from partnerguard.model import TenantInfo
    from partnerguard.pipeline import ScanResult
    from partnerguard.storage.keys import new_run_id

    async def scan(tenant_id: str) -> ScanResult:
        tenant_id = tenant_id.lower()
        now = clock()
        run_id = new_run_id(now)
        acquiring = asyncio.ensure_future(asyncio.to_thread(guard.acquire, tenant_id, run_id, now, ttl))
        try:
            holder = await asyncio.shield(acquiring)
        except asyncio.CancelledError:
            # Ctrl-C while the guard was being taken: the call goes on in its thread and may take
            # it all the same; wait for it and give back what it took (else the tenant stays
            # busy for the worker and the next command until the guard's TTL).
            await asyncio.wait([acquiring])
            if not acquiring.cancelled() and acquiring.exception() is None and acquiring.result() is None:
                await asyncio.to_thread(guard.release, tenant_id, run_id)
            raise
        if holder is None:
            try:
                tenant = TenantInfo(tenant_id, tenant_id, scanner.settings.role_of(tenant_id))
                await asyncio.to_thread(scanner.store.queue_run, tenant, now, run_id)
                holder = await asyncio.to_thread(guard.mark_running, tenant_id, run_id, clock(), ttl)
                if holder is None:
                    keeping = asyncio.ensure_future(_keep_guard(guard, tenant_id, run_id, ttl, clock, sleep))
                    try:
                        return await scanner.scan(tenant_id, run_id)
                    finally:
                        keeping.cancel()
                        await asyncio.wait([keeping])
                # Our guard expired before we started and another run took it (a very slow
                # storage call): that run scans the tenant.
                busy = ScanInProgress(holder)
                await asyncio.to_thread(scanner.store.fail_run, tenant_id, run_id, "superseded", str(busy), clock())
                return ScanResult(tenant_id, run_id, None, f"ScanInProgress: {busy}", busy)
            finally:
                await asyncio.to_thread(guard.release, tenant_id, run_id)
        busy = ScanInProgress(holder)
        return ScanResult(tenant_id, run_id, None, f"ScanInProgress: {busy}", busy)

    return scan

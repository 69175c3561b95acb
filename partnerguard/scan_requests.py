"""Requesting a scan, for the timer and `POST /api/tenants/{id}/scans` alike: the scan guard
first, then the `queued` run row, then the message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from partnerguard.model import TenantInfo
from partnerguard.queues.scan_message import ScanMessage, send_scan

if TYPE_CHECKING:  # the SDK is imported where it is used, so importing this module stays light
    from azure.storage.queue import QueueClient

    from partnerguard.storage import ScanStore
    from partnerguard.storage.scan_guard import GuardHolder, ScanGuard


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

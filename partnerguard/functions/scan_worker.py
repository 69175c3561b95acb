"""The scan worker: one message of `partnerguard-scans` is one scan (partnerguard.scan_jobs).

A malformed message is poisoned by the worker itself and completes; a transient failure raises,
so the host retries it after `visibilityTimeout` and moves it to `partnerguard-scans-poison`
after `maxDequeueCount` attempts (host.json) — by then the worker has marked the run failed.
"""

from __future__ import annotations

import azure.functions as func

from partnerguard.queues.names import SCAN_QUEUE, STORAGE_CONNECTION

blueprint = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated


@blueprint.queue_trigger(arg_name="message", queue_name=SCAN_QUEUE, connection=STORAGE_CONNECTION)
async def scan_worker(message: func.QueueMessage) -> None:
    # Imported here: the pipeline is heavy, and indexing the app must stay fast.
    from partnerguard import services
    from partnerguard.scan_jobs import process_scan_message

    await process_scan_message(
        services.get(),
        message.get_body(),
        message_id=message.id,
        dequeue_count=int(message.dequeue_count or 1),
    )

"""The alert worker: one message of `partnerguard-alerts` is one alert to deliver exactly once
(partnerguard/alert_jobs.py, partnerguard/alerts/delivery.py).

Malformed messages and alerts that failed for good are poisoned by the worker with their reason;
throttling and short outages re-queue the message with a delay; anything else raises, so the
host retries it and moves it to `partnerguard-alerts-poison` after `maxDequeueCount` attempts
(host.json), by which time the worker has recorded the failure on the alert and its run.
"""

from __future__ import annotations

import azure.functions as func

from partnerguard.queues.names import ALERT_QUEUE, STORAGE_CONNECTION

blueprint = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated


@blueprint.queue_trigger(arg_name="message", queue_name=ALERT_QUEUE, connection=STORAGE_CONNECTION)
async def alert_worker(message: func.QueueMessage) -> None:
    # Imported here: the storage and email SDKs are heavy, and indexing the app must stay fast.
    from partnerguard import services
    from partnerguard.alert_jobs import process_alert_message

    await process_alert_message(
        services.get(),
        message.get_body(),
        message_id=message.id,
        dequeue_count=int(message.dequeue_count or 1),
    )

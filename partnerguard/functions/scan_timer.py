"""The scan timer: on SCAN_SCHEDULE, queue one scan per monitored tenant (partnerguard.scan_jobs.fan_out).

The schedule is the app setting `%SCAN_SCHEDULE%` (NCRONTAB, UTC), so infrastructure and local
settings choose it; `use_monitor` keeps the schedule's state in storage so a restart neither
skips nor doubles an occurrence, and `run_on_startup` stays off (every deployment or scale-out
would otherwise start a fan-out). The timer does no scanning: the queue spreads scans over
workers, and the host's queue retries cover each one.
"""

from __future__ import annotations

import azure.functions as func

blueprint = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated


@blueprint.timer_trigger(schedule="%SCAN_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
async def scan_timer(timer: func.TimerRequest) -> None:
    # Imported here: the pipeline is heavy, and indexing the app must stay fast.
    from partnerguard import services
    from partnerguard.scan_jobs import fan_out

    await fan_out(services.get(), past_due=bool(timer.past_due))

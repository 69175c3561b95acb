"""What the scan timer and the scan worker do, as plain functions over `Services`.

The blueprints in `partnerguard/functions/` only adapt triggers to these; the logic lives here so
tests can call it and the Functions modules stay thin. Storage clients are synchronous, so every
storage call runs in a worker thread: the Python worker runs async functions on one event loop,
and a blocking call there would stall every other invocation of the process (the scans included).

**Fan-out** (timer): enumerate the monitored tenants (configured + discovered) and queue one scan
per tenant through `scan_requests.request_scan` — skipping a tenant whose scan is still queued or
running (the guard) and one whose consent is broken and was probed within a day. No scanning.
Then the monitor watches itself (partnerguard/alerts/monitor.py: stale tenants, lost consent,
poisoned messages, each alerted once per incident), alerts whose message was lost are queued
again, and finished alerts past RUN_RETENTION_DAYS are purged.

The alert worker is partnerguard/alert_jobs.py.

**Worker** (one scan message):
1. parse; a malformed message goes to `partnerguard-scans-poison` with its reason and the
   invocation completes (a retry cannot fix it);
2. a message whose run already finished is a redelivery: nothing is scanned again; what the run
   owes is recorded and queued again if it was not (alert ids are deterministic and delivery
   is exactly once, so nothing is sent twice);
3. take the guard as `running`; if another live run holds it (this message waited past its
   guard's time-to-live and a newer scan was queued meanwhile), this run is `superseded`;
4. scan with the message's run id: a redelivery repeats the same run (same RowKeys: no
   duplicate run or findings);
5. consent bookkeeping, the registry's last run, release the guard; then record and queue what
   the run owes (partnerguard/alerts/): its digest when findings changed, a reminder when due,
   a consent problem when consent just broke;
6. a transient failure (storage or Graph unavailable) is re-raised for the host to retry after
   `visibilityTimeout`; on the last attempt (`dequeue_count >= maxDequeueCount`) the run is
   marked failed and the guard released first, so nothing stays `running`;
7. when the scan's sign-in read stopped at its deadline *after reading at least one page*
   (`ScanResult.sign_in_read_continues`), a continuation scan of the tenant is queued at once
   (trigger `continuation`, through `request_scan` like any other scan), so a first read that
   needs several executions does not wait for the schedule. A read that made no progress queues
   nothing: the continuation can never loop without moving the read forward.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from partnerguard.graph.errors import SignInFailed, Throttled, TransientGraphError
from partnerguard.logs import safe_error
from partnerguard.model import TenantInfo
from partnerguard.monitored_tenants import consent_after, monitored_tenants, skip_reason
from partnerguard.pipeline import ScanResult
from partnerguard.queues.documents import MalformedMessage
from partnerguard.queues.names import ALERT_POISON_QUEUE, SCAN_POISON_QUEUE
from partnerguard.queues.poison import poison
from partnerguard.queues.scan_message import ScanMessage, parse_scan_message
from partnerguard.scan_requests import ScanBusy, ScanQueued, request_scan
from partnerguard.services import Services
from partnerguard.storage.records import RUN_FAILED, RUN_SUCCEEDED, RunRecord
from partnerguard.storage.tenant_registry import TenantRecord
from partnerguard.text import safe_text

log = logging.getLogger(__name__)

FINISHED = (RUN_SUCCEEDED, RUN_FAILED)
RETRYABLE_HTTP_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def is_transient(error: BaseException) -> bool:
    """Failures that a retry a minute later may not meet: storage or Graph unreachable or busy."""
    import httpx
    from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

    if isinstance(error, SignInFailed):
        return False  # counted by the consent bookkeeping, never retried in a loop
    if isinstance(error, TransientGraphError | Throttled | ServiceRequestError | ServiceResponseError):
        return True
    if isinstance(error, httpx.TransportError | TimeoutError | ConnectionError):
        return True
    return isinstance(error, HttpResponseError) and error.status_code in RETRYABLE_HTTP_STATUSES


# -- the timer ------------------------------------------------------------------------------------


@dataclass
class FanOut:
    queued: dict[str, str] = field(default_factory=dict)  # tenant -> run id
    skipped: dict[str, str] = field(default_factory=dict)  # tenant -> why
    failed: dict[str, str] = field(default_factory=dict)  # tenant -> error type


class FanOutIncomplete(RuntimeError):
    """Some tenants could not be queued; the rest were. Raised so the invocation shows as failed."""


def _queue_all(services: Services, tenants: list[str], now: datetime) -> FanOut:
    outcome = FanOut()
    records = {record.id: record for record in services.registry.list()}
    scans = services.scan_queue()
    for tenant_id in tenants:
        record = records.get(tenant_id)
        reason = skip_reason(record, now)
        if reason is not None:
            outcome.skipped[tenant_id] = reason
            continue
        tenant = TenantInfo(tenant_id, record.name if record else tenant_id, services.settings.role_of(tenant_id))
        try:
            result = request_scan(
                services.store, services.guard, scans, tenant, "schedule", now, services.host.guard_ttl
            )
        except Exception as error:
            # One tenant's storage trouble must not cost the others their scan.
            log.exception("could not queue a scan of tenant %s", tenant_id)
            outcome.failed[tenant_id] = type(error).__name__
            continue
        if isinstance(result, ScanBusy):
            outcome.skipped[tenant_id] = f"scan {result.holder.run_id} is {result.holder.status}"
        else:
            assert isinstance(result, ScanQueued)
            outcome.queued[tenant_id] = result.run_id
    return outcome


class MonitorIncomplete(RuntimeError):
    """A self-check of the monitor failed (after the scans were queued): the invocation shows
    as failed, so the platform's own failure alerts see it."""


def _watch_ourselves(services: Services, tenants: list[str], now: datetime) -> list[str]:
    """The monitor's own checks and the alert outbox's upkeep, each on its own so one failing
    does not stop the others; returns the names of those that failed."""
    from partnerguard.alerts.messages import queue_owed
    from partnerguard.alerts.monitor import consent_incidents, poison_incidents, stale_incidents
    from partnerguard.alerts.policy import HealthIncident, record_health

    settings = services.settings
    failed: list[str] = []
    incidents: list[HealthIncident] = []
    try:
        records = services.registry.list()
        incidents += stale_incidents(settings, records, tenants, now)
        incidents += consent_incidents(settings, records, tenants)
    except Exception:
        log.exception("the monitor could not check the tenants' runs and consent this time")
        failed.append("tenants")
    try:
        poison_queues = {SCAN_POISON_QUEUE: services.poison_queue(), ALERT_POISON_QUEUE: services.alert_poison_queue()}
        incidents += poison_incidents(poison_queues)
    except Exception:
        log.exception("the monitor could not check the poison queues this time")
        failed.append("poison queues")
    for incident in incidents:
        log.warning("monitor problem (%s): %s", incident.problem.kind, safe_text(incident.problem.detail, 300))
    upkeep: dict[str, Callable[[], int]] = {
        "health alerts": lambda: queue_owed(
            services.alerts, services.alert_queue(), record_health(settings, services.alerts, incidents, now), now
        ),
        # Alerts whose message was lost (a crash after the alert was recorded, a poisoned
        # message of a storage outage): queued again, delivered once.
        "owed alerts": lambda: queue_owed(services.alerts, services.alert_queue(), services.alerts.due(now), now),
        "alert retention": lambda: services.alerts.purge(now - timedelta(days=settings.run_retention_days)),
        # An email ACS accepted and then failed to deliver shows as failed, not as sent.
        "sent alerts": lambda: _verify_sent(services, now),
    }
    for name, step in upkeep.items():
        try:
            step()
        except Exception:
            log.exception("the monitor could not handle %s this time", name)
            failed.append(name)
    return failed


def _verify_sent(services: Services, now: datetime) -> int:
    delivery = services.delivery()
    return delivery.verify_sent(now) if delivery is not None else 0


async def fan_out(services: Services, past_due: bool = False) -> FanOut:
    """One scheduled fan-out: one queued scan per monitored tenant that needs one."""
    now = services.clock()
    if past_due:
        # The host missed the schedule (app stopped, scaled to zero, deploying). One fan-out now
        # covers it: scans read current state, so a catch-up burst would only repeat the same
        # work, and the guard would turn it away anyway.
        log.warning("the scan timer is past due; running one fan-out now, not a catch-up")
    settings = services.settings
    discover = services.discovery() if settings.discover_customers else None
    tenants = await monitored_tenants(settings, services.registry, discover, now)
    if not tenants:
        log.warning("no tenants to scan: set PARTNERGUARD_TENANTS or PARTNERGUARD_DISCOVER_CUSTOMERS")
        return FanOut()
    outcome = await asyncio.to_thread(_queue_all, services, tenants, now)
    monitor_failures = await asyncio.to_thread(_watch_ourselves, services, tenants, now)
    log.info(
        "scan fan-out: %d queued, %d skipped, %d failed of %d tenants",
        len(outcome.queued),
        len(outcome.skipped),
        len(outcome.failed),
        len(tenants),
    )
    for tenant_id, reason in outcome.skipped.items():
        log.info("tenant %s skipped: %s", tenant_id, reason)
    if outcome.failed:
        raise FanOutIncomplete(f"{len(outcome.failed)} of {len(tenants)} tenants could not be queued")
    if monitor_failures:
        raise MonitorIncomplete(f"the monitor's self-checks failed: {', '.join(monitor_failures)}")
    return outcome


# -- the worker -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerOutcome:
    """What the worker did with one message (for logs and tests)."""

    action: str  # "scanned" | "poisoned" | "duplicate" | "superseded"
    run_id: str | None = None
    status: str | None = None
    alerted: bool = False
    # The run id of the continuation scan queued for an unfinished sign-in read, if any.
    continuation: str | None = None


def _continue_sign_in_read(services: Services, tenant_id: str, result: ScanResult) -> str | None:
    """Queue the scan that continues an unfinished sign-in read; its run id, or None. Best
    effort: should it fail (or the tenant be busy), the next scheduled scan continues the read."""
    if not result.sign_in_read_continues:
        return None
    now = services.clock()
    tenant = TenantInfo(
        tenant_id,
        result.report.tenant.name if result.report is not None else tenant_id,
        services.settings.role_of(tenant_id),
    )
    try:
        queued = request_scan(
            services.store, services.guard, services.scan_queue(), tenant, "continuation", now, services.host.guard_ttl
        )
    except Exception:
        log.exception("tenant %s: could not queue the scan that continues its sign-in read", tenant_id)
        return None
    if isinstance(queued, ScanBusy):
        log.info("tenant %s: sign-in read continues with run %s", tenant_id, queued.holder.run_id)
        return None
    log.info("tenant %s: sign-in read incomplete; continuation scan %s queued", tenant_id, queued.run_id)
    return queued.run_id


def _owe_run_alerts(services: Services, tenant_id: str, run_id: str, consent_broken: TenantRecord | None) -> bool:
    """Record what the run owes (its digest, a reminder, a consent problem) and queue it."""
    from partnerguard.alerts.messages import queue_owed
    from partnerguard.alerts.monitor import consent_incidents
    from partnerguard.alerts.policy import owed_after_scan, record_health

    now = services.clock()
    settings = services.settings
    owed = owed_after_scan(settings, services.store, services.alerts, tenant_id, run_id, now)
    if consent_broken is not None:
        # Told now rather than at the next timer tick; the incident key makes it one email.
        broken = consent_incidents(settings, [consent_broken], [tenant_id])
        owed += record_health(settings, services.alerts, broken, now)
    return queue_owed(services.alerts, services.alert_queue(), owed, now) > 0


def _redelivered(services: Services, run: RunRecord) -> WorkerOutcome:
    """The message's run already finished: scan nothing. What the first delivery may not have
    finished is done again (all of it idempotent): the registry's record of the run, freeing the
    guard, and what the run owes (the crash may have come before its alert was queued)."""
    record = services.registry.get(run.tenant_id)
    last = record.last_run if record is not None else None
    # Run ids sort newest first: record this run unless the registry knows it or a newer one.
    if last is None or run.run_id < last.run_id:
        services.registry.record_scan(
            run.tenant_id,
            run.tenant_name or run.tenant_id,
            run.tenant_role or services.settings.role_of(run.tenant_id),
            run.run_id,
            run.status,
            run.finished or services.clock(),
            run.summary,
        )
    services.guard.release(run.tenant_id, run.run_id)
    alerted = False
    if run.alert_status in ("none", "pending"):
        alerted = _owe_run_alerts(services, run.tenant_id, run.run_id, None)
    return WorkerOutcome("duplicate", run.run_id, run.status, alerted)


def _prepare(services: Services, message: ScanMessage, now: datetime) -> WorkerOutcome | None:
    """The checks before a scan; an outcome when there is nothing to scan."""
    tenant_id, run_id = message.tenant_id, message.run_id
    run = services.store.get_run(tenant_id, run_id)
    if run is not None and run.status in FINISHED:
        log.info("scan message for run %s of tenant %s: the run already %s", run_id, tenant_id, run.status)
        return _redelivered(services, run)
    holder = services.guard.mark_running(tenant_id, run_id, now, services.host.guard_ttl)
    if holder is not None:
        log.warning(
            "run %s of tenant %s superseded: run %s holds the tenant (%s)",
            run_id,
            tenant_id,
            holder.run_id,
            holder.status,
        )
        services.store.fail_run(
            tenant_id,
            run_id,
            "superseded",
            f"the scan waited in the queue past its time-to-live; run {holder.run_id} scans the tenant instead",
            now,
        )
        return WorkerOutcome("superseded", run_id, RUN_FAILED)
    return None


def _after_scan(services: Services, message: ScanMessage, result: ScanResult) -> WorkerOutcome:
    tenant_id, run_id = message.tenant_id, message.run_id
    now = services.clock()
    previous: TenantRecord | None = services.registry.get(tenant_id)
    sign_in_error = result.exception if isinstance(result.exception, SignInFailed) else None
    newly_broken = False
    # Consent is only known when sign-in was attempted: it worked (a report) or it failed.
    if result.report is not None or sign_in_error is not None:
        update = consent_after(previous, sign_in_error, now)
        services.registry.set_consent(
            tenant_id, update.consent, update.error, now, update.sign_in_failures, update.since
        )
        newly_broken = update.newly_broken
        if update.consent != "ok":
            log.warning("tenant %s: consent %s (%s)", tenant_id, update.consent, safe_text(update.error or "", 300))
    report = result.report
    status = report.status if report is not None else RUN_FAILED
    name = report.tenant.name if report is not None else (previous.name if previous else tenant_id)
    role = report.tenant.role if report is not None else services.settings.role_of(tenant_id)
    services.registry.record_scan(
        tenant_id, name, role, run_id, status, report.finished if report else now, report.summary if report else None
    )
    if result.access is not None:
        # What doctor judges, as this scan's sign-in found it (GET /api/tenants shows it).
        services.registry.record_access(tenant_id, result.access.to_document(), now)
    services.guard.release(tenant_id, run_id)
    # Last: should this fail, the retried message finds the run finished (_redelivered) and
    # owes the same alerts again, under the same ids.
    broken = services.registry.get(tenant_id) if newly_broken else None
    alerted = _owe_run_alerts(services, tenant_id, run_id, broken)
    return WorkerOutcome("scanned", run_id, status, alerted)


def _give_up(services: Services, message: ScanMessage, error: BaseException, attempts: int) -> None:
    """The last attempt failed: the run is failed and the tenant free, before the host poisons
    the message. Best effort: storage may be what is failing."""
    from partnerguard.pipeline import failure_code

    now = services.clock()
    try:
        finished = services.store.get_run(message.tenant_id, message.run_id)
        if finished is not None and finished.status in FINISHED:
            # The scan finished and only what came after it failed: the run stands as it is.
            return
        services.store.fail_run(
            message.tenant_id,
            message.run_id,
            failure_code(error),
            # Redacted before it is cut (a secret cut in half would no longer be recognised):
            # the run's error is served by the HTTP API and the dashboard.
            f"gave up after {attempts} attempts: {type(error).__name__}: {safe_error(error, 500)}",
            now,
        )
        services.registry.record_scan(
            message.tenant_id,
            message.tenant_id,
            services.settings.role_of(message.tenant_id),
            message.run_id,
            RUN_FAILED,
            now,
        )
    finally:
        services.guard.release(message.tenant_id, message.run_id)


def _is_monitored(services: Services, tenant_id: str) -> bool:
    if tenant_id.lower() in services.settings.tenants:
        return True
    record = services.registry.get(tenant_id)
    return record is not None and record.discovered


async def process_scan_message(
    services: Services, body: bytes | str, *, message_id: str | None = None, dequeue_count: int = 1
) -> WorkerOutcome:
    """Handle one scan message (see the module docstring). Raises only for transient failures."""
    now = services.clock()
    try:
        message = parse_scan_message(body)
    except MalformedMessage as malformed:
        log.error("scan message %s refused and poisoned: %s", safe_text(message_id or "?", 100), malformed.reason)
        await asyncio.to_thread(poison, services.poison_queue(), body, malformed.reason, now, message_id, dequeue_count)
        return WorkerOutcome("poisoned")
    if not await asyncio.to_thread(_is_monitored, services, message.tenant_id):
        # Well-formed but about a tenant nobody asked to monitor (a foreign or stale producer):
        # scanning it would spend Graph budget on, and store data of, a tenant out of scope.
        reason = "the tenant is not monitored (not in PARTNERGUARD_TENANTS nor a discovered customer)"
        log.error("scan message %s refused and poisoned: %s", safe_text(message_id or "?", 100), reason)
        await asyncio.to_thread(poison, services.poison_queue(), body, reason, now, message_id, dequeue_count)
        return WorkerOutcome("poisoned")
    last_attempt = dequeue_count >= services.host.max_dequeue_count
    try:
        early = await asyncio.to_thread(_prepare, services, message, now)
        if early is not None:
            return early
        result = await services.scanner().scan(message.tenant_id, message.run_id, retry_if=is_transient)
        outcome = await asyncio.to_thread(_after_scan, services, message, result)
        # After the guard is released (in _after_scan): the continuation takes it anew.
        continuation = await asyncio.to_thread(_continue_sign_in_read, services, message.tenant_id, result)
        return replace(outcome, continuation=continuation) if continuation else outcome
    except Exception as error:
        if last_attempt:
            log.error(
                "run %s of tenant %s failed on its last attempt (%d): %s",
                message.run_id,
                message.tenant_id,
                dequeue_count,
                type(error).__name__,
            )
            await asyncio.to_thread(_give_up, services, message, error, dequeue_count)
        else:
            log.warning(
                "run %s of tenant %s: attempt %d of %d failed (%s); the host retries it",
                message.run_id,
                message.tenant_id,
                dequeue_count,
                services.host.max_dequeue_count,
                type(error).__name__,
            )
        raise

"""One scan of one tenant, end to end: collect → evaluate → persist. The CLI, the demo and the
Functions workers all run this same code.

The run is recorded as `running` before Graph is called, so a crash leaves a visible trace, and
marked `failed` (with the error's type, never a token) if collection or persistence fails.
Storage clients are synchronous (azure-data-tables' async client needs aiohttp); their calls run
in a worker thread so they never block the event loop that is pacing Graph requests.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from checks import CHECK_IDS
from partnerguard.clock import Clock, utc_now
from partnerguard.doctor.facts import AccessFacts, facts_after_sign_in_failure, facts_from_snapshot
from partnerguard.evaluate import evaluate
from partnerguard.graph.errors import ConsentMissing, SignInFailed
from partnerguard.logs import redact
from partnerguard.method_strength_metrics import method_strength_metrics
from partnerguard.model import CheckContext, Report, ReportMetrics, SignInReadState, TenantInfo, TenantSnapshot
from partnerguard.read_plan import DEFAULT_READ_PLAN, ReadPlan
from partnerguard.settings import Settings
from partnerguard.storage import ScanStore
from partnerguard.storage.accepted_risks import ExceptionStore, utc_day

log = logging.getLogger(__name__)

SnapshotSource = Callable[[Settings, str, datetime], Awaitable[TenantSnapshot]]


# Scans at once in one process: as many as a Functions instance runs (host.json batchSize 16 +
# newBatchThreshold 8). A scan mostly waits for its tenant's report window (5 requests per 10 s),
# so it takes 8-20 scans in flight to keep the app's cross-tenant window (122 per 10 s) busy;
# docs/scaling.md has the arithmetic, `make bench` the measurement.
SCAN_CONCURRENCY = 24

# (table service URL, prefix) pairs whose collection tables this process has ensured.
_COLLECTION_TABLES_READY: set[tuple[str, str]] = set()


async def graph_snapshot(
    settings: Settings,
    tenant_id: str,
    now: datetime,
    *,
    store: ScanStore | None = None,
    read_plan: ReadPlan = DEFAULT_READ_PLAN,
    monotonic: Callable[[], float] = time.monotonic,
) -> TenantSnapshot:
    """Sign in to the tenant and collect everything the checks need from Microsoft Graph.

    With `store`, the collection keeps its state beside the scan tables (same service, same
    prefix): sign-in watermarks and aggregates, the per-user authentication-methods cache and the
    registration roster. `read_plan` says how much of the paced reports each scan reads.
    """
    # Imported here so that importing the pipeline (and function_app) stays light: the Graph
    # stack is only loaded by the worker that actually scans.
    from partnerguard.collect import collect_snapshot, fallback_budget_seconds, sign_in_budget_seconds
    from partnerguard.graph.client import GraphClient
    from partnerguard.host_config import host_config
    from partnerguard.storage.method_cache import MethodCache
    from partnerguard.storage.registration_roster import RegistrationRoster
    from partnerguard.storage.sign_in_aggregates import SignInStore

    sign_ins = SignInStore(store.service, store.prefix) if store is not None else None
    method_cache = MethodCache(store.service, store.prefix) if store is not None else None
    roster = RegistrationRoster(store.service, store.prefix) if store is not None else None
    try:
        if store is not None and sign_ins is not None and method_cache is not None:
            ready_key = (store.service.url, store.prefix)
            if ready_key not in _COLLECTION_TABLES_READY:
                await asyncio.to_thread(sign_ins.ensure_tables)
                await asyncio.to_thread(method_cache.ensure_tables)
                if roster is not None:
                    await asyncio.to_thread(roster.ensure_tables)
                _COLLECTION_TABLES_READY.add(ready_key)
        # The client builds the tenant's credential itself, renews it after an unexpected 401
        # and closes it with the client.
        async with GraphClient(settings, tenant_id) as client:
            return await collect_snapshot(
                client,
                settings,
                tenant_id,
                now,
                sign_ins=sign_ins,
                method_cache=method_cache,
                registration_roster=roster,
                read_plan=read_plan,
                # The clock of the collection's deadlines (the bench passes its virtual one).
                clock=monotonic,
                # host.json's functionTimeout bounds a scan in Azure; the fallback gets its share.
                fallback_budget_s=fallback_budget_seconds(host_config().function_timeout.total_seconds()),
                # ...and the sign-in read stops starting pages at its share, to continue later.
                sign_in_budget_s=sign_in_budget_seconds(host_config().function_timeout.total_seconds()),
            )
    finally:
        for opened in (sign_ins, method_cache, roster):
            if opened is not None:
                opened.close()


def failure_code(error: BaseException) -> str:
    """The `error.code` of a run that failed with `error` (SPEC §4): sign-in failures get stable
    codes that scripts and the tenant registry act on; anything else is named by its type."""
    if isinstance(error, ConsentMissing):
        return "consent_missing"
    if isinstance(error, SignInFailed):
        return "sign_in_failed"
    return type(error).__name__


@dataclass(frozen=True)
class ScanResult:
    tenant_id: str
    run_id: str
    report: Report | None
    # Why the run failed before it produced a report (collection or storage failure).
    error: str | None = None
    # The exception behind `error`, for callers that act on its type (the queue worker tells
    # missing consent from other failures). Never rendered: `error` is the text people see.
    exception: BaseException | None = None
    # What the scan's sign-in established about access (doctor's facts, partnerguard/doctor/facts.py):
    # from the snapshot, or from the sign-in failure; None when sign-in was never attempted.
    access: AccessFacts | None = None
    # How far the scan's sign-in read got; incomplete when it stopped at its deadline and
    # continues in the next execution (the scan worker queues that execution at once).
    sign_in_read: SignInReadState | None = None

    @property
    def sign_in_read_continues(self) -> bool:
        """The sign-in read stopped early after making progress: another scan continues it."""
        read = self.sign_in_read
        return read is not None and not read.complete and read.progressed

    @property
    def failed(self) -> bool:
        return self.report is None or self.report.status == "failed"

    @property
    def error_code(self) -> str | None:
        """The run's `error.code` (SPEC §4) when it failed before producing a report."""
        return failure_code(self.exception) if self.exception is not None else None


def check_context(settings: Settings, now: datetime) -> CheckContext:
    return CheckContext(
        now=now,
        include_guests=settings.include_guests,
        signin_lookback_hours=settings.signin_lookback_hours,
        credential_expiry_days=settings.credential_expiry_days,
        secret_max_lifetime_days=settings.secret_max_lifetime_days,
        gdap_expiry_days=settings.gdap_expiry_days,
        emergency_access_accounts=settings.emergency_access_accounts,
    )


class Scanner:
    def __init__(
        self,
        settings: Settings,
        store: ScanStore,
        snapshot_source: SnapshotSource = graph_snapshot,
        clock: Clock = utc_now,
        exceptions: ExceptionStore | None = None,
        read_plan: ReadPlan = DEFAULT_READ_PLAN,
    ) -> None:
        self.settings = settings
        self.store = store
        # The default source keeps its collection state (sign-ins, methods cache, registration
        # roster) in this store, and reads as much as `read_plan` says (the bench's baseline:
        # `ReadPlan.full_reads()`).
        self.read_plan = read_plan
        self.snapshot_source = (
            functools.partial(graph_snapshot, store=store, read_plan=read_plan)
            if snapshot_source is graph_snapshot
            else snapshot_source
        )
        self.clock = clock
        # Exceptions live beside the scan tables (same service, same prefix) unless given.
        self.exceptions = exceptions or ExceptionStore(store.service, store.prefix, check_ids=CHECK_IDS)

    async def scan(
        self, tenant_id: str, run_id: str | None = None, *, retry_if: Callable[[Exception], bool] | None = None
    ) -> ScanResult:
        """Scan one tenant. `run_id` names a run queued earlier (the queue worker's message): a
        redelivered message then reuses its run instead of starting another. A failure for which
        `retry_if` answers true is re-raised with the run left `running`, for the caller to retry
        the same run; any other failure marks the run `failed`."""
        tenant_id = tenant_id.lower()
        started = self.clock()
        tenant = TenantInfo(tenant_id, tenant_id, self.settings.role_of(tenant_id))
        run_id = await asyncio.to_thread(self.store.start_run, tenant, started, run_id)
        log.info("scan %s of tenant %s started", run_id, tenant_id)
        try:
            snapshot = await self.snapshot_source(self.settings, tenant_id, started)
            access = facts_from_snapshot(snapshot)
            tenant = TenantInfo(tenant_id, snapshot.tenant_name or tenant_id, snapshot.role)
            results = evaluate(snapshot, check_context(self.settings, started))
            metrics = self._metrics(snapshot)
            # Exceptions valid on the UTC day the scan started; they reach the report as the
            # state `excepted` plus `evidence.exception`, never silently.
            excepted = await asyncio.to_thread(self.exceptions.active_for, tenant_id, utc_day(started))
            report = await asyncio.to_thread(
                functools.partial(self.store.complete_run, metrics=metrics),
                tenant,
                run_id,
                started,
                self.clock(),
                results,
                excepted,
            )
        except asyncio.CancelledError:
            # A Functions timeout or Ctrl-C: record the failure (shielded, so the cancellation
            # does not cancel the recording too) instead of leaving the run "running".
            log.warning("scan %s of tenant %s was cancelled", run_id, tenant_id)
            await asyncio.shield(
                asyncio.to_thread(self._record_failure, tenant_id, run_id, "cancelled", "the scan was cancelled")
            )
            raise
        except Exception as error:
            code = failure_code(error)
            if retry_if is not None and retry_if(error):
                log.warning("scan %s of tenant %s failed (%s); it will be retried", run_id, tenant_id, code)
                raise
            log.exception("scan %s of tenant %s failed (%s)", run_id, tenant_id, code)
            await asyncio.to_thread(self._record_failure, tenant_id, run_id, code, str(error))
            cloud = self.settings.cloud.name
            failed_access = facts_after_sign_in_failure(error, cloud) if isinstance(error, SignInFailed) else None
            return ScanResult(tenant_id, run_id, None, f"{code}: {error}", error, failed_access)
        await asyncio.to_thread(self._purge_expired, tenant_id, started)
        log.info(
            "scan %s of tenant %s %s: %s",
            run_id,
            tenant_id,
            report.status,
            ", ".join(f"{k} {v}" for k, v in report.summary.items()),
        )
        return ScanResult(tenant_id, run_id, report, access=access, sign_in_read=snapshot.sign_in_read)

    def _metrics(self, snapshot: TenantSnapshot) -> ReportMetrics | None:
        """The report's method-strength figures (SPEC §2 `metrics`), from the same snapshot.
        Informative, like a check's evidence: a fault in them is logged and the report goes
        without them, never a failed scan."""
        try:
            return method_strength_metrics(snapshot, self.settings.include_guests)
        except Exception:
            log.exception("could not compute the method-strength metrics of tenant %s", snapshot.tenant_id)
            return None

    def _purge_expired(self, tenant_id: str, now: datetime) -> None:
        """RUN_RETENTION_DAYS: runs and resolved findings older than the retention go, a RowKey
        range per tenant after each scan. Best effort: a purge that fails waits for the next scan
        and never fails the scan it follows."""
        try:
            purged = self.store.purge_expired(tenant_id, now - timedelta(days=self.settings.run_retention_days))
        except Exception:
            log.exception("could not purge expired runs of tenant %s", tenant_id)
            return
        if purged.runs or purged.findings:
            log.info("tenant %s: purged %d runs and %d resolved findings", tenant_id, purged.runs, purged.findings)

    def _record_failure(self, tenant_id: str, run_id: str, code: str, message: str) -> None:
        try:
            # Redacted before it is cut (the store redacts too, but a secret cut in two would no
            # longer be recognised there).
            self.store.fail_run(tenant_id, run_id, code, redact(message)[:1000], self.clock())
        except Exception:
            # Storage itself is down: the run stays "running" until its time-to-live; the caller
            # still learns of the failure from the ScanResult and the log.
            log.exception("could not record the failure of run %s", run_id)

    async def scan_many(self, tenant_ids: Sequence[str], concurrency: int = SCAN_CONCURRENCY) -> list[ScanResult]:
        """Scan tenants concurrently (bounded), results in the order of `tenant_ids`."""
        gate = asyncio.Semaphore(concurrency)

        async def one(tenant_id: str) -> ScanResult:
            async with gate:
                return await self.scan(tenant_id)

        return list(await asyncio.gather(*(one(t) for t in tenant_ids)))

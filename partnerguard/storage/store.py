"""`ScanStore`: runs, reports and the finding lifecycle in Azure Table Storage.

The design (tables, keys, lifecycle, batching, limits) is described in the package docstring,
`partnerguard/storage/__init__.py`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from azure.data.tables import TableClient, TableEntity, TableServiceClient, UpdateMode

from partnerguard.logs import redact
from partnerguard.model import CheckResult, Report, ReportMetrics, TenantInfo, build_report
from partnerguard.settings import ConfigError, StorageSettings
from partnerguard.storage.batching import Operation, delete, plan_batches, submit_all, upsert
from partnerguard.storage.identity import storage_identity
from partnerguard.storage.keys import (
    check_range,
    finding_row_key,
    is_run_id,
    new_run_id,
    run_findings_partition,
    run_ids_before,
    table_names,
    tenant_key,
)
from partnerguard.storage.lifecycle import (
    ACTIVE_PROPERTIES,
    ActiveFinding,
    ExceptionEvidence,
    LifecyclePlan,
    plan_lifecycle,
    with_exception_evidence,
)
from partnerguard.storage.limits import MAX_TEXT_UNITS, cap_text, join_chunks, split_chunks, to_json
from partnerguard.storage.records import (
    ALERT_NONE,
    ALERT_STATUSES,
    RUN_FAILED,
    RUN_QUEUED,
    RUN_RUNNING,
    RUN_SUMMARY_PROPERTIES,
    FindingPage,
    FindingRecord,
    RunRecord,
    as_utc,
)
from partnerguard.storage.sanitize import storable_results, storable_tenant

log = logging.getLogger(__name__)

FINDING_STATES = ("active", "resolved", "all")
MAX_PAGE_SIZE = 1000  # Table Storage returns at most 1,000 entities per page


class PurgeCounts(NamedTuple):
    runs: int
    findings: int


def table_service_client(settings: StorageSettings, **client_options: Any) -> TableServiceClient:
    """The Table service on a connection string, or on `table_service_uri` with the managed identity."""
    options: dict[str, Any] = {"connection_timeout": 20, "read_timeout": 120, **client_options}
    if settings.connection_string:
        return TableServiceClient.from_connection_string(settings.connection_string, **options)
    if settings.table_service_uri:
        return TableServiceClient(endpoint=settings.table_service_uri, credential=storage_identity(settings), **options)
    raise ConfigError("PARTNERGUARD_STORAGE", "neither a connection string nor __tableServiceUri is set")


class ScanStore:
    def __init__(self, service: TableServiceClient, prefix: str = "pg") -> None:
        runs, findings, run_findings = table_names(prefix)
        self.service = service
        # Kept so that stores of other tables (exceptions) can share the service and the prefix.
        self.prefix = prefix
        self.runs: TableClient = service.get_table_client(runs)
        self.findings: TableClient = service.get_table_client(findings)
        self.run_findings: TableClient = service.get_table_client(run_findings)

    @classmethod
    def from_settings(cls, settings: StorageSettings, prefix: str = "pg", **client_options: Any) -> ScanStore:
        """A store on a connection string, or on `table_service_uri` with the managed identity."""
        return cls(table_service_client(settings, **client_options), prefix=prefix)

    def close(self) -> None:
        for table in (self.runs, self.findings, self.run_findings):
            table.close()
        self.service.close()

    def ensure_tables(self) -> None:
        for table in (self.runs, self.findings, self.run_findings):
            self.service.create_table_if_not_exists(table.table_name)

    # -- runs -------------------------------------------------------------------------------

    def _tenant_fields(self, tenant: TenantInfo) -> dict[str, Any]:
        stored = storable_tenant(tenant)
        return {"tenant_name": stored.name, "tenant_role": stored.role}

    def queue_run(self, tenant: TenantInfo, now: datetime, run_id: str | None = None) -> str:
        """A run the HTTP API or the timer accepted and a worker will start (status `queued`).

        `run_id`, when given, is one the caller made with `new_run_id` to take the tenant's scan
        guard under before the run exists (see storage/scan_guard.py)."""
        if run_id is None:
            run_id = new_run_id(now)
        self._require_run_id(run_id)
        entity = {
            "PartitionKey": tenant_key(tenant.id),
            "RowKey": run_id,
            "status": RUN_QUEUED,
            "queued_at": now,
            "alert_status": ALERT_NONE,
            **self._tenant_fields(tenant),
        }
        self.runs.create_entity(entity)
        return run_id

    def start_run(self, tenant: TenantInfo, now: datetime, run_id: str | None = None) -> str:
        """Mark a run `running`: a new one, or the queued run `run_id`."""
        if run_id is None:
            run_id = new_run_id(now)
            entity = {
                "PartitionKey": tenant_key(tenant.id),
                "RowKey": run_id,
                "status": RUN_RUNNING,
                "queued_at": now,
                "started": now,
                "alert_status": ALERT_NONE,
                **self._tenant_fields(tenant),
            }
            self.runs.create_entity(entity)
            return run_id
        self._require_run_id(run_id)
        self.runs.upsert_entity(
            {
                "PartitionKey": tenant_key(tenant.id),
                "RowKey": run_id,
                "status": RUN_RUNNING,
                "started": now,
                **self._tenant_fields(tenant),
            },
            mode=UpdateMode.MERGE,
        )
        return run_id

    def complete_run(
        self,
        tenant: TenantInfo,
        run_id: str,
        started: datetime,
        finished: datetime,
        results: Sequence[CheckResult],
        excepted: Mapping[tuple[str, str], ExceptionEvidence] | Container[tuple[str, str]] = frozenset(),
        metrics: ReportMetrics | None = None,
    ) -> Report:
        """Store a run's results, advance the finding lifecycle, and return the run's report.

        `excepted` holds the (check id, subject id) pairs under a valid exception; given as a
        mapping to the exceptions themselves (`ExceptionStore.active_for`), each excepted finding
        also names its exception in `evidence.exception`. Subject ids are matched as stored (after
        capping). Writes go run findings first, lifecycle second, the run row last: a run only
        reads as completed once everything it refers to is stored. A repeated run (its queue
        message redelivered after a crash before the run row) replaces its run findings: rows
        of the earlier attempt this one no longer produced are removed.
        """
        self._require_run_id(run_id)
        tenant = storable_tenant(tenant)
        stored_results = storable_results(results)
        if isinstance(excepted, Mapping):
            stored_results = with_exception_evidence(stored_results, excepted)
        # Rows an earlier, incomplete attempt of this run resolved count as active again, in the
        # state they had (storage/lifecycle.py): no completed run ever said they were gone.
        reopened = self._resolved_by(tenant.id, run_id)
        active = {**self._active_rows(tenant.id), **{key: row for key, (row, _) in reopened.items()}}
        plan = plan_lifecycle(stored_results, active, excepted, run_id, finished)
        report = build_report(tenant, run_id, started, finished, stored_results, plan.states, metrics)
        partition = run_findings_partition(tenant.id, run_id)
        earlier = {
            str(row["RowKey"])
            for row in self.run_findings.query_entities(
                "PartitionKey eq @pk", parameters={"pk": partition}, select=["RowKey"]
            )
        }
        operations = list(self._run_finding_operations(report))
        stale = earlier - {str(entity["RowKey"]) for _, entity, _ in operations}
        submit_all(self.run_findings, operations)
        submit_all(self.run_findings, (delete(partition, row_key) for row_key in sorted(stale)))
        submit_all(self.findings, self._lifecycle_operations(tenant.id, run_id, finished, plan))
        submit_all(self.findings, (_restored(reopened[key][1]) for key in plan.restored))
        self.runs.upsert_entity(self._completed_run_entity(report), mode=UpdateMode.MERGE)
        return report

    def fail_run(self, tenant_id: str, run_id: str, code: str, message: str, now: datetime) -> None:
        """Mark a run `failed` with the error that stopped it (SPEC §4 `error`)."""
        self._require_run_id(run_id)
        self.runs.upsert_entity(
            {
                "PartitionKey": tenant_key(tenant_id),
                "RowKey": run_id,
                "status": RUN_FAILED,
                "finished": now,
                "error_code": cap_text(redact(code), 256),
                # Served by the HTTP API and the dashboard: an error's text may carry a secret (a
                # SAS signature in a URL, a token in a response), masked before it is stored.
                "error_message": cap_text(redact(message), MAX_TEXT_UNITS),
            },
            mode=UpdateMode.MERGE,
        )

    def set_alert_status(self, tenant_id: str, run_id: str, status: str, error: str | None = None) -> None:
        """Record the alert delivery of a run (SPEC §4 `alert`: none, pending, sent, failed)."""
        if status not in ALERT_STATUSES:
            raise ValueError(f"alert status must be one of {ALERT_STATUSES}, got {status!r}")
        self._require_run_id(run_id)
        entity: dict[str, Any] = {
            "PartitionKey": tenant_key(tenant_id),
            "RowKey": run_id,
            "alert_status": status,
        }
        # Merge cannot remove a property; an empty string clears an earlier error.
        entity["alert_error"] = cap_text(redact(error), MAX_TEXT_UNITS) if error else ""
        self.runs.upsert_entity(entity, mode=UpdateMode.MERGE)

    def get_run(self, tenant_id: str, run_id: str) -> RunRecord | None:
        if not is_run_id(run_id):
            return None
        entity = self._get(self.runs, tenant_key(tenant_id), run_id, RUN_SUMMARY_PROPERTIES)
        return None if entity is None else self._run_record(tenant_id, entity)

    def list_runs(self, tenant_id: str, top: int = 20) -> list[RunRecord]:
        """The tenant's newest runs first, of any status."""
        if top < 1:
            return []
        rows = self.runs.query_entities(
            "PartitionKey eq @pk",
            parameters={"pk": tenant_key(tenant_id)},
            select=RUN_SUMMARY_PROPERTIES,
            results_per_page=min(top, MAX_PAGE_SIZE),
        )
        return [self._run_record(tenant_id, entity) for entity in _first(rows, top)]

    def active_run(
        self, tenant_id: str, now: datetime, stale_after: timedelta = timedelta(hours=2)
    ) -> RunRecord | None:
        """The newest queued or running run, unless it is older than `stale_after` (a crashed worker)."""
        rows = self.runs.query_entities(
            "PartitionKey eq @pk and (status eq 'queued' or status eq 'running')",
            parameters={"pk": tenant_key(tenant_id)},
            select=RUN_SUMMARY_PROPERTIES,
        )
        for entity in _first(rows, 1):
            record = self._run_record(tenant_id, entity)
            since = record.started or record.queued_at
            if since is not None and now - since <= stale_after:
                return record
        return None

    # -- reports ----------------------------------------------------------------------------

    def latest_report(self, tenant_id: str) -> Report | None:
        """The report of the tenant's newest completed run (one that stored a report)."""
        rows = self.runs.query_entities(
            "PartitionKey eq @pk and has_report eq true",
            parameters={"pk": tenant_key(tenant_id)},
            select=["RowKey"],
        )
        for entity in _first(rows, 1):
            return self.get_report(tenant_id, str(entity["RowKey"]))
        return None

    def get_report(self, tenant_id: str, run_id: str) -> Report | None:
        """The report of one stored run, rebuilt exactly as `complete_run` returned it."""
        if not is_run_id(run_id):
            return None
        run = self._get(self.runs, tenant_key(tenant_id), run_id, None)
        if run is None or run.get("has_report") is not True:
            return None
        checks_text = join_chunks("checks", run)
        if checks_text is None:
            return None
        checks: list[dict[str, Any]] = json.loads(checks_text)
        findings: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for row in self.run_findings.query_entities(
            "PartitionKey eq @pk", parameters={"pk": run_findings_partition(tenant_id, run_id)}
        ):
            findings.setdefault(str(row["check_id"]), []).append((int(row["position"]), _finding_document(row)))
        for check in checks:
            check.pop("finding_count", None)
            check["findings"] = [doc for _, doc in sorted(findings.get(check["id"], []), key=lambda pair: pair[0])]
        started, finished = as_utc(run.get("started")), as_utc(run.get("finished"))
        if started is None or finished is None:
            return None
        document = {
            "schema": "partnerguard.report/v1",
            "tenant": {"id": tenant_id, "name": run.get("tenant_name") or "", "role": run.get("tenant_role")},
            "run_id": run_id,
            "started": started.isoformat(),
            "finished": finished.isoformat(),
            "checks": checks,
        }
        # The report's metrics (SPEC §2, optional): absent from runs stored before them.
        metrics_text = run.get("metrics")
        if isinstance(metrics_text, str) and metrics_text:
            # A damaged property (hand-edited, truncated) costs the figures, never the report:
            # the findings are what the run is for. Nonsense that parses is dropped by
            # ReportMetrics.from_document.
            try:
                document["metrics"] = json.loads(metrics_text)
            except ValueError:
                log.warning("run %s of tenant %s: stored metrics are not JSON; read as none", run_id, tenant_id)
        report = Report.from_document(document)
        # from_document reads times at second precision and defaults an empty name: keep what is stored.
        tenant = TenantInfo(tenant_id, str(run.get("tenant_name") or ""), str(run.get("tenant_role") or ""))
        return Report(tenant, report.run_id, started, finished, report.checks, report.metrics)

    # -- findings ---------------------------------------------------------------------------

    def active_findings(self, tenant_id: str) -> dict[tuple[str, str], FindingRecord]:
        """(check id, subject id) -> lifecycle row, for every finding not resolved."""
        rows = self.findings.query_entities(
            "PartitionKey eq @pk and state ne 'resolved'", parameters={"pk": tenant_key(tenant_id)}
        )
        records = (FindingRecord.from_entity(tenant_id, row) for row in rows)
        return {(r.check_id, r.subject_id): r for r in records}

    def get_finding(self, tenant_id: str, check_id: str, subject_id: str) -> FindingRecord | None:
        """The lifecycle row of one finding (any state), or None when it was never seen."""
        row_key = finding_row_key(check_id, subject_id)
        entity = self._get(self.findings, tenant_key(tenant_id), row_key, None)
        return None if entity is None else FindingRecord.from_entity(tenant_id, entity)

    def list_findings(
        self,
        tenant_id: str,
        state: str = "active",
        check_id: str | None = None,
        top: int = 100,
        continuation: str | None = None,
    ) -> FindingPage:
        """One page of lifecycle rows (SPEC §4 findings route); `continuation` is the previous `next`.

        A bad continuation token raises ValueError (the API answers 400).
        """
        if state not in FINDING_STATES:
            raise ValueError(f"state must be one of {FINDING_STATES}, got {state!r}")
        if not 1 <= top <= MAX_PAGE_SIZE:
            raise ValueError(f"top must be 1 to {MAX_PAGE_SIZE}, got {top}")
        partition = tenant_key(tenant_id)
        clauses = ["PartitionKey eq @pk"]
        parameters: dict[str, Any] = {"pk": partition}
        if state == "active":
            clauses.append("state ne 'resolved'")
        elif state == "resolved":
            clauses.append("state eq 'resolved'")
        if check_id is not None:
            low, high = check_range(check_id)
            clauses.append("RowKey ge @low and RowKey lt @high")
            parameters.update(low=low, high=high)
        token = _decode_continuation(continuation) if continuation else None
        pages = self.findings.query_entities(
            " and ".join(clauses), parameters=parameters, results_per_page=top
        ).by_page(continuation_token=token)
        # A filtered query may answer a page with fewer rows (even none) and a continuation.
        page = next(pages, None)
        rows = list(page) if page is not None else []
        next_token = getattr(pages, "continuation_token", None)
        return FindingPage(
            findings=[FindingRecord.from_entity(tenant_id, row) for row in rows],
            next=_encode_continuation(next_token) if next_token else None,
        )

    def resolved_in_run(self, tenant_id: str, run_id: str, limit: int = 1000) -> int:
        """How many findings `run_id` resolved (up to `limit`): with the report's `new` findings,
        this tells whether the run changed anything worth an alert, also after a redelivery."""
        self._require_run_id(run_id)
        rows = self.findings.query_entities(
            "PartitionKey eq @pk and state eq 'resolved' and resolved_run_id eq @run",
            parameters={"pk": tenant_key(tenant_id), "run": run_id},
            select=["RowKey"],
        )
        return len(_first(rows, limit))

    def resolved_findings(self, tenant_id: str, run_id: str, limit: int = 1000) -> list[FindingRecord]:
        """The lifecycle rows `run_id` resolved (up to `limit`), for the run's digest."""
        self._require_run_id(run_id)
        rows = self.findings.query_entities(
            "PartitionKey eq @pk and state eq 'resolved' and resolved_run_id eq @run",
            parameters={"pk": tenant_key(tenant_id), "run": run_id},
        )
        return [FindingRecord.from_entity(tenant_id, row) for row in _first(rows, limit)]

    def mark_notified(self, tenant_id: str, keys: Iterable[tuple[str, str]], when: datetime) -> int:
        """Record that an email told about these (check id, subject id) findings, in batches.

        Updates, never upserts: a finding purged meanwhile must not come back as a stub row. A
        transaction that meets one missing row fails whole, so its rows are then updated one by
        one, skipping the missing."""
        from azure.core.exceptions import ResourceNotFoundError
        from azure.data.tables import TableTransactionError, TransactionOperation

        partition = tenant_key(tenant_id)
        operations: list[Operation] = [
            (
                TransactionOperation.UPDATE,
                {"PartitionKey": partition, "RowKey": finding_row_key(check_id, subject_id), "last_notified": when},
                {"mode": UpdateMode.MERGE},
            )
            for check_id, subject_id in dict.fromkeys(keys)
        ]
        updated = 0
        for batch in plan_batches(operations):
            try:
                self.findings.submit_transaction(batch)
                updated += len(batch)
            except TableTransactionError:
                for _, entity, _options in batch:
                    try:
                        self.findings.update_entity(entity, mode=UpdateMode.MERGE)
                        updated += 1
                    except ResourceNotFoundError:
                        continue
        return updated

    # -- retention --------------------------------------------------------------------------

    def purge_expired(self, tenant_id: str, before: datetime) -> PurgeCounts:
        """Delete runs made before `before` (with their findings) and findings resolved before it."""
        partition = tenant_key(tenant_id)
        old_runs = [
            str(row["RowKey"])
            for row in self.runs.query_entities(
                "PartitionKey eq @pk and RowKey ge @oldest",
                parameters={"pk": partition, "oldest": run_ids_before(before)},
                select=["RowKey"],
            )
            if is_run_id(str(row["RowKey"]))
        ]
        for run_id in old_runs:
            run_partition = run_findings_partition(tenant_id, run_id)
            rows = self.run_findings.query_entities(
                "PartitionKey eq @pk", parameters={"pk": run_partition}, select=["RowKey"]
            )
            submit_all(self.run_findings, (delete(run_partition, str(row["RowKey"])) for row in rows))
        submit_all(self.runs, (delete(partition, run_id) for run_id in old_runs))
        resolved = [
            str(row["RowKey"])
            for row in self.findings.query_entities(
                "PartitionKey eq @pk and state eq 'resolved' and resolved_at lt @before",
                parameters={"pk": partition, "before": before},
                select=["RowKey"],
            )
        ]
        submit_all(self.findings, (delete(partition, row_key) for row_key in resolved))
        return PurgeCounts(runs=len(old_runs), findings=len(resolved))

    # -- internals --------------------------------------------------------------------------

    @staticmethod
    def _require_run_id(run_id: str) -> None:
        if not is_run_id(run_id):
            raise ValueError(f"not a run id: {run_id!r}")

    @staticmethod
    def _get(table: TableClient, partition: str, row: str, select: list[str] | None) -> TableEntity | None:
        rows = table.query_entities(
            "PartitionKey eq @pk and RowKey eq @rk", parameters={"pk": partition, "rk": row}, select=select
        )
        return next(iter(rows), None)

    @staticmethod
    def _run_record(tenant_id: str, entity: Mapping[str, Any]) -> RunRecord:
        return RunRecord.from_entity(tenant_id, entity)

    def _resolved_by(self, tenant_id: str, run_id: str) -> dict[str, tuple[ActiveFinding, TableEntity]]:
        """Rows `run_id` resolved (an earlier attempt of it, when the run is being repeated), as
        active in the state they had before (`resolved_from`; `open` for rows resolved before
        that was recorded), with the whole row."""
        rows = self.findings.query_entities(
            "PartitionKey eq @pk and state eq 'resolved' and resolved_run_id eq @run",
            parameters={"pk": tenant_key(tenant_id), "run": run_id},
        )
        found: dict[str, tuple[ActiveFinding, TableEntity]] = {}
        for row in rows:
            before = row.get("resolved_from")
            found[str(row["RowKey"])] = (
                ActiveFinding(
                    row_key=str(row["RowKey"]),
                    check_id=str(row.get("check_id") or ""),
                    state=before if isinstance(before, str) and before else "open",
                    first_seen=as_utc(row.get("first_seen")),
                    first_run_id=row.get("first_run_id"),
                    last_notified=as_utc(row.get("last_notified")),
                    new_in_run=row.get("new_in_run"),
                    reopened=True,
                ),
                row,
            )
        return found

    def _active_rows(self, tenant_id: str) -> dict[str, ActiveFinding]:
        rows = self.findings.query_entities(
            "PartitionKey eq @pk and state ne 'resolved'",
            parameters={"pk": tenant_key(tenant_id)},
            select=ACTIVE_PROPERTIES,
        )
        return {
            str(row["RowKey"]): ActiveFinding(
                row_key=str(row["RowKey"]),
                check_id=str(row.get("check_id") or ""),
                state=str(row.get("state") or ""),
                first_seen=as_utc(row.get("first_seen")),
                first_run_id=row.get("first_run_id"),
                last_notified=as_utc(row.get("last_notified")),
                new_in_run=row.get("new_in_run"),
            )
            for row in rows
        }

    @staticmethod
    def _run_finding_operations(report: Report) -> Iterator[Operation]:
        partition = run_findings_partition(report.tenant.id, report.run_id)
        for check in report.checks:
            for position, item in enumerate(check.findings):
                finding = item.finding
                yield upsert(
                    {
                        "PartitionKey": partition,
                        "RowKey": finding_row_key(check.id, finding.subject_id),
                        "check_id": check.id,
                        "position": position,
                        "state": item.state,
                        **_finding_properties(item.finding),
                    }
                )

    @staticmethod
    def _lifecycle_operations(
        tenant_id: str, run_id: str, finished: datetime, plan: LifecyclePlan
    ) -> Iterable[Operation]:
        partition = tenant_key(tenant_id)
        for current in plan.current:
            entity = {
                "PartitionKey": partition,
                "RowKey": current.row_key,
                "check_id": current.check_id,
                "state": current.state,
                "first_seen": current.first_seen,
                "last_seen": finished,
                "first_run_id": current.first_run_id,
                "last_run_id": run_id,
                **({"new_in_run": current.new_in_run} if current.new_in_run else {}),
                **_finding_properties(current.finding),
            }
            if current.state == "new":
                # Replaced whole: a finding that came back loses its old resolution, and nothing
                # has told about it yet (no last_notified).
                yield upsert(entity)
            elif current.reopened:
                # Resolved by the attempt that did not complete: replaced whole, so that its
                # resolution goes; what must survive is written again.
                last = {"last_notified": current.last_notified} if current.last_notified else {}
                yield upsert({**entity, **last})
            else:
                # Merged: `last_notified` is left as stored. An email may have updated it after
                # this scan read the row; writing back what the scan read would move it back and
                # bring the next reminder early.
                yield upsert(entity, mode=UpdateMode.MERGE)
        for row_key in plan.discarded:
            yield delete(partition, row_key)
        for row_key in plan.resolved:
            yield upsert(
                {
                    "PartitionKey": partition,
                    "RowKey": row_key,
                    "state": "resolved",
                    "resolved_at": finished,
                    "resolved_run_id": run_id,
                    "resolution": plan.resolutions[row_key],
                    "resolved_from": plan.resolved_from[row_key],
                },
                mode=UpdateMode.MERGE,
            )

    @staticmethod
    def _completed_run_entity(report: Report) -> dict[str, Any]:
        checks = []
        for check in report.checks:
            document = check.to_document()
            document["finding_count"] = len(document.pop("findings"))
            checks.append(document)
        entity: dict[str, Any] = {
            "PartitionKey": tenant_key(report.tenant.id),
            "RowKey": report.run_id,
            "status": report.status,
            "tenant_name": report.tenant.name,
            "tenant_role": report.tenant.role,
            "started": report.started,
            "finished": report.finished,
            "summary": to_json(report.summary),
            "has_report": True,
            **split_chunks("checks", to_json(checks)),
        }
        # The report's metrics, a few hundred characters: one property, `as_of` at full precision
        # so `get_report` rebuilds them exactly. Merge never removes a property, so a repeated
        # run that has none writes an empty one rather than keep the earlier attempt's figures.
        metrics = report.metrics
        entity["metrics"] = (
            "" if metrics is None else to_json({**metrics.to_document(), "as_of": metrics.as_of.isoformat()})
        )
        errored = [c.id for c in report.checks if str(c.status) == "error"]
        if errored:
            entity["error_code"] = "check_error"
            entity["error_message"] = cap_text(f"checks ended in error: {', '.join(errored)}", MAX_TEXT_UNITS)
        return entity


def _finding_properties(finding: Any) -> dict[str, Any]:
    return {
        "subject_id": finding.subject_id,
        "subject_type": str(finding.subject_type),
        "subject_name": finding.subject_name,
        "detail": finding.detail,
        "severity": str(finding.severity),
        "evidence": to_json(dict(finding.evidence)),
    }


def _finding_document(row: Mapping[str, Any]) -> dict[str, Any]:
    evidence = row.get("evidence")
    return {
        "subject_id": row["subject_id"],
        "subject_type": row["subject_type"],
        "subject_name": row.get("subject_name") or "",
        "detail": row.get("detail") or "",
        "severity": row["severity"],
        "state": row["state"],
        "evidence": json.loads(evidence) if isinstance(evidence, str) and evidence else {},
    }


def _first(rows: Iterable[TableEntity], count: int) -> list[TableEntity]:
    taken: list[TableEntity] = []
    for row in rows:
        taken.append(row)
        if len(taken) >= count:
            break
    return taken


def _encode_continuation(token: Any) -> str:
    if not isinstance(token, Mapping):
        raise TypeError("unexpected continuation token from the Tables SDK")
    payload = {"pk": token.get("PartitionKey"), "rk": token.get("RowKey")}
    return base64.urlsafe_b64encode(to_json(payload).encode("ascii")).decode("ascii").rstrip("=")


def _decode_continuation(token: str) -> Any:
    """The SDK's token back from `next`. It can only move within the query's own filter, which
    always names the tenant's partition, so a forged token cannot reach another tenant."""
    try:
        padded = token + "=" * (-len(token) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise ValueError("malformed continuation token") from None
    if (
        not isinstance(payload, dict)
        or set(payload) != {"pk", "rk"}
        or not isinstance(payload["pk"], str)
        or not isinstance(payload["rk"], str | None)
    ):
        raise ValueError("malformed continuation token")
    return {"PartitionKey": payload["pk"], "RowKey": payload["rk"]}


_RESOLUTION_PROPERTIES = frozenset({"state", "resolved_at", "resolved_run_id", "resolution", "resolved_from"})


def _restored(row: TableEntity) -> Operation:
    """A row an incomplete attempt resolved, as it was before (its state and nothing of the
    resolution), replaced whole."""
    before = row.get("resolved_from")
    entity = {name: value for name, value in row.items() if name not in _RESOLUTION_PROPERTIES}
    return upsert({**entity, "state": before if isinstance(before, str) and before else "open"})

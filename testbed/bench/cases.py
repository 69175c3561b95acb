"""The benchmark cases, each run in a fresh child process: `python -m testbed.bench.cases
<case>` reads its parameters as JSON on stdin (they hold the simulator's client secret, so not on
the command line) and prints its result as the last line, after `RESULT_MARKER`.

A fresh process per case makes `ru_maxrss` (the peak resident set) that case's own, and keeps
one case's caches, pacer windows and imports out of the next one's numbers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import resource
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

RESULT_MARKER = "PARTNERGUARD-BENCH-RESULT "

Params = Mapping[str, Any]
T = TypeVar("T")


def peak_rss_mb() -> float:
    """This process's peak resident set so far, in MB.

    Linux's `VmHWM` belongs to the process's own memory map. `ru_maxrss` would do elsewhere, but
    on Linux it survives `exec`: a case started by a larger benchmark runner would report the
    runner's size (the fork's copy) instead of its own.
    """
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    except OSError:
        status = ""
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- helpers over the real pipeline -------------------------------------------------------------


def _store(params: Params) -> Any:
    from partnerguard.settings import Settings
    from partnerguard.storage import ScanStore

    settings = Settings.from_env(params["environment"])
    store = ScanStore.from_settings(settings.storage, prefix=params["prefix"])
    store.ensure_tables()
    return settings, store


def _seed_watermarks(store: Any, tenant_ids: Iterable[str], now: datetime, lookback_hours: int, hours: float) -> None:
    """A scan `hours - overlap` after the previous one: each event type's full stream as that
    scan left it, and stored aggregates complete for the whole window (steady state)."""
    from partnerguard.sign_in_collection import WATERMARK_OVERLAP
    from partnerguard.sign_in_streams import EVENT_TYPES
    from partnerguard.storage.sign_in_aggregates import SignInStore, StreamState

    sign_ins = SignInStore(store.service, store.prefix)
    sign_ins.ensure_tables()
    previous_scan = now - (timedelta(hours=hours) - WATERMARK_OVERLAP)
    covered_from = now - timedelta(hours=lookback_hours + 1)
    for tenant_id in tenant_ids:
        for event_type in EVENT_TYPES:
            state = StreamState(event_type, event_type, "full", read_through=previous_scan, covered_from=covered_from)
            sign_ins.save_stream(tenant_id, state, previous_scan)
    sign_ins.close()


def _statuses(reports: Iterable[Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for report in reports:
        status = report.status if report is not None else "no report"
        counts[status] = counts.get(status, 0) + 1
    return counts


# -- big_tenant -------------------------------------------------------------------------------


def _model_users(bodies: list[bytes], registration_bodies: list[bytes]) -> tuple[list[Any], list[Any]]:
    """The pages through msgraph-sdk's generated models, as an SDK-based tool reads them."""
    from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
    from msgraph.generated.models.user_collection_response import UserCollectionResponse
    from msgraph.generated.models.user_registration_details_collection_response import (
        UserRegistrationDetailsCollectionResponse,
    )

    from partnerguard.model import RegistrationDetail, User

    factory = JsonParseNodeFactory()
    users: list[Any] = []
    for body in bodies:
        page = factory.get_root_parse_node("application/json", body).get_object_value(UserCollectionResponse)
        users.extend(
            User(
                id=str(model.id),
                display_name=model.display_name or "",
                user_principal_name=model.user_principal_name or "",
                account_enabled=model.account_enabled is not False,
                user_type=model.user_type or "Member",
            )
            for model in (page.value or [])
        )
    details: list[Any] = []
    for body in registration_bodies:
        rows = factory.get_root_parse_node("application/json", body).get_object_value(
            UserRegistrationDetailsCollectionResponse
        )
        details.extend(
            RegistrationDetail(
                id=str(model.id),
                user_principal_name=model.user_principal_name or "",
                user_display_name=model.user_display_name or "",
                user_type=str(getattr(model.user_type, "value", model.user_type) or "member"),
                is_admin=bool(model.is_admin),
                is_mfa_capable=bool(model.is_mfa_capable),
                is_mfa_registered=bool(model.is_mfa_registered),
                methods_registered=tuple(model.methods_registered or ()),
            )
            for model in (rows.value or [])
        )
    return users, details


def _json_users(bodies: list[bytes], registration_bodies: list[bytes]) -> tuple[list[Any], list[Any]]:
    """The pages as PartnerGuard reads them: plain JSON, then the two fields-of-interest types."""
    from partnerguard.model import RegistrationDetail, User

    users = [User.from_graph(item) for body in bodies for item in json.loads(body)["value"]]
    details = [
        RegistrationDetail.from_graph(item) for body in registration_bodies for item in json.loads(body)["value"]
    ]
    return users, details


def big_tenant(params: Params) -> dict[str, Any]:
    from partnerguard.evaluate import evaluate
    from partnerguard.graph.client import GraphClient
    from partnerguard.graph.pacing import PROCESS_PACER, ApiClass, ClassLimits
    from partnerguard.graph.requests import USER_REGISTRATION_DETAILS, USERS, GraphRequest
    from partnerguard.model import TenantSnapshot
    from partnerguard.pipeline import Scanner, check_context, graph_snapshot
    from partnerguard.settings import Settings

    settings, store = _store(params)
    tenant_id = params["tenant_id"]
    captured: list[TenantSnapshot] = []
    # This case measures PartnerGuard's own code: Graph's limits are off in the simulator, and
    # the process's pacer is told there are none either (it would hold the 100 registration
    # pages to 5 per 10 s, and the figure would be Graph's limit again).
    PROCESS_PACER.limits = {api_class: ClassLimits(per_tenant=None, per_process=None) for api_class in ApiClass}

    async def source(settings: Settings, tenant: str, now: datetime) -> TenantSnapshot:
        snapshot = await graph_snapshot(settings, tenant, now, store=store)
        captured.append(snapshot)
        return snapshot

    started = time.perf_counter()
    result = asyncio.run(Scanner(settings, store, snapshot_source=source).scan(tenant_id))
    scan_s = time.perf_counter() - started
    scan_rss = peak_rss_mb()
    report = result.report
    registration = next((c for c in report.checks if c.id == "mfa.registration"), None) if report else None

    # The same pages, as raw bytes, parsed both ways. Only a sample goes through the models:
    # at 2-3 ms per object the whole tenant would take many minutes.
    pages = int(params["sample_pages"])

    async def first_pages(client: GraphClient, request: GraphRequest) -> list[bytes]:
        bodies: list[bytes] = []
        async for body in client.raw_pages(request):
            bodies.append(body)
            if len(bodies) >= pages:
                break
        return bodies

    async def sample() -> tuple[list[bytes], list[bytes]]:
        async with GraphClient(settings, tenant_id) as client:
            return await first_pages(client, USERS.request()), await first_pages(
                client, USER_REGISTRATION_DETAILS.request()
            )

    user_bodies, registration_bodies = asyncio.run(sample())
    base = captured[0]
    context = check_context(settings, base.collected_at)

    def timed(parse: Callable[[list[bytes], list[bytes]], tuple[list[Any], list[Any]]], runs: int) -> tuple[float, int]:
        """The median of `runs` passes: a pass of the plain-JSON path takes milliseconds, where one
        garbage collection would skew a single measurement."""
        durations: list[float] = []
        for _ in range(runs):
            began = time.perf_counter()
            users, details = parse(user_bodies, registration_bodies)
            evaluate(dataclasses.replace(base, users=users, registration_details=details), context)
            durations.append(time.perf_counter() - began)
        return statistics.median(durations), len(users)

    json_s, sample_users = timed(_json_users, runs=11)
    model_s, model_users = timed(_model_users, runs=1)  # about a minute: its noise is negligible
    store.close()
    return {
        "users": len(base.users) if isinstance(base.users, list) else 0,
        "scan_s": scan_s,
        "status": report.status if report else result.error,
        "registration_findings": len(registration.findings) if registration else None,
        "peak_rss_mb": scan_rss,
        "sample_users": sample_users,
        "sample_pages": len(user_bodies) + len(registration_bodies),
        "json_s": json_s,
        "model_s": model_s,
        "model_users": model_users,
    }


# -- one_tenant / many_tenants ------------------------------------------------------------------


def _timed_run(run: Callable[[], Coroutine[Any, Any, T]]) -> tuple[T, float]:
    began = time.perf_counter()
    outcome = asyncio.run(run())
    return outcome, time.perf_counter() - began


def limited_scan(params: Params) -> dict[str, Any]:
    """Scan `tenant_ids` (one, or many at once) at Graph's limits, sign-in watermarks seeded as a
    previous scan would have left them."""
    from partnerguard.graph.pacing import PROCESS_PACER
    from partnerguard.pipeline import Scanner

    settings, store = _store(params)
    tenant_ids: list[str] = list(params["tenant_ids"])
    now = datetime.now(UTC)
    _seed_watermarks(store, tenant_ids, now, settings.signin_lookback_hours, float(params["signin_hours"]))
    scanner = Scanner(settings, store)
    concurrency = int(params.get("concurrency", 1))

    async def run() -> list[Any]:
        return await scanner.scan_many(tenant_ids, concurrency=concurrency)

    cpu_before = time.process_time()
    results, wall_s = _timed_run(run)
    cpu_s = time.process_time() - cpu_before
    store.close()
    return {
        "tenants": len(tenant_ids),
        "wall_s": wall_s,
        # CPU the scanning process used meanwhile: near wall_s, the case was CPU-bound, not paced.
        "cpu_s": cpu_s,
        "statuses": _statuses(result.report for result in results),
        "errors": sorted({result.error for result in results if result.error})[:5],
        "client_429s": PROCESS_PACER.throttled_count,
        "peak_rss_mb": peak_rss_mb(),
    }


# -- storage -------------------------------------------------------------------------------------


def storage(params: Params) -> dict[str, Any]:
    from azure.data.tables import TableClient, TableServiceClient, TransactionOperation

    from checks import mfa_registration
    from partnerguard.model import CheckOutcome, CheckResult, Finding, Severity, SubjectType, TenantInfo
    from partnerguard.storage import ScanStore

    class OneByOneTable(TableClient):
        """Sends each operation of a transaction as its own request: the write path without batches."""

        def submit_transaction(self, operations: Iterable[Any], **kwargs: Any) -> list[Mapping[str, Any]]:
            for kind, entity, options in operations:
                if kind == TransactionOperation.DELETE:
                    self.delete_entity(entity["PartitionKey"], entity["RowKey"])
                else:
                    self.upsert_entity(entity, mode=options.get("mode"))
            return []

    connection = params["connection_string"]

    def results(count: int) -> list[CheckResult]:
        findings = [
            Finding(
                f"{uuid.UUID(int=index)}",
                SubjectType.USER,
                f"User {index:06d}",
                "not MFA capable: no strong method registered",
                Severity.HIGH,
                {"user_principal_name": f"user{index:06d}@contoso.example"},
            )
            for index in range(count)
        ]
        return [CheckResult(mfa_registration.METADATA, CheckOutcome.from_findings(findings))]

    def persist(count: int, one_by_one: bool, prefix: str) -> float:
        # Fresh tables for each measurement: Azurite's table engine slows down as a table grows,
        # so one measurement must not pay for the rows of another.
        store = ScanStore(TableServiceClient.from_connection_string(connection), prefix)
        store.ensure_tables()
        tenant = TenantInfo(str(uuid.uuid4()), "Bench", "customer")
        started = datetime.now(UTC)
        run_id = store.start_run(tenant, started)
        check_results = results(count)
        saved = (store.findings, store.run_findings)
        if one_by_one:
            store.findings = OneByOneTable.from_connection_string(connection, store.findings.table_name)
            store.run_findings = OneByOneTable.from_connection_string(connection, store.run_findings.table_name)
        try:
            began = time.perf_counter()
            report = store.complete_run(tenant, run_id, started, datetime.now(UTC), check_results)
            elapsed = time.perf_counter() - began
        finally:
            store.findings, store.run_findings = saved
        stored = sum(len(check.findings) for check in report.checks)
        if stored != count:
            raise RuntimeError(f"persisted {stored} findings of {count}")
        store.close()
        return elapsed

    prefix = params["prefix"]
    batched_all = persist(int(params["findings"]), False, prefix + "all")
    sample = int(params["one_by_one_findings"])
    batched_sample = persist(sample, False, prefix + "batched")
    one_by_one_sample = persist(sample, True, prefix + "single")
    return {
        "findings": int(params["findings"]),
        "batched_s": batched_all,
        "sample": sample,
        "batched_sample_s": batched_sample,
        "one_by_one_sample_s": one_by_one_sample,
    }


# -- startup -------------------------------------------------------------------------------------


def startup(params: Params) -> dict[str, Any]:
    before = peak_rss_mb()
    began = time.perf_counter()
    import function_app  # noqa: F401 - the import is what is measured

    return {"import_s": time.perf_counter() - began, "peak_rss_mb": peak_rss_mb(), "interpreter_rss_mb": before}


def virtual_scans(params: Params) -> dict[str, Any]:
    from testbed.bench.virtual_cases import virtual_scans as run

    return run(params)


CASES: dict[str, Callable[[Params], dict[str, Any]]] = {
    "big_tenant": big_tenant,
    "limited_scan": limited_scan,
    "storage": storage,
    "startup": startup,
    "virtual_scans": virtual_scans,
}


def main() -> int:
    # The measurements, not the scan's progress, are the output.
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    name = sys.argv[1]
    params = json.loads(sys.stdin.read() or "{}")
    result = CASES[name](params)
    print(RESULT_MARKER + json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

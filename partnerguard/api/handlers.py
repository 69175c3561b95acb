"""The HTTP API of SPEC §4 as plain functions of a request, testable without the Functions host.

`partnerguard/functions/http_api.py` binds each route to one method of `Api`; everything here
takes already-decoded request parts (route values, query, body, headers) and either returns a
response or raises `ApiError`. Storage, the scan guard, the tenant registry and the queue are
the process's `Services` (`partnerguard.services`), built once from the environment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any, Protocol

import azure.functions as func

from partnerguard.api.dashboard import HEADERS as DASHBOARD_HEADERS
from partnerguard.api.dashboard import load_stored_tenants, render_dashboard
from partnerguard.api.responses import ApiError, bad_request, json_response, not_found
from partnerguard.api.tokens import InvalidToken
from partnerguard.api.validation import findings_query, require_empty_body, run_id_from, tenant_id_from
from partnerguard.model import TenantInfo, iso
from partnerguard.scan_requests import ScanBusy, ScanQueued, request_scan
from partnerguard.services import Services
from partnerguard.storage.records import RUN_SUCCEEDED, RunRecord
from partnerguard.storage.scan_guard import GuardHolder
from partnerguard.storage.tenant_registry import TenantRecord

log = logging.getLogger(__name__)

# How long a 429 asks a caller to wait before polling again: about the time a scan of a small
# tenant takes, never longer than the guard that blocks it would still live.
RETRY_AFTER_SECONDS = 60
# Runs read per tenant for the tenants list: the newest is the last run, and the newest
# successful one is almost always among them (a tenant failing 20 times in a row is reported
# by the registry's consent/failing state anyway).
RUNS_PER_TENANT = 20
# Storage reads for the tenant list run concurrently, bounded: one slow partition must not
# serialise the page for hundreds of tenants.
LIST_CONCURRENCY = 8


class SignerLike(Protocol):
    def wrap(self, store_token: str, tenant_id: str, state: str, check_id: str | None) -> str: ...
    def unwrap(self, token: str, tenant_id: str, state: str, check_id: str | None) -> str: ...


def status_url(tenant_id: str, run_id: str) -> str:
    """SPEC §4: a relative path, so it is right behind any proxy or custom domain."""
    return f"/api/tenants/{tenant_id}/scans/{run_id}"


class Api:
    """The routes over one process's `Services`; `signer` gives the continuation-token signer
    (its key is read from storage on first use, so a process that never pages never reads it)."""

    def __init__(self, services: Services, signer: Callable[[], SignerLike]) -> None:
        self.services = services
        self.signer = signer

    # -- helpers ----------------------------------------------------------------------------

    def _monitored(self) -> tuple[list[str], dict[str, TenantRecord]]:
        """The monitored tenants, as the timer scans them, and the registry's record of each.

        `PARTNERGUARD_TENANTS`, plus, with discovery on, the customers the timer discovered
        through GDAP (kept in the registry). The API never calls Graph itself: a request must
        not cost a sign-in, and a tenant the timer does not scan should not be scanned on demand.
        """
        records = {r.id.lower(): r for r in self.services.registry.list()}
        tenants = [t.lower() for t in self.services.settings.tenants]
        if self.services.settings.discover_customers:
            tenants += [tenant_id for tenant_id, record in records.items() if record.discovered]
        return list(dict.fromkeys(tenants)), records

    def _require_monitored(self, tenant_id: str) -> dict[str, TenantRecord]:
        monitored, records = self._monitored()
        if tenant_id not in monitored:
            raise not_found("tenant_not_found", "The tenant is not monitored by this PartnerGuard.")
        return records

    def _check_ids(self) -> tuple[str, ...]:
        from checks import CHECK_IDS  # the catalogue; imported here to keep the route module light

        return CHECK_IDS

    # -- POST /api/tenants/{tenantId}/scans ---------------------------------------------------

    def start_scan(self, req: func.HttpRequest) -> func.HttpResponse:
        tenant_id = tenant_id_from(req.route_params)
        require_empty_body(req.get_body() or b"", req.headers.get("Content-Type"))
        records = self._require_monitored(tenant_id)
        services = self.services
        now = services.clock()
        record = records.get(tenant_id)
        # The name Graph last gave; a tenant never scanned is named by its id until it is.
        tenant = TenantInfo(tenant_id, record.name if record else tenant_id, services.settings.role_of(tenant_id))
        # The same path as the timer's: the guard first (the one ETag-conditioned write that
        # decides who queues: of two concurrent POSTs exactly one acquires, the other gets 429 and
        # no run row or message of its own), then the run row, then the message.
        result = self._request(tenant, now)
        if isinstance(result, ScanBusy) and self._finished(tenant_id, result.holder.run_id):
            # The holder's run already finished (its worker died between completing the run and
            # releasing the guard): free that stale guard, ETag-conditioned on its run id, and try
            # once more. A caller must not wait out a whole TTL for a scan that is over.
            services.guard.release(tenant_id, result.holder.run_id)
            result = self._request(tenant, now)
        if isinstance(result, ScanBusy):
            raise self._already_active(tenant_id, result.holder, now)
        log.info("scan %s of tenant %s queued through the API", result.run_id, tenant_id)
        url = status_url(tenant_id, result.run_id)
        return json_response(
            {"run_id": result.run_id, "status": "queued", "status_url": url}, 202, headers={"Location": url}
        )

    def _request(self, tenant: TenantInfo, now: datetime) -> ScanQueued | ScanBusy:
        services = self.services
        return request_scan(
            services.store, services.guard, services.scan_queue(), tenant, "api", now, services.host.guard_ttl
        )

    def _finished(self, tenant_id: str, run_id: str) -> bool:
        run = self.services.store.get_run(tenant_id, run_id)
        return run is not None and not run.active

    def _already_active(self, tenant_id: str, holder: GuardHolder, now: datetime) -> ApiError:
        left = int((holder.expires - now).total_seconds())
        retry_after = max(1, min(RETRY_AFTER_SECONDS, left))
        status = holder.status if holder.status in ("queued", "running") else "queued"
        return ApiError(
            429,
            "scan_in_progress",
            f"A scan of this tenant is already {status}; poll its status_url.",
            extra={"run_id": holder.run_id, "status": status, "status_url": status_url(tenant_id, holder.run_id)},
            headers={"Retry-After": str(retry_after)},
        )

    # -- GET /api/tenants/{tenantId}/scans/{runId} --------------------------------------------

    def get_scan(self, req: func.HttpRequest) -> func.HttpResponse:
        tenant_id = tenant_id_from(req.route_params)
        run_id = run_id_from(req.route_params)
        self._require_monitored(tenant_id)
        store = self.services.store
        run = store.get_run(tenant_id, run_id)
        if run is None:
            raise not_found("run_not_found", "There is no such run for this tenant.")
        document = run.to_document()
        alert = document["alert"]
        # The store clears an alert error by writing an empty string (a merge cannot delete).
        alert["error"] = alert["error"] or None
        report = store.get_report(tenant_id, run_id) if run.has_report else None
        document["report"] = report.to_document() if report is not None else None
        return json_response(document)

    # -- GET /api/tenants/{tenantId}/findings -------------------------------------------------

    def list_findings(self, req: func.HttpRequest) -> func.HttpResponse:
        tenant_id = tenant_id_from(req.route_params)
        query = findings_query(req.params, self._check_ids())
        self._require_monitored(tenant_id)
        store_token: str | None = None
        if query.continuation is not None:
            try:
                store_token = self.signer().unwrap(query.continuation, tenant_id, query.state, query.check_id)
            except InvalidToken:
                raise bad_request(
                    "invalid_continuation", "continuation must be the `next` token of the previous page, verbatim."
                ) from None
        try:
            page = self.services.store.list_findings(
                tenant_id, state=query.state, check_id=query.check_id, top=query.top, continuation=store_token
            )
        except ValueError:
            # Only the store's own token check can fail here (we validated everything else);
            # a signed token it rejects means the token format changed under a paging client.
            raise bad_request("invalid_continuation", "continuation is no longer valid; start again.") from None
        next_token = self.signer().wrap(page.next, tenant_id, query.state, query.check_id) if page.next else None
        return json_response(
            {"tenant_id": tenant_id, "findings": [f.to_document() for f in page.findings], "next": next_token}
        )

    # -- GET /api/tenants and GET /api/dashboard ------------------------------------------------

    def tenant_documents(self, now: datetime) -> list[dict[str, Any]]:
        """SPEC §4's tenant list, plus `last_successful_run_age_hours` (the monitor watching itself)."""
        return [document for document, _, _ in self._tenant_rows(now)]

    def _tenant_rows(self, now: datetime) -> list[tuple[dict[str, Any], RunRecord | None, TenantRecord | None]]:
        monitored, records = self._monitored()
        store = self.services.store
        with ThreadPoolExecutor(max_workers=LIST_CONCURRENCY) as pool:
            runs = list(pool.map(lambda t: store.list_runs(t, top=RUNS_PER_TENANT), monitored))
        return [
            (
                self._tenant_document(tenant_id, records.get(tenant_id), tenant_runs, now),
                tenant_runs[0] if tenant_runs else None,
                records.get(tenant_id),
            )
            for tenant_id, tenant_runs in zip(monitored, runs, strict=True)
        ]

    def _tenant_document(
        self, tenant_id: str, record: TenantRecord | None, runs: Sequence[RunRecord], now: datetime
    ) -> dict[str, Any]:
        last = runs[0] if runs else None
        # The newest success: among the runs read, or as the registry remembers it (a tenant
        # whose last 20 runs failed still shows how long it has been).
        successes = [r.finished for r in runs if r.status == RUN_SUCCEEDED and r.finished is not None]
        if record is not None and record.last_succeeded_at is not None:
            successes.append(record.last_succeeded_at)
        age = None
        if successes:
            age = round(max((now - max(successes)).total_seconds(), 0.0) / 3600, 2)
        # The name: what the registry learnt from Graph, else what the last run stored (a queued
        # run stores the tenant id until a scan reads the real name).
        name = (record.name if record is not None else None) or (last.tenant_name if last else None) or tenant_id
        role = self.services.settings.role_of(tenant_id)
        return {
            "id": tenant_id,
            "name": name,
            "role": role,
            # `ok` until a sign-in shows otherwise: the worker records `missing` / `failing`.
            "consent": record.consent if record is not None else "ok",
            "last_run": _last_run(last),
            "last_successful_run_age_hours": age,
            "doctor": _doctor(TenantInfo(tenant_id, name, role), record, self.services),
        }

    def list_tenants(self, req: func.HttpRequest) -> func.HttpResponse:
        return json_response({"tenants": self.tenant_documents(self.services.clock())})

    def dashboard(self, req: func.HttpRequest) -> func.HttpResponse:
        now = self.services.clock()
        rows = [
            {**document, "last_run_error": _run_error(last), "consent_error": _consent_error(record)}
            for document, last, record in self._tenant_rows(now)
        ]
        page = render_dashboard(rows, now, load_stored_tenants(self.services.store, [row["id"] for row in rows]))
        return func.HttpResponse(
            page, status_code=200, mimetype="text/html", charset="utf-8", headers=dict(DASHBOARD_HEADERS)
        )


def _last_run(run: RunRecord | None) -> dict[str, Any] | None:
    if run is None:
        return None
    return {
        "run_id": run.run_id,
        "status": run.status,
        "finished": iso(run.finished) if run.finished else None,
        "summary": dict(run.summary) if run.summary is not None else None,
    }


def _run_error(run: RunRecord | None) -> str | None:
    """What stopped the last run, for people (the dashboard escapes it)."""
    if run is None or run.error is None:
        return None
    return f"{run.error['code']}: {run.error['message']}" if run.error["message"] else run.error["code"]


def _doctor(tenant: TenantInfo, record: TenantRecord | None, services: Services) -> dict[str, Any] | None:
    """`doctor`'s judgement of the access facts the last doctor or scan recorded (additive to
    SPEC §4; null until one did): the doctor document's tenant fields without id, name and role."""
    from partnerguard.doctor.diagnosis import diagnose_record

    diagnosis = diagnose_record(tenant, record, services.settings)
    if diagnosis is None:
        return None
    document = diagnosis.to_document()
    for key in ("id", "name", "role"):
        del document[key]
    return document


def _consent_error(record: TenantRecord | None) -> str | None:
    return record.consent_error if record is not None and record.consent != "ok" else None

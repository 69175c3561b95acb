"""`GET /api/dashboard`: the HTML report (`--format html`) over every monitored tenant.

The same page the command line writes (partnerguard/render/html_report.py), over each
monitored tenant's latest stored report and run history, plus what only the service knows: the
tenant's consent, its newest run when that is not the report's (queued, running, or failed
without a report) and the age of its last successful run, flagged after 24 hours. Each tenant's
method strength (the report's `metrics`, SPEC §2) comes back with its report from the run row.

Tenant names, run ids and error messages come from tenants and storage PartnerGuard does not
control: the page escapes every value, and it is served with a Content-Security-Policy that
allows no source at all but the page's own stylesheet and its one filter script, each by its
SHA-256 hash (never 'unsafe-inline'), and no plugin, form target, frame or external resource:
even markup that slipped past escaping could not run or load anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from partnerguard.model import Report, TenantInfo
from partnerguard.render.history import NO_HISTORY, TenantHistory, load_history
from partnerguard.render.html_report import CONTENT_SECURITY_POLICY as PAGE_POLICY
from partnerguard.render.html_report import Monitoring, TenantEntry, render_html

if TYPE_CHECKING:
    from partnerguard.storage import ScanStore

# A tenant whose last successful run is older than this is flagged: with the default schedule
# (every 6 hours) it has missed at least three scans in a row.
STALE_AFTER_HOURS = 24.0
# Findings listed per tenant: a first scan of a large tenant can have thousands, which the
# findings API pages through; the page stays quick to load and names the API for the rest.
FINDINGS_PER_TENANT = 500
# Storage reads per tenant (latest report, runs, finding dates) run concurrently, bounded.
LOAD_CONCURRENCY = 8

CONTENT_SECURITY_POLICY = PAGE_POLICY + "; frame-ancestors 'none'"

HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True)
class StoredTenant:
    """What storage holds for one tenant's part of the page."""

    report: Report | None
    history: TenantHistory


def load_stored_tenants(store: ScanStore, tenant_ids: Sequence[str]) -> dict[str, StoredTenant]:
    """Each tenant's latest report and history, read concurrently."""

    def load(tenant_id: str) -> StoredTenant:
        return StoredTenant(store.latest_report(tenant_id), load_history(store, tenant_id))

    with ThreadPoolExecutor(max_workers=LOAD_CONCURRENCY) as pool:
        return dict(zip(tenant_ids, pool.map(load, tenant_ids), strict=True))


def render_dashboard(
    tenants: Sequence[Mapping[str, Any]],
    now: datetime,
    stored: Mapping[str, StoredTenant] | None = None,
) -> str:
    """The page for the tenants as `GET /api/tenants` lists them (plus `last_run_error` and
    `consent_error`), with each one's stored report and history from `stored`."""
    entries = []
    for tenant in tenants:
        tenant_id = tenant["id"]
        age = tenant.get("last_successful_run_age_hours")
        last_run = tenant.get("last_run")
        data = (stored or {}).get(tenant_id, StoredTenant(None, NO_HISTORY))
        monitoring = Monitoring(
            consent=tenant.get("consent") or "ok",
            consent_error=tenant.get("consent_error"),
            last_run=last_run,
            last_run_error=tenant.get("last_run_error"),
            last_successful_run_age_hours=age,
            stale=(age is None and last_run is not None) or (age is not None and age > STALE_AFTER_HOURS),
        )
        info = TenantInfo(tenant_id, tenant.get("name") or tenant_id, tenant.get("role") or "customer")
        entries.append(TenantEntry(info, data.report, data.history, monitoring))
    return render_html(
        entries,
        now,
        title="PartnerGuard — tenants",
        findings_limit=FINDINGS_PER_TENANT,
        more_findings_hint="GET /api/tenants/{tenantId}/findings",
    )

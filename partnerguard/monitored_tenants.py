"""Which tenants PartnerGuard monitors, and what a sign-in outcome does to a tenant's consent.

**Monitored tenants** are `PARTNERGUARD_TENANTS`, plus, with `PARTNERGUARD_DISCOVER_CUSTOMERS`,
every customer of the partner tenant (`AZURE_TENANT_ID`) with a live GDAP relationship, read
from `tenantRelationships/delegatedAdminRelationships` through the same Graph client as a scan.
"Live" means status `active` or `expiring`: an expiring relationship is active and still grants
access for up to 30 more days (Graph's delegatedAdminRelationshipStatus), so dropping its
customer then would leave a month unwatched — the `gdap.*` checks read the same two statuses.
Discovery can fail (Graph down, permission revoked, a national cloud without GDAP): then the
timer logs it and scans the configured tenants plus those discovered earlier (kept in the
registry) — never zero scans because discovery broke.

**Consent**: a tenant whose sign-in fails because the app is not consented to there
(`ConsentMissing`) is marked `missing` and alerts once; the timer then skips it and probes it
again once a day, instead of failing a run every schedule. Other sign-in failures (a secret
rejected, a disabled service principal) count up; after `SIGN_IN_FAILURES_BEFORE_FAILING` in a
row the tenant is `failing`, alerts once, and is probed daily too. A sign-in that works sets
`ok` and resets the count.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from partnerguard.graph.errors import ConsentMissing, SignInFailed
from partnerguard.settings import Settings, is_guid
from partnerguard.storage.tenant_registry import TenantRecord, TenantRegistry
from partnerguard.text import safe_text

log = logging.getLogger(__name__)

LIVE_GDAP_STATUSES = frozenset({"active", "expiring"})
SIGN_IN_FAILURES_BEFORE_FAILING = 3
REPROBE_AFTER = timedelta(days=1)

Discover = Callable[[], Awaitable[list[str]]]


def customers_of(relationships: list[dict[str, object]]) -> list[str]:
    """The customer tenant ids of live relationships, lower-case, in order, without repeats.
    Relationship data comes from Graph: anything that is not a GUID is ignored, not trusted."""
    found: list[str] = []
    for relationship in relationships:
        if relationship.get("status") not in LIVE_GDAP_STATUSES:
            continue
        customer = relationship.get("customer")
        tenant_id = customer.get("tenantId") if isinstance(customer, dict) else None
        if isinstance(tenant_id, str) and is_guid(tenant_id):
            found.append(tenant_id.lower())
    return list(dict.fromkeys(found))


async def discover_gdap_customers(settings: Settings) -> list[str]:
    """Customers with a live GDAP relationship to the partner tenant, read from Graph."""
    from partnerguard.graph.client import GraphClient
    from partnerguard.graph.requests import DELEGATED_ADMIN_RELATIONSHIPS

    if not settings.cloud.gdap_available:
        raise RuntimeError(f"GDAP is not available in the {settings.cloud.name} cloud")
    settings.require_graph()
    partner = settings.tenant_id
    assert partner is not None  # require_graph() guarantees it
    async with GraphClient(settings, partner) as client:
        relationships = await client.collect(DELEGATED_ADMIN_RELATIONSHIPS.request())
    return customers_of(relationships)


async def monitored_tenants(
    settings: Settings, registry: TenantRegistry, discover: Discover | None, now: datetime | None = None
) -> list[str]:
    """Configured tenants first, then discovered customers; lower-case, without repeats."""
    tenants = list(settings.tenants)
    if not settings.discover_customers or discover is None:
        return tenants
    try:
        discovered = await discover()
    except Exception as error:
        # Never zero scans because discovery broke: fall back on what discovery found before.
        earlier = await asyncio.to_thread(registry.discovered)
        log.warning(
            "customer discovery failed (%s: %s); scanning the %d configured and %d previously discovered tenants",
            type(error).__name__,
            safe_text(error, 300),
            len(tenants),
            len(earlier),
        )
        return list(dict.fromkeys([*tenants, *earlier]))
    when = now or datetime.now(UTC)
    await asyncio.to_thread(registry.record_discovered, discovered, when)
    found = {t.lower() for t in discovered}
    result = list(dict.fromkeys([*tenants, *(t.lower() for t in discovered)]))
    # What discovery just read is also each customer's GDAP fact (doctor, GET /api/tenants).
    gdap = {t: "active" if t in found else "none" for t in result if settings.role_of(t) == "customer"}
    await asyncio.to_thread(registry.record_gdap, gdap, when)
    return result


def skip_reason(record: TenantRecord | None, now: datetime) -> str | None:
    """Why the timer should not queue this tenant now (consent broken and probed within a day)."""
    if record is None or record.consent == "ok":
        return None
    checked = record.consent_checked_at
    if checked is not None and now - checked < REPROBE_AFTER:
        return f"consent {record.consent} (checked {checked.isoformat()}; probed again after a day)"
    return None


@dataclass(frozen=True)
class ConsentUpdate:
    consent: str
    error: str | None
    sign_in_failures: int
    since: datetime
    # The state just turned bad: raise one alert (not one per run).
    newly_broken: bool
    # The code the failed run carries (SPEC §4 `error.code`), None when sign-in worked.
    run_error_code: str | None


def consent_after(previous: TenantRecord | None, error: BaseException | None, now: datetime) -> ConsentUpdate:
    """The consent state after a sign-in that worked (`error` None) or failed with `error`."""
    before = previous.consent if previous else "ok"
    since_before = previous.consent_since if previous and previous.consent_since else now
    if isinstance(error, ConsentMissing):
        newly = before != "missing"
        return ConsentUpdate(
            "missing", f"{error.code}: {error.message}", 0, now if newly else since_before, newly, "consent_missing"
        )
    if isinstance(error, SignInFailed):
        failures = (previous.sign_in_failures if previous else 0) + 1
        failing = failures >= SIGN_IN_FAILURES_BEFORE_FAILING
        consent = "failing" if failing else before
        newly = failing and before != "failing"
        since = now if consent != before else since_before
        return ConsentUpdate(consent, f"{error.code}: {error.message}", failures, since, newly, "sign_in_failed")
    return ConsentUpdate("ok", None, 0, now if before != "ok" else since_before, False, None)

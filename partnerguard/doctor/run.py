"""`doctor` run: the facts of every monitored tenant read from Graph (a token, `organization`,
`subscribedSkus`, the partner's GDAP relationships), judged, and recorded in the tenant registry."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from partnerguard.doctor.diagnosis import ConsentLink, Diagnosis, diagnose
from partnerguard.doctor.facts import (
    MAX_DETAIL_CHARS,
    SIGN_IN_ERROR,
    SIGN_IN_OK,
    AccessFacts,
    facts_after_sign_in_failure,
    gdap_of,
)
from partnerguard.graph.errors import GraphError, SignInFailed
from partnerguard.graph.requests import SUBSCRIBED_SKUS
from partnerguard.model import TenantInfo
from partnerguard.monitored_tenants import customers_of
from partnerguard.settings import Settings
from partnerguard.text import safe_text

if TYPE_CHECKING:
    from partnerguard.storage.tenant_registry import TenantRegistry

log = logging.getLogger(__name__)

# Tenants diagnosed at once: each is a sign-in and two small reads.
DOCTOR_CONCURRENCY = 8


# -- reading the facts from Graph -------------------------------------------------------------------


@dataclass(frozen=True)
class TenantReading:
    tenant: TenantInfo
    facts: AccessFacts
    # The partner tenant only: the customers of its live GDAP relationships (None: not read).
    live_customers: frozenset[str] | None = None
    gdap_detail: str | None = None


async def read_tenant(settings: Settings, tenant_id: str, *, read_gdap: bool = False) -> TenantReading:
    """Sign in to one tenant and read what doctor needs: the token's roles, the name, the licence,
    and with `read_gdap` (the partner tenant) the live GDAP relationships."""
    # Imported here, like the pipeline's Graph stack: only a doctor run loads it.
    from partnerguard.collect import Licences, read_tenant_name
    from partnerguard.graph.client import GraphClient
    from partnerguard.graph.requests import DELEGATED_ADMIN_RELATIONSHIPS

    role = settings.role_of(tenant_id)
    cloud = settings.cloud.name
    async with GraphClient(settings, tenant_id) as client:
        try:
            roles = await client.token_roles()
        except SignInFailed as error:
            return TenantReading(TenantInfo(tenant_id, tenant_id, role), facts_after_sign_in_failure(error, cloud))
        except GraphError as error:
            roles, unread = None, [f"token roles: {error.code}"]
        else:
            unread = []
        name = await read_tenant_name(client, tenant_id)
        p1: bool | None = None
        try:
            p1 = Licences.from_skus(await client.collect(SUBSCRIBED_SKUS.request())).entra_premium
        except GraphError as error:
            unread.append(f"subscribedSkus: {error.code}")
        live: frozenset[str] | None = None
        gdap_detail: str | None = None
        if read_gdap and settings.cloud.gdap_available:
            try:
                relationships = await client.collect(DELEGATED_ADMIN_RELATIONSHIPS.request())
                live = frozenset(customers_of(relationships))
            except GraphError as error:
                gdap_detail = f"delegatedAdminRelationships: {error.code}"
                unread.append(gdap_detail)
    facts = AccessFacts(
        sign_in=SIGN_IN_OK,
        cloud=cloud,
        detail=safe_text("could not read " + "; ".join(unread), MAX_DETAIL_CHARS) if unread else None,
        roles=roles,
        entra_id_p1=p1,
    )
    return TenantReading(TenantInfo(tenant_id, name, role), facts, live, gdap_detail)


async def read_safely(settings: Settings, tenant_id: str, *, read_gdap: bool = False) -> TenantReading:
    """`read_tenant`, with anything unexpected (the login host unreachable, a bug) reported as that
    tenant's failed sign-in rather than ending the run for every other tenant."""
    try:
        return await read_tenant(settings, tenant_id, read_gdap=read_gdap)
    except Exception as error:
        log.warning("doctor: tenant %s could not be read (%s)", tenant_id, type(error).__name__, exc_info=True)
        facts = AccessFacts(
            sign_in=SIGN_IN_ERROR,
            cloud=settings.cloud.name,
            detail=safe_text(f"{type(error).__name__}: {error}", MAX_DETAIL_CHARS),
            error_code=type(error).__name__,
        )
        return TenantReading(TenantInfo(tenant_id, tenant_id, settings.role_of(tenant_id)), facts)


class NotMonitored(Exception):
    """`doctor --tenant` named a tenant PartnerGuard does not monitor."""


@dataclass(frozen=True)
class DoctorRun:
    diagnoses: list[Diagnosis]
    # Why the facts could not be recorded in the registry (storage down), for a note on stderr.
    not_recorded: str | None = None

    @property
    def healthy(self) -> bool:
        return all(d.healthy for d in self.diagnoses)


async def run_doctor(
    settings: Settings,
    registry: TenantRegistry | None,
    now: datetime,
    only: str | None = None,
) -> DoctorRun:
    """Diagnose every monitored tenant (or `only`), partner first, and record the facts."""
    from partnerguard.monitored_tenants import monitored_tenants

    settings.require_graph()
    partner = settings.tenant_id
    assert partner is not None  # require_graph() guarantees it
    partner_reading = await read_safely(settings, partner, read_gdap=True)
    live = partner_reading.live_customers

    async def discover() -> list[str]:
        if live is None:
            raise RuntimeError(partner_reading.gdap_detail or "the partner's GDAP relationships were not read")
        return sorted(live)

    not_recorded: str | None = None
    monitored: list[str] | None = None
    if registry is not None:
        try:
            monitored = await monitored_tenants(settings, registry, discover, now)
        except Exception as error:
            not_recorded = f"{type(error).__name__}: {safe_text(error, 200)}"
            registry = None
    if monitored is None:
        # Without the registry: the configured tenants and the customers discovered just now.
        monitored = [*settings.tenants, *(sorted(live) if settings.discover_customers and live else [])]
    # The partner tenant always, first: it is the app's home and the source of GDAP facts.
    monitored = list(dict.fromkeys([partner.lower(), *(t.lower() for t in monitored)]))
    if only is not None:
        if only.lower() not in monitored:
            raise NotMonitored(only)
        monitored = [only.lower()]
    gate = asyncio.Semaphore(DOCTOR_CONCURRENCY)

    async def one(tenant_id: str) -> TenantReading:
        if tenant_id == partner.lower():
            return partner_reading
        async with gate:
            return await read_safely(settings, tenant_id)

    readings = list(await asyncio.gather(*(one(tenant_id) for tenant_id in monitored)))
    if registry is not None:
        # A tenant whose sign-in failed has no name read now: show the one a scan recorded.
        try:
            known = {record.id: record.name for record in await asyncio.to_thread(registry.list)}
        except Exception as error:
            not_recorded = f"{type(error).__name__}: {safe_text(error, 200)}"
            known, registry = {}, None
        readings = [
            replace(r, tenant=replace(r.tenant, name=known[r.tenant.id]))
            if r.tenant.name == r.tenant.id and known.get(r.tenant.id)
            else r
            for r in readings
        ]
    link = ConsentLink.from_settings(settings)
    diagnoses = [
        diagnose(
            reading.tenant,
            reading.facts,
            gdap_of(reading.tenant.id, reading.tenant.role, reading.facts.cloud, live),
            link,
            now,
        )
        for reading in readings
    ]
    if registry is not None:
        try:
            await asyncio.to_thread(record_diagnoses, registry, diagnoses, now)
        except Exception as error:
            not_recorded = f"{type(error).__name__}: {safe_text(error, 200)}"
    if not_recorded:
        log.warning("doctor could not use the tenant registry (%s); the facts are not recorded", not_recorded)
    return DoctorRun(diagnoses, not_recorded)


def record_diagnoses(registry: TenantRegistry, diagnoses: Sequence[Diagnosis], now: datetime) -> None:
    """The facts of each tenant and the GDAP state of each customer, with when they were checked."""
    for diagnosis in diagnoses:
        tenant = diagnosis.tenant
        # A tenant whose sign-in failed has no name read: keep the one the registry has.
        name = tenant.name if tenant.name != tenant.id else None
        registry.record_access(tenant.id, diagnosis.facts.to_document(), now, name=name)
    registry.record_gdap({d.tenant.id: d.gdap for d in diagnoses if d.tenant.role == "customer"}, now)

"""`doctor`: can PartnerGuard see everything it must in each monitored tenant, and if not, what to do.

For every monitored tenant (or one) it establishes the **facts** (`AccessFacts`): whether the app
can sign in (consent), which Graph application permissions its token carries (the `roles` claim),
whether Entra ID P1 is present (`subscribedSkus`), the national cloud, and, for a customer,
whether the partner has a live GDAP relationship with it (read once, from the partner tenant). It
reads only what it needs: a token, `organization`, `subscribedSkus` and the partner's
delegatedAdminRelationships.

`diagnose` then judges the facts, purely, against the check catalogue — the one source of truth:
each check's `METADATA.permissions` says which permissions it needs, `METADATA.licence` whether it
needs Entra ID P1 (and `licence_fallback` what it does without), `partner_only` where it applies.
A permission counts as present when the token holds it or a higher-privileged one Microsoft
documents for the same calls (`partnerguard.graph.permissions`). Each gap names the checks it
blinds (`reason_code` as in a report: `permission:<name>`, `licence:AAD_PREMIUM`, `cloud`, or
`consent` / `error:<code>` when sign-in fails) and the exact fix.

The facts are recorded in the tenant registry with when they were established — by `doctor`, and
by every scan the scan worker runs (it signs in and reads subscribedSkus anyway) — so
GET /api/tenants shows the same judgement without calling Graph per request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from checks import ALL_CHECKS
from partnerguard.clouds import CLOUDS
from partnerguard.graph.errors import ConsentMissing, GraphError, LicenceRequired, SignInFailed
from partnerguard.graph.permissions import calls_of, serving_role
from partnerguard.graph.requests import ORGANIZATION, SUBSCRIBED_SKUS, Endpoint
from partnerguard.model import CheckMetadata, TenantInfo, TenantSnapshot, Unavailable, iso
from partnerguard.monitored_tenants import customers_of
from partnerguard.settings import Settings
from partnerguard.text import safe_text

if TYPE_CHECKING:
    from partnerguard.storage.tenant_registry import TenantRecord, TenantRegistry

log = logging.getLogger(__name__)

DOCTOR_SCHEMA = "partnerguard.doctor/v1"

SIGN_IN_OK = "ok"
SIGN_IN_NO_CONSENT = "no-consent"
SIGN_IN_ERROR = "error"
SIGN_IN_STATES = (SIGN_IN_OK, SIGN_IN_NO_CONSENT, SIGN_IN_ERROR)

GDAP_ACTIVE = "active"
GDAP_NONE = "none"
GDAP_NOT_APPLICABLE = "not-applicable"
GDAP_UNKNOWN = "unknown"
GDAP_STATES = (GDAP_ACTIVE, GDAP_NONE, GDAP_NOT_APPLICABLE, GDAP_UNKNOWN)

# The one licence the catalogue names (CheckMetadata.licence), and the reason code a report gives
# a check that lacks it (partnerguard.graph.errors.LicenceRequired).
ENTRA_ID_P1 = "Microsoft Entra ID P1"
ENTRA_ID_P1_CODE = f"licence:{LicenceRequired('').licence}"

# Tenants diagnosed at once: each is a sign-in and two small reads.
DOCTOR_CONCURRENCY = 8
MAX_DETAIL_CHARS = 300


def needs_entra_id_p1(metadata: CheckMetadata) -> bool:
    """Whether the check's data needs Entra ID P1 (the catalogue names no other licence)."""
    if metadata.licence is None:
        return False
    if ENTRA_ID_P1 not in metadata.licence:
        raise ValueError(f"{metadata.id}: doctor does not know the licence {metadata.licence!r}")
    return True


# -- the facts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccessFacts:
    """What one sign-in to a tenant established. None means "not known" (the read failed)."""

    sign_in: str  # ok | no-consent | error
    cloud: str
    # For people: why sign-in failed, or what could not be read. Never a token.
    detail: str | None = None
    # The AADSTS (or other) code of a failed sign-in, for `error:<code>`.
    error_code: str | None = None
    # The Graph application permissions in the token's `roles` claim.
    roles: frozenset[str] | None = None
    entra_id_p1: bool | None = None

    def to_document(self) -> dict[str, Any]:
        return {
            "sign_in": self.sign_in,
            "cloud": self.cloud,
            "detail": self.detail,
            "error_code": self.error_code,
            "roles": sorted(self.roles) if self.roles is not None else None,
            "entra_id_p1": self.entra_id_p1,
        }

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> AccessFacts | None:
        """The facts a registry row kept; None for a document this version cannot read."""
        sign_in = document.get("sign_in")
        cloud = document.get("cloud")
        roles = document.get("roles")
        p1 = document.get("entra_id_p1")
        if sign_in not in SIGN_IN_STATES or not isinstance(cloud, str) or cloud not in CLOUDS:
            return None
        if roles is not None and not (isinstance(roles, list) and all(isinstance(r, str) for r in roles)):
            return None
        detail, code = document.get("detail"), document.get("error_code")
        return cls(
            sign_in=sign_in,
            cloud=cloud,
            detail=detail if isinstance(detail, str) else None,
            error_code=code if isinstance(code, str) else None,
            roles=frozenset(roles) if roles is not None else None,
            entra_id_p1=p1 if isinstance(p1, bool) else None,
        )


def facts_after_sign_in_failure(error: SignInFailed, cloud: str) -> AccessFacts:
    return AccessFacts(
        sign_in=SIGN_IN_NO_CONSENT if isinstance(error, ConsentMissing) else SIGN_IN_ERROR,
        cloud=cloud,
        # The message starts with its AADSTS code (partnerguard.graph.errors.error_from_sign_in).
        detail=safe_text(
            error.message if error.message.startswith(error.code) else f"{error.code}: {error.message}",
            MAX_DETAIL_CHARS,
        ),
        error_code=error.code,
    )


def facts_from_snapshot(snapshot: TenantSnapshot) -> AccessFacts:
    """The facts a scan established on the way (it signed in and read subscribedSkus)."""
    unread = [
        f"{what}: {value.reason}"
        for what, value in (("token roles", snapshot.app_roles), ("subscribedSkus", snapshot.entra_id_p1))
        if isinstance(value, Unavailable)
    ]
    return AccessFacts(
        sign_in=SIGN_IN_OK,
        cloud=snapshot.cloud,
        detail=safe_text("; ".join(unread), MAX_DETAIL_CHARS) if unread else None,
        roles=snapshot.app_roles if isinstance(snapshot.app_roles, frozenset) else None,
        entra_id_p1=snapshot.entra_id_p1 if isinstance(snapshot.entra_id_p1, bool) else None,
    )


def gdap_of(tenant_id: str, role: str, cloud: str, live_customers: frozenset[str] | None) -> str:
    """A tenant's GDAP state from the partner's live relationships (None: they could not be read)."""
    if role == "partner":
        return GDAP_NOT_APPLICABLE
    if not CLOUDS[cloud].gdap_available or live_customers is None:
        return GDAP_UNKNOWN
    return GDAP_ACTIVE if tenant_id.lower() in live_customers else GDAP_NONE


# -- the judgement --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlindedCheck:
    check: str
    reason_code: str


@dataclass(frozen=True)
class DegradedCheck:
    check: str
    reason_code: str
    detail: str


@dataclass(frozen=True)
class ConsentLink:
    """Where an administrator of a tenant grants the app's permissions: the login host of the
    cloud (or AZURE_AUTHORITY_HOST) and the app's client id."""

    authority_host: str
    client_id: str | None

    @classmethod
    def from_settings(cls, settings: Settings) -> ConsentLink:
        return cls(settings.authority_host, settings.client_id)

    def for_tenant(self, tenant_id: str) -> str:
        """Microsoft's tenant-wide admin consent URL, which grants every permission the app declares:
        https://learn.microsoft.com/entra/identity/enterprise-apps/grant-admin-consent"""
        client = quote(self.client_id or "<AZURE_CLIENT_ID>", safe="<>_")
        return f"{self.authority_host.rstrip('/')}/{quote(tenant_id, safe='')}/adminconsent?client_id={client}"


@dataclass(frozen=True)
class Diagnosis:
    tenant: TenantInfo
    facts: AccessFacts
    gdap: str
    checked_at: datetime | None
    granted: tuple[str, ...] = ()
    # Needed permissions the token serves through a higher-privileged one: needed -> held.
    satisfied_by: Mapping[str, str] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    blinded: tuple[BlindedCheck, ...] = ()
    degraded: tuple[DegradedCheck, ...] = ()
    fixes: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        """Nothing missing and nothing left unknown that doctor should have found out."""
        facts = self.facts
        return (
            facts.sign_in == SIGN_IN_OK
            and facts.roles is not None
            and not self.missing
            and facts.entra_id_p1 is True
            and self.gdap != GDAP_NONE
        )

    def to_document(self) -> dict[str, Any]:
        """One tenant of `partnerguard.doctor/v1` (SPEC §3), plus the additive `cloud`,
        `checked_at`, `permissions.satisfied_by` and `degraded_checks`."""
        return {
            "id": self.tenant.id,
            "name": self.tenant.name,
            "role": self.tenant.role,
            "cloud": self.facts.cloud,
            "checked_at": iso(self.checked_at) if self.checked_at else None,
            "sign_in": self.facts.sign_in,
            "detail": self.facts.detail,
            "permissions": {
                "granted": list(self.granted),
                "missing": list(self.missing),
                "satisfied_by": dict(self.satisfied_by),
            },
            "licences": {"entra_id_p1": self.facts.entra_id_p1},
            "gdap": self.gdap,
            "blinded_checks": [{"check": b.check, "reason_code": b.reason_code} for b in self.blinded],
            "degraded_checks": [
                {"check": d.check, "reason_code": d.reason_code, "detail": d.detail} for d in self.degraded
            ],
            "fixes": list(self.fixes),
        }


def applicable_checks(role: str) -> list[CheckMetadata]:
    """The catalogue's checks that apply to a tenant of this role, in catalogue order."""
    return [check.METADATA for check in ALL_CHECKS if role == "partner" or not check.METADATA.partner_only]


@dataclass(frozen=True)
class Access:
    """Which of what a tenant needs the token serves (see `partnerguard.graph.permissions`)."""

    granted: tuple[str, ...]
    missing: tuple[str, ...]
    satisfied_by: Mapping[str, str]
    # check id -> the permissions it lacks, in METADATA order.
    lacking: Mapping[str, tuple[str, ...]]


def judged_checks(role: str, cloud: str) -> list[CheckMetadata]:
    """The applicable checks that permissions can blind (not those the cloud already blinds)."""
    gdap_cloud = CLOUDS[cloud].gdap_available
    return [m for m in applicable_checks(role) if gdap_cloud or not m.partner_only]


def access(role: str, cloud: str, roles: frozenset[str]) -> Access:
    """Every permission the tenant's checks and every scan's own reads (the name, the licence) need,
    judged call by call: a permission is missing when a call that needs it is not served, or, for
    one no call carries (Directory.Read.All, for Microsoft's licence check), when it is not held."""
    calls: set[Endpoint] = {ORGANIZATION, SUBSCRIBED_SKUS}
    lacking: dict[str, tuple[str, ...]] = {}
    bare: set[str] = set()  # permissions needed without a call of their own
    for metadata in judged_checks(role, cloud):
        own = calls_of(metadata.id)
        calls.update(own)
        by_call = {e.permission for e in own}
        bare |= set(metadata.permissions) - by_call
        lacks = [
            p
            for p in metadata.permissions
            if (p in by_call and any(e.permission == p and serving_role(e, roles) is None for e in own))
            or (p not in by_call and p not in roles)
        ]
        if lacks:
            lacking[metadata.id] = tuple(lacks)
    unserved = {e.permission for e in calls if serving_role(e, roles) is None}
    missing = unserved | {p for p in bare if p not in roles}
    needed = {e.permission for e in calls} | bare
    via: dict[str, str] = {}
    for permission in sorted(needed - missing - roles):
        serving = {serving_role(e, roles) for e in calls if e.permission == permission}
        via[permission] = min(role for role in serving if role is not None)
    return Access(tuple(sorted(needed - missing)), tuple(sorted(missing)), via, lacking)


def diagnose(
    tenant: TenantInfo, facts: AccessFacts, gdap: str, link: ConsentLink, checked_at: datetime | None
) -> Diagnosis:
    checks = applicable_checks(tenant.role)
    blinded: list[BlindedCheck] = []
    degraded: list[DegradedCheck] = []
    fixes: list[str] = []
    consent_url = link.for_tenant(tenant.id)
    if facts.sign_in != SIGN_IN_OK:
        code = "consent" if facts.sign_in == SIGN_IN_NO_CONSENT else f"error:{facts.error_code or 'SignInFailed'}"
        blinded = [BlindedCheck(metadata.id, code) for metadata in checks]
        if facts.sign_in == SIGN_IN_NO_CONSENT:
            fixes.append(
                f"Grant admin consent to PartnerGuard's app in this tenant (a Global Administrator or Privileged "
                f"Role Administrator of the tenant): {consent_url} — or python3 scripts/setup_identity.py "
                f"consent --app-id {link.client_id or '<AZURE_CLIENT_ID>'} --tenant {tenant.id}"
            )
        else:
            fixes.append(
                f"Sign-in failed ({safe_text(facts.error_code or 'unknown')}): check the app's credential "
                "(the federated credential of the managed identity in Azure; AZURE_CLIENT_SECRET or "
                "AZURE_CLIENT_CERTIFICATE_PATH locally), that the app is enabled in the tenant, and that the "
                "login host can be reached"
            )
        fixes += _gdap_fixes(gdap)
        return Diagnosis(tenant, facts, gdap, checked_at, blinded=tuple(blinded), fixes=tuple(fixes))

    judged = access(tenant.role, facts.cloud, facts.roles) if facts.roles is not None else None
    if judged is None:
        fixes.append(
            "The token's roles could not be read, so doctor cannot tell which permissions are granted; run doctor again"
        )
    missing = judged.missing if judged is not None else ()
    p1_missing = facts.entra_id_p1 is False
    gdap_cloud = CLOUDS[facts.cloud].gdap_available
    for metadata in checks:
        if metadata.partner_only and not gdap_cloud:
            blinded.append(BlindedCheck(metadata.id, "cloud"))
            continue
        lacks = judged.lacking.get(metadata.id, ()) if judged is not None else ()
        blinded += [BlindedCheck(metadata.id, f"permission:{p}") for p in lacks]
        if p1_missing and needs_entra_id_p1(metadata):
            if metadata.licence_fallback:
                degraded.append(DegradedCheck(metadata.id, ENTRA_ID_P1_CODE, metadata.licence_fallback))
            else:
                blinded.append(BlindedCheck(metadata.id, ENTRA_ID_P1_CODE))

    for permission in missing:
        checks_blinded = [b.check for b in blinded if b.reason_code == f"permission:{permission}"]
        what = f"blinds {', '.join(checks_blinded)}" if checks_blinded else _OWN_READS.get(permission, "")
        fixes.append(
            f"Grant the Microsoft Graph application permission {permission} ({what}): declare it on the app "
            "(python3 scripts/setup_identity.py in the partner tenant), then an administrator of this tenant "
            f"grants admin consent again: {consent_url}"
        )
    if p1_missing:
        needing = [m.id for m in checks if needs_entra_id_p1(m) and not m.licence_fallback]
        slowed = [m.id for m in checks if needs_entra_id_p1(m) and m.licence_fallback]
        fixes.append(
            "Assign a licence that includes Microsoft Entra ID P1 (service plan AAD_PREMIUM: Entra ID P1 or P2, "
            "Microsoft 365 Business Premium, E3 or E5) to at least one user of this tenant: without it "
            f"{', '.join(needing)} cannot be assessed"
            + (f", and {', '.join(slowed)} falls back to reading each user's methods" if slowed else "")
        )
    elif facts.entra_id_p1 is None and SUBSCRIBED_SKUS.permission not in missing:
        fixes.append("subscribedSkus could not be read, so whether Entra ID P1 is present is unknown; run doctor again")
    fixes += _gdap_fixes(gdap)
    return Diagnosis(
        tenant,
        facts,
        gdap,
        checked_at,
        granted=judged.granted if judged is not None else (),
        satisfied_by=judged.satisfied_by if judged is not None else {},
        missing=missing,
        blinded=tuple(blinded),
        degraded=tuple(degraded),
        fixes=tuple(fixes),
    )


def _gdap_fixes(gdap: str) -> list[str]:
    if gdap != GDAP_NONE:
        return []
    return [
        "The partner has no active GDAP relationship with this customer. PartnerGuard reads the tenant "
        "through its own consented app, so no check is blinded, but customer discovery "
        "(PARTNERGUARD_DISCOVER_CUSTOMERS) will not find it: create a relationship in Partner Center "
        "(Customers > Admin relationships), or stop monitoring the tenant (PARTNERGUARD_TENANTS)"
    ]


# What a permission blinds when no check lists it: doctor's (and every scan's) own reads.
_OWN_READS = {
    ORGANIZATION.permission: "the tenant's name and the Entra ID P1 detection of every scan",
}


def diagnose_record(tenant: TenantInfo, record: TenantRecord | None, settings: Settings) -> Diagnosis | None:
    """The diagnosis of the facts the registry keeps for a tenant; None when none are recorded."""
    if record is None or record.access is None:
        return None
    facts = AccessFacts.from_document(record.access)
    if facts is None:
        return None
    if tenant.role == "partner":
        gdap = GDAP_NOT_APPLICABLE
    else:
        gdap = record.gdap if record.gdap in GDAP_STATES else GDAP_UNKNOWN
    return diagnose(tenant, facts, gdap, ConsentLink.from_settings(settings), record.access_checked_at)


def doctor_document(diagnoses: Sequence[Diagnosis]) -> dict[str, Any]:
    return {"schema": DOCTOR_SCHEMA, "tenants": [d.to_document() for d in diagnoses]}


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

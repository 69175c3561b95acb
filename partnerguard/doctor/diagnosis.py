"""The pure judgement of a tenant's `AccessFacts` against the check catalogue: what each gap
blinds, and the fix (SPEC §3, `partnerguard.doctor/v1`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from checks import ALL_CHECKS
from partnerguard.clouds import CLOUDS
from partnerguard.doctor.facts import (
    GDAP_NONE,
    GDAP_NOT_APPLICABLE,
    GDAP_STATES,
    GDAP_UNKNOWN,
    SIGN_IN_NO_CONSENT,
    SIGN_IN_OK,
    AccessFacts,
)
from partnerguard.graph.errors import LicenceRequired
from partnerguard.graph.permissions import calls_of, serving_role
from partnerguard.graph.requests import ORGANIZATION, SUBSCRIBED_SKUS, Endpoint
from partnerguard.model import CheckMetadata, TenantInfo, iso
from partnerguard.settings import Settings
from partnerguard.text import safe_text

if TYPE_CHECKING:
    from partnerguard.storage.tenant_registry import TenantRecord


DOCTOR_SCHEMA = "partnerguard.doctor/v1"

# The one licence the catalogue names (CheckMetadata.licence), and the reason code a report gives
# a check that lacks it (partnerguard.graph.errors.LicenceRequired).
ENTRA_ID_P1 = "Microsoft Entra ID P1"
ENTRA_ID_P1_CODE = f"licence:{LicenceRequired('').licence}"


def needs_entra_id_p1(metadata: CheckMetadata) -> bool:
    """Whether the check's data needs Entra ID P1 (the catalogue names no other licence)."""
    if metadata.licence is None:
        return False
    if ENTRA_ID_P1 not in metadata.licence:
        raise ValueError(f"{metadata.id}: doctor does not know the licence {metadata.licence!r}")
    return True


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
                "(the federated credential of the managed identity in Azure; AZURE_CLIENT_SECRET, "
                "AZURE_CLIENT_CERTIFICATE_PATH or AZURE_FEDERATED_TOKEN_FILE locally or in CI), that the app is "
                "enabled in the tenant, and that the login host can be reached"
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

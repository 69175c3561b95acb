"""What a tenant lets PartnerGuard see, as a sign-in, a scan or `doctor` found it (`AccessFacts`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from partnerguard.clouds import CLOUDS
from partnerguard.graph.errors import ConsentMissing, LicenceRequired, SignInFailed
from partnerguard.model import TenantSnapshot, Unavailable
from partnerguard.text import safe_text

if TYPE_CHECKING:
    pass


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

MAX_DETAIL_CHARS = 300


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

"""Everything the checks read about one tenant, gathered once per scan (ScubaGear's split).

The collector (`partnerguard.collect`) fills a `TenantSnapshot` from Microsoft Graph; the checks
are pure functions over it. Each field holds the data, or `Unavailable` with the reason it could
not be read (licence, permission, cloud, scope, error). Big collections are stored as small
slotted records built straight from Graph's JSON, never as msgraph-sdk models.
Graph objects whose shape the checks interpret rule by rule (Conditional Access policies) are
kept as Graph's own JSON, so the rules quote Graph's documented property names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from checks.base import Unavailable

JsonObject = Mapping[str, Any]

# The default of every collected field: a collector that forgot a field makes the checks that
# need it `error`, never `pass` over data nobody read.
NOT_COLLECTED = Unavailable("PartnerGuard did not collect this data in this scan.", "error:not-collected")


@dataclass(frozen=True, slots=True)
class User:
    """A user object: GET /users?$select=id,displayName,userPrincipalName,accountEnabled,userType."""

    id: str
    display_name: str
    user_principal_name: str
    account_enabled: bool
    user_type: str  # "Member" or "Guest"

    @property
    def is_guest(self) -> bool:
        return self.user_type.lower() == "guest"

    @classmethod
    def from_graph(cls, item: JsonObject) -> User:
        return cls(
            id=item["id"],
            display_name=item.get("displayName") or "",
            user_principal_name=item.get("userPrincipalName") or "",
            # Graph omits accountEnabled only when it was not selected; treat unknown as enabled
            # so that a user is never skipped by accident.
            account_enabled=item.get("accountEnabled") is not False,
            user_type=item.get("userType") or "Member",
        )


@dataclass(frozen=True, slots=True)
class RegistrationDetail:
    """One row of GET /reports/authenticationMethods/userRegistrationDetails."""

    id: str
    user_principal_name: str
    user_display_name: str
    user_type: str  # "member" or "guest"
    is_admin: bool
    is_mfa_capable: bool
    is_mfa_registered: bool
    methods_registered: tuple[str, ...]

    @classmethod
    def from_graph(cls, item: JsonObject) -> RegistrationDetail:
        return cls(
            id=item["id"],
            user_principal_name=item.get("userPrincipalName") or "",
            user_display_name=item.get("userDisplayName") or "",
            user_type=item.get("userType") or "member",
            is_admin=bool(item.get("isAdmin")),
            is_mfa_capable=bool(item.get("isMfaCapable")),
            is_mfa_registered=bool(item.get("isMfaRegistered")),
            methods_registered=tuple(item.get("methodsRegistered") or ()),
        )


@dataclass(frozen=True, slots=True)
class SignInAggregate:
    """Successful sign-ins that one sign-in rule matched, summed per subject across scans.

    Sign-ins are collected incrementally (a watermark per tenant and event type) and folded into
    these aggregates in Table Storage, so a scan never re-reads a week of sign-ins. `rule` is the
    check id whose classifier matched (`legacy-auth.sign-ins`, `sign-ins.single-factor`,
    `sam.password-grant`); `subject_id` is that check's subject id (SPEC §1). The look-back window
    is applied by the checks to `last_seen`.
    """

    rule: str
    subject_id: str
    user_id: str
    user_principal_name: str
    user_display_name: str
    app_id: str
    app_display_name: str
    client_app_used: str
    first_seen: datetime
    last_seen: datetime
    # Sign-ins observed, at least: a late-arriving event re-read in the overlap is never counted twice.
    count: int
    event_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class TenantSnapshot:
    tenant_id: str
    tenant_name: str
    role: Literal["partner", "customer"]
    collected_at: datetime
    cloud: str = "public"
    users: Sequence[User] | Unavailable = NOT_COLLECTED
    registration_details: Sequence[RegistrationDetail] | Unavailable = NOT_COLLECTED
    # GET /identity/conditionalAccess/policies, Graph's JSON per policy.
    conditional_access_policies: Sequence[JsonObject] | Unavailable = NOT_COLLECTED
    # GET /policies/identitySecurityDefaultsEnforcementPolicy -> isEnabled.
    security_defaults_enabled: bool | Unavailable = NOT_COLLECTED
    # beta GET /users/{id}/authentication/requirements -> perUserMfaState, by user id. Only read
    # when neither security defaults nor one Conditional Access policy covers every user. None
    # means exactly "not needed", and the collector says so explicitly: the default is
    # NOT_COLLECTED, so a collector that skipped it when it was needed can never yield `fail`.
    # A user whose own read failed is absent (the check counts them as unread).
    per_user_mfa_states: Mapping[str, str] | Unavailable | None = NOT_COLLECTED
    # mfa.registration fallback (SPEC §1), for users the registration report lacks or when it is
    # unlicensed: GET /users/{id}/authentication/methods -> the @odata.type of each method, by
    # user id; and the method configurations enabled in policies/authenticationMethodsPolicy.
    # None means the fallback was not needed or not collected by this version.
    user_auth_methods: Mapping[str, Sequence[str]] | Unavailable | None = None
    enabled_auth_method_ids: frozenset[str] | Unavailable | None = None
    # Users the fallback could not reach before the scan's time budget ran out.
    unassessed_user_ids: frozenset[str] = field(default_factory=frozenset)
    # Users the fallback reached but whose methods could not be read (throttled or 5xx for good,
    # a failed $batch, deleted since the user list was read).
    unreadable_user_ids: frozenset[str] = field(default_factory=frozenset)
    # Users holding an active directory role assignment (fallback's notion of an admin).
    admin_user_ids: frozenset[str] | Unavailable | None = None
    # Licences: the skuPartNumbers and enabled service plan names of GET /subscribedSkus
    # (e.g. AAD_PREMIUM, AAD_PREMIUM_P2). None when not read.
    licences: frozenset[str] | Unavailable | None = None
    # Conditional Access exclusions resolved: excluded group id -> transitive member user ids;
    # excluded role template id -> principal ids with an active assignment of that role; and
    # the display names of the principals involved, so findings name every excluded principal.
    group_members: Mapping[str, frozenset[str]] | Unavailable | None = None
    role_members: Mapping[str, frozenset[str]] | Unavailable | None = None
    principal_names: Mapping[str, str] = field(default_factory=dict)
    # Sign-in aggregates of every sign-in rule (see SignInAggregate), all stored ones: the
    # checks apply the look-back window.
    sign_in_aggregates: Sequence[SignInAggregate] | Unavailable = NOT_COLLECTED
    # GET /applications and GET /servicePrincipals: Graph's JSON (id, appId, displayName,
    # passwordCredentials, keyCredentials; servicePrincipalType for service principals).
    applications: Sequence[JsonObject] | Unavailable = NOT_COLLECTED
    service_principals: Sequence[JsonObject] | Unavailable = NOT_COLLECTED
    # GET /tenantRelationships/delegatedAdminRelationships (partner tenant, public cloud only):
    # Graph's JSON, resellerDelegatedAdminRelationship items included.
    delegated_admin_relationships: Sequence[JsonObject] | Unavailable = NOT_COLLECTED

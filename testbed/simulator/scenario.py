"""A simulated tenant: Graph's own JSON for each resource, loaded from a scenario data file.

A scenario file (`scenarios/*.json`) is one JSON object. Besides a few simulator settings
(`tenantId`, `role`, `consented`, `licences`, `grantedPermissions`) every key holds Graph
resources exactly as Graph returns them (camelCase, field for field), so the server can serve
them verbatim and the conformance test can check them against Graph's models.

Timestamps that must stay recent (sign-ins inside the look-back window, credentials about to
expire) are written relative to the moment the file is loaded: a string `"{{now-26h}}"` or
`"{{now+400d}}"` (units `d`, `h`, `m`) anywhere in the file becomes that instant in Graph's
ISO 8601 form. Everything else is literal.

The state is mutable on purpose: tests change a live tenant between two scans
(`sim.tenant(id).users.append(...)`).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from testbed.simulator import ground_truth

JsonObject = dict[str, Any]

GUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Service plans that carry Microsoft Entra ID P1 (P2 includes P1). A tenant without one of
# these answers the premium-only APIs with 403 Authentication_RequestFromNonPremiumTenantOrB2CTenant.
PREMIUM_PLANS = frozenset({"AAD_PREMIUM", "AAD_PREMIUM_P2"})
PER_USER_MFA_STATES = frozenset({"disabled", "enabled", "enforced"})
# The Graph application permissions the simulated multi-tenant app declares (its
# requiredResourceAccess, as scripts/setup_identity.py declares PartnerGuard's): admin consent
# grants exactly these unless a scenario's `grantedPermissions` says otherwise.
APP_PERMISSIONS = frozenset(
    {
        "Application.Read.All",
        "AuditLog.Read.All",
        "DelegatedAdminRelationship.Read.All",
        "Directory.Read.All",
        "GroupMember.Read.All",
        "Organization.Read.All",
        "Policy.Read.All",
        "Policy.Read.AuthenticationMethod",
        "RoleManagement.Read.Directory",
        "User.Read.All",
        "UserAuthenticationMethod.Read.All",
    }
)


_RELATIVE_TIME_RE = re.compile(r"^\{\{now(?:(?P<sign>[+-])(?P<amount>\d+)(?P<unit>[dhm]))?\}\}$")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


def resolve_relative_times(value: Any, now: datetime) -> Any:
    """Replace every "{{now±N(d|h|m)}}" string in a JSON value by an ISO 8601 UTC instant."""
    if isinstance(value, str):
        match = _RELATIVE_TIME_RE.match(value)
        if not match:
            return value
        moment = now
        if match["sign"]:
            delta = timedelta(**{_UNITS[match["unit"]]: int(match["amount"])})
            moment = now + delta if match["sign"] == "+" else now - delta
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, list):
        return [resolve_relative_times(item, now) for item in value]
    if isinstance(value, dict):
        return {key: resolve_relative_times(item, now) for key, item in value.items()}
    return value


class ScenarioError(ValueError):
    """A scenario file is malformed. The message names the file and the problem."""


@dataclass
class TenantScenario:
    tenant_id: str
    display_name: str
    role: Literal["partner", "customer"]
    consented: bool = True
    # Service plan names (e.g. "AAD_PREMIUM") the tenant is licensed for.
    licences: list[str] = field(default_factory=list)
    # Graph application permissions consented for the app; None means what admin consent grants,
    # APP_PERMISSIONS. They are the `roles` of the tokens issued for the tenant, and a request
    # whose permission (or a documented higher-privileged one) is not among them answers 403
    # Authorization_RequestDenied.
    granted_permissions: set[str] | None = None
    organization: JsonObject = field(default_factory=dict)
    users: list[JsonObject] = field(default_factory=list)
    user_registration_details: list[JsonObject] = field(default_factory=list)
    # Conditional Access policies in Graph's beta shape (v1.0's plus the device conditions
    # includeDevices, excludeDevices and deviceStates); the simulator strips beta-only properties
    # on v1.0. A grant's authenticationStrength may be the full strength or a reference ({"id"}).
    conditional_access_policies: list[JsonObject] = field(default_factory=list)
    # The tenant's custom authentication strengths (authenticationStrengthPolicy JSON); the
    # built-in ones (graph_api.BUILT_IN_AUTHENTICATION_STRENGTHS) exist in every tenant.
    authentication_strength_policies: list[JsonObject] = field(default_factory=list)
    security_defaults: JsonObject = field(default_factory=dict)
    # User id -> "disabled" | "enabled" | "enforced"; users not listed are "disabled".
    per_user_mfa_states: dict[str, str] = field(default_factory=dict)
    # User id -> that user's authentication methods (Graph's JSON, with @odata.type).
    authentication_methods: dict[str, list[JsonObject]] = field(default_factory=dict)
    authentication_methods_policy: JsonObject = field(default_factory=dict)
    subscribed_skus: list[JsonObject] = field(default_factory=list)
    role_assignments: list[JsonObject] = field(default_factory=list)
    # Group objects (GET /groups/{id}), and group id -> its transitive members (directoryObject
    # JSON with @odata.type: users, and nested groups with their own members listed too).
    groups: list[JsonObject] = field(default_factory=list)
    group_transitive_members: dict[str, list[JsonObject]] = field(default_factory=dict)
    applications: list[JsonObject] = field(default_factory=list)
    service_principals: list[JsonObject] = field(default_factory=list)
    sign_ins: list[JsonObject] = field(default_factory=list)
    delegated_admin_relationships: list[JsonObject] = field(default_factory=list)
    source: Path | None = None

    @property
    def roles(self) -> frozenset[str]:
        """The application permissions the app holds in this tenant (its tokens' `roles`)."""
        return frozenset(APP_PERMISSIONS if self.granted_permissions is None else self.granted_permissions)

    @property
    def has_entra_premium(self) -> bool:
        return bool(PREMIUM_PLANS.intersection(self.licences))

    def user(self, user_id: str) -> JsonObject | None:
        lowered = user_id.lower()
        for user in self.users:
            if str(user.get("id", "")).lower() == lowered or str(user.get("userPrincipalName", "")).lower() == lowered:
                return user
        return None

    def mfa_incapable_user_ids(self, include_guests: bool = False) -> set[str]:
        """Ground truth for `mfa.registration`: enabled users whose registration row says they
        are not MFA capable, or who have no row at all (the report lags behind)."""
        capable = {row["id"] for row in self.user_registration_details if row.get("isMfaCapable")}
        return {
            user["id"]
            for user in self.users
            if user.get("accountEnabled", True)
            and (include_guests or str(user.get("userType", "Member")).lower() != "guest")
            and user["id"] not in capable
        }

    # -- ground truth (see ground_truth.py): what a correct scan of this tenant reports ---------

    def method_mfa_incapable_user_ids(self, include_guests: bool = False) -> set[str]:
        """Enabled users that no qualifying method allowed by the authentication-methods policy
        makes MFA capable: the `mfa.registration` fallback's verdict."""
        return ground_truth.method_mfa_incapable_user_ids(self, include_guests)

    def expected_mfa_registration_subjects(self, include_guests: bool = False) -> set[str]:
        """`mfa.registration` findings of a complete scan (report, fallback, or both)."""
        return ground_truth.expected_mfa_registration_subjects(self, include_guests)

    def admin_user_ids(self) -> set[str]:
        return ground_truth.admin_user_ids(self)

    def expected_phishing_resistant_admin_subjects(self, emergency_accounts: Iterable[str] = ()) -> set[str]:
        """`mfa.phishing-resistant-admins` findings of a complete scan with EMERGENCY_ACCESS_ACCOUNTS."""
        return ground_truth.expected_phishing_resistant_admin_subjects(self, emergency_accounts)

    def expected_method_strength(self, include_guests: bool = False) -> dict[str, int]:
        """The counts of the report's `metrics` (SPEC §2) for a complete scan."""
        return ground_truth.expected_method_strength(self, include_guests)

    def authentication_strength(self, strength_id: str) -> JsonObject | None:
        """GET /policies/authenticationStrengthPolicies/{id}: a custom strength of the tenant, or a
        built-in one (every tenant has them)."""
        wanted = strength_id.lower()
        for strength in [*self.authentication_strength_policies, *BUILT_IN_AUTHENTICATION_STRENGTHS]:
            if str(strength.get("id", "")).lower() == wanted:
                return strength
        return None

    def expected_conditional_access_outcome(self, check_id: str) -> tuple[str, set[str]]:
        """(status, subject ids) of `mfa.enforcement` or `legacy-auth.blocked` on a complete scan."""
        return ground_truth.expected_conditional_access_outcome(self, check_id)

    def ca_excluded_principals(self, policy_id: str) -> dict[str, set[str]]:
        """A Conditional Access policy's exclusions resolved (groups transitively, roles to holders)."""
        return ground_truth.ca_excluded_principals(self, policy_id)

    def sign_in_subjects(self, rule: str, now: datetime, window_hours: int = 168) -> set[str]:
        """Subject ids of `legacy-auth.sign-ins`, `sign-ins.single-factor` or `sam.password-grant`."""
        return ground_truth.sign_in_subjects(self, rule, now, window_hours)

    def client_secret_subjects(self, max_lifetime_days: int = 180) -> dict[str, str]:
        """`apps.client-secrets` subject id -> severity."""
        return ground_truth.client_secret_subjects(self, max_lifetime_days)

    def expiring_credential_subjects(self, now: datetime, days: int = 30) -> set[str]:
        return ground_truth.expiring_credential_subjects(self, now, days)

    def privileged_gdap_relationship_ids(self) -> set[str]:
        return ground_truth.privileged_gdap_relationship_ids(self)

    def expiring_gdap_relationship_ids(self, now: datetime, days: int = 30) -> set[str]:
        return ground_truth.expiring_gdap_relationship_ids(self, now, days)

    def copy(self) -> TenantScenario:
        return copy.deepcopy(self)


def _built_in_strength(number: int, name: str, description: str, combinations: list[str]) -> JsonObject:
    return {
        "id": f"00000000-0000-0000-0000-00000000000{number}",
        "createdDateTime": "2021-12-01T00:00:00Z",
        "modifiedDateTime": "2021-12-01T00:00:00Z",
        "displayName": name,
        "description": description,
        "policyType": "builtIn",
        "requirementsSatisfied": "mfa",
        "allowedCombinations": combinations,
        "combinationConfigurations": [],
    }


# The built-in authentication strengths every tenant has, all requiring MFA
# (https://learn.microsoft.com/entra/identity/authentication/concept-authentication-strengths;
# ids as in https://learn.microsoft.com/graph/api/authenticationstrengthpolicy-get).
BUILT_IN_AUTHENTICATION_STRENGTHS: tuple[JsonObject, ...] = (
    _built_in_strength(
        2,
        "Multifactor authentication",
        "Combinations of methods that satisfy strong authentication, such as a password + SMS",
        ["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor", "password,microsoftAuthenticatorPush"],
    ),
    _built_in_strength(
        3,
        "Passwordless MFA",
        "Passwordless methods that satisfy strong authentication, such as Passwordless sign-in with the "
        "Microsoft Authenticator",
        ["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor", "microsoftAuthenticatorPasswordless"],
    ),
    _built_in_strength(
        4,
        "Phishing-resistant MFA",
        "Phishing-resistant, Passwordless methods for the strongest authentication, such as a FIDO2 security key",
        ["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor"],
    ),
)


# Scenario file key -> TenantScenario attribute, for the Graph-shaped collections.
_RESOURCE_KEYS: dict[str, str] = {
    "organization": "organization",
    "users": "users",
    "userRegistrationDetails": "user_registration_details",
    "conditionalAccessPolicies": "conditional_access_policies",
    "authenticationStrengthPolicies": "authentication_strength_policies",
    "identitySecurityDefaultsEnforcementPolicy": "security_defaults",
    "perUserMfaStates": "per_user_mfa_states",
    "authenticationMethods": "authentication_methods",
    "authenticationMethodsPolicy": "authentication_methods_policy",
    "subscribedSkus": "subscribed_skus",
    "roleAssignments": "role_assignments",
    "groups": "groups",
    "groupTransitiveMembers": "group_transitive_members",
    "applications": "applications",
    "servicePrincipals": "service_principals",
    "signIns": "sign_ins",
    "delegatedAdminRelationships": "delegated_admin_relationships",
}
_SETTING_KEYS = frozenset(
    {"tenantId", "displayName", "role", "consented", "licences", "grantedPermissions", "$comment"}
)


def scenario_from_dict(data: JsonObject, source: Path | None = None, now: datetime | None = None) -> TenantScenario:
    where = str(source) if source else "scenario"
    data = resolve_relative_times(data, now or datetime.now(UTC))

    def fail(problem: str) -> ScenarioError:
        return ScenarioError(f"{where}: {problem}")

    if not isinstance(data, dict):
        raise fail("expected a JSON object")
    unknown = set(data) - _SETTING_KEYS - set(_RESOURCE_KEYS)
    if unknown:
        raise fail(f"unknown keys {sorted(unknown)}")
    tenant_id = str(data.get("tenantId", "")).lower()
    if not GUID_RE.match(tenant_id):
        raise fail(f"tenantId must be a GUID, got {data.get('tenantId')!r}")
    role = data.get("role")
    if role not in ("partner", "customer"):
        raise fail(f"role must be 'partner' or 'customer', got {role!r}")
    display_name = data.get("displayName")
    if not isinstance(display_name, str) or not display_name:
        raise fail("displayName is required")
    licences = data.get("licences", [])
    if not isinstance(licences, list) or not all(isinstance(item, str) for item in licences):
        raise fail("licences must be a list of service plan names")
    granted = data.get("grantedPermissions")
    if granted is not None and (not isinstance(granted, list) or not all(isinstance(p, str) for p in granted)):
        raise fail("grantedPermissions must be a list of permission names")

    scenario = TenantScenario(
        tenant_id=tenant_id,
        display_name=display_name,
        role=role,
        consented=bool(data.get("consented", True)),
        licences=list(licences),
        granted_permissions=set(granted) if granted is not None else None,
        source=source,
    )
    for key, attribute in _RESOURCE_KEYS.items():
        if key in data:
            expected = type(getattr(scenario, attribute))
            if not isinstance(data[key], expected):
                raise fail(f"{key} must be a JSON {'object' if expected is dict else 'array'}")
            setattr(scenario, attribute, data[key])
    _check_consistency(scenario, fail)
    return scenario


def _check_consistency(scenario: TenantScenario, fail: Any) -> None:
    ids = [user.get("id") for user in scenario.users]
    if any(not isinstance(user_id, str) for user_id in ids):
        raise fail("every user needs an id")
    if len(set(ids)) != len(ids):
        raise fail("user ids must be unique")
    known = set(ids)
    for row in scenario.user_registration_details:
        if row.get("id") not in known:
            raise fail(f"userRegistrationDetails row {row.get('id')!r} names no user")
    for user_id, state in scenario.per_user_mfa_states.items():
        if user_id not in known:
            raise fail(f"perUserMfaStates names unknown user {user_id!r}")
        if state not in PER_USER_MFA_STATES:
            raise fail(f"perUserMfaStates[{user_id}] must be one of {sorted(PER_USER_MFA_STATES)}")
    for user_id in scenario.authentication_methods:
        if user_id not in known:
            raise fail(f"authenticationMethods names unknown user {user_id!r}")
    if scenario.subscribed_skus:
        # The licence setting drives the premium APIs' 403s; subscribedSkus is what a client reads
        # to detect P1. A tenant whose two disagree would test nothing real.
        plans = {
            str(plan.get("servicePlanName"))
            for sku in scenario.subscribed_skus
            if sku.get("capabilityStatus") == "Enabled"
            for plan in sku.get("servicePlans") or []
            if plan.get("provisioningStatus") == "Success"
        }
        if bool(PREMIUM_PLANS & plans) != scenario.has_entra_premium:
            raise fail("licences and subscribedSkus disagree about Microsoft Entra ID P1")


def load_scenario(path: str | Path) -> TenantScenario:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ScenarioError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from None
    return scenario_from_dict(data, source=path)


def bundled_scenario_paths() -> list[Path]:
    folder = resources.files("testbed.simulator") / "scenarios"
    return sorted(Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".json"))


def bundled_scenarios() -> list[TenantScenario]:
    """The scenario files shipped with PartnerGuard, partner tenant(s) first."""
    scenarios = [load_scenario(path) for path in bundled_scenario_paths()]
    return sorted(scenarios, key=lambda s: (s.role != "partner", s.display_name))

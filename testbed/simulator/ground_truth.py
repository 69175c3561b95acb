"""What a correct scan of a simulated tenant must report: the test oracle.

Every function reads a `TenantScenario` (Graph's own JSON) and answers, with the plainest code
that states SPEC §1's rule, which subject ids a check must report. It deliberately imports
nothing from `checks/` or the collector: a test that compares a scan with these answers compares
two independent readings of the rule. `TenantScenario` exposes each function as a method.

Rules and the Microsoft facts behind them:

- MFA capability from authentication methods (the `mfa.registration` fallback): a user is
  capable when one registered method qualifies and the authentication-methods policy allows it.
  Password, email and Temporary Access Pass never qualify. Windows Hello for Business and
  platform credentials have no configuration in the policy, so they always qualify. A phone
  qualifies through the Sms or Voice configuration, but an office or alternate-mobile phone
  takes voice calls only (https://learn.microsoft.com/entra/identity/authentication/concept-authentication-phone-options).
  Certificate-based authentication is not a method Graph lists per user: it is a user whose
  `authorizationInfo.certificateUserIds` binds a certificate, with the X509Certificate
  configuration enabled. Per-group targeting of a configuration is not modelled: the scenarios
  target `all_users`.
- Sign-in rules count successful sign-ins (`status.errorCode` 0) of users (event types
  `interactiveUser` / `nonInteractiveUser`) created within the look-back window ending at `now`.
- Credentials: a secret's lifetime is `endDateTime - startDateTime`; no end (null) is unbounded.
  A service principal's password credential whose keyId matches one of its `Sign` key
  credentials is a SAML signing certificate's private key, not a client secret. Managed
  identities' certificates are issued and rotated by Azure, never by the tenant: they are not
  reported.
- GDAP: only `active` and `expiring` relationships grant access; auto-extend is off when
  `autoExtendDuration` is `PT0S` or `P0D`.
- Phishing-resistant admins: an admin holds a role assignment at the tenant scope ("/"; a group
  assignment reaches its transitive members) or is `isAdmin` in the report; emergency-access
  accounts are the users the setting names by id or UPN. Phishing-resistant is a method of the
  built-in "Phishing-resistant MFA" strength whose configuration is enabled (Windows Hello for
  Business and platform credentials need none), from the report row with P1, else the user's
  methods.
- Conditional Access (`mfa.enforcement`, `legacy-auth.blocked`), SPEC §1 with its "Edge cases,
  decided", read from the beta shape the scenario holds: a candidate is any policy in any state
  that includes All users or All resources and has a grant control other than block (block
  grants nothing); a legacy-block candidate blocks and its client app types include
  exchangeActiveSync, other or all. A strength counts as MFA when its requirementsSatisfied (or
  that of the strength policy it references) is `mfa`. Without P1, Graph answers 403 for the
  policies, so none count. Per-user MFA: users not listed are `disabled`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from testbed.simulator.scenario import TenantScenario

JsonObject = Mapping[str, Any]

GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
PRIVILEGED_ROLE_ADMINISTRATOR = "e8611ab8-c189-46e8-94e1-60213ab1f814"
PRIVILEGED_GDAP_ROLES = frozenset({GLOBAL_ADMINISTRATOR, PRIVILEGED_ROLE_ADMINISTRATOR})
GDAP_GRANTING_STATUSES = frozenset({"active", "expiring"})
AUTO_EXTEND_OFF = frozenset({"PT0S", "P0D"})

LEGACY_AUTH_SIGN_INS = "legacy-auth.sign-ins"
SINGLE_FACTOR_SIGN_INS = "sign-ins.single-factor"
PASSWORD_GRANT = "sam.password-grant"
SIGN_IN_RULES = (LEGACY_AUTH_SIGN_INS, SINGLE_FACTOR_SIGN_INS, PASSWORD_GRANT)
USER_SIGN_IN_EVENT_TYPES = frozenset({"interactiveUser", "nonInteractiveUser"})
# clientAppUsed values (lower-cased) of modern clients; empty means not recorded.
MODERN_CLIENT_APPS = frozenset({"browser", "mobile apps and desktop clients", ""})

# Method @odata.type -> the authentication-methods policy configurations that allow it (any one
# enabled suffices); None: the policy has no configuration for it, so it always qualifies.
QUALIFYING_METHODS: dict[str, tuple[str, ...] | None] = {
    "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod": ("MicrosoftAuthenticator",),
    "#microsoft.graph.phoneAuthenticationMethod": ("Sms", "Voice"),
    "#microsoft.graph.fido2AuthenticationMethod": ("Fido2",),
    "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod": None,
    "#microsoft.graph.softwareOathAuthenticationMethod": ("SoftwareOath",),
    "#microsoft.graph.hardwareOathAuthenticationMethod": ("HardwareOath",),
    "#microsoft.graph.platformCredentialAuthenticationMethod": None,
}
_VOICE_ONLY_PHONE_TYPES = frozenset({"alternateMobile", "office"})


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- users and mfa.registration -----------------------------------------------------------


def _assessed(user: JsonObject, include_guests: bool) -> bool:
    if user.get("accountEnabled", True) is False:
        return False
    return include_guests or str(user.get("userType", "Member")).lower() != "guest"


def enabled_method_configurations(tenant: TenantScenario) -> frozenset[str]:
    configurations = tenant.authentication_methods_policy.get("authenticationMethodConfigurations") or []
    return frozenset(str(c.get("id")) for c in configurations if c.get("state") == "enabled")


def is_method_mfa_capable(tenant: TenantScenario, user_id: str) -> bool:
    """Whether the user has a qualifying method the policy allows (the fallback's reading)."""
    enabled = enabled_method_configurations(tenant)
    for method in tenant.authentication_methods.get(user_id, []):
        odata_type = str(method.get("@odata.type", ""))
        if odata_type not in QUALIFYING_METHODS:
            continue
        configurations = QUALIFYING_METHODS[odata_type]
        if configurations is None:
            return True
        if odata_type == "#microsoft.graph.phoneAuthenticationMethod" and method.get("phoneType") in (
            _VOICE_ONLY_PHONE_TYPES
        ):
            configurations = ("Voice",)
        if enabled.intersection(configurations):
            return True
    user = tenant.user(user_id) or {}
    bound = (user.get("authorizationInfo") or {}).get("certificateUserIds") or []
    return bool(bound) and "X509Certificate" in enabled


def method_mfa_incapable_user_ids(tenant: TenantScenario, include_guests: bool = False) -> set[str]:
    """Enabled users (guests only if asked) that no qualifying, allowed method makes capable."""
    return {
        user["id"]
        for user in tenant.users
        if _assessed(user, include_guests) and not is_method_mfa_capable(tenant, user["id"])
    }


def expected_mfa_registration_subjects(tenant: TenantScenario, include_guests: bool = False) -> set[str]:
    """The `mfa.registration` findings of a complete scan: with Entra ID P1, the report's verdict
    for the users it lists and the fallback for enabled users it lacks; without P1 (the report
    answers 403), the fallback for every enabled user."""
    if not tenant.has_entra_premium:
        return method_mfa_incapable_user_ids(tenant, include_guests)
    enabled = {user["id"] for user in tenant.users if user.get("accountEnabled", True) is not False}
    rows = {row["id"]: row for row in tenant.user_registration_details if row["id"] in enabled}
    findings: set[str] = set()
    for user in tenant.users:
        if not _assessed(user, include_guests):
            continue
        row = rows.get(user["id"])
        capable = bool(row.get("isMfaCapable")) if row is not None else is_method_mfa_capable(tenant, user["id"])
        if not capable:
            findings.add(user["id"])
    return findings


def admin_user_ids(tenant: TenantScenario) -> set[str]:
    """Principals holding a directory role assignment (the fallback's notion of an admin)."""
    return {str(assignment["principalId"]) for assignment in tenant.role_assignments}


# -- method strength: the report's `metrics` (SPEC §2) ---------------------------------------

# Microsoft's built-in "Phishing-resistant MFA" authentication strength: FIDO2 security keys and
# passkeys, Windows Hello for Business, the macOS platform credential
# (https://learn.microsoft.com/entra/identity/authentication/concept-authentication-strengths).
# Report names (methodsRegistered, lower-cased) -> the methods-policy configuration that must be
# enabled ("" : none governs it). Certificate-based authentication is not among a user's listed
# methods, so it never counts (SPEC §1).
_PHISHING_RESISTANT_REPORT_NAMES = {
    "fido2": "Fido2",
    "fido2securitykey": "Fido2",
    "passkeydevicebound": "Fido2",
    "passkeydeviceboundauthenticator": "Fido2",
    "passkeydeviceboundwindowshello": "Fido2",
    "passkeysynced": "Fido2",
    "windowshelloforbusiness": "",
    "macossecureenclavekey": "",
}
_PHISHING_RESISTANT_METHOD_TYPES = {
    "#microsoft.graph.fido2AuthenticationMethod": "Fido2",
    "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod": "",
    "#microsoft.graph.platformCredentialAuthenticationMethod": "",
}
# What a phone answers (SMS or voice), and what never counts for MFA, in both vocabularies.
_PHONE_REPORT_NAMES = {"mobilephone", "alternatemobilephone", "officephone", "sms"}
_NOT_MFA_REPORT_NAMES = {"email", "temporaryaccesspass", "securityquestion", "password"}
_PHONE_METHOD_TYPE = "#microsoft.graph.phoneAuthenticationMethod"
_NOT_MFA_METHOD_TYPES = {
    "#microsoft.graph.passwordAuthenticationMethod",
    "#microsoft.graph.emailAuthenticationMethod",
    "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
}


def expected_method_strength(tenant: TenantScenario, include_guests: bool = False) -> dict[str, int]:
    """The counts of the report's `metrics` for a complete scan: the users `mfa.registration`
    judges, each from the report row when the tenant has P1 and the report lists them, else from
    their authentication methods; admins are whom `mfa.phishing-resistant-admins` judges: the
    report's `isAdmin`, or a tenant-wide role assignment held directly or through a group.
    Phishing-resistant: a method of the built-in strength whose configuration is enabled. Phone
    alone: every registered method that counts for MFA is a phone (SMS or voice)."""
    enabled = enabled_method_configurations(tenant)
    rows = {row["id"]: row for row in tenant.user_registration_details} if tenant.has_entra_premium else {}
    role_holders = tenant_wide_role_holders(tenant)
    counts = dict.fromkeys(
        (
            "users_in_scope",
            "mfa_capable",
            "phishing_resistant",
            "phone_only",
            "admins",
            "admins_mfa_capable",
            "admins_phishing_resistant",
            "admins_phone_only",
        ),
        0,
    )
    for user in tenant.users:
        if not _assessed(user, include_guests):
            continue
        user_id = user["id"]
        row = rows.get(user_id)
        if row is not None:
            names = [str(name).lower() for name in row.get("methodsRegistered") or []]
            is_admin = bool(row.get("isAdmin")) or user_id in role_holders
            capable = bool(row.get("isMfaCapable"))
            resistant = any(
                name in _PHISHING_RESISTANT_REPORT_NAMES
                and (not _PHISHING_RESISTANT_REPORT_NAMES[name] or _PHISHING_RESISTANT_REPORT_NAMES[name] in enabled)
                for name in names
            )
            strong = [name for name in names if name not in _NOT_MFA_REPORT_NAMES]
            phone_only = bool(strong) and all(name in _PHONE_REPORT_NAMES for name in strong)
        else:
            types = [str(m.get("@odata.type", "")) for m in tenant.authentication_methods.get(user_id, [])]
            is_admin = user_id in role_holders
            capable = is_method_mfa_capable(tenant, user_id)
            resistant = any(
                t in _PHISHING_RESISTANT_METHOD_TYPES
                and (not _PHISHING_RESISTANT_METHOD_TYPES[t] or _PHISHING_RESISTANT_METHOD_TYPES[t] in enabled)
                for t in types
            )
            strong = [t for t in types if t not in _NOT_MFA_METHOD_TYPES]
            phone_only = bool(strong) and all(t == _PHONE_METHOD_TYPE for t in strong)
        for prefix, counted in (("", True), ("admins_", is_admin)):
            if counted:
                counts[prefix + "mfa_capable"] += capable
                counts[prefix + "phishing_resistant"] += resistant
                counts[prefix + "phone_only"] += phone_only
        counts["users_in_scope"] += 1
        counts["admins"] += is_admin
    return counts


# -- Conditional Access exclusions ----------------------------------------------------------


def transitive_user_ids(tenant: TenantScenario, group_id: str) -> set[str]:
    members = tenant.group_transitive_members.get(group_id.lower(), [])
    return {str(m["id"]) for m in members if m.get("@odata.type") == "#microsoft.graph.user"}


def role_principal_ids(tenant: TenantScenario, role_template_id: str) -> set[str]:
    # Built-in roles' roleDefinitionId in an assignment is the role's template id.
    return {
        str(a["principalId"])
        for a in tenant.role_assignments
        if str(a.get("roleDefinitionId", "")).lower() == role_template_id.lower()
    }


def ca_excluded_principals(tenant: TenantScenario, policy_id: str) -> dict[str, set[str]]:
    """The principals a Conditional Access policy excludes, resolved: `users` (named), `groups`
    (named), `group_members` (transitive users of those groups), `roles` (role template ids) and
    `role_members` (principals with an assignment of those roles)."""
    policy = next(p for p in tenant.conditional_access_policies if p["id"] == policy_id)
    users = policy["conditions"]["users"]
    groups = set(users.get("excludeGroups") or [])
    roles = set(users.get("excludeRoles") or [])
    return {
        "users": set(users.get("excludeUsers") or []),
        "groups": groups,
        "group_members": set().union(*(transitive_user_ids(tenant, g) for g in groups)),
        "roles": roles,
        "role_members": set().union(*(role_principal_ids(tenant, r) for r in roles)),
    }


# -- sign-ins -------------------------------------------------------------------------------


def _successful_user_sign_ins(tenant: TenantScenario, now: datetime, window_hours: int) -> Iterable[JsonObject]:
    start = now - timedelta(hours=window_hours)
    for sign_in in tenant.sign_ins:
        if (sign_in.get("status") or {}).get("errorCode") != 0:
            continue
        if not USER_SIGN_IN_EVENT_TYPES.intersection(sign_in.get("signInEventTypes") or ["interactiveUser"]):
            continue
        created = parse_time(sign_in.get("createdDateTime"))
        if created is not None and start <= created <= now:
            yield sign_in


def sign_in_subjects(tenant: TenantScenario, rule: str, now: datetime, window_hours: int = 168) -> set[str]:
    """Subject ids (SPEC §1) of one sign-in rule for the window of `window_hours` ending at `now`."""
    subjects: set[str] = set()
    for sign_in in _successful_user_sign_ins(tenant, now, window_hours):
        user_id, app_id = str(sign_in.get("userId")), str(sign_in.get("appId"))
        if rule == LEGACY_AUTH_SIGN_INS:
            client = str(sign_in.get("clientAppUsed") or "").lower()
            if client not in MODERN_CLIENT_APPS:
                subjects.add(f"{user_id}|{client}")
        elif rule == SINGLE_FACTOR_SIGN_INS:
            if sign_in.get("authenticationRequirement") == "singleFactorAuthentication":
                subjects.add(f"{user_id}|{app_id}")
        elif rule == PASSWORD_GRANT:
            if sign_in.get("authenticationProtocol") == "ropc":
                subjects.add(f"{app_id}|{user_id}")
        else:
            raise ValueError(f"not a sign-in rule: {rule!r}")
    return subjects


# -- application credentials ----------------------------------------------------------------


def _credential_holders(tenant: TenantScenario) -> Iterable[tuple[JsonObject, bool]]:
    """(object, is_service_principal) for every application and non-managed-identity service principal."""
    for application in tenant.applications:
        yield application, False
    for principal in tenant.service_principals:
        if principal.get("servicePrincipalType") != "ManagedIdentity":
            yield principal, True


def _signing_key_ids(holder: JsonObject) -> set[str]:
    return {str(k["keyId"]).lower() for k in holder.get("keyCredentials") or [] if k.get("usage") == "Sign"}


def client_secret_subjects(tenant: TenantScenario, max_lifetime_days: int = 180) -> dict[str, str]:
    """`apps.client-secrets`: subject id -> severity (`high` when the lifetime exceeds
    `max_lifetime_days` or the secret has no end, else `medium`)."""
    findings: dict[str, str] = {}
    for holder, is_service_principal in _credential_holders(tenant):
        signing = _signing_key_ids(holder) if is_service_principal else set()
        for secret in holder.get("passwordCredentials") or []:
            if str(secret["keyId"]).lower() in signing:
                continue
            start, end = parse_time(secret.get("startDateTime")), parse_time(secret.get("endDateTime"))
            # No end is unbounded; without a start the lifetime cannot be shown to be short.
            long_lived = start is None or end is None or end - start > timedelta(days=max_lifetime_days)
            findings[f"{holder['id']}:{secret['keyId']}"] = "high" if long_lived else "medium"
    return findings


def expiring_credential_subjects(tenant: TenantScenario, now: datetime, days: int = 30) -> set[str]:
    """`apps.credential-expiry`: secrets and certificates expired or expiring within `days`. A
    SAML signing certificate's key and password credentials share one keyId, so one subject."""
    horizon = now + timedelta(days=days)
    subjects: set[str] = set()
    for holder, _ in _credential_holders(tenant):
        for credential in [*(holder.get("passwordCredentials") or []), *(holder.get("keyCredentials") or [])]:
            end = parse_time(credential.get("endDateTime"))
            if end is not None and end <= horizon:
                subjects.add(f"{holder['id']}:{credential['keyId']}")
    return subjects


# -- GDAP -----------------------------------------------------------------------------------


def privileged_gdap_relationship_ids(tenant: TenantScenario) -> set[str]:
    """`gdap.privileged-roles`: active or expiring relationships granting Global Administrator or
    Privileged Role Administrator (reseller relationships included)."""
    return {
        str(r["id"])
        for r in tenant.delegated_admin_relationships
        if r.get("status") in GDAP_GRANTING_STATUSES
        and PRIVILEGED_GDAP_ROLES.intersection(
            str(role.get("roleDefinitionId", "")).lower()
            for role in (r.get("accessDetails") or {}).get("unifiedRoles") or []
        )
    }


def expiring_gdap_relationship_ids(tenant: TenantScenario, now: datetime, days: int = 30) -> set[str]:
    """`gdap.expiring`: active or expiring relationships (any roles) ending within `days` with
    auto-extend off."""
    horizon = now + timedelta(days=days)
    found: set[str] = set()
    for relationship in tenant.delegated_admin_relationships:
        end = parse_time(relationship.get("endDateTime"))
        if (
            relationship.get("status") in GDAP_GRANTING_STATUSES
            and relationship.get("autoExtendDuration") in AUTO_EXTEND_OFF
            and end is not None
            and end <= horizon
        ):
            found.add(str(relationship["id"]))
    return found


# -- Conditional Access ---------------------------------------------------------------------

MFA_ENFORCEMENT = "mfa.enforcement"
LEGACY_AUTH_BLOCKED = "legacy-auth.blocked"
_EVERY_CLIENT_APP_TYPE = frozenset({"browser", "mobileAppsAndDesktopClients", "exchangeActiveSync", "other"})
_LEGACY_CLIENT_APP_TYPES = frozenset({"exchangeActiveSync", "other"})
_LEGACY_BLOCK_TARGETS = frozenset({"exchangeActiveSync", "other", "all"})
_GUESTS_TOKEN = "GuestsOrExternalUsers"


def _set_members(value: Any) -> list[str]:
    """A flagged enum ("a,b") without its empty member "none"."""
    return [part.strip() for part in str(value or "").split(",") if part.strip() not in ("", "none")]


def _narrows(included: Any, excluded: Any, everything: str) -> bool:
    """An include/exclude pair that leaves something out: anything excluded, or an include list
    other than the one value meaning everything."""
    return bool(excluded) or (bool(included) and [str(v).lower() for v in included] != [everything.lower()])


def ca_policy_gaps(policy: JsonObject, required_client_app_types: frozenset[str]) -> set[str]:
    """The gaps (SPEC §1 vocabulary) of a policy's state and conditions, grant aside."""
    conditions = policy.get("conditions") or {}
    users = conditions.get("users") or {}
    apps = conditions.get("applications") or {}
    gaps: set[str] = set()
    if policy.get("state") == "enabledForReportingButNotEnforced":
        gaps.add("report-only")
    elif policy.get("state") != "enabled":
        gaps.add("disabled")
    if "All" not in (users.get("includeUsers") or []):
        gaps.add("not-all-users")
    excluded_users = users.get("excludeUsers") or []
    if [user for user in excluded_users if user != _GUESTS_TOKEN]:
        gaps.add("excluded-users")
    if users.get("excludeGroups"):
        gaps.add("excluded-groups")
    if users.get("excludeRoles"):
        gaps.add("excluded-roles")
    if users.get("excludeGuestsOrExternalUsers") or _GUESTS_TOKEN in excluded_users:
        gaps.add("excluded-guests")
    if (
        "All" not in (apps.get("includeApplications") or [])
        or apps.get("includeUserActions")
        or apps.get("includeAuthenticationContextClassReferences")
        or apps.get("applicationFilter")
    ):
        gaps.add("not-all-apps")
    if apps.get("excludeApplications"):
        gaps.add("excluded-apps")
    client_app_types = conditions.get("clientAppTypes") or ["all"]
    covered = _EVERY_CLIENT_APP_TYPE if "all" in client_app_types else set(client_app_types)
    if required_client_app_types - covered:
        gaps.add("client-app-subset")
    if _set_members((conditions.get("authenticationFlows") or {}).get("transferMethods")):
        gaps.add("auth-flows")
    locations = conditions.get("locations") or {}
    if _narrows(locations.get("includeLocations"), locations.get("excludeLocations"), "All"):
        gaps.add("locations")
    platforms = conditions.get("platforms") or {}
    if _narrows(platforms.get("includePlatforms"), platforms.get("excludePlatforms"), "all"):
        gaps.add("platforms")
    devices = conditions.get("devices") or {}
    device_states = conditions.get("deviceStates") or {}
    if (
        devices.get("deviceFilter")
        or _narrows(devices.get("includeDevices"), devices.get("excludeDevices"), "All")
        or _narrows(devices.get("includeDeviceStates"), devices.get("excludeDeviceStates"), "All")
        or _narrows(device_states.get("includeStates"), device_states.get("excludeStates"), "All")
    ):
        gaps.add("device-filter")
    if (
        any(conditions.get(name) for name in ("userRiskLevels", "signInRiskLevels", "servicePrincipalRiskLevels"))
        or _set_members(conditions.get("insiderRiskLevels"))
        or _set_members(conditions.get("agentIdRiskLevels"))
    ):
        gaps.add("risk")
    return gaps


def _strength_satisfies(tenant: TenantScenario, strength: JsonObject) -> str | None:
    """requirementsSatisfied of a grant's strength, from the strength policy it references when
    the grant only references it; None when neither says."""
    satisfied = strength.get("requirementsSatisfied")
    if satisfied is None:
        referenced = tenant.authentication_strength(str(strength.get("id", "")))
        satisfied = referenced.get("requirementsSatisfied") if referenced else None
    return None if satisfied is None else ("mfa" if "mfa" in _set_members(satisfied) else "none")


def mfa_grant_kind(tenant: TenantScenario, policy: JsonObject) -> str:
    """ "required" (every way through the grant has MFA), "custom" / "unknown" (some way relies on
    a custom control, or an unreadable strength, the others have MFA), "or-alternative" (some way
    has MFA and another none), "none" (no way has MFA)."""
    grant = policy.get("grantControls") or {}
    controls = [control.lower() for control in grant.get("builtInControls") or [] if control.lower() != "block"]
    if grant.get("termsOfUse"):
        controls.append("terms")
    if grant.get("customAuthenticationFactors"):
        controls.append("custom")
    if grant.get("authenticationStrength"):
        controls.append(f"strength-{_strength_satisfies(tenant, grant['authenticationStrength']) or 'unknown'}")
    ways = [[control] for control in controls] if str(grant.get("operator")).upper() == "OR" else [controls]
    kinds = set()
    for way in ways:
        if "mfa" in way or "strength-mfa" in way:
            kinds.add("required")
        elif "strength-unknown" in way:
            kinds.add("unknown")
        elif "custom" in way:
            kinds.add("custom")
        else:
            kinds.add("none")
    if kinds <= {"none"}:
        return "none"
    if "none" in kinds:
        return "or-alternative"
    return "custom" if "custom" in kinds else "unknown" if "unknown" in kinds else "required"


def _grants_access(policy: JsonObject) -> bool:
    grant = policy.get("grantControls") or {}
    built_in = [control.lower() for control in grant.get("builtInControls") or []]
    if "block" in built_in:
        return False
    return bool(
        built_in
        or grant.get("termsOfUse")
        or grant.get("customAuthenticationFactors")
        or grant.get("authenticationStrength")
    )


def expected_conditional_access_outcome(tenant: TenantScenario, check_id: str) -> tuple[str, set[str]]:
    """(status, subject ids) of `mfa.enforcement` or `legacy-auth.blocked` on a complete scan
    whose policies were read from beta."""
    if (tenant.security_defaults or {}).get("isEnabled") is True:
        return "pass", set()
    policies = tenant.conditional_access_policies if tenant.has_entra_premium else []
    if check_id == LEGACY_AUTH_BLOCKED:
        candidates = [
            policy
            for policy in policies
            if "block" in [c.lower() for c in (policy.get("grantControls") or {}).get("builtInControls") or []]
            and _LEGACY_BLOCK_TARGETS & set((policy.get("conditions") or {}).get("clientAppTypes") or ["all"])
        ]
        by_policy = {str(policy["id"]): ca_policy_gaps(policy, _LEGACY_CLIENT_APP_TYPES) for policy in candidates}
        if any(not policy_gaps for policy_gaps in by_policy.values()):
            return "pass", set()
        found = {f"{policy_id}|{gap}" for policy_id, policy_gaps in by_policy.items() for gap in policy_gaps}
        return "fail", found or {tenant.tenant_id}
    if check_id != MFA_ENFORCEMENT:
        raise ValueError(f"not a Conditional Access check: {check_id!r}")
    judged: dict[str, tuple[str, set[str]]] = {}
    for policy in policies:
        conditions = policy.get("conditions") or {}
        all_users = "All" in ((conditions.get("users") or {}).get("includeUsers") or [])
        all_apps = "All" in ((conditions.get("applications") or {}).get("includeApplications") or [])
        kind = mfa_grant_kind(tenant, policy)
        gaps = ca_policy_gaps(policy, _EVERY_CLIENT_APP_TYPE)
        if kind == "required" and not gaps:
            return "pass", set()
        if _grants_access(policy) and (all_users or all_apps):
            if kind in ("none", "or-alternative"):
                gaps.add("no-mfa-control" if kind == "none" else "or-alternative")
            judged[str(policy["id"])] = (kind, gaps)
    found = {f"{policy_id}|{gap}" for policy_id, (_, gaps) in judged.items() for gap in gaps}
    if not judged:
        found.add(tenant.tenant_id)
    unverifiable = any(kind in ("custom", "unknown") and not gaps for kind, gaps in judged.values())
    uncovered = {
        str(user["id"])
        for user in tenant.users
        if user.get("accountEnabled", True) is not False
        and tenant.per_user_mfa_states.get(str(user["id"]), "disabled").lower() != "enforced"
    }
    if not uncovered:
        return "pass", set()
    return ("not_assessed" if unverifiable else "fail"), found | uncovered


# -- mfa.phishing-resistant-admins ------------------------------------------------------------


def tenant_wide_role_holders(tenant: TenantScenario) -> set[str]:
    """Users holding an active directory role assigned at the tenant scope ("/"), directly or
    through a role-assignable group (its transitive user members)."""
    user_ids = {str(user["id"]) for user in tenant.users}
    holders: set[str] = set()
    for assignment in tenant.role_assignments:
        if assignment.get("directoryScopeId", "/") != "/":
            continue
        principal = str(assignment["principalId"])
        holders |= {principal} if principal in user_ids else transitive_user_ids(tenant, principal)
    return holders


def emergency_access_user_ids(tenant: TenantScenario, accounts: Iterable[str]) -> set[str]:
    """The tenant's users that EMERGENCY_ACCESS_ACCOUNTS names, by object id or UPN."""
    return {str(user["id"]) for account in accounts if (user := tenant.user(account)) is not None}


def expected_phishing_resistant_admin_subjects(
    tenant: TenantScenario, emergency_accounts: Iterable[str] = ()
) -> set[str]:
    """`mfa.phishing-resistant-admins` findings of a complete scan: enabled admins (a tenant-wide
    role assignment, or `isAdmin` in the report) and emergency-access accounts without a
    phishing-resistant method the methods policy enables, judged from the report row when the
    tenant has P1 and the report lists the user, else from their authentication methods."""
    enabled = enabled_method_configurations(tenant)
    users = {str(user["id"]): user for user in tenant.users if user.get("accountEnabled", True) is not False}
    rows = (
        {row["id"]: row for row in tenant.user_registration_details if row["id"] in users}
        if tenant.has_entra_premium
        else {}
    )
    judged = (tenant_wide_role_holders(tenant) | {i for i, row in rows.items() if row.get("isAdmin")}) & set(users)
    judged |= emergency_access_user_ids(tenant, emergency_accounts) & set(users)
    findings: set[str] = set()
    for user_id in judged:
        row = rows.get(user_id)
        if row is not None:
            table = _PHISHING_RESISTANT_REPORT_NAMES
            registered = [str(name).lower() for name in row.get("methodsRegistered") or []]
        else:
            table = _PHISHING_RESISTANT_METHOD_TYPES
            registered = [str(m.get("@odata.type", "")) for m in tenant.authentication_methods.get(user_id, [])]
        if not any(name in table and (not table[name] or table[name] in enabled) for name in registered):
            findings.add(user_id)
    return findings

"""Reading a Conditional Access policy, as Graph returns it, for the clauses that narrow its reach.

`mfa.enforcement` and `legacy-auth.blocked` ask the same question of a policy: does it apply to
every user, every app and every sign-in, always? Anything that lets a sign-in fall outside it -
report-only or disabled state, a user/group/role/guest/app exclusion, an app or client-app
subset, a location, platform, device-filter or risk condition - is a gap (SPEC §1 vocabulary).
The grant side is read here too (MFA, strength, custom control, block), but which grant a
check requires is each check's own business. Both checks start the same way
(`tenant_wide_outcome`: security defaults, unreadable policies, one settling policy) and report a
tenant without any candidate policy the same way (`tenant_finding`). Findings name every excluded
principal when the collector resolved them (`ExclusionDirectory`); `exclusion_targets` tells the
collector whom to resolve.

Property names are Graph's (conditionalAccessPolicy, conditionalAccessConditionSet,
conditionalAccessGrantControls): https://learn.microsoft.com/en-us/graph/api/resources/conditionalaccessconditionset
Policies are tenant-controlled JSON: every read tolerates missing, null or mistyped values, and
a value this module cannot read counts as narrowing, never as "applies to everyone".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from checks.support.graph_json import NAME_LIMIT
from partnerguard.model import CheckOutcome, Finding, Severity, Status, SubjectType, TenantSnapshot, Unavailable

JsonObject = Mapping[str, Any]

ALL = "All"
ENABLED = "enabled"
REPORT_ONLY = "enabledForReportingButNotEnforced"
DISABLED = "disabled"

# The four client-app types a policy covers when it does not list "all" (Graph's
# conditionalAccessClientApp; `easSupported` is a subset of exchangeActiveSync).
ALL_CLIENT_APP_TYPES = frozenset({"browser", "mobileAppsAndDesktopClients", "exchangeActiveSync", "other"})
# The client-app types legacy authentication uses: a block must cover both (SPEC §1).
LEGACY_CLIENT_APP_TYPES = frozenset({"exchangeActiveSync", "other"})
# Types that mark a policy as being about legacy clients (easSupported: ActiveSync on supported
# platforms only, a subset of exchangeActiveSync).
LEGACY_CLIENT_TARGETS = frozenset({"exchangeActiveSync", "easSupported", "other"})
MFA = "mfa"
BLOCK = "block"
# Legacy token Graph may still place in excludeUsers for "all guests and external users".
GUESTS_OR_EXTERNAL_USERS_TOKEN = "GuestsOrExternalUsers"  # noqa: S105 (a Graph keyword, not a secret)

# Evidence lists are capped: a tenant can exclude thousands of objects, and Table Storage caps a
# string property at 64 KiB. The full count is always reported beside the capped list.
EVIDENCE_LIST_LIMIT = 50


class Gap(StrEnum):
    """Why a policy does not cover every sign-in of every user (SPEC §1, contract)."""

    REPORT_ONLY = "report-only"
    DISABLED = "disabled"
    NOT_ALL_USERS = "not-all-users"
    NOT_ALL_APPS = "not-all-apps"
    CLIENT_APP_SUBSET = "client-app-subset"
    OR_ALTERNATIVE = "or-alternative"
    NO_MFA_CONTROL = "no-mfa-control"
    NO_BLOCK_CONTROL = "no-block-control"
    EXCLUDED_USERS = "excluded-users"
    EXCLUDED_GROUPS = "excluded-groups"
    EXCLUDED_ROLES = "excluded-roles"
    EXCLUDED_GUESTS = "excluded-guests"
    EXCLUDED_APPS = "excluded-apps"
    LOCATIONS = "locations"
    PLATFORMS = "platforms"
    DEVICE_FILTER = "device-filter"
    RISK = "risk"


@dataclass(frozen=True)
class PolicyGap:
    """One gap of one policy: what it is, why it matters in words, and the values behind it."""

    gap: Gap
    detail: str
    evidence: Mapping[str, Any] = field(default_factory=dict)


def obj(container: JsonObject | None, key: str) -> JsonObject:
    value = container.get(key) if isinstance(container, Mapping) else None
    return value if isinstance(value, Mapping) else {}


def strings(container: JsonObject | None, key: str) -> list[str]:
    value = container.get(key) if isinstance(container, Mapping) else None
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence):
        return [item for item in value if isinstance(item, str)]
    return []


def flag_values(value: object) -> list[str]:
    """The members of a Graph flagged enum ("a,b"), without the empty member "none"."""
    if not isinstance(value, str):
        return []
    return [member.strip() for member in value.split(",") if member.strip() not in ("", "none")]


def capped(values: Sequence[str]) -> list[str]:
    return list(values[:EVIDENCE_LIST_LIMIT])


def policy_id(policy: JsonObject) -> str:
    value = policy.get("id")
    return value if isinstance(value, str) and value else "unknown-policy"


def policy_name(policy: JsonObject) -> str:
    value = policy.get("displayName")
    return value if isinstance(value, str) else ""


def policy_state(policy: JsonObject) -> str:
    value = policy.get("state")
    return value if isinstance(value, str) else ""


def is_enabled(policy: JsonObject) -> bool:
    return policy_state(policy) == ENABLED


def conditions(policy: JsonObject) -> JsonObject:
    return obj(policy, "conditions")


def grant_controls(policy: JsonObject) -> JsonObject:
    return obj(policy, "grantControls")


def includes_all_users(policy: JsonObject) -> bool:
    return ALL in strings(obj(conditions(policy), "users"), "includeUsers")


def includes_all_apps(policy: JsonObject) -> bool:
    return ALL in strings(obj(conditions(policy), "applications"), "includeApplications")


def state_gaps(policy: JsonObject) -> list[PolicyGap]:
    state = policy_state(policy)
    if state == ENABLED:
        return []
    if state == REPORT_ONLY:
        return [
            PolicyGap(
                Gap.REPORT_ONLY,
                "The policy is in report-only mode: sign-ins are only logged as if it applied; "
                "nobody is actually challenged or blocked by it.",
                {"state": state},
            )
        ]
    # "disabled", and any state this version does not know, enforce nothing.
    return [
        PolicyGap(
            Gap.DISABLED,
            "The policy is switched off, so it applies to no sign-in.",
            {"state": state or None},
        )
    ]


# -- who the exclusions are ---------------------------------------------------------------------


@dataclass(frozen=True)
class ExclusionTargets:
    """The excluded principals of the policies whose exclusions findings report.

    The collector reads, for these only, each group's transitive members, each role's active
    assignments and every name involved - never the whole directory.
    """

    group_ids: frozenset[str]
    role_template_ids: frozenset[str]
    user_ids: frozenset[str]


@dataclass(frozen=True)
class ExclusionDirectory:
    """What the collector resolved about excluded principals (`TenantSnapshot` fields).

    A mapping that is None or Unavailable leaves the findings naming ids only, as Graph
    lists them, with the reason the members are missing when there is one.
    """

    group_members: Mapping[str, frozenset[str]] | Unavailable | None = None
    role_members: Mapping[str, frozenset[str]] | Unavailable | None = None
    principal_names: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_snapshot(cls, snapshot: TenantSnapshot) -> ExclusionDirectory:
        return cls(snapshot.group_members, snapshot.role_members, snapshot.principal_names)

    def name_of(self, object_id: str) -> str | None:
        name = self.principal_names.get(object_id)
        return name[:NAME_LIMIT] if isinstance(name, str) else None

    def named(self, object_ids: Iterable[str]) -> list[dict[str, str | None]]:
        """`{"id", "name"}` for each id, named ones first by name, then unnamed by id; capped."""
        ordered = sorted(
            set(object_ids),
            key=lambda object_id: (self.name_of(object_id) is None, self.name_of(object_id) or "", object_id),
        )
        return [{"id": object_id, "name": self.name_of(object_id)} for object_id in ordered[:EVIDENCE_LIST_LIMIT]]


NO_DIRECTORY = ExclusionDirectory()


def _members_of(
    resolved: Mapping[str, frozenset[str]] | Unavailable | None, ids: Sequence[str]
) -> tuple[dict[str, frozenset[str]], list[str], str | None]:
    """(members of each resolved id, ids left unresolved, why they are unresolved)."""
    if isinstance(resolved, Unavailable):
        return {}, list(ids), resolved.reason
    if resolved is None:
        return {}, list(ids), None
    members = {object_id: frozenset(resolved[object_id]) for object_id in ids if object_id in resolved}
    unresolved = [object_id for object_id in ids if object_id not in members]
    return members, unresolved, ("not resolved in this scan" if unresolved else None)


def _excluded_users_gap(user_ids: Sequence[str], directory: ExclusionDirectory) -> PolicyGap:
    unique = list(dict.fromkeys(user_ids))
    return PolicyGap(
        Gap.EXCLUDED_USERS,
        f"The policy excludes {len(unique)} user(s) by name; their sign-ins are not covered. "
        "Partner requirements allow no excluded user, break-glass and service accounts included.",
        {
            "excludedUserIds": capped(unique),
            "excludedCount": len(unique),
            "excludedUsers": directory.named(unique),
            "namedCount": sum(1 for user_id in unique if directory.name_of(user_id) is not None),
        },
    )


def _excluded_members_gap(
    gap: Gap,
    kind: str,
    ids: Sequence[str],
    resolved: Mapping[str, frozenset[str]] | Unavailable | None,
    directory: ExclusionDirectory,
) -> PolicyGap:
    """excluded-groups / excluded-roles: the groups or roles, and every principal they exclude."""
    members, unresolved, why = _members_of(resolved, ids)
    everyone = frozenset().union(*members.values()) if members else frozenset()
    id_key, list_key = (
        ("excludedGroupIds", "excludedGroups")
        if gap is Gap.EXCLUDED_GROUPS
        else ("excludedRoleTemplateIds", "excludedRoles")
    )
    evidence: dict[str, Any] = {
        id_key: capped(ids),
        "excludedCount": len(ids),
        list_key: [
            {
                "id": object_id,
                "name": directory.name_of(object_id),
                "memberCount": len(members[object_id]) if object_id in members else None,
            }
            for object_id in ids[:EVIDENCE_LIST_LIMIT]
        ],
    }
    if gap is Gap.EXCLUDED_GROUPS:
        subject = f"The policy excludes {len(ids)} group(s)"
        holders = "transitive member user(s)"
    else:
        subject = f"The policy excludes {len(ids)} directory role(s)"
        holders = "principal(s) holding those roles"
    if members:
        evidence["excludedMemberCount"] = len(everyone)
        evidence["excludedMembers"] = directory.named(everyone)
        detail = f"{subject}: {len(everyone)} {holders} sign in outside it"
        if unresolved:
            detail += f" ({len(unresolved)} {kind}(s) could not be resolved, so possibly more)"
        detail += "."
    else:
        every = "every member's" if gap is Gap.EXCLUDED_GROUPS else "every holder's"
        detail = f"{subject}; {every} sign-ins are not covered."
    if unresolved:
        evidence["unresolvedIds"] = capped(unresolved)
        if why:
            evidence["unresolvedReason"] = why
    return PolicyGap(gap, detail, evidence)


def excluded_user_ids(policy: JsonObject) -> list[str]:
    """The users a policy excludes by id (the legacy all-guests token is a guest exclusion)."""
    users = obj(conditions(policy), "users")
    return [user for user in strings(users, "excludeUsers") if user != GUESTS_OR_EXTERNAL_USERS_TOKEN]


def user_scope_gaps(policy: JsonObject, directory: ExclusionDirectory = NO_DIRECTORY) -> list[PolicyGap]:
    users = obj(conditions(policy), "users")
    gaps: list[PolicyGap] = []
    if not includes_all_users(policy):
        gaps.append(
            PolicyGap(
                Gap.NOT_ALL_USERS,
                "The policy targets selected users, groups or roles instead of All users, so "
                "anyone outside that selection is not covered.",
                {
                    "includeUsers": capped(strings(users, "includeUsers")),
                    "includeGroups": capped(strings(users, "includeGroups")),
                    "includeRoles": capped(strings(users, "includeRoles")),
                    "includesGuestsOrExternalUsers": bool(obj(users, "includeGuestsOrExternalUsers")),
                },
            )
        )
    user_ids = excluded_user_ids(policy)
    if user_ids:
        gaps.append(_excluded_users_gap(user_ids, directory))
    excluded_groups = strings(users, "excludeGroups")
    if excluded_groups:
        gaps.append(
            _excluded_members_gap(Gap.EXCLUDED_GROUPS, "group", excluded_groups, directory.group_members, directory)
        )
    excluded_roles = strings(users, "excludeRoles")
    if excluded_roles:
        gaps.append(
            _excluded_members_gap(Gap.EXCLUDED_ROLES, "role", excluded_roles, directory.role_members, directory)
        )
    excluded_guests = obj(users, "excludeGuestsOrExternalUsers")
    legacy_guest_token = GUESTS_OR_EXTERNAL_USERS_TOKEN in strings(users, "excludeUsers")
    if excluded_guests or legacy_guest_token:
        guest_types = excluded_guests.get("guestOrExternalUserTypes")
        gaps.append(
            PolicyGap(
                Gap.EXCLUDED_GUESTS,
                "The policy excludes guest or external users; their sign-ins are not covered.",
                {
                    "guestOrExternalUserTypes": guest_types
                    if isinstance(guest_types, str)
                    else GUESTS_OR_EXTERNAL_USERS_TOKEN,
                    "externalTenantsMembershipKind": obj(excluded_guests, "externalTenants").get("membershipKind"),
                },
            )
        )
    return gaps


def app_scope_gaps(policy: JsonObject) -> list[PolicyGap]:
    applications = obj(conditions(policy), "applications")
    user_actions = strings(applications, "includeUserActions")
    auth_contexts = strings(applications, "includeAuthenticationContextClassReferences")
    application_filter = obj(applications, "applicationFilter")
    gaps: list[PolicyGap] = []
    # A policy on user actions or authentication contexts replaces the app target altogether, and
    # an application filter narrows "All" to the apps whose attributes match.
    if not includes_all_apps(policy) or user_actions or auth_contexts or application_filter:
        gaps.append(
            PolicyGap(
                Gap.NOT_ALL_APPS,
                "The policy targets selected apps, user actions, authentication contexts or an app "
                "filter instead of All resources, so sign-ins to anything else are not covered.",
                {
                    "includeApplications": capped(strings(applications, "includeApplications")),
                    "includeUserActions": capped(user_actions),
                    "includeAuthenticationContextClassReferences": capped(auth_contexts),
                    "applicationFilterMode": application_filter.get("mode"),
                },
            )
        )
    excluded_apps = strings(applications, "excludeApplications")
    if excluded_apps:
        gaps.append(
            PolicyGap(
                Gap.EXCLUDED_APPS,
                f"The policy excludes {len(excluded_apps)} app(s); sign-ins to them are not covered.",
                {"excludedApplicationIds": capped(excluded_apps), "excludedCount": len(excluded_apps)},
            )
        )
    return gaps


def client_app_gaps(policy: JsonObject, required: frozenset[str]) -> list[PolicyGap]:
    """Client-app types (and authentication flows) the policy leaves out of `required`."""
    condition_set = conditions(policy)
    client_app_types = strings(condition_set, "clientAppTypes")
    # Graph reports ["all"] when the condition is not configured; an absent value means the same.
    covered = ALL_CLIENT_APP_TYPES if not client_app_types or "all" in client_app_types else frozenset(client_app_types)
    missing = sorted(required - covered)
    # authenticationFlows restricts a policy to device-code or authentication-transfer sign-ins:
    # another way of applying to a subset of how users sign in.
    # transferMethods is a flagged enum: "deviceCodeFlow,authenticationTransfer", or "none".
    flows = flag_values(obj(condition_set, "authenticationFlows").get("transferMethods"))
    if not missing and not flows:
        return []
    return [
        PolicyGap(
            Gap.CLIENT_APP_SUBSET,
            "The policy applies only to some client apps or sign-in flows, so sign-ins from the "
            "others are not covered.",
            {
                "clientAppTypes": client_app_types,
                "missingClientAppTypes": missing,
                "authenticationFlows": flows,
            },
        )
    ]


def condition_gaps(policy: JsonObject) -> list[PolicyGap]:
    condition_set = conditions(policy)
    gaps: list[PolicyGap] = []
    locations = obj(condition_set, "locations")
    include_locations = strings(locations, "includeLocations")
    exclude_locations = strings(locations, "excludeLocations")
    if exclude_locations or (include_locations and include_locations != [ALL]):
        gaps.append(
            PolicyGap(
                Gap.LOCATIONS,
                "The policy has a location condition (for example trusted locations excluded), so "
                "sign-ins from the other locations skip it.",
                {
                    "includeLocations": capped(include_locations),
                    "excludeLocations": capped(exclude_locations),
                },
            )
        )
    platforms = obj(condition_set, "platforms")
    include_platforms = strings(platforms, "includePlatforms")
    exclude_platforms = strings(platforms, "excludePlatforms")
    if exclude_platforms or (include_platforms and [p.lower() for p in include_platforms] != ["all"]):
        gaps.append(
            PolicyGap(
                Gap.PLATFORMS,
                "The policy applies only to some device platforms, so sign-ins from the others skip it.",
                {"includePlatforms": include_platforms, "excludePlatforms": exclude_platforms},
            )
        )
    devices = obj(condition_set, "devices")
    device_filter = obj(devices, "deviceFilter")
    # excludeDevices ("Compliant", "DomainJoined") is the deprecated device-state condition that
    # device filters replaced; it narrows a policy the same way.
    legacy_device_exclusions = strings(devices, "excludeDevices")
    if device_filter or legacy_device_exclusions:
        gaps.append(
            PolicyGap(
                Gap.DEVICE_FILTER,
                "The policy has a device filter, so sign-ins from devices the filter leaves out skip it.",
                {
                    "deviceFilterMode": device_filter.get("mode"),
                    "excludeDevices": capped(legacy_device_exclusions),
                },
            )
        )
    risk = {
        name: strings(condition_set, name)
        for name in ("userRiskLevels", "signInRiskLevels", "servicePrincipalRiskLevels")
        if strings(condition_set, name)
    }
    for flag_name in ("insiderRiskLevels", "agentIdRiskLevels"):
        # Flagged enums: a comma-separated string such as "moderate,elevated", or null.
        levels = flag_values(condition_set.get(flag_name))
        if levels:
            risk[flag_name] = levels
    if risk:
        gaps.append(
            PolicyGap(
                Gap.RISK,
                "The policy applies only when Microsoft rates a sign-in or user at certain risk "
                "levels, so ordinary sign-ins skip it.",
                risk,
            )
        )
    return gaps


def scope_gaps(
    policy: JsonObject, required_client_app_types: frozenset[str], directory: ExclusionDirectory = NO_DIRECTORY
) -> list[PolicyGap]:
    """Every reason, besides its grant, that `policy` does not apply to every sign-in of everyone.

    `directory` only adds names and members to the exclusion gaps; which gaps there are never
    depends on it.
    """
    return [
        *state_gaps(policy),
        *user_scope_gaps(policy, directory),
        *app_scope_gaps(policy),
        *client_app_gaps(policy, required_client_app_types),
        *condition_gaps(policy),
    ]


# -- the grant ----------------------------------------------------------------------------------


def built_in_controls(policy: JsonObject) -> list[str]:
    return strings(grant_controls(policy), "builtInControls")


def requires_mfa_strength(policy: JsonObject) -> bool:
    """An authentication strength that grants an MFA claim.

    Graph marks strengths that don't (a custom strength of single-factor methods) with
    requirementsSatisfied "none"; one without the property is taken as MFA, as all built-in
    strengths are.
    """
    strength = obj(grant_controls(policy), "authenticationStrength")
    if not strength:
        return False
    satisfied = strength.get("requirementsSatisfied")
    return not (isinstance(satisfied, str) and satisfied.lower() == "none")


def requires_mfa(policy: JsonObject) -> bool:
    return MFA in built_in_controls(policy) or requires_mfa_strength(policy)


def uses_custom_control(policy: JsonObject) -> bool:
    return bool(strings(grant_controls(policy), "customAuthenticationFactors"))


def blocks(policy: JsonObject) -> bool:
    # Graph accepts "block" only on its own, so its presence means the grant is a block.
    return BLOCK in built_in_controls(policy)


def is_mfa_candidate(policy: JsonObject) -> bool:
    """A policy meant to require MFA broadly: the one whose gaps explain missing MFA coverage."""
    return (requires_mfa(policy) or uses_custom_control(policy)) and (
        includes_all_users(policy) or includes_all_apps(policy)
    )


def is_legacy_block_candidate(policy: JsonObject) -> bool:
    """A policy meant to block legacy authentication: one that names a legacy client-app type
    explicitly (not just "all").

    Whatever its grant: one that does not block (requiring MFA, say) is reported as
    `no-block-control`, since SPEC §1 counts only a block as a block.
    """
    return bool(LEGACY_CLIENT_TARGETS & set(strings(conditions(policy), "clientAppTypes")))


def exclusion_targets(policies: Iterable[JsonObject]) -> ExclusionTargets:
    """Whom the candidate policies (of mfa.enforcement and legacy-auth.blocked) exclude.

    Only candidates' exclusions become findings, so only theirs are worth resolving.
    """
    groups: set[str] = set()
    roles: set[str] = set()
    users: set[str] = set()
    for policy in policies:
        if not (is_mfa_candidate(policy) or is_legacy_block_candidate(policy)):
            continue
        user_conditions = obj(conditions(policy), "users")
        groups.update(strings(user_conditions, "excludeGroups"))
        roles.update(strings(user_conditions, "excludeRoles"))
        users.update(excluded_user_ids(policy))
    return ExclusionTargets(frozenset(groups), frozenset(roles), frozenset(users))


# -- the tenant-wide answer both checks start with ----------------------------------------------


def tenant_wide_outcome(
    snapshot: TenantSnapshot,
    *,
    security_defaults_note: str,
    settles: Callable[[JsonObject], bool],
    settling_evidence_key: str,
) -> CheckOutcome | Sequence[JsonObject]:
    """The outcome when security defaults or one policy settle the check for everyone (`settles`
    says which policies do), or when the data to tell is missing; otherwise the readable policies,
    none without Entra ID P1, from which the check explains why nothing settles it.

    - security defaults on: pass, whatever the policies (they need no licence);
    - policies unreadable for a permission, the cloud or an error: a settling policy may well
      exist, so nothing can be said;
    - without P1 (a licence code) there is no Conditional Access: no policy can settle it;
    - a settling policy: pass, naming it;
    - no settling policy and security defaults unreadable: the answer hinges on them.
    """
    security_defaults = snapshot.security_defaults_enabled
    policies = snapshot.conditional_access_policies
    if security_defaults is True:
        return CheckOutcome(Status.PASS, note=security_defaults_note)
    if isinstance(policies, Unavailable) and not policies.reason_code.startswith("licence:"):
        return CheckOutcome.unavailable(policies)
    readable: Sequence[JsonObject] = () if isinstance(policies, Unavailable) else policies
    settling = sorted(policy_id(policy) for policy in readable if settles(policy))
    if settling:
        return CheckOutcome(Status.PASS, evidence={settling_evidence_key: settling})
    if isinstance(security_defaults, Unavailable):
        return CheckOutcome.unavailable(security_defaults)
    return readable


def tenant_finding(snapshot: TenantSnapshot, severity: Severity, *, no_candidate: str, consequence: str) -> Finding:
    """The finding on the tenant itself when no policy is even a candidate: security defaults are
    off and `no_candidate` (or Conditional Access cannot be used at all), so `consequence`."""
    policies = snapshot.conditional_access_policies
    evidence: dict[str, Any]
    if isinstance(policies, Unavailable):
        detail = (
            f"Security defaults are off and Conditional Access cannot be used ({policies.reason}), so {consequence}."
        )
        evidence = {"conditionalAccess": policies.reason_code}
    else:
        detail = f"Security defaults are off and {no_candidate}, so {consequence}."
        evidence = {"conditionalAccessPolicyCount": len(policies)}
    return Finding(
        subject_id=snapshot.tenant_id,
        subject_type=SubjectType.TENANT,
        subject_name=snapshot.tenant_name[:NAME_LIMIT],
        detail=detail,
        severity=severity,
        evidence={"securityDefaultsEnabled": False, **evidence},
    )


# -- findings -----------------------------------------------------------------------------------


def policy_finding(policy: JsonObject, policy_gap: PolicyGap, severity: Severity) -> Finding:
    """The finding `<policyId>|<gap>` (SPEC §1) for one gap of one policy."""
    pid = policy_id(policy)
    return Finding(
        subject_id=f"{pid}|{policy_gap.gap.value}",
        subject_type=SubjectType.POLICY,
        subject_name=policy_name(policy)[:NAME_LIMIT],
        detail=policy_gap.detail,
        severity=severity,
        evidence={
            "policyId": pid,
            "state": policy_state(policy),
            "gap": policy_gap.gap.value,
            **policy_gap.evidence,
        },
    )

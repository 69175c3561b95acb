"""Reading a Conditional Access policy, as Graph returns it, for the clauses that narrow its reach.

`mfa.enforcement` and `legacy-auth.blocked` ask the same question of a policy: does it apply to
every user, every app and every sign-in, always? Anything that lets a sign-in fall outside it -
report-only or disabled state, a user/group/role/guest/app exclusion, an app or client-app
subset, an authentication-flows, location, platform, device or risk condition - is a gap (SPEC
§1 vocabulary). The grant side is read here too (MFA, strength, custom control, block, and how
far a grant demands MFA: `mfa_grant`), but which grant a check requires is each check's own
business. Both checks start the same way
(`tenant_wide_outcome`: security defaults, unreadable policies, one settling policy) and report a
tenant without any candidate policy the same way (`tenant_finding`). Findings name every excluded
principal when the collector resolved them (`ExclusionDirectory`); `exclusion_targets` tells the
collector whom to resolve.

Property names are Graph's beta shapes (conditionalAccessPolicy, conditionalAccessConditionSet,
conditionalAccessDevices, conditionalAccessDeviceStates, conditionalAccessGrantControls), which
are v1.0's plus the device conditions `includeDevices`, `excludeDevices` and `deviceStates`:
https://learn.microsoft.com/graph/api/resources/conditionalaccessconditionset?view=graph-rest-beta
The collector reads beta and falls back to v1.0 (SPEC §1, "Edge cases, decided"); the checks say
in their evidence which one was read (`with_api_version`), since v1.0 cannot show those
device conditions.

Candidates (SPEC §1, "Edge cases, decided"): an MFA candidate is any policy, in any state, that
includes All users or All resources and has a grant control; a legacy-block candidate is any
policy whose grant is block and whose client app types include exchangeActiveSync, other or all.
Only they become findings, so a policy nobody meant as a baseline (a pilot for one group) stays
quiet.
Policies are tenant-controlled JSON: every read tolerates missing, null or mistyped values, and
a value this module cannot read counts as narrowing, never as "applies to everyone".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
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
# A block whose client app types include one of these is a legacy-block candidate (SPEC §1):
# "all" covers the legacy types too. easSupported (ActiveSync on supported platforms only) is not
# listed: the SPEC names exchangeActiveSync, other and all.
LEGACY_BLOCK_TARGETS = frozenset({"exchangeActiveSync", "other", "all"})
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
    AUTH_FLOWS = "auth-flows"


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
    """Client-app types the policy leaves out of `required`."""
    client_app_types = strings(conditions(policy), "clientAppTypes")
    missing = sorted(required - covered_client_app_types(policy))
    if not missing:
        return []
    return [
        PolicyGap(
            Gap.CLIENT_APP_SUBSET,
            "The policy applies only to some client apps, so sign-ins from the others are not covered.",
            {"clientAppTypes": client_app_types, "missingClientAppTypes": missing},
        )
    ]


def covered_client_app_types(policy: JsonObject) -> frozenset[str]:
    client_app_types = strings(conditions(policy), "clientAppTypes")
    # Graph reports ["all"] when the condition is not configured; an absent value means the same.
    if not client_app_types or "all" in client_app_types:
        return ALL_CLIENT_APP_TYPES
    return frozenset(client_app_types)


def auth_flow_gaps(policy: JsonObject) -> list[PolicyGap]:
    """authenticationFlows restricts a policy to device-code or authentication-transfer sign-ins
    (beta and v1.0 conditionalAccessAuthenticationFlows): every other sign-in skips it. A gap of
    its own (SPEC §1), not a client-app subset: the fix is a different clause."""
    # transferMethods is a flagged enum: "deviceCodeFlow,authenticationTransfer", or "none".
    flows = flag_values(obj(conditions(policy), "authenticationFlows").get("transferMethods"))
    if not flows:
        return []
    return [
        PolicyGap(
            Gap.AUTH_FLOWS,
            "The policy applies only to sign-ins through some authentication flows (device code, "
            "authentication transfer), so every other sign-in skips it.",
            {"authenticationFlows": flows},
        )
    ]


def _device_conditions(condition_set: JsonObject) -> dict[str, Any]:
    """Every device condition that is set, by Graph's property name (empty: none).

    beta conditionalAccessDevices: `includeDevices` ("All" is the only allowed value),
    `excludeDevices` ("Compliant", "DomainJoined"), `deviceFilter`, and the deprecated
    `includeDeviceStates` / `excludeDeviceStates`; beta conditionalAccessDeviceStates (the
    deprecated `deviceStates` condition): `includeStates` ("All"), `excludeStates`. SPEC §1: any
    device condition other than none narrows the policy; "All" included with nothing excluded is
    none. v1.0 shows `deviceFilter` only.
    """
    found: dict[str, Any] = {}
    for name in ("devices", "deviceStates"):
        container = condition_set.get(name)
        if container is not None and not isinstance(container, Mapping):
            found[name] = "unreadable"  # a value this module cannot read narrows (module docstring)
    device_filter = obj(condition_set, "devices").get("deviceFilter")
    if device_filter is not None:
        filter_object = device_filter if isinstance(device_filter, Mapping) else {}
        found["deviceFilter"] = {"mode": filter_object.get("mode"), "rule": filter_object.get("rule")}
    # (container, include key, exclude key, evidence prefix)
    for container_name, include_key, exclude_key, prefix in (
        ("devices", "includeDevices", "excludeDevices", ""),
        ("devices", "includeDeviceStates", "excludeDeviceStates", ""),
        ("deviceStates", "includeStates", "excludeStates", "deviceStates."),
    ):
        container = obj(condition_set, container_name)
        included = container.get(include_key)
        if included not in (None, []) and [str(value).lower() for value in _as_list(included)] != ["all"]:
            found[prefix + include_key] = _as_list(included)[:EVIDENCE_LIST_LIMIT]
        excluded = container.get(exclude_key)
        if excluded not in (None, []):
            found[prefix + exclude_key] = _as_list(excluded)[:EVIDENCE_LIST_LIMIT]
    return found


def _as_list(value: object) -> list[Any]:
    """A Graph collection as a list (a lone value, mistyped, as a list of one)."""
    return list(value) if isinstance(value, list | tuple) else [value]


def device_gaps(policy: JsonObject) -> list[PolicyGap]:
    found = _device_conditions(conditions(policy))
    if not found:
        return []
    return [
        PolicyGap(
            Gap.DEVICE_FILTER,
            "The policy has a device condition (a device filter, or included or excluded device "
            "states such as compliant or domain-joined devices), so sign-ins from the devices it "
            "leaves out skip it.",
            found,
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
        *auth_flow_gaps(policy),
        *condition_gaps(policy),
        *device_gaps(policy),
    ]


# -- the grant ----------------------------------------------------------------------------------


def built_in_controls(policy: JsonObject) -> list[str]:
    return strings(grant_controls(policy), "builtInControls")


def authentication_strength(policy: JsonObject) -> JsonObject:
    return obj(grant_controls(policy), "authenticationStrength")


def strength_requirement(policy: JsonObject) -> str | None:
    """`mfa` or `none` for a policy's authentication strength (its `requirementsSatisfied`), None
    when it has no strength or the requirement is unknown.

    SPEC §1: a strength counts as MFA when its requirementsSatisfied is `mfa`. Graph may return
    the grant's strength as a reference only; the collector then reads the strength policy and
    fills the property in (`partnerguard.collect`). A strength still without it - its policy could
    not be read - is unknown: never taken as MFA, never reported as no MFA either.
    """
    strength = authentication_strength(policy)
    if not strength:
        return None
    satisfied = strength.get("requirementsSatisfied")
    if not isinstance(satisfied, str):
        return None
    # authenticationStrengthRequirements is a flagged enum: none, mfa, unknownFutureValue.
    return MFA if MFA in (member.lower() for member in flag_values(satisfied)) else "none"


def custom_controls(policy: JsonObject) -> list[str]:
    return strings(grant_controls(policy), "customAuthenticationFactors")


def blocks(policy: JsonObject) -> bool:
    # Graph accepts "block" only on its own, so its presence means the grant is a block. Older
    # pages spell the built-in controls capitalised ("Block", "Mfa"): compared case-insensitively.
    return any(control.lower() == BLOCK for control in built_in_controls(policy))


def has_grant_control(policy: JsonObject) -> bool:
    """Whether the policy grants access through some control: a built-in control, terms of use, a
    custom control or an authentication strength. "Block access" is not one: it grants nothing,
    so a block is never an MFA candidate (its own check is legacy-auth.blocked)."""
    grant = grant_controls(policy)
    return not blocks(policy) and bool(
        built_in_controls(policy)
        or strings(grant, "termsOfUse")
        or custom_controls(policy)
        or authentication_strength(policy)
    )


class MfaGrant(StrEnum):
    """What a policy's grant demands of a sign-in, as far as MFA goes."""

    # Every way through the grant includes MFA Microsoft verifies (mfa, or a strength requiring it).
    REQUIRED = "required"
    # Some way through relies on a custom control (third-party MFA): Graph cannot tell whether it
    # is MFA (SPEC §1: "verify the amr claim"). Every other way includes MFA.
    CUSTOM_CONTROL = "custom-control"
    # Some way through relies on a strength whose requirement could not be read.
    UNKNOWN_STRENGTH = "unknown-strength"
    # Some way through has no MFA at all, beside ways that do: gap `or-alternative`.
    OR_ALTERNATIVE = "or-alternative"
    # No way through involves MFA: gap `no-mfa-control`.
    NONE = "none"


def _grant_ways(policy: JsonObject) -> list[list[str]]:
    """The sets of controls any one of which lets a sign-in through, as tokens: built-in controls,
    "termsOfUse", "custom", "strength:mfa" / "strength:none" / "strength:unknown".

    Under OR each control is a way on its own; under AND (or a single control, whatever the
    operator) all the controls together are the one way.
    """
    grant = grant_controls(policy)
    controls: list[str] = [control.lower() for control in built_in_controls(policy) if control.lower() != BLOCK]
    if strings(grant, "termsOfUse"):
        controls.append("termsOfUse")
    if custom_controls(policy):
        controls.append("custom")
    if authentication_strength(policy):
        controls.append(f"strength:{strength_requirement(policy) or 'unknown'}")
    operator = grant.get("operator")
    if isinstance(operator, str) and operator.upper() == "OR":
        return [[control] for control in controls]
    return [controls] if controls else []


def _way_kind(way: Sequence[str]) -> MfaGrant:
    if MFA in way or "strength:mfa" in way:
        return MfaGrant.REQUIRED
    if "strength:unknown" in way:
        return MfaGrant.UNKNOWN_STRENGTH
    if "custom" in way:
        return MfaGrant.CUSTOM_CONTROL
    return MfaGrant.NONE


def mfa_grant(policy: JsonObject) -> MfaGrant:
    """How far the grant demands MFA (SPEC §1): `mfa` or a strength requiring it, with no
    OR-alternative (an AND with another control is fine). `mfa` OR a custom control is treated like
    the custom control alone: the custom control is a way through whose MFA Graph cannot show."""
    kinds = {_way_kind(way) for way in _grant_ways(policy)}
    if not kinds or kinds == {MfaGrant.NONE}:
        return MfaGrant.NONE
    if MfaGrant.NONE in kinds:
        return MfaGrant.OR_ALTERNATIVE
    if MfaGrant.CUSTOM_CONTROL in kinds:
        return MfaGrant.CUSTOM_CONTROL
    if MfaGrant.UNKNOWN_STRENGTH in kinds:
        return MfaGrant.UNKNOWN_STRENGTH
    return MfaGrant.REQUIRED


def requires_mfa(policy: JsonObject) -> bool:
    """Every sign-in the policy lets through has done MFA Microsoft verifies."""
    return mfa_grant(policy) is MfaGrant.REQUIRED


def is_mfa_candidate(policy: JsonObject) -> bool:
    """SPEC §1: any policy (enabled, report-only or off) that includes All users or All resources
    and has a grant control. Its gaps, `no-mfa-control` included, explain missing coverage."""
    return has_grant_control(policy) and (includes_all_users(policy) or includes_all_apps(policy))


def is_legacy_block_candidate(policy: JsonObject) -> bool:
    """SPEC §1: any policy whose grant is block and whose client app types include
    exchangeActiveSync, other or all (not configured reads as all, as Graph reports it)."""
    client_app_types = strings(conditions(policy), "clientAppTypes") or ["all"]
    return blocks(policy) and bool(LEGACY_BLOCK_TARGETS & set(client_app_types))


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


def with_api_version(outcome: CheckOutcome, snapshot: TenantSnapshot) -> CheckOutcome:
    """The outcome with `conditionalAccessApiVersion` ("beta" or "v1.0") in its evidence whenever
    the policies were read: a verdict from v1.0 could not see beta's device conditions."""
    version = snapshot.conditional_access_api_version
    if version is None:
        return outcome
    return replace(outcome, evidence={**outcome.evidence, "conditionalAccessApiVersion": version})


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

"""Reading a Conditional Access policy, as Graph returns it, for the clauses that narrow its reach.

`mfa.enforcement` and `legacy-auth.blocked` ask the same question of a policy: does it apply to
every user, every app and every sign-in, always? Anything that lets a sign-in fall outside it -
report-only or disabled state, a user/group/role/guest/app exclusion, an app or client-app
subset, a location, platform, device-filter or risk condition - is a gap (SPEC §1 vocabulary).
The grant side (MFA, block) is each check's own business.

Property names are Graph's (conditionalAccessPolicy, conditionalAccessConditionSet,
conditionalAccessGrantControls): https://learn.microsoft.com/en-us/graph/api/resources/conditionalaccessconditionset
Policies are tenant-controlled JSON: every read tolerates missing, null or mistyped values, and
a value this module cannot read counts as narrowing, never as "applies to everyone".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

JsonObject = Mapping[str, Any]

ALL = "All"
ENABLED = "enabled"
REPORT_ONLY = "enabledForReportingButNotEnforced"
DISABLED = "disabled"

# The four client-app types a policy covers when it does not list "all" (Graph's
# conditionalAccessClientApp; `easSupported` is a subset of exchangeActiveSync).
ALL_CLIENT_APP_TYPES = frozenset({"browser", "mobileAppsAndDesktopClients", "exchangeActiveSync", "other"})
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


def user_scope_gaps(policy: JsonObject) -> list[PolicyGap]:
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
    excluded_users = strings(users, "excludeUsers")
    excluded_user_ids = [user for user in excluded_users if user != GUESTS_OR_EXTERNAL_USERS_TOKEN]
    if excluded_user_ids:
        gaps.append(
            PolicyGap(
                Gap.EXCLUDED_USERS,
                f"The policy excludes {len(excluded_user_ids)} user(s) by name; their sign-ins are "
                "not covered. Partner requirements allow no excluded user, break-glass and service "
                "accounts included.",
                {"excludedUserIds": capped(excluded_user_ids), "excludedCount": len(excluded_user_ids)},
            )
        )
    excluded_groups = strings(users, "excludeGroups")
    if excluded_groups:
        gaps.append(
            PolicyGap(
                Gap.EXCLUDED_GROUPS,
                f"The policy excludes {len(excluded_groups)} group(s); every member's sign-ins are "
                "not covered.",
                {"excludedGroupIds": capped(excluded_groups), "excludedCount": len(excluded_groups)},
            )
        )
    excluded_roles = strings(users, "excludeRoles")
    if excluded_roles:
        gaps.append(
            PolicyGap(
                Gap.EXCLUDED_ROLES,
                f"The policy excludes {len(excluded_roles)} directory role(s); every holder of those "
                "roles signs in outside it.",
                {"excludedRoleTemplateIds": capped(excluded_roles), "excludedCount": len(excluded_roles)},
            )
        )
    excluded_guests = obj(users, "excludeGuestsOrExternalUsers")
    legacy_guest_token = GUESTS_OR_EXTERNAL_USERS_TOKEN in excluded_users
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
                    "externalTenantsMembershipKind": obj(excluded_guests, "externalTenants").get(
                        "membershipKind"
                    ),
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
    covered = (
        ALL_CLIENT_APP_TYPES
        if not client_app_types or "all" in client_app_types
        else frozenset(client_app_types)
    )
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
                "The policy applies only to some device platforms, so sign-ins from the others "
                "skip it.",
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
                "The policy has a device filter, so sign-ins from devices the filter leaves out "
                "skip it.",
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


def scope_gaps(policy: JsonObject, required_client_app_types: frozenset[str]) -> list[PolicyGap]:
    """Every reason, besides its grant, that `policy` does not apply to every sign-in of everyone."""
    return [
        *state_gaps(policy),
        *user_scope_gaps(policy),
        *app_scope_gaps(policy),
        *client_app_gaps(policy, required_client_app_types),
        *condition_gaps(policy),
    ]

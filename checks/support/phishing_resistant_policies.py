"""Which Conditional Access policies demand a phishing-resistant authentication strength of a user.

Evidence for mfa.phishing-resistant-admins, never its verdict (SPEC §1: registration decides):
an admin without a phishing-resistant method under such a policy is locked out or about to be,
one without it is not asked at all; the finding says which.

A policy demands it when it is enabled and its grant's `authenticationStrength` is Microsoft's
built-in "Phishing-resistant MFA" strength (id 00000000-0000-0000-0000-000000000004) or a custom
strength whose `allowedCombinations` are all phishing-resistant: `windowsHelloForBusiness`,
`fido2`, `x509CertificateMultiFactor`
(https://learn.microsoft.com/entra/identity/authentication/concept-authentication-strengths;
combination values: https://learn.microsoft.com/graph/api/resources/authenticationstrengthpolicy).
It applies to a user whose roles its `users.includeRoles` names, or whom `includeUsers` names
(or "All"), unless the policy may leave the user out. The evidence can understate, never
overstate, so whatever may take the user out counts as doing so:

- `excludeUsers`, `excludeRoles`;
- `excludeGroups`: a group the user is a transitive member of (`TenantSnapshot.group_members`,
  which the collector resolves for excluded groups), or one whose members were not resolved;
- `excludeGuestsOrExternalUsers` (or the legacy `GuestsOrExternalUsers` token in `excludeUsers`)
  for a guest or an external account (`#EXT#` in the UPN: a B2B user, whatever its userType);
- a grant that offers the strength OR another control: a sign-in may satisfy the other one
  (https://learn.microsoft.com/graph/api/resources/conditionalaccessgrantcontrols, `operator`).

Group targeting (`includeGroups`) is not resolved, so a policy that reaches an admin only through
a group is not shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from checks.support.conditional_access import (
    ALL,
    ENABLED,
    GUESTS_OR_EXTERNAL_USERS_TOKEN,
    built_in_controls,
    custom_controls,
    grant_controls,
    strings,
)
from partnerguard.model import Unavailable, User

JsonObject = Mapping[str, Any]

BUILT_IN_PHISHING_RESISTANT_STRENGTH = "00000000-0000-0000-0000-000000000004"
PHISHING_RESISTANT_COMBINATIONS = frozenset({"windowshelloforbusiness", "fido2", "x509certificatemultifactor"})


def demands_phishing_resistance(strength: Any) -> bool:
    if not isinstance(strength, Mapping):
        return False
    if str(strength.get("id", "")).lower() == BUILT_IN_PHISHING_RESISTANT_STRENGTH:
        return True
    combinations = strength.get("allowedCombinations")
    if not isinstance(combinations, list) or not combinations:
        return False
    return all(isinstance(c, str) and c.lower() in PHISHING_RESISTANT_COMBINATIONS for c in combinations)


def _ids(users: Mapping[str, Any], key: str) -> set[str]:
    value = users.get(key)
    return {str(item).lower() for item in value} if isinstance(value, list) else set()


def _only_way_through(policy: JsonObject) -> bool:
    """The grant's strength is demanded of every sign-in: under AND always, under OR only when it
    is the one control (any other control would be a way through without it)."""
    grant = grant_controls(policy)
    operator = grant.get("operator")
    if not (isinstance(operator, str) and operator.upper() == "OR"):
        return True
    others = [*built_in_controls(policy), *strings(grant, "termsOfUse"), *custom_controls(policy)]
    return not others


def _may_exclude_as_guest(users: JsonObject, user: User) -> bool:
    excludes_guests = isinstance(users.get("excludeGuestsOrExternalUsers"), Mapping) or (
        GUESTS_OR_EXTERNAL_USERS_TOKEN.lower() in _ids(users, "excludeUsers")
    )
    return excludes_guests and (user.is_guest or "#ext#" in user.user_principal_name.lower())


def _may_exclude_by_group(
    users: JsonObject, user_id: str, group_members: Mapping[str, frozenset[str]] | Unavailable | None
) -> bool:
    """In an excluded group, or possibly: members unknown count as including the user."""
    groups = strings(users, "excludeGroups")
    if not groups:
        return False
    if not isinstance(group_members, Mapping):
        return True
    return any(group not in group_members or user_id in group_members[group] for group in groups)


def policies_demanding(
    policies: Sequence[JsonObject],
    user: User,
    role_ids: frozenset[str],
    group_members: Mapping[str, frozenset[str]] | Unavailable | None,
) -> list[str]:
    """Display names (else ids) of the enabled policies demanding a phishing-resistant strength
    of this user, sorted; `group_members` resolves excluded groups (the snapshot's)."""
    user_id = user.id.lower()
    roles = {role.lower() for role in role_ids}
    found: set[str] = set()
    for policy in policies:
        if not isinstance(policy, Mapping) or policy.get("state") != ENABLED:
            continue
        grant = policy.get("grantControls")
        if not isinstance(grant, Mapping) or not demands_phishing_resistance(grant.get("authenticationStrength")):
            continue
        if not _only_way_through(policy):
            continue
        conditions = policy.get("conditions")
        users = conditions.get("users") if isinstance(conditions, Mapping) else None
        if not isinstance(users, Mapping):
            continue
        included = _ids(users, "includeUsers")
        reaches = ALL.lower() in included or user_id in included or bool(roles & _ids(users, "includeRoles"))
        excluded = (
            user_id in _ids(users, "excludeUsers")
            or bool(roles & _ids(users, "excludeRoles"))
            or _may_exclude_by_group(users, user.id, group_members)
            or _may_exclude_as_guest(users, user)
        )
        if reaches and not excluded:
            found.add(str(policy.get("displayName") or policy.get("id") or "unnamed policy"))
    return sorted(found)

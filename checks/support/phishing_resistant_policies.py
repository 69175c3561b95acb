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
(or "All"), unless `excludeUsers` or `excludeRoles` takes the user out. Group targeting is not
resolved (the collector reads group members only for exclusions), so a policy that reaches an
admin only through a group is not shown: the evidence can understate, never overstate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from checks.support.conditional_access import ALL, ENABLED

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


def policies_demanding(policies: Sequence[JsonObject], user_id: str, role_ids: frozenset[str]) -> list[str]:
    """Display names (else ids) of the enabled policies demanding a phishing-resistant strength
    of this user, sorted."""
    user = user_id.lower()
    roles = {role.lower() for role in role_ids}
    found: set[str] = set()
    for policy in policies:
        if not isinstance(policy, Mapping) or policy.get("state") != ENABLED:
            continue
        grant = policy.get("grantControls")
        if not isinstance(grant, Mapping) or not demands_phishing_resistance(grant.get("authenticationStrength")):
            continue
        conditions = policy.get("conditions")
        users = conditions.get("users") if isinstance(conditions, Mapping) else None
        if not isinstance(users, Mapping):
            continue
        included = _ids(users, "includeUsers")
        reaches = ALL.lower() in included or user in included or bool(roles & _ids(users, "includeRoles"))
        excluded = user in _ids(users, "excludeUsers") or bool(roles & _ids(users, "excludeRoles"))
        if reaches and not excluded:
            found.add(str(policy.get("displayName") or policy.get("id") or "unnamed policy"))
    return sorted(found)

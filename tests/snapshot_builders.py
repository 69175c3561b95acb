"""Small builders for check tests: snapshots, users, report rows and Conditional Access policies.

Policies are built as Graph returns them (GET /identity/conditionalAccess/policies, v1.0 shape):
every condition present, unset ones null or empty, so tests exercise the same JSON the
collector hands to the checks. Ids are stable GUIDs derived from readable names.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from checks.base import CheckContext, Unavailable
from partnerguard.snapshot import RegistrationDetail, TenantSnapshot, User

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
TENANT_ID = "11111111-2222-3333-4444-555555555555"
_NAMESPACE = uuid.UUID("6c1d3f0e-8f4a-4d7e-9a55-0c2f5e1b7a10")

LICENCE_MISSING = Unavailable(
    "Microsoft Entra ID P1 is required (Authentication_RequestFromNonPremiumTenantOrB2CTenant).",
    "licence:AAD_PREMIUM",
)
PERMISSION_MISSING = Unavailable(
    "The app lacks the Graph permission (Authorization_RequestDenied).", "permission:Policy.Read.All"
)


def guid(name: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, name))


def user(
    name: str,
    *,
    enabled: bool = True,
    guest: bool = False,
    display_name: str | None = None,
) -> User:
    return User.from_graph(
        {
            "id": guid(name),
            "displayName": display_name if display_name is not None else name.title(),
            "userPrincipalName": f"{name}@contoso.example"
            if not guest
            else f"{name}_fabrikam.example#EXT#@contoso.example",
            "accountEnabled": enabled,
            "userType": "Guest" if guest else "Member",
        }
    )


def registration(
    for_user: User,
    *,
    capable: bool,
    registered: bool | None = None,
    admin: bool = False,
    methods: Sequence[str] | None = None,
) -> RegistrationDetail:
    return RegistrationDetail.from_graph(
        {
            "id": for_user.id,
            "userPrincipalName": for_user.user_principal_name,
            "userDisplayName": for_user.display_name,
            "userType": "guest" if for_user.is_guest else "member",
            "isAdmin": admin,
            "isMfaCapable": capable,
            "isMfaRegistered": capable if registered is None else registered,
            "methodsRegistered": list(
                methods if methods is not None else (["microsoftAuthenticatorPush"] if capable else [])
            ),
        }
    )


def _merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def ca_policy(name: str, **overrides: Any) -> dict[str, Any]:
    """An enabled "require MFA for All users, All resources, every client app" policy.

    Keyword overrides merge into Graph's JSON recursively, e.g.
    `ca_policy("p", state="disabled", conditions={"users": {"excludeUsers": [...]}})`.
    """
    policy: dict[str, Any] = {
        "id": guid(name),
        "templateId": None,
        "displayName": name,
        "createdDateTime": "2024-01-10T09:00:00Z",
        "modifiedDateTime": "2025-03-02T14:30:00Z",
        "state": "enabled",
        "sessionControls": None,
        "conditions": {
            "userRiskLevels": [],
            "signInRiskLevels": [],
            "servicePrincipalRiskLevels": [],
            "insiderRiskLevels": None,
            "clientAppTypes": ["all"],
            "platforms": None,
            "locations": None,
            "devices": None,
            "clientApplications": None,
            "authenticationFlows": None,
            "applications": {
                "includeApplications": ["All"],
                "excludeApplications": [],
                "includeUserActions": [],
                "includeAuthenticationContextClassReferences": [],
                "applicationFilter": None,
            },
            "users": {
                "includeUsers": ["All"],
                "excludeUsers": [],
                "includeGroups": [],
                "excludeGroups": [],
                "includeRoles": [],
                "excludeRoles": [],
                "includeGuestsOrExternalUsers": None,
                "excludeGuestsOrExternalUsers": None,
            },
        },
        "grantControls": {
            "operator": "OR",
            "builtInControls": ["mfa"],
            "customAuthenticationFactors": [],
            "termsOfUse": [],
            "authenticationStrength": None,
        },
    }
    return _merge(policy, overrides)


MFA_STRENGTH = {
    "id": "00000000-0000-0000-0000-000000000002",
    "createdDateTime": "2021-12-01T08:00:00Z",
    "modifiedDateTime": "2021-12-01T08:00:00Z",
    "displayName": "Multifactor authentication",
    "description": "Combinations of methods that satisfy strong authentication, such as a password + SMS",
    "policyType": "builtIn",
    "requirementsSatisfied": "mfa",
    "allowedCombinations": ["windowsHelloForBusiness", "fido2", "password,microsoftAuthenticatorPush"],
}


def snapshot(**fields: Any) -> TenantSnapshot:
    values: dict[str, Any] = {
        "tenant_id": TENANT_ID,
        "tenant_name": "Contoso Partner",
        "role": "partner",
        "collected_at": NOW,
    }
    values.update(fields)
    return TenantSnapshot(**values)


def context(**fields: Any) -> CheckContext:
    return CheckContext(now=NOW, **fields)

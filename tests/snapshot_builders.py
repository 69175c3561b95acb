"""Small builders for check tests: snapshots, users, report rows, Conditional Access policies,
sign-ins and their aggregates, applications and service principals, GDAP relationships.

Graph objects are built as Graph returns them (policies: GET /identity/conditionalAccess/policies
v1.0, every condition present, unset ones null or empty; sign-ins: beta signIn; credentials:
passwordCredential / keyCredential; GDAP: delegatedAdminRelationship), so tests exercise the
same JSON the collector hands to the checks. Ids are stable GUIDs derived from readable names.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from checks import sign_in_matches
from partnerguard.model import CheckContext, RegistrationDetail, SignInAggregate, TenantSnapshot, Unavailable, User

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


def iso(moment: datetime) -> str:
    """A DateTimeOffset as Graph writes it (UTC, "Z")."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


# -- sign-ins ---------------------------------------------------------------------------------

APPS = {
    "outlook": ("d3590ed6-52b3-4102-aeff-aad2292ab01c", "Microsoft Office"),
    "exchange": ("00000002-0000-0ff1-ce00-000000000000", "Office 365 Exchange Online"),
    "script": (guid("app-script"), "Nightly export script"),
}


def sign_in(
    user_name: str,
    *,
    app: str = "outlook",
    client_app: str | None = "Browser",
    requirement: str = "multiFactorAuthentication",
    protocol: str = "oAuth2",
    error_code: int = 0,
    interactive: bool = True,
    created: datetime = NOW,
    guest: bool = False,
    **overrides: Any,
) -> dict[str, Any]:
    """One beta signIn object of a user (GET /beta/auditLogs/signIns)."""
    app_id, app_name = APPS[app]
    member = user(user_name, guest=guest)
    value: dict[str, Any] = {
        "id": guid(f"sign-in-{user_name}-{app}-{client_app}-{requirement}-{protocol}-{created.isoformat()}"),
        "createdDateTime": iso(created),
        "userDisplayName": member.display_name,
        "userPrincipalName": member.user_principal_name.lower(),
        "userId": member.id,
        "userType": "guest" if guest else "member",
        "appId": app_id,
        "appDisplayName": app_name,
        "clientAppUsed": client_app,
        "authenticationRequirement": requirement,
        "authenticationProtocol": protocol,
        "isInteractive": interactive,
        "signInEventTypes": ["interactiveUser" if interactive else "nonInteractiveUser"],
        "conditionalAccessStatus": "notApplied",
        "status": {
            "errorCode": error_code,
            "failureReason": "Other." if error_code else None,
            "additionalDetails": None,
        },
    }
    return _merge(value, overrides)


def aggregates_of(
    *sign_ins: Mapping[str, Any],
    first_seen: datetime | None = None,
    last_seen: datetime = NOW,
    count: int = 1,
) -> list[SignInAggregate]:
    """The aggregate each rule would store for these sign-ins, seen first/last at these times.

    Built through `checks.sign_in_matches`, as the collector does."""
    found = [match for item in sign_ins for match in sign_in_matches(item)]
    return [
        SignInAggregate(
            rule=match.rule,
            subject_id=match.subject_id,
            user_id=match.user_id,
            user_principal_name=match.user_principal_name,
            user_display_name=match.user_display_name,
            app_id=match.app_id,
            app_display_name=match.app_display_name,
            client_app_used=match.client_app_used,
            first_seen=first_seen or last_seen,
            last_seen=last_seen,
            count=count,
            event_types=("interactiveUser",),
        )
        for match in found
    ]


# -- applications and service principals ------------------------------------------------------


def password_credential(
    name: str,
    *,
    start: datetime | None = NOW - timedelta(days=30),
    end: datetime | None = NOW + timedelta(days=60),
    key_id: str | None = None,
    display_name: str | None = None,
) -> dict[str, Any]:
    """A passwordCredential as Graph lists it (secretText is never returned on reads)."""
    return {
        "customKeyIdentifier": None,
        "displayName": display_name if display_name is not None else name,
        "endDateTime": iso(end) if end is not None else None,
        "hint": "abc",
        "keyId": key_id or guid(f"secret-{name}"),
        "secretText": None,
        "startDateTime": iso(start) if start is not None else None,
    }


def key_credential(
    name: str,
    *,
    usage: str = "Verify",
    start: datetime = NOW - timedelta(days=30),
    end: datetime | None = NOW + timedelta(days=365),
    key_id: str | None = None,
    thumbprint: str | None = None,
) -> dict[str, Any]:
    """A keyCredential (certificate): usage Verify (public key) or Sign (private key)."""
    return {
        "customKeyIdentifier": thumbprint if thumbprint is not None else f"THUMB-{name}".upper(),
        "displayName": f"CN={name}",
        "endDateTime": iso(end) if end is not None else None,
        "key": None,
        "keyId": key_id or guid(f"key-{name}-{usage}"),
        "startDateTime": iso(start),
        "type": "X509CertAndPassword" if usage == "Sign" else "AsymmetricX509Cert",
        "usage": usage,
    }


def saml_signing_certificate(
    name: str, *, end: datetime = NOW + timedelta(days=365), start: datetime = NOW - timedelta(days=30)
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A SAML signing certificate as a service principal holds it: Sign + Verify keyCredentials
    sharing a thumbprint, and the private key's passwordCredential with the Sign keyId."""
    sign = key_credential(name, usage="Sign", start=start, end=end)
    verify = key_credential(name, usage="Verify", start=start, end=end)
    password = password_credential(name, start=start, end=end, key_id=sign["keyId"], display_name=f"CN={name}")
    return [sign, verify], password


def application(
    name: str,
    *,
    secrets: Sequence[Mapping[str, Any]] = (),
    certificates: Sequence[Mapping[str, Any]] = (),
    display_name: str | None = None,
) -> dict[str, Any]:
    """An application object (GET /applications?$select=id,appId,displayName,passwordCredentials,keyCredentials)."""
    return {
        "id": guid(f"application-{name}"),
        "appId": guid(f"app-{name}"),
        "displayName": display_name if display_name is not None else name,
        "passwordCredentials": [dict(item) for item in secrets],
        "keyCredentials": [dict(item) for item in certificates],
    }


def service_principal(
    name: str,
    *,
    secrets: Sequence[Mapping[str, Any]] = (),
    certificates: Sequence[Mapping[str, Any]] = (),
    service_principal_type: str = "Application",
) -> dict[str, Any]:
    """A service principal (GET /servicePrincipals with the same $select plus servicePrincipalType)."""
    return {
        "id": guid(f"service-principal-{name}"),
        "appId": guid(f"app-{name}"),
        "displayName": name,
        "servicePrincipalType": service_principal_type,
        "passwordCredentials": [dict(item) for item in secrets],
        "keyCredentials": [dict(item) for item in certificates],
    }


# -- GDAP -------------------------------------------------------------------------------------

GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"
PRIVILEGED_ROLE_ADMINISTRATOR = "e8611ab8-c189-46e8-94e1-60213ab1f814"
HELPDESK_ADMINISTRATOR = "729827e3-9c14-49f7-bb1b-9608f156bbb8"
USER_ADMINISTRATOR = "fe930be7-5e62-47db-91af-98c3a49a38b1"


def gdap_relationship(
    name: str,
    *,
    status: str = "active",
    roles: Sequence[str] = (HELPDESK_ADMINISTRATOR,),
    end: datetime | None = NOW + timedelta(days=300),
    auto_extend: str | None = "P180D",
    reseller: bool = False,
) -> dict[str, Any]:
    """A delegatedAdminRelationship (GET /tenantRelationships/delegatedAdminRelationships)."""
    value: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.resellerDelegatedAdminRelationship"
        if reseller
        else "#microsoft.graph.delegatedAdminRelationship",
        "id": guid(f"gdap-{name}") + "-" + guid(f"gdap2-{name}"),
        "displayName": f"GDAP {name}",
        "duration": "P730D",
        "status": status,
        "autoExtendDuration": auto_extend,
        "createdDateTime": "2024-01-01T00:00:00Z",
        "activatedDateTime": "2024-01-02T00:00:00Z",
        "lastModifiedDateTime": "2024-01-02T00:00:00Z",
        "endDateTime": iso(end) if end is not None else None,
        "customer": {"tenantId": guid(f"customer-{name}"), "displayName": f"{name.title()} Ltd"},
        "accessDetails": {"unifiedRoles": [{"roleDefinitionId": role} for role in roles]},
    }
    if reseller:
        value["indirectProviderTenantId"] = guid("indirect-provider")
        value["isPartnerConsentPending"] = False
    return value

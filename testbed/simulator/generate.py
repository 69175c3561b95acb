"""Graph-shaped records, and big synthetic tenants built from them.

`generate_tenant` makes a tenant of any size, deterministically from a seed, with exact counts
of each kind of user, so that a test can assert precisely which users a scan must report
(`TenantScenario.mfa_incapable_user_ids()` is the ground truth). The record builders emit
Graph's JSON field for field (the conformance test checks them against msgraph's models).
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from testbed.simulator.scenario import JsonObject, TenantScenario

GLOBAL_ADMINISTRATOR_ROLE = "62e90394-69f5-4237-9190-012177145e10"
# skuId / servicePlanId of Microsoft Entra ID P1 and Microsoft 365 Business Premium, as listed
# in https://learn.microsoft.com/entra/identity/users/licensing-service-plan-reference
ENTRA_P1_SKU_ID = "078d2b04-f1bd-4111-bbd4-b4b1b354cef4"
ENTRA_P1_PLAN_ID = "41781fb2-bc02-4b7c-bd55-b576c07bb09d"
BUSINESS_BASIC_SKU_ID = "3b555118-da6a-4418-894f-7df1e2096870"
EXCHANGE_PLAN_ID = "9aaf7827-d63c-4b61-89c3-182f06f82e5c"

# methodsRegistered values (userRegistrationDetails) that make a user MFA capable, and the
# authenticationMethod type each one is registered as.
STRONG_METHODS: dict[str, str] = {
    "microsoftAuthenticatorPush": "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod",
    "mobilePhone": "#microsoft.graph.phoneAuthenticationMethod",
    "softwareOneTimePasscode": "#microsoft.graph.softwareOathAuthenticationMethod",
    "fido2": "#microsoft.graph.fido2AuthenticationMethod",
    "windowsHelloForBusiness": "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod",
}
# A passkey in Microsoft Authenticator: the report names it apart, Graph lists it as a FIDO2
# method (fido2AuthenticationMethod covers security keys and passkeys). Not among STRONG_METHODS,
# whose order sets the synthetic tenants' populations; admins are given it explicitly.
PASSKEY_METHODS: dict[str, str] = {
    "passKeyDeviceBoundAuthenticator": "#microsoft.graph.fido2AuthenticationMethod",
}
WEAK_METHODS: dict[str, str] = {
    "email": "#microsoft.graph.emailAuthenticationMethod",
    "temporaryAccessPass": "#microsoft.graph.temporaryAccessPassAuthenticationMethod",
}
PASSWORD_METHOD_ID = "28c10230-6103-485e-b985-444c60001490"  # Graph's fixed id of the password method
_PREFERRED = {"microsoftAuthenticatorPush": "push", "mobilePhone": "sms", "softwareOneTimePasscode": "oath"}
_EPOCH = datetime(2024, 1, 8, 9, 30, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def seeded_guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def make_user(
    user_id: str,
    user_principal_name: str,
    display_name: str,
    *,
    account_enabled: bool = True,
    user_type: Literal["Member", "Guest"] = "Member",
    job_title: str | None = None,
    created: datetime = _EPOCH,
    mail: str | None = None,
) -> JsonObject:
    given, _, surname = display_name.partition(" ")
    return {
        "id": user_id,
        "businessPhones": [],
        "displayName": display_name,
        "givenName": given or None,
        "surname": surname or None,
        "jobTitle": job_title,
        "mail": mail if mail is not None else (user_principal_name if user_type == "Member" else None),
        "mobilePhone": None,
        "officeLocation": None,
        "preferredLanguage": "en-US",
        "userPrincipalName": user_principal_name,
        "accountEnabled": account_enabled,
        "userType": user_type,
        "createdDateTime": iso(created),
        "usageLocation": "US",
    }


def make_registration_detail(
    user: JsonObject, methods: Sequence[str], *, is_admin: bool = False, updated: datetime = _EPOCH
) -> JsonObject:
    strong = [method for method in methods if method in STRONG_METHODS or method in PASSKEY_METHODS]
    preferred = next((_PREFERRED[m] for m in strong if m in _PREFERRED), "none")
    return {
        "id": user["id"],
        "userPrincipalName": user["userPrincipalName"],
        "userDisplayName": user["displayName"],
        "userType": "guest" if user.get("userType") == "Guest" else "member",
        "isAdmin": is_admin,
        "isSsprRegistered": bool(methods),
        "isSsprEnabled": True,
        "isSsprCapable": bool(methods),
        "isMfaRegistered": bool(strong),
        "isMfaCapable": bool(strong),
        "isPasswordlessCapable": any(m in ("fido2", "windowsHelloForBusiness") for m in methods),
        "methodsRegistered": list(methods),
        "isSystemPreferredAuthenticationMethodEnabled": True,
        "systemPreferredAuthenticationMethods": [preferred] if preferred != "none" else [],
        "userPreferredMethodForSecondaryAuthentication": preferred,
        "lastUpdatedDateTime": iso(updated),
    }


def make_authentication_methods(user: JsonObject, methods: Iterable[str], rng: random.Random) -> list[JsonObject]:
    """The user's GET /users/{id}/authentication/methods: the password plus one per method."""
    created = iso(_EPOCH)
    result: list[JsonObject] = [
        {
            "@odata.type": "#microsoft.graph.passwordAuthenticationMethod",
            "id": PASSWORD_METHOD_ID,
            "password": None,
            "createdDateTime": created,
        }
    ]
    for method in methods:
        method_id = seeded_guid(rng)
        if method == "microsoftAuthenticatorPush":
            result.append(
                {
                    "@odata.type": STRONG_METHODS[method],
                    "id": method_id,
                    "displayName": "iPhone 15",
                    "deviceTag": "SoftwareTokenActivated",
                    "phoneAppVersion": "6.8.7",
                    "createdDateTime": created,
                }
            )
        elif method == "mobilePhone":
            result.append(
                {
                    "@odata.type": STRONG_METHODS[method],
                    "id": "3179e48a-750b-4051-897c-87b9720928f7",  # Graph's fixed id for the mobile phone
                    "phoneNumber": "+1 2065550100",
                    "phoneType": "mobile",
                    "smsSignInState": "notAllowedByPolicy",
                }
            )
        elif method == "softwareOneTimePasscode":
            result.append({"@odata.type": STRONG_METHODS[method], "id": method_id, "secretKey": None})
        elif method == "fido2":
            result.append(
                {
                    "@odata.type": STRONG_METHODS[method],
                    "id": method_id,
                    "displayName": "Security key",
                    "createdDateTime": created,
                    "aaGuid": "2fc0579f-8113-47ea-b116-bb5a8db9202a",
                    "model": "YubiKey 5 NFC",
                    "attestationCertificates": [],
                    "attestationLevel": "attested",
                }
            )
        elif method in PASSKEY_METHODS:
            result.append(
                {
                    "@odata.type": PASSKEY_METHODS[method],
                    "id": method_id,
                    "displayName": "Passkey in Microsoft Authenticator",
                    "createdDateTime": created,
                    "aaGuid": "90a3ccdf-635c-4729-a248-9b709135078f",
                    "model": "Microsoft Authenticator - iOS",
                    "attestationCertificates": [],
                    "attestationLevel": "notAttested",
                }
            )
        elif method == "windowsHelloForBusiness":
            result.append(
                {
                    "@odata.type": STRONG_METHODS[method],
                    "id": method_id,
                    "displayName": "LAPTOP-01",
                    "createdDateTime": created,
                    "keyStrength": "normal",
                }
            )
        elif method == "email":
            result.append(
                {
                    "@odata.type": WEAK_METHODS[method],
                    "id": "3ddfcfc8-9383-446f-83cc-3ab9be4be18f",  # Graph's fixed id for the email method
                    "emailAddress": f"recovery.{user['id'][:8]}@example.com",
                }
            )
        elif method == "temporaryAccessPass":
            result.append(
                {
                    "@odata.type": WEAK_METHODS[method],
                    "id": method_id,
                    "createdDateTime": created,
                    "startDateTime": created,
                    "lifetimeInMinutes": 60,
                    "isUsableOnce": True,
                    "isUsable": False,
                    "methodUsabilityReason": "Expired",
                    "temporaryAccessPass": None,
                }
            )
        else:
            raise ValueError(f"unknown authentication method {method!r}")
    return result


def make_organization(tenant_id: str, display_name: str, domain: str, created: datetime = _EPOCH) -> JsonObject:
    return {
        "id": tenant_id,
        "deletedDateTime": None,
        "businessPhones": ["+1 425 555 0100"],
        "city": "Redmond",
        "country": None,
        "countryLetterCode": "US",
        "createdDateTime": iso(created),
        "defaultUsageLocation": None,
        "displayName": display_name,
        "marketingNotificationEmails": [],
        "onPremisesLastSyncDateTime": None,
        "onPremisesSyncEnabled": None,
        "partnerTenantType": None,
        "postalCode": "98052",
        "preferredLanguage": "en",
        "securityComplianceNotificationMails": [],
        "securityComplianceNotificationPhones": [],
        "state": "WA",
        "street": "1 Microsoft Way",
        "technicalNotificationMails": [f"admin@{domain}"],
        "tenantType": "AAD",
        "privacyProfile": None,
        "assignedPlans": [],
        "provisionedPlans": [],
        "verifiedDomains": [
            {
                "capabilities": "Email, OfficeCommunicationsOnline",
                "isDefault": True,
                "isInitial": True,
                "name": domain,
                "type": "Managed",
            },
        ],
    }


def make_subscribed_skus(tenant_id: str, licences: Sequence[str], seats: int) -> list[JsonObject]:
    skus: list[JsonObject] = [
        _sku(
            tenant_id,
            BUSINESS_BASIC_SKU_ID,
            "O365_BUSINESS_ESSENTIALS",
            seats,
            [(EXCHANGE_PLAN_ID, "EXCHANGE_S_STANDARD")],
        ),
    ]
    if "AAD_PREMIUM" in licences or "AAD_PREMIUM_P2" in licences:
        skus.append(_sku(tenant_id, ENTRA_P1_SKU_ID, "AAD_PREMIUM", seats, [(ENTRA_P1_PLAN_ID, "AAD_PREMIUM")]))
    return skus


def _sku(tenant_id: str, sku_id: str, part_number: str, seats: int, plans: list[tuple[str, str]]) -> JsonObject:
    return {
        "accountId": tenant_id,
        "accountName": "Simulated",
        "appliesTo": "User",
        "capabilityStatus": "Enabled",
        "consumedUnits": seats,
        "id": f"{tenant_id}_{sku_id}",
        "prepaidUnits": {"enabled": seats, "lockedOut": 0, "suspended": 0, "warning": 0},
        "servicePlans": [
            {
                "servicePlanId": plan_id,
                "servicePlanName": name,
                "provisioningStatus": "Success",
                "appliesTo": "User",
            }
            for plan_id, name in plans
        ],
        "skuId": sku_id,
        "skuPartNumber": part_number,
        "subscriptionIds": [],
    }


def make_security_defaults(enabled: bool) -> JsonObject:
    return {
        "id": "00000000-0000-0000-0000-000000000005",
        "displayName": "Security Defaults",
        "description": (
            "Security defaults is a set of basic identity security mechanisms recommended by Microsoft. "
            "When enabled, these recommendations will be automatically enforced in your organization."
        ),
        "isEnabled": enabled,
    }


def make_role_assignment(rng: random.Random, principal_id: str, role_definition_id: str) -> JsonObject:
    return {
        "id": seeded_guid(rng),
        "principalId": principal_id,
        "roleDefinitionId": role_definition_id,
        "directoryScopeId": "/",
        "appScopeId": None,
        "condition": None,
    }


def make_authentication_methods_policy(
    enabled: Iterable[str] = (
        "MicrosoftAuthenticator",
        "Fido2",
        "Sms",
        "SoftwareOath",
        "TemporaryAccessPass",
    ),
) -> JsonObject:
    enabled_set = set(enabled)
    all_users = [{"targetType": "group", "id": "all_users", "isRegistrationRequired": False}]

    def config(odata_type: str, config_id: str, **extra: Any) -> JsonObject:
        return {
            "@odata.type": f"#microsoft.graph.{odata_type}",
            "id": config_id,
            "state": "enabled" if config_id in enabled_set else "disabled",
            "excludeTargets": [],
            "includeTargets": all_users,
            **extra,
        }

    return {
        "id": "authenticationMethodsPolicy",
        "displayName": "Authentication Methods Policy",
        "description": ("The tenant-wide policy that controls which authentication methods are allowed in the tenant."),
        "lastModifiedDateTime": iso(_EPOCH),
        "policyVersion": "1.5",
        "reconfirmationInDays": 0,
        "policyMigrationState": "migrationComplete",
        "authenticationMethodConfigurations": [
            config(
                "microsoftAuthenticatorAuthenticationMethodConfiguration",
                "MicrosoftAuthenticator",
                isSoftwareOathEnabled=False,
            ),
            config(
                "fido2AuthenticationMethodConfiguration",
                "Fido2",
                isSelfServiceRegistrationAllowed=True,
                isAttestationEnforced=True,
            ),
            config("smsAuthenticationMethodConfiguration", "Sms"),
            config("softwareOathAuthenticationMethodConfiguration", "SoftwareOath"),
            config(
                "temporaryAccessPassAuthenticationMethodConfiguration",
                "TemporaryAccessPass",
                defaultLifetimeInMinutes=60,
                defaultLength=8,
                minimumLifetimeInMinutes=60,
                maximumLifetimeInMinutes=480,
                isUsableOnce=False,
            ),
            config("emailAuthenticationMethodConfiguration", "Email", allowExternalIdToUseEmailOtp="default"),
        ],
    }


def make_mfa_policy(policy_id: str, display_name: str, **overrides: Any) -> JsonObject:
    """A Conditional Access policy requiring MFA for All users / All apps / all client apps, no
    exclusions; `overrides` replace top-level keys (`state`, `conditions`, `grantControls`)."""
    policy: JsonObject = {
        "id": policy_id,
        "templateId": None,
        "displayName": display_name,
        "createdDateTime": iso(_EPOCH),
        "modifiedDateTime": iso(_EPOCH + timedelta(days=30)),
        "state": "enabled",
        "sessionControls": None,
        "conditions": {
            "userRiskLevels": [],
            "signInRiskLevels": [],
            "clientAppTypes": ["all"],
            "servicePrincipalRiskLevels": [],
            "insiderRiskLevels": None,
            "platforms": None,
            "locations": None,
            "devices": None,
            # beta only (conditionalAccessDeviceStates, deprecated); the simulator strips it on v1.0.
            "deviceStates": None,
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
    policy.update(overrides)
    return policy


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower()) or "tenant"


def generate_tenant(
    tenant_id: str,
    users: int = 10_000,
    seed: int = 1,
    *,
    display_name: str | None = None,
    role: Literal["partner", "customer"] = "customer",
    incapable: int | None = None,
    unregistered: int = 0,
    disabled: int | None = None,
    guests: int | None = None,
    admins: int = 5,
    licences: Sequence[str] = ("AAD_PREMIUM",),
    security_defaults: bool = False,
    mfa_policy: bool = True,
    admin_methods: Sequence[Sequence[str]] | None = None,
    emergency_access_methods: Sequence[str] | None = None,
    fido2_enabled: bool = True,
) -> TenantScenario:
    """A synthetic tenant of `users` users with exact, seed-determined populations:

    - `incapable` enabled members whose registration row says `isMfaCapable: false`
      (default 2 %); `unregistered` enabled members the report has no row for (it lags);
    - `disabled` disabled members (default 1 %), absent from the report as in Graph;
    - `guests` enabled guests, not MFA capable (default 2 %);
    - `admins` Global Administrators, all MFA capable: each with one strong method in turn, or
      with `admin_methods[i % len(admin_methods)]` (e.g. `[["fido2"], ["windowsHelloForBusiness"]]`
      or `[["microsoftAuthenticatorPush"], ["mobilePhone"]]` for mfa.phishing-resistant-admins);
    - everyone else an MFA-capable member;
    - with `emergency_access_methods`, one more enabled member holding no role,
      `breakglass@<domain>` ("Emergency Access"), with those methods: the account to name in
      EMERGENCY_ACCESS_ACCOUNTS (`TenantScenario.user` finds it by UPN);
    - `fido2_enabled=False` switches the Fido2 configuration (security keys and passkeys) off in
      the authentication methods policy.
    """
    incapable = users // 50 if incapable is None else incapable
    disabled = users // 100 if disabled is None else disabled
    guests = users // 50 if guests is None else guests
    special = incapable + unregistered + disabled + guests + admins
    if special > users:
        raise ValueError(f"{special} special users do not fit in a tenant of {users}")
    rng = random.Random(seed)
    tenant_id = tenant_id.lower()
    name = display_name or f"Synthetic {users}"
    domain = f"{_slug(name)}.onmicrosoft.com"
    kinds = (
        ["incapable"] * incapable
        + ["unregistered"] * unregistered
        + ["disabled"] * disabled
        + ["guest"] * guests
        + ["admin"] * admins
        + ["capable"] * (users - special)
    )
    rng.shuffle(kinds)
    scenario = TenantScenario(
        tenant_id=tenant_id,
        display_name=name,
        role=role,
        licences=list(licences),
        organization=make_organization(tenant_id, name, domain),
        security_defaults=make_security_defaults(security_defaults),
        authentication_methods_policy=(
            make_authentication_methods_policy()
            if fido2_enabled
            else make_authentication_methods_policy(
                ("MicrosoftAuthenticator", "Sms", "SoftwareOath", "TemporaryAccessPass")
            )
        ),
        subscribed_skus=make_subscribed_skus(tenant_id, licences, users),
    )
    admin_index = 0
    strong_choices = list(STRONG_METHODS)
    for index, kind in enumerate(kinds):
        user_id = seeded_guid(rng)
        if kind == "guest":
            upn = f"guest{index:06d}_example.com#EXT#@{domain}"
            user = make_user(
                user_id, upn, f"Guest {index:06d}", user_type="Guest", mail=f"guest{index:06d}@example.com"
            )
        else:
            user = make_user(
                user_id,
                f"user{index:06d}@{domain}",
                f"User {index:06d}",
                account_enabled=kind != "disabled",
                job_title="Global Administrator" if kind == "admin" else None,
            )
        scenario.users.append(user)
        if kind in ("incapable", "guest"):
            methods: list[str] = ["email"] if index % 2 else []
        elif kind == "admin" and admin_methods:
            methods = list(admin_methods[admin_index % len(admin_methods)])
            admin_index += 1
        else:
            methods = [strong_choices[index % len(strong_choices)]]
        scenario.authentication_methods[user_id] = make_authentication_methods(user, methods, rng)
        if kind not in ("disabled", "unregistered"):
            scenario.user_registration_details.append(make_registration_detail(user, methods, is_admin=kind == "admin"))
        if kind == "admin":
            scenario.role_assignments.append(make_role_assignment(rng, user_id, GLOBAL_ADMINISTRATOR_ROLE))
    if emergency_access_methods is not None:
        glass = make_user(seeded_guid(rng), f"breakglass@{domain}", "Emergency Access")
        scenario.users.append(glass)
        scenario.authentication_methods[glass["id"]] = make_authentication_methods(glass, emergency_access_methods, rng)
        scenario.user_registration_details.append(make_registration_detail(glass, emergency_access_methods))
    if mfa_policy:
        scenario.conditional_access_policies.append(make_mfa_policy(seeded_guid(rng), "Require MFA for all users"))
    return scenario


# -- sign-ins, applications, service principals, GDAP relationships ----------------------------
#
# Builders for the records of the full check catalogue, Graph's JSON field for field. Times are
# strings so that scenario data can use the "{{now-26h}}" templates of scenario.py.

GRAPH_RESOURCE_ID = "00000003-0000-0000-c000-000000000000"
EXCHANGE_ONLINE_APP_ID = "00000002-0000-0ff1-ce00-000000000000"


SINGLE_FACTOR = "singleFactorAuthentication"
AUTHENTICATION_REQUIREMENTS = (SINGLE_FACTOR, "multiFactorAuthentication")


def make_sign_in(
    sign_in_id: str,
    created: str,
    user: JsonObject,
    *,
    home_tenant_id: str,
    app_id: str,
    app_display_name: str,
    client_app_used: str,
    authentication_requirement: str = "singleFactorAuthentication",
    authentication_protocol: str = "none",
    event_type: str = "interactiveUser",
    error_code: int = 0,
    failure_reason: str = "Other.",
    resource_id: str = GRAPH_RESOURCE_ID,
    resource_display_name: str = "Microsoft Graph",
    correlation_id: str | None = None,
) -> JsonObject:
    """One beta signIn (https://learn.microsoft.com/graph/api/resources/signin?view=graph-rest-beta).

    Sign-in logs store the UPN lower-cased; `userType` is `member` or `guest`. Only what Entra ID
    logs is built: `authenticationRequirement` is one of its two values, and a successful ROPC
    sign-in is single-factor - ROPC "doesn't support multifactor authentication", an account that
    needs MFA is blocked (https://learn.microsoft.com/entra/identity-platform/v2-oauth-ropc).
    PartnerGuard's filtered sign-in reads rely on both (partnerguard/sign_in_streams.py)."""
    if authentication_requirement not in AUTHENTICATION_REQUIREMENTS:
        raise ValueError(f"authenticationRequirement must be one of {AUTHENTICATION_REQUIREMENTS}")
    if authentication_protocol == "ropc" and error_code == 0 and authentication_requirement != SINGLE_FACTOR:
        raise ValueError("a successful ROPC sign-in is single-factor: ROPC cannot perform MFA")
    interactive = event_type == "interactiveUser"
    return {
        "id": sign_in_id,
        "createdDateTime": created,
        "userDisplayName": user["displayName"],
        "userPrincipalName": str(user["userPrincipalName"]).lower(),
        "userId": user["id"],
        "appId": app_id,
        "appDisplayName": app_display_name,
        "ipAddress": "203.0.113.24",
        "clientAppUsed": client_app_used,
        "correlationId": correlation_id or sign_in_id,
        "conditionalAccessStatus": "failure" if error_code == 53003 else "notApplied",
        "isInteractive": interactive,
        "riskDetail": "none",
        "riskLevelAggregated": "none",
        "riskLevelDuringSignIn": "none",
        "riskState": "none",
        "riskEventTypes_v2": [],
        "resourceDisplayName": resource_display_name,
        "resourceId": resource_id,
        "resourceTenantId": home_tenant_id,
        "homeTenantId": home_tenant_id,
        "status": {"errorCode": error_code, "failureReason": failure_reason, "additionalDetails": None},
        "deviceDetail": {
            "deviceId": "",
            "displayName": "",
            "operatingSystem": "Windows10",
            "browser": "Edge 120.0.0" if client_app_used.lower() == "browser" else "",
            "isCompliant": False,
            "isManaged": False,
            "trustType": "",
        },
        "location": {
            "city": "Seattle",
            "state": "Washington",
            "countryOrRegion": "US",
            "geoCoordinates": {"altitude": None, "latitude": 47.6, "longitude": -122.3},
        },
        "appliedConditionalAccessPolicies": [],
        "authenticationRequirement": authentication_requirement,
        "authenticationProtocol": authentication_protocol,
        "signInEventTypes": [event_type],
        "userType": "guest" if user.get("userType") == "Guest" else "member",
        "tokenIssuerType": "AzureAD",
        "incomingTokenType": "none",
        "clientCredentialType": "none",
    }


def make_password_credential(
    key_id: str, display_name: str | None, start: str | None, end: str | None, hint: str | None = None
) -> JsonObject:
    """A passwordCredential as GET /applications or /servicePrincipals returns it (secretText is
    only ever returned by addPassword, so it is null here)."""
    return {
        "customKeyIdentifier": None,
        "displayName": display_name,
        "endDateTime": end,
        "hint": hint,
        "keyId": key_id,
        "secretText": None,
        "startDateTime": start,
    }


def make_key_credential(
    key_id: str,
    display_name: str,
    start: str,
    end: str,
    *,
    usage: Literal["Verify", "Sign"] = "Verify",
    thumbprint: str = "5A1B3C9D0E7F6A8B4C2D1E0F9A8B7C6D5E4F3A2B",
) -> JsonObject:
    """A keyCredential (certificate). `key` is null unless $select asks for it, as in Graph."""
    return {
        "customKeyIdentifier": thumbprint,
        "displayName": display_name,
        "endDateTime": end,
        "key": None,
        "keyId": key_id,
        "startDateTime": start,
        "type": "AsymmetricX509Cert",
        "usage": usage,
    }


def make_application(
    object_id: str,
    app_id: str,
    display_name: str,
    *,
    password_credentials: Sequence[JsonObject] = (),
    key_credentials: Sequence[JsonObject] = (),
    created: datetime = _EPOCH,
) -> JsonObject:
    return {
        "id": object_id,
        "appId": app_id,
        "displayName": display_name,
        "createdDateTime": iso(created),
        "deletedDateTime": None,
        "description": None,
        "signInAudience": "AzureADMyOrg",
        "publisherDomain": None,
        "identifierUris": [],
        "tags": [],
        "passwordCredentials": list(password_credentials),
        "keyCredentials": list(key_credentials),
    }


def make_service_principal(
    object_id: str,
    app_id: str,
    display_name: str,
    *,
    owner_tenant_id: str | None,
    service_principal_type: Literal["Application", "ManagedIdentity", "Legacy", "SocialIdp"] = "Application",
    single_sign_on_mode: str | None = None,
    password_credentials: Sequence[JsonObject] = (),
    key_credentials: Sequence[JsonObject] = (),
    alternative_names: Sequence[str] = (),
) -> JsonObject:
    names = [app_id]
    if service_principal_type == "ManagedIdentity":
        # Graph lists the identity's token endpoint audience beside the appId.
        names.append(f"https://identity.azure.net/{object_id}")
    return {
        "id": object_id,
        "appId": app_id,
        "displayName": display_name,
        "appDisplayName": display_name if service_principal_type == "Application" else None,
        "accountEnabled": True,
        "alternativeNames": list(alternative_names),
        "appOwnerOrganizationId": owner_tenant_id,
        "servicePrincipalType": service_principal_type,
        "servicePrincipalNames": names,
        "signInAudience": "AzureADMyOrg" if service_principal_type == "Application" else None,
        "tags": [],
        "preferredSingleSignOnMode": single_sign_on_mode,
        "passwordCredentials": list(password_credentials),
        "keyCredentials": list(key_credentials),
    }


def make_delegated_admin_relationship(
    relationship_id: str,
    display_name: str,
    customer_tenant_id: str,
    customer_name: str,
    roles: Sequence[str],
    *,
    status: str,
    auto_extend: str,
    end: str | None,
    activated: str | None = "2024-02-02T10:00:00Z",
    duration: str = "P730D",
    reseller_of: str | None = None,
) -> JsonObject:
    """A delegatedAdminRelationship, or a resellerDelegatedAdminRelationship when `reseller_of`
    names the indirect provider's tenant. Relationships not yet active (created, approvalPending,
    activating) have no activatedDateTime and no endDateTime, as in Graph."""
    relationship: JsonObject = {
        "@odata.type": "#microsoft.graph."
        + ("resellerDelegatedAdminRelationship" if reseller_of else "delegatedAdminRelationship"),
        "@odata.etag": 'W/"JyIwMDAwMDAwMC0wMDAwLTAwMDAtMDAwMC0wMDAwMDAwMDAwMDAiJw=="',
        "id": relationship_id,
        "displayName": display_name,
        "duration": duration,
        "customer": {"tenantId": customer_tenant_id, "displayName": customer_name},
        "accessDetails": {"unifiedRoles": [{"roleDefinitionId": role} for role in roles]},
        "status": status,
        "autoExtendDuration": auto_extend,
        "createdDateTime": "2024-02-01T10:00:00Z",
        "activatedDateTime": activated,
        "lastModifiedDateTime": activated or "2024-02-01T10:00:00Z",
        "endDateTime": end,
    }
    if reseller_of:
        relationship["indirectProviderTenantId"] = reseller_of
        relationship["isPartnerConsentPending"] = status in ("created", "approvalPending")
    return relationship


# -- realistic sign-in volumes ------------------------------------------------------------------
#
# Entra ID logs far more non-interactive sign-ins (token refreshes by clients on the user's
# behalf) than interactive ones; Microsoft notes they are "often the most voluminous" of the
# sign-in logs (https://learn.microsoft.com/entra/identity/monitoring-health/concept-noninteractive-sign-ins).
# The defaults below are a working-week average per enabled user and hour, night and weekend
# included: about 4 interactive and 40 non-interactive sign-ins per user per working day.
INTERACTIVE_PER_USER_HOUR = 0.12
NON_INTERACTIVE_PER_USER_HOUR = 1.2


def generate_sign_ins(
    scenario: TenantScenario,
    now: datetime,
    hours: float,
    *,
    interactive_per_user_hour: float = INTERACTIVE_PER_USER_HOUR,
    non_interactive_per_user_hour: float = NON_INTERACTIVE_PER_USER_HOUR,
    single_factor_share: float = 0.01,
    seed: int = 1,
) -> int:
    """Add `hours` of sign-ins before `now` to the tenant's enabled users, interactive and
    non-interactive at the given rates; returns how many. Nearly all satisfy MFA; a
    `single_factor_share` of them are single-factor, from a few users, as a tenant with a gap
    in its policies would log."""
    rng = random.Random(seed)
    enabled = [user for user in scenario.users if user.get("accountEnabled", True)]
    if not enabled or hours <= 0:
        return 0
    home = scenario.tenant_id
    # The users behind single-factor sign-ins: a handful, not everyone.
    careless = enabled[: max(1, len(enabled) // 200)]
    streams = (
        ("interactiveUser", interactive_per_user_hour, "Browser"),
        ("nonInteractiveUser", non_interactive_per_user_hour, "Mobile Apps and Desktop clients"),
    )
    added = 0
    window_s = hours * 3600.0
    for event_type, per_user_hour, client_app in streams:
        count = round(len(enabled) * hours * per_user_hour)
        for _ in range(count):
            single = rng.random() < single_factor_share
            user = rng.choice(careless if single else enabled)
            created = now - timedelta(seconds=rng.uniform(0.0, window_s))
            scenario.sign_ins.append(
                make_sign_in(
                    seeded_guid(rng),
                    iso(created),
                    user,
                    home_tenant_id=home,
                    app_id="00000002-0000-0ff1-ce00-000000000000",
                    app_display_name="Office 365 Exchange Online",
                    client_app_used=client_app,
                    authentication_requirement=(
                        "singleFactorAuthentication" if single else "multiFactorAuthentication"
                    ),
                    event_type=event_type,
                )
            )
            added += 1
    return added

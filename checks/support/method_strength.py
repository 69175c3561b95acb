"""How strong a user's registered methods are, from the registration report's `methodsRegistered`.

Shared by `mfa.phishing-resistant-admins` (SPEC §1) and the report's method-strength metrics
(SPEC §2 `metrics`), so both call the same user phishing-resistant, or reliant on a phone.

`methodsRegistered` values are the authentication method names Microsoft's reports use
(userRegistrationDetails; the same enumeration as userSignInUsageByAuthMethodActivity's
`authenticationMethod`:
https://learn.microsoft.com/graph/api/resources/usersigninusagebyauthmethodactivity).
Phishing-resistant are the methods of Microsoft's built-in "Phishing-resistant MFA"
authentication strength (https://learn.microsoft.com/entra/identity/authentication/concept-authentication-strengths):
FIDO2 security keys and passkeys, Windows Hello for Business, and the macOS platform credential
(`macOsSecureEnclaveKey`). Certificate-based authentication can be phishing-resistant too, but the
report does not show it among `methodsRegistered`, so it never counts here (SPEC §1).

A method counts only when the tenant's authentication methods policy enables it (its
`authenticationMethodConfigurations` ids, lower-cased: "fido2" governs security keys and
passkeys). Windows Hello for Business and the platform credential have no configuration there
(device management governs them) and count on registration alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# methodsRegistered value -> the authentication methods policy configuration that must enable it
# ("" : none governs it). Compared case-insensitively.
PHISHING_RESISTANT: Mapping[str, str] = {
    "fido2": "fido2",  # the older name of fido2SecurityKey in the report
    "fido2securitykey": "fido2",
    "passkeydevicebound": "fido2",
    "passkeydeviceboundauthenticator": "fido2",
    "passkeydeviceboundwindowshello": "fido2",
    "passkeysynced": "fido2",
    "windowshelloforbusiness": "",
    "macossecureenclavekey": "",
}
# What a phone answers: an SMS code or a voice call.
PHONE: frozenset[str] = frozenset({"mobilephone", "alternatemobilephone", "officephone", "sms"})
# What never counts for MFA (SPEC §1): a user with only these has no strong method at all.
NOT_MFA: frozenset[str] = frozenset({"email", "temporaryaccesspass", "securityquestion", "password"})


def phishing_resistant_methods(
    methods: Iterable[str], enabled_configurations: frozenset[str] | None
) -> tuple[str, ...]:
    """The user's registered methods that are phishing-resistant and enabled, as reported.

    `enabled_configurations`: the lower-cased ids of the methods policy's enabled
    configurations; None when the policy could not be read (then registration alone counts)."""
    found = []
    for method in methods:
        configuration = PHISHING_RESISTANT.get(method.lower())
        if configuration is None:
            continue
        if configuration and enabled_configurations is not None and configuration not in enabled_configurations:
            continue
        found.append(method)
    return tuple(found)


def relies_on_phone_only(methods: Iterable[str]) -> bool:
    """Whether the user's only multifactor methods are a phone's (SMS or voice)."""
    strong = {method.lower() for method in methods} - NOT_MFA
    return bool(strong) and strong <= PHONE


# The one translation from the fallback's methods (GET /users/{id}/authentication/methods, beta:
# one @odata.type per method) to the registration report's vocabulary, so that the check, the
# metrics and a finding's evidence name a fallback user's methods as a report row would, and the
# functions above judge both sources alike. Names from Microsoft's usageAuthMethod enumeration
# (https://learn.microsoft.com/graph/api/resources/usageauthmethod?view=graph-rest-beta).
# fido2AuthenticationMethod is a FIDO2 security key or a passkey
# (https://learn.microsoft.com/graph/api/resources/fido2authenticationmethod); the platform
# credential is the macOS Platform SSO Secure Enclave key
# (https://learn.microsoft.com/graph/api/resources/platformcredentialauthenticationmethod?view=graph-rest-beta).
# A phone is "mobilePhone" whatever its phoneType: SMS or voice, it is a phone either way, and
# the fallback keeps only the type. Methods the report never lists (the password, a certificate)
# have no name here and count for nothing in the functions above.
_GRAPH = "#microsoft.graph."
REPORT_METHOD_NAMES: Mapping[str, str] = {
    _GRAPH + "microsoftAuthenticatorAuthenticationMethod": "microsoftAuthenticatorPush",
    _GRAPH + "phoneAuthenticationMethod": "mobilePhone",
    _GRAPH + "fido2AuthenticationMethod": "fido2SecurityKey",
    _GRAPH + "softwareOathAuthenticationMethod": "softwareOneTimePasscode",
    _GRAPH + "hardwareOathAuthenticationMethod": "hardwareOneTimePasscode",
    _GRAPH + "windowsHelloForBusinessAuthenticationMethod": "windowsHelloForBusiness",
    _GRAPH + "platformCredentialAuthenticationMethod": "macOsSecureEnclaveKey",
    _GRAPH + "emailAuthenticationMethod": "email",
    _GRAPH + "temporaryAccessPassAuthenticationMethod": "temporaryAccessPass",
}
_REPORT_NAME_BY_LOWER = {odata_type.lower(): name for odata_type, name in REPORT_METHOD_NAMES.items()}


def report_method_names(odata_types: Iterable[str]) -> tuple[str, ...]:
    """A fallback user's methods as the registration report's `methodsRegistered` names them
    (each once; types the report never lists dropped)."""
    names = []
    for odata_type in odata_types:
        # Graph writes "#microsoft.graph.x"; tolerate a missing "#" or different casing.
        key = "#" + odata_type.strip().lstrip("#").lower()
        name = _REPORT_NAME_BY_LOWER.get(key)
        if name is not None:
            names.append(name)
    return tuple(dict.fromkeys(names))

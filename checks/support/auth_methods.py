"""Which of a user's registered authentication methods count for MFA (mfa.registration fallback).

Without the registration report (no Entra ID P1), PartnerGuard lists each user's methods
(GET /users/{id}/authentication/methods, one `@odata.type` per method) and judges them itself,
the way the report's `isMfaCapable` does: a strong method the tenant's authentication methods
policy allows (GET /policies/authenticationMethodsPolicy -> authenticationMethodConfigurations,
whose `id`s are "Fido2", "MicrosoftAuthenticator", "Sms", "Voice", "SoftwareOath",
"HardwareOath", "X509Certificate", "TemporaryAccessPass", "Email").

Password, email OTP and Temporary Access Pass never qualify (SPEC §1). Windows Hello for
Business and the macOS platform credential have no configuration in that policy (device
management governs them), so they qualify on registration alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class StrongMethod:
    """A method that counts for MFA, and the policy configurations any one of which enables it."""

    name: str
    # authenticationMethodConfiguration ids; empty: the policy does not govern this method.
    configuration_ids: frozenset[str]


_GRAPH = "#microsoft.graph."

# @odata.type of the user's method -> what it is. Types from the authenticationMethod resource's
# derived types (v1.0 and beta). x509CertificateAuthenticationMethod is not in Microsoft's list
# of derived types today but public tooling matches it; keeping it costs nothing if never sent.
STRONG_METHODS: dict[str, StrongMethod] = {
    _GRAPH + "microsoftAuthenticatorAuthenticationMethod": StrongMethod(
        "Microsoft Authenticator", frozenset({"microsoftauthenticator"})
    ),
    # A phone answers by SMS or by voice call: either configuration enables it.
    _GRAPH + "phoneAuthenticationMethod": StrongMethod("phone (SMS or voice)", frozenset({"sms", "voice"})),
    _GRAPH + "fido2AuthenticationMethod": StrongMethod("FIDO2 security key or passkey", frozenset({"fido2"})),
    _GRAPH + "softwareOathAuthenticationMethod": StrongMethod("software OATH token", frozenset({"softwareoath"})),
    _GRAPH + "hardwareOathAuthenticationMethod": StrongMethod("hardware OATH token", frozenset({"hardwareoath"})),
    _GRAPH + "x509CertificateAuthenticationMethod": StrongMethod(
        "certificate-based authentication", frozenset({"x509certificate"})
    ),
    _GRAPH + "windowsHelloForBusinessAuthenticationMethod": StrongMethod("Windows Hello for Business", frozenset()),
    _GRAPH + "platformCredentialAuthenticationMethod": StrongMethod("platform credential", frozenset()),
}

# Methods that never count for MFA, named for the finding's detail.
WEAK_METHODS: dict[str, str] = {
    _GRAPH + "passwordAuthenticationMethod": "password",
    _GRAPH + "emailAuthenticationMethod": "email",
    _GRAPH + "temporaryAccessPassAuthenticationMethod": "Temporary Access Pass",
}


def _normalise(odata_type: str) -> str:
    # Graph writes "#microsoft.graph.x"; tolerate a missing "#" or different casing.
    value = odata_type.strip()
    return value if value.startswith("#") else "#" + value


_STRONG_BY_LOWER = {key.lower(): method for key, method in STRONG_METHODS.items()}
_WEAK_BY_LOWER = {key.lower(): name for key, name in WEAK_METHODS.items()}


def method_name(odata_type: str) -> str:
    key = _normalise(odata_type).lower()
    if key in _STRONG_BY_LOWER:
        return _STRONG_BY_LOWER[key].name
    if key in _WEAK_BY_LOWER:
        return _WEAK_BY_LOWER[key]
    return odata_type.rsplit(".", 1)[-1].removesuffix("AuthenticationMethod") or "unknown method"


@dataclass(frozen=True)
class MethodJudgement:
    qualifying: tuple[str, ...]  # strong and allowed by the policy
    disallowed: tuple[str, ...]  # strong, but every configuration that enables it is off
    other: tuple[str, ...]  # never counts for MFA (or unknown to this version)

    @property
    def is_mfa_capable(self) -> bool:
        return bool(self.qualifying)


def judge_methods(odata_types: Sequence[str], enabled_configuration_ids: Iterable[str]) -> MethodJudgement:
    """Split a user's registered methods into qualifying, disallowed-by-policy and other."""
    enabled = {configuration_id.lower() for configuration_id in enabled_configuration_ids}
    qualifying: list[str] = []
    disallowed: list[str] = []
    other: list[str] = []
    for odata_type in odata_types:
        strong = _STRONG_BY_LOWER.get(_normalise(odata_type).lower())
        if strong is None:
            other.append(method_name(odata_type))
        elif not strong.configuration_ids or strong.configuration_ids & enabled:
            qualifying.append(strong.name)
        else:
            disallowed.append(strong.name)
    return MethodJudgement(
        tuple(dict.fromkeys(qualifying)), tuple(dict.fromkeys(disallowed)), tuple(dict.fromkeys(other))
    )

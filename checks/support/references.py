"""The two Microsoft partner security requirements every check serves, and the pages stating them.

Each check's rationale quotes the requirement it serves, so a finding always says which
contractual obligation it puts at risk. The Microsoft quote is from the Partner Center FAQ.
"""

from __future__ import annotations

from partnerguard.model import Reference

MICROSOFT_PARTNER_AGREEMENT_QUOTE = (
    '"The Microsoft Partner Agreement requires that you enforce multifactor authentication for user '
    "accounts, and that you adopt the secure application model for interacting with the Partner "
    'Center API." (Partner Center, common questions about partner security requirements)'
)

MFA_REQUIREMENT = (
    "Partner security requirement 1: every user in a partner tenant - members, admins and service "
    "accounts alike - uses MFA for every single authentication; no user may be excluded. "
    + MICROSOFT_PARTNER_AGREEMENT_QUOTE
)

SECURE_APPLICATION_MODEL_REQUIREMENT = (
    "Partner security requirement 2: integrations adopt the Secure Application Model - no "
    "app+user password flows, no long-lived shared secrets; certificates, federated credentials "
    "or managed identities instead. " + MICROSOFT_PARTNER_AGREEMENT_QUOTE
)

PARTNER_SECURITY_FAQ = Reference(
    "Partner Center: common questions about partner security requirements",
    "https://learn.microsoft.com/en-us/partner-center/security/partner-security-requirements-faq",
)
MANDATING_MFA = Reference(
    "Partner Center: mandating multifactor authentication (MFA) for your partner tenant",
    "https://learn.microsoft.com/partner-center/partner-security-requirements-mandating-mfa",
)
SECURE_APP_MODEL = Reference(
    "Partner Center: Secure Application Model framework",
    "https://learn.microsoft.com/en-us/partner-center/developer/secure-app-model-framework",
)
REQUIRE_MFA_ALL_USERS = Reference(
    "Microsoft Entra: require multifactor authentication for all users (Conditional Access)",
    "https://learn.microsoft.com/en-us/entra/identity/conditional-access/policy-all-users-mfa-strength",
)
SECURITY_DEFAULTS = Reference(
    "Microsoft Entra: security defaults",
    "https://learn.microsoft.com/en-us/entra/fundamentals/security-defaults",
)
BLOCK_LEGACY_AUTHENTICATION = Reference(
    "Microsoft Entra: block legacy authentication with Conditional Access",
    "https://learn.microsoft.com/en-us/entra/identity/conditional-access/howto-conditional-access-policy-block-legacy",
)
SIGN_IN_RESOURCE = Reference(
    "Microsoft Graph (beta): signIn resource type",
    "https://learn.microsoft.com/en-us/graph/api/resources/signin?view=graph-rest-beta",
)
SCUBAGEAR_AAD_BASELINE_URL = "https://github.com/cisagov/ScubaGear/blob/main/PowerShell/ScubaGear/baselines/aad.md"


def scubagear(control_id: str, summary: str) -> Reference:
    """A control of CISA's ScubaGear Microsoft Entra ID baseline (baselines/aad.md)."""
    return Reference(f"CISA ScubaGear {control_id}: {summary}", SCUBAGEAR_AAD_BASELINE_URL)


def prowler(check_name: str) -> Reference:
    """A Prowler Microsoft 365 check, by its directory in prowler-cloud/prowler."""
    return Reference(
        f"Prowler check {check_name}",
        "https://github.com/prowler-cloud/prowler/tree/master/prowler/providers/m365/services/entra/" + check_name,
    )

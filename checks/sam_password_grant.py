"""sam.password-grant: no app signs users in with the resource-owner password grant (SPEC §1).

Fails for each (app, user) with a successful sign-in in the look-back window whose
`authenticationProtocol` is `ropc`: an application handling a user's password directly, which
cannot do MFA and is exactly the app+user automation the Secure Application Model replaces.
Sign-in collection arrives with the next collector version; until then the check reports that
it was not assessed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from checks.base import CheckContext, CheckMetadata, CheckOutcome, Reference, Severity
from checks.pending import not_collected_yet
from checks.requirements import (
    PARTNER_SECURITY_FAQ,
    SECURE_APP_MODEL,
    SECURE_APPLICATION_MODEL_REQUIREMENT,
    SIGN_IN_RESOURCE,
)

if TYPE_CHECKING:
    from partnerguard.snapshot import TenantSnapshot

METADATA = CheckMetadata(
    id="sam.password-grant",
    title="No app signs users in with their password (ROPC grant)",
    severity=Severity.HIGH,
    rationale=(
        SECURE_APPLICATION_MODEL_REQUIREMENT + " The resource-owner password credentials (ROPC) "
        "grant makes an app send a user's password to Entra ID itself: the app must store the "
        "password, and the sign-in cannot perform MFA. Microsoft recommends against the flow; the "
        "Secure Application Model replaces it with consented, MFA-backed tokens or app-only access."
    ),
    remediation=(
        "1. For each app and user listed, identify the script or integration (Entra admin center > "
        "Monitoring > Sign-in logs, filter by application and user, Authentication protocol = ROPC). "
        "2. Rewrite it to use app-only access with a certificate or federated credential (client "
        "credentials grant) or a managed identity, or - for Partner Center API calls - the Secure "
        "Application Model's MFA-consented refresh token. 3. Remove the stored password, reset the "
        "user's password and, if the account existed only for this automation, disable it. "
        "4. The finding resolves once no such sign-in falls inside the look-back window."
    ),
    permissions=("AuditLog.Read.All",),
    licence="Microsoft Entra ID P1",
    references=(
        PARTNER_SECURITY_FAQ,
        SECURE_APP_MODEL,
        SIGN_IN_RESOURCE,
        Reference(
            "Microsoft identity platform: OAuth 2.0 resource owner password credentials "
            "(not compatible with MFA)",
            "https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth-ropc",
        ),
    ),
)


def execute(snapshot: TenantSnapshot, context: CheckContext) -> CheckOutcome:
    return not_collected_yet()

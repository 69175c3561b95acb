"""legacy-auth.sign-ins: no user signed in successfully through a legacy client (SPEC §1).

Fails for each (user, client app) with a successful sign-in in the look-back window whose
`clientAppUsed` is neither "Browser" nor "Mobile Apps and Desktop clients" (nor empty): IMAP4,
POP3, Authenticated SMTP, Exchange ActiveSync, Other clients, ... Evidence that legacy
authentication is not only allowed but used. Sign-in collection arrives with the next collector
version; until then the check reports that it was not assessed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from checks.base import CheckContext, CheckMetadata, CheckOutcome, Severity
from checks.pending import not_collected_yet
from checks.requirements import (
    BLOCK_LEGACY_AUTHENTICATION,
    MANDATING_MFA,
    MFA_REQUIREMENT,
    PARTNER_SECURITY_FAQ,
    SIGN_IN_RESOURCE,
    scubagear,
)

if TYPE_CHECKING:
    from partnerguard.snapshot import TenantSnapshot

METADATA = CheckMetadata(
    id="legacy-auth.sign-ins",
    title="No successful sign-ins through legacy authentication",
    severity=Severity.HIGH,
    rationale=(
        MFA_REQUIREMENT + " A successful legacy-authentication sign-in (IMAP4, POP3, Authenticated "
        "SMTP, Exchange ActiveSync, other clients) is an authentication that did not and could not "
        "perform MFA - the requirement broken in practice, not just in configuration."
    ),
    remediation=(
        "1. For each user and client app listed, find the device or script (Entra admin center > "
        "Monitoring > Sign-in logs, filter by the user and Client app). "
        "2. Move it to modern authentication: Outlook or a current mail app instead of IMAP/POP, "
        "OAuth 2.0 SMTP or Microsoft Graph for sending mail from applications and devices. "
        "3. Block legacy authentication for everyone (see legacy-auth.blocked). 4. The finding "
        "resolves once no such sign-in falls inside the look-back window (SIGNIN_LOOKBACK_HOURS)."
    ),
    permissions=("AuditLog.Read.All",),
    licence="Microsoft Entra ID P1",
    references=(
        PARTNER_SECURITY_FAQ,
        MANDATING_MFA,
        SIGN_IN_RESOURCE,
        BLOCK_LEGACY_AUTHENTICATION,
        scubagear("MS.AAD.1.1v1", "legacy authentication SHALL be blocked"),
    ),
)


def execute(snapshot: TenantSnapshot, context: CheckContext) -> CheckOutcome:
    return not_collected_yet()

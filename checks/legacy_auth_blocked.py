"""legacy-auth.blocked: legacy authentication is blocked for everyone, always (SPEC §1).

Legacy protocols (IMAP, POP, SMTP AUTH, Exchange ActiveSync basic auth, ...) cannot answer an
MFA challenge, so any of them left open is a password-only way into every mailbox. Passes with
security defaults, or with one enabled Conditional Access policy that blocks clientAppTypes
exchangeActiveSync and other for All users and All resources with no exclusion and no narrowing
condition. Its data (the same policies as mfa.enforcement) arrives with the next collector
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
    SECURITY_DEFAULTS,
    prowler,
    scubagear,
)

if TYPE_CHECKING:
    from partnerguard.snapshot import TenantSnapshot

METADATA = CheckMetadata(
    id="legacy-auth.blocked",
    title="Legacy authentication is blocked for every user",
    severity=Severity.HIGH,
    rationale=(
        MFA_REQUIREMENT + " Legacy authentication protocols cannot perform MFA: while any user may "
        "still sign in through them, that user's password alone opens the account, whatever the MFA "
        "policies say. A block that applies only sometimes (excluded users, trusted locations, some "
        "platforms, report-only) is not a block."
    ),
    remediation=(
        "1. Find who still uses legacy authentication: Entra admin center > Monitoring > Sign-in "
        "logs, filter Client app on the legacy clients (or see the legacy-auth.sign-ins check) and "
        "move those users and devices to modern authentication. "
        "2. Protection > Conditional Access > New policy: Users > Include > All users, no "
        "exclusions; Target resources > Include > All resources; Conditions > Client apps > "
        "Configure: Yes, select only Exchange ActiveSync clients and Other clients; Grant > Block "
        "access; no other conditions. 3. Set Enable policy to On. 4. Without Entra ID P1, turn on "
        "security defaults, which block legacy authentication. 5. Rescan."
    ),
    permissions=("Policy.Read.All",),
    licence=None,
    references=(
        PARTNER_SECURITY_FAQ,
        MANDATING_MFA,
        BLOCK_LEGACY_AUTHENTICATION,
        SECURITY_DEFAULTS,
        scubagear("MS.AAD.1.1v1", "legacy authentication SHALL be blocked"),
        prowler("entra_legacy_authentication_blocked"),
    ),
)


def execute(snapshot: TenantSnapshot, context: CheckContext) -> CheckOutcome:
    return not_collected_yet()

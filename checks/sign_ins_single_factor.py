"""sign-ins.single-factor: no user signed in successfully with one factor (SPEC §1).

Fails for each (user, app) with a successful sign-in in the look-back window, interactive or
non-interactive, whose `authenticationRequirement` is `singleFactorAuthentication`: the proof
that some sign-in path escaped MFA, whatever the configuration appears to require. Sign-in
collection arrives with the next collector version; until then the check reports that it was
not assessed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from checks.base import CheckContext, CheckMetadata, CheckOutcome, Severity
from checks.pending import not_collected_yet
from checks.requirements import (
    MANDATING_MFA,
    MFA_REQUIREMENT,
    PARTNER_SECURITY_FAQ,
    REQUIRE_MFA_ALL_USERS,
    SIGN_IN_RESOURCE,
)

if TYPE_CHECKING:
    from partnerguard.snapshot import TenantSnapshot

METADATA = CheckMetadata(
    id="sign-ins.single-factor",
    title="No successful single-factor sign-ins",
    severity=Severity.HIGH,
    rationale=(
        MFA_REQUIREMENT + " Sign-in logs record whether each sign-in required MFA "
        "(authenticationRequirement). A successful single-factor sign-in shows a path around MFA "
        "that configuration checks can miss: an excluded app, a location, a policy gap, a "
        "per-user MFA remembered device."
    ),
    remediation=(
        "1. For each user and app listed, open the sign-in in the Entra admin center > Monitoring > "
        "Sign-in logs (filter by user and application, Authentication requirement = Single-factor "
        "authentication) and read its Conditional Access tab: it shows which policies applied and "
        "why none required MFA. 2. Close that gap in the policy (see mfa.enforcement's findings). "
        "3. If the sign-in was not the user's, reset the password, revoke sessions and investigate. "
        "4. The finding resolves once no such sign-in falls inside the look-back window."
    ),
    permissions=("AuditLog.Read.All",),
    licence="Microsoft Entra ID P1",
    references=(PARTNER_SECURITY_FAQ, MANDATING_MFA, SIGN_IN_RESOURCE, REQUIRE_MFA_ALL_USERS),
)


def execute(snapshot: TenantSnapshot, context: CheckContext) -> CheckOutcome:
    return not_collected_yet()

"""sign-ins.single-factor: no user signed in successfully with one factor (SPEC §1).

Fails for each (user, app) with a successful sign-in in the look-back window, interactive or
non-interactive, whose `authenticationRequirement` is `singleFactorAuthentication`: the proof
that some sign-in path escaped MFA, whatever the configuration appears to require.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from checks.support.graph_json import equals_ignoring_case, text
from checks.support.references import (
    MANDATING_MFA,
    MFA_REQUIREMENT,
    PARTNER_SECURITY_FAQ,
    REQUIRE_MFA_ALL_USERS,
    SIGN_IN_RESOURCE,
)
from checks.support.sign_in_evidence import (
    FindingWording,
    SignInMatch,
    SubjectEvidence,
    app_id,
    outcome,
    rule_match,
)
from partnerguard.model import CheckContext, CheckMetadata, CheckOutcome, Severity, SubjectType, TenantSnapshot

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
    # Directory.Read.All: Microsoft's licence check on the sign-in API reads the directory (SPEC §6).
    permissions=("AuditLog.Read.All", "Directory.Read.All"),
    licence="Microsoft Entra ID P1",
    references=(PARTNER_SECURITY_FAQ, MANDATING_MFA, SIGN_IN_RESOURCE, REQUIRE_MFA_ALL_USERS),
    evidence_window=True,
)


SINGLE_FACTOR = "singleFactorAuthentication"


def classify_sign_in(sign_in: Mapping[str, Any]) -> SignInMatch | None:
    """The match when `sign_in` is a successful sign-in that required one factor only, else None.

    Interactive and non-interactive alike (SPEC §1). Compared case-insensitively: Graph writes
    the value in one casing, and reading it more loosely can only report more, never less.
    """
    if not equals_ignoring_case(sign_in, "authenticationRequirement", SINGLE_FACTOR):
        return None
    return rule_match(METADATA.id, sign_in, f"{text(sign_in, 'userId')}|{app_id(sign_in)}")


def _wording(subject: SubjectEvidence) -> FindingWording:
    aggregate = subject.latest
    app = aggregate.app_display_name or aggregate.app_id
    return FindingWording(
        subject_type=SubjectType.USER,
        subject_name=subject.user_name,
        detail=(
            f"{subject.count} successful sign-in(s) to '{app}' that required a single factor {subject.seen}: "
            "nothing asked this user for MFA."
        ),
    )


def execute(snapshot: TenantSnapshot, context: CheckContext) -> CheckOutcome:
    return outcome(snapshot, context, METADATA, _wording)

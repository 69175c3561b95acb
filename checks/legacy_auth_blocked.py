"""legacy-auth.blocked: legacy authentication is blocked for everyone, always (SPEC §1).

Legacy protocols (IMAP, POP, SMTP AUTH, Exchange ActiveSync basic auth, ...) cannot answer an
MFA challenge, so any of them left open is a password-only way into every mailbox. Passes with
security defaults (which block legacy authentication), or with one enabled Conditional Access
policy that blocks clientAppTypes exchangeActiveSync and other for All users and All resources,
with no exclusion and no narrowing condition: a block that applies only sometimes is not a block.

Findings say why the block is missing, as for mfa.enforcement: one per candidate policy and gap,
`<policyId>|<gap>`, where a candidate is any policy whose grant is block and whose client app
types include exchangeActiveSync, other or all (SPEC §1, "Edge cases, decided"); one for the
tenant when there is no candidate. A policy that names legacy clients but grants access (MFA,
say) is no candidate: it blocks nothing, and the tenant finding says nothing blocks. So
`no-block-control` stays in the vocabulary but this check no longer reports it. Without Entra ID
P1 there is no Conditional Access: with security defaults off the check fails, it is not "not
assessed" (SPEC §1). The clause logic is `checks.support.conditional_access`'s, shared with
mfa.enforcement; the evidence says which API version the policies came from.
"""

from __future__ import annotations

from collections.abc import Iterable

from checks.support.conditional_access import (
    LEGACY_CLIENT_APP_TYPES,
    NO_DIRECTORY,
    ExclusionDirectory,
    JsonObject,
    PolicyGap,
    blocks,
    is_legacy_block_candidate,
    policy_finding,
    scope_gaps,
    tenant_finding,
    tenant_wide_outcome,
    with_api_version,
)
from checks.support.references import (
    BLOCK_LEGACY_AUTHENTICATION,
    MANDATING_MFA,
    MFA_REQUIREMENT,
    PARTNER_SECURITY_FAQ,
    SECURITY_DEFAULTS,
    prowler,
    scubagear,
)
from partnerguard.model import CheckContext, CheckMetadata, CheckOutcome, Finding, Severity, Status, TenantSnapshot

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
    # RoleManagement.Read.Directory and GroupMember.Read.All resolve excluded roles and groups.
    permissions=("Policy.Read.All", "RoleManagement.Read.Directory", "GroupMember.Read.All"),
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


SECURITY_DEFAULTS_NOTE = "Blocked by security defaults, which block legacy authentication for every user."


def block_gaps(policy: JsonObject, directory: ExclusionDirectory = NO_DIRECTORY) -> list[PolicyGap]:
    """Every reason the block `policy` does not stop legacy authentication for everyone, always."""
    return scope_gaps(policy, LEGACY_CLIENT_APP_TYPES, directory)


def blocks_legacy_for_everyone(policy: JsonObject) -> bool:
    return blocks(policy) and not block_gaps(policy)


def policy_findings(policies: Iterable[JsonObject], directory: ExclusionDirectory) -> list[Finding]:
    return [
        policy_finding(policy, policy_gap, METADATA.severity)
        for policy in policies
        if is_legacy_block_candidate(policy)
        for policy_gap in block_gaps(policy, directory)
    ]


def _tenant_finding(snapshot: TenantSnapshot) -> Finding:
    return tenant_finding(
        snapshot,
        METADATA.severity,
        no_candidate=(
            "no Conditional Access policy blocks the legacy client types (Exchange ActiveSync, other clients)"
        ),
        consequence="nothing blocks legacy authentication for this tenant's users",
    )


def execute(snapshot: TenantSnapshot, context: CheckContext) -> CheckOutcome:
    start = tenant_wide_outcome(
        snapshot,
        security_defaults_note=SECURITY_DEFAULTS_NOTE,
        settles=blocks_legacy_for_everyone,
        settling_evidence_key="blockingPolicyIds",
    )
    if isinstance(start, CheckOutcome):
        return with_api_version(start, snapshot)
    findings = policy_findings(start, ExclusionDirectory.from_snapshot(snapshot))
    if not any(is_legacy_block_candidate(policy) for policy in start):
        findings.append(_tenant_finding(snapshot))
    outcome = CheckOutcome(Status.FAIL, tuple(sorted(findings, key=lambda finding: finding.subject_id)))
    return with_api_version(outcome, snapshot)

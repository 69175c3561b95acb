"""legacy-auth.blocked: legacy authentication is blocked for everyone, always (SPEC §1).

Legacy protocols (IMAP, POP, SMTP AUTH, Exchange ActiveSync basic auth, ...) cannot answer an
MFA challenge, so any of them left open is a password-only way into every mailbox. Passes with
security defaults (which block legacy authentication), or with one enabled Conditional Access
policy that blocks clientAppTypes exchangeActiveSync and other for All users and All resources,
with no exclusion and no narrowing condition: a block that applies only sometimes is not a block.

Findings say why the block is missing, as for mfa.enforcement: one per candidate policy (one
that names a legacy client type) and gap, `<policyId>|<gap>`, `no-block-control` for a candidate
whose grant is not a block; one for the tenant when there is no candidate. Without Entra ID P1
there is no Conditional Access: with security defaults off the check fails, it is not "not
assessed" (SPEC §1). The clause logic is `checks.conditional_access`'s, shared with
mfa.enforcement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from checks.base import (
    CheckContext,
    CheckMetadata,
    CheckOutcome,
    Finding,
    Severity,
    Status,
    SubjectType,
    Unavailable,
)
from checks.conditional_access import (
    LEGACY_CLIENT_APP_TYPES,
    NAME_LIMIT,
    NO_DIRECTORY,
    ExclusionDirectory,
    Gap,
    JsonObject,
    PolicyGap,
    blocks,
    built_in_controls,
    grant_controls,
    is_legacy_block_candidate,
    policy_finding,
    policy_id,
    scope_gaps,
    strings,
)
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
    # Annotations only: see checks.registry for why partnerguard.snapshot is not imported at run time.
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


SECURITY_DEFAULTS_NOTE = "Blocked by security defaults, which block legacy authentication for every user."


def block_gaps(policy: JsonObject, directory: ExclusionDirectory = NO_DIRECTORY) -> list[PolicyGap]:
    """Every reason `policy` is not a block of legacy authentication for everyone, always."""
    gaps = scope_gaps(policy, LEGACY_CLIENT_APP_TYPES, directory)
    if not blocks(policy):
        grant = grant_controls(policy)
        gaps.append(
            PolicyGap(
                Gap.NO_BLOCK_CONTROL,
                "The policy targets legacy clients but does not block them: its grant lets a "
                "sign-in through when a control is met, and only Block access stops legacy "
                "authentication.",
                {
                    "builtInControls": built_in_controls(policy),
                    "operator": grant.get("operator"),
                    "customAuthenticationFactors": strings(grant, "customAuthenticationFactors"),
                },
            )
        )
    return gaps


def blocks_legacy_for_everyone(policy: JsonObject) -> bool:
    return blocks(policy) and not block_gaps(policy)


def policy_findings(policies: Iterable[JsonObject], directory: ExclusionDirectory) -> list[Finding]:
    return [
        policy_finding(policy, policy_gap, METADATA.severity)
        for policy in policies
        if is_legacy_block_candidate(policy)
        for policy_gap in block_gaps(policy, directory)
    ]


def _tenant_finding(snapshot: TenantSnapshot, policies: Sequence[JsonObject] | Unavailable) -> Finding:
    if isinstance(policies, Unavailable):
        detail = (
            "Security defaults are off and Conditional Access cannot be used (" + policies.reason + "), "
            "so nothing blocks legacy authentication for this tenant's users."
        )
        evidence: dict[str, Any] = {"conditionalAccess": policies.reason_code}
    else:
        detail = (
            "Security defaults are off and no Conditional Access policy targets the legacy client "
            "types (Exchange ActiveSync, other clients), so nothing blocks legacy authentication."
        )
        evidence = {"conditionalAccessPolicyCount": len(policies)}
    return Finding(
        subject_id=snapshot.tenant_id,
        subject_type=SubjectType.TENANT,
        subject_name=snapshot.tenant_name[:NAME_LIMIT],
        detail=detail,
        severity=METADATA.severity,
        evidence={"securityDefaultsEnabled": False, **evidence},
    )


def execute(snapshot: TenantSnapshot, context: CheckContext) -> CheckOutcome:
    security_defaults = snapshot.security_defaults_enabled
    policies = snapshot.conditional_access_policies
    if security_defaults is True:
        return CheckOutcome(Status.PASS, note=SECURITY_DEFAULTS_NOTE)
    if isinstance(policies, Unavailable) and not policies.reason_code.startswith("licence:"):
        # Permission, cloud or error: a blocking policy may well exist; nothing can be said.
        return CheckOutcome.unavailable(policies)

    # Without P1 (a licence code) there is no Conditional Access: no policy can block.
    readable_policies: Sequence[JsonObject] = () if isinstance(policies, Unavailable) else policies
    blocking = sorted(policy_id(policy) for policy in readable_policies if blocks_legacy_for_everyone(policy))
    if blocking:
        return CheckOutcome(Status.PASS, evidence={"blockingPolicyIds": blocking})
    if isinstance(security_defaults, Unavailable):
        # Without a blocking policy, the answer hinges on the security defaults we could not read.
        return CheckOutcome.unavailable(security_defaults)

    findings = policy_findings(readable_policies, ExclusionDirectory.from_snapshot(snapshot))
    if not any(is_legacy_block_candidate(policy) for policy in readable_policies):
        findings.append(_tenant_finding(snapshot, policies))
    return CheckOutcome(Status.FAIL, tuple(sorted(findings, key=lambda finding: finding.subject_id)))

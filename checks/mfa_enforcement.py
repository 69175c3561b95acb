"""mfa.enforcement: every sign-in of every enabled user is challenged for MFA (SPEC §1).

A user is covered when security defaults are on; or when one enabled Conditional Access policy,
judged on its own, requires MFA (`mfa`, or an authentication strength whose requirementsSatisfied
is `mfa`) for All users, All resources, every client app, with no OR-alternative, no exclusion and
no narrowing condition (a union of narrower policies does not count: each leaves its own way
around MFA); or, only when neither covers everyone, when the user's legacy per-user MFA state is
`enforced` - also without Entra ID P1 (SPEC §1, "Edge cases, decided").

The check passes when everyone is covered. Otherwise its findings say why coverage breaks:
- one per candidate policy and gap (`<policyId>|<gap>`). A candidate is any policy, in any
  state, that includes All users or All resources and has a grant control (a block grants
  nothing: `conditional_access.has_grant_control`); `no-mfa-control` names a candidate whose
  grant involves no MFA at all;
- one per enabled user (`<userId>`), guests included, whose per-user MFA state was read and is
  not `enforced` (`must_be_challenged`: INCLUDE_GUESTS narrows mfa.registration only, SPEC §5);
- one for the tenant (`<tenantId>`) when there is no candidate at all.
Exclusion findings name every excluded user, and the resolved members of excluded groups and
roles, when the collector read them (`checks.support.conditional_access.ExclusionDirectory`).
A candidate whose only MFA control is a custom control (third-party MFA such as Duo; `mfa` OR a
custom control counts as the custom control alone), or whose authentication strength could not be
read, and that has no other gap makes the check `not_assessed`: Graph cannot show whether it
performs MFA. Such a policy with a gap covers nobody for sure: its gaps are findings and the
check fails on them. The evidence says which API version the policies came from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from checks.support.conditional_access import (
    ALL_CLIENT_APP_TYPES,
    MFA,
    NO_DIRECTORY,
    ExclusionDirectory,
    Gap,
    JsonObject,
    MfaGrant,
    PolicyGap,
    authentication_strength,
    built_in_controls,
    grant_controls,
    mfa_grant,
    policy_finding,
    policy_id,
    requires_mfa,
    scope_gaps,
    strength_requirement,
    strings,
    tenant_finding,
    tenant_wide_outcome,
    with_api_version,
)
from checks.support.conditional_access import is_mfa_candidate as is_candidate
from checks.support.graph_json import NAME_LIMIT
from checks.support.references import (
    MANDATING_MFA,
    MFA_REQUIREMENT,
    PARTNER_SECURITY_FAQ,
    REQUIRE_MFA_ALL_USERS,
    SECURITY_DEFAULTS,
    prowler,
    scubagear,
)
from partnerguard.model import (
    CheckContext,
    CheckMetadata,
    CheckOutcome,
    Finding,
    Reference,
    Severity,
    Status,
    SubjectType,
    TenantSnapshot,
    Unavailable,
    User,
    available,
)

METADATA = CheckMetadata(
    id="mfa.enforcement",
    title="Every sign-in of every user requires multifactor authentication",
    severity=Severity.CRITICAL,
    rationale=(
        MFA_REQUIREMENT + " Registration alone does not protect a sign-in: MFA must be required "
        "every time. Anything that lets a sign-in skip the challenge - a report-only or disabled "
        "policy, an excluded user, group, role, guest or app, a trusted location, a platform, "
        "device or risk condition, an app or client subset, an OR with a weaker control - is a "
        "way in with a password alone."
    ),
    remediation=(
        "1. In the Microsoft Entra admin center > Protection > Conditional Access, create (or fix) "
        "one policy: Users > Include > All users, no exclusions; Target resources > Include > All "
        "resources, no exclusions; no Conditions configured (client apps left at all, no locations, "
        "platforms, device filters or risk levels); Grant > Require multifactor authentication or "
        "Require authentication strength > Multifactor authentication, and if you add other "
        "controls choose 'Require all the selected controls'. "
        "2. Set Enable policy to On (report-only enforces nothing). "
        "3. Protect break-glass and service accounts with phishing-resistant methods (FIDO2) or "
        "replace service accounts with managed identities or certificate-based apps instead of "
        "excluding them. 4. Without Entra ID P1, turn on security defaults (Entra ID > Overview > "
        "Properties > Manage security defaults). 5. Rescan; each finding names the policy and the "
        "clause to fix."
    ),
    # RoleManagement.Read.Directory and GroupMember.Read.All resolve excluded roles and groups.
    # Policy.Read.AuthenticationMethod reads an authentication strength a policy only references.
    permissions=(
        "Policy.Read.All",
        "Policy.Read.AuthenticationMethod",
        "User.Read.All",
        "RoleManagement.Read.Directory",
        "GroupMember.Read.All",
    ),
    licence=None,
    references=(
        PARTNER_SECURITY_FAQ,
        MANDATING_MFA,
        REQUIRE_MFA_ALL_USERS,
        SECURITY_DEFAULTS,
        Reference(
            "Microsoft Graph: conditionalAccessConditionSet resource type",
            "https://learn.microsoft.com/en-us/graph/api/resources/conditionalaccessconditionset",
        ),
        Reference(
            "Microsoft Graph: conditionalAccessGrantControls resource type",
            "https://learn.microsoft.com/en-us/graph/api/resources/conditionalaccessgrantcontrols",
        ),
        Reference(
            "Microsoft Graph (beta): strongAuthenticationRequirements (per-user MFA state)",
            "https://learn.microsoft.com/en-us/graph/api/resources/strongauthenticationrequirements?view=graph-rest-beta",
        ),
        scubagear("MS.AAD.3.2v1", "an MFA method SHALL be enforced for all users"),
        prowler("entra_users_mfa_enabled"),
    ),
)

ENFORCED = "enforced"

SECURITY_DEFAULTS_NOTE = (
    "Covered by security defaults: every user must register for MFA and administrators are "
    "challenged on every sign-in, but other users are prompted only when Microsoft judges a "
    "sign-in risky, so Partner Center's MFA metric may still show less than 100 %."
)
CUSTOM_CONTROL_REASON = (
    "A Conditional Access policy grants access through a custom control (third-party MFA such as "
    "Duo). Microsoft Graph cannot show whether that provider performs MFA on every sign-in: "
    'verify the amr claim of sign-ins through it (it must contain "mfa"), or require Microsoft '
    "Entra MFA or an external authentication method instead."
)


# -- the grant --------------------------------------------------------------------------------


def grant_gaps(policy: JsonObject) -> list[PolicyGap]:
    """`no-mfa-control` when no way through the grant involves MFA; `or-alternative` when some way
    does and another does not (`conditional_access.mfa_grant`)."""
    grant = grant_controls(policy)
    kind = mfa_grant(policy)
    strength = authentication_strength(policy)
    if kind is MfaGrant.NONE:
        return [
            PolicyGap(
                Gap.NO_MFA_CONTROL,
                "The policy's grant does not require MFA (no 'Require multifactor authentication', "
                "no authentication strength that requires MFA), so it lets password-only sign-ins through.",
                {
                    "builtInControls": built_in_controls(policy),
                    "operator": grant.get("operator"),
                    "authenticationStrengthId": strength.get("id"),
                    "authenticationStrengthRequirementsSatisfied": strength.get("requirementsSatisfied"),
                    "termsOfUseCount": len(strings(grant, "termsOfUse")),
                },
            )
        ]
    if kind is not MfaGrant.OR_ALTERNATIVE:
        return []
    alternatives = [control for control in built_in_controls(policy) if control.lower() != MFA]
    if strength_requirement(policy) == "none":
        alternatives.append("authenticationStrength")
    terms_of_use = strings(grant, "termsOfUse")
    return [
        PolicyGap(
            Gap.OR_ALTERNATIVE,
            "The policy's grant is 'Require one of the selected controls' and one of them is not "
            "MFA, so a user who satisfies that control (a compliant or joined device, an approved "
            "app, accepted terms of use, a strength without MFA) signs in without MFA.",
            {
                "operator": "OR",
                "alternativeControls": alternatives,
                "termsOfUseCount": len(terms_of_use),
                "authenticationStrengthRequirementsSatisfied": strength.get("requirementsSatisfied"),
            },
        )
    ]


def judge_policy(policy: JsonObject, directory: ExclusionDirectory = NO_DIRECTORY) -> list[PolicyGap]:
    """Every gap of one policy, scope and grant, for a requirement of MFA on every sign-in."""
    return [*scope_gaps(policy, ALL_CLIENT_APP_TYPES, directory), *grant_gaps(policy)]


def covers_everyone(policy: JsonObject) -> bool:
    """True when this policy, on its own, challenges every sign-in of every user for MFA.

    A custom control never counts here (whether it is MFA is unknowable from Graph), nor a
    strength whose requirement could not be read.
    """
    return requires_mfa(policy) and not judge_policy(policy)


def must_be_challenged(user: User) -> bool:
    """Whom mfa.enforcement judges per user: every enabled user, guests included (SPEC §1: "every
    enabled user is covered"; INCLUDE_GUESTS applies to mfa.registration only, SPEC §5).

    The collector reads per-user MFA states for exactly these users.
    """
    return user.account_enabled


def is_unverifiable(policy: JsonObject) -> bool:
    """A candidate that would cover everyone if its grant is MFA, but whose MFA Graph cannot show:
    a custom control is its only MFA control (SPEC §1), or its strength's requirement could not
    be read. With any gap it covers nobody for sure, and its gaps are findings."""
    return (
        is_candidate(policy)
        and mfa_grant(policy) in (MfaGrant.CUSTOM_CONTROL, MfaGrant.UNKNOWN_STRENGTH)
        and not judge_policy(policy)
    )


def covers_all_users(policies: Sequence[JsonObject], security_defaults_enabled: bool) -> bool:
    """Whether security defaults or one policy cover everyone (else per-user MFA states matter).

    The collector calls this to decide whether to read each user's per-user MFA state.
    """
    return security_defaults_enabled or any(covers_everyone(policy) for policy in policies)


# -- findings ---------------------------------------------------------------------------------


def policy_findings(policies: Iterable[JsonObject], directory: ExclusionDirectory = NO_DIRECTORY) -> list[Finding]:
    """One finding per candidate and gap (SPEC §1); policies that are not candidates are quiet."""
    return [
        policy_finding(policy, policy_gap, Severity.CRITICAL)
        for policy in policies
        if is_candidate(policy)
        for policy_gap in judge_policy(policy, directory)
    ]


def _tenant_finding(snapshot: TenantSnapshot) -> Finding:
    return tenant_finding(
        snapshot,
        Severity.CRITICAL,
        no_candidate="no Conditional Access policy with a grant control targets All users or All resources",
        consequence="nothing requires MFA at sign-in for this tenant's users",
    )


def _user_finding(user: User, state: str) -> Finding:
    if state.lower() == "enabled":
        why = (
            "is 'enabled' but not 'enforced': the user has not completed MFA registration, so "
            "sign-ins are not yet challenged everywhere"
        )
    else:
        why = f"is '{state}', so nothing challenges this user's sign-ins for MFA"
    return Finding(
        subject_id=user.id,
        subject_type=SubjectType.USER,
        subject_name=user.display_name[:NAME_LIMIT],
        detail=(
            "Neither security defaults nor a Conditional Access policy covers every user, and this "
            f"user's per-user MFA state {why}."
        ),
        severity=Severity.CRITICAL,
        evidence={
            "userPrincipalName": user.user_principal_name,
            "userType": user.user_type,
            "perUserMfaState": state,
        },
    )


def _sorted(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(sorted(findings, key=lambda finding: finding.subject_id))


# -- the check --------------------------------------------------------------------------------


# The per-user MFA states are needed whenever the check gets that far; None there means the
# collector judged them unneeded, which it never does for a tenant nobody covers. Never `fail` on it.
PER_USER_NOT_COLLECTED = Unavailable(
    "PartnerGuard did not read the per-user MFA states although no policy covers every user.",
    "error:not-collected",
)


def execute(snapshot: TenantSnapshot, context: CheckContext) -> CheckOutcome:
    start = tenant_wide_outcome(
        snapshot,
        security_defaults_note=SECURITY_DEFAULTS_NOTE,
        settles=covers_everyone,
        settling_evidence_key="coveringPolicyIds",
    )
    outcome = start if isinstance(start, CheckOutcome) else _judge_uncovered(snapshot, start)
    return with_api_version(outcome, snapshot)


def _judge_uncovered(snapshot: TenantSnapshot, readable_policies: Sequence[JsonObject]) -> CheckOutcome:
    """Nobody is covered tenant-wide: explain why, then look at per-user MFA."""
    findings = policy_findings(readable_policies, ExclusionDirectory.from_snapshot(snapshot))
    if not any(is_candidate(policy) for policy in readable_policies):
        findings.append(_tenant_finding(snapshot))
    unverifiable = [policy for policy in readable_policies if is_unverifiable(policy)]

    per_user = snapshot.per_user_mfa_states
    if per_user is None:
        per_user = PER_USER_NOT_COLLECTED
    if isinstance(per_user, Unavailable):
        if unverifiable:
            return _unverifiable_outcome(snapshot, findings, unverifiable)
        return CheckOutcome.not_assessed(
            "Neither security defaults nor one Conditional Access policy covers every user, and "
            "the per-user MFA states that could still cover them could not be read: " + per_user.reason,
            per_user.reason_code,
            _sorted(findings),
        )
    return _judge_per_user(snapshot, per_user, findings, unverifiable)


def _unverifiable_outcome(
    snapshot: TenantSnapshot, findings: Sequence[Finding], policies: Sequence[JsonObject]
) -> CheckOutcome:
    """not_assessed: one gapless policy would cover everyone, if only Graph could show its MFA."""
    custom = sorted(policy_id(policy) for policy in policies if mfa_grant(policy) is MfaGrant.CUSTOM_CONTROL)
    unknown = [policy for policy in policies if mfa_grant(policy) is MfaGrant.UNKNOWN_STRENGTH]
    reasons: list[str] = []
    evidence: dict[str, Any] = {}
    if custom:
        reasons.append(CUSTOM_CONTROL_REASON)
        evidence["customControlPolicyIds"] = custom
    if unknown:
        strength_ids = sorted({str(authentication_strength(policy).get("id")) for policy in unknown})
        why = sorted(
            {
                snapshot.unread_authentication_strengths[strength_id].reason
                for strength_id in strength_ids
                if strength_id in snapshot.unread_authentication_strengths
            }
        )
        reasons.append(
            "A Conditional Access policy requires an authentication strength whose requirement "
            "(requirementsSatisfied) could not be read, so whether it demands MFA is unknown"
            + (f": {'; '.join(why)}" if why else "")
            + "."
        )
        evidence["unknownStrengthPolicyIds"] = sorted(policy_id(policy) for policy in unknown)
        evidence["unreadAuthenticationStrengthIds"] = strength_ids
    return CheckOutcome.not_assessed(" ".join(reasons), None, _sorted(findings), evidence=evidence)


def _judge_per_user(
    snapshot: TenantSnapshot,
    states: Mapping[str, str],
    findings: list[Finding],
    unverifiable: Sequence[JsonObject],
) -> CheckOutcome:
    users = [user for user in available(snapshot.users) if must_be_challenged(user)]
    unread = 0
    uncovered: list[Finding] = []
    for user in users:
        state = states.get(user.id)
        if state is None:
            unread += 1
        elif state.lower() != ENFORCED:
            uncovered.append(_user_finding(user, state))
    if not uncovered and not unread:
        # Everyone is enforced per user: covered, whatever the policies look like (SPEC §1, also
        # without P1 and with security defaults off).
        return CheckOutcome(
            Status.PASS,
            note=(
                "Covered by legacy per-user MFA (every enabled user is 'enforced'). Microsoft "
                "recommends moving to Conditional Access; per-user MFA's trusted IPs and "
                "remembered devices can still skip the challenge and are not visible to Graph."
            ),
            evidence={"perUserEnforcedUsers": len(users)},
        )
    findings = [*findings, *uncovered]
    if unverifiable:
        return _unverifiable_outcome(snapshot, findings, unverifiable)
    if uncovered:
        # Someone known to be uncovered: a failure, whoever else could not be read.
        return CheckOutcome(Status.FAIL, _sorted(findings), evidence={"unassessed_users": unread} if unread else {})
    return CheckOutcome.not_assessed(
        f"The per-user MFA state of {unread} enabled user(s) was not read in this scan.",
        None,
        _sorted(findings),
        evidence={"unassessed_users": unread},
    )

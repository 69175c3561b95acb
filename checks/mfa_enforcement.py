"""mfa.enforcement: every sign-in of every enabled user is challenged for MFA (SPEC §1).

A user is covered when security defaults are on; or when one enabled Conditional Access policy,
judged on its own, requires MFA (or an MFA authentication strength) for All users, All
resources, every client app, with no OR-alternative, no exclusion and no narrowing condition
(a union of narrower policies does not count: each leaves its own way around MFA); or, only
when neither covers everyone, when the user's legacy per-user MFA state is `enforced`.

The check passes when everyone is covered. Otherwise its findings say why coverage breaks:
- one per candidate policy and gap (`<policyId>|<gap>`); a candidate requires MFA, a strength
  or a custom control and targets All users or All resources;
- `no-mfa-control` for an enabled policy on All users and All resources whose grant requires
  no MFA and does not block - it looks like the baseline policy but lets password-only
  sign-ins through. Session-only policies (no grant at all) are not flagged: they are not
  pretending to be a baseline;
- one per enabled user (`<userId>`), guests included, whose per-user MFA state was read and is
  not `enforced` (`must_be_challenged`: INCLUDE_GUESTS narrows mfa.registration only, SPEC §5);
- one for the tenant (`<tenantId>`) when there is no candidate at all.
Exclusion findings name every excluded user, and the resolved members of excluded groups and
roles, when the collector read them (`checks.support.conditional_access.ExclusionDirectory`).
A candidate granting through a custom control (third-party MFA such as Duo) that would otherwise
cover everyone (enabled, All users, All resources, every client app, no exclusion or condition)
makes the check `not_assessed`: Graph cannot show whether that provider performs MFA. A custom
control policy with a gap covers nobody for sure, so the check can still fail.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from checks.support.conditional_access import (
    ALL_CLIENT_APP_TYPES,
    BLOCK,
    MFA,
    NO_DIRECTORY,
    ExclusionDirectory,
    Gap,
    JsonObject,
    PolicyGap,
    built_in_controls,
    grant_controls,
    includes_all_apps,
    includes_all_users,
    is_enabled,
    obj,
    policy_finding,
    policy_id,
    requires_mfa,
    scope_gaps,
    strings,
    tenant_finding,
    tenant_wide_outcome,
    uses_custom_control,
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
    permissions=("Policy.Read.All", "User.Read.All", "RoleManagement.Read.Directory", "GroupMember.Read.All"),
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
    grant = grant_controls(policy)
    operator = grant.get("operator")
    if not (isinstance(operator, str) and operator.upper() == "OR"):
        return []
    # Under OR, any one control grants access: a control that is not MFA is a way around it.
    alternatives = [control for control in built_in_controls(policy) if control != MFA]
    terms_of_use = strings(grant, "termsOfUse")
    if not alternatives and not terms_of_use:
        return []
    return [
        PolicyGap(
            Gap.OR_ALTERNATIVE,
            "The policy's grant is 'Require one of the selected controls' and one of them is not "
            "MFA, so a user who satisfies that control (a compliant or joined device, an approved "
            "app, accepted terms of use) signs in without MFA.",
            {
                "operator": "OR",
                "alternativeControls": alternatives,
                "termsOfUseCount": len(terms_of_use),
            },
        )
    ]


def judge_policy(policy: JsonObject, directory: ExclusionDirectory = NO_DIRECTORY) -> list[PolicyGap]:
    """Every gap of one policy, scope and grant, for a requirement of MFA on every sign-in."""
    return [*scope_gaps(policy, ALL_CLIENT_APP_TYPES, directory), *grant_gaps(policy)]


def covers_everyone(policy: JsonObject) -> bool:
    """True when this policy, on its own, challenges every sign-in of every user for MFA.

    A custom control never counts here: whether it is MFA is unknowable from Graph.
    """
    return requires_mfa(policy) and not uses_custom_control(policy) and not judge_policy(policy)


def must_be_challenged(user: User) -> bool:
    """Whom mfa.enforcement judges per user: every enabled user, guests included (SPEC §1: "every
    enabled user is covered"; INCLUDE_GUESTS applies to mfa.registration only, SPEC §5).

    The collector reads per-user MFA states for exactly these users.
    """
    return user.account_enabled


def is_unverifiable_custom_control(policy: JsonObject) -> bool:
    """A candidate that would cover everyone but grants through a custom control: whether it is
    MFA only the provider's sign-ins can tell. With any gap it covers nobody for sure."""
    return is_candidate(policy) and uses_custom_control(policy) and not judge_policy(policy)


def covers_all_users(policies: Sequence[JsonObject], security_defaults_enabled: bool) -> bool:
    """Whether security defaults or one policy cover everyone (else per-user MFA states matter).

    The collector calls this to decide whether to read each user's per-user MFA state.
    """
    return security_defaults_enabled or any(covers_everyone(policy) for policy in policies)


def is_baseline_without_mfa(policy: JsonObject) -> bool:
    """An enabled All users / All resources policy whose grant neither requires MFA nor blocks."""
    grant = grant_controls(policy)
    controls = built_in_controls(policy)
    has_grant = bool(controls or strings(grant, "termsOfUse") or obj(grant, "authenticationStrength"))
    return (
        is_enabled(policy)
        and includes_all_users(policy)
        and includes_all_apps(policy)
        and has_grant
        and BLOCK not in controls
        and not requires_mfa(policy)
        and not uses_custom_control(policy)
    )


# -- findings ---------------------------------------------------------------------------------


def policy_findings(policies: Iterable[JsonObject], directory: ExclusionDirectory = NO_DIRECTORY) -> list[Finding]:
    findings: list[Finding] = []
    for policy in policies:
        if is_candidate(policy):
            findings.extend(
                policy_finding(policy, policy_gap, Severity.CRITICAL) for policy_gap in judge_policy(policy, directory)
            )
        elif is_baseline_without_mfa(policy):
            grant = grant_controls(policy)
            findings.append(
                policy_finding(
                    policy,
                    PolicyGap(
                        Gap.NO_MFA_CONTROL,
                        "The policy is on for All users and All resources but its grant does not "
                        "require MFA, so it lets password-only sign-ins through.",
                        {
                            "builtInControls": built_in_controls(policy),
                            "operator": grant.get("operator"),
                            "authenticationStrengthRequirementsSatisfied": obj(grant, "authenticationStrength").get(
                                "requirementsSatisfied"
                            ),
                        },
                    ),
                    Severity.CRITICAL,
                )
            )
    return findings


def _tenant_finding(snapshot: TenantSnapshot) -> Finding:
    return tenant_finding(
        snapshot,
        Severity.CRITICAL,
        no_candidate="no Conditional Access policy requires MFA for All users or All resources",
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
    if isinstance(start, CheckOutcome):
        return start
    readable_policies = start

    # From here nobody is covered tenant-wide: explain why, then look at per-user MFA.
    findings = policy_findings(readable_policies, ExclusionDirectory.from_snapshot(snapshot))
    if not any(is_candidate(policy) for policy in readable_policies):
        findings.append(_tenant_finding(snapshot))
    custom = [policy_id(policy) for policy in readable_policies if is_unverifiable_custom_control(policy)]

    per_user = snapshot.per_user_mfa_states
    if per_user is None:
        per_user = PER_USER_NOT_COLLECTED
    if isinstance(per_user, Unavailable):
        if custom:
            return _custom_control_outcome(findings, custom)
        return CheckOutcome.not_assessed(
            "Neither security defaults nor one Conditional Access policy covers every user, and "
            "the per-user MFA states that could still cover them could not be read: " + per_user.reason,
            per_user.reason_code,
            _sorted(findings),
        )
    return _judge_per_user(snapshot, per_user, findings, custom)


def _custom_control_outcome(findings: Sequence[Finding], custom_policy_ids: Sequence[str]) -> CheckOutcome:
    return CheckOutcome.not_assessed(
        CUSTOM_CONTROL_REASON,
        None,
        _sorted(findings),
        evidence={"customControlPolicyIds": sorted(custom_policy_ids)},
    )


def _judge_per_user(
    snapshot: TenantSnapshot,
    states: Mapping[str, str],
    findings: list[Finding],
    custom_policy_ids: Sequence[str],
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
        # Everyone is enforced per user: covered, whatever the policies look like.
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
    if custom_policy_ids:
        return _custom_control_outcome(findings, custom_policy_ids)
    if unread:
        return CheckOutcome.not_assessed(
            f"The per-user MFA state of {unread} enabled user(s) was not read in this scan.",
            None,
            _sorted(findings),
            evidence={"unassessed_users": unread},
        )
    return CheckOutcome(Status.FAIL, _sorted(findings))

"""mfa.phishing-resistant-admins: every admin and break-glass account has a phishing-resistant
method registered (SPEC §1).

Attackers now relay MFA prompts (adversary-in-the-middle phishing); only methods bound to the
sign-in's origin resist that, and Microsoft's guidance for privileged accounts is exactly those
methods. An admin is whom mfa.registration calls one: `isAdmin` in the registration report, or
an active tenant-wide directory role assignment (the fallback's notion; both count, so a report
row that lags behind a new assignment hides no one). Accounts named in EMERGENCY_ACCESS_ACCOUNTS
are judged too, whether or not they hold a role: they exist to get into the tenant when all else
fails, so they must not be phishable.

Methods come from the report's `methodsRegistered`, or, for users it lacks (or without Entra ID
P1), from the fallback's per-user methods; each counts only when the authentication methods policy
enables it (`checks.support.method_strength`). Which Conditional Access policies demand a
phishing-resistant strength of the user is evidence, never the verdict
(`checks.support.phishing_resistant_policies`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from checks.support.directory_roles import role_names
from checks.support.graph_json import NAME_LIMIT
from checks.support.method_strength import phishing_resistant_methods, report_method_names
from checks.support.phishing_resistant_policies import policies_demanding
from checks.support.references import MANDATING_MFA, MFA_REQUIREMENT, PARTNER_SECURITY_FAQ, prowler
from partnerguard.model import (
    CheckContext,
    CheckMetadata,
    CheckOutcome,
    Finding,
    Reference,
    RegistrationDetail,
    Severity,
    SubjectType,
    TenantSnapshot,
    Unavailable,
    User,
    available,
)

METADATA = CheckMetadata(
    id="mfa.phishing-resistant-admins",
    title="Every admin and emergency-access account has a phishing-resistant method",
    severity=Severity.HIGH,
    rationale=(
        MFA_REQUIREMENT + " Attackers now phish MFA itself by relaying the prompt through a look-alike "
        "sign-in page. An administrator of a partner tenant "
        "reaches every customer the partner manages, so Microsoft's guidance for privileged accounts is "
        "a phishing-resistant method: a FIDO2 security key or passkey, Windows Hello for Business, or a "
        "platform credential. Emergency-access (break-glass) accounts need one most of all."
    ),
    remediation=(
        "1. For each account listed, have its owner register a FIDO2 security key or passkey (or set up "
        "Windows Hello for Business on their managed device) at https://aka.ms/mysecurityinfo; a Temporary "
        "Access Pass bootstraps registration. 2. If the finding says the method is registered but switched "
        "off, enable Passkey (FIDO2) under Protection > Authentication methods > Policies. 3. For "
        "emergency-access accounts, register two FIDO2 security keys kept in separate safes. 4. Then "
        "require the built-in 'Phishing-resistant MFA' authentication strength for administrator roles in "
        "Conditional Access (start in report-only, keep an emergency account out of the pilot). 5. Rescan."
    ),
    permissions=(
        "AuditLog.Read.All",
        "User.Read.All",
        "RoleManagement.Read.Directory",
        "Policy.Read.AuthenticationMethod",
        "UserAuthenticationMethod.Read.All",
        # Microsoft's licence check on the report API reads the directory (SPEC §6).
        "Directory.Read.All",
        # Not Policy.Read.All: the Conditional Access policies are evidence here, not the verdict,
        # so without them the check still judges every admin.
    ),
    licence="Microsoft Entra ID P1 for the registration report (without it each admin's methods are read instead)",
    licence_fallback=(
        "each admin's authentication methods are read instead of the registration report (the "
        "mfa.registration fallback, admins first)"
    ),
    references=(
        PARTNER_SECURITY_FAQ,
        MANDATING_MFA,
        Reference(
            "Microsoft Entra: authentication strengths (phishing-resistant MFA)",
            "https://learn.microsoft.com/entra/identity/authentication/concept-authentication-strengths",
        ),
        Reference(
            "Microsoft Entra: require phishing-resistant MFA for administrators",
            "https://learn.microsoft.com/entra/identity/conditional-access/policy-admin-phish-resistant-mfa",
        ),
        Reference(
            "Microsoft Entra: manage emergency access accounts",
            "https://learn.microsoft.com/entra/identity/role-based-access-control/security-emergency-access",
        ),
        Reference(
            "Microsoft Graph: userRegistrationDetails resource type (isAdmin, methodsRegistered)",
            "https://learn.microsoft.com/graph/api/resources/userregistrationdetails",
        ),
        prowler("entra_admin_users_phishing_resistant_mfa_enabled"),
        prowler("entra_break_glass_account_fido2_security_key_registered"),
    ),
)

SOURCE_REPORT = "userRegistrationDetails"
SOURCE_METHODS = "authenticationMethods"
EMERGENCY_ACCESS = "emergency-access account"


@dataclass(frozen=True)
class _Subject:
    user: User
    roles: frozenset[str]  # role definition ids from tenant-wide assignments
    report_admin: bool  # isAdmin in the registration report
    emergency: bool


def _methods_of(
    user_id: str,
    rows: Mapping[str, RegistrationDetail],
    fallback: Mapping[str, Sequence[str]] | None,
    snapshot: TenantSnapshot,
) -> tuple[tuple[str, ...], str] | None:
    """The user's registered methods as the report names them, and their source; None when
    neither source has the user."""
    row = rows.get(user_id)
    if row is not None:
        return row.methods_registered, SOURCE_REPORT
    if (
        fallback is not None
        and user_id in fallback
        and user_id not in snapshot.unassessed_user_ids
        and user_id not in snapshot.unreadable_user_ids
    ):
        return report_method_names(fallback[user_id]), SOURCE_METHODS
    return None


def _emergency_accounts(users: Sequence[User], configured: Sequence[str]) -> dict[str, User]:
    """The configured break-glass accounts of this tenant by user id (named by object id or UPN,
    compared lower-cased). The setting serves every monitored tenant, so an entry matching no user
    here is another tenant's, and is never named in this tenant's report."""
    by_key: dict[str, User] = {}
    for user in users:
        by_key[user.id.lower()] = user
        if user.user_principal_name:
            by_key[user.user_principal_name.lower()] = user
    found = (by_key.get(entry.lower()) for entry in configured)
    return {user.id: user for user in found if user is not None}


def judged_user_ids(
    users: Sequence[User], admin_roles: Mapping[str, frozenset[str]], emergency_access_accounts: Sequence[str]
) -> set[str]:
    """The users this check judges besides the report's `isAdmin` rows: holders of role
    assignments and the tenant's emergency-access accounts. The collector reads their
    registration rows fresh every scan (partnerguard/registration_read.py)."""
    return set(admin_roles) | set(_emergency_accounts(users, emergency_access_accounts))


def _subjects(
    users: Sequence[User],
    rows: Mapping[str, RegistrationDetail],
    admin_roles: Mapping[str, frozenset[str]],
    emergency: Mapping[str, User],
) -> list[_Subject]:
    subjects = []
    for user in users:
        if not user.account_enabled:
            continue
        row = rows.get(user.id)
        roles = admin_roles.get(user.id, frozenset())
        report_admin = row is not None and row.is_admin
        if roles or report_admin or user.id in emergency:
            subjects.append(_Subject(user, roles, report_admin, user.id in emergency))
    return subjects


def _who(subject: _Subject) -> list[str]:
    held = role_names(subject.roles)
    if not held and subject.report_admin:
        held = ["an administrator role (per the registration report)"]
    return [*held, *([EMERGENCY_ACCESS] if subject.emergency else [])]


def _finding(
    subject: _Subject,
    methods: tuple[str, ...],
    source: str,
    switched_off: tuple[str, ...],
    demanding: list[str] | None,
) -> Finding:
    user = subject.user
    who = ", ".join(_who(subject))
    detail = (
        f"{user.display_name or user.id} ({user.user_principal_name}), {who}, has no phishing-resistant "
        "method registered (FIDO2 security key or passkey, Windows Hello for Business, platform credential)"
    )
    if switched_off:
        detail += (
            f": {', '.join(switched_off)} is registered but the tenant's authentication methods policy "
            "has it switched off"
        )
    detail += "."
    if demanding:
        detail += (
            " Conditional Access demands a phishing-resistant strength of this account ("
            + ", ".join(demanding)
            + "): it cannot sign in where that policy applies until it registers one."
        )
    return Finding(
        subject_id=user.id,
        subject_type=SubjectType.USER,
        subject_name=user.display_name[:NAME_LIMIT],
        detail=detail,
        severity=Severity.HIGH,
        evidence={
            "userPrincipalName": user.user_principal_name,
            "roles": role_names(subject.roles),
            "isAdmin": bool(subject.roles) or subject.report_admin,
            "emergencyAccess": subject.emergency,
            "methodsRegistered": list(methods),
            "phishingResistantSwitchedOff": list(switched_off),
            "source": source,
            # None: the policies could not be read, so nobody knows.
            "conditionalAccessRequiresPhishingResistant": None if demanding is None else bool(demanding),
            "conditionalAccessPolicies": demanding or [],
        },
    )


def _not_readable(snapshot: TenantSnapshot) -> Unavailable | None:
    """Why no admin can be judged, if that is so: neither the report nor the fallback was read,
    or the role assignments that say who the admins are were not."""
    report = snapshot.registration_details
    fallback = snapshot.user_auth_methods
    if isinstance(report, Unavailable) and not isinstance(fallback, Mapping):
        if isinstance(fallback, Unavailable):
            return Unavailable(
                f"{report.reason} Reading admins' methods failed too: {fallback.reason}", report.reason_code
            )
        return report
    roles = snapshot.admin_roles
    if isinstance(roles, Unavailable):
        return Unavailable(
            "Directory role assignments could not be read, so PartnerGuard cannot tell who the admins are: "
            + roles.reason,
            roles.reason_code,
        )
    if roles is None:
        return Unavailable("Directory role assignments were not collected in this scan.", "error:not-collected")
    return None


def execute(snapshot: TenantSnapshot, context: CheckContext) -> CheckOutcome:
    users = available(snapshot.users)
    unreadable = _not_readable(snapshot)
    if unreadable is not None:
        return CheckOutcome.unavailable(unreadable)
    report = snapshot.registration_details
    rows = {} if isinstance(report, Unavailable) else {row.id: row for row in report}
    fallback = snapshot.user_auth_methods if isinstance(snapshot.user_auth_methods, Mapping) else None
    admin_roles = snapshot.admin_roles if isinstance(snapshot.admin_roles, Mapping) else {}
    policy = snapshot.enabled_auth_method_ids
    enabled = frozenset(c.lower() for c in policy) if isinstance(policy, frozenset) else None
    policies = snapshot.conditional_access_policies
    emergency = _emergency_accounts(users, context.emergency_access_accounts)

    findings: list[Finding] = []
    unassessed: list[str] = []
    undecided: list[str] = []  # registered methods the unread policy might have switched off
    subjects = _subjects(users, rows, admin_roles, emergency)
    for subject in subjects:
        read = _methods_of(subject.user.id, rows, fallback, snapshot)
        if read is None:
            unassessed.append(subject.user.id)
            continue
        methods, source = read
        if phishing_resistant_methods(methods, enabled if enabled is not None else frozenset()):
            continue
        registered = phishing_resistant_methods(methods, None)
        if registered and enabled is None:
            undecided.append(subject.user.id)
            continue
        demanding = (
            None
            if isinstance(policies, Unavailable)
            else policies_demanding(policies, subject.user, subject.roles, snapshot.group_members)
        )
        findings.append(_finding(subject, methods, source, registered, demanding))
    findings.sort(key=lambda finding: finding.subject_id)

    evidence: dict[str, Any] = {
        "admins": sum(1 for s in subjects if s.roles or s.report_admin),
        "emergency_access_accounts": sum(1 for s in subjects if s.emergency),
        "without_phishing_resistant": len(findings),
    }
    disabled = [user.id for user in emergency.values() if not user.account_enabled]
    if disabled:
        evidence["emergency_access_accounts_disabled"] = disabled
    if unassessed or undecided:
        parts = []
        if unassessed:
            parts.append(
                f"{len(unassessed)} admin or emergency-access account(s) have neither a registration report row "
                "nor readable authentication methods (the fallback did not reach them or failed)"
            )
        if undecided:
            reason = policy.reason if isinstance(policy, Unavailable) else "it was not read"
            parts.append(
                f"{len(undecided)} registered a method only the authentication methods policy can allow, and the "
                f"policy could not be read: {reason}"
            )
        code = policy.reason_code if undecided and isinstance(policy, Unavailable) else None
        evidence["unassessed_users"] = len(unassessed) + len(undecided)
        return CheckOutcome.not_assessed("; ".join(parts) + ".", code, findings, evidence=evidence)
    return replace(CheckOutcome.from_findings(findings), evidence=evidence)

"""mfa.registration: every enabled user can complete an MFA challenge (SPEC §1).

"Capable" is Graph's `isMfaCapable` in the authentication-methods registration report: a strong
method registered *and* allowed by the tenant's authentication methods policy. Users the report
lacks (it omits some users and lags behind new ones), and every user when the report is
unlicensed, are judged from their registered methods instead (`checks.support.auth_methods`).

Disabled accounts never count; guests only with INCLUDE_GUESTS; service accounts are users like
any other (the partner requirement allows no exception). Admins fail at critical severity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from checks.support.auth_methods import judge_methods
from checks.support.graph_json import NAME_LIMIT
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
    iso,
)

METADATA = CheckMetadata(
    id="mfa.registration",
    title="Every enabled user can complete multifactor authentication",
    severity=Severity.HIGH,
    rationale=(
        MFA_REQUIREMENT + " A user with no usable MFA method cannot be challenged, so every sign-in "
        "of that account rests on the password alone; an administrator in that state is a direct "
        "path to every customer the partner manages (critical)."
    ),
    remediation=(
        "1. For each user listed, sign in to the Microsoft Entra admin center > Users > the user > "
        "Authentication methods, and check what is registered. "
        "2. Have the user register a strong method at https://aka.ms/mysecurityinfo (Microsoft "
        "Authenticator, a FIDO2 security key or passkey, Windows Hello for Business); for a service "
        "account that cannot do MFA, replace it with a managed identity or an app using a "
        "certificate (Secure Application Model) and disable the account. "
        "3. If a user registered a method that is switched off, enable that method for them under "
        "Protection > Authentication methods > Policies, or have them register an enabled one. "
        "4. To have users register at their next sign-in, run a registration campaign (Authentication "
        "methods > Registration campaign) or issue a Temporary Access Pass to bootstrap passwordless "
        "registration. 5. Rescan."
    ),
    permissions=(
        "AuditLog.Read.All",
        "User.Read.All",
        "UserAuthenticationMethod.Read.All",
        "Policy.Read.AuthenticationMethod",
        "RoleManagement.Read.Directory",
        # Microsoft's licence check on the report API reads the directory (SPEC §6).
        "Directory.Read.All",
    ),
    licence="Microsoft Entra ID P1 for the registration report (without it the per-user fallback is used)",
    licence_fallback=(
        "each user's authentication methods are read instead of the registration report: paced by "
        "Graph's reports limit and cached a day, so a large tenant is assessed over several scans"
    ),
    references=(
        PARTNER_SECURITY_FAQ,
        MANDATING_MFA,
        Reference(
            "Microsoft Graph: userRegistrationDetails resource type (isMfaCapable)",
            "https://learn.microsoft.com/en-us/graph/api/resources/userregistrationdetails",
        ),
        Reference(
            "Microsoft Graph: authenticationMethod resource type (per-user methods)",
            "https://learn.microsoft.com/en-us/graph/api/resources/authenticationmethod",
        ),
        Reference(
            "Microsoft Graph: get authenticationMethodsPolicy",
            "https://learn.microsoft.com/en-us/graph/api/authenticationmethodspolicy-get",
        ),
        prowler("entra_users_mfa_capable"),
    ),
)

SOURCE_REPORT = "userRegistrationDetails"
SOURCE_METHODS = "authenticationMethods"


@dataclass(frozen=True)
class _Fallback:
    """The per-user methods and the policy, when both were read."""

    methods_by_user: Mapping[str, Sequence[str]]
    enabled_configuration_ids: frozenset[str]
    admin_ids: frozenset[str] | None  # None: admin roles could not be read


def _fallback(snapshot: TenantSnapshot) -> _Fallback | Unavailable | None:
    methods = snapshot.user_auth_methods
    enabled = snapshot.enabled_auth_method_ids
    # The methods policy is read every scan (mfa.phishing-resistant-admins needs it): when the
    # fallback did not run, a failed policy read is no reason of this check's.
    if methods is None:
        return None
    if isinstance(methods, Unavailable):
        return methods
    if isinstance(enabled, Unavailable):
        return enabled
    if methods is None or enabled is None:
        return None
    admins = snapshot.admin_user_ids
    return _Fallback(methods, enabled, admins if isinstance(admins, frozenset) else None)


def in_scope(user: User, include_guests: bool) -> bool:
    """Whom mfa.registration judges: enabled users; guests only with INCLUDE_GUESTS (SPEC §1, §5).

    The collector asks the same question to choose whom the fallback reads.
    """
    return user.account_enabled and (include_guests or not user.is_guest)


def _finding(user: User, detail: str, is_admin: bool | None, evidence: Mapping[str, Any]) -> Finding:
    admin_note = " The account holds an administrator role." if is_admin else ""
    return Finding(
        subject_id=user.id,
        subject_type=SubjectType.USER,
        subject_name=user.display_name[:NAME_LIMIT],
        detail=detail + admin_note,
        severity=Severity.CRITICAL if is_admin else Severity.HIGH,
        evidence={
            "userPrincipalName": user.user_principal_name,
            "userType": user.user_type,
            "isAdmin": is_admin,
            **evidence,
        },
    )


def judge_report_row(user: User, row: RegistrationDetail, admin_ids: frozenset[str] | None) -> Finding | None:
    if row.is_mfa_capable:
        return None
    if row.is_mfa_registered:
        detail = (
            "Not MFA capable: the user registered an MFA method, but the tenant's authentication "
            "methods policy does not allow it, so the user cannot complete an MFA challenge."
        )
    elif row.methods_registered:
        detail = (
            "Not MFA capable: only methods that do not count for MFA are registered, so every "
            "sign-in rests on the password."
        )
    else:
        detail = (
            "Not MFA capable: no authentication method is registered besides the password, so "
            "the user cannot complete an MFA challenge."
        )
    is_admin = row.is_admin or (admin_ids is not None and user.id in admin_ids)
    return _finding(
        user,
        detail,
        is_admin,
        {"methodsRegistered": list(row.methods_registered), "source": SOURCE_REPORT},
    )


def judge_registered_methods(user: User, odata_types: Sequence[str], fallback: _Fallback) -> Finding | None:
    judgement = judge_methods(odata_types, fallback.enabled_configuration_ids)
    if judgement.is_mfa_capable:
        return None
    if judgement.disallowed:
        detail = (
            "Not MFA capable: the user registered " + ", ".join(judgement.disallowed) + ", but the "
            "tenant's authentication methods policy has that method switched off, so the user "
            "cannot complete an MFA challenge."
        )
    elif judgement.other:
        detail = (
            "Not MFA capable: only methods that never count for MFA are registered ("
            + ", ".join(judgement.other)
            + "), so every sign-in rests on the password."
        )
    else:
        detail = (
            "Not MFA capable: no authentication method is registered, so the user cannot complete an MFA challenge."
        )
    is_admin = None if fallback.admin_ids is None else user.id in fallback.admin_ids
    return _finding(
        user,
        detail,
        is_admin,
        {
            "methodsRegistered": [*judgement.disallowed, *judgement.other],
            "source": SOURCE_METHODS,
        },
    )


def execute(snapshot: TenantSnapshot, context: CheckContext) -> CheckOutcome:
    users = [user for user in available(snapshot.users) if in_scope(user, context.include_guests)]
    report = snapshot.registration_details
    fallback = _fallback(snapshot)
    if isinstance(report, Unavailable) and not isinstance(fallback, _Fallback):
        # Neither source can judge anyone. The report's reason and code lead (SPEC §1: the
        # report is the source, the fallback its substitute); a failed fallback adds its reason.
        if isinstance(fallback, Unavailable):
            return CheckOutcome.unavailable(
                Unavailable(
                    f"{report.reason} The per-user fallback failed too: {fallback.reason}",
                    report.reason_code,
                )
            )
        return CheckOutcome.unavailable(report)

    rows = {} if isinstance(report, Unavailable) else {row.id: row for row in report}
    admin_ids = fallback.admin_ids if isinstance(fallback, _Fallback) else None
    findings: list[Finding] = []
    unassessed = _Unassessed()
    for user in users:
        row = rows.get(user.id)
        if row is not None:
            finding = judge_report_row(user, row, admin_ids)
        elif (
            isinstance(fallback, _Fallback)
            and user.id not in snapshot.unassessed_user_ids
            and user.id not in snapshot.unreadable_user_ids
            and user.id in fallback.methods_by_user
        ):
            finding = judge_registered_methods(user, fallback.methods_by_user[user.id], fallback)
        else:
            unassessed.count(user.id, snapshot)
            continue
        if finding is not None:
            findings.append(finding)
    findings.sort(key=lambda finding: finding.subject_id)

    coverage = {**coverage_evidence(len(users), unassessed.total, len(findings)), **read_evidence(snapshot)}
    if unassessed.total:
        reason, reason_code = _unassessed_reason(unassessed, fallback)
        return CheckOutcome.not_assessed(reason, reason_code, findings, evidence={**unassessed.evidence(), **coverage})
    note = None
    if isinstance(report, Unavailable):
        note = (
            "Judged from each user's registered methods and the authentication methods policy, "
            "because the registration report could not be read: " + report.reason
        )
    return replace(CheckOutcome.from_findings(findings, note=note), evidence=coverage)


def coverage_evidence(in_scope: int, unassessed: int, incapable: int) -> dict[str, int]:
    """The figures behind a tenant's MFA coverage (the HTML report shows capable / assessed).

    Added to the check-level evidence beside the existing keys; each finding is one assessed
    user who is not MFA capable, so capable = assessed - findings.
    """
    assessed = in_scope - unassessed
    return {"in_scope_users": in_scope, "assessed_users": assessed, "mfa_capable_users": assessed - incapable}


def read_evidence(snapshot: TenantSnapshot) -> dict[str, str]:
    """How the report was read, beside the coverage figures: `full` (every row) or `filtered`
    (the not-capable rows over the roster of the last full read), and when that full read ran,
    so a reader knows how old the capable users' rows may be."""
    read = snapshot.registration_read
    if read is None or isinstance(snapshot.registration_details, Unavailable):
        return {}
    return {"registration_read": read.kind, "registration_read_as_of": iso(read.as_of)}


@dataclass
class _Unassessed:
    """Users in scope the check could not judge, by why: the fallback's time budget ran out
    before them, their methods could not be read, or neither source had them."""

    total: int = 0
    not_reached: int = 0
    unreadable: int = 0

    def count(self, user_id: str, snapshot: TenantSnapshot) -> None:
        self.total += 1
        if user_id in snapshot.unassessed_user_ids:
            self.not_reached += 1
        elif user_id in snapshot.unreadable_user_ids:
            self.unreadable += 1

    @property
    def other(self) -> int:
        return self.total - self.not_reached - self.unreadable

    def evidence(self) -> dict[str, int]:
        return {
            "unassessed_users": self.total,
            "not_reached_users": self.not_reached,
            "unreadable_users": self.unreadable,
        }


def _unassessed_reason(unassessed: _Unassessed, fallback: _Fallback | Unavailable | None) -> tuple[str, str | None]:
    if isinstance(fallback, Unavailable):
        return (
            f"{unassessed.total} enabled user(s) are missing from the registration report and their methods "
            f"could not be read: {fallback.reason}",
            fallback.reason_code,
        )
    parts: list[str] = []
    if unassessed.not_reached:
        parts.append(
            f"{unassessed.not_reached} were not reached because the scan's time budget ran out before "
            "their authentication methods were read (they are checked on the next scan)"
        )
    if unassessed.unreadable:
        parts.append(
            f"{unassessed.unreadable} could not be judged because reading their authentication methods "
            "failed (Microsoft Graph kept refusing or erring; they are retried on the next scan)"
        )
    if unassessed.other:
        parts.append(
            f"{unassessed.other} are missing from the registration report (it lags behind new users) "
            "and their authentication methods were not read"
        )
    return f"{unassessed.total} enabled user(s) could not be checked: " + "; ".join(parts) + ".", None

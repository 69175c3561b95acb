"""The report's method-strength metrics (SPEC §2 `metrics`): pure, from the collected snapshot.

Per tenant and scan: the users in scope, how many of them are MFA capable, how many have a
phishing-resistant method and how many rely on a phone (SMS or voice) alone; the same for the
admins among them. Counts only: renderers compute the shares.

Whom it counts is whom `mfa.registration` judges (`checks.mfa_registration.in_scope`: enabled
users, guests with INCLUDE_GUESTS), and each user is read from the same source the check reads:

- **a registration report row** (`userRegistrationDetails`): `isMfaCapable` and
  `methodsRegistered`. A filtered
  read's rows are the roster of its last full read with fresh not-capable rows (registration_read.py),
  so `as_of` is that full read's time (`RegistrationReadInfo.as_of`);
- **the per-user fallback** (users the report lacks, or everyone when it is unlicensed): the
  user's registered methods (`@odata.type`), capable as the check judges them
  (`checks.support.auth_methods.judge_methods`), each method given the name the registration
  report uses for it (`checks.support.method_strength.report_method_names`), so that one rule
  decides what is phishing-resistant or phone alone. Those methods are read, or taken from the
  day's cache, by this scan: `as_of` is the scan's time when no report row is involved.

An admin is whom `mfa.phishing-resistant-admins` judges as one, whatever the source: the
report's `isAdmin`, or an active tenant-wide directory role assignment (`snapshot.admin_roles`,
read every scan), so a row that lags behind a new assignment hides no one and the admins'
figures count the same people the check names.

All or nothing: when any in-scope user cannot be judged (the users list, the methods policy or
the role assignments unreadable, the fallback's time budget spent before them, their methods
unreadable), the report carries no metrics at all. A
count over part of a tenant would read as a share of all of it; `mfa.registration` says who
could not be assessed and why, and the figures return with the scan that judges everyone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import datetime

from checks.mfa_registration import in_scope
from checks.support.auth_methods import judge_methods
from checks.support.method_strength import phishing_resistant_methods, relies_on_phone_only, report_method_names
from partnerguard.model import RegistrationDetail, ReportMetrics, TenantSnapshot, Unavailable, User


@dataclass(frozen=True)
class _Judged:
    """One in-scope user, as the metrics count them."""

    is_admin: bool
    mfa_capable: bool
    phishing_resistant: bool
    phone_only: bool


def method_strength_metrics(snapshot: TenantSnapshot, include_guests: bool) -> ReportMetrics | None:
    """The metrics of one scan, or None when some in-scope user could not be judged."""
    if isinstance(snapshot.users, Unavailable):
        return None
    # The methods policy (read every scan) decides whether a registered key counts: unread, no
    # user's phishing-resistant figure is known, as the check then leaves such admins unjudged.
    enabled = snapshot.enabled_auth_method_ids
    if not isinstance(enabled, frozenset):
        return None
    # Who the admins are (read every scan): unread, the admins' figures would count only the
    # report's isAdmin, fewer people than the check names.
    roles = snapshot.admin_roles
    if not isinstance(roles, Mapping):
        return None
    enabled_ids = frozenset(i.lower() for i in enabled)  # as checks.support.method_strength compares
    admin_ids = roles.keys()
    report = snapshot.registration_details
    rows = {} if isinstance(report, Unavailable) else {row.id: row for row in report}
    methods = snapshot.user_auth_methods if isinstance(snapshot.user_auth_methods, Mapping) else {}

    judged: list[_Judged] = []
    report_rows_used = False
    for user in snapshot.users:
        if not in_scope(user, include_guests):
            continue
        row = rows.get(user.id)
        if row is not None:
            judged.append(_from_report_row(row, enabled_ids, admin_ids))
            report_rows_used = True
            continue
        one = _from_methods(user, methods, enabled_ids, admin_ids, snapshot)
        if one is None:
            return None
        judged.append(one)

    return ReportMetrics(
        users_in_scope=len(judged),
        mfa_capable=sum(u.mfa_capable for u in judged),
        phishing_resistant=sum(u.phishing_resistant for u in judged),
        phone_only=sum(u.phone_only for u in judged),
        admins=sum(u.is_admin for u in judged),
        admins_mfa_capable=sum(u.is_admin and u.mfa_capable for u in judged),
        admins_phishing_resistant=sum(u.is_admin and u.phishing_resistant for u in judged),
        admins_phone_only=sum(u.is_admin and u.phone_only for u in judged),
        as_of=_as_of(snapshot, report_rows_used=report_rows_used),
    )


def _from_report_row(row: RegistrationDetail, enabled_ids: frozenset[str], admin_ids: Set[str]) -> _Judged:
    return _Judged(
        # As mfa.phishing-resistant-admins counts admins: the report's flag or a role.
        is_admin=row.is_admin or row.id in admin_ids,
        mfa_capable=row.is_mfa_capable,
        phishing_resistant=bool(phishing_resistant_methods(row.methods_registered, enabled_ids)),
        phone_only=relies_on_phone_only(row.methods_registered),
    )


def _from_methods(
    user: User,
    methods: Mapping[str, Sequence[str]],
    enabled_ids: frozenset[str],
    admin_ids: Set[str],
    snapshot: TenantSnapshot,
) -> _Judged | None:
    """A user the report lacks, from the fallback's methods; None when they cannot be judged
    (the same users mfa.registration counts as unassessed)."""
    if user.id in snapshot.unassessed_user_ids or user.id in snapshot.unreadable_user_ids or user.id not in methods:
        return None
    odata_types = methods[user.id]
    names = report_method_names(odata_types)
    return _Judged(
        is_admin=user.id in admin_ids,
        mfa_capable=judge_methods(odata_types, enabled_ids).is_mfa_capable,
        phishing_resistant=bool(phishing_resistant_methods(names, enabled_ids)),
        phone_only=relies_on_phone_only(names),
    )


def _as_of(snapshot: TenantSnapshot, *, report_rows_used: bool) -> datetime:
    """When the figures' data was read: the registration read's roster when report rows were
    used (a full read's is the scan's own time), else the scan's time (the fallback's methods)."""
    read = snapshot.registration_read
    if report_rows_used and read is not None:
        return read.as_of
    return snapshot.collected_at

"""The check catalogue: the eleven checks of SPEC §1, in SPEC order, and their sign-in rules.

Each check is a module with `METADATA` and a pure `execute(snapshot, context)` (see
`checks.support.check_module.CheckModule`); what several checks share lives in `checks.support`.
Reports list checks in this order, and every id appears in every report (SPEC §2).

Sign-ins are collected incrementally and folded into per-subject aggregates as they stream in
(SPEC §6), so the three sign-in rules must run at collection time - but they stay in the checks:
each rule is its check module's `classify_sign_in`, and `sign_in_matches` asks all three. A
failed sign-in matches nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from checks import (
    apps_client_secrets,
    apps_credential_expiry,
    gdap_expiring,
    gdap_privileged_roles,
    legacy_auth_blocked,
    legacy_auth_sign_ins,
    mfa_enforcement,
    mfa_phishing_resistant_admins,
    mfa_registration,
    sam_password_grant,
    sign_ins_single_factor,
)
from checks.support.check_module import CheckModule, UnknownCheckError, find_check
from checks.support.sign_in_evidence import SignInMatch

ALL_CHECKS: tuple[CheckModule, ...] = (
    mfa_registration,
    mfa_enforcement,
    legacy_auth_blocked,
    legacy_auth_sign_ins,
    sign_ins_single_factor,
    sam_password_grant,
    apps_client_secrets,
    apps_credential_expiry,
    gdap_privileged_roles,
    gdap_expiring,
    mfa_phishing_resistant_admins,
)

CHECK_IDS: tuple[str, ...] = tuple(check.METADATA.id for check in ALL_CHECKS)


def get_check(check_id: str) -> CheckModule:
    """The check with this id; `UnknownCheckError` (a KeyError) for an id not in the catalogue."""
    return find_check(ALL_CHECKS, check_id)


_SIGN_IN_RULES: tuple[tuple[str, Callable[[Mapping[str, Any]], SignInMatch | None]], ...] = (
    (legacy_auth_sign_ins.METADATA.id, legacy_auth_sign_ins.classify_sign_in),
    (sign_ins_single_factor.METADATA.id, sign_ins_single_factor.classify_sign_in),
    (sam_password_grant.METADATA.id, sam_password_grant.classify_sign_in),
)

# The check ids whose evidence is sign-ins, in catalogue order.
SIGN_IN_RULE_IDS: tuple[str, ...] = tuple(rule_id for rule_id, _ in _SIGN_IN_RULES)


def sign_in_matches(sign_in: Mapping[str, Any]) -> list[SignInMatch]:
    """Every rule `sign_in` (one beta signIn JSON object) matches; [] for failed sign-ins."""
    return [found for _, rule in _SIGN_IN_RULES if (found := rule(sign_in)) is not None]


__all__ = [
    "ALL_CHECKS",
    "CHECK_IDS",
    "SIGN_IN_RULE_IDS",
    "CheckModule",
    "SignInMatch",
    "UnknownCheckError",
    "get_check",
    "sign_in_matches",
]

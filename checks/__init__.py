"""The check catalogue: the ten checks of SPEC §1, in SPEC order.

Each check is a module with `METADATA` and a pure `execute(snapshot, context)` (see
`checks.registry.CheckModule`). Reports list checks in this order, and every id appears in
every report (SPEC §2).
"""

from __future__ import annotations

from checks import (
    apps_client_secrets,
    apps_credential_expiry,
    gdap_expiring,
    gdap_privileged_roles,
    legacy_auth_blocked,
    legacy_auth_sign_ins,
    mfa_enforcement,
    mfa_registration,
    sam_password_grant,
    sign_ins_single_factor,
)
from checks.registry import CheckModule, UnknownCheckError, find_check

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
)

CHECK_IDS: tuple[str, ...] = tuple(check.METADATA.id for check in ALL_CHECKS)


def get_check(check_id: str) -> CheckModule:
    """The check with this id; `UnknownCheckError` (a KeyError) for an id not in the catalogue."""
    return find_check(ALL_CHECKS, check_id)


__all__ = ["ALL_CHECKS", "CHECK_IDS", "CheckModule", "UnknownCheckError", "get_check"]

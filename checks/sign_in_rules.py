"""Every sign-in rule, asked at once: what the collector calls on each sign-in it reads.

Sign-ins are collected incrementally and folded into per-subject aggregates as they stream in
(SPEC §6), so the rules must run at collection time - but they stay in the checks: each rule
is its check module's `classify_sign_in`, and this module only asks all three. A failed
sign-in matches nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from checks import legacy_auth_sign_ins, sam_password_grant, sign_ins_single_factor
from checks.sign_in_evidence import SignInMatch

_RULES: tuple[tuple[str, Callable[[Mapping[str, Any]], SignInMatch | None]], ...] = (
    (legacy_auth_sign_ins.METADATA.id, legacy_auth_sign_ins.classify_sign_in),
    (sign_ins_single_factor.METADATA.id, sign_ins_single_factor.classify_sign_in),
    (sam_password_grant.METADATA.id, sam_password_grant.classify_sign_in),
)

# The check ids whose evidence is sign-ins, in catalogue order.
SIGN_IN_RULE_IDS: tuple[str, ...] = tuple(rule_id for rule_id, _ in _RULES)


def classify(sign_in: Mapping[str, Any]) -> list[SignInMatch]:
    """Every rule `sign_in` (one beta signIn JSON object) matches; [] for failed sign-ins."""
    return [found for _, rule in _RULES if (found := rule(sign_in)) is not None]


__all__ = ["SIGN_IN_RULE_IDS", "SignInMatch", "classify"]

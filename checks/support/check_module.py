"""What the engine needs from a check module, and lookup over the catalogue.

A check is a module (Prowler's layout: one small module per check, metadata beside the logic)
exposing `METADATA` and a pure `execute`. `CheckModule` states that shape as a Protocol so the
engine, the catalogue and mypy agree on it without a base class.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from partnerguard.model import CheckContext, CheckMetadata, CheckOutcome, TenantSnapshot


class CheckModule(Protocol):
    METADATA: CheckMetadata

    def execute(self, snapshot: TenantSnapshot, context: CheckContext) -> CheckOutcome: ...


class UnknownCheckError(KeyError):
    """No check in the catalogue has this id."""

    def __init__(self, check_id: str) -> None:
        super().__init__(check_id)
        self.check_id = check_id


def find_check(checks: Sequence[CheckModule], check_id: str) -> CheckModule:
    for check in checks:
        if check.METADATA.id == check_id:
            return check
    raise UnknownCheckError(check_id)

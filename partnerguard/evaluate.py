"""Runs the check catalogue over a collected snapshot: pure, no I/O, one result per check.

The engine owns the rules that apply to every check alike, so no check repeats them:
- GDAP checks on a customer tenant are `not_assessed` (`scope:partner-only`);
- data a check needed but the collector could not read ends the check as `not_assessed` or
  `error` with the collector's reason (`DataUnavailable`);
- anything unexpected inside a check is that check's `error` (the run is then failed), never a
  crash of the whole scan and never a silent pass.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from checks import ALL_CHECKS, CheckModule
from checks.base import CheckContext, CheckOutcome, DataUnavailable, Status
from partnerguard.report import CheckResult
from partnerguard.snapshot import TenantSnapshot

log = logging.getLogger(__name__)


def evaluate(
    snapshot: TenantSnapshot, context: CheckContext, checks: Sequence[CheckModule] = ALL_CHECKS
) -> list[CheckResult]:
    return [CheckResult(check.METADATA, run_check(check, snapshot, context)) for check in checks]


def run_check(check: CheckModule, snapshot: TenantSnapshot, context: CheckContext) -> CheckOutcome:
    metadata = check.METADATA
    if metadata.partner_only and snapshot.role != "partner":
        return CheckOutcome.not_assessed(
            "Applies to the partner tenant only: GDAP relationships are granted from the partner's side.",
            "scope:partner-only",
        )
    try:
        return check.execute(snapshot, context)
    except DataUnavailable as missing:
        return CheckOutcome.unavailable(missing.unavailable)
    except Exception as error:
        # The check id and the exception type are safe to log; the message may quote tenant
        # data, so it goes to the report (escaped where rendered), not to the log line's format.
        log.exception("check %s failed on tenant %s", metadata.id, snapshot.tenant_id)
        return CheckOutcome(
            Status.ERROR,
            reason=f"The check failed unexpectedly: {type(error).__name__}: {error}"[:1000],
            reason_code=f"error:{type(error).__name__}",
        )

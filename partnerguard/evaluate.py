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
from datetime import datetime

from checks import ALL_CHECKS, CheckModule
from partnerguard.model import (
    CheckContext,
    CheckOutcome,
    CheckReport,
    CheckResult,
    DataUnavailable,
    Report,
    Status,
    TenantInfo,
    TenantSnapshot,
)

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


def failed_report(tenant: TenantInfo, run_id: str, started: datetime, finished: datetime, code: str) -> Report:
    """The report of a run that failed before any check could run (sign-in refused, storage
    down): every check of the catalogue, each `error` with the run's error code, so a failed scan
    still answers with a complete, visibly failed document (SPEC §2: every check id, every report)."""
    reason = f"The scan could not complete ({code}); nothing was assessed."
    return Report(
        tenant=tenant,
        run_id=run_id,
        started=started,
        finished=finished,
        checks=tuple(
            CheckReport(
                id=check.METADATA.id,
                title=check.METADATA.title,
                severity=check.METADATA.severity,
                status=Status.ERROR,
                reason=reason,
                reason_code=f"error:{code}",
                remediation=check.METADATA.remediation,
            )
            for check in ALL_CHECKS
        ),
    )

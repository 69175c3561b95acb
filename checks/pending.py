"""The outcome of a check whose data this version of PartnerGuard does not collect yet.

The catalogue lists every check of SPEC §1 with its final metadata, so reports always carry all
ids (SPEC §2). Until the collector gathers a check's data, the check says so plainly instead of
passing over data it never saw.
"""

from __future__ import annotations

from checks.base import CheckOutcome

NOT_COLLECTED_REASON = (
    "Not assessed by this version of PartnerGuard: the data this check needs is not collected yet."
)
NOT_COLLECTED_CODE = "unsupported"


def not_collected_yet() -> CheckOutcome:
    return CheckOutcome.not_assessed(NOT_COLLECTED_REASON, NOT_COLLECTED_CODE)

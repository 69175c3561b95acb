"""How much of a tenant one scan reads from Graph's paced reports APIs.

Production uses `ReadPlan()`: read only what can become a finding (filtered registration rows
between full roster reads; filtered sign-in streams when they cost fewer requests than the
window's events) and resume long reads across executions. The benchmark's baseline uses
`ReadPlan.full_reads()`, the reads of every scan before filtered reads existed, so the two are
measured by the same code in the same run. Nothing else should construct a non-default plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

SignInFilterMode = Literal["auto", "never", "always"]


@dataclass(frozen=True)
class ReadPlan:
    # A full read of userRegistrationDetails (the roster) at most this often; between full reads
    # only the rows Graph's `isMfaCapable eq false` filter returns. timedelta(0): every scan.
    registration_full_read_every: timedelta = timedelta(days=1)
    # "auto": filtered sign-in streams when they cost fewer requests than reading every event of
    # the window; "never": every event of the window (the baseline); "always": filtered (tests).
    sign_in_filters: SignInFilterMode = "auto"

    @classmethod
    def full_reads(cls) -> ReadPlan:
        """The reads every scan made before issue 16: the whole report, every sign-in."""
        return cls(registration_full_read_every=timedelta(0), sign_in_filters="never")


DEFAULT_READ_PLAN = ReadPlan()

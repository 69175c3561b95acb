"""A tenant's MFA coverage: the share of assessed users who can complete an MFA challenge.

Read from the report's `mfa.registration` check: its check-level evidence counts the users in
scope, the users it could assess and those of them who are MFA capable (each finding is one
assessed user who is not). Reports stored before those counts existed, and runs in which the
check could not assess anyone, have no coverage: it is shown as unknown, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

from partnerguard.model import Report, Status

MFA_REGISTRATION = "mfa.registration"


@dataclass(frozen=True)
class MfaCoverage:
    capable: int
    assessed: int
    in_scope: int

    @property
    def percent(self) -> float:
        """Capable / assessed users, 0-100; 100 when nobody was assessed (nothing uncovered)."""
        return 100.0 if self.assessed == 0 else 100.0 * self.capable / self.assessed

    @property
    def complete(self) -> bool:
        """Whether every user in scope was assessed (otherwise the figure is a lower bound of work)."""
        return self.assessed == self.in_scope


def mfa_coverage(report: Report) -> MfaCoverage | None:
    check = next((c for c in report.checks if c.id == MFA_REGISTRATION), None)
    if check is None or check.status is Status.ERROR:
        return None
    capable = _count(check.evidence.get("mfa_capable_users"))
    assessed = _count(check.evidence.get("assessed_users"))
    in_scope = _count(check.evidence.get("in_scope_users"))
    if capable is None or assessed is None or in_scope is None:
        return None
    if assessed == 0 and in_scope > 0:
        return None  # nobody could be judged: a percentage would claim knowledge the run lacks
    if not capable <= assessed <= in_scope:
        return None  # inconsistent figures (a hand-edited document): show nothing rather than nonsense
    return MfaCoverage(capable=capable, assessed=assessed, in_scope=in_scope)


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None

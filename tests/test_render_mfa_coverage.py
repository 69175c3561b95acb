"""MFA coverage from the report's mfa.registration evidence: shown when known, never guessed."""

from __future__ import annotations

import pytest

from partnerguard.model import Status
from partnerguard.render.mfa_coverage import MfaCoverage, mfa_coverage
from tests.report_builders import report


def coverage_of(evidence: dict[str, object], status: Status = Status.PASS) -> MfaCoverage | None:
    return mfa_coverage(report(statuses={"mfa.registration": status}, evidence={"mfa.registration": evidence}))


def test_coverage_is_capable_over_assessed_users() -> None:
    coverage = coverage_of({"in_scope_users": 50, "assessed_users": 40, "mfa_capable_users": 30})
    assert coverage is not None
    assert coverage.percent == 75.0 and not coverage.complete
    nobody = coverage_of({"in_scope_users": 0, "assessed_users": 0, "mfa_capable_users": 0})
    assert nobody is not None and nobody.percent == 100.0


@pytest.mark.parametrize(
    "evidence",
    [
        {},  # a report from before the counts existed
        {"unassessed_users": 12},
        {"in_scope_users": 5, "assessed_users": 0, "mfa_capable_users": 0},  # nobody judged
        {"in_scope_users": 5, "assessed_users": 6, "mfa_capable_users": 1},  # inconsistent
        {"in_scope_users": "5", "assessed_users": 5, "mfa_capable_users": 5},
        {"in_scope_users": True, "assessed_users": 1, "mfa_capable_users": 1},
    ],
)
def test_no_coverage_without_trustworthy_counts(evidence: dict[str, object]) -> None:
    assert coverage_of(evidence) is None


def test_no_coverage_when_the_check_errored() -> None:
    assert coverage_of({"in_scope_users": 5, "assessed_users": 5, "mfa_capable_users": 5}, Status.ERROR) is None

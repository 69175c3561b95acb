"""The finding lifecycle: how one run's findings change the states stored from earlier runs.

Pure: given the tenant's *active* lifecycle rows (state not `resolved`) and this run's results,
decide each current finding's state and which active rows this run resolves.

- a current finding under a valid exception is `excepted`;
- a current finding without an active row is `new` (also when it was resolved before: it came
  back), and so is one whose row was `excepted` and whose exception has lapsed (SPEC §1: it then
  alerts as if it were new);
- a current finding with an active row is `open`, keeping its `first_seen`;
- an active row of a check that was *assessed* in this run (pass or fail) whose subject is absent
  is `resolved`; a check that was not assessed or errored leaves its rows untouched, because
  not seeing a finding in data that could not be read proves nothing.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from checks.base import Finding
from partnerguard.report import CheckResult, FindingState
from partnerguard.storage.keys import finding_row_key

# The only properties the lifecycle reads from the findings table.
ACTIVE_PROPERTIES = ["RowKey", "check_id", "state", "first_seen", "first_run_id"]


@dataclass(frozen=True)
class ActiveFinding:
    row_key: str
    check_id: str
    state: str
    first_seen: datetime | None
    first_run_id: str | None


@dataclass(frozen=True)
class CurrentFinding:
    row_key: str
    check_id: str
    finding: Finding
    state: str
    first_seen: datetime
    first_run_id: str


@dataclass(frozen=True)
class LifecyclePlan:
    current: list[CurrentFinding]
    resolved: list[str]  # row keys of active rows this run resolves
    # check id -> subject id -> state, as `build_report` takes them
    states: dict[str, dict[str, str]]


def plan_lifecycle(
    results: Sequence[CheckResult],
    active: Mapping[str, ActiveFinding],
    excepted: Container[tuple[str, str]],
    run_id: str,
    seen_at: datetime,
) -> LifecyclePlan:
    current: list[CurrentFinding] = []
    states: dict[str, dict[str, str]] = {}
    for result in results:
        check_id = result.metadata.id
        check_states = states.setdefault(check_id, {})
        for finding in result.outcome.findings:
            row_key = finding_row_key(check_id, finding.subject_id)
            prior = active.get(row_key)
            if (check_id, finding.subject_id) in excepted:
                state = FindingState.EXCEPTED
            elif prior is None or prior.state == FindingState.EXCEPTED:
                state = FindingState.NEW
            else:
                state = FindingState.OPEN
            check_states[finding.subject_id] = state
            current.append(
                CurrentFinding(
                    row_key=row_key,
                    check_id=check_id,
                    finding=finding,
                    state=state,
                    first_seen=(prior.first_seen if prior and prior.first_seen else seen_at),
                    first_run_id=(prior.first_run_id if prior and prior.first_run_id else run_id),
                )
            )
    current_keys = {c.row_key for c in current}
    assessed = {r.metadata.id for r in results if r.assessed}
    resolved = [row_key for row_key, row in active.items() if row.check_id in assessed and row_key not in current_keys]
    return LifecyclePlan(current=current, resolved=resolved, states=states)

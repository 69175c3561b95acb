"""The finding lifecycle: how one run's findings change the states stored from earlier runs.

Pure: given the tenant's *active* lifecycle rows (state not `resolved`) and this run's results,
decide each current finding's state and which active rows this run resolves.

- a current finding under a valid exception is `excepted`;
- a current finding without an active row is `new` (also when it was resolved before: it came
  back), and so is one whose row was `excepted` and whose exception has lapsed (SPEC §1: it then
  alerts as if it were new);
- a current finding with an active row is `open`, keeping its `first_seen`; one that this very
  run made `new` (`new_in_run`: the run is repeated, a queue message redelivered after a crash
  before the run row was written) stays `new`, so its alert is still owed;
- an active row of a check that was *assessed* in this run (pass or fail) whose subject is absent
  is `resolved`; a check that was not assessed or errored leaves its rows untouched, because
  not seeing a finding in data that could not be read proves nothing. A row that this very run
  created in an attempt that did not complete (a crash before the run row) and that the repeat
  no longer sees is *discarded*: no completed run ever reported it, so it is neither told about
  as new nor as resolved. Likewise a row that such an attempt *resolved* (`reopened`: it is
  active again for the repeat, in the state it had before, `resolved_from`) is open again when
  the repeat sees it, resolved again when the repeat's assessed check does not, and *restored*
  to that state when the repeat could not assess its check.

Every resolution says why: a check whose findings are evidence seen in the sign-in look-back
window (`CheckMetadata.evidence_window`) resolves them as "no longer observed" — the sign-in aged
out of the window, nothing proves the behaviour stopped — every other check as "fixed".

A finding under an exception also carries the exception in its evidence (`exception`: id,
reason, accepted_by, expires), so no report hides that it was excepted (SPEC §1: "never silently
applied").
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Protocol

from partnerguard.model import CheckResult, Finding, FindingState
from partnerguard.storage.keys import finding_row_key
from partnerguard.storage.limits import cap_json_object

RESOLUTION_FIXED = "fixed"
RESOLUTION_NO_LONGER_OBSERVED = "no longer observed"
# The evidence key under which a finding names the exception it is excepted by.
EXCEPTION_EVIDENCE_KEY = "exception"

# The only properties the lifecycle reads from the findings table.
ACTIVE_PROPERTIES = ["RowKey", "check_id", "state", "first_seen", "first_run_id", "new_in_run", "last_notified"]


@dataclass(frozen=True)
class ActiveFinding:
    row_key: str
    check_id: str
    state: str
    first_seen: datetime | None
    first_run_id: str | None
    last_notified: datetime | None = None
    # The run that made the finding `new` (it appeared, came back, or its exception lapsed).
    new_in_run: str | None = None
    # Resolved by an earlier, incomplete attempt of the run being planned (a crash before the
    # run row): `state` is the one it had before that attempt (see the module docstring).
    reopened: bool = False


@dataclass(frozen=True)
class CurrentFinding:
    row_key: str
    check_id: str
    finding: Finding
    state: str
    first_seen: datetime
    first_run_id: str
    # Kept while the finding stays active (reminders count from it); a `new` finding has none,
    # since nothing has told about it yet. Only ever written for a `new` row (as nothing): an
    # active row keeps what storage holds, never a value read before an email updated it.
    last_notified: datetime | None = None
    # The run that made it `new` (this run when state is `new`).
    new_in_run: str | None = None
    # Its row was resolved by an incomplete attempt of this run: written whole again.
    reopened: bool = False


@dataclass(frozen=True)
class LifecyclePlan:
    current: list[CurrentFinding]
    resolved: list[str]  # row keys of active rows this run resolves
    # check id -> subject id -> state, as `build_report` takes them
    states: dict[str, dict[str, str]]
    # row key of each resolved row -> why it resolved (RESOLUTION_FIXED / _NO_LONGER_OBSERVED)
    resolutions: dict[str, str]
    # row keys of rows an earlier, incomplete attempt of this run created and the repeat does not
    # see: deleted (see the module docstring)
    discarded: list[str] = field(default_factory=list)
    # row key of each resolved row -> the state it had (a repeat of the run restores it)
    resolved_from: dict[str, str] = field(default_factory=dict)
    # row keys of rows an incomplete attempt of this run resolved and the repeat did not assess:
    # back to the state they had (`ActiveFinding.state`)
    restored: list[str] = field(default_factory=list)


class ExceptionEvidence(Protocol):
    """What the lifecycle needs of an exception: the evidence a finding under it carries."""

    def evidence(self) -> dict[str, Any]: ...


def with_exception_evidence(
    results: Sequence[CheckResult], exceptions: Mapping[tuple[str, str], ExceptionEvidence]
) -> list[CheckResult]:
    """`results` with every finding under an exception naming it in `evidence.exception`.

    The exception goes first so that evidence capping, which keeps entries in order, keeps it.
    """
    annotated: list[CheckResult] = []
    for result in results:
        check_id = result.metadata.id
        outcome = result.outcome
        if not any((check_id, f.subject_id) in exceptions for f in outcome.findings):
            annotated.append(result)
            continue
        findings = tuple(
            _with_exception(f, exceptions[check_id, f.subject_id]) if (check_id, f.subject_id) in exceptions else f
            for f in outcome.findings
        )
        annotated.append(CheckResult(result.metadata, replace(outcome, findings=findings)))
    return annotated


def _with_exception(finding: Finding, exception: ExceptionEvidence) -> Finding:
    rest = {k: v for k, v in finding.evidence.items() if k != EXCEPTION_EVIDENCE_KEY}
    return replace(finding, evidence=cap_json_object({EXCEPTION_EVIDENCE_KEY: exception.evidence(), **rest}))


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
            elif prior is None or prior.state == FindingState.EXCEPTED or _made_new_by(prior, run_id):
                # A row this very run made new is still new when the run is repeated (a queue
                # message redelivered after a crash between the lifecycle and the run row) —
                # also one whose exception lapsed, which keeps its first run.
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
                    last_notified=prior.last_notified if prior and state != FindingState.NEW else None,
                    new_in_run=run_id if state == FindingState.NEW else (prior.new_in_run if prior else None),
                    reopened=bool(prior and prior.reopened),
                )
            )
    current_keys = {c.row_key for c in current}
    assessed = {r.metadata.id: r.metadata.evidence_window for r in results if r.assessed}
    gone = [row_key for row_key, row in active.items() if row.check_id in assessed and row_key not in current_keys]
    discarded = [row_key for row_key in gone if _born_in(active[row_key], run_id)]
    resolved = [row_key for row_key in gone if row_key not in discarded]
    resolutions = {
        row_key: RESOLUTION_NO_LONGER_OBSERVED if assessed[active[row_key].check_id] else RESOLUTION_FIXED
        for row_key in resolved
    }
    gone_keys = set(gone)
    restored = [
        row_key
        for row_key, row in active.items()
        if row.reopened and row_key not in current_keys and row_key not in gone_keys
    ]
    return LifecyclePlan(
        current=current,
        resolved=resolved,
        states=states,
        resolutions=resolutions,
        discarded=discarded,
        resolved_from={row_key: active[row_key].state for row_key in resolved},
        restored=restored,
    )


def _born_in(prior: ActiveFinding, run_id: str) -> bool:
    """Whether an earlier attempt of the run `run_id` created the row (it was never reported)."""
    return prior.state == FindingState.NEW and prior.first_run_id == run_id and not prior.reopened


def _made_new_by(prior: ActiveFinding, run_id: str) -> bool:
    """Whether the active row was made `new` by the run `run_id` itself (rows written before
    `new_in_run` existed name only their first run)."""
    if prior.state != FindingState.NEW:
        return False
    return prior.new_in_run == run_id or (prior.new_in_run is None and prior.first_run_id == run_id)

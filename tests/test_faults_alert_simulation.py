"""The alert path under seeded random schedules (issue 15, What to build 5): the real worker,
delivery and outbox, two or three workers and the timer interleaved step by step, crashes between
any two steps, leases running out, lookups that lag or forget, 429, 5xx, 401, lost messages and
storage calls that fail (tests/alerts_simulation.py explains the model and the counting).

`make test` runs the first schedules; `make soak` runs 10,000 and writes their figures to
tests/alert_simulation_soak.json, which this module checks were produced by this code (the first
schedules' outcomes, fingerprinted, must come out the same) before it reports them.
"""

from __future__ import annotations

import json
from functools import cache

import pytest

from tests.alerts_simulation import (
    SEND_FAULTS,
    SOAK_RESULTS,
    SOAK_SCHEDULES,
    TEST_SCHEDULES,
    Figures,
    simulate,
)
from tests.reliability import record

CASE = (
    "alert delivery simulation, {schedules} seeded schedules: 2-3 workers and the timer interleaved, "
    "crashes between any two steps, leases running out, lookups lagging, 429, 5xx, 401, lost messages"
)
# Counted, but not faults the schedule injected: what the faults led to.
CONSEQUENCES = ("message poisoned by the host", "lookup answered 404 for an accepted operation")


@cache
def measured() -> Figures:
    return simulate(TEST_SCHEDULES)


def outcome(figures: Figures) -> str:
    per_alert = ", ".join(
        f"{emails} for {count:,}" + (" alerts" if n == 0 else "")
        for n, (emails, count) in enumerate(figures.emails_per_alert.items())
    )
    return (
        f"{figures.alerts:,} alerts in {figures.emails:,} emails; emails per alert: {per_alert}; "
        f"lost: {figures.lost}; failed visibly: {figures.failed_visibly}; recorded failed although ACS had "
        f"taken them: {figures.failed_but_delivered}; duplicate emails: "
        f"{figures.duplicates_inside_window} after ACS answered 404 for an operation it had accepted longer "
        f"than ALERT_SETTLE_SECONDS before, {figures.duplicates_outside_window} otherwise"
    )


def injected(figures: Figures) -> int:
    return sum(count for kind, count in figures.faults.items() if kind not in CONSEQUENCES)


def test_no_alert_is_lost_and_none_is_sent_twice_outside_the_documented_window() -> None:
    figures = measured()
    record(
        "faults",
        CASE.format(schedules=f"{figures.schedules:,}"),
        outcome(figures),
        tried=injected(figures),
        findings_lost=figures.lost,
        duplicate_emails=figures.duplicates_outside_window,
    )

    assert figures.schedules == TEST_SCHEDULES
    assert figures.unexpected == [], figures.unexpected[:5]
    assert figures.stuck == 0
    assert figures.lost == 0
    assert figures.duplicates_outside_window == 0


def test_the_schedules_meet_every_fault_they_are_meant_to() -> None:
    """A simulation that stopped injecting a fault would pass without proving anything."""
    faults = measured().faults
    wanted = [f"send {kind}" for kind, _ in SEND_FAULTS] + [
        "lookup 429",
        "lookup 503",
        "lookup 401",
        "worker crashed",
        "timer crashed",
        "lease ran out while held",
        "queue message lost",
        "lookup answered 404 for an accepted operation",
        "ACS forgot an accepted operation past ALERT_SETTLE_SECONDS",
        "storage call failed (before the table)",
        "storage call failed (after the table)",
    ]
    assert {kind: faults.get(kind, 0) for kind in wanted if not faults.get(kind)} == {}


def test_the_soak_figures_are_of_this_code() -> None:
    if not SOAK_RESULTS.exists():
        pytest.fail(f"{SOAK_RESULTS.name} is missing: run `make soak`")
    document = json.loads(SOAK_RESULTS.read_text(encoding="utf-8"))
    figures = Figures(**document["figures"])
    check = measured()
    record(
        "faults",
        CASE.format(schedules=f"{figures.schedules:,}") + " (`make soak`)",
        outcome(figures),
        tried=injected(figures),
        findings_lost=figures.lost,
        duplicate_emails=figures.duplicates_outside_window,
    )

    assert (document["test_schedules"], document["test_fingerprint"]) == (check.schedules, check.fingerprint), (
        f"the delivery or the simulation changed since {SOAK_RESULTS.name} was written: run `make soak`"
    )
    assert figures.schedules == SOAK_SCHEDULES
    assert figures.lost == 0 and figures.duplicates_outside_window == 0 and figures.stuck == 0
    assert figures.unexpected == []

"""The lower bound the benchmark holds scans against, from the simulator's table of limits."""

from __future__ import annotations

import pytest

from testbed.bench.bounds import lower_bound, window_bound
from testbed.bench.sizes import FULL
from testbed.bench.virtual_runner import derived_executions, steady_log_hours
from testbed.simulator.throttling import GRAPH_LIMITS, ApiClass, Scope

REPORTS_PER_TENANT = next(
    lim for lim in GRAPH_LIMITS if lim.api_class is ApiClass.IDENTITY_REPORTS and lim.scope is Scope.APP_PER_TENANT
)


def test_the_first_window_is_free_and_every_further_one_costs_its_length() -> None:
    assert window_bound(0, REPORTS_PER_TENANT) == 0.0
    assert window_bound(5, REPORTS_PER_TENANT) == 0.0
    assert window_bound(6, REPORTS_PER_TENANT) == 10.0
    assert window_bound(35, REPORTS_PER_TENANT) == 60.0


def test_one_tenant_is_bound_by_its_own_reports_window() -> None:
    bound = lower_bound({"identity-reports": {"t1": 35}, "directory": {"t1": 40}}, {"t1": 3000}, 0.05)
    assert bound.seconds == pytest.approx(60.05)
    assert "identity-reports per tenant: 35 units" in bound.binding


def test_many_tenants_are_bound_by_the_cross_tenant_window() -> None:
    admitted = {"identity-reports": {f"t{n}": 12 for n in range(200)}}
    bound = lower_bound(admitted, {f"t{n}": 1000 for n in range(200)}, 0.05)
    # 2,400 reports requests at 122 per 10 s: the last one no earlier than 19 windows in.
    assert bound.seconds == pytest.approx(190.05)
    assert "across tenants: 2400 units at 122 per 10 s" in bound.binding


def test_conditional_access_counts_per_tenant_and_the_directory_by_tier() -> None:
    bound = lower_bound({"conditional-access": {"t1": 3}}, {"t1": 10}, 0.0)
    assert bound.seconds == 2.0
    # 4,000 units in a tier-S tenant (3,500 per 10 s) need a second window; in tier L they fit one.
    assert lower_bound({"directory": {"t1": 4000}}, {"t1": 10}, 0.0).seconds == 10.0
    assert lower_bound({"directory": {"t1": 4000}}, {"t1": 900}, 0.0).seconds == 0.0


def test_no_request_no_bound_but_the_latency() -> None:
    assert lower_bound({}, {}, 0.05).seconds == 0.05


def test_a_baseline_first_scan_is_derived_from_its_pages_per_execution() -> None:
    # 22 million sign-ins are 22,000 pages of 1,000; at 540 pages an execution, 41 executions.
    assert derived_executions(22_000_000, 540) == 41
    assert derived_executions(540_000, 540) == 1
    assert derived_executions(540_001, 540) == 2  # one more page, one more execution
    assert derived_executions(0, 540) == 1
    with pytest.raises(ValueError):
        derived_executions(1000, 0)


def test_the_steady_state_log_reaches_back_past_the_warm_up_scan() -> None:
    # Warm-up, baseline, mode switch, measured: three 15-minute gaps before the measured scan,
    # plus the overlap every scan re-reads, plus slack.
    assert steady_log_hours(FULL) == pytest.approx(2.0 + 0.75 + 0.25)

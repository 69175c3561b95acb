"""How big each benchmark case is: the full run (`make bench`) and the toy one the tests use."""

from __future__ import annotations

from dataclasses import dataclass

from partnerguard.pipeline import SCAN_CONCURRENCY
from testbed.simulator.generate import INTERACTIVE_PER_USER_HOUR, NON_INTERACTIVE_PER_USER_HOUR


@dataclass(frozen=True)
class BenchSizes:
    # big_tenant: users, and how many pages of each collection both parsers get.
    big_tenant_users: int = 100_000
    model_sample_pages: int = 3
    # one_tenant: users, the sign-ins of a steady-state scan (6 h since the last one + the 2 h
    # overlap), latency per request, and the other app's Conditional Access requests per second.
    limited_tenant_users: int = 3_000
    signin_hours: float = 8.0
    interactive_per_user_hour: float = INTERACTIVE_PER_USER_HOUR
    non_interactive_per_user_hour: float = NON_INTERACTIVE_PER_USER_HOUR
    latency_s: float = 0.05
    neighbour_rate_per_s: float = 0.2
    # many_tenants: tenants x users, scans at once in the one worker process.
    tenants: int = 200
    users_per_tenant: int = 1_000
    scan_concurrency: int = SCAN_CONCURRENCY  # as in the Functions worker
    # storage: findings written batched, and how many are also written one by one and batched
    # on fresh tables. Not 100,000: Azurite's inserts get slower with every row a table holds
    # (measured: 25 transactions of 100 took 2.5 s into an empty table, 5.3 s after 7,500 rows),
    # so the 200,000 rows of 100,000 findings would take hours (docs/performance.md).
    findings: int = 10_000
    one_by_one_findings: int = 2_000
    # startup: fresh interpreters importing function_app (the median is reported).
    import_runs: int = 5
    # Issue 16's cases, on virtual time: the big tenants' users, the sign-in overlap every
    # steady-state scan re-reads (sign_in_collection.WATERMARK_OVERLAP), the first scan's log (a
    # week less an hour, so that its findings do not depend on the minutes between executions),
    # how many executions the production reads may take and how many of the baseline's are run
    # (the rest is derived), and the fleet.
    virtual_users: int = 100_000
    overlap_hours: float = 2.0
    first_scan_log_hours: float = 167.0
    first_scan_max_executions: int = 12
    first_scan_baseline_executions: int = 1
    fleet_tenants: int = 1_000
    fleet_users: int = 1_000


FULL = BenchSizes()

SMALL = BenchSizes(
    big_tenant_users=300,
    model_sample_pages=1,
    limited_tenant_users=40,
    signin_hours=1.0,
    tenants=3,
    users_per_tenant=30,
    scan_concurrency=3,
    findings=250,
    one_by_one_findings=50,
    import_runs=1,
    virtual_users=300,
    first_scan_log_hours=24.0,
    first_scan_max_executions=3,
    first_scan_baseline_executions=1,
    fleet_tenants=4,
    fleet_users=60,
)

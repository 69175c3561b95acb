"""`make bench` keeps working: the whole harness at toy sizes, against the session's Azurite.

No timing is asserted (the numbers come from `make bench` on a quiet machine); what is checked
is that every case ran the real pipeline to completion, that the scans found what the generated
tenants hold, and that docs/performance.md carries every measure, its target and the machine.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from testbed.azurite import AzuriteProcess
from testbed.bench.performance_page import render
from testbed.bench.runner import run_bench
from testbed.bench.sizes import SMALL

pytestmark = [pytest.mark.azurite, pytest.mark.simulator]

MEASURES = (
    "users/s evaluated, plain JSON vs msgraph-sdk models (same pages)",
    "peak RSS of the whole scan",
    "one tenant at Graph's limits: wall time / lower bound",
    "one tenant at Graph's limits: requests answered 429",
    "wall time / cross-tenant bound",
    "findings persisted: batched vs one by one",
    "`import function_app`: time",
    "`import function_app`: peak RSS",
    "compliant 300-user tenant, steady state: virtual time per scan at Graph's limits",
    "compliant 300-user tenant, steady state: registration report pages per scan",
    "non-compliant 300-user tenant, steady state: reports requests per scan, production vs baseline",
    "first scan of a 300-user tenant: executions needed (production reads)",
    "first scan of a 300-user tenant: executions needed (baseline, full reads)",
    "tenants × 60 users, steady state: round time",
)
TARGETS = ("≥ 50×", "< 400 MB", "≤ 1.25×", "< 1 %", "≤ 1.5×", "≥ 10×", "< 1 s", "< 150 MB")
# Issue 16's cases: the compliant tenant's time and registration pages, every case's peak RSS
# (four), the first scan's completion, the fleet's round time.
VIRTUAL_TARGETS = ("< 120 s", "≤ 10 pages", "completes", "< 900 s")


def test_the_small_benchmark_runs_every_case_and_writes_the_report(azurite: AzuriteProcess, tmp_path: Path) -> None:
    results = run_bench(SMALL, storage=azurite.connection_string, progress=lambda _: None)
    big = results.raw["big_tenant"]
    assert big["status"] == "succeeded"
    assert big["users"] == SMALL.big_tenant_users
    # generate_tenant makes 2 % of the users enabled members without a strong method.
    assert big["registration_findings"] == SMALL.big_tenant_users // 50
    assert big["sample_users"] == big["model_users"] == SMALL.big_tenant_users  # one page each
    for case, tenants in (("one_tenant", 1), ("many_tenants", SMALL.tenants)):
        figures = results.raw[case]
        assert figures["statuses"] == {"succeeded": tenants}, figures["errors"]
        # Every scan reads the registration report and both sign-in streams: reports requests.
        assert figures["requests_by_class"]["identity-reports"] >= 3 * tenants
        assert figures["bound_s"] >= SMALL.latency_s
    storage = results.raw["storage"]
    assert (storage["findings"], storage["sample"]) == (SMALL.findings, SMALL.one_by_one_findings)
    assert all(run["import_s"] > 0 for run in results.raw["startup"]["runs"])

    for case in ("steady_compliant", "steady_non_compliant", "fleet"):
        phases = results.raw[case]["phases"]
        for name, phase in phases.items():
            assert phase["statuses"] == {"succeeded": sum(phase["statuses"].values())}, (case, name, phase["errors"])
            # Virtual time is never less than real time (work takes the time it takes).
            assert phase["virtual_s"] >= phase["real_s"] - 0.5, (case, name)
        assert phases["new"]["reports_requests"] <= phases["baseline"]["reports_requests"]
    first = results.raw["first_scan"]
    # The production reads completed, and found exactly what the ground truth says.
    assert first["phases"]["new"]["unfinished"] == 0
    assert first["mismatched_checks"] == []
    assert first["ground_truth_counts"]["legacy-auth.sign-ins"] > 0
    assert first["ground_truth_counts"]["sign-ins.single-factor"] > 0

    document = render(results)
    for measure in MEASURES:
        assert measure in document, measure
    for target in TARGETS + VIRTUAL_TARGETS:
        assert target in document, target
    assert document.count("| met |") + document.count("| **not met** |") == len(TARGETS) + 8
    assert document.count("| context | — |") == 6
    assert document.count("| virtual |") == 12
    assert "### Virtual time" in document
    assert "## Machine" in document and "| cores |" in document
    assert "bound = latency + max over limits, scopes of floor((n - 1) / L) * W" in document

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
)
TARGETS = ("≥ 50×", "< 400 MB", "≤ 1.25×", "< 1 %", "≤ 1.5×", "≥ 10×", "< 1 s", "< 150 MB")


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

    document = render(results)
    for measure in MEASURES:
        assert measure in document, measure
    for target in TARGETS:
        assert target in document, target
    assert document.count("| met |") + document.count("| **not met** |") == len(TARGETS)
    assert document.count("| context | — |") == 2
    assert "## Machine" in document and "| cores |" in document
    assert "bound = latency + max over limits, scopes of floor((n - 1) / L) * W" in document

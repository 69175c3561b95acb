"""How pytest-xdist shares the suite among worker processes (`--dist loadfile`, the default set in
pyproject.toml; see docs/testing.md).

A work unit is a test file, so that a module's expensive fixtures (a simulator, an Azurite of its
own, a browser page built once) are built in one process only. The suites whose figures
docs/reliability.md states, and the test that compares the page with them, are one unit: the
ledger (`tests/reliability.py`) is kept in the process that runs them, and the page's test runs
after all of them there, as in a run without workers. Units start longest first (the ledger's
first), so that no long unit starts last and leaves the other workers idle.

This module imports pytest-xdist; conftest.py imports it only when xdist asks for a scheduler.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import PurePosixPath

import pytest
from xdist.scheduler import LoadScopeScheduling  # type: ignore[import-untyped]

from tests.reliability import ledger_module

LEDGER_UNIT = "the reliability ledger (tests/reliability.py)"

# The files that took 10 s or more with 4 workers on 2 cores, longest first (docs/testing.md): they
# start right after the ledger, so that none of them starts last and keeps the run waiting.
# Only the order depends on this list; a file left off still runs, after these.
SLOW_FILES = (
    "test_alerts_exactly_once.py",
    "test_sign_in_collection.py",
    "test_demo.py",
    "test_storage_store.py",
    "test_collect.py",
    "test_alerts_monitor.py",
    "test_bench_harness.py",
    "test_alerts_worker.py",
    "test_simulator_server.py",
    "test_graph_client.py",
    "test_report_html_browser.py",
    "test_scan_end_to_end.py",
    "test_infra_checkov.py",
    "test_simulator_conformance.py",
    "test_setup_identity.py",
    "test_registration_fallback.py",
    "test_functions_worker.py",
)


def unit_of(nodeid: str) -> str:
    """The work unit of a test: its file, or the ledger's unit."""
    path = nodeid.split("::", 1)[0]
    return LEDGER_UNIT if ledger_module(PurePosixPath(path).name) else path


def start_order(unit: str, tests: int) -> tuple[int, int, int]:
    """Sort key of a unit: the ledger's first, then SLOW_FILES in their order, then the rest by
    their number of tests, most first."""
    if unit == LEDGER_UNIT:
        return (0, 0, 0)
    name = PurePosixPath(unit).name
    if name in SLOW_FILES:
        return (1, SLOW_FILES.index(name), 0)
    return (2, 0, -tests)


class FileScheduling(LoadScopeScheduling):  # type: ignore[misc]
    """xdist's `loadfile` scheduling, with the ledger's files as one unit and the units started
    in `start_order`."""

    workqueue: OrderedDict[str, dict[str, bool]]  # unit -> {test: done}, built by xdist

    def __init__(self, config: pytest.Config, log: object = None) -> None:
        super().__init__(config, log)
        self._ordered = False

    def _split_scope(self, nodeid: str) -> str:
        return unit_of(nodeid)

    def _assign_work_unit(self, node: object) -> None:
        if not self._ordered:
            # The first assignment, once the queue of units is built: put it in start order.
            units = sorted(self.workqueue.items(), key=lambda item: start_order(item[0], len(item[1])))
            self.workqueue = OrderedDict(units)
            self._ordered = True
        super()._assign_work_unit(node)

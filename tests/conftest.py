"""Shared fixtures. The Azurite emulator runs once per session, on free ports in a temporary
directory; each storage test gets its own tables (a unique prefix), so tests stay isolated.

With pytest-xdist (on by default: `-n auto --dist loadfile` in pyproject.toml) a session is one
worker process: each worker runs its own Azurite, on ports Azurite picks. How many workers, and
which tests share one, is decided here and in tests/parallel.py; docs/testing.md explains why."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from partnerguard.storage import ScanStore
from testbed.azurite import AzuriteProcess

pytest_plugins = ["tests.cli_harness", "tests.reliability"]

# Workers per CPU core for `-n auto`. The tests mostly wait (on Azurite, the simulator's sockets,
# subprocesses, retry back-offs), so two per core keep the cores busy; measured in docs/testing.md.
WORKERS_PER_CORE = 2


def _test_files(config: pytest.Config) -> set[Path] | None:
    """The test files the command line names, or None when it names a directory (or nothing)."""
    files = set()
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::", 1)[0])
        if not path.is_file():
            return None
        files.add(path.resolve())
    return files or None


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: no workers for one file (`pytest tests/test_x.py` runs in process, as it always
    did), else WORKERS_PER_CORE per core; PYTEST_XDIST_AUTO_NUM_WORKERS overrides, as in xdist."""
    if "PYTEST_XDIST_AUTO_NUM_WORKERS" in os.environ:
        return int(os.environ["PYTEST_XDIST_AUTO_NUM_WORKERS"])
    files = _test_files(config)
    if files is not None and len(files) == 1:
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return WORKERS_PER_CORE * cores


# Variables GNU readline (imported by pytest) sets in the process's C environment, which workers
# inherit although `os.environ` never showed them: a worker would see COLUMNS=80 where an
# in-process run sees no COLUMNS, and render for a narrower terminal.
_CONTROLLER_ENVIRON = ("COLUMNS", "LINES")


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """(The controller, for each worker it starts.) Hand the worker our view of the environment."""
    node.workerinput["controller_environ"] = {name: os.environ.get(name) for name in _CONTROLLER_ENVIRON}


def pytest_configure(config: pytest.Config) -> None:
    """(A worker.) Run with the environment the controller sees, as an in-process run would."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return
    for name, value in workerinput.get("controller_environ", {}).items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile`: files as work units, the reliability ledger's suites as one (tests/parallel.py)."""
    if config.getvalue("dist") != "loadfile":
        return None
    from tests.parallel import FileScheduling

    return FileScheduling(config, log)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteProcess]:
    with AzuriteProcess(tmp_path_factory.mktemp("azurite")) as process:
        yield process


@pytest.fixture
def table_prefix() -> str:
    # Table names: letters and digits, starting with a letter, 3-63 characters.
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def scan_store(azurite: AzuriteProcess, table_prefix: str) -> Iterator[ScanStore]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    store = ScanStore(service, prefix=table_prefix)
    store.ensure_tables()
    yield store
    for table in (store.runs, store.findings, store.run_findings):
        service.delete_table(table.table_name)
    store.close()

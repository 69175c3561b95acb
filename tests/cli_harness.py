"""Fixtures for tests that drive `python -m partnerguard` in process: the bundled tenant
simulator, an Azurite of the test module's own (the CLI uses the production table names, so its
tables must not be shared with the rest of the session), and the environment pointing at both.
Registered for every test module by `pytest_plugins` in conftest.py; a module may override any.

The simulator enforces Graph's request counts over windows a thousand times shorter, and
`cli_env` paces the scans to them (`tests/graph_sim.py`): a scan takes a second instead of waiting
out Graph's ten-second report windows. A module whose own simulator enforces Graph's real windows
keeps the real pacer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from partnerguard import cli
from testbed.azurite import AzuriteProcess
from testbed.simulator import TenantSimulator, bundled_scenarios
from tests.graph_sim import fast_simulator, pace_to


@pytest.fixture(scope="module")
def simulator() -> Iterator[TenantSimulator]:
    with fast_simulator(bundled_scenarios()) as sim:
        yield sim


@pytest.fixture(scope="module")
def cli_storage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with AzuriteProcess(tmp_path_factory.mktemp("cli-azurite")) as process:
        yield process.connection_string


@pytest.fixture
def cli_env(simulator: TenantSimulator, cli_storage: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {**simulator.environment(), "PARTNERGUARD_STORAGE": cli_storage}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    pace_to(simulator, monkeypatch)
    return env


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the command line in process: (exit code, stdout, stderr)."""
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err

"""A real scan of every bundled scenario reports the method-strength metrics its ground truth says
(SPEC §2 `metrics`; issue 18: "figures appear in JSON, HTML and the dashboard and match the
simulator's ground truth").

The scan is the production pipeline against the simulator (azure-identity sign-in, msgraph
transport, collector, Table Storage on Azurite), run by the Functions app's services; the
figures are then read back the ways people read them: the HTTP API's run document (validated
against docs/openapi.yaml), `--format json` and `--format html` of the stored report, and the
dashboard. The expectations come from `testbed.simulator.ground_truth.expected_method_strength`,
which shares no code with the metrics module or the checks."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import azure.functions as func
import pytest

from partnerguard.model import Report, iso
from partnerguard.render.html_report import render_html_reports
from partnerguard.render.json_document import render_json
from testbed.azurite import AzuriteProcess
from testbed.simulator import TenantScenario, TenantSimulator, bundled_scenarios
from tests.functions_index import FUNCTIONS, Clock, FunctionsEnv, functions_env
from tests.graph_sim import fast_simulator, pace_to
from tests.method_strength_harness import figure_counts, strength_figures
from tests.openapi_validator import validate_response

pytestmark = pytest.mark.simulator

SCENARIOS = {scenario.display_name.split()[0]: scenario for scenario in bundled_scenarios()}


@pytest.fixture(scope="module")
def simulator() -> Iterator[TenantSimulator]:
    with fast_simulator(list(SCENARIOS.values())) as sim:
        yield sim


@pytest.fixture(scope="module")
def world(azurite: AzuriteProcess, simulator: TenantSimulator) -> Iterator[FunctionsEnv]:
    environment = {
        **simulator.environment(),
        "PARTNERGUARD_TENANTS": ",".join(scenario.tenant_id for scenario in SCENARIOS.values()),
    }
    yield from functions_env(azurite.connection_string, "ms" + uuid.uuid4().hex[:10], environment, clock=Clock())


@pytest.fixture(scope="module")
def reports(world: FunctionsEnv, simulator: TenantSimulator) -> dict[str, Report]:
    """Every bundled tenant scanned once, as the scan worker scans it: name -> its report."""
    scanned = {}
    with pytest.MonkeyPatch.context() as patch:
        pace_to(simulator, patch)
        for name, scenario in SCENARIOS.items():
            result = asyncio.run(world.services.scanner().scan(scenario.tenant_id))
            assert result.report is not None, result.error
            scanned[name] = result.report
    return scanned


def call(name: str, route_params: Mapping[str, str] | None = None) -> Any:
    """GET one indexed HTTP function; its answer checked against docs/openapi.yaml."""
    function = FUNCTIONS[name]
    url = "/api/" + function.get_trigger().route
    for key, value in (route_params or {}).items():
        url = url.replace("{" + key + "}", value)
    request = func.HttpRequest("GET", url, body=b"", route_params=dict(route_params or {}))
    response = function.get_user_function()(request)
    assert response.status_code == 200
    route = "/api/" + function.get_trigger().route
    return validate_response(route, "GET", 200, response.mimetype, response.headers, response.get_body())


def expected(scenario: TenantScenario, report: Report) -> dict[str, Any]:
    # A scan reads the registration report whole, or the fallback's methods, at the scan's start.
    return {**scenario.expected_method_strength(), "as_of": iso(report.started)}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_scans_metrics_are_the_ground_truth(reports: dict[str, Report], name: str) -> None:
    report = reports[name]
    assert report.metrics is not None
    assert report.metrics.to_document() == expected(SCENARIOS[name], report)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_api_and_the_json_report_read_the_metrics_back_from_storage(
    world: FunctionsEnv, reports: dict[str, Report], name: str
) -> None:
    scenario, report = SCENARIOS[name], reports[name]
    run = call("getScan", {"tenantId": scenario.tenant_id, "runId": report.run_id})
    assert run["report"]["metrics"] == expected(scenario, report)
    stored = world.services.store.latest_report(scenario.tenant_id)
    assert stored is not None and stored.run_id == report.run_id
    assert json.loads(render_json([stored], many=False))["metrics"] == expected(scenario, report)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_html_report_shows_the_ground_truth(world: FunctionsEnv, reports: dict[str, Report], name: str) -> None:
    scenario = SCENARIOS[name]
    stored = world.services.store.latest_report(scenario.tenant_id)
    assert stored is not None
    figures = strength_figures(render_html_reports([stored], None, stored.finished))
    assert figure_counts(figures[scenario.tenant_id]) == scenario.expected_method_strength()


def test_the_dashboard_shows_every_tenants_ground_truth(reports: dict[str, Report]) -> None:
    figures = strength_figures(call("dashboard"))
    assert set(figures) == {scenario.tenant_id for scenario in SCENARIOS.values()}
    for name, scenario in SCENARIOS.items():
        figure = figures[scenario.tenant_id]
        assert figure_counts(figure) == scenario.expected_method_strength(), name
        as_of = f"as of {reports[name].started:%Y-%m-%d %H:%M} UTC"
        assert any(as_of in note for note in figure.notes), (name, figure.notes)

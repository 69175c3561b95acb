"""Bad input generated from docs/openapi.yaml by schemathesis, sent to every route of the real app.

Each route gets inputs that fit the document (positive) and inputs that break it (negative: wrong
types, out-of-range numbers, unknown parameters, strings of any Unicode, bodies that are not
`{}`), through the Functions app as the host runs it (tests/wsgi_functions.py: routing, the
function key, azure.functions requests) over Azurite and one real scan of the partner tenant.
Every answer must be documented for its route, status, content type, headers and body, and never
a 5xx; a negative input must be refused with a 4xx. A positive input may only be refused for what
the document cannot express: a continuation token this app did not sign.

Generation is derandomized with a fixed number of examples per route and mode, so the number of
inputs tried, recorded in the reliability ledger, is the same on every run.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
import schemathesis
from azure.functions.queue import QueueMessage
from hypothesis import HealthCheck, given, settings
from schemathesis import checks
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode
from werkzeug.test import Client

from partnerguard.queues.names import SCAN_QUEUE
from testbed.azurite import AzuriteProcess
from testbed.simulator import TenantSimulator, bundled_scenarios
from tests.functions_index import FUNCTIONS, Clock, FunctionsEnv, functions_env
from tests.openapi_validator import OPENAPI
from tests.reliability import record
from tests.wsgi_functions import FUNCTION_KEY_HEADER, FunctionsWsgiApp

PARTNER = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
FUNCTION_KEY = "bad-input-function-key-" + "0" * 16
KEY_HEADER = {FUNCTION_KEY_HEADER: FUNCTION_KEY}

# Examples per (route, mode): enough to reach every parameter and body branch, few enough that
# the whole module stays within seconds on two cores.
EXAMPLES = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 60}
BASE_CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_headers_conformance,
    checks.response_schema_conformance,
]
MODE_CHECKS = {
    GenerationMode.POSITIVE: BASE_CHECKS,
    GenerationMode.NEGATIVE: [*BASE_CHECKS, checks.negative_data_rejection],
}
OUTCOMES = {
    GenerationMode.POSITIVE: "answered as docs/openapi.yaml documents, never 5xx",
    GenerationMode.NEGATIVE: "refused with a documented 4xx (JSON error), never 5xx",
}


@cache
def api_schema() -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_path(OPENAPI)


def operation(label: str) -> schemathesis.APIOperation[Any, Any, Any, Any]:
    found = api_schema().find_operation_by_label(label)
    assert found is not None, label
    return found


def _has_inputs(label: str) -> bool:
    """Whether a route takes anything to break besides the function key: a route value, a query
    parameter or a body (schemathesis lists the key's `code` among the query parameters)."""
    found = operation(label)
    query = [p for p in found.query if "x-original-security-type" not in p.definition]
    return bool(list(found.path_parameters) or query or found.body)


@dataclass(frozen=True)
class Generated:
    """One run of generated input: a route, a mode, and whether the tenant is the scanned one."""

    label: str
    mode: GenerationMode
    scanned_tenant: bool = False

    @property
    def examples(self) -> int:
        # A route without inputs varies only in its function key: a handful says all there is.
        return EXAMPLES[self.mode] if _has_inputs(self.label) else 5

    @property
    def case_name(self) -> str:
        where = ", the scanned tenant" if self.scanned_tenant else ""
        return f"{self.label}: schemathesis {self.mode.value} inputs{where}"

    def __str__(self) -> str:
        return f"{self.label} {self.mode.value}" + (" scanned" if self.scanned_tenant else "")


POSITIVE, NEGATIVE = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
LABELS = [result.ok().label for result in api_schema().get_all_operations() if isinstance(result, Ok)]
GENERATED = [
    # Every route with inputs of every kind, mostly for tenants that are not monitored...
    *(
        Generated(label, mode)
        for label in LABELS
        for mode in (POSITIVE, NEGATIVE)
        if mode is POSITIVE or _has_inputs(label)
    ),
    # ...and the tenant-scoped routes on the scanned tenant, so reads return a real run and real
    # findings (checked against the schema) and a POST meets the scan it queued (429).
    Generated("POST /api/tenants/{tenantId}/scans", POSITIVE, scanned_tenant=True),
    Generated("GET /api/tenants/{tenantId}/scans/{runId}", POSITIVE, scanned_tenant=True),
    Generated("GET /api/tenants/{tenantId}/findings", POSITIVE, scanned_tenant=True),
    Generated("GET /api/tenants/{tenantId}/findings", NEGATIVE, scanned_tenant=True),
]


@dataclass
class World:
    env: FunctionsEnv
    app: FunctionsWsgiApp
    run_id: str  # the scanned partner run


@pytest.fixture(scope="module")
def simulator() -> Iterator[TenantSimulator]:
    with TenantSimulator(bundled_scenarios()) as sim:
        yield sim


@pytest.fixture(scope="module")
def world(azurite: AzuriteProcess, simulator: TenantSimulator) -> Iterator[World]:
    prefix = "bad" + uuid.uuid4().hex[:10]
    app = FunctionsWsgiApp(FUNCTION_KEY)
    for env in functions_env(azurite.connection_string, prefix, simulator.environment(), clock=Clock()):
        yield World(env, app, _scan_partner(env, app))


def _scan_partner(env: FunctionsEnv, app: FunctionsWsgiApp) -> str:
    """One real scan through the API and the worker, so reads return a real run and findings."""
    answer = Client(app).post(f"/api/tenants/{PARTNER}/scans", headers=KEY_HEADER)
    assert answer.status_code == 202, answer.get_data(as_text=True)
    for message in env.receive(SCAN_QUEUE):
        host_message = QueueMessage(id=message.id, body=message.content, dequeue_count=1)  # type: ignore[no-untyped-call]
        asyncio.run(FUNCTIONS["scan_worker"].get_user_function()(host_message))
    run_id = str(json.loads(answer.get_data())["run_id"])
    run = env.services.store.get_run(PARTNER, run_id)
    assert run is not None and run.status == "succeeded"
    return run_id


def _error_code(response: schemathesis.Response) -> str | None:
    try:
        document = json.loads(response.content)
    except ValueError:
        return None
    error = document.get("error") if isinstance(document, dict) else None
    return error.get("code") if isinstance(error, dict) else None


@pytest.mark.parametrize("generated", GENERATED, ids=str)
def test_every_route_answers_generated_input_as_documented(world: World, generated: Generated) -> None:
    mode = generated.mode
    fixed = {"tenantId": PARTNER, "runId": world.run_id} if generated.scanned_tenant else {}
    found = operation(generated.label)
    path_parameters = {name: value for name, value in fixed.items() if name in found.path_parameters}
    strategy = found.as_strategy(generation_mode=mode, headers=KEY_HEADER, path_parameters=path_parameters or None)
    tried = 0

    @settings(
        max_examples=generated.examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def one(case: schemathesis.Case[Any]) -> None:
        nonlocal tried
        response = case.call(app=world.app, headers=KEY_HEADER)
        case.validate_response(response, checks=MODE_CHECKS[mode], headers=KEY_HEADER)
        if response.status_code == 400:
            code = _error_code(response)
            # Every refusal names the input that was wrong (`invalid_tenant_id`, `invalid_top`, ...).
            assert code is not None and code.startswith("invalid_"), case.as_curl_command()
            if mode is POSITIVE:
                # The one thing the document cannot say: a continuation token must be one we signed.
                assert code == "invalid_continuation", case.as_curl_command()
        tried += 1

    one()
    assert tried > 0
    record("bad input", generated.case_name, OUTCOMES[mode], tried=tried)

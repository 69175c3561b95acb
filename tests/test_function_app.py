"""The Functions app as the host sees it: bindings from app.get_functions(), and calls of the
decorated functions with azure.functions request objects (Core Tools cannot be installed here)."""

from __future__ import annotations

import json
from typing import Any

import azure.functions as func

from tests.functions_index import FUNCTIONS


def _functions() -> dict[str, Any]:
    # The library indexes an app once per process: every module shares tests/functions_index.py.
    return FUNCTIONS


def test_health_binding_is_anonymous_get() -> None:
    health = _functions()["health"]
    trigger = health.get_trigger()
    binding = json.loads(health.get_function_json())
    http = next(b for b in binding["bindings"] if b["type"] == "httpTrigger")
    assert trigger.route == "health"
    assert http["authLevel"].lower() == "anonymous"
    assert http["methods"] == ["GET"]


def test_health_answers_liveness_only() -> None:
    request = func.HttpRequest(method="GET", url="/api/health", body=b"", headers={})
    response = _functions()["health"].get_user_function()(request)
    assert response.status_code == 200
    body = json.loads(response.get_body())
    assert body["status"] == "ok"
    assert set(body) == {"status", "version"}


def test_alert_worker_binding_is_the_alert_queue_on_the_storage_connection() -> None:
    binding = json.loads(_functions()["alert_worker"].get_function_json())
    (trigger,) = binding["bindings"]
    assert trigger == {
        "direction": "IN",
        "type": "queueTrigger",
        "name": "message",
        "queueName": "partnerguard-alerts",
        "connection": "PARTNERGUARD_STORAGE",
    }

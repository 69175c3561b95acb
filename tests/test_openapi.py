"""docs/openapi.yaml describes exactly the HTTP API the app registers (SPEC §4): the same routes,
methods, auth and operation names both ways, valid schemas, and the SPEC's field lists. That
every response the API produces validates against it is checked response by response in
tests/test_http_api.py (through tests/openapi_validator.py); the validator itself is tested here.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
import pytest

from checks import CHECK_IDS
from tests.functions_index import FUNCTIONS
from tests.openapi_validator import document, operation, schema_validator, to_json_schema, validate_response

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def _app_routes() -> dict[tuple[str, str], tuple[str, str]]:
    """(path, method) -> (function name, auth level) of every HTTP function the app registers."""
    routes = {}
    for name, function in FUNCTIONS.items():
        bindings = json.loads(function.get_function_json())["bindings"]
        trigger = next((b for b in bindings if b["type"] == "httpTrigger"), None)
        if trigger is None:
            continue
        for method in trigger["methods"]:
            routes[("/api/" + trigger["route"], method.lower())] = (name, trigger["authLevel"].lower())
    return routes


def _documented_routes() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (path, method): spec
        for path, item in document()["paths"].items()
        for method, spec in item.items()
        if method in METHODS
    }


def test_every_app_route_is_documented_and_every_documented_route_exists() -> None:
    app, documented = _app_routes(), _documented_routes()
    assert set(app) == set(documented)
    for key, (name, auth) in app.items():
        spec = documented[key]
        # Function names are the operationIds, so logs, metrics and the document use one name.
        assert spec["operationId"] == name, key
        anonymous = spec.get("security", document()["security"]) == []
        assert anonymous == (auth == "anonymous"), f"{key}: documented security does not match authLevel {auth}"


def test_path_parameters_match_the_route_templates() -> None:
    for path, item in document()["paths"].items():
        in_template = set(re.findall(r"\{(\w+)\}", path))
        declared = set()
        for parameter in item.get("parameters", []):
            resolved = _resolve(parameter)
            if resolved["in"] == "path":
                assert resolved["required"] is True
                declared.add(resolved["name"])
        assert declared == in_template, path


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    target: Any = document()
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return _resolve(target)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_every_reference_resolves_and_every_schema_is_valid_json_schema() -> None:
    for ref in _refs(document()):
        _resolve({"$ref": ref})
    for name, schema in document()["components"]["schemas"].items():
        schema_validator(schema)  # raises SchemaError for an invalid schema
        assert isinstance(to_json_schema(schema), dict), name


def test_the_check_id_enum_is_the_catalogue() -> None:
    assert document()["components"]["schemas"]["CheckId"]["enum"] == list(CHECK_IDS)


def _required(schema_name: str) -> set[str]:
    return set(document()["components"]["schemas"][schema_name]["required"])


def test_documents_carry_the_fields_spec_section_4_names() -> None:
    assert _required("ScanAccepted") == {"run_id", "status", "status_url"}
    assert _required("ScanStatus") == {
        "run_id", "tenant_id", "status", "queued_at", "started", "finished", "error", "alert", "report",
    }  # fmt: skip
    assert _required("ScanConflict") >= {"error", "run_id", "status_url"}
    assert _required("FindingsPage") == {"tenant_id", "findings", "next"}
    assert _required("Finding") >= {"check_id", "state", "first_seen", "last_seen", "resolved_at"}
    assert _required("Tenant") >= {"id", "name", "role", "consent", "last_run"}
    tenant = document()["components"]["schemas"]["Tenant"]["properties"]
    assert tenant["consent"]["enum"] == ["ok", "missing", "failing"]
    assert set(tenant["last_run"]["required"]) == {"run_id", "status", "finished", "summary"}
    findings = operation("/api/tenants/{tenantId}/findings", "get")
    query = {p["name"]: p for p in findings["parameters"]}
    assert set(query) == {"state", "check", "top", "continuation"}
    assert query["state"]["schema"]["enum"] == ["active", "resolved", "all"]
    assert query["top"]["schema"]["maximum"] == 1000
    assert document()["components"]["schemas"]["RunId"]["pattern"] == "^[0-9A-Za-z-]{1,64}$"


def test_every_error_answer_is_the_json_error_document() -> None:
    for (path, method), spec in _documented_routes().items():
        for status, response in spec["responses"].items():
            if status in ("400", "404", "429", "500"):
                content = _resolve(response)["content"]
                assert list(content) == ["application/json"], (path, method, status)
                schema = content["application/json"]["schema"]
                target = _resolve(schema)
                assert "error" in target["required"], (path, method, status)
        if path != "/api/health":
            assert "400" in spec["responses"] or path in ("/api/tenants", "/api/dashboard"), (path, method)
            assert "500" in spec["responses"], (path, method)


# -- the validator the HTTP API tests rely on ---------------------------------------------------

ACCEPTED = {"run_id": "8204271162999-55ed284339", "status": "queued"}
URL = "/api/tenants/7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73/scans/8204271162999-55ed284339"


def _check(
    status: int, body: Any, headers: dict[str, str] | None = None, content_type: str = "application/json"
) -> Any:
    return validate_response(
        "/api/tenants/{tenantId}/scans",
        "POST",
        status,
        content_type,
        headers if headers is not None else {"Location": URL},
        json.dumps(body).encode(),
    )


def test_the_validator_accepts_a_documented_answer() -> None:
    _check(202, {**ACCEPTED, "status_url": URL})


@pytest.mark.parametrize(
    ("status", "body", "headers", "content_type"),
    [
        (202, ACCEPTED, None, "application/json"),  # status_url missing
        (202, {**ACCEPTED, "status_url": "https://example.com" + URL}, None, "application/json"),  # not relative
        (202, {**ACCEPTED, "status_url": URL, "extra": 1}, None, "application/json"),  # undocumented field
        (202, {**ACCEPTED, "status_url": URL}, {}, "application/json"),  # Location header missing
        (202, {**ACCEPTED, "status_url": URL}, None, "text/plain"),  # undocumented content type
        (201, {**ACCEPTED, "status_url": URL}, None, "application/json"),  # undocumented status
        (429, {"error": {"code": "x", "message": "y"}, "run_id": "r", "status": "queued", "status_url": URL}, None,
         "application/json"),  # no Retry-After
        (400, {"error": {"code": "x"}}, None, "application/json"),  # message missing
    ],
)  # fmt: skip
def test_the_validator_rejects_what_the_document_does_not_allow(
    status: int, body: Any, headers: dict[str, str] | None, content_type: str
) -> None:
    with pytest.raises((AssertionError, KeyError)):
        _check(status, body, headers, content_type)


def test_nullable_allows_null_only_where_documented() -> None:
    status = document()["components"]["schemas"]["ScanStatus"]
    validator = schema_validator(status)
    base = {
        "run_id": "r1",
        "tenant_id": "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73",
        "status": "queued",
        "queued_at": "2025-01-31T06:00:05Z",
        "started": None,
        "finished": None,
        "error": None,
        "alert": {"status": "none", "error": None},
        "report": None,
    }
    assert list(validator.iter_errors(base)) == []
    for field in ("run_id", "tenant_id", "status", "alert"):
        assert list(validator.iter_errors({**base, field: None})), field
    assert list(validator.iter_errors({**base, "queued_at": "yesterday"}))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(None, to_json_schema({"type": "string"}))

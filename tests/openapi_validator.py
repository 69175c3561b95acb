"""docs/openapi.yaml as a validator: every response the HTTP API tests produce is checked against
the operation's documented status, content type, headers and body schema.

OpenAPI 3.0 schemas are JSON Schema with differences; two matter here and are translated:
`nullable: true` (3.0's way of allowing null) becomes `anyOf: [<schema>, {"type": "null"}]`,
and `$ref`s to `#/components/schemas/...` are resolved within the document itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parent.parent
OPENAPI = ROOT / "docs" / "openapi.yaml"


@cache
def document() -> dict[str, Any]:
    loaded = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def to_json_schema(schema: Any) -> Any:
    """An OpenAPI 3.0 schema object as JSON Schema (2020-12)."""
    if isinstance(schema, list):
        return [to_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {
        key: (
            {name: to_json_schema(sub) for name, sub in value.items()} if key == "properties" else to_json_schema(value)
        )
        for key, value in schema.items()
        if key not in ("nullable", "example", "description")
    }
    if schema.get("nullable") is True:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


@cache
def _components() -> dict[str, Any]:
    return {"schemas": {name: to_json_schema(s) for name, s in document()["components"]["schemas"].items()}}


def schema_validator(schema: Mapping[str, Any]) -> jsonschema.Draft202012Validator:
    root = {**to_json_schema(dict(schema)), "components": _components()}
    jsonschema.Draft202012Validator.check_schema(root)
    return jsonschema.Draft202012Validator(root)


def _resolve(node: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    assert isinstance(ref, str) and ref.startswith("#/"), ref
    target: Any = document()
    for part in ref[2:].split("/"):
        target = target[part]
    return _resolve(target)


def operation(path: str, method: str) -> Mapping[str, Any]:
    paths = document()["paths"]
    assert path in paths, f"{path} is not in docs/openapi.yaml"
    operations = paths[path]
    assert method.lower() in operations, f"{method} {path} is not in docs/openapi.yaml"
    result = operations[method.lower()]
    assert isinstance(result, dict)
    return result


def validate_response(
    path: str, method: str, status: int, content_type: str | None, headers: Mapping[str, str], body: bytes
) -> Any:
    """Check one response against the document; returns the parsed JSON body (or the text)."""
    responses = operation(path, method)["responses"]
    assert str(status) in responses, f"{method} {path} answered {status}, which the document does not list"
    response = _resolve(responses[str(status)])
    for name in response.get("headers", {}):
        assert name in headers, f"{method} {path} {status}: documented header {name} is missing"
    if status == 429:
        assert int(headers["Retry-After"]) >= 1
    content = response.get("content")
    if not content:
        assert not body, f"{method} {path} {status} has a body the document does not describe"
        return None
    media = (content_type or "").split(";", 1)[0].strip()
    assert media in content, f"{method} {path} {status}: content type {content_type!r} not documented ({list(content)})"
    schema = content[media]["schema"]
    if media == "application/json":
        parsed = json.loads(body)
        errors = sorted(schema_validator(schema).iter_errors(parsed), key=lambda e: list(e.absolute_path))
        assert not errors, f"{method} {path} {status}: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5]
        )
        return parsed
    text = body.decode("utf-8")
    errors = list(schema_validator(schema).iter_errors(text))
    assert not errors
    return text

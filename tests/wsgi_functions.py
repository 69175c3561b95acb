"""The Functions app's HTTP triggers as a WSGI application, for tools that speak WSGI (schemathesis).

It does what the Functions host does in front of a Python HTTP function, and nothing more:

- matches the raw request path against `/api/<route>` of every indexed HTTP trigger, each
  `{name}` one path segment, percent-decoded after matching (so `%2F` stays inside the value, as
  in ASP.NET Core routing); no route, or a method the trigger does not list, is the host's own
  bodiless 404 / 405;
- answers 401 without a body when a `function`-level route gets no valid function key, in the
  `x-functions-key` header or the `code` query parameter (the function still sees `code`);
- hands the function an `azure.functions.HttpRequest` with the route values, the query (the last
  value of a repeated parameter), the headers and the body, and turns its `HttpResponse` into the
  WSGI answer.

An exception raised by a function is not caught: where the host would answer 500, the caller sees
the exception, which is the clearer failure in a test.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

import azure.functions as func

from tests.functions_index import FUNCTIONS

StartResponse = Callable[[str, list[tuple[str, str]]], Any]

ROUTE_PREFIX = "/api/"
FUNCTION_KEY_HEADER = "x-functions-key"
FUNCTION_KEY_QUERY = "code"


@dataclass(frozen=True)
class HttpRoute:
    name: str  # the function's name, the operationId in docs/openapi.yaml
    template: str  # "tenants/{tenantId}/scans"
    methods: frozenset[str]
    needs_key: bool
    pattern: re.Pattern[str]

    def match(self, raw_path: str) -> dict[str, str] | None:
        found = self.pattern.fullmatch(raw_path)
        if found is None:
            return None
        return {name: unquote(value, errors="replace") for name, value in found.groupdict().items()}


def _route_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", template)
    # Odd positions are parameter names, even positions literal text.
    regex = "".join(f"(?P<{part}>[^/]+)" if index % 2 else re.escape(part) for index, part in enumerate(parts))
    return re.compile(re.escape(ROUTE_PREFIX) + regex)


def http_routes() -> list[HttpRoute]:
    """Every indexed HTTP trigger, as the host would route to it."""
    routes = []
    for name, function in FUNCTIONS.items():
        trigger = function.get_trigger()
        if getattr(trigger, "route", None) is None or not hasattr(trigger, "methods"):
            continue
        methods = frozenset(str(getattr(m, "value", m)).upper() for m in trigger.methods)
        level = str(getattr(trigger.auth_level, "value", trigger.auth_level)).lower()
        routes.append(HttpRoute(name, trigger.route, methods, level != "anonymous", _route_pattern(trigger.route)))
    return routes


def _raw_path(environ: Mapping[str, Any]) -> str:
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if isinstance(raw, str) and raw:
        return raw.split("?", 1)[0]
    # PEP 3333: PATH_INFO is the decoded path as latin-1; quote it back (keeping "/").
    path_info = str(environ.get("PATH_INFO", "")).encode("latin-1").decode("utf-8", "replace")
    return quote(path_info, safe="/")


def _headers(environ: Mapping[str, Any]) -> dict[str, str]:
    headers = {
        key[5:].replace("_", "-").lower(): str(value) for key, value in environ.items() if key.startswith("HTTP_")
    }
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = str(environ[key])
    return headers


def _body(environ: Mapping[str, Any]) -> bytes:
    length = str(environ.get("CONTENT_LENGTH") or "0")
    size = int(length) if length.isdigit() else 0
    stream = environ.get("wsgi.input")
    return stream.read(size) if stream is not None and size else b""


def _answer(
    start_response: StartResponse, status: int, body: bytes = b"", headers: Iterable[tuple[str, str]] = ()
) -> list[bytes]:
    start_response(f"{status} {HTTPStatus(status).phrase}", [*headers, ("Content-Length", str(len(body)))])
    return [body]


class FunctionsWsgiApp:
    """A WSGI callable over the indexed HTTP functions; `function_key` is the key the host expects."""

    def __init__(self, function_key: str) -> None:
        self.function_key = function_key
        self.routes = http_routes()

    def _authorised(self, headers: Mapping[str, str], params: Mapping[str, str]) -> bool:
        presented = headers.get(FUNCTION_KEY_HEADER) or params.get(FUNCTION_KEY_QUERY) or ""
        return hmac.compare_digest(presented.encode("utf-8", "replace"), self.function_key.encode("utf-8"))

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        raw_path = _raw_path(environ)
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        matched = [(route, values) for route in self.routes if (values := route.match(raw_path)) is not None]
        if not matched:
            return _answer(start_response, 404)
        allowed = [(route, values) for route, values in matched if method in route.methods]
        if not allowed:
            return _answer(start_response, 405)
        route, route_params = allowed[0]
        params = dict(parse_qsl(str(environ.get("QUERY_STRING", "")), keep_blank_values=True))
        headers = _headers(environ)
        if route.needs_key and not self._authorised(headers, params):
            return _answer(start_response, 401)
        request = func.HttpRequest(
            method,
            f"http://localhost{raw_path}",
            headers=headers,
            params=params,
            route_params=route_params,
            body=_body(environ),
        )
        response = FUNCTIONS[route.name].get_user_function()(request)
        assert isinstance(response, func.HttpResponse), f"{route.name} returned {type(response).__name__}"
        content_type = response.mimetype + (f"; charset={response.charset}" if response.charset else "")
        response_headers = [
            (k, v) for k, v in response.headers.items() if k.lower() not in ("content-type", "content-length")
        ]
        return _answer(
            start_response,
            response.status_code,
            response.get_body(),
            [("Content-Type", content_type), *response_headers],
        )

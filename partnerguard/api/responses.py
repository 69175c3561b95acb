"""JSON responses and errors of the HTTP API (SPEC §4).

Every error is `{"error": {"code", "message"}}` with `application/json`. Messages are written
here, never taken from an exception: no exception text, stack or secret reaches a response.
Request values a caller sent are never echoed back either (they are hostile until validated).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import azure.functions as func

JSON = "application/json"

# Sent with every API response: the documents are per-tenant security data, so nothing may
# cache them, and a browser must not sniff a JSON body into something it renders.
COMMON_HEADERS: Mapping[str, str] = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}


class ApiError(Exception):
    """An answer other than success, raised anywhere in a handler and rendered by the route."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}")
        self.status = status
        self.code = code
        self.message = message
        # Fields beside "error" in the body (the 429 of a duplicate scan names the run).
        self.extra = dict(extra or {})
        self.headers = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {**self.extra, "error": {"code": self.code, "message": self.message}}


def bad_request(code: str, message: str) -> ApiError:
    return ApiError(400, code, message)


def not_found(code: str, message: str) -> ApiError:
    return ApiError(404, code, message)


def json_response(
    document: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None
) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(document, ensure_ascii=False, separators=(",", ":")),
        status_code=status,
        mimetype=JSON,
        charset="utf-8",
        headers={**COMMON_HEADERS, **(headers or {})},
    )


def error_response(error: ApiError) -> func.HttpResponse:
    return json_response(error.body(), error.status, error.headers)


def internal_error(correlation_id: str) -> func.HttpResponse:
    """The 500 of an unexpected failure: a generic message and the id under which it was logged."""
    return error_response(
        ApiError(
            500,
            "internal_error",
            f"The request could not be completed. Correlation id: {correlation_id}",
        )
    )

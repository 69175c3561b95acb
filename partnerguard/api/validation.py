"""Strict validation of everything a caller sends to the HTTP API (SPEC §4).

Route values, query parameters and bodies are hostile: each is checked against an exact
grammar before it reaches storage, and a failure raises `ApiError` 400 with a message that
names the parameter but never repeats the value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from partnerguard.api.responses import ApiError, bad_request

# fullmatch, never match + `$`: `$` also matches before a trailing newline, so "<guid>\n" would pass.
GUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
RUN_ID_RE = re.compile(r"[0-9A-Za-z-]{1,64}")
FINDING_STATES = ("active", "resolved", "all")
DEFAULT_TOP = 100
MAX_TOP = 1000
# `{}` with generous whitespace fits easily; anything larger is not an empty object.
MAX_BODY_BYTES = 1024
MAX_CONTINUATION_CHARS = 2048
# The Functions host accepts the function key as `?code=`; it is authorisation, not input.
HOST_PARAMETERS = frozenset({"code"})
FINDINGS_PARAMETERS = frozenset({"state", "check", "top", "continuation"})
_TOP_RE = re.compile(r"[0-9]{1,4}")


def tenant_id_from(route_params: Mapping[str, str]) -> str:
    """The route's tenant id as a lower-case GUID (stored keys use the lower-case form)."""
    value = route_params.get("tenantId")
    if not isinstance(value, str) or not GUID_RE.fullmatch(value):
        raise bad_request("invalid_tenant_id", "The tenant id must be a GUID.")
    return value.lower()


def run_id_from(route_params: Mapping[str, str]) -> str:
    value = route_params.get("runId")
    if not isinstance(value, str) or not RUN_ID_RE.fullmatch(value):
        raise bad_request("invalid_run_id", "The run id must match ^[0-9A-Za-z-]{1,64}$.")
    return value


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def require_empty_body(body: bytes, content_type: str | None) -> None:
    """A POST body, if any, must be exactly the empty JSON object (SPEC §4).

    No body at all (or only whitespace) is fine; anything else must be `application/json`,
    UTF-8, small, valid JSON, and `{}`.
    """
    if not body.strip():
        return
    if len(body) > MAX_BODY_BYTES:
        raise bad_request(
            "invalid_body", f"The request body must be the empty JSON object {{}} (at most {MAX_BODY_BYTES} bytes)."
        )
    if _media_type(content_type) != "application/json":
        raise bad_request("invalid_content_type", "A request body must be sent as application/json.")
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise bad_request("invalid_json", "The request body is not valid JSON.") from None
    if document != {}:
        raise bad_request("invalid_body", "The request body, if any, must be the empty JSON object {}.")


@dataclass(frozen=True)
class FindingsQuery:
    state: str = "active"
    check_id: str | None = None
    top: int = DEFAULT_TOP
    continuation: str | None = None


def findings_query(params: Mapping[str, str], check_ids: tuple[str, ...]) -> FindingsQuery:
    unknown = set(params) - FINDINGS_PARAMETERS - HOST_PARAMETERS
    if unknown:
        # Named only when the name itself is harmless; a hostile name is not echoed.
        names = sorted(n for n in unknown if re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", n))
        listed = f": {', '.join(names)}" if names and len(names) == len(unknown) else ""
        raise bad_request(
            "invalid_parameter", f"Unknown query parameter{listed}. Allowed: state, check, top, continuation."
        )
    state = params.get("state", "active")
    if state not in FINDING_STATES:
        raise bad_request("invalid_state", "state must be one of active, resolved, all.")
    check_id = params.get("check")
    if check_id is not None and check_id not in check_ids:
        raise bad_request("invalid_check", "check must be one of the check ids of SPEC §1.")
    top = DEFAULT_TOP
    if "top" in params:
        raw = params["top"]
        if not _TOP_RE.fullmatch(raw) or not 1 <= int(raw) <= MAX_TOP:
            raise bad_request("invalid_top", f"top must be an integer from 1 to {MAX_TOP}.")
        top = int(raw)
    continuation = params.get("continuation")
    if continuation is not None and not 1 <= len(continuation) <= MAX_CONTINUATION_CHARS:
        raise bad_request("invalid_continuation", "continuation must be the `next` token of the previous page.")
    return FindingsQuery(state=state, check_id=check_id, top=top, continuation=continuation)


__all__ = [
    "FINDING_STATES",
    "GUID_RE",
    "MAX_BODY_BYTES",
    "MAX_TOP",
    "RUN_ID_RE",
    "ApiError",
    "FindingsQuery",
    "findings_query",
    "require_empty_body",
    "run_id_from",
    "tenant_id_from",
]

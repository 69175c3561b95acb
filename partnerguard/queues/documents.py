"""A queue message's JSON document, strictly read: one schema, exactly the expected keys.

Every message schema (scan, alert) is parsed through `decode_document`, so they refuse bad input
the same way: a `MalformedMessage` whose reason names what is wrong but never echoes the body.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

# A message of ours is a few hundred bytes. Anything much larger is not ours: refuse it before
# parsing, so a hostile or broken producer cannot make the worker chew on megabytes of JSON.
MAX_MESSAGE_BYTES = 4096


class MalformedMessage(ValueError):
    """A queue message that no retry can make valid. `reason` is safe to log (no message text)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise MalformedMessage(f"duplicate key {key!r}")
        seen[key] = value
    return seen


def decode_document(body: str | bytes, schema: str, expected: frozenset[str] | set[str]) -> dict[str, Any]:
    """A queue message's JSON object with exactly the `expected` keys and this `schema`.

    Raises MalformedMessage with a reason that names what is wrong but never echoes the body.
    """
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MalformedMessage(f"message too large ({len(raw)} bytes; at most {MAX_MESSAGE_BYTES})")
    if not raw.strip():
        raise MalformedMessage("empty message")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedMessage("not UTF-8 text") from None
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except MalformedMessage:
        raise
    except (ValueError, RecursionError):
        raise MalformedMessage("not JSON") from None
    if not isinstance(document, dict):
        raise MalformedMessage("not a JSON object")
    found = document.get("schema")
    if found is None:
        raise MalformedMessage(f"no schema; expected {schema!r}")
    if found != schema:
        shown = found if isinstance(found, str) and len(found) <= 64 else "(not a short string)"
        raise MalformedMessage(f"unknown schema {shown!r}; expected {schema!r}")
    missing = sorted(set(expected) - set(document))
    if missing:
        raise MalformedMessage(f"missing keys: {', '.join(missing)}")
    unexpected = set(document) - set(expected)
    if unexpected:
        raise MalformedMessage(f"{len(unexpected)} unexpected key(s)")
    return document


def decode_host_text(raw: str) -> bytes:
    """Base64 as the Functions queue extension decodes a message body (for tools and tests that
    read a queue without the host). Raises MalformedMessage when it is not base64."""
    try:
        return base64.b64decode(raw.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise MalformedMessage("not base64") from None

"""The poison record: what a worker writes to `<queue>-poison` for a message no retry can fix."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from partnerguard.logs import redact

if TYPE_CHECKING:  # the SDK is imported where it is used, so importing this module stays light
    from azure.storage.queue import QueueClient

POISON_SCHEMA = "partnerguard.poison/v1"
# How much of a malformed body the poison record keeps. A queue message holds 64 KiB, and
# base64 makes 48 KiB of it; the rest of the record needs room.
MAX_POISONED_BODY_CHARS = 16 * 1024


def poison_document(
    body: str | bytes,
    reason: str,
    now: datetime,
    message_id: str | None = None,
    dequeue_count: int | None = None,
) -> dict[str, Any]:
    """The record the worker writes to `<queue>-poison`: the original body (UTF-8 text, or base64
    when it is not text), cut to MAX_POISONED_BODY_CHARS, and why it was refused (redacted)."""
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)
    try:
        text, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    truncated = len(text) > MAX_POISONED_BODY_CHARS
    return {
        "schema": POISON_SCHEMA,
        # Kept in storage and read by the operator: an error's text may carry a secret (a SAS
        # signature in a URL, an access key in a connection string).
        "reason": redact(reason),
        "poisoned_at": now.astimezone(UTC).isoformat(),
        "message_id": message_id,
        "dequeue_count": dequeue_count,
        "body_encoding": encoding,
        "body_bytes": len(raw),
        "truncated": truncated,
        "body": text[:MAX_POISONED_BODY_CHARS],
    }


def poison(
    client: QueueClient,
    body: str | bytes,
    reason: str,
    now: datetime | None = None,
    message_id: str | None = None,
    dequeue_count: int | None = None,
) -> None:
    """Write a message the worker can never process to the poison queue, with its reason."""
    document = poison_document(body, reason, now or datetime.now(UTC), message_id, dequeue_count)
    # ensure_ascii keeps lone surrogates and odd characters representable on the wire.
    client.send_message(json.dumps(document, separators=(",", ":"), ensure_ascii=True))

"""The scan message, version 1 (`partnerguard.scan/v1`), exactly these keys:

    {"schema": "partnerguard.scan/v1", "tenant_id": "<guid, lower-case>",
     "run_id": "<^[0-9A-Za-z-]{1,64}$>", "requested_at": "<ISO 8601 with offset>",
     "trigger": "schedule" | "api" | "continuation"}

`continuation`: queued by the scan worker when a scan's sign-in read stopped at its deadline
after making progress, so the read continues at once (partnerguard/scan_jobs.py).

The run (status `queued`) is written before its message, so the worker always finds it; the
run id makes a redelivered message idempotent. Anything else is malformed: the worker writes it
to `partnerguard-scans-poison` with the reason and completes, since retrying cannot fix it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from partnerguard.queues.documents import MalformedMessage, decode_document
from partnerguard.settings import is_guid

if TYPE_CHECKING:  # the SDK is imported where it is used, so importing this module stays light
    from azure.storage.queue import QueueClient

SCHEMA = "partnerguard.scan/v1"
Trigger = Literal["schedule", "api", "continuation"]
TRIGGERS: tuple[str, ...] = ("schedule", "api", "continuation")
_ISO_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True)
class ScanMessage:
    tenant_id: str
    run_id: str
    requested_at: datetime
    trigger: str  # "schedule" | "api" | "continuation"

    def __post_init__(self) -> None:
        # The producer side is held to the same rules as the parser: a message we write can
        # always be read back.
        if not is_guid(self.tenant_id):
            raise ValueError("tenant_id must be a GUID")
        if not is_run_id(self.run_id):
            raise ValueError("run_id must match ^[0-9A-Za-z-]{1,64}$")
        if self.requested_at.tzinfo is None:
            raise ValueError("requested_at must be timezone-aware")
        if self.trigger not in TRIGGERS:
            raise ValueError(f"trigger must be one of {TRIGGERS}")

    def to_document(self) -> dict[str, str]:
        return {
            "schema": SCHEMA,
            "tenant_id": self.tenant_id.lower(),
            "run_id": self.run_id,
            "requested_at": self.requested_at.astimezone(UTC).isoformat(),
            "trigger": self.trigger,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_document(), separators=(",", ":"))


def is_run_id(value: str) -> bool:
    # Imported on use: the storage package loads the Tables SDK, and function_app imports this
    # module for its queue names only.
    from partnerguard.storage.keys import is_run_id as valid

    return valid(value)


def parse_scan_message(body: str | bytes) -> ScanMessage:
    """The message as the worker receives it (decoded from base64 by the host), strictly checked.

    Raises MalformedMessage with a reason that names what is wrong but never echoes the body.
    """
    document = decode_document(body, SCHEMA, {"schema", "tenant_id", "run_id", "requested_at", "trigger"})
    tenant_id, run_id = document["tenant_id"], document["run_id"]
    requested, trigger = document["requested_at"], document["trigger"]
    if not isinstance(tenant_id, str) or not is_guid(tenant_id):
        raise MalformedMessage("tenant_id is not a GUID")
    if not isinstance(run_id, str) or not is_run_id(run_id):
        raise MalformedMessage("run_id does not match ^[0-9A-Za-z-]{1,64}$")
    if not isinstance(trigger, str) or trigger not in TRIGGERS:
        raise MalformedMessage(f"trigger is not one of {', '.join(TRIGGERS)}")
    if not isinstance(requested, str) or len(requested) > 40 or not _ISO_OFFSET.search(requested):
        raise MalformedMessage("requested_at is not an ISO 8601 time with an offset")
    try:
        requested_at = datetime.fromisoformat(requested)
    except ValueError:
        raise MalformedMessage("requested_at is not an ISO 8601 time with an offset") from None
    return ScanMessage(tenant_id.lower(), run_id, requested_at.astimezone(UTC), trigger)


def send_scan(client: QueueClient, message: ScanMessage) -> None:
    client.send_message(message.to_json())

"""The scan and alert queues: message schemas, strict parsing, sending, poisoning, and the host
settings (host.json) that decide how long a scan may take and how often a message is retried.

Messages are JSON, base64-encoded on the queue: that is the Functions queue extension's default
`messageEncoding`, and azure-storage-queue's `TextBase64EncodePolicy` writes exactly that. The
host decodes the base64 before the worker sees the body; a message that is not base64 at all
never reaches the worker (the extension moves it to `<queue>-poison` at once,
Azure/azure-sdk-for-net#18326), so the worker's parser starts at the decoded bytes.

Scan message, version 1 (`partnerguard.scan/v1`), exactly these keys:

    {"schema": "partnerguard.scan/v1", "tenant_id": "<guid, lower-case>",
     "run_id": "<^[0-9A-Za-z-]{1,64}$>", "requested_at": "<ISO 8601 with offset>",
     "trigger": "schedule" | "api"}

The run (status `queued`) is written before its message, so the worker always finds it; the
run id makes a redelivered message idempotent. Anything else is malformed: the worker writes it
to `partnerguard-scans-poison` with the reason and completes, since retrying cannot fix it.

Alert messages (`partnerguard.alert/v1`) are described in `partnerguard/alerts/messages.py`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from partnerguard.settings import StorageSettings, is_guid

if TYPE_CHECKING:  # the SDKs are imported where they are used, so importing this module stays light
    from azure.storage.queue import QueueClient, QueueServiceClient

    from partnerguard.report import TenantInfo
    from partnerguard.storage import ScanStore
    from partnerguard.storage.scan_guard import GuardHolder, ScanGuard

SCAN_QUEUE = "partnerguard-scans"
SCAN_POISON_QUEUE = f"{SCAN_QUEUE}-poison"
ALERT_QUEUE = "partnerguard-alerts"
ALERT_POISON_QUEUE = f"{ALERT_QUEUE}-poison"
# The app setting (or `<name>__queueServiceUri` prefix) the queue bindings and our clients use.
STORAGE_CONNECTION = "PARTNERGUARD_STORAGE"

SCHEMA = "partnerguard.scan/v1"
POISON_SCHEMA = "partnerguard.poison/v1"
Trigger = Literal["schedule", "api"]
TRIGGERS: tuple[str, ...] = ("schedule", "api")

# A v1 scan message is about 200 bytes. Anything much larger is not ours: refuse it before
# parsing, so a hostile or broken producer cannot make the worker chew on megabytes of JSON.
MAX_MESSAGE_BYTES = 4096
# How much of a malformed body the poison record keeps. A queue message holds 64 KiB, and
# base64 makes 48 KiB of it; the rest of the record needs room.
MAX_POISONED_BODY_CHARS = 16 * 1024
_ISO_OFFSET = re.compile(r"(?:Z|[+-]\d{2}:\d{2})$")


class MalformedMessage(ValueError):
    """A queue message that no retry can make valid. `reason` is safe to log (no message text)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ScanMessage:
    tenant_id: str
    run_id: str
    requested_at: datetime
    trigger: str  # "schedule" | "api"

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


# -- clients ------------------------------------------------------------------------------------


def queue_service_client(storage: StorageSettings, **client_options: Any) -> QueueServiceClient:
    """The Queue service on the connection string, or on `__queueServiceUri` with the managed
    identity. Take queue clients from `queue_client`, which sets the message encoding."""
    from azure.storage.queue import QueueServiceClient

    from partnerguard.storage.identity import storage_identity

    options: dict[str, Any] = {"connection_timeout": 20, "read_timeout": 60, **client_options}
    if storage.connection_string:
        return QueueServiceClient.from_connection_string(storage.connection_string, **options)
    if storage.queue_service_uri:
        return QueueServiceClient(
            account_url=storage.queue_service_uri, credential=storage_identity(storage), **options
        )
    from partnerguard.settings import ConfigError

    raise ConfigError(STORAGE_CONNECTION, "neither a connection string nor __queueServiceUri is set")


def queue_client(service: QueueServiceClient, name: str, create: bool = True) -> QueueClient:
    """A client of one queue that writes and reads base64 (the host's encoding), created if
    missing (the host does not create a trigger's queue)."""
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.queue import BinaryBase64DecodePolicy, TextBase64EncodePolicy

    # Per queue client: QueueServiceClient.get_queue_client does not pass the service client's
    # encode and decode policies on, so messages would go out as plain text, which the host's
    # base64 decoding refuses. Bytes on the way back: a poisoned body need not be UTF-8.
    client = service.get_queue_client(
        name, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=BinaryBase64DecodePolicy()
    )
    if create:
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()
    return client


def scan_queue(settings: StorageSettings) -> QueueClient:
    """The scan queue on these storage settings (for callers without the cached services)."""
    return queue_client(queue_service_client(settings), SCAN_QUEUE)


def send_scan(client: QueueClient, message: ScanMessage) -> None:
    client.send_message(message.to_json())


def poison_document(
    body: str | bytes,
    reason: str,
    now: datetime,
    message_id: str | None = None,
    dequeue_count: int | None = None,
) -> dict[str, Any]:
    """The record the worker writes to `<queue>-poison`: the original body (UTF-8 text, or base64
    when it is not text), cut to MAX_POISONED_BODY_CHARS, and why it was refused."""
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)
    try:
        text, encoding = raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = base64.b64encode(raw).decode("ascii"), "base64"
    truncated = len(text) > MAX_POISONED_BODY_CHARS
    return {
        "schema": POISON_SCHEMA,
        "reason": reason,
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


def decode_host_text(raw: str) -> bytes:
    """Base64 as the Functions queue extension decodes a message body (for tools and tests that
    read a queue without the host). Raises MalformedMessage when it is not base64."""
    try:
        return base64.b64decode(raw.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise MalformedMessage("not base64") from None


# -- host.json ----------------------------------------------------------------------------------

HOST_JSON = Path(__file__).resolve().parents[1] / "host.json"
# How long past the function timeout a guard stays valid: the host needs a moment to notice a
# timed-out invocation and our own writes after the scan take seconds, not minutes.
GUARD_MARGIN = timedelta(minutes=10)
# The queues extension's documented defaults, used when host.json leaves a value out.
_DEFAULT_MAX_DEQUEUE = 5
_DEFAULT_VISIBILITY = timedelta(0)
# The default function timeout of the Flex Consumption and Premium plans.
_DEFAULT_TIMEOUT = timedelta(minutes=30)
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.\d+)?$")


def parse_timespan(value: str) -> timedelta:
    """A .NET TimeSpan as host.json writes it: `[d.]hh:mm:ss[.fff]`."""
    match = _TIMESPAN.match(value.strip())
    if match is None:
        raise ValueError(f"not a timespan [d.]hh:mm:ss: {value!r}")
    days, hours, minutes, seconds = (int(part) if part else 0 for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


@dataclass(frozen=True)
class HostConfig:
    """The host settings the workers depend on, read from host.json in one place."""

    function_timeout: timedelta
    max_dequeue_count: int
    visibility_timeout: timedelta

    @property
    def guard_ttl(self) -> timedelta:
        """How long a scan guard stays valid without being renewed: the longest an invocation
        can run, plus a margin. A crashed worker blocks its tenant at most this long."""
        return self.function_timeout + GUARD_MARGIN

    @classmethod
    def from_document(cls, document: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> HostConfig:
        """Values from host.json, overridden as the host overrides them: by app settings named
        `AzureFunctionsJobHost__<path>` (https://learn.microsoft.com/azure/azure-functions/functions-host-json#override-hostjson-values)."""
        env = os.environ if environ is None else environ
        queues = document.get("extensions", {}).get("queues", {})
        timeout_text = env.get("AzureFunctionsJobHost__functionTimeout") or document.get("functionTimeout")
        dequeue_text = env.get("AzureFunctionsJobHost__extensions__queues__maxDequeueCount") or queues.get(
            "maxDequeueCount"
        )
        visibility_text = env.get("AzureFunctionsJobHost__extensions__queues__visibilityTimeout") or queues.get(
            "visibilityTimeout"
        )
        timeout = _DEFAULT_TIMEOUT
        if timeout_text and str(timeout_text).strip() != "-1":
            timeout = parse_timespan(str(timeout_text))
        elif timeout_text:
            # -1 is "unbounded" on the plans that allow it; a guard must still expire some day.
            timeout = timedelta(hours=2)
        max_dequeue = int(dequeue_text) if dequeue_text is not None else _DEFAULT_MAX_DEQUEUE
        if max_dequeue < 1:
            raise ValueError("maxDequeueCount must be at least 1")
        visibility = parse_timespan(str(visibility_text)) if visibility_text else _DEFAULT_VISIBILITY
        return cls(function_timeout=timeout, max_dequeue_count=max_dequeue, visibility_timeout=visibility)

    @classmethod
    def load(cls, path: Path = HOST_JSON, environ: Mapping[str, str] | None = None) -> HostConfig:
        return cls.from_document(json.loads(path.read_text(encoding="utf-8")), environ)


@lru_cache(maxsize=1)
def host_config() -> HostConfig:
    """host.json of this app, read once per process."""
    return HostConfig.load()


# -- requesting a scan (the timer and POST /api/tenants/{id}/scans) ---------------------------


@dataclass(frozen=True)
class ScanQueued:
    run_id: str


@dataclass(frozen=True)
class ScanBusy:
    """The tenant already has a live queued or running scan: this one."""

    holder: GuardHolder


def request_scan(
    store: ScanStore,
    guard: ScanGuard,
    scans: QueueClient,
    tenant: TenantInfo,
    trigger: str,
    now: datetime,
    ttl: timedelta,
) -> ScanQueued | ScanBusy:
    """Queue one scan of `tenant` unless one is queued or running: guard first, then the run row
    (status `queued`), then the message. The guard makes two concurrent requests queue one scan;
    the run row before the message means the worker always finds the run its message names.
    If writing the run or the message fails, the run is marked failed and the guard released, so
    a storage hiccup never blocks the tenant until the guard expires."""
    from partnerguard.storage.keys import new_run_id

    tenant_id = tenant.id.lower()
    run_id = new_run_id(now)
    holder = guard.acquire(tenant_id, run_id, now, ttl)
    if holder is not None:
        return ScanBusy(holder)
    queued = False
    try:
        store.queue_run(tenant, now, run_id=run_id)
        queued = True
        send_scan(scans, ScanMessage(tenant_id, run_id, now, trigger))
    except Exception as error:
        try:
            if queued:
                store.fail_run(
                    tenant_id, run_id, "enqueue_failed", f"could not queue the scan: {type(error).__name__}", now
                )
        finally:
            guard.release(tenant_id, run_id)
        raise
    return ScanQueued(run_id)

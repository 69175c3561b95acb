"""Scan messages (schema v1, strict parsing), the wire encoding the host expects, poison records,
host.json, and `request_scan` (guard → run → message) against Azurite's queues and tables."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueServiceClient

from partnerguard.alerts.messages import AlertMessage, parse_alert_message, send_alert_message
from partnerguard.alerts.policy import AlertRef
from partnerguard.host_config import HOST_JSON, HostConfig, parse_timespan
from partnerguard.model import TenantInfo
from partnerguard.queues.clients import queue_client, queue_service_client
from partnerguard.queues.documents import MAX_MESSAGE_BYTES, MalformedMessage, decode_host_text
from partnerguard.queues.poison import MAX_POISONED_BODY_CHARS, poison, poison_document
from partnerguard.queues.scan_message import SCHEMA, ScanMessage, parse_scan_message, send_scan
from partnerguard.scan_requests import ScanBusy, ScanQueued, request_scan
from partnerguard.settings import StorageSettings
from partnerguard.storage import ScanStore
from partnerguard.storage.scan_guard import ScanGuard
from testbed.azurite import AzuriteProcess

TENANT = "c0ffee00-1b2c-4d3e-8f90-a1b2c3d4e5f6"
RUN = "8235746000000-0a1b2c3d4e"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=40)


def document(**changes: object) -> dict[str, object]:
    base: dict[str, object] = {
        "schema": SCHEMA,
        "tenant_id": TENANT,
        "run_id": RUN,
        "requested_at": "2026-11-26T12:00:00+00:00",
        "trigger": "schedule",
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def body(**changes: object) -> bytes:
    return json.dumps(document(**changes)).encode()


# -- parsing ------------------------------------------------------------------------------------


def test_a_message_round_trips() -> None:
    message = ScanMessage(TENANT, RUN, NOW, "api")
    assert parse_scan_message(message.to_json()) == message
    assert parse_scan_message(message.to_json().encode()) == message
    assert json.loads(message.to_json()) == {
        "schema": "partnerguard.scan/v1",
        "tenant_id": TENANT,
        "run_id": RUN,
        "requested_at": "2026-11-26T12:00:00+00:00",
        "trigger": "api",
    }


def test_parsing_normalises_case_and_offset() -> None:
    parsed = parse_scan_message(body(tenant_id=TENANT.upper(), requested_at="2026-11-26T14:00:00+02:00"))
    assert parsed.tenant_id == TENANT
    assert parsed.requested_at == NOW and parsed.requested_at.tzinfo == UTC


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty message"),
        (b"\xff\xfe\x00garbage", "not UTF-8 text"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b"[" * 100_000, "message too large"),
        (b"[" * 4000 + b"]" * 4000, "message too large"),
        (b"[" * 2000 + b"]" * 2000, "not JSON"),  # nested past the parser's recursion limit
        (body(schema="partnerguard.scan/v2"), "unknown schema 'partnerguard.scan/v2'"),
        (body(schema="x" * 500), "unknown schema '(not a short string)'"),
        (body(schema=None), "no schema"),
        (body(run_id=None), "missing keys: run_id"),
        (body(extra="\u202e\n"), "1 unexpected key(s)"),
        (body(tenant_id="not-a-guid"), "tenant_id is not a GUID"),
        (body(tenant_id="'; DROP TABLE runs --"), "tenant_id is not a GUID"),
        (body(tenant_id=12), "tenant_id is not a GUID"),
        (body(run_id="abc/../def"), "run_id does not match"),
        (body(run_id="x" * 65), "run_id does not match"),
        (body(trigger="manual"), "trigger is not one of schedule, api"),
        (body(requested_at="2026-11-26T12:00:00"), "requested_at is not an ISO 8601 time with an offset"),
        (body(requested_at="yesterday+00:00"), "requested_at is not an ISO 8601 time with an offset"),
        (body(requested_at=1764158400), "requested_at is not an ISO 8601 time with an offset"),
        (
            b'{"schema":"partnerguard.scan/v1","tenant_id":"' + TENANT.encode() + b'","tenant_id":"x"}',
            "duplicate key 'tenant_id'",
        ),
    ],
)
def test_malformed_messages_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(MalformedMessage) as caught:
        parse_scan_message(raw)
    assert caught.value.reason.startswith(reason)


def test_a_refusal_never_echoes_the_body() -> None:
    secret_looking = "AccountKey=abc123" + "A" * 40
    for raw in (body(extra=secret_looking), body(trigger=secret_looking), body(tenant_id=secret_looking)):
        with pytest.raises(MalformedMessage) as caught:
            parse_scan_message(raw)
        assert secret_looking not in caught.value.reason


def test_the_size_limit_is_on_bytes() -> None:
    padded = body(run_id=RUN)[:-1] + b" " * (MAX_MESSAGE_BYTES - len(body())) + b"}"
    assert len(padded) == MAX_MESSAGE_BYTES
    assert parse_scan_message(padded).run_id == RUN
    with pytest.raises(MalformedMessage):
        parse_scan_message(padded[:-1] + b" }")


def test_a_message_we_write_is_always_valid() -> None:
    with pytest.raises(ValueError, match="GUID"):
        ScanMessage("nope", RUN, NOW, "api")
    with pytest.raises(ValueError, match="run_id"):
        ScanMessage(TENANT, "no spaces", NOW, "api")
    with pytest.raises(ValueError, match="timezone"):
        ScanMessage(TENANT, RUN, NOW.replace(tzinfo=None), "api")
    with pytest.raises(ValueError, match="trigger"):
        ScanMessage(TENANT, RUN, NOW, "cron")


def test_decode_host_text_refuses_what_is_not_base64() -> None:
    assert decode_host_text(base64.b64encode(b"{}").decode()) == b"{}"
    for raw in ("{not base64}", "abc", "ü"):
        with pytest.raises(MalformedMessage, match="not base64"):
            decode_host_text(raw)


# -- poison records -------------------------------------------------------------------------------


def test_a_poison_record_keeps_the_body_and_the_reason() -> None:
    record = poison_document(b"{bad", "not JSON", NOW, "id-1", 1)
    assert record == {
        "schema": "partnerguard.poison/v1",
        "reason": "not JSON",
        "poisoned_at": "2026-11-26T12:00:00+00:00",
        "message_id": "id-1",
        "dequeue_count": 1,
        "body_encoding": "utf-8",
        "body_bytes": 4,
        "truncated": False,
        "body": "{bad",
    }
    binary = poison_document(b"\xff\x00", "not UTF-8 text", NOW)
    assert binary["body_encoding"] == "base64" and base64.b64decode(binary["body"]) == b"\xff\x00"
    huge = poison_document("x" * 100_000, "message too large", NOW)
    assert huge["truncated"] is True and len(huge["body"]) == MAX_POISONED_BODY_CHARS
    assert huge["body_bytes"] == 100_000


# -- host.json ------------------------------------------------------------------------------------


def test_host_json_is_read_once_in_one_place() -> None:
    host = HostConfig.load(HOST_JSON, environ={})
    document = json.loads(Path(HOST_JSON).read_text())
    queues = document["extensions"]["queues"]
    assert host.max_dequeue_count == queues["maxDequeueCount"]
    assert host.function_timeout == parse_timespan(document["functionTimeout"])
    assert host.visibility_timeout == parse_timespan(queues["visibilityTimeout"])
    # A guard outlives the longest invocation, so a live scan is never taken over.
    assert host.guard_ttl > host.function_timeout
    assert queues["messageEncoding"] == "base64"


def test_app_settings_override_host_json_as_the_host_does() -> None:
    host = HostConfig.load(
        HOST_JSON,
        environ={
            "AzureFunctionsJobHost__functionTimeout": "01:00:00",
            "AzureFunctionsJobHost__extensions__queues__maxDequeueCount": "2",
        },
    )
    assert host.function_timeout == timedelta(hours=1) and host.max_dequeue_count == 2


def test_timespans() -> None:
    assert parse_timespan("00:10:00") == timedelta(minutes=10)
    assert parse_timespan("1.02:03:04") == timedelta(days=1, hours=2, minutes=3, seconds=4)
    assert parse_timespan("00:00:01.500") == timedelta(seconds=1)
    with pytest.raises(ValueError):
        parse_timespan("10 minutes")
    assert HostConfig.from_document({"functionTimeout": "-1"}, {}).function_timeout == timedelta(hours=2)
    defaults = HostConfig.from_document({}, {})
    assert (defaults.max_dequeue_count, defaults.function_timeout) == (5, timedelta(minutes=30))
    with pytest.raises(ValueError):
        HostConfig.from_document({"extensions": {"queues": {"maxDequeueCount": 0}}}, {})


# -- on the wire (Azurite) ------------------------------------------------------------------------


@pytest.fixture
def queues(azurite: AzuriteProcess, table_prefix: str) -> Iterator[QueueServiceClient]:
    service = queue_service_client(StorageSettings(connection_string=azurite.connection_string))
    yield service
    for queue in service.list_queues(name_starts_with=table_prefix):
        service.delete_queue(queue.name)
    service.close()


def test_messages_are_base64_json_as_the_host_reads_them(
    azurite: AzuriteProcess, queues: QueueServiceClient, table_prefix: str
) -> None:
    name = f"{table_prefix}-scans"
    client = queue_client(queues, name)
    message = ScanMessage(TENANT, RUN, NOW, "schedule")
    send_scan(client, message)
    alert = AlertMessage(AlertRef("r-" + "0" * 32, f"run~{TENANT}~{RUN}"))
    send_alert_message(client, alert)
    # Read with no decoding at all: what sits in the queue is what the host base64-decodes.
    plain = QueueServiceClient.from_connection_string(azurite.connection_string).get_queue_client(name)
    raw = [m.content for m in plain.receive_messages(max_messages=2)]
    assert parse_scan_message(decode_host_text(raw[0])) == message
    assert json.loads(decode_host_text(raw[1])) == {
        "schema": "partnerguard.alert/v1",
        "partition": "r-" + "0" * 32,
        "alert_id": f"run~{TENANT}~{RUN}",
        "deferrals": 0,
    }
    assert parse_alert_message(decode_host_text(raw[1])) == alert


def test_poison_writes_a_readable_record(queues: QueueServiceClient, table_prefix: str) -> None:
    client = queue_client(queues, f"{table_prefix}-scans-poison")
    poison(client, b"\xff not text", "not UTF-8 text", NOW, "m-1", 1)
    received = next(iter(client.receive_messages()))
    record = json.loads(received.content)
    assert record["reason"] == "not UTF-8 text" and record["message_id"] == "m-1"
    assert base64.b64decode(record["body"]) == b"\xff not text"


@pytest.fixture
def guard(azurite: AzuriteProcess, table_prefix: str) -> Iterator[ScanGuard]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    guard = ScanGuard(service, table_prefix)
    guard.ensure_tables()
    yield guard
    service.delete_table(guard.table.table_name)
    guard.close()


def test_request_scan_queues_once_per_tenant(
    scan_store: ScanStore, guard: ScanGuard, queues: QueueServiceClient, table_prefix: str
) -> None:
    client = queue_client(queues, f"{table_prefix}-scans")
    tenant = TenantInfo(TENANT, TENANT, "customer")
    first = request_scan(scan_store, guard, client, tenant, "api", NOW, TTL)
    assert isinstance(first, ScanQueued)
    run = scan_store.get_run(TENANT, first.run_id)
    assert run is not None and run.status == "queued" and run.queued_at == NOW
    second = request_scan(scan_store, guard, client, tenant, "schedule", NOW + timedelta(minutes=1), TTL)
    assert isinstance(second, ScanBusy)
    assert (second.holder.run_id, second.holder.status) == (first.run_id, "queued")
    messages = list(client.receive_messages(max_messages=10))
    assert len(messages) == 1
    assert parse_scan_message(messages[0].content).run_id == first.run_id
    # Once the guard has expired (a crashed producer or worker), the tenant is free again.
    third = request_scan(scan_store, guard, client, tenant, "schedule", NOW + TTL, TTL)
    assert isinstance(third, ScanQueued) and third.run_id != first.run_id


def test_concurrent_requests_queue_exactly_one_scan(
    scan_store: ScanStore, guard: ScanGuard, queues: QueueServiceClient, table_prefix: str
) -> None:
    client = queue_client(queues, f"{table_prefix}-scans")
    tenant = TenantInfo(TENANT, TENANT, "customer")
    results: list[ScanQueued | ScanBusy] = []
    start = threading.Barrier(8)

    def request() -> None:
        start.wait()
        results.append(request_scan(scan_store, guard, client, tenant, "api", NOW, TTL))

    threads = [threading.Thread(target=request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    queued = [r for r in results if isinstance(r, ScanQueued)]
    assert len(queued) == 1
    assert all(isinstance(r, ScanBusy) and r.holder.run_id == queued[0].run_id for r in results if r not in queued)
    assert len(list(client.receive_messages(max_messages=32))) == 1


def test_a_failed_enqueue_fails_the_run_and_frees_the_tenant(
    scan_store: ScanStore, guard: ScanGuard, queues: QueueServiceClient, table_prefix: str
) -> None:
    missing = queue_client(queues, f"{table_prefix}-never-created", create=False)
    tenant = TenantInfo(TENANT, TENANT, "customer")
    with pytest.raises(ResourceNotFoundError):
        request_scan(scan_store, guard, missing, tenant, "api", NOW, TTL)
    (run,) = scan_store.list_runs(TENANT)
    assert run.status == "failed" and run.error is not None and run.error["code"] == "enqueue_failed"
    assert guard.holder(TENANT, NOW) is None


def test_a_poison_record_keeps_no_secret_of_the_error_it_names() -> None:
    """Issue 15, case 7: the reason is stored (the poison queue) and read by the operator."""
    reason = (
        "delivery failed for good: ACS answered 400 for https://acct.blob.core.windows.net/c/x"
        "?sv=2022-11-02&sig=Zm9vYmFyYmF6cXV4%2B%2F%3D&se=2030 (endpoint=https://x/;accesskey=c2VjcmV0a2V5)"
    )
    record = poison_document(b"{}", reason, NOW, "id-1", 1)

    assert "Zm9vYmFyYmF6cXV4" not in record["reason"] and "c2VjcmV0a2V5" not in record["reason"]
    assert record["reason"].startswith("delivery failed for good: ACS answered 400")

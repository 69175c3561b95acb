"""Bad input on the queues: whatever a broken or hostile producer puts on `partnerguard-scans` or
`partnerguard-alerts`, the worker poisons it with a reason and completes; it never crashes and
never retries what no retry can fix.

Two layers, both property-based (hypothesis, derandomized with a fixed number of examples, so
the ledger's counts are the same on every run):

- the scan message parser alone, on arbitrary bytes and on near-miss documents whose values are
  hostile (wrong types, any Unicode, lone surrogates, OData and Table-query injection, path
  traversal, 10 KB strings): it returns a message or raises `MalformedMessage` with a reason that
  is safe to log and does not repeat the hostile value (test_alert_messages.py does the same for
  the alert parser);
- both workers as the host calls them (the queue triggers, over Azurite): a body the parser
  refuses ends as exactly one record on `<queue>-poison`, holding the body and the parser's
  reason, and the trigger returns normally (the host would otherwise retry it five times).
"""

from __future__ import annotations

import asyncio
import base64
import json
import unicodedata
import uuid
from collections.abc import Iterator
from typing import Any, TypeGuard

import pytest
from azure.functions.queue import QueueMessage
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from partnerguard.alerts.messages import SCHEMA as ALERT_SCHEMA
from partnerguard.alerts.messages import parse_alert_message
from partnerguard.queues.documents import MAX_MESSAGE_BYTES, MalformedMessage
from partnerguard.queues.names import ALERT_POISON_QUEUE, SCAN_POISON_QUEUE
from partnerguard.queues.poison import POISON_SCHEMA
from partnerguard.queues.scan_message import SCHEMA, ScanMessage, parse_scan_message
from partnerguard.storage.alert_outbox import alert_id_run, recipients_key
from testbed.azurite import AzuriteProcess
from tests.functions_index import FunctionsEnv, functions_env, user_function
from tests.reliability import record

TENANT = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
RUN_ID = "8249061199999-0123456789"
VALID_SCAN = {
    "schema": SCHEMA,
    "tenant_id": TENANT,
    "run_id": RUN_ID,
    "requested_at": "2026-01-31T06:00:05+00:00",
    "trigger": "schedule",
}
VALID_ALERT = {
    "schema": ALERT_SCHEMA,
    "partition": recipients_key(["secops@contoso.example"]),
    "alert_id": alert_id_run(TENANT, RUN_ID),
    "deferrals": 0,
}

# What a hostile producer or tenant would try in an id: storage query injection, path traversal,
# markup, terminal and log forgery, and text that breaks naive encoders.
INJECTIONS = [
    f"{TENANT}' or PartitionKey ne '",
    "' or 1 eq 1 or 'a' eq 'a",
    "PartitionKey eq 'x' and RowKey ge ''",
    "$filter=RowKey ne ''",
    f"{RUN_ID}') or (RowKey ne '",
    "../../../etc/passwd",
    "..%2f..%2fpartnerguard-scans-poison",
    "..\\..\\windows",
    f"{TENANT}/../{TENANT}",
    "<script>alert(1)</script>",
    "run\r\nERROR forged log line",
    "\x1b[2J\x1b[31mred",
    "\u202egnp.exe",
    "\u2028\u2029",
    "\ud800",
    "\x00",
    "%00",
    "A" * 10_000,
    "\U0001f600" * 2_000,
]

# Strings of any code point (lone surrogates too), short, or repeated to 5-10 KB (generating
# such long text character by character would cost seconds for nothing).
any_text = st.text(st.characters(codec=None), max_size=40)
hostile_text = (
    st.sampled_from(INJECTIONS)
    | any_text
    | st.builds(lambda text, size: ((text or "x") * size)[:size], any_text, st.integers(5_000, 10_000))
)
hostile_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | hostile_text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(hostile_text, children, max_size=3),
    max_leaves=6,
)

DETERMINISTIC = settings(derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))


def _near_miss(valid: dict[str, Any]) -> st.SearchStrategy[tuple[str, str, object]]:
    """(action, key, value): replace one key's value, drop a key, or add one, in a valid document."""
    keys = st.sampled_from(sorted(valid))
    return st.one_of(
        st.tuples(st.just("replace"), keys, hostile_values),
        st.tuples(st.just("drop"), keys, st.none()),
        st.tuples(st.just("add"), hostile_text.filter(lambda key: key not in valid), hostile_values),
    )


def _apply(valid: dict[str, Any], action: str, key: str, value: object) -> dict[str, Any]:
    document = dict(valid)
    if action == "drop":
        del document[key]
    else:
        document[key] = value
    return document


def distinctive(value: object) -> TypeGuard[str]:
    """Whether finding `value` in a reason can only mean it was echoed: one of the injections, or
    longer than any reason. (Hypothesis also draws the project's own string constants, and a
    reason may well contain "tenant_id".)"""
    return isinstance(value, str) and (value in INJECTIONS or len(value) >= 200)


def _encode(document: dict[str, Any]) -> bytes:
    # ensure_ascii: lone surrogates travel as \ud800 escapes, as a JSON producer would send them.
    return json.dumps(document, ensure_ascii=True, allow_nan=True).encode("ascii")


def _safe_to_log(reason: str) -> bool:
    """No control, format (bidi) or line-separator character: the reason cannot forge a log line."""
    return bool(reason) and all(unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp", "Cs") for c in reason)


def _refusal(parse: Any, body: bytes) -> str | None:
    try:
        parse(body)
    except MalformedMessage as refused:
        return refused.reason
    return None


# -- the scan message parser ------------------------------------------------------------------------


def test_arbitrary_bytes_are_a_scan_message_or_refused_with_a_reason() -> None:
    tried = 0

    @settings(DETERMINISTIC, max_examples=300)
    @given(st.binary(max_size=MAX_MESSAGE_BYTES + 64))
    def one(raw: bytes) -> None:
        nonlocal tried
        try:
            message = parse_scan_message(raw)
        except MalformedMessage as refused:
            assert _safe_to_log(refused.reason)
        else:
            assert isinstance(message, ScanMessage)
        tried += 1

    one()
    record("bad input", "scan queue parser: arbitrary bytes", "refused with a reason, never a crash", tried=tried)


def test_near_miss_scan_documents_are_refused_without_echoing_the_value() -> None:
    tried = 0

    @settings(DETERMINISTIC, max_examples=400)
    @given(_near_miss(VALID_SCAN))
    def one(change: tuple[str, str, object]) -> None:
        nonlocal tried
        action, key, value = change
        body = _encode(_apply(VALID_SCAN, action, key, value))
        reason = _refusal(parse_scan_message, body)
        if reason is None:
            # Only a value as good as the original gets through (a trigger of "api", say), and it
            # reads back exactly as sent.
            assert action == "replace"
            assert parse_scan_message(body).to_document() == json.loads(body)
        else:
            assert _safe_to_log(reason)
            # The reason names what is wrong, never the value (the schema name excepted: a short
            # foreign schema is quoted, escaped, to tell a version mismatch apart).
            if key != "schema" and distinctive(value):
                assert value not in reason
        tried += 1

    one()
    record(
        "bad input",
        "scan queue parser: valid messages with one value hostile, dropped or added",
        "refused with a reason that does not echo the value, never a crash",
        tried=tried,
    )


# -- the workers, as the host calls them ---------------------------------------------------------------


@pytest.fixture(scope="module")
def world(azurite: AzuriteProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FunctionsEnv]:
    environment = {
        "AZURE_TENANT_ID": TENANT,
        "AZURE_CLIENT_ID": str(uuid.UUID(int=1)),
        "PARTNERGUARD_TENANTS": TENANT,
        "ALERT_RECIPIENTS": "secops@contoso.example",
        "EMAIL_OUTBOX_DIR": str(tmp_path_factory.mktemp("outbox")),
    }
    prefix = "msg" + uuid.uuid4().hex[:10]
    yield from functions_env(azurite.connection_string, prefix, environment)


def _poisoned_once(env: FunctionsEnv, queue: str, body: bytes) -> dict[str, Any]:
    [message] = env.receive(queue)
    document: dict[str, Any] = json.loads(message.content)
    assert document["schema"] == POISON_SCHEMA
    assert document["body_bytes"] == len(body)
    kept = base64.b64decode(document["body"]) if document["body_encoding"] == "base64" else document["body"].encode()
    assert body.startswith(kept)
    return document


# A broken producer's bodies: arbitrary bytes, near-miss documents, the other queue's messages.
def _scan_bodies() -> st.SearchStrategy[bytes]:
    near_miss = _near_miss(VALID_SCAN).map(lambda change: _encode(_apply(VALID_SCAN, *change)))
    return st.one_of(st.binary(max_size=6_000), near_miss, st.just(_encode(VALID_ALERT)))


def _alert_bodies() -> st.SearchStrategy[bytes]:
    near_miss = _near_miss(VALID_ALERT).map(lambda change: _encode(_apply(VALID_ALERT, *change)))
    return st.one_of(st.binary(max_size=6_000), near_miss, st.just(_encode(VALID_SCAN)))


@pytest.mark.parametrize(
    ("worker", "parse", "poison_queue", "bodies"),
    [
        ("scan_worker", parse_scan_message, SCAN_POISON_QUEUE, _scan_bodies()),
        ("alert_worker", parse_alert_message, ALERT_POISON_QUEUE, _alert_bodies()),
    ],
)
def test_a_worker_poisons_every_malformed_body_with_its_reason_and_completes(
    world: FunctionsEnv, worker: str, parse: Any, poison_queue: str, bodies: st.SearchStrategy[bytes]
) -> None:
    trigger = user_function(worker)
    world.services.queue(poison_queue)  # the worker creates it on first use; tests read it before
    world.receive(poison_queue)
    tried = 0

    @settings(DETERMINISTIC, max_examples=40)
    @given(bodies)
    def one(body: bytes) -> None:
        nonlocal tried
        reason = _refusal(parse, body)
        assume(reason is not None)  # a valid message would start a scan or a delivery
        message = QueueMessage(id=f"bad-{tried}", body=body, dequeue_count=1)  # type: ignore[no-untyped-call]
        asyncio.run(trigger(message))  # returns: the host completes the message
        poisoned = _poisoned_once(world, poison_queue, body)
        assert poisoned["reason"] == reason
        assert poisoned["message_id"] == f"bad-{tried}"
        tried += 1

    one()
    queue = "partnerguard-scans" if worker == "scan_worker" else "partnerguard-alerts"
    record(
        "bad input",
        f"{queue}: malformed messages through the {worker.replace('_', ' ')}",
        "poisoned once with the parser's reason, the invocation completes",
        tried=tried,
    )

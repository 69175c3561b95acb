"""The alert queue's message (`partnerguard.alert/v1`): what is written reads back the same, and
anything else is refused as MalformedMessage with a reason that never echoes the body."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partnerguard.alerts.messages import MAX_DEFERRALS, SCHEMA, AlertMessage, parse_alert_message
from partnerguard.alerts.policy import AlertRef
from partnerguard.queues.documents import MAX_MESSAGE_BYTES, MalformedMessage
from partnerguard.storage.alert_outbox import alert_id_health, alert_id_reminder, alert_id_run, recipients_key

TENANT = "B2B2B2B2-0000-4000-8000-000000000002"
PARTITION = recipients_key(["secops@contoso.example"])
RUN_ALERT = alert_id_run(TENANT, "8249061199999-0123456789")


def document(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"schema": SCHEMA, "partition": PARTITION, "alert_id": RUN_ALERT, "deferrals": 0}
    base.update(changes)
    return base


def body(**changes: Any) -> str:
    return json.dumps(document(**changes))


def refusal(raw: str | bytes) -> str:
    with pytest.raises(MalformedMessage) as refused:
        parse_alert_message(raw)
    return refused.value.reason


@pytest.mark.parametrize(
    "alert_id",
    [
        RUN_ALERT,
        alert_id_reminder(TENANT, "20260101T12"),
        alert_id_health("stale", TENANT, "never"),
        alert_id_health("poison", "partnerguard-scans-poison", "0f1e2d3c-aaaa-bbbb-cccc-000000000001"),
        alert_id_health("consent", TENANT, "missing-20260101T120000"),
    ],
)
@pytest.mark.parametrize("deferrals", [0, 1, MAX_DEFERRALS])
def test_a_message_reads_back_as_written(alert_id: str, deferrals: int) -> None:
    message = AlertMessage(AlertRef(PARTITION, alert_id), deferrals)
    text = message.to_json()
    assert json.loads(text) == {"schema": SCHEMA, "partition": PARTITION, "alert_id": alert_id, "deferrals": deferrals}
    assert parse_alert_message(text) == message
    assert parse_alert_message(text.encode()) == message


def test_alert_ids_lower_the_tenant_so_one_tenant_is_one_id() -> None:
    assert alert_id_run(TENANT, "r1") == alert_id_run(TENANT.lower(), "r1") == f"run~{TENANT.lower()}~r1"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "empty message"),
        (b"   \n", "empty message"),
        (b"\xff\xfe{}", "not UTF-8"),
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('"a string"', "not a JSON object"),
        (json.dumps({k: v for k, v in document().items() if k != "schema"}), "no schema"),
        (body(schema="partnerguard.scan/v1"), "unknown schema"),
        (body(schema="partnerguard.alert/v2"), "unknown schema"),
        (body(schema=7), "unknown schema"),
        (json.dumps({k: v for k, v in document().items() if k != "alert_id"}), "missing keys: alert_id"),
        (json.dumps({k: v for k, v in document().items() if k != "deferrals"}), "missing keys: deferrals"),
        (body(tenant_id=TENANT), "1 unexpected key"),
        # A second "deferrals" would let two readers disagree on the message.
        (body()[:-1] + ', "deferrals": 9}', "duplicate key"),
    ],
)
def test_malformed_bodies_are_refused_with_their_reason(raw: str | bytes, reason: str) -> None:
    assert reason in refusal(raw)


@pytest.mark.parametrize(
    "partition",
    [
        "r-" + "0" * 31,  # too short
        "r-" + "0" * 33,
        "r-" + "A" * 32,  # upper-case hex is not what recipients_key makes
        "x-" + "0" * 32,
        PARTITION + "\n",
        "",
        None,
        32,
        ["r-" + "0" * 32],
    ],
)
def test_a_partition_that_is_not_a_recipient_set_key_is_refused(partition: object) -> None:
    assert "partition" in refusal(body(partition=partition))


@pytest.mark.parametrize(
    "alert_id",
    [
        f"run~{TENANT}/../x",  # a slash
        f"run~{TENANT}~o'brien",  # a quote, which would end an OData string
        f"run~{TENANT}~a\x00b",  # control characters
        f"run~{TENANT}~a\nb",
        f"run~{TENANT}~a\x7fb",
        f"run~{TENANT}~a b",
        f"run~{TENANT}~caf\u00e9",
        "email~0f1e2d3c-aaaa-bbbb-cccc-000000000001",  # an email row, not an alert
        "scan~x",
        "run~",
        "run~" + "a" * 241,
        "",
        7,
        None,
    ],
)
def test_an_alert_id_that_is_not_one_is_refused(alert_id: object) -> None:
    reason = refusal(body(alert_id=alert_id))
    assert "alert_id" in reason
    # The reason names the key, never the hostile value.
    if isinstance(alert_id, str) and alert_id:
        assert alert_id not in reason


@pytest.mark.parametrize("deferrals", [True, False, -1, MAX_DEFERRALS + 1, 10**30, 1.0, 0.5, "1", None, [0]])
def test_deferrals_must_be_a_small_whole_number(deferrals: object) -> None:
    assert "deferrals" in refusal(body(deferrals=deferrals))


def test_an_oversized_message_is_refused_before_it_is_parsed() -> None:
    padding = "x" * MAX_MESSAGE_BYTES
    assert "too large" in refusal(body(padding=padding))
    # Even when it would be valid JSON of the right shape otherwise.
    assert "too large" in refusal(" " * MAX_MESSAGE_BYTES + body())


def test_deeply_nested_json_is_refused_not_crashing() -> None:
    assert refusal("[" * 3000 + "]" * 3000)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=MAX_MESSAGE_BYTES + 16))
def test_arbitrary_bytes_only_ever_raise_malformed_message(raw: bytes) -> None:
    try:
        message = parse_alert_message(raw)
    except MalformedMessage as refused:
        assert refused.reason
        return
    assert isinstance(message, AlertMessage)


# Messages that look like ours, with every value drawn from anything JSON can hold.
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {"schema": st.just(SCHEMA)},
        optional={
            "partition": _json_values,
            "alert_id": _json_values,
            "deferrals": _json_values,
            "extra": _json_values,
        },
    )
)
def test_near_miss_documents_only_ever_raise_malformed_message(candidate: dict[str, Any]) -> None:
    try:
        message = parse_alert_message(json.dumps(candidate))
    except MalformedMessage:
        return
    assert json.loads(message.to_json()) == candidate

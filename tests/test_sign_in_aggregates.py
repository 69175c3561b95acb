"""SignInStore against a real Azurite: stream states and aggregates read back exactly as written,
and rows of the format before resumable reads read back as what they meant."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableServiceClient

from partnerguard.storage.keys import finding_row_key, tenant_key
from partnerguard.storage.limits import MAX_NAME_UNITS
from partnerguard.storage.sign_in_aggregates import (
    FRONTIER_IDS_KEPT,
    AggregateRecord,
    CountMark,
    RangeMark,
    SignInStore,
    StreamState,
    aggregate_key,
    sign_in_table_names,
)
from testbed.azurite import AzuriteProcess

pytestmark = pytest.mark.azurite

TENANT = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
OTHER_TENANT = "0a0a0a0a-1111-4222-8333-444444444444"
NOW = datetime(2026, 11, 26, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture
def store(azurite: AzuriteProcess, table_prefix: str) -> Iterator[SignInStore]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    sign_in_store = SignInStore(service, prefix=table_prefix)
    sign_in_store.ensure_tables()
    yield sign_in_store
    for table in (sign_in_store.aggregates_table, sign_in_store.watermarks_table):
        service.delete_table(table.table_name)
    sign_in_store.close()
    service.close()


def record(subject_id: str, rule: str = "legacy-auth.sign-ins", **overrides: object) -> AggregateRecord:
    fields: dict[str, object] = {
        "rule": rule,
        "subject_id": subject_id,
        "user_id": "3f98e277-4cbd-47ad-9c90-a9587403e430",
        "user_principal_name": "isaiah.langer@contoso.example",
        "user_display_name": "Isaiah Langer",
        "app_id": "4765445b-32c6-49b0-83e6-1d93765276ca",
        "app_display_name": "OfficeHome",
        "client_app_used": "IMAP4",
        "first_seen": NOW - timedelta(days=2, microseconds=7),
        "last_seen": NOW,
        "count": 3,
        "event_types": {"interactiveUser"},
        "counted_through": {
            "interactiveUser": CountMark(NOW, frozenset({"a", "b"})),
            "nonInteractiveUser|sf": CountMark(NOW - timedelta(seconds=1, microseconds=1), None),
        },
        "counting": {
            "interactiveUser|legacy:Outlook Anywhere (RPC over HTTP)": RangeMark(
                "2026-11-26T00:00:00+00:00/2026-11-26T12:00:00+00:00",
                NOW,
                frozenset({"c"}),
                NOW - timedelta(hours=3, microseconds=3),
                frozenset({"d", "e"}),
            )
        },
    }
    fields.update(overrides)
    return AggregateRecord(**fields)  # type: ignore[arg-type]


def test_table_names_fit_azure_rules() -> None:
    assert sign_in_table_names("pg") == ("pgsignins", "pgsigninmarks")
    assert all(len(name) <= 63 for name in sign_in_table_names("p" * 52))
    with pytest.raises(ValueError):
        sign_in_table_names("1bad")


def test_stream_states_round_trip_per_tenant(store: SignInStore) -> None:
    assert store.streams(TENANT) == {}
    full = StreamState("interactiveUser", "interactiveUser", "full", NOW, NOW - timedelta(hours=168), density=12.5)
    filtered = StreamState(
        "nonInteractiveUser|legacy:Outlook Anywhere (RPC over HTTP)",
        "nonInteractiveUser",
        "filtered",
        read_through=None,
        covered_from=None,
        floor=NOW - timedelta(hours=1, microseconds=9),
        range_since=NOW - timedelta(hours=168),
        range_until=NOW,
        frontier=NOW - timedelta(hours=5, microseconds=1),
        frontier_ids=("x", "y"),
        range_read=2**33,
        range_pages=7,
    )
    store.save_stream(TENANT, full, NOW)
    store.save_stream(TENANT, filtered, NOW)
    assert store.streams(TENANT) == {full.key: full, filtered.key: filtered}
    assert store.streams(OTHER_TENANT) == {}
    finished = StreamState(filtered.key, filtered.event_type, "filtered", NOW, NOW - timedelta(hours=168))
    store.save_stream(TENANT, finished, NOW)  # optional properties left out read back as None
    assert store.streams(TENANT)[filtered.key] == finished


def test_a_mode_switch_replaces_the_streams_in_one_go(store: SignInStore) -> None:
    old = StreamState("interactiveUser", "interactiveUser", "full", NOW, NOW)
    store.save_stream(TENANT, old, NOW)
    new = [StreamState(f"interactiveUser|{n}", "interactiveUser", "filtered", NOW, NOW, floor=NOW) for n in "ab"]
    store.replace_streams(TENANT, new, [old.key], NOW)
    assert store.streams(TENANT) == {state.key: state for state in new}


def test_rows_of_the_old_format_read_as_what_they_meant(store: SignInStore) -> None:
    # Written before streams were resumable: the watermark's `newest` is where reading resumed,
    # and `counted_through` held a bare instant per event type ("every sign-in at it counted").
    store.watermarks_table.upsert_entity(
        {
            "PartitionKey": tenant_key(TENANT),
            "RowKey": "interactiveUser",
            "event_type": "interactiveUser",
            "newest": NOW,
            "covered_from": NOW - timedelta(hours=168),
            "updated": NOW,
        }
    )
    assert store.streams(TENANT) == {
        "interactiveUser": StreamState("interactiveUser", "interactiveUser", "full", NOW, NOW - timedelta(hours=168))
    }
    entity = {
        "PartitionKey": tenant_key(TENANT),
        "RowKey": finding_row_key("legacy-auth.sign-ins", "u|imap4"),
        "rule": "legacy-auth.sign-ins",
        "subject_id": "u|imap4",
        "first_seen": NOW - timedelta(days=1),
        "last_seen": NOW,
        "count": 2,
        "event_types": '["interactiveUser"]',
        "counted_through": '{"interactiveUser": "' + NOW.isoformat() + '"}',
    }
    store.aggregates_table.upsert_entity(entity)
    (read,) = store.aggregates(TENANT)
    assert read.counted_through == {"interactiveUser": CountMark(NOW, None)}
    assert read.counting == {}
    assert read.counted_through["interactiveUser"].covers(NOW, "any id")


def test_aggregates_round_trip_exactly(store: SignInStore) -> None:
    written = record("3f98e277-4cbd-47ad-9c90-a9587403e430|imap4", count=2**40)
    store.save_aggregates(TENANT, [written])
    (read,) = store.aggregates(TENANT)
    assert read == written  # microseconds, the Int64 count, the marks per event type
    assert list(store.aggregates(OTHER_TENANT)) == []


def test_hostile_subject_ids_become_valid_keys_and_read_back(store: SignInStore) -> None:
    hostile = ["u/1|other clients", "u#2|imap?", "u\\3|\x07bell", "u%4|%41", "u5|" + "é" * 3000]
    records = [record(aggregate_key("legacy-auth.sign-ins", subject)[1]) for subject in hostile]
    store.save_aggregates(TENANT, records)
    assert sorted(r.subject_id for r in store.aggregates(TENANT)) == sorted(r.subject_id for r in records)
    keys = [row["RowKey"] for row in store.aggregates_table.list_entities(select=["RowKey"])]
    assert all(not set(key) & set("/\\#?") for key in keys)
    assert all(len(key) <= 480 for key in keys)


def test_long_names_are_capped_in_storage(store: SignInStore) -> None:
    store.save_aggregates(TENANT, [record("u|imap4", user_display_name="N" * 50_000, client_app_used="C" * 5000)])
    (read,) = store.aggregates(TENANT)
    assert len(read.user_display_name) == MAX_NAME_UNITS
    assert read.user_display_name.endswith("…")
    assert len(read.client_app_used) == MAX_NAME_UNITS


def test_many_aggregates_are_written_in_transactions_of_at_most_100(store: SignInStore) -> None:
    records = [record(f"user-{index:04d}|imap4") for index in range(250)]
    assert store.save_aggregates(TENANT, records) == 3
    assert len(list(store.aggregates(TENANT))) == 250
    assert store.delete_aggregates(TENANT, [r.key for r in records[:120]]) == 2
    assert sorted(r.subject_id for r in store.aggregates(TENANT)) == [r.subject_id for r in records[120:]]


def test_saving_again_replaces_the_row(store: SignInStore) -> None:
    first = record("u|imap4", count=1)
    store.save_aggregates(TENANT, [first])
    store.save_aggregates(TENANT, [record("u|imap4", count=5, event_types={"interactiveUser", "nonInteractiveUser"})])
    (read,) = store.aggregates(TENANT)
    assert read.count == 5
    assert read.event_types == {"interactiveUser", "nonInteractiveUser"}


def test_rows_are_keyed_like_findings(store: SignInStore) -> None:
    store.save_aggregates(TENANT, [record("u/1|imap4")])
    row = store.aggregates_table.get_entity(tenant_key(TENANT), finding_row_key("legacy-auth.sign-ins", "u/1|imap4"))
    assert row["subject_id"] == "u/1|imap4"


def test_a_frontier_shared_by_more_sign_ins_than_a_property_holds_keeps_the_checkpoint_writable(
    store: SignInStore,
) -> None:
    # 1,000 sign-in ids (36 characters each) at one instant are more than a 64 KiB string
    # property holds; the checkpoint keeps the first FRONTIER_IDS_KEPT (the rest are folded again
    # on resume, and the aggregates' own marks keep them from counting twice).
    ids = tuple(sorted(str(uuid.UUID(int=n)) for n in range(1000)))
    state = StreamState(
        "interactiveUser",
        "interactiveUser",
        "full",
        range_since=NOW - timedelta(hours=2),
        range_until=NOW,
        frontier=NOW - timedelta(hours=1),
        frontier_ids=ids,
        range_read=1000,
        range_pages=1,
    )
    store.save_stream(TENANT, state, NOW)
    assert store.streams(TENANT)["interactiveUser"].frontier_ids == ids[:FRONTIER_IDS_KEPT]

"""Sign-in watermarks and per-subject sign-in aggregates in Azure Table Storage.

Re-reading a week of sign-ins every scan does not scale (SPEC §6), so `partnerguard.sign_in_collection`
reads them incrementally and keeps what the checks need here:

- `<prefix>signinmarks` — one row per (tenant, event type). PartitionKey: the tenant key;
  RowKey: the escaped event type (`interactiveUser`, `nonInteractiveUser`). Holds `newest`, the
  newest `createdDateTime` folded from that stream, and `covered_from`, the instant from which
  the stored aggregates are complete (a look-back reaching further back needs a full re-read).
- `<prefix>signins` — one row per (tenant, rule, subject): PartitionKey the tenant key, RowKey
  `<rule>|<escaped subject id>` (`keys.finding_row_key`, so it matches the finding's key). Holds
  the raw rule and subject id, the latest user and app names, `first_seen`, `last_seen`, `count`
  (Int64), the event types seen, and `counted_through`: per event type, the newest sign-in
  already counted, which keeps a re-read sign-in from being counted twice (see
  `partnerguard.sign_in_collection`).

All of a tenant's aggregates share a partition, so they are written as entity-group
transactions of up to 100 rows (`batching.py`). Tenant-controlled text (names, client app
strings) is capped as the findings store caps it (`limits.py`, `sanitize.py`) before it is
written, and every entity is measured against Azure's limits first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from azure.data.tables import EdmType, EntityProperty, TableClient, TableServiceClient

from partnerguard.model import SignInAggregate
from partnerguard.storage.batching import delete, submit_all, upsert
from partnerguard.storage.keys import TABLE_NAME_RE, TABLE_PREFIX_RE, escape_key, finding_row_key, tenant_key
from partnerguard.storage.limits import MAX_NAME_UNITS, cap_text, to_json
from partnerguard.storage.records import as_utc
from partnerguard.storage.sanitize import storable_subject_id

AGGREGATES_SUFFIX = "signins"
WATERMARKS_SUFFIX = "signinmarks"


def sign_in_table_names(prefix: str) -> tuple[str, str]:
    """The aggregates and watermarks table names for a prefix (alphanumeric, letter first)."""
    if not TABLE_PREFIX_RE.match(prefix):
        raise ValueError(f"table prefix must be 1-52 letters or digits starting with a letter, got {prefix!r}")
    names = (f"{prefix}{AGGREGATES_SUFFIX}", f"{prefix}{WATERMARKS_SUFFIX}")
    if not all(TABLE_NAME_RE.match(name) for name in names):
        raise ValueError(f"table prefix {prefix!r} makes a table name longer than 63 characters")
    return names


def storable_name(value: str) -> str:
    """A tenant-controlled name or client app string, capped as findings cap subject names."""
    return cap_text(value, MAX_NAME_UNITS)


@dataclass(frozen=True)
class Watermark:
    """How far one stream of sign-ins (a tenant and event type) has been folded."""

    event_type: str
    newest: datetime  # the newest createdDateTime folded from this stream
    # From here on the stored aggregates are complete: the later of where the reads began and
    # the last purge cutoff (older aggregates were deleted).
    covered_from: datetime


@dataclass(slots=True)
class AggregateRecord:
    """A stored aggregate as the fold updates it; `to_aggregate()` is what the checks read.

    `subject_id` and the names are kept in their storable form (capped), so a record read back
    has the same key as the one written.
    """

    rule: str
    subject_id: str
    user_id: str
    user_principal_name: str
    user_display_name: str
    app_id: str
    app_display_name: str
    client_app_used: str
    first_seen: datetime
    last_seen: datetime
    count: int
    event_types: set[str] = field(default_factory=set)
    # Event type -> the newest createdDateTime of a sign-in of that stream already counted.
    counted_through: dict[str, datetime] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return (self.rule, self.subject_id)

    def to_aggregate(self) -> SignInAggregate:
        return SignInAggregate(
            rule=self.rule,
            subject_id=self.subject_id,
            user_id=self.user_id,
            user_principal_name=self.user_principal_name,
            user_display_name=self.user_display_name,
            app_id=self.app_id,
            app_display_name=self.app_display_name,
            client_app_used=self.client_app_used,
            first_seen=self.first_seen,
            last_seen=self.last_seen,
            count=self.count,
            event_types=tuple(sorted(self.event_types)),
        )


def aggregate_key(rule: str, subject_id: str) -> tuple[str, str]:
    """The (rule, subject id) an aggregate is stored under: the id in its storable form."""
    return (rule, storable_subject_id(subject_id))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    # Int64 properties read back as EntityProperty(value, EdmType.INT64).
    raw = value.value if isinstance(value, EntityProperty) else value
    return raw if isinstance(raw, int) and not isinstance(raw, bool) else 0


def _instant(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _counted_through_from_json(text: Any) -> dict[str, datetime]:
    if not isinstance(text, str):
        return {}
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError:
        return {}
    marks: dict[str, datetime] = {}
    if isinstance(loaded, dict):
        for event_type, value in loaded.items():
            moment = _instant(value) if isinstance(value, str) else None
            if moment is not None:
                marks[str(event_type)] = moment
    return marks


def _event_types_from_json(text: Any) -> set[str]:
    if not isinstance(text, str):
        return set()
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError:
        return set()
    return {item for item in loaded if isinstance(item, str)} if isinstance(loaded, list) else set()


def record_from_entity(entity: Mapping[str, Any]) -> AggregateRecord | None:
    """The record a stored row holds; None for a row missing its times (never written by us)."""
    first_seen = as_utc(entity.get("first_seen"))
    last_seen = as_utc(entity.get("last_seen"))
    rule = _text(entity.get("rule"))
    subject_id = _text(entity.get("subject_id"))
    if first_seen is None or last_seen is None or not rule or not subject_id:
        return None
    return AggregateRecord(
        rule=rule,
        subject_id=subject_id,
        user_id=_text(entity.get("user_id")),
        user_principal_name=_text(entity.get("user_principal_name")),
        user_display_name=_text(entity.get("user_display_name")),
        app_id=_text(entity.get("app_id")),
        app_display_name=_text(entity.get("app_display_name")),
        client_app_used=_text(entity.get("client_app_used")),
        first_seen=first_seen,
        last_seen=last_seen,
        count=_int(entity.get("count")),
        event_types=_event_types_from_json(entity.get("event_types")),
        counted_through=_counted_through_from_json(entity.get("counted_through")),
    )


def entity_from_record(tenant_id: str, record: AggregateRecord) -> dict[str, Any]:
    return {
        "PartitionKey": tenant_key(tenant_id),
        "RowKey": finding_row_key(record.rule, record.subject_id),
        "rule": record.rule,
        "subject_id": record.subject_id,
        "user_id": storable_name(record.user_id),
        "user_principal_name": storable_name(record.user_principal_name),
        "user_display_name": storable_name(record.user_display_name),
        "app_id": storable_name(record.app_id),
        "app_display_name": storable_name(record.app_display_name),
        "client_app_used": storable_name(record.client_app_used),
        "first_seen": record.first_seen,
        "last_seen": record.last_seen,
        "count": EntityProperty(record.count, EdmType.INT64),
        "event_types": to_json(sorted(record.event_types)),
        # ISO text with microseconds: the exact instants the fold compares against.
        "counted_through": to_json(
            {event_type: moment.astimezone(UTC).isoformat() for event_type, moment in record.counted_through.items()}
        ),
    }


class SignInStore:
    """Watermarks and aggregates of sign-ins, per tenant. Synchronous, like `ScanStore`."""

    def __init__(self, service: TableServiceClient, prefix: str = "pg") -> None:
        aggregates, watermarks = sign_in_table_names(prefix)
        self.service = service
        self.aggregates_table: TableClient = service.get_table_client(aggregates)
        self.watermarks_table: TableClient = service.get_table_client(watermarks)

    def ensure_tables(self) -> None:
        for table in (self.aggregates_table, self.watermarks_table):
            self.service.create_table_if_not_exists(table.table_name)

    def close(self) -> None:
        """Closes the table clients; the service client is the caller's."""
        for table in (self.aggregates_table, self.watermarks_table):
            table.close()

    # -- watermarks ---------------------------------------------------------------------------

    def watermark(self, tenant_id: str, event_type: str) -> Watermark | None:
        rows = list(
            self.watermarks_table.query_entities(
                "PartitionKey eq @pk and RowKey eq @rk",
                parameters={"pk": tenant_key(tenant_id), "rk": escape_key(event_type)},
            )
        )
        if not rows:
            return None
        newest = as_utc(rows[0].get("newest"))
        covered_from = as_utc(rows[0].get("covered_from"))
        if newest is None or covered_from is None:
            return None
        return Watermark(event_type=event_type, newest=newest, covered_from=covered_from)

    def set_watermark(self, tenant_id: str, watermark: Watermark, now: datetime) -> None:
        self.watermarks_table.upsert_entity(
            {
                "PartitionKey": tenant_key(tenant_id),
                "RowKey": escape_key(watermark.event_type),
                "event_type": watermark.event_type,
                "newest": watermark.newest,
                "covered_from": watermark.covered_from,
                "updated": now,
            }
        )

    # -- aggregates ---------------------------------------------------------------------------

    def aggregates(self, tenant_id: str) -> Iterator[AggregateRecord]:
        """Every stored aggregate of the tenant (one partition; pages of 1,000 rows)."""
        rows = self.aggregates_table.query_entities("PartitionKey eq @pk", parameters={"pk": tenant_key(tenant_id)})
        for row in rows:
            record = record_from_entity(row)
            if record is not None:
                yield record

    def save_aggregates(self, tenant_id: str, records: Iterable[AggregateRecord]) -> int:
        """Upsert the records as transactions of at most 100; returns the transactions sent."""
        return submit_all(self.aggregates_table, (upsert(entity_from_record(tenant_id, r)) for r in records))

    def delete_aggregates(self, tenant_id: str, keys: Iterable[tuple[str, str]]) -> int:
        """Delete the aggregates of these (rule, subject id) keys; returns the transactions sent."""
        partition = tenant_key(tenant_id)
        return submit_all(
            self.aggregates_table,
            (delete(partition, finding_row_key(rule, subject_id)) for rule, subject_id in keys),
        )

"""Sign-in stream states and per-subject sign-in aggregates in Azure Table Storage.

Re-reading a week of sign-ins every scan does not scale (SPEC §6), so `partnerguard.sign_in_collection`
reads them incrementally, in streams, and keeps what the checks need here:

- `<prefix>signinmarks` — one row per (tenant, stream). PartitionKey: the tenant key; RowKey: the
  escaped stream key (`interactiveUser` and `nonInteractiveUser` for the full streams, as before
  filtered streams existed; `interactiveUser|sf`, `interactiveUser|legacy:IMAP4`, ... for the
  filtered ones, `partnerguard.sign_in_streams`). Holds the stream's `StreamState`: how far it has
  read (`read_through`), from where the aggregates are complete (`covered_from`), the `floor`
  below which it never counts, the observed density, and the range in progress with its
  frontier (the checkpoint written after every page). Rows written before streams were
  resumable hold `newest` and `covered_from` only; they read back as a full stream whose
  `read_through` is `newest` (where the old design resumed).
- `<prefix>signins` — one row per (tenant, rule, subject): PartitionKey the tenant key, RowKey
  `<rule>|<escaped subject id>` (`keys.finding_row_key`, so it matches the finding's key). Holds
  the raw rule and subject id, the latest user and app names, `first_seen`, `last_seen`, `count`
  (Int64), the event types seen, and the counting marks that keep a re-read sign-in from being
  counted twice (see `partnerguard.sign_in_collection`): `counted_through`, per stream key the
  newest sign-in counted in completed ranges (with the ids counted at exactly that instant;
  rows of the old format hold a bare instant per event type, read as "every sign-in at that
  instant"), and `counting`, per stream key the mark of the range in progress.

All of a tenant's aggregates and stream rows share a partition each, so they are written as
entity-group transactions of up to 100 rows (`batching.py`); a mode switch replaces a tenant's
stream rows in one transaction. Tenant-controlled text (names, client app strings) is capped as
the findings store caps it (`limits.py`, `sanitize.py`) before it is written, and every entity
is measured against Azure's limits first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from azure.data.tables import EdmType, EntityProperty, TableClient, TableServiceClient, UpdateMode

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


StreamMode = Literal["full", "filtered"]


# The stream's frontier ids only spare a resumed read from folding again what it folded (and
# tell progress from a re-served page); counting never depends on them, since every aggregate
# keeps its own marks. So past this many sign-ins at one instant (a 64 KiB property holds ~800
# ids) the rest are simply folded again on resume, and the checkpoint stays writable.
FRONTIER_IDS_KEPT = 500


@dataclass(frozen=True)
class StreamState:
    """How far one stream of sign-ins (a tenant and stream key) has been read: the checkpoint."""

    key: str  # the stream key (RowKey, unescaped)
    event_type: str
    mode: StreamMode
    # The `until` of the last completed range: the next range starts WATERMARK_OVERLAP before it.
    read_through: datetime | None = None
    # From here on the stored aggregates are complete (the later of where the reads began and
    # the last purge cutoff). A look-back reaching further back needs a full-window read.
    covered_from: datetime | None = None
    # Set when the stream replaced a stream of the other mode: through this instant the other
    # mode counted, so this stream counts only sign-ins newer than it (it still folds older ones).
    floor: datetime | None = None
    # Sign-ins per hour of the event type, measured over completed full ranges (None: never).
    density: float | None = None
    # The range in progress (both inclusive), None when none is.
    range_since: datetime | None = None
    range_until: datetime | None = None
    # The oldest sign-in folded in the range in progress, and the ids folded at exactly it.
    frontier: datetime | None = None
    frontier_ids: tuple[str, ...] = ()
    # Sign-ins read and pages read in the range in progress (density and progress reports).
    range_read: int = 0
    range_pages: int = 0

    @property
    def in_progress(self) -> bool:
        return self.range_since is not None and self.range_until is not None


@dataclass(frozen=True)
class CountMark:
    """The newest sign-in a stream counted for an aggregate in completed ranges."""

    at: datetime
    # The ids counted at exactly `at`; None for marks of the old format: every sign-in at `at`.
    ids: frozenset[str] | None

    def covers(self, created: datetime, sign_in_id: str) -> bool:
        """Whether a sign-in at `created` is at or before the mark, so already counted (or, when
        older, older than what was counted: the count stays a lower bound)."""
        if created != self.at:
            return created < self.at
        return self.ids is None or sign_in_id in self.ids


@dataclass(frozen=True)
class RangeMark:
    """What a stream counted for an aggregate in the range it is reading: every sign-in of the
    aggregate between `oldest` and `newest` it read there (ties at the ends by id)."""

    range_id: str
    newest: datetime
    newest_ids: frozenset[str]
    oldest: datetime
    oldest_ids: frozenset[str]

    def covers(self, created: datetime, sign_in_id: str) -> bool:
        if created == self.newest and sign_in_id in self.newest_ids:
            return True
        if created == self.oldest and sign_in_id in self.oldest_ids:
            return True
        return self.oldest < created < self.newest

    def including(self, created: datetime, sign_in_id: str) -> RangeMark:
        """The mark once the sign-in at `created` is counted too."""
        newest, newest_ids = self.newest, self.newest_ids
        if created > newest:
            newest, newest_ids = created, frozenset({sign_in_id})
        elif created == newest:
            newest_ids = newest_ids | {sign_in_id}
        oldest, oldest_ids = self.oldest, self.oldest_ids
        if created < oldest:
            oldest, oldest_ids = created, frozenset({sign_in_id})
        elif created == oldest:
            oldest_ids = oldest_ids | {sign_in_id}
        return RangeMark(self.range_id, newest, newest_ids, oldest, oldest_ids)

    def completed(self, before: CountMark | None) -> CountMark:
        """The completed-ranges mark once this (completed) range folds into `before`."""
        if before is None or self.newest > before.at:
            return CountMark(self.newest, self.newest_ids)
        if self.newest < before.at:
            return before
        return CountMark(before.at, None if before.ids is None else before.ids | self.newest_ids)


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
    # Stream key -> the newest sign-in counted in that stream's completed ranges.
    counted_through: dict[str, CountMark] = field(default_factory=dict)
    # Stream key -> what that stream counted in the range it is reading (not yet folded).
    counting: dict[str, RangeMark] = field(default_factory=dict)

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


def _loaded(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def _ids(value: Any) -> frozenset[str]:
    return frozenset(item for item in value if isinstance(item, str)) if isinstance(value, list) else frozenset()


def _counted_through_from_json(text: Any) -> dict[str, CountMark]:
    """Both formats: {stream key: {"at": iso, "ids": [...]}} and the old {event type: iso}."""
    loaded = _loaded(text)
    marks: dict[str, CountMark] = {}
    if isinstance(loaded, dict):
        for key, value in loaded.items():
            if isinstance(value, str):
                moment = _instant(value)
                if moment is not None:
                    marks[str(key)] = CountMark(moment, None)
            elif isinstance(value, dict) and isinstance(value.get("at"), str):
                moment = _instant(value["at"])
                if moment is not None:
                    ids = value.get("ids")
                    marks[str(key)] = CountMark(moment, None if ids is None else _ids(ids))
    return marks


def _counting_from_json(text: Any) -> dict[str, RangeMark]:
    loaded = _loaded(text)
    marks: dict[str, RangeMark] = {}
    if isinstance(loaded, dict):
        for key, value in loaded.items():
            if not isinstance(value, dict) or not isinstance(value.get("range"), str):
                continue
            newest_text, oldest_text = value.get("newest"), value.get("oldest")
            newest = _instant(newest_text) if isinstance(newest_text, str) else None
            oldest = _instant(oldest_text) if isinstance(oldest_text, str) else None
            if newest is None or oldest is None:
                continue
            marks[str(key)] = RangeMark(
                value["range"], newest, _ids(value.get("newest_ids")), oldest, _ids(value.get("oldest_ids"))
            )
    return marks


def _iso(moment: datetime) -> str:
    # ISO text with microseconds: the exact instants the fold compares against.
    return moment.astimezone(UTC).isoformat()


def _counted_through_to_json(marks: Mapping[str, CountMark]) -> str:
    return to_json(
        {
            key: {"at": _iso(mark.at), "ids": None if mark.ids is None else sorted(mark.ids)}
            for key, mark in sorted(marks.items())
        }
    )


def _counting_to_json(marks: Mapping[str, RangeMark]) -> str:
    return to_json(
        {
            key: {
                "range": mark.range_id,
                "newest": _iso(mark.newest),
                "newest_ids": sorted(mark.newest_ids),
                "oldest": _iso(mark.oldest),
                "oldest_ids": sorted(mark.oldest_ids),
            }
            for key, mark in sorted(marks.items())
        }
    )


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
        counting=_counting_from_json(entity.get("counting")),
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
        "counted_through": _counted_through_to_json(record.counted_through),
        "counting": _counting_to_json(record.counting),
    }


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def stream_state_from_entity(entity: Mapping[str, Any]) -> StreamState | None:
    """The state a stream row holds; rows of the old watermark format read as full streams."""
    key = _text(entity.get("stream_key")) or _text(entity.get("event_type"))
    event_type = _text(entity.get("event_type"))
    if not key or not event_type:
        return None
    mode: StreamMode = "filtered" if entity.get("mode") == "filtered" else "full"
    read_through = as_utc(entity.get("read_through"))
    if read_through is None and "mode" not in entity:
        read_through = as_utc(entity.get("newest"))  # the old watermark: where the old design resumed
    loaded_ids = _loaded(entity.get("frontier_ids"))
    return StreamState(
        key=key,
        event_type=event_type,
        mode=mode,
        read_through=read_through,
        covered_from=as_utc(entity.get("covered_from")),
        floor=as_utc(entity.get("floor")),
        density=_float(entity.get("density")),
        range_since=as_utc(entity.get("range_since")),
        range_until=as_utc(entity.get("range_until")),
        frontier=as_utc(entity.get("frontier")),
        frontier_ids=tuple(sorted(_ids(loaded_ids))),
        range_read=_int(entity.get("range_read")),
        range_pages=_int(entity.get("range_pages")),
    )


def entity_from_stream_state(tenant_id: str, state: StreamState, now: datetime) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": tenant_key(tenant_id),
        "RowKey": escape_key(state.key),
        "stream_key": state.key,
        "event_type": state.event_type,
        "mode": state.mode,
        "frontier_ids": to_json(sorted(state.frontier_ids)[:FRONTIER_IDS_KEPT]),
        "range_read": EntityProperty(state.range_read, EdmType.INT64),
        "range_pages": EntityProperty(state.range_pages, EdmType.INT64),
        "updated": now,
    }
    optional: dict[str, datetime | float | None] = {
        "read_through": state.read_through,
        "covered_from": state.covered_from,
        "floor": state.floor,
        "density": state.density,
        "range_since": state.range_since,
        "range_until": state.range_until,
        "frontier": state.frontier,
    }
    # A property left out reads back as None: Table Storage has no null.
    entity.update({name: value for name, value in optional.items() if value is not None})
    return entity


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

    # -- stream states ------------------------------------------------------------------------

    def streams(self, tenant_id: str) -> dict[str, StreamState]:
        """Every stream state of the tenant, by stream key (one partition, a few dozen rows)."""
        rows = self.watermarks_table.query_entities("PartitionKey eq @pk", parameters={"pk": tenant_key(tenant_id)})
        states: dict[str, StreamState] = {}
        for row in rows:
            state = stream_state_from_entity(row)
            if state is not None:
                states[state.key] = state
        return states

    def save_stream(self, tenant_id: str, state: StreamState, now: datetime) -> None:
        """The checkpoint: one row, written after the aggregates it accounts for."""
        # Replace, not merge: a property left out (a range finished) must not survive.
        self.watermarks_table.upsert_entity(entity_from_stream_state(tenant_id, state, now), mode=UpdateMode.REPLACE)

    def replace_streams(
        self, tenant_id: str, new: Iterable[StreamState], old_keys: Iterable[str], now: datetime
    ) -> None:
        """A mode switch: the new streams written and the old ones deleted in one transaction, so
        no reader ever sees both modes of an event type (or neither)."""
        partition = tenant_key(tenant_id)
        new_states = list(new)
        kept = {state.key for state in new_states}
        operations = [upsert(entity_from_stream_state(tenant_id, state, now)) for state in new_states]
        operations += [delete(partition, escape_key(key)) for key in old_keys if key not in kept]
        submit_all(self.watermarks_table, operations)

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

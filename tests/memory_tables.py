"""Table Storage in memory, for the alert simulation (tests/alerts_simulation.py): the part of
`azure.data.tables` the alert outbox uses, with the service's semantics where they matter to
exactly-once delivery, so that thousands of schedules run in seconds.

- every entity carries an ETag that changes on every write; an update or delete conditioned
  on a stale ETag fails with `ResourceModifiedError`, an update of a missing row with
  `ResourceNotFoundError`, a create of an existing row with `ResourceExistsError`;
- MERGE adds and overwrites properties, REPLACE swaps the entity; upsert creates or does either;
- a delete of a missing row is silent (the SDK swallows the 404);
- a transaction is one partition, at most 100 operations, all or nothing (`TableTransactionError`);
- queries take the OData filters the stores write (`and`, `or`, `not`, parentheses, `eq ne lt le
  gt ge`, `@parameters`, string, boolean, integer and datetime literals); a comparison with a
  property the entity lacks, or of another type, is false (`ne` included); results come in
  PartitionKey, RowKey order; `select` returns only the named properties the entity has.

tests/test_memory_tables.py runs the same operations against Azurite and asserts the same
answers, operation by operation, and replays seeded simulation schedules on both.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableEntity, TableTransactionError, TransactionOperation, UpdateMode

Key = tuple[str, str]

_ETAGS = itertools.count(1)


def _etag() -> str:
    return f'W/"memory-{next(_ETAGS)}"'


def _stored(value: Any) -> Any:
    """What the service keeps: aware datetimes in UTC (naive ones are taken as UTC)."""
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)
    return value


class MemoryTable:
    """One table: `TableClient`'s calls that the stores make."""

    def __init__(self, name: str) -> None:
        self.table_name = name
        self.rows: dict[Key, tuple[dict[str, Any], str]] = {}

    # -- single entities ----------------------------------------------------------------------

    def _key(self, entity: Mapping[str, Any]) -> Key:
        return str(entity["PartitionKey"]), str(entity["RowKey"])

    def _entity(self, key: Key, select: Sequence[str] | None = None) -> TableEntity:
        properties, etag = self.rows[key]
        chosen = {name: properties[name] for name in select if name in properties} if select else dict(properties)
        entity = TableEntity(**chosen)
        entity._metadata = {"etag": etag, "timestamp": None}
        return entity

    def create_entity(self, entity: Mapping[str, Any]) -> dict[str, Any]:
        key = self._key(entity)
        if key in self.rows:
            raise ResourceExistsError("The specified entity already exists.")
        etag = _etag()
        self.rows[key] = ({name: _stored(value) for name, value in entity.items()}, etag)
        return {"etag": etag}

    def get_entity(self, partition_key: str, row_key: str, **_: Any) -> TableEntity:
        key = (partition_key, row_key)
        if key not in self.rows:
            raise ResourceNotFoundError("The specified resource does not exist.")
        return self._entity(key)

    def _check(self, key: Key, etag: str | None, match_condition: Any) -> None:
        if key not in self.rows:
            raise ResourceNotFoundError("The specified resource does not exist.")
        if match_condition == MatchConditions.IfNotModified and etag != self.rows[key][1]:
            raise ResourceModifiedError("The update condition specified in the request was not satisfied.")

    def _write(self, key: Key, entity: Mapping[str, Any], mode: UpdateMode) -> dict[str, Any]:
        new = {name: _stored(value) for name, value in entity.items()}
        properties = {**self.rows[key][0], **new} if mode == UpdateMode.MERGE and key in self.rows else new
        etag = _etag()
        self.rows[key] = (properties, etag)
        return {"etag": etag}

    def update_entity(
        self,
        entity: Mapping[str, Any],
        mode: UpdateMode = UpdateMode.MERGE,
        *,
        etag: str | None = None,
        match_condition: Any = None,
        **_: Any,
    ) -> dict[str, Any]:
        key = self._key(entity)
        self._check(key, etag, match_condition)
        return self._write(key, entity, mode)

    def upsert_entity(self, entity: Mapping[str, Any], mode: UpdateMode = UpdateMode.MERGE, **_: Any) -> dict[str, Any]:
        return self._write(self._key(entity), entity, mode)

    def delete_entity(
        self,
        partition_key: str,
        row_key: str,
        *,
        etag: str | None = None,
        match_condition: Any = None,
        **_: Any,
    ) -> None:
        key = (partition_key, row_key)
        if key not in self.rows:
            return None  # the SDK swallows a 404 on delete
        self._check(key, etag, match_condition)
        del self.rows[key]
        return None

    # -- queries ------------------------------------------------------------------------------

    def query_entities(
        self,
        query_filter: str,
        *,
        parameters: Mapping[str, Any] | None = None,
        select: Sequence[str] | str | None = None,
        **_: Any,
    ) -> Iterator[TableEntity]:
        test = parse_filter(query_filter, parameters or {})
        chosen = [select] if isinstance(select, str) else select
        for key in sorted(self.rows):
            if test(self.rows[key][0]):
                yield self._entity(key, chosen)

    def list_entities(self, **_: Any) -> Iterator[TableEntity]:
        for key in sorted(self.rows):
            yield self._entity(key)

    # -- transactions -------------------------------------------------------------------------

    def submit_transaction(self, operations: Iterable[Any]) -> list[dict[str, Any]]:
        batch = list(operations)
        if not batch or len(batch) > 100:
            raise TableTransactionError(message="a transaction holds 1 to 100 operations")
        partitions = {str(operation[1]["PartitionKey"]) for operation in batch}
        if len(partitions) != 1:
            raise TableTransactionError(message="a transaction is one partition")
        saved = dict(self.rows)
        results: list[dict[str, Any]] = []
        try:
            for operation in batch:
                raw_kind, entity = operation[0], operation[1]
                kind = raw_kind.value if isinstance(raw_kind, TransactionOperation) else str(raw_kind).lower()
                options = operation[2] if len(operation) > 2 else {}
                key = self._key(entity)
                if kind == TransactionOperation.CREATE.value:
                    results.append(self.create_entity(entity))
                elif kind == TransactionOperation.UPSERT.value:
                    results.append(self.upsert_entity(entity, options.get("mode", UpdateMode.MERGE)))
                elif kind == TransactionOperation.UPDATE.value:
                    results.append(self.update_entity(entity, options.get("mode", UpdateMode.MERGE), **options))
                elif kind == TransactionOperation.DELETE.value:
                    if key not in self.rows:
                        raise ResourceNotFoundError("The specified resource does not exist.")
                    self.delete_entity(*key, **options)
                    results.append({})
                else:
                    raise ValueError(f"unknown transaction operation {kind!r}")
        except (ResourceExistsError, ResourceNotFoundError, ResourceModifiedError) as error:
            self.rows = saved
            raise TableTransactionError(message=str(error)) from error
        return results

    def close(self) -> None:
        return None


class MemoryTableService:
    """`TableServiceClient`'s calls the stores make: tables by name, created on demand."""

    def __init__(self) -> None:
        self.tables: dict[str, MemoryTable] = {}

    def get_table_client(self, table_name: str) -> MemoryTable:
        return self.tables.setdefault(table_name, MemoryTable(table_name))

    def create_table_if_not_exists(self, table_name: str) -> MemoryTable:
        return self.get_table_client(table_name)

    def delete_table(self, table_name: str) -> None:
        self.tables.pop(table_name, None)

    def close(self) -> None:
        return None


# -- OData filters ------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<open>\()|(?P<close>\))|(?P<string>'(?:[^']|'')*')"
    r"|(?P<datetime>datetime'[^']*')|(?P<param>@[A-Za-z_]\w*)|(?P<number>-?\d+L?)|(?P<word>[A-Za-z_]\w*))"
)
_COMPARISONS = {"eq", "ne", "lt", "le", "gt", "ge"}
_MISSING = object()


def _tokens(text: str, parameters: Mapping[str, Any]) -> list[tuple[str, Any]]:
    tokens: list[tuple[str, Any]] = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if match is None:
            raise ValueError(f"cannot read the filter at {text[position:]!r}")
        position = match.end()
        kind = match.lastgroup
        value = match.group(kind or "")
        if kind == "string":
            tokens.append(("value", value[1:-1].replace("''", "'")))
        elif kind == "datetime":
            tokens.append(("value", datetime.fromisoformat(value[9:-1].replace("Z", "+00:00"))))
        elif kind == "param":
            tokens.append(("value", parameters[value[1:]]))
        elif kind == "number":
            tokens.append(("value", int(value.rstrip("L"))))
        elif kind == "word" and value in ("true", "false"):
            tokens.append(("value", value == "true"))
        elif kind == "word" and value in _COMPARISONS | {"and", "or", "not"}:
            tokens.append(("op", value))
        elif kind == "word":
            tokens.append(("name", value))
        else:
            tokens.append((kind or "", value))
    return tokens


def _comparable(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool)
    if isinstance(left, datetime) or isinstance(right, datetime):
        return isinstance(left, datetime) and isinstance(right, datetime)
    if isinstance(left, int | float) or isinstance(right, int | float):
        return isinstance(left, int | float) and isinstance(right, int | float)
    return isinstance(left, str) and isinstance(right, str)


def _compare(op: str, left: Any, right: Any) -> bool:
    if left is _MISSING or not _comparable(left, right):
        return False
    if isinstance(left, datetime):
        left, right = _stored(left), _stored(right)
    return bool(
        {
            "eq": left == right,
            "ne": left != right,
            "lt": left < right,
            "le": left <= right,
            "gt": left > right,
            "ge": left >= right,
        }[op]
    )


def parse_filter(text: str, parameters: Mapping[str, Any]) -> Any:
    """A predicate over an entity's properties for the OData `text`."""
    tokens = _tokens(text, parameters)
    position = 0

    def peek() -> tuple[str, Any] | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> tuple[str, Any]:
        nonlocal position
        if position >= len(tokens):
            raise ValueError(f"the filter {text!r} ends too early")
        token = tokens[position]
        position += 1
        return token

    def expression() -> Any:
        left = conjunction()
        while peek() == ("op", "or"):
            take()
            right = conjunction()
            left = (lambda a, b: lambda row: a(row) or b(row))(left, right)
        return left

    def conjunction() -> Any:
        left = unary()
        while peek() == ("op", "and"):
            take()
            right = unary()
            left = (lambda a, b: lambda row: a(row) and b(row))(left, right)
        return left

    def unary() -> Any:
        if peek() == ("op", "not"):
            take()
            inner = unary()
            return lambda row: not inner(row)
        if peek() == ("open", "("):
            take()
            inner = expression()
            if take() != ("close", ")"):
                raise ValueError("unbalanced parentheses in the filter")
            return inner
        kind, name = take()
        op_kind, op = take()
        value_kind, value = take()
        if kind != "name" or op_kind != "op" or op not in _COMPARISONS or value_kind != "value":
            raise ValueError(f"unsupported comparison in the filter {text!r}")
        return lambda row: _compare(op, row.get(name, _MISSING), value)

    predicate = expression()
    if position != len(tokens):
        raise ValueError(f"trailing tokens in the filter {text!r}")
    return predicate

"""Write many entities as few entity-group transactions as Table Storage allows.

A transaction holds up to 100 operations on one partition and at most 4 MiB. Operations are
grouped by partition, in order, and cut whenever the next one would break either limit: writing
10,000 findings of one tenant is 100 transactions, not 10,000 requests. Every entity is checked
against the entity limits first, so nothing is half-written because of a size error found late.
A failed transaction raises (`TableTransactionError`); azure-core's retry policy has already
retried transient failures (connection errors, 5xx) by then.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from azure.data.tables import TableClient, TransactionOperation, UpdateMode

from partnerguard.storage.limits import MAX_BATCH_BYTES, MAX_BATCH_OPERATIONS, check_entity, wire_bytes

Operation = tuple[TransactionOperation, Mapping[str, Any], Mapping[str, Any]]


def upsert(entity: Mapping[str, Any], mode: UpdateMode = UpdateMode.REPLACE) -> Operation:
    return (TransactionOperation.UPSERT, entity, {"mode": mode})


def delete(partition_key: str, row_key: str) -> Operation:
    return (TransactionOperation.DELETE, {"PartitionKey": partition_key, "RowKey": row_key}, {})


def plan_batches(operations: Iterable[Operation]) -> list[list[Operation]]:
    """Operations grouped into transactions: one partition each, within the count and size limits."""
    by_partition: dict[str, list[Operation]] = {}
    for operation in operations:
        check_entity(operation[1])
        by_partition.setdefault(str(operation[1]["PartitionKey"]), []).append(operation)
    batches: list[list[Operation]] = []
    for partition_operations in by_partition.values():
        current: list[Operation] = []
        current_bytes = 0
        seen_rows: set[str] = set()
        for operation in partition_operations:
            size = wire_bytes(operation[1])
            row_key = str(operation[1]["RowKey"])
            # A transaction may touch each row once; a second write to a row starts a new one.
            full = len(current) >= MAX_BATCH_OPERATIONS or current_bytes + size > MAX_BATCH_BYTES
            if current and (full or row_key in seen_rows):
                batches.append(current)
                current, current_bytes, seen_rows = [], 0, set()
            current.append(operation)
            current_bytes += size
            seen_rows.add(row_key)
        if current:
            batches.append(current)
    return batches


def submit_all(table: TableClient, operations: Iterable[Operation]) -> int:
    """Submit the operations as transactions; returns how many transactions were sent."""
    batches = plan_batches(operations)
    for batch in batches:
        table.submit_transaction(batch)
    return len(batches)

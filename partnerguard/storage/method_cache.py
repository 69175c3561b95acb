"""`MethodCache`: each user's registered authentication methods, as last read, in Table Storage.

The mfa.registration fallback reads `/users/{id}/authentication/methods` one user at a time in
Graph's reports throttling class (5 requests per 10 s per tenant): a tenant of a few thousand
users takes longer than one scan may spend. Keeping what was read for a day lets repeated scans
converge (each reads only the users the cache does not hold fresh) and lets a scan that ran out
of time pick up where the last one stopped.

Table `<prefix>methodcache`: PartitionKey the tenant id (escaped like every tenant key), RowKey
the escaped user id; properties `user_id` (raw), `methods` (JSON list of the `@odata.type` of
each registered method) and `read_at` (when Graph was read). One partition per tenant, so a
scan writes its users as entity-group transactions of up to 100 rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient

from partnerguard.storage.batching import submit_all, upsert
from partnerguard.storage.keys import TABLE_NAME_RE, TABLE_PREFIX_RE, bounded_key, tenant_key
from partnerguard.storage.limits import cap_text

TABLE_SUFFIX = "methodcache"
# Up to this many users are looked up one by one; more read the tenant's fresh rows in one query
# (1,000 rows a page) and keep the ones asked for.
POINT_READ_LIMIT = 50
# A user registers a handful of methods; anything longer is not a Graph answer we trust.
MAX_METHODS_PER_USER = 64
MAX_METHOD_TYPE_CHARS = 200


def method_cache_table_name(prefix: str) -> str:
    if not TABLE_PREFIX_RE.match(prefix):
        raise ValueError(f"table prefix must be 1-52 letters or digits starting with a letter, got {prefix!r}")
    name = prefix + TABLE_SUFFIX
    assert TABLE_NAME_RE.match(name)
    return name


def _methods_property(methods: Sequence[str]) -> str:
    kept = [cap_text(str(method), MAX_METHOD_TYPE_CHARS) for method in methods[:MAX_METHODS_PER_USER]]
    return json.dumps(kept, ensure_ascii=False)


def _parse_methods(value: Any) -> tuple[str, ...] | None:
    """The stored list, or None when the row does not hold one (read as a cache miss)."""
    if not isinstance(value, str):
        return None
    try:
        parsed = json.loads(value)
    except json.JSONDecodeError:
        return None
    if not isinstance(parsed, list) or not all(isinstance(item, str) for item in parsed):
        return None
    return tuple(parsed)


def _is_fresh(entity: Mapping[str, Any], fresh_after: datetime) -> bool:
    read_at = entity.get("read_at")
    return isinstance(read_at, datetime) and read_at >= fresh_after


class MethodCache:
    """Per-tenant, per-user authentication methods with the time they were read."""

    def __init__(self, service: TableServiceClient, prefix: str = "pg") -> None:
        self.service = service
        self.table: TableClient = service.get_table_client(method_cache_table_name(prefix))

    def ensure_tables(self) -> None:
        self.service.create_table_if_not_exists(self.table.table_name)

    def close(self) -> None:
        # The service client is the caller's (shared with the scan store); only ours is closed.
        self.table.close()

    def get_many(self, tenant_id: str, user_ids: Iterable[str], fresh_after: datetime) -> dict[str, tuple[str, ...]]:
        """Methods of those of `user_ids` read at or after `fresh_after`, by user id."""
        wanted = set(user_ids)
        if not wanted:
            return {}
        partition = tenant_key(tenant_id)
        found: dict[str, tuple[str, ...]] = {}
        if len(wanted) <= POINT_READ_LIMIT:
            for user_id in wanted:
                try:
                    entity = self.table.get_entity(partition, bounded_key("", user_id))
                except ResourceNotFoundError:
                    continue
                self._keep(entity, wanted, fresh_after, found)
            return found
        rows = self.table.query_entities(
            "PartitionKey eq @partition and read_at ge @fresh_after",
            parameters={"partition": partition, "fresh_after": fresh_after},
            select=["user_id", "methods", "read_at"],
        )
        for entity in rows:
            self._keep(entity, wanted, fresh_after, found)
        return found

    @staticmethod
    def _keep(
        entity: Mapping[str, Any], wanted: set[str], fresh_after: datetime, found: dict[str, tuple[str, ...]]
    ) -> None:
        user_id = entity.get("user_id")
        if not isinstance(user_id, str) or user_id not in wanted or not _is_fresh(entity, fresh_after):
            return
        methods = _parse_methods(entity.get("methods"))
        if methods is not None:
            found[user_id] = methods

    def put_many(self, tenant_id: str, methods_by_user: Mapping[str, Sequence[str]], now: datetime) -> int:
        """Store (replace) each user's methods as read at `now`; returns the transactions sent."""
        partition = tenant_key(tenant_id)
        operations = [
            upsert(
                {
                    "PartitionKey": partition,
                    "RowKey": bounded_key("", user_id),
                    "user_id": user_id,
                    "methods": _methods_property(methods),
                    "read_at": now,
                }
            )
            for user_id, methods in methods_by_user.items()
        ]
        return submit_all(self.table, operations) if operations else 0

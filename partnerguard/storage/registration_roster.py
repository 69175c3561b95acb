"""`RegistrationRoster`: what the last full read of a tenant's registration report returned.

Between full reads a scan asks Graph only for the report's not-capable rows
(`partnerguard.registration_read`); everyone else is taken from this roster. It holds per user
what the checks read from a report row: id, isMfaCapable, isMfaRegistered, isAdmin, userType and
methodsRegistered; and the ids of the users the users list held but the report lacked (it lags
behind new users), so that until the next full read they go to the fallback as they did after
it, instead of being asked for by id every scan. Names are not kept: findings name users from
the users list, never from the report, so the roster of a 100,000-user tenant stays near 5 MB.

Table `<prefix>regroster`, one partition per tenant (the escaped tenant id):

- chunk rows `g<generation>|<index>`: users packed many to an entity (ASCII JSON
  `{"m": [method names], "u": [[id, flags, [method indexes], userType?], ...]}`, split across
  string properties of at most 30 K characters, at most ~400 K characters an entity, so each
  stays far under the 1 MiB entity and 255-property limits); 100,000 users are about 13 rows,
  written as two or three entity-group transactions;
- the header row `roster`: the generation in use, when its full read ran (`read_at`), its users,
  chunks and the report pages that full read took.

Users read one by one between full reads are appended to the generation in use: their chunk
rows first, then the header's counts, on its ETag (chunks past the header's count are ignored).
A new roster is written as a new generation, then the header is switched to it, then the other
generations are deleted. A crash before the switch leaves the previous generation in use
(the new chunks are garbage, deleted by the next write); a crash after it leaves garbage only.
A reader that finds the header's generation incomplete (two writers racing, one deleting the
other's chunks) reads no roster, and the scan falls back to a full read: never a half roster.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableServiceClient, UpdateMode

from partnerguard.model import RegistrationDetail
from partnerguard.storage.batching import Operation, delete, submit_all, upsert
from partnerguard.storage.keys import TABLE_NAME_RE, TABLE_PREFIX_RE, tenant_key
from partnerguard.storage.limits import CHUNK_CHARS, cap_text, join_chunks, split_chunks, to_json

log = logging.getLogger(__name__)

TABLE_SUFFIX = "regroster"
HEADER_ROW = "roster"
# Characters of packed JSON per chunk entity: ~800 KB as UTF-16, under the 1 MiB entity limit with
# room for the properties' names; 14 properties of CHUNK_CHARS.
CHUNK_ENTITY_CHARS = 400_000
# Report values are Graph's: an id is a GUID, a method name a short enum. Anything longer is not
# an answer we keep verbatim (the id is then skipped: a scan reads that user like a new one).
MAX_ID_CHARS = 256
MAX_METHODS_PER_USER = 64
MAX_METHOD_CHARS = 200
MAX_USER_TYPE_CHARS = 64

CAPABLE, REGISTERED, ADMIN = 1, 2, 4
# A user the users list held when the report was read whole, but the report did not: the scans
# until the next full read send them to the fallback instead of asking the report by id.
ABSENT = 8
DEFAULT_USER_TYPE = "member"


def registration_roster_table_name(prefix: str) -> str:
    if not TABLE_PREFIX_RE.match(prefix):
        raise ValueError(f"table prefix must be 1-52 letters or digits starting with a letter, got {prefix!r}")
    name = prefix + TABLE_SUFFIX
    assert TABLE_NAME_RE.match(name)
    return name


@dataclass(frozen=True)
class Roster:
    """A complete generation: the report's rows by user id, when they were read, and what the
    full read cost (its pages), so a scan can tell whether reading new users one by one is cheaper."""

    read_at: datetime
    pages: int
    rows: Mapping[str, RegistrationDetail]
    absent: frozenset[str] = frozenset()
    # Where it is stored, for `RegistrationRoster.append`: generation, chunks, entries, header ETag.
    generation: str = ""
    chunks: int = 0
    entries: int = 0
    etag: str | None = None


def _flags(row: RegistrationDetail) -> int:
    return (
        (CAPABLE if row.is_mfa_capable else 0)
        | (REGISTERED if row.is_mfa_registered else 0)
        | (ADMIN if row.is_admin else 0)
    )


class _ChunkBuilder:
    """Users packed into self-contained chunks (each has its own method dictionary)."""

    def __init__(self) -> None:
        self.chunks: list[str] = []
        self._methods: dict[str, int] = {}
        self._users: list[str] = []
        self._size = 0

    def add_absent(self, user_id: str) -> bool:
        if len(user_id) > MAX_ID_CHARS:
            return False
        if self._users and self._size + 400 > CHUNK_ENTITY_CHARS:
            self.flush()
        text = to_json([user_id, ABSENT, []])
        self._users.append(text)
        self._size += len(text) + 1
        return True

    def add(self, row: RegistrationDetail) -> bool:
        if len(row.id) > MAX_ID_CHARS:
            return False
        methods = [cap_text(str(method), MAX_METHOD_CHARS) for method in row.methods_registered[:MAX_METHODS_PER_USER]]
        new_names = [name for name in dict.fromkeys(methods) if name not in self._methods]
        cost = sum(len(to_json(name)) + 1 for name in new_names)
        if self._users and self._size + cost + 400 + 8 * len(methods) > CHUNK_ENTITY_CHARS:
            self.flush()
            new_names = list(dict.fromkeys(methods))
        for name in new_names:
            self._methods[name] = len(self._methods)
            self._size += len(to_json(name)) + 1
        entry: list[Any] = [row.id, _flags(row), [self._methods[name] for name in methods]]
        user_type = cap_text(row.user_type, MAX_USER_TYPE_CHARS)
        if user_type != DEFAULT_USER_TYPE:
            entry.append(user_type)
        text = to_json(entry)
        self._users.append(text)
        self._size += len(text) + 1
        return True

    def flush(self) -> None:
        if not self._users:
            return
        names = to_json(sorted(self._methods, key=self._methods.__getitem__))
        self.chunks.append('{"m":' + names + ',"u":[' + ",".join(self._users) + "]}")
        self._methods, self._users, self._size = {}, [], 0


def pack(rows: Iterable[RegistrationDetail], absent: Iterable[str] = ()) -> tuple[list[str], int]:
    """The rows and the absent users' ids as chunk texts, and how many entries they hold."""
    builder = _ChunkBuilder()
    entries = sum(1 for row in rows if builder.add(row))
    entries += sum(1 for user_id in absent if builder.add_absent(user_id))
    builder.flush()
    return builder.chunks, entries


def unpack(text: str) -> tuple[list[RegistrationDetail], list[str]]:
    """The rows and absent users of one chunk; ValueError when it is not one `pack` wrote."""
    data = json.loads(text)
    if not isinstance(data, dict) or not isinstance(data.get("m"), list) or not isinstance(data.get("u"), list):
        raise ValueError("not a roster chunk")
    names: list[str] = [str(name) for name in data["m"]]
    rows: list[RegistrationDetail] = []
    absent: list[str] = []
    for entry in data["u"]:
        if not isinstance(entry, list) or len(entry) not in (3, 4):
            raise ValueError("not a roster entry")
        user_id, flags, method_indexes = entry[0], entry[1], entry[2]
        if not isinstance(user_id, str) or not isinstance(flags, int) or not isinstance(method_indexes, list):
            raise ValueError("not a roster entry")
        if flags & ABSENT:
            absent.append(user_id)
            continue
        rows.append(
            RegistrationDetail(
                id=user_id,
                user_principal_name="",
                user_display_name="",
                user_type=str(entry[3]) if len(entry) == 4 else DEFAULT_USER_TYPE,
                is_admin=bool(flags & ADMIN),
                is_mfa_capable=bool(flags & CAPABLE),
                is_mfa_registered=bool(flags & REGISTERED),
                methods_registered=tuple(names[index] for index in method_indexes),
            )
        )
    return rows, absent


def _chunk_row_key(generation: str, index: int) -> str:
    return f"g{generation}|{index:06d}"


class RegistrationRoster:
    """Per-tenant roster of the registration report, replaced whole, one generation at a time."""

    def __init__(self, service: TableServiceClient, prefix: str = "pg") -> None:
        self.service = service
        self.table: TableClient = service.get_table_client(registration_roster_table_name(prefix))

    def ensure_tables(self) -> None:
        self.service.create_table_if_not_exists(self.table.table_name)

    def close(self) -> None:
        # The service client is the caller's (shared with the scan store); only ours is closed.
        self.table.close()

    # -- reading -----------------------------------------------------------------------------

    def load(self, tenant_id: str) -> Roster | None:
        """The tenant's roster in use; None when there is none or its generation is incomplete."""
        partition = tenant_key(tenant_id)
        try:
            header = self.table.get_entity(partition, HEADER_ROW)
        except ResourceNotFoundError:
            return None
        generation, read_at = header.get("generation"), header.get("read_at")
        chunks, users, pages = header.get("chunks"), header.get("users"), header.get("pages")
        if not (
            isinstance(generation, str)
            and isinstance(read_at, datetime)
            and isinstance(chunks, int)
            and isinstance(users, int)
            and isinstance(pages, int)
        ):
            log.warning("tenant %s: registration roster header unreadable; reading the report whole", tenant_id)
            return None
        texts: dict[int, str] = {}
        for entity in self.table.query_entities(
            "PartitionKey eq @partition and RowKey ge @low and RowKey lt @high",
            parameters={"partition": partition, "low": f"g{generation}|", "high": f"g{generation}}}"},
        ):
            suffix = str(entity["RowKey"]).rpartition("|")[2]
            text = join_chunks("users", entity)
            # Chunks past the header's count are an append that crashed before its header update.
            if suffix.isdigit() and int(suffix) < chunks and text is not None:
                texts[int(suffix)] = text
        rows: dict[str, RegistrationDetail] = {}
        absent: set[str] = set()
        try:
            if sorted(texts) != list(range(chunks)):
                raise ValueError(f"{len(texts)} of {chunks} chunks")
            for index in range(chunks):
                chunk_rows, chunk_absent = unpack(texts[index])
                rows.update((row.id, row) for row in chunk_rows)
                absent.update(chunk_absent)
            if len(rows) + len(absent) != users:
                raise ValueError(f"{len(rows) + len(absent)} of {users} entries")
        except (ValueError, KeyError, IndexError, TypeError) as error:
            log.warning("tenant %s: registration roster incomplete (%s); reading the report whole", tenant_id, error)
            return None
        etag = header.metadata.get("etag")
        return Roster(read_at, pages, rows, frozenset(absent), generation, chunks, users, etag)

    # -- writing -----------------------------------------------------------------------------

    def replace(
        self,
        tenant_id: str,
        rows: Sequence[RegistrationDetail],
        read_at: datetime,
        pages: int,
        absent: Iterable[str] = (),
    ) -> int:
        """Make `rows` (a full read at `read_at`, `pages` report pages) and `absent` (listed users
        the report lacked) the tenant's roster; returns the entries stored. New generation first,
        then the header switch, then the old ones go."""
        partition = tenant_key(tenant_id)
        generation = secrets.token_hex(8)
        by_id = {row.id: row for row in rows}  # one entry per user, whatever the answer held
        chunks, users = pack(by_id.values(), sorted(set(absent) - by_id.keys()))
        self._write_chunks(partition, generation, chunks)
        self._switch(partition, generation, read_at, users, len(chunks), pages)
        try:
            self._delete_other_generations(partition, generation)
        except Exception as error:
            # Only garbage is left: the next replace deletes it.
            log.warning("tenant %s: old registration roster rows not deleted: %s", tenant_id, type(error).__name__)
        return users

    def append(
        self, tenant_id: str, roster: Roster, rows: Sequence[RegistrationDetail], absent: Iterable[str] = ()
    ) -> bool:
        """Add users read one by one since `roster`'s full read (rows, and ids the report lacks) to
        that generation, so later scans do not read them again until the next full read. Chunks
        first, then the header, only if it is still the one `roster` was loaded from; False when
        another scan changed it meanwhile (nothing is lost: those users are read again)."""
        chunks, entries = pack(rows, absent)
        if not chunks:
            return True
        if roster.etag is None:
            return False
        partition = tenant_key(tenant_id)
        self._write_chunks(partition, roster.generation, chunks, first=roster.chunks)
        try:
            self.table.update_entity(
                {
                    "PartitionKey": partition,
                    "RowKey": HEADER_ROW,
                    "generation": roster.generation,
                    "read_at": roster.read_at,
                    "users": roster.entries + entries,
                    "chunks": roster.chunks + len(chunks),
                    "pages": roster.pages,
                },
                mode=UpdateMode.REPLACE,
                etag=roster.etag,
                match_condition=MatchConditions.IfNotModified,
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            return False
        return True

    def _write_chunks(self, partition: str, generation: str, chunks: Sequence[str], first: int = 0) -> None:
        operations = [
            upsert(
                {
                    "PartitionKey": partition,
                    "RowKey": _chunk_row_key(generation, first + index),
                    **split_chunks("users", text),
                }
            )
            for index, text in enumerate(chunks)
        ]
        self._submit(operations)

    def _switch(self, partition: str, generation: str, read_at: datetime, users: int, chunks: int, pages: int) -> None:
        self.table.upsert_entity(
            {
                "PartitionKey": partition,
                "RowKey": HEADER_ROW,
                "generation": generation,
                "read_at": read_at,
                "users": users,
                "chunks": chunks,
                "pages": pages,
            }
        )

    def _delete_other_generations(self, partition: str, generation: str) -> None:
        keep = f"g{generation}|"
        stale = [
            str(entity["RowKey"])
            for entity in self.table.query_entities(
                "PartitionKey eq @partition", parameters={"partition": partition}, select=["RowKey"]
            )
        ]
        self._submit(
            [delete(partition, row_key) for row_key in stale if row_key != HEADER_ROW and not row_key.startswith(keep)]
        )

    def _submit(self, operations: Sequence[Operation]) -> None:
        if operations:
            submit_all(self.table, operations)


assert CHUNK_ENTITY_CHARS // CHUNK_CHARS + 2 < 255  # properties per chunk entity

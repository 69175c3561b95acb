"""`exceptions import FILE`: make the store hold what a reviewed exceptions file says, idempotently.

Matching is on the finding an exception covers (tenant, check, subject):
- no valid exception covers it: one is added;
- a valid one has the file's terms (reason, accepted by, expiry): nothing is written;
- a valid one has other terms: a new exception with the file's terms replaces it (added first,
  then the old one removed, so the finding is never uncovered; accepted_risks.py keeps exceptions
  immutable, and the audit trail shows both the old terms and the new).
An entry whose expiry has come is skipped (exceptions_file.py says why): it is neither added nor
allowed to end the valid exception of its finding, if one exists.

Importing the same file twice therefore changes no exception the second time, on any later day.
Exceptions the file does not name are left alone: a file may cover one team's tenants, or be older
than an exception added by hand since, and an import that deleted whatever it did not list would
turn a partial or stale file into silently ended exceptions — the findings would alert as new.
Ending one stays explicit (`exceptions remove`, with who and why).

The audit trail records an import twice over. Every exception row it adds or removes carries its
source (accepted_risks.AuditSource: the file's name, the SHA-256 of its content, who imported it).
And each import, whatever it changed (nothing included), writes one import record: that source,
when, and how many entries were created, updated, unchanged and skipped as expired — so "this
reviewed file was applied on this day, by this person" can be shown even when it changed nothing.
The record is written last, once the import has done its work: an import cut short leaves its
exception rows (each with its source) and no record, and running it again finishes it.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from azure.core.exceptions import ResourceNotFoundError

from partnerguard.storage.accepted_risks import (
    IMPORTS_PARTITION,
    AuditSource,
    ExceptionRecord,
    ExceptionStore,
    validate_upn,
)
from partnerguard.storage.exceptions_file import ExceptionsFile, SkippedEntry
from partnerguard.storage.records import as_utc

IMPORT_EVENT = "imported"


@dataclass
class ImportResult:
    created: list[ExceptionRecord] = field(default_factory=list)
    updated: list[ExceptionRecord] = field(default_factory=list)  # the new records that replaced others
    unchanged: list[ExceptionRecord] = field(default_factory=list)
    skipped_expired: list[SkippedEntry] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.created)} created, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
            f"{len(self.skipped_expired)} skipped (expired)"
        )


@dataclass(frozen=True)
class ImportRecord:
    """One `exceptions import` in the audit trail: its source, when, and what it did."""

    source: AuditSource
    at: datetime
    created: int
    updated: int
    unchanged: int
    skipped_expired: int


def import_exceptions(store: ExceptionStore, file: ExceptionsFile, imported_by: str) -> ImportResult:
    """Apply a validated file (exceptions_file.read_exceptions_file) to the store, then record the
    import in the audit trail."""
    source = AuditSource(file.name, file.sha256, validate_upn(imported_by, "--by"))
    valid: dict[tuple[str, str, str], list[ExceptionRecord]] = defaultdict(list)
    for record in store.list():
        valid[(record.tenant_id, record.check_id, record.subject_id)].append(record)
    result = ImportResult(skipped_expired=list(file.skipped))
    for wanted in file.exceptions:
        current = valid.get(wanted.key, [])
        keep = next((record for record in current if wanted.same_terms(record)), None)
        if keep is not None:
            # Another valid one beside it can only be left by an import interrupted between its
            # add and its removal: finish that removal now.
            for other in current:
                if other.id != keep.id:
                    store.remove(other.id, source.imported_by, f"replaced by exception {keep.id}", source=source)
            result.unchanged.append(keep)
            continue
        record = store.add(
            wanted.tenant_id,
            wanted.check_id,
            wanted.subject_id,
            wanted.reason,
            wanted.accepted_by,
            wanted.expires,
            source=source,
            replaces=[old.id for old in current],
        )
        (result.updated if current else result.created).append(record)
    _record_import(store, source, result)
    return result


def _record_import(store: ExceptionStore, source: AuditSource, result: ImportResult) -> None:
    # A partition of its own in the audit table: tenant partitions hold one exception's events each
    # (accepted_risks.py), and an import spans tenants. A random row key: imports are never
    # updated, and two at the same moment are two imports.
    store.audit.create_entity(
        {
            "PartitionKey": IMPORTS_PARTITION,
            "RowKey": str(uuid.uuid4()),
            "event": IMPORT_EVENT,
            "source_file": source.file,
            "source_sha256": source.sha256,
            "imported_by": source.imported_by,
            "at": store.clock(),
            "created": len(result.created),
            "updated": len(result.updated),
            "unchanged": len(result.unchanged),
            "skipped_expired": len(result.skipped_expired),
        }
    )


def import_records(store: ExceptionStore) -> list[ImportRecord]:
    """Every import recorded in the audit trail, oldest first."""
    rows = store.audit.query_entities("PartitionKey eq @pk", parameters={"pk": IMPORTS_PARTITION})
    try:
        entities = list(rows)
    except ResourceNotFoundError as error:
        if getattr(error, "error_code", None) == "TableNotFound":
            return []  # no exception table yet: nothing was ever imported
        raise
    records = []
    for row in entities:
        at = as_utc(row.get("at"))
        if at is None:
            raise ValueError(f"import record {row.get('RowKey')!r} has no time")
        source = AuditSource(str(row["source_file"]), str(row["source_sha256"]), str(row["imported_by"]))
        counts = (int(row[name]) for name in ("created", "updated", "unchanged", "skipped_expired"))
        records.append((at, str(row["RowKey"]), ImportRecord(source, at, *counts)))
    return [record for *_, record in sorted(records, key=lambda item: (item[0], item[1]))]

"""`exceptions import FILE`: make the store hold what a reviewed exceptions file says, idempotently.

Matching is on the finding an exception covers (tenant, check, subject):
- no valid exception covers it: one is added;
- a valid one has the file's terms (reason, accepted by, expiry): nothing is written;
- a valid one has other terms: a new exception with the file's terms replaces it (added first,
  then the old one removed, so the finding is never uncovered; accepted_risks.py keeps exceptions
  immutable, and the audit trail shows both the old terms and the new).

Importing the same file twice therefore writes nothing the second time. Exceptions the file does
not name are left alone: a file may cover one team's tenants, or be older than an exception added
by hand since, and an import that deleted whatever it did not list would turn a partial or stale
file into silently ended exceptions — the findings would alert as new. Ending one stays explicit
(`exceptions remove`, with who and why).

Every row an import writes carries its source (accepted_risks.AuditSource): the file's name, the
SHA-256 of its content and who imported it.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from partnerguard.storage.accepted_risks import AuditSource, ExceptionRecord, ExceptionStore, validate_upn
from partnerguard.storage.exceptions_file import ExceptionsFile


@dataclass
class ImportResult:
    created: list[ExceptionRecord] = field(default_factory=list)
    updated: list[ExceptionRecord] = field(default_factory=list)  # the new records that replaced others
    unchanged: list[ExceptionRecord] = field(default_factory=list)

    def summary(self) -> str:
        return f"{len(self.created)} created, {len(self.updated)} updated, {len(self.unchanged)} unchanged"


def import_exceptions(store: ExceptionStore, file: ExceptionsFile, imported_by: str) -> ImportResult:
    """Apply a validated file (exceptions_file.read_exceptions_file) to the store."""
    source = AuditSource(file.name, file.sha256, validate_upn(imported_by, "--by"))
    valid: dict[tuple[str, str, str], list[ExceptionRecord]] = defaultdict(list)
    for record in store.list():
        valid[(record.tenant_id, record.check_id, record.subject_id)].append(record)
    result = ImportResult()
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
    return result

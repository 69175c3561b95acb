"""Exceptions (accepted risk, SPEC §1) in Azure Table Storage, with an append-only audit trail.

An exception names a tenant, a check and a subject id (exactly the finding's key), why the risk
is accepted, who accepted it, and the date it expires. While it is valid, the finding is reported
as `excepted` (and names the exception in its evidence); it does not alert, and a check whose
every finding is excepted passes.

**Validity.** An exception is valid from when it is added until its expiry day, in UTC, and not
on that day (SPEC §1: "the day it expires the finding alerts as if it were new"):
`--expires 2025-07-01` covers scans that start up to 2025-06-30T23:59:59Z; a scan that starts on
2025-07-01 (UTC) reports the finding `new` again, and it alerts as if it were new. A scan is
judged by the UTC date it started. The expiry must be after today (tomorrow at the earliest: an
exception expiring today would cover nothing) and at most 365 days ahead, so no risk is
accepted for more than a year. A removed exception is never valid again; to extend one, remove
it and add another.

**Tables** (prefix `pg` by default, like the scan tables):

- `<prefix>exceptions` — one row per exception. PartitionKey: the tenant key; RowKey: the
  exception id (`^[0-9A-Za-z-]{1,64}$`, a UUID). Holds tenant_id, check_id, subject_id, reason,
  accepted_by, created_at, expires (`YYYY-MM-DD`, so `expires gt @today` is a string comparison),
  removed (bool) and removed_at / removed_by / removed_reason.
- `<prefix>exceptaudit` — the audit trail: rows are created, never updated or deleted. One
  `added` row (who accepted, why, when, until when) and at most one `removed` row (who, why,
  when) per exception. PartitionKey: the tenant key; RowKey: `<exception id>|<event>`, so a
  second removal of the same exception cannot write a second, contradicting row. A row written
  by `exceptions import` also names its source: the file's name, the SHA-256 of its content and
  who imported it (`source_file`, `source_sha256`, `imported_by`). Each import also writes one
  record of its own, whatever it changed, in the partition `imports` (tenant keys are GUIDs, so
  it is no tenant's): its source, when, and its counts (exception_import.py). `audit_trail`
  lists the exceptions' events only.

**Write order.** The audit row is written first, the exception row second: a crash in between
leaves an audit entry for an exception that never took effect (harmless), never an exception in
effect that the audit trail does not know about. A removal whose audit row exists already (an
earlier attempt crashed, or two people removed at once) completes the exception row from that
audit row, so the two always agree.
"""

from __future__ import annotations

import builtins
import contextlib
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, TableServiceClient, UpdateMode

from partnerguard.clock import Clock, utc_now
from partnerguard.settings import StorageSettings, is_guid
from partnerguard.storage.keys import TABLE_NAME_RE, TABLE_PREFIX_RE, tenant_key, utf16_units
from partnerguard.storage.limits import MAX_SUBJECT_ID_UNITS
from partnerguard.storage.records import as_utc
from partnerguard.storage.store import table_service_client
from partnerguard.text import safe_text

EXCEPTION_ID_RE = re.compile(r"^[0-9A-Za-z-]{1,64}$")
MAX_EXCEPTION_DAYS = 365
MAX_REASON_UNITS = 1024
MAX_UPN_CHARS = 256
# A user principal name or an email address: RFC 5322 "atext" and dots before the @ (guest UPNs
# carry `#EXT#`), a dotted DNS name after it.
_UPN_RE = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
# Characters a subject id never holds: controls (C0, DEL, C1) and lone surrogates, which
# storage would replace, so an exception naming them could never match its finding.
_BAD_SUBJECT_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

EVENT_ADDED = "added"
EVENT_REMOVED = "removed"
# The audit table's partition of the import records (exception_import.py); tenant keys are GUIDs.
IMPORTS_PARTITION = "imports"

STATUS_ACTIVE = "active"
STATUS_EXPIRED = "expired"
STATUS_REMOVED = "removed"

EXCEPTIONS_SCHEMA = "partnerguard.exceptions/v1"


@dataclass(frozen=True)
class AuditSource:
    """Where a change came from when it was not typed by hand: an exceptions file (its name and
    the SHA-256 of its content, so the reviewed file can be found again) and who imported it."""

    file: str
    sha256: str
    imported_by: str

    def describe(self) -> str:
        return f"exceptions import of {self.file} (sha256 {self.sha256}) by {self.imported_by}"


class ExceptionError(ValueError):
    """An exception that cannot be added or removed as asked; the message says why, in one line."""


class ExceptionNotFoundError(ExceptionError):
    """No exception has this id."""


def exception_table_names(prefix: str) -> tuple[str, str]:
    """The exceptions and audit table names for a prefix (alphanumeric, letter first)."""
    if not TABLE_PREFIX_RE.match(prefix):
        raise ValueError(f"table prefix must be 1-52 letters or digits starting with a letter, got {prefix!r}")
    names = (f"{prefix}exceptions", f"{prefix}exceptaudit")
    assert all(TABLE_NAME_RE.match(name) for name in names)
    return names


def utc_day(moment: datetime) -> date:
    """The UTC calendar date of a moment: the day exceptions are judged by."""
    if moment.tzinfo is None:
        raise ValueError("times must be timezone-aware (UTC)")
    return moment.astimezone(UTC).date()


@dataclass(frozen=True)
class ExceptionRecord:
    id: str
    tenant_id: str
    check_id: str
    subject_id: str
    reason: str
    accepted_by: str
    created_at: datetime
    expires: date  # the day (UTC) the exception stops covering: it covers the days before
    removed_at: datetime | None = None
    removed_by: str | None = None
    removed_reason: str | None = None

    @property
    def removed(self) -> bool:
        return self.removed_at is not None

    def is_valid_on(self, day: date) -> bool:
        """Valid on the days (UTC) before the expiry day, not on it, unless removed."""
        return not self.removed and day < self.expires

    def status_on(self, day: date) -> str:
        if self.removed:
            return STATUS_REMOVED
        return STATUS_ACTIVE if day < self.expires else STATUS_EXPIRED

    def evidence(self) -> dict[str, Any]:
        """What every finding under this exception carries as `evidence.exception`."""
        return {
            "id": self.id,
            "reason": self.reason,
            "accepted_by": self.accepted_by,
            "expires": self.expires.isoformat(),
        }

    def to_document(self, today: date) -> dict[str, Any]:
        """One item of `exceptions list --format json`."""
        return {
            "id": self.id,
            "tenant_id": self.tenant_id,
            "check_id": self.check_id,
            "subject_id": self.subject_id,
            "reason": self.reason,
            "accepted_by": self.accepted_by,
            "created_at": _iso(self.created_at),
            "expires": self.expires.isoformat(),
            "status": self.status_on(today),
            "removed_at": _iso(self.removed_at) if self.removed_at else None,
            "removed_by": self.removed_by,
            "removed_reason": self.removed_reason,
        }

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> ExceptionRecord:
        created_at = as_utc(entity.get("created_at"))
        if created_at is None:
            raise ValueError(f"exception row {entity.get('RowKey')!r} has no created_at")
        removed_at = as_utc(entity.get("removed_at")) if entity.get("removed") is True else None
        return cls(
            id=str(entity["RowKey"]),
            tenant_id=str(entity["tenant_id"]),
            check_id=str(entity["check_id"]),
            subject_id=str(entity["subject_id"]),
            reason=str(entity["reason"]),
            accepted_by=str(entity["accepted_by"]),
            created_at=created_at,
            expires=date.fromisoformat(str(entity["expires"])),
            removed_at=removed_at,
            removed_by=_text(entity.get("removed_by")) if removed_at else None,
            removed_reason=_text(entity.get("removed_reason")) if removed_at else None,
        )


@dataclass(frozen=True)
class AuditEvent:
    """One row of the audit trail: an exception added or removed, by whom, when and why."""

    exception_id: str
    tenant_id: str
    event: str  # EVENT_ADDED | EVENT_REMOVED
    by: str
    reason: str
    at: datetime
    check_id: str
    subject_id: str
    expires: date
    source: AuditSource | None = None  # set when an exceptions import made the change

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> AuditEvent:
        at = as_utc(entity.get("at"))
        if at is None:
            raise ValueError(f"audit row {entity.get('RowKey')!r} has no time")
        file, sha256, imported_by = (_text(entity.get(k)) for k in ("source_file", "source_sha256", "imported_by"))
        return cls(
            exception_id=str(entity["exception_id"]),
            tenant_id=str(entity["tenant_id"]),
            event=str(entity["event"]),
            by=str(entity["by"]),
            reason=str(entity["reason"]),
            at=at,
            check_id=str(entity["check_id"]),
            subject_id=str(entity["subject_id"]),
            expires=date.fromisoformat(str(entity["expires"])),
            source=AuditSource(file, sha256, imported_by) if file and sha256 and imported_by else None,
        )


# -- validation ---------------------------------------------------------------------------------


def validate_tenant(tenant_id: str) -> str:
    if not is_guid(tenant_id):
        raise ExceptionError(f"a tenant id must be a GUID, got {_shown(tenant_id)}")
    return tenant_id.lower()


def validate_check(check_id: str, check_ids: Sequence[str]) -> str:
    if check_id not in check_ids:
        raise ExceptionError(f"unknown check {_shown(check_id)}; known checks: {', '.join(check_ids)}")
    return check_id


def validate_subject(subject_id: str) -> str:
    if not subject_id:
        raise ExceptionError("the subject id is empty")
    if subject_id != subject_id.strip():
        raise ExceptionError("the subject id starts or ends with whitespace; no finding's subject id does")
    if _BAD_SUBJECT_CHARS.search(subject_id):
        raise ExceptionError("the subject id holds control characters or lone surrogates; no finding's subject id does")
    if utf16_units(subject_id) > MAX_SUBJECT_ID_UNITS:
        raise ExceptionError(f"the subject id is longer than {MAX_SUBJECT_ID_UNITS} characters, the storage limit")
    return subject_id


def validate_reason(reason: str, what: str = "reason") -> str:
    reason = reason.strip()
    if not reason:
        raise ExceptionError(f"the {what} is empty: say why")
    if _BAD_SUBJECT_CHARS.search(reason.replace("\n", " ").replace("\t", " ")):
        raise ExceptionError(f"the {what} holds control characters or lone surrogates")
    if utf16_units(reason) > MAX_REASON_UNITS:
        raise ExceptionError(f"the {what} is longer than {MAX_REASON_UNITS} characters")
    return reason


def validate_upn(value: str, what: str = "accepted-by") -> str:
    value = value.strip()
    if len(value) > MAX_UPN_CHARS or not _UPN_RE.match(value):
        raise ExceptionError(f"{what} must be a user principal name or email address, got {_shown(value)}")
    return value


def validate_expiry(expires: date, today: date) -> date:
    """An expiry day after today (the exception stops covering on it) and at most 365 days ahead."""
    if expires < today:
        raise ExceptionError(f"the expiry {expires.isoformat()} is in the past (today is {today.isoformat()} UTC)")
    if expires == today:
        raise ExceptionError(
            f"the expiry {expires.isoformat()} is today (UTC): an exception stops covering on its expiry day, "
            f"so it would cover nothing; the earliest is {(today + timedelta(days=1)).isoformat()}"
        )
    latest = today + timedelta(days=MAX_EXCEPTION_DAYS)
    if expires > latest:
        raise ExceptionError(
            f"the expiry {expires.isoformat()} is more than {MAX_EXCEPTION_DAYS} days ahead "
            f"(the latest allowed is {latest.isoformat()})"
        )
    return expires


def validate_exception_id(exception_id: str) -> str:
    if not EXCEPTION_ID_RE.match(exception_id):
        raise ExceptionError(f"not an exception id: {_shown(exception_id)}")
    return exception_id


# -- the store ----------------------------------------------------------------------------------


class ExceptionStore:
    """Exceptions and their audit trail in one tenant-partitioned pair of tables.

    `check_ids` is the check catalogue an exception may name, given by the caller: storage knows
    rows, not rules, so it never imports the checks."""

    def __init__(
        self, service: TableServiceClient, prefix: str = "pg", *, check_ids: Sequence[str], clock: Clock = utc_now
    ) -> None:
        exceptions, audit = exception_table_names(prefix)
        self.check_ids = tuple(check_ids)
        self.service = service
        self.exceptions: TableClient = service.get_table_client(exceptions)
        self.audit: TableClient = service.get_table_client(audit)
        self.clock = clock

    @classmethod
    def from_settings(
        cls, settings: StorageSettings, prefix: str = "pg", *, check_ids: Sequence[str], **client_options: Any
    ) -> ExceptionStore:
        return cls(table_service_client(settings, **client_options), prefix=prefix, check_ids=check_ids)

    def close(self) -> None:
        for table in (self.exceptions, self.audit):
            table.close()
        self.service.close()

    def ensure_tables(self) -> None:
        for table in (self.exceptions, self.audit):
            self.service.create_table_if_not_exists(table.table_name)

    def add(
        self,
        tenant_id: str,
        check_id: str,
        subject_id: str,
        reason: str,
        accepted_by: str,
        expires: date,
        *,
        source: AuditSource | None = None,
        replaces: Sequence[str] = (),
    ) -> ExceptionRecord:
        """Accept the risk of one finding until `expires` (UTC), not on it; raises ExceptionError.

        `replaces` names valid exceptions of the same finding that this one supersedes (an import
        that changes an expiry or a reason): they are removed after the new one is written, so
        the finding is never uncovered in between; a crash in between leaves both valid, and the
        longer-lasting one applies until the import is run again."""
        now = self.clock()
        tenant_id = validate_tenant(tenant_id)
        record = ExceptionRecord(
            id=str(uuid.uuid4()),
            tenant_id=tenant_id,
            check_id=validate_check(check_id, self.check_ids),
            subject_id=validate_subject(subject_id),
            reason=validate_reason(reason),
            accepted_by=validate_upn(accepted_by),
            created_at=now,
            expires=validate_expiry(expires, utc_day(now)),
        )
        # One valid exception per finding: two would make "which one applies" a question.
        existing = self.active_for(tenant_id, utc_day(now)).get((record.check_id, record.subject_id))
        if existing is not None and existing.id not in replaces:
            raise ExceptionError(
                f"exception {existing.id} already covers this finding until {existing.expires.isoformat()}; "
                "remove it first to replace it"
            )
        partition = tenant_key(tenant_id)
        self.audit.create_entity(
            {
                "PartitionKey": partition,
                "RowKey": f"{record.id}|{EVENT_ADDED}",
                **self._audit_fields(record, EVENT_ADDED, record.accepted_by, record.reason, now, source),
            }
        )
        self.exceptions.create_entity(
            {
                "PartitionKey": partition,
                "RowKey": record.id,
                "tenant_id": record.tenant_id,
                "check_id": record.check_id,
                "subject_id": record.subject_id,
                "reason": record.reason,
                "accepted_by": record.accepted_by,
                "created_at": record.created_at,
                "expires": record.expires.isoformat(),
                "removed": False,
            }
        )
        for old in replaces:
            replacer = source.imported_by if source else record.accepted_by
            self.remove(old, replacer, f"replaced by exception {record.id}", source=source)
        return record

    def remove(self, exception_id: str, by: str, reason: str, *, source: AuditSource | None = None) -> ExceptionRecord:
        """End an exception now; it stays listed (`--include-expired`) and in the audit trail."""
        exception_id = validate_exception_id(exception_id)
        by = validate_upn(by, "--by")
        reason = validate_reason(reason)
        entity = self._find(exception_id)
        if entity is None:
            raise ExceptionNotFoundError(f"no exception has the id {exception_id}")
        record = ExceptionRecord.from_entity(entity)
        if record.removed:
            raise ExceptionError(f"exception {exception_id} was already removed by {record.removed_by}")
        partition = str(entity["PartitionKey"])
        audit_key = f"{exception_id}|{EVENT_REMOVED}"
        # If an earlier removal was recorded (a crashed attempt, a concurrent one), it stands and
        # the exception row is completed from it.
        with contextlib.suppress(ResourceExistsError):
            self.audit.create_entity(
                {
                    "PartitionKey": partition,
                    "RowKey": audit_key,
                    **self._audit_fields(record, EVENT_REMOVED, by, reason, self.clock(), source),
                }
            )
        removal = AuditEvent.from_entity(self.audit.get_entity(partition, audit_key))
        self.exceptions.upsert_entity(
            {
                "PartitionKey": partition,
                "RowKey": exception_id,
                "removed": True,
                "removed_at": removal.at,
                "removed_by": removal.by,
                "removed_reason": removal.reason,
            },
            mode=UpdateMode.MERGE,
        )
        return replace(record, removed_at=removal.at, removed_by=removal.by, removed_reason=removal.reason)

    def get(self, exception_id: str) -> ExceptionRecord | None:
        if not EXCEPTION_ID_RE.match(exception_id):
            return None
        entity = self._find(exception_id)
        return None if entity is None else ExceptionRecord.from_entity(entity)

    def list(self, tenant_id: str | None = None, include_expired: bool = False) -> builtins.list[ExceptionRecord]:
        """Exceptions, by tenant then creation time: the valid ones, or with `include_expired`
        also the expired and the removed ones."""
        clauses: builtins.list[str] = []
        parameters: dict[str, Any] = {}
        if tenant_id is not None:
            clauses.append("PartitionKey eq @pk")
            parameters["pk"] = tenant_key(validate_tenant(tenant_id))
        if not include_expired:
            clauses.append("removed eq false and expires gt @today")
            parameters["today"] = utc_day(self.clock()).isoformat()
        rows = (
            self.exceptions.query_entities(" and ".join(clauses), parameters=parameters)
            if clauses
            else self.exceptions.list_entities()
        )
        records = [ExceptionRecord.from_entity(row) for row in self._missing_table_is_empty(rows)]
        return sorted(records, key=lambda r: (r.tenant_id, r.created_at, r.id))

    def active_for(self, tenant_id: str, on: date) -> dict[tuple[str, str], ExceptionRecord]:
        """(check id, subject id) -> the exception valid on day `on` (UTC), for one tenant."""
        rows = self.exceptions.query_entities(
            "PartitionKey eq @pk and removed eq false and expires gt @day",
            parameters={"pk": tenant_key(tenant_id.lower()), "day": on.isoformat()},
        )
        active: dict[tuple[str, str], ExceptionRecord] = {}
        for record in map(ExceptionRecord.from_entity, self._missing_table_is_empty(rows)):
            if not record.is_valid_on(on):
                continue
            key = (record.check_id, record.subject_id)
            # Two valid exceptions for one finding only arise from concurrent adds: the one that
            # lasts longer applies, deterministically.
            if key not in active or (record.expires, record.id) > (active[key].expires, active[key].id):
                active[key] = record
        return active

    def audit_trail(self, tenant_id: str | None = None, exception_id: str | None = None) -> builtins.list[AuditEvent]:
        """The audit rows, oldest first: of one tenant, of one exception, or all."""
        # The import records have a partition of their own and are not an exception's events.
        clauses: builtins.list[str] = ["PartitionKey ne @imports"]
        parameters: dict[str, Any] = {"imports": IMPORTS_PARTITION}
        if tenant_id is not None:
            clauses.append("PartitionKey eq @pk")
            parameters["pk"] = tenant_key(validate_tenant(tenant_id))
        if exception_id is not None:
            clauses.append("exception_id eq @id")
            parameters["id"] = validate_exception_id(exception_id)
        rows = self.audit.query_entities(" and ".join(clauses), parameters=parameters)
        events = [AuditEvent.from_entity(row) for row in self._missing_table_is_empty(rows)]
        return sorted(events, key=lambda e: (e.at, e.event != EVENT_ADDED, e.exception_id))

    # -- internals --------------------------------------------------------------------------

    def _find(self, exception_id: str) -> TableEntity | None:
        # Ids are unique across tenants; the table is small, so a scan over RowKey is cheap.
        rows = self.exceptions.query_entities("RowKey eq @id", parameters={"id": exception_id})
        return next(iter(self._missing_table_is_empty(rows)), None)

    @staticmethod
    def _missing_table_is_empty(rows: Any) -> builtins.list[TableEntity]:
        """The rows; none when the table does not exist (no exception was ever added: `add`
        runs after `ensure_tables`). Any other storage error raises."""
        try:
            return builtins.list(rows)
        except ResourceNotFoundError as error:
            if getattr(error, "error_code", None) == "TableNotFound":
                return []
            raise

    @staticmethod
    def _audit_fields(
        record: ExceptionRecord, event: str, by: str, reason: str, at: datetime, source: AuditSource | None = None
    ) -> dict[str, Any]:
        provenance = (
            {"source_file": source.file, "source_sha256": source.sha256, "imported_by": source.imported_by}
            if source
            else {}
        )
        return {
            **provenance,
            "exception_id": record.id,
            "tenant_id": record.tenant_id,
            "event": event,
            "by": by,
            "reason": reason,
            "at": at,
            "check_id": record.check_id,
            "subject_id": record.subject_id,
            "expires": record.expires.isoformat(),
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _shown(value: str) -> str:
    """A user-supplied value quoted for a one-line error message (inert, and not too long)."""
    return repr(safe_text(value, 80))

"""Exceptions as code: the YAML file `exceptions export` writes and `exceptions import` reads.

One entry per accepted risk, with the fields of `exceptions list --format json` that say what is
accepted (the ids and times are the store's own, so a file imports the same into any store):

```yaml
schema: partnerguard.exceptions-file/v1
exceptions:
  - tenant_id: 7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73
    check_id: mfa.registration
    subject_id: 99fa1308-ee61-5f81-9d7e-59ae3421442e
    reason: Break-glass account; FIDO2 key kept in the safe
    accepted_by: risk.owner@contoso.example
    expires: '2026-03-01'
```

Every field is checked exactly as `exceptions add` checks it (the validators of accepted_risks.py,
the expiry against today in UTC), and the whole file is checked before anything is written: a
file with one mistake changes nothing, and each mistake is reported with its line.

One exception to "as `exceptions add` checks it": an entry whose expiry has come (before today,
or today, when it would cover nothing) is skipped with a notice rather than refused. A reviewed
file's entries run out one by one; refusing the whole file the day its first entry expires would
make every exported file unimportable within a year, and re-importing the same file must keep
working (and keep changing nothing). Such an entry must still be well-formed in every other field,
the expiry's own format included: only the date having passed is forgiven.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from partnerguard.storage.accepted_risks import (
    ExceptionError,
    ExceptionRecord,
    validate_check,
    validate_expiry,
    validate_reason,
    validate_subject,
    validate_tenant,
    validate_upn,
)
from partnerguard.yaml_source import LocatedDocument, Position, YamlProblem, load_located

FILE_SCHEMA = "partnerguard.exceptions-file/v1"
FIELDS = ("tenant_id", "check_id", "subject_id", "reason", "accepted_by", "expires")
# Thousands of exceptions fit in far less; anything larger is not an exceptions file.
MAX_FILE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class FileException:
    """One accepted risk as the file states it, validated."""

    tenant_id: str
    check_id: str
    subject_id: str
    reason: str
    accepted_by: str
    expires: date

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies the finding it covers: an import matches on this."""
        return (self.tenant_id, self.check_id, self.subject_id)

    def same_terms(self, record: ExceptionRecord) -> bool:
        return (record.reason, record.accepted_by, record.expires) == (self.reason, self.accepted_by, self.expires)


@dataclass(frozen=True)
class SkippedEntry:
    """An entry of the file whose expiry has come: well-formed, but it would cover nothing."""

    index: int
    line: int
    entry: FileException
    today: date

    def notice(self, file: str) -> str:
        where, expires = f"{file}:{self.line}: exceptions[{self.index}]", self.entry.expires.isoformat()
        if self.entry.expires == self.today:
            return f"{where} expires {expires}, today (UTC): skipped, it would cover nothing"
        return f"{where} expired on {expires} (today is {self.today.isoformat()} UTC): skipped"


@dataclass(frozen=True)
class ExceptionsFile:
    name: str
    sha256: str
    exceptions: tuple[FileException, ...]  # the entries to import
    skipped: tuple[SkippedEntry, ...] = ()  # the entries already expired (or expiring today)


class ExceptionsFileError(ExceptionError):
    """The file cannot be imported; one line per mistake, each naming the file and line."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = tuple(lines)


def read_exceptions_file(path: Path, check_ids: Sequence[str], today: date) -> ExceptionsFile:
    """Parse and validate the whole file; raises ExceptionsFileError listing every mistake."""
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise ExceptionsFileError([f"{path}: cannot read the file ({error.strerror or error})"]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ExceptionsFileError([f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB"])
    try:
        document = load_located(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ExceptionsFileError([f"{path}: not UTF-8 text"]) from None
    except YamlProblem as problem:
        raise ExceptionsFileError([f"{path}:{problem.position}: {problem.message}"]) from None
    problems: list[tuple[Position, str]] = []
    entries = _entries(document, problems)
    exceptions: list[FileException] = []
    skipped: list[SkippedEntry] = []
    first_line: dict[tuple[str, str, str], int] = {}
    for index, entry in entries:
        parsed = _exception(document, index, entry, check_ids, today, problems)
        if parsed is None:
            continue
        where = document.position(("exceptions", index))
        if parsed.key in first_line:
            problems.append(
                (where, f"exceptions[{index}]: the same finding as line {first_line[parsed.key]}: one exception each")
            )
            continue
        first_line[parsed.key] = where.line
        if parsed.expires <= today:
            skipped.append(SkippedEntry(index, where.line, parsed, today))
        else:
            exceptions.append(parsed)
    if problems:
        problems.sort(key=lambda problem: (problem[0].line, problem[0].column))
        raise ExceptionsFileError([f"{path}:{position}: {message}" for position, message in problems])
    return ExceptionsFile(path.name, hashlib.sha256(raw).hexdigest(), tuple(exceptions), tuple(skipped))


def render_exceptions_file(records: Sequence[ExceptionRecord]) -> str:
    """The file `import` reads back: the valid exceptions, sorted so that two exports of the same
    exceptions are the same text (a reviewable diff)."""
    entries = [
        {
            "tenant_id": r.tenant_id,
            "check_id": r.check_id,
            "subject_id": r.subject_id,
            "reason": r.reason,
            "accepted_by": r.accepted_by,
            "expires": r.expires.isoformat(),
        }
        for r in sorted(records, key=lambda r: (r.tenant_id, r.check_id, r.subject_id))
    ]
    header = (
        "# PartnerGuard exceptions (accepted risks). Import with:\n"
        "#   python -m partnerguard exceptions import FILE --by you@example.com\n"
        "# Each entry stops covering its finding on its expiry day (UTC); at most 365 days ahead.\n"
        "# From that day on, import skips the entry with a note: this file stays importable.\n"
    )
    # allow_unicode=False: control and bidi characters arrive as escapes, like the JSON documents.
    body = yaml.safe_dump(
        {"schema": FILE_SCHEMA, "exceptions": entries}, sort_keys=False, allow_unicode=False, width=10_000
    )
    return header + body


def _entries(document: LocatedDocument, problems: list[tuple[Position, str]]) -> list[tuple[int, dict[str, Any]]]:
    data = document.data
    if not isinstance(data, dict):
        problems.append((document.position(()), f"expected a mapping with `schema: {FILE_SCHEMA}` and `exceptions:`"))
        return []
    for key in data:
        if key not in ("schema", "exceptions"):
            problems.append((document.position((key,)), f"{key}: unknown key; allowed: schema, exceptions"))
    if data.get("schema") != FILE_SCHEMA:
        problems.append((document.position(("schema",)), f"schema: expected {FILE_SCHEMA!r}"))
    items = data.get("exceptions")
    if items is None:
        items = []
    if not isinstance(items, list):
        problems.append((document.position(("exceptions",)), "exceptions: expected a list"))
        return []
    entries: list[tuple[int, dict[str, Any]]] = []
    for index, item in enumerate(items):
        if isinstance(item, dict):
            entries.append((index, item))
        else:
            problems.append((document.position(("exceptions", index)), f"exceptions[{index}]: expected a mapping"))
    return entries


def _exception(
    document: LocatedDocument,
    index: int,
    entry: dict[str, Any],
    check_ids: Sequence[str],
    today: date,
    problems: list[tuple[Position, str]],
) -> FileException | None:
    base: tuple[str | int, ...] = ("exceptions", index)
    before = len(problems)
    for key in entry:
        if key not in FIELDS:
            problems.append((document.position((*base, key)), f"exceptions[{index}].{key}: unknown key"))
    missing = [key for key in FIELDS if key not in entry]
    for key in missing:
        problems.append((document.position(base), f"exceptions[{index}]: {key} is missing"))
    if missing:
        return None
    checks = {
        "tenant_id": validate_tenant,
        "check_id": lambda value: validate_check(value, check_ids),
        "subject_id": validate_subject,
        "reason": validate_reason,
        "accepted_by": validate_upn,
    }
    values: dict[str, Any] = {}
    for key, check in checks.items():
        value = entry[key]
        if not isinstance(value, str):
            problems.append((document.position((*base, key)), f"exceptions[{index}].{key}: expected text (quote it)"))
            continue
        try:
            values[key] = check(value)
        except ExceptionError as error:
            problems.append((document.position((*base, key)), f"exceptions[{index}].{key}: {error}"))
    try:
        day = _day(entry["expires"])
        # An expiry that has come is the caller's to skip (module docstring); any other is checked.
        values["expires"] = day if day <= today else validate_expiry(day, today)
    except ExceptionError as error:
        problems.append((document.position((*base, "expires")), f"exceptions[{index}].expires: {error}"))
    if len(problems) > before:
        return None
    return FileException(**values)


def _day(value: Any) -> date:
    # YAML reads an unquoted 2026-03-01 as a date, a quoted one as text: both mean the same day.
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and len(value) == 10:
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ExceptionError(f"expected a date YYYY-MM-DD, got {value!r}")

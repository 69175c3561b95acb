"""Exceptions as code (issue 17, item 3): `exceptions export` writes a YAML file that `exceptions
import` reads back, idempotently, with every import recorded in the audit trail with its source.
Against a real Azurite; the store's clock is the test's."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient, UpdateMode

from checks import CHECK_IDS
from partnerguard.storage.accepted_risks import EVENT_ADDED, EVENT_REMOVED, AuditSource, ExceptionStore
from partnerguard.storage.exception_import import ImportResult, import_exceptions, import_records
from partnerguard.storage.exceptions_file import (
    ExceptionsFileError,
    read_exceptions_file,
    render_exceptions_file,
)
from partnerguard.storage.keys import tenant_key
from testbed.azurite import AzuriteProcess
from tests.cli_harness import run_cli

pytestmark = pytest.mark.azurite

TODAY = date(2025, 6, 1)
NOON = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
PARTNER = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
CUSTOMER = "3b8e4f1a-2c6d-4a9e-8b7f-5d1c0e2a9f46"
ALICE = "99fa1308-ee61-5f81-9d7e-59ae3421442e"
BOB = "4286bde3-348d-539b-9f26-678c04158afd"
OWNER = "risk.owner@contoso.example"
IMPORTER = "secops-automation@contoso.example"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def new_store(azurite: AzuriteProcess, clock: Clock) -> ExceptionStore:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    store = ExceptionStore(service, prefix=f"t{uuid.uuid4().hex[:12]}", check_ids=CHECK_IDS, clock=clock)
    store.ensure_tables()
    return store


@pytest.fixture
def clock() -> Clock:
    return Clock(NOON)


@pytest.fixture
def stores(azurite: AzuriteProcess, clock: Clock) -> Iterator[tuple[ExceptionStore, ExceptionStore]]:
    """Two empty stores on one clock: the source of an export and the target of its import."""
    made = [new_store(azurite, clock), new_store(azurite, clock)]
    yield made[0], made[1]
    for store in made:
        for table in (store.exceptions, store.audit):
            store.service.delete_table(table.table_name)
        store.close()


def terms(store: ExceptionStore) -> set[tuple[str, str, str, str, str, date]]:
    """The valid exceptions, without what the store assigns (ids, times)."""
    return {(r.tenant_id, r.check_id, r.subject_id, r.reason, r.accepted_by, r.expires) for r in store.list()}


def seed(store: ExceptionStore) -> None:
    store.add(PARTNER, "mfa.registration", ALICE, "Break-glass account; FIDO2 key in the safe", OWNER, date(2025, 9, 1))
    store.add(CUSTOMER, "mfa.registration", BOB, "Leaves in June:\nticket 4711", OWNER, date(2025, 7, 1))
    store.add(CUSTOMER, "mfa.enforcement", "tenant", "Rolling out CA in Q3 — «tested»", OWNER, date(2026, 5, 31))


def write(tmp_path: Path, text: str, name: str = "exceptions.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def import_file(store: ExceptionStore, path: Path) -> tuple[int, int, int]:
    result = import_exceptions(store, read_exceptions_file(path, CHECK_IDS, TODAY), IMPORTER)
    return len(result.created), len(result.updated), len(result.unchanged)


def line_of(path: Path, fragment: str) -> int:
    [number] = [n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if fragment in line]
    return number


def import_on(store: ExceptionStore, clock: Clock, path: Path, day: date, minute: int = 0) -> ImportResult:
    """Import `path` at noon (UTC) of `day`: the store's clock and the file's "today" agree."""
    clock.now = datetime(day.year, day.month, day.day, 12, minute, tzinfo=UTC)
    return import_exceptions(store, read_exceptions_file(path, CHECK_IDS, day), IMPORTER)


def counts(result: ImportResult) -> tuple[int, int, int, int]:
    return len(result.created), len(result.updated), len(result.unchanged), len(result.skipped_expired)


def test_export_then_import_into_an_empty_store_gives_the_same_exceptions(
    stores: tuple[ExceptionStore, ExceptionStore], tmp_path: Path
) -> None:
    source, target = stores
    seed(source)
    removed = source.add(PARTNER, "mfa.registration", BOB, "Temporary", OWNER, date(2025, 8, 1))
    source.remove(removed.id, OWNER, "Enrolled after all")
    path = write(tmp_path, render_exceptions_file(source.list()))

    assert import_file(target, path) == (3, 0, 0)
    assert terms(target) == terms(source)  # the removed one is not exported, so not imported
    # The export of the copy is the same text: a diff of two exports shows only real changes.
    assert render_exceptions_file(target.list()) == path.read_text(encoding="utf-8")


def test_importing_the_same_file_twice_writes_nothing_the_second_time(
    stores: tuple[ExceptionStore, ExceptionStore], tmp_path: Path
) -> None:
    source, target = stores
    seed(source)
    path = write(tmp_path, render_exceptions_file(source.list()))
    import_file(target, path)
    records, audit = target.list(), target.audit_trail()

    assert import_file(target, path) == (0, 0, 3)
    assert target.list() == records and target.audit_trail() == audit  # no row added, none changed


def test_an_exported_file_imports_again_after_its_entries_expire(
    stores: tuple[ExceptionStore, ExceptionStore], clock: Clock, tmp_path: Path
) -> None:
    """An entry already expired, or expiring today, is skipped with a notice, not an error: a
    reviewed file stays importable as its entries run out, and importing it again changes nothing."""
    source, target = stores
    seed(source)  # expiring 2025-07-01 (BOB), 2025-09-01 (ALICE), 2026-05-31 (the tenant's)
    path = write(tmp_path, render_exceptions_file(source.list()))
    # Where each entry starts: its `- tenant_id:` line, two above its subject (sorted by tenant).
    bob, alice = (line_of(path, f"subject_id: {subject}") - 2 for subject in (BOB, ALICE))
    assert counts(import_on(target, clock, path, TODAY)) == (3, 0, 0, 0)
    records, audit = target.list(), target.audit_trail()

    on_expiry = import_on(target, clock, path, date(2025, 7, 1))  # BOB's entry expires today
    assert counts(on_expiry) == (0, 0, 2, 1)
    [skipped] = on_expiry.skipped_expired
    assert (skipped.entry.subject_id, skipped.line) == (BOB, bob)
    assert skipped.notice(str(path)) == (
        f"{path}:{bob}: exceptions[1] expires 2025-07-01, today (UTC): skipped, it would cover nothing"
    )

    later = import_on(target, clock, path, date(2025, 9, 2))  # and ALICE's the day before
    assert counts(later) == (0, 0, 1, 2)
    assert later.skipped_expired[1].notice(str(path)) == (
        f"{path}:{alice}: exceptions[2] expired on 2025-09-01 (today is 2025-09-02 UTC): skipped"
    )
    assert counts(import_on(target, clock, path, date(2025, 9, 2))) == (0, 0, 1, 2)
    # Nothing was created, changed or removed by the later imports.
    assert target.audit_trail() == audit
    assert [r for r in records if r.expires > date(2025, 9, 2)] == target.list()


def test_an_expired_entry_with_another_mistake_still_refuses_the_file(tmp_path: Path) -> None:
    text = (
        "schema: partnerguard.exceptions-file/v1\nexceptions:\n"
        f"  - {{tenant_id: not-a-tenant, check_id: mfa.registration, subject_id: {ALICE},\n"
        f"     reason: x, accepted_by: {OWNER}, expires: 2025-05-01}}\n"
        f"  - {{tenant_id: {PARTNER}, check_id: mfa.registration, subject_id: {BOB},\n"
        f"     reason: x, accepted_by: {OWNER}, expires: 2025-09-01}}\n"
    )
    with pytest.raises(ExceptionsFileError) as raised:
        read_exceptions_file(write(tmp_path, text), CHECK_IDS, TODAY)
    [line] = raised.value.lines
    assert ":3:" in line and "exceptions[0].tenant_id: a tenant id must be a GUID" in line


def test_every_import_writes_one_audit_record_with_its_source_and_counts(
    stores: tuple[ExceptionStore, ExceptionStore], clock: Clock, tmp_path: Path
) -> None:
    """Each import is in the audit trail with its source, even one that changes nothing; the
    exceptions' own trail (audit_trail) is not touched by it."""
    source, target = stores
    seed(source)
    path = write(tmp_path, render_exceptions_file(source.list()), name="reviewed-exceptions.yaml")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    import_on(target, clock, path, TODAY)
    trail = target.audit_trail()
    import_on(target, clock, path, TODAY, minute=1)
    import_on(target, clock, path, date(2025, 7, 1))

    first, second, third = import_records(target)
    assert {(r.source.file, r.source.sha256, r.source.imported_by) for r in (first, second, third)} == {
        ("reviewed-exceptions.yaml", digest, IMPORTER)
    }
    assert (first.created, first.updated, first.unchanged, first.skipped_expired) == (3, 0, 0, 0)
    assert (second.created, second.updated, second.unchanged, second.skipped_expired) == (0, 0, 3, 0)
    assert (third.created, third.updated, third.unchanged, third.skipped_expired) == (0, 0, 2, 1)
    assert first.at == NOON and third.at == datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
    assert target.audit_trail() == trail
    assert import_records(source) == []  # exceptions added by hand are no import


def test_each_import_is_in_the_audit_trail_with_its_file_hash_and_importer(
    stores: tuple[ExceptionStore, ExceptionStore], tmp_path: Path
) -> None:
    source, target = stores
    seed(source)
    path = write(tmp_path, render_exceptions_file(source.list()), name="reviewed-exceptions.yaml")
    import_file(target, path)

    expected = AuditSource("reviewed-exceptions.yaml", hashlib.sha256(path.read_bytes()).hexdigest(), IMPORTER)
    trail = target.audit_trail()
    assert [event.event for event in trail] == [EVENT_ADDED] * 3
    assert {event.source for event in trail} == {expected}
    # Who accepted the risk stays who the file says; who imported it is the source's.
    assert {event.by for event in trail} == {OWNER}
    # Exceptions added by hand carry no source.
    assert {event.source for event in source.audit_trail()} == {None}


def test_a_changed_expiry_or_reason_replaces_the_exception_and_both_are_audited(
    stores: tuple[ExceptionStore, ExceptionStore], tmp_path: Path
) -> None:
    store, _ = stores
    seed(store)
    before = {r.subject_id: r for r in store.list()}
    text = render_exceptions_file(store.list())
    text = text.replace("'2025-09-01'", "'2025-10-01'").replace("Rolling out CA in Q3", "Rolling out CA in Q4")
    path = write(tmp_path, text)

    assert import_file(store, path) == (0, 2, 1)

    after = {r.subject_id: r for r in store.list()}
    assert len(after) == 3  # one valid exception per finding
    assert after[ALICE].expires == date(2025, 10, 1) and after[ALICE].id != before[ALICE].id
    assert after["tenant"].reason.startswith("Rolling out CA in Q4")
    assert after[BOB] == before[BOB]
    for subject in (ALICE, "tenant"):
        old = store.get(before[subject].id)
        assert old is not None and old.removed_by == IMPORTER
        assert old.removed_reason == f"replaced by exception {after[subject].id}"
        [removal] = [e for e in store.audit_trail(exception_id=old.id) if e.event == EVENT_REMOVED]
        assert removal.source is not None and removal.source.file == "exceptions.yaml"
    # And again: nothing more to do.
    assert import_file(store, path) == (0, 0, 3)


def test_exceptions_the_file_does_not_name_are_left_alone(
    stores: tuple[ExceptionStore, ExceptionStore], tmp_path: Path
) -> None:
    store, _ = stores
    seed(store)
    everything = terms(store)
    only_alice = [r for r in store.list() if r.subject_id == ALICE]
    path = write(tmp_path, render_exceptions_file(only_alice))

    assert import_file(store, path) == (0, 0, 1)
    assert terms(store) == everything


def test_an_import_interrupted_between_add_and_removal_is_finished_by_the_next(
    stores: tuple[ExceptionStore, ExceptionStore], tmp_path: Path
) -> None:
    """A crash after the new exception was written and before the old one was removed leaves two
    valid exceptions for one finding; importing the file again removes the old one."""
    store, _ = stores
    old = store.add(PARTNER, "mfa.registration", ALICE, "Old terms", OWNER, date(2025, 9, 1))
    path = write(tmp_path, render_exceptions_file([old]).replace("Old terms", "New terms"))
    # The state such a crash leaves: the new exception written, the old one's removal audited
    # (the audit row comes first) but its row not yet marked removed.
    source = AuditSource("exceptions.yaml", "0" * 64, IMPORTER)
    store.add(
        PARTNER, "mfa.registration", ALICE, "New terms", OWNER, date(2025, 9, 1), source=source, replaces=[old.id]
    )
    store.exceptions.upsert_entity(
        {"PartitionKey": tenant_key(PARTNER), "RowKey": old.id, "removed": False}, mode=UpdateMode.MERGE
    )
    assert len(store.list()) == 2

    assert import_file(store, path) == (0, 0, 1)
    [valid] = store.list()
    assert valid.reason == "New terms"


def test_a_file_with_mistakes_is_refused_whole_each_mistake_with_its_line(
    stores: tuple[ExceptionStore, ExceptionStore], tmp_path: Path
) -> None:
    store, _ = stores
    text = f"""schema: partnerguard.exceptions-file/v1
exceptions:
  - tenant_id: {PARTNER}
    check_id: mfa.registration
    subject_id: {ALICE}
    reason: Valid entry
    accepted_by: {OWNER}
    expires: 2025-09-01
  - tenant_id: not-a-tenant
    check_id: mfa.registration
    subject_id: {BOB}
    reason: Bad tenant
    accepted_by: {OWNER}
    expires: 2025-09-01
  - tenant_id: {PARTNER}
    check_id: mfa.everything
    subject_id: {BOB}
    reason: Bad check
    accepted_by: {OWNER}
    expires: 2025-09-01
  - tenant_id: {PARTNER}
    check_id: mfa.registration
    subject_id: {ALICE}
    reason: The same finding again
    accepted_by: {OWNER}
    expires: 2025-08-01
  - tenant_id: {PARTNER}
    check_id: mfa.registration
    subject_id: {BOB}
    reason: Too late
    accepted_by: someone
    expires: 2026-06-02
    note: extra
"""
    path = write(tmp_path, text)
    with pytest.raises(ExceptionsFileError) as raised:
        read_exceptions_file(path, CHECK_IDS, TODAY)
    lines = raised.value.lines
    assert [int(line.split(":")[1]) for line in lines] == [9, 16, 21, 31, 32, 33]
    assert "exceptions[1].tenant_id: a tenant id must be a GUID" in lines[0]
    assert "exceptions[2].check_id: unknown check 'mfa.everything'" in lines[1]
    assert "exceptions[3]: the same finding as line 3" in lines[2]
    assert "exceptions[4].accepted_by: accepted-by must be a user principal name" in lines[3]
    assert "exceptions[4].expires: the expiry 2026-06-02 is more than 365 days ahead" in lines[4]
    assert "exceptions[4].note: unknown key" in lines[5]
    assert store.list() == [] and store.audit_trail() == []


@pytest.mark.parametrize(
    ("expires", "message"),
    [
        ("'2026-06-02'", "is more than 365 days ahead (the latest allowed is 2026-06-01)"),
        ("June 1st", "expected a date YYYY-MM-DD"),
        ("2025-06-02 00:00:00", "expected a date YYYY-MM-DD"),
    ],
)
def test_expiries_are_validated_as_exceptions_add_validates_them(tmp_path: Path, expires: str, message: str) -> None:
    text = (
        "schema: partnerguard.exceptions-file/v1\nexceptions:\n"
        f"  - {{tenant_id: {PARTNER}, check_id: mfa.registration, subject_id: {ALICE},\n"
        f"     reason: x, accepted_by: {OWNER},\n"
        f"     expires: {expires}}}\n"
    )
    with pytest.raises(ExceptionsFileError) as raised:
        read_exceptions_file(write(tmp_path, text), CHECK_IDS, TODAY)
    [line] = raised.value.lines
    assert ":5:" in line and message in line


def test_the_boundary_expiries_are_accepted(tmp_path: Path) -> None:
    for expires in ("2025-06-02", "2026-06-01"):
        text = (
            "schema: partnerguard.exceptions-file/v1\nexceptions:\n"
            f"  - {{tenant_id: {PARTNER}, check_id: mfa.registration, subject_id: '{ALICE}', reason: x, "
            f"accepted_by: {OWNER}, expires: {expires}}}\n"
        )
        [entry] = read_exceptions_file(write(tmp_path, text), CHECK_IDS, TODAY).exceptions
        assert entry.expires == date.fromisoformat(expires)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("exceptions: []\n", "schema: expected 'partnerguard.exceptions-file/v1'"),
        ("schema: partnerguard.exceptions-file/v1\nexceptions: {}\n", "exceptions: expected a list"),
        ("schema: partnerguard.exceptions-file/v1\nschema: x\n", "duplicate key 'schema'"),
        ("schema: partnerguard.exceptions-file/v1\nexceptions: [\n", "not valid YAML"),
    ],
)
def test_a_file_of_the_wrong_shape_is_refused(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ExceptionsFileError) as raised:
        read_exceptions_file(write(tmp_path, text), CHECK_IDS, TODAY)
    assert expected in str(raised.value)


# -- the command line ----------------------------------------------------------------------------


@pytest.fixture
def cli_storage_env(cli_storage: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The command line against this module's own Azurite (production table names)."""
    monkeypatch.setenv("PARTNERGUARD_STORAGE", cli_storage)
    return cli_storage


def cli_add(capsys: pytest.CaptureFixture[str], subject: str, expires: str) -> None:
    code, _, err = run_cli(
        capsys, "exceptions", "add", "--tenant", PARTNER, "--check", "mfa.registration", "--subject", subject,
        "--reason", "Accepted for the test", "--accepted-by", OWNER, "--expires", expires,
    )  # fmt: skip
    assert code == 0, err


def test_export_and_import_through_the_command_line(
    cli_storage_env: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    in_days = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    subject = f"cli-{uuid.uuid4()}"
    cli_add(capsys, subject, in_days)

    exported = tmp_path / "exported.yaml"
    code, out, err = run_cli(capsys, "exceptions", "export", "--tenant", PARTNER, "--output", str(exported))
    assert (code, out) == (0, "") and f"wrote {exported}" in err
    assert f"subject_id: {subject}" in exported.read_text(encoding="utf-8")
    code, out, _ = run_cli(capsys, "exceptions", "export", "--tenant", PARTNER)
    assert code == 0 and out == exported.read_text(encoding="utf-8")

    digest = hashlib.sha256(exported.read_bytes()).hexdigest()
    code, out, err = run_cli(capsys, "exceptions", "import", str(exported), "--by", IMPORTER)
    assert (code, out) == (0, "")
    assert err.strip().endswith(f"(sha256 {digest}): 0 created, 0 updated, 1 unchanged, 0 skipped (expired)")

    changed = tmp_path / "changed.yaml"
    changed.write_text(exported.read_text(encoding="utf-8").replace("Accepted for the test", "Still accepted"))
    code, _, err = run_cli(capsys, "exceptions", "import", str(changed), "--by", IMPORTER)
    assert code == 0 and err.strip().endswith("0 created, 1 updated, 0 unchanged, 0 skipped (expired)")

    # An entry that has expired since the export: a notice on its line, and the rest imported.
    yesterday = (datetime.now(UTC).date() - timedelta(days=1)).isoformat()
    expired = tmp_path / "expired.yaml"
    expired.write_text(changed.read_text(encoding="utf-8").replace(f"'{in_days}'", f"'{yesterday}'"))
    code, out, err = run_cli(capsys, "exceptions", "import", str(expired), "--by", IMPORTER)
    assert (code, out) == (0, "")
    notice, summary = err.strip().splitlines()
    assert notice.startswith(f"note: {expired}:") and f"expired on {yesterday}" in notice and "skipped" in notice
    assert summary.endswith("0 created, 0 updated, 0 unchanged, 1 skipped (expired)")


def test_import_errors_exit_2_one_line_per_mistake(
    cli_storage_env: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = write(tmp_path, "schema: partnerguard.exceptions-file/v1\nexceptions:\n  - tenant_id: x\n")
    code, out, err = run_cli(capsys, "exceptions", "import", str(bad), "--by", IMPORTER)
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 5  # five fields missing from the one entry, each on a line
    assert all(line.startswith(f"error: {bad}:3:5: exceptions[0]: ") for line in err.splitlines())

    code, _, err = run_cli(capsys, "exceptions", "import", str(bad), "--by", "not an address")
    assert code == 2 and err.startswith("error: --by must be a user principal name")

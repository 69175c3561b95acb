"""ExceptionStore against a real Azurite: add, list, remove, the audit trail, validation, validity."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from azure.data.tables import TableServiceClient

from checks import CHECK_IDS
from partnerguard.storage.accepted_risks import (
    EXCEPTION_ID_RE,
    MAX_REASON_UNITS,
    ExceptionError,
    ExceptionNotFoundError,
    ExceptionRecord,
    ExceptionStore,
    exception_table_names,
)
from partnerguard.storage.keys import tenant_key
from partnerguard.storage.limits import MAX_SUBJECT_ID_UNITS
from testbed.azurite import AzuriteProcess

pytestmark = pytest.mark.azurite

TODAY = date(2025, 6, 1)
NOON = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
ALICE = "99fa1308-ee61-5f81-9d7e-59ae3421442e"
BOB = "4286bde3-348d-539b-9f26-678c04158afd"
OWNER = "risk.owner@contoso.example"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(NOON)


@pytest.fixture
def exception_store(azurite: AzuriteProcess, table_prefix: str, clock: Clock) -> Iterator[ExceptionStore]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    store = ExceptionStore(service, prefix=table_prefix, check_ids=CHECK_IDS, clock=clock)
    store.ensure_tables()
    yield store
    for table in (store.exceptions, store.audit):
        service.delete_table(table.table_name)
    store.close()


def new_tenant() -> str:
    return str(uuid.uuid4())


def add(store: ExceptionStore, tenant: str, **overrides: Any) -> ExceptionRecord:
    values: dict[str, Any] = {
        "tenant_id": tenant,
        "check_id": "mfa.registration",
        "subject_id": ALICE,
        "reason": "Break-glass account, sign-ins monitored by the SOC",
        "accepted_by": OWNER,
        "expires": TODAY + timedelta(days=30),
    }
    values.update(overrides)
    return store.add(**values)


def test_add_then_list_get_and_audit(exception_store: ExceptionStore) -> None:
    tenant = new_tenant()
    record = add(exception_store, tenant)
    assert EXCEPTION_ID_RE.match(record.id)
    assert (record.tenant_id, record.check_id, record.subject_id) == (tenant, "mfa.registration", ALICE)
    assert (record.accepted_by, record.created_at, record.expires) == (OWNER, NOON, date(2025, 7, 1))
    assert not record.removed

    assert exception_store.list(tenant) == [record]
    assert exception_store.get(record.id) == record
    assert exception_store.get("no-such-id") is None
    assert exception_store.get("not an id/") is None

    [added] = exception_store.audit_trail(tenant)
    assert (added.exception_id, added.event, added.by, added.at) == (record.id, "added", OWNER, NOON)
    assert (added.reason, added.check_id, added.subject_id, added.expires) == (
        record.reason,
        "mfa.registration",
        ALICE,
        record.expires,
    )
    assert record.evidence() == {
        "id": record.id,
        "reason": record.reason,
        "accepted_by": OWNER,
        "expires": "2025-07-01",
    }


def test_the_tenant_id_is_normalised_and_text_kept_exactly(exception_store: ExceptionStore) -> None:
    tenant = new_tenant()
    reason = "Vendor appliance \u202e (no MFA) — \"quoted\" 'text' %/#?\\ \U0001f525\nsecond line"
    record = add(exception_store, tenant.upper(), reason=f"  {reason}  ", subject_id=f"{ALICE}|imap4")
    assert record.tenant_id == tenant
    [stored] = exception_store.list(tenant)
    assert stored.reason == reason  # trimmed, otherwise byte for byte
    assert stored.subject_id == f"{ALICE}|imap4"


def test_remove_keeps_the_exception_and_appends_to_the_audit_trail(
    exception_store: ExceptionStore, clock: Clock
) -> None:
    tenant = new_tenant()
    record = add(exception_store, tenant)
    audit_before = exception_store.audit.get_entity(tenant_key(tenant), f"{record.id}|added")

    clock.now = NOON + timedelta(days=2)
    removed = exception_store.remove(record.id, "ciso@contoso.example", "Account now has a FIDO2 key")
    assert (removed.removed_at, removed.removed_by, removed.removed_reason) == (
        NOON + timedelta(days=2),
        "ciso@contoso.example",
        "Account now has a FIDO2 key",
    )
    assert exception_store.list(tenant) == []
    assert exception_store.list(tenant, include_expired=True) == [removed]
    assert removed.status_on(TODAY) == "removed"
    assert exception_store.active_for(tenant, TODAY) == {}

    added, gone = exception_store.audit_trail(tenant)
    assert (added.event, added.by) == ("added", OWNER)
    assert (gone.event, gone.by, gone.reason, gone.at) == (
        "removed",
        "ciso@contoso.example",
        "Account now has a FIDO2 key",
        NOON + timedelta(days=2),
    )
    assert exception_store.audit_trail(exception_id=record.id) == [added, gone]
    # Append-only: the "added" row is exactly as it was written.
    audit_after = exception_store.audit.get_entity(tenant_key(tenant), f"{record.id}|added")
    assert dict(audit_after) == dict(audit_before)
    assert audit_after.metadata["etag"] == audit_before.metadata["etag"]

    with pytest.raises(ExceptionError, match=re.escape("already removed by ciso@contoso.example")):
        exception_store.remove(record.id, "someone@contoso.example", "again")
    assert len(exception_store.audit_trail(tenant)) == 2


def test_remove_errors(exception_store: ExceptionStore) -> None:
    with pytest.raises(ExceptionNotFoundError, match="no exception has the id"):
        exception_store.remove(str(uuid.uuid4()), OWNER, "why")
    with pytest.raises(ExceptionError, match="not an exception id"):
        exception_store.remove("../etc", OWNER, "why")
    record = add(exception_store, new_tenant())
    with pytest.raises(ExceptionError, match="--by must be a user principal name"):
        exception_store.remove(record.id, "not a upn", "why")
    with pytest.raises(ExceptionError, match="reason is empty"):
        exception_store.remove(record.id, OWNER, "   ")
    assert not exception_store.list(record.tenant_id)[0].removed


def test_a_removal_interrupted_after_its_audit_row_is_completed_from_that_row(
    exception_store: ExceptionStore, clock: Clock
) -> None:
    tenant = new_tenant()
    record = add(exception_store, tenant)
    # A first attempt recorded the removal in the audit trail and crashed before the exception row.
    interrupted_at = NOON + timedelta(hours=1)
    exception_store.audit.create_entity(
        {
            "PartitionKey": tenant_key(tenant),
            "RowKey": f"{record.id}|removed",
            "exception_id": record.id,
            "tenant_id": tenant,
            "event": "removed",
            "by": "first@contoso.example",
            "reason": "first attempt",
            "at": interrupted_at,
            "check_id": record.check_id,
            "subject_id": record.subject_id,
            "expires": record.expires.isoformat(),
        }
    )
    assert exception_store.active_for(tenant, TODAY)  # still in effect: the row says so
    clock.now = NOON + timedelta(hours=2)
    removed = exception_store.remove(record.id, "second@contoso.example", "second attempt")
    # The recorded removal stands; the exception row agrees with the audit trail.
    assert (removed.removed_by, removed.removed_reason, removed.removed_at) == (
        "first@contoso.example",
        "first attempt",
        interrupted_at,
    )
    assert exception_store.get(record.id) == removed
    assert [e.event for e in exception_store.audit_trail(tenant)] == ["added", "removed"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"tenant_id": "contoso.onmicrosoft.com"}, "tenant id must be a GUID"),
        ({"check_id": "mfa.everything"}, "unknown check 'mfa.everything'; known checks: mfa.registration"),
        ({"check_id": "MFA.REGISTRATION"}, "unknown check"),
        ({"subject_id": ""}, "subject id is empty"),
        ({"subject_id": f" {ALICE}"}, "starts or ends with whitespace"),
        ({"subject_id": f"{ALICE}\n"}, "starts or ends with whitespace"),
        ({"subject_id": f"{ALICE}|\x1b[31m"}, "control characters"),
        ({"subject_id": f"{ALICE}|\ud800"}, "lone surrogates"),
        ({"subject_id": "x" * (MAX_SUBJECT_ID_UNITS + 1)}, "longer than 4096"),
        ({"subject_id": "\U0001f525" * (MAX_SUBJECT_ID_UNITS // 2 + 1)}, "longer than 4096"),  # UTF-16 units
        ({"reason": ""}, "reason is empty"),
        ({"reason": " \n "}, "reason is empty"),
        ({"reason": "x" * (MAX_REASON_UNITS + 1)}, "longer than 1024"),
        ({"reason": "fine\x07bell"}, "control characters"),
        ({"accepted_by": "alice"}, "accepted-by must be a user principal name"),
        ({"accepted_by": "alice @contoso.example"}, "accepted-by"),
        ({"accepted_by": "alice@localhost"}, "accepted-by"),
        ({"accepted_by": "a@b.example\nX-Injected: 1"}, "accepted-by"),
        ({"accepted_by": "a" * 250 + "@contoso.example"}, "accepted-by"),
        ({"expires": TODAY - timedelta(days=1)}, "2025-05-31 is in the past \\(today is 2025-06-01 UTC\\)"),
        # It would stop covering today, so it would cover nothing.
        ({"expires": TODAY}, "2025-06-01 is today \\(UTC\\).*the earliest is 2025-06-02"),
        ({"expires": TODAY + timedelta(days=366)}, "more than 365 days ahead \\(the latest allowed is 2026-06-01\\)"),
    ],
)
def test_validation_errors_write_nothing(
    exception_store: ExceptionStore, overrides: dict[str, Any], message: str
) -> None:
    tenant = new_tenant()
    with pytest.raises(ExceptionError, match=message):
        add(exception_store, tenant, **overrides)
    assert exception_store.list(include_expired=True) == []
    assert exception_store.audit_trail() == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"expires": TODAY + timedelta(days=1)},  # covers the rest of today
        {"expires": TODAY + timedelta(days=365)},
        {"subject_id": "x" * MAX_SUBJECT_ID_UNITS},
        {"subject_id": f"{ALICE}|authenticated smtp"},
        {"reason": "x" * MAX_REASON_UNITS},
        {"accepted_by": "alice_fabrikam.example#EXT#@contoso.onmicrosoft.com"},
        {"accepted_by": "o'brien+risk@sub.contoso.example"},
        {"check_id": "gdap.expiring", "subject_id": "5f2c1e0a-0000-4000-8000-000000000001-be3c0f5e-7b1d"},
    ],
)
def test_boundaries_that_are_accepted(exception_store: ExceptionStore, overrides: dict[str, Any]) -> None:
    tenant = new_tenant()
    record = add(exception_store, tenant, **overrides)
    assert exception_store.list(tenant) == [record]


def test_expiry_is_judged_in_utc(exception_store: ExceptionStore, clock: Clock) -> None:
    # 23:30 on 31 May in UTC-5 is already 1 June in UTC: "today" is 1 June.
    clock.now = datetime(2025, 6, 1, 4, 30, tzinfo=UTC)
    with pytest.raises(ExceptionError, match="in the past"):
        add(exception_store, new_tenant(), expires=date(2025, 5, 31))


def test_one_valid_exception_per_finding(exception_store: ExceptionStore, clock: Clock) -> None:
    tenant = new_tenant()
    first = add(exception_store, tenant, expires=TODAY + timedelta(days=3))
    with pytest.raises(ExceptionError, match=f"exception {first.id} already covers this finding until 2025-06-04"):
        add(exception_store, tenant)
    # Another subject, another check, another tenant: all independent.
    add(exception_store, tenant, subject_id=BOB)
    add(exception_store, tenant, check_id="mfa.enforcement")
    add(exception_store, new_tenant())
    # After it expires, or once removed, the finding can be excepted again.
    clock.now = NOON + timedelta(days=4)
    renewed = add(exception_store, tenant, expires=TODAY + timedelta(days=40))
    exception_store.remove(renewed.id, OWNER, "superseded")
    add(exception_store, tenant, expires=TODAY + timedelta(days=40))


def test_active_for_is_valid_until_the_expiry_day_and_not_on_it(exception_store: ExceptionStore) -> None:
    # SPEC §1: "the day it expires the finding alerts as if it were new".
    tenant = new_tenant()
    expiring = add(exception_store, tenant, expires=date(2025, 6, 10))
    later = add(exception_store, tenant, subject_id=BOB, expires=date(2025, 6, 20))
    gone = add(exception_store, tenant, check_id="mfa.enforcement", subject_id=BOB)
    exception_store.remove(gone.id, OWNER, "fixed")
    add(exception_store, new_tenant())  # another tenant's exception never applies here

    assert exception_store.active_for(tenant, date(2025, 6, 1)) == {
        ("mfa.registration", ALICE): expiring,
        ("mfa.registration", BOB): later,
    }
    assert set(exception_store.active_for(tenant, date(2025, 6, 9))) == {
        ("mfa.registration", ALICE),
        ("mfa.registration", BOB),
    }
    assert exception_store.active_for(tenant, date(2025, 6, 10)) == {("mfa.registration", BOB): later}
    assert exception_store.active_for(tenant.upper(), date(2025, 6, 19)) == {("mfa.registration", BOB): later}
    assert exception_store.active_for(tenant, date(2025, 6, 20)) == {}
    assert expiring.is_valid_on(date(2025, 6, 9)) and not expiring.is_valid_on(date(2025, 6, 10))
    assert expiring.status_on(date(2025, 6, 9)) == "active"
    assert expiring.status_on(date(2025, 6, 10)) == "expired"


def test_concurrent_adds_resolve_to_the_longest_lasting_exception(exception_store: ExceptionStore) -> None:
    tenant = new_tenant()
    short = add(exception_store, tenant, expires=TODAY + timedelta(days=5))
    # A second writer that passed its own duplicate check at the same moment.
    long = ExceptionRecord(
        str(uuid.uuid4()), tenant, "mfa.registration", ALICE, "other", OWNER, NOON, TODAY + timedelta(days=9)
    )
    exception_store.exceptions.create_entity(
        {
            "PartitionKey": tenant_key(tenant),
            "RowKey": long.id,
            "tenant_id": tenant,
            "check_id": long.check_id,
            "subject_id": long.subject_id,
            "reason": long.reason,
            "accepted_by": long.accepted_by,
            "created_at": long.created_at,
            "expires": long.expires.isoformat(),
            "removed": False,
        }
    )
    assert exception_store.active_for(tenant, TODAY) == {("mfa.registration", ALICE): long}
    assert exception_store.active_for(tenant, TODAY + timedelta(days=8)) == {("mfa.registration", ALICE): long}
    assert exception_store.active_for(tenant, TODAY + timedelta(days=9)) == {}
    assert short.is_valid_on(TODAY)


def test_list_filters_by_tenant_and_validity(exception_store: ExceptionStore, clock: Clock) -> None:
    first, second = new_tenant(), new_tenant()
    a = add(exception_store, first, expires=TODAY + timedelta(days=2))
    clock.now = NOON + timedelta(minutes=1)
    b = add(exception_store, first, subject_id=BOB, expires=TODAY + timedelta(days=100))
    c = add(exception_store, second)
    assert exception_store.list(first) == [a, b]
    assert exception_store.list(second) == [c]
    assert {r.id for r in exception_store.list()} == {a.id, b.id, c.id}

    clock.now = datetime(2025, 6, 2, 23, 59, 59, tzinfo=UTC)  # the last moment a covers
    assert exception_store.list(first) == [a, b]
    clock.now = datetime(2025, 6, 3, 0, 0, tzinfo=UTC)  # a's expiry day
    assert exception_store.list(first) == [b]
    assert exception_store.list(first, include_expired=True) == [a, b]
    assert a.status_on(date(2025, 6, 3)) == "expired"
    with pytest.raises(ExceptionError, match="tenant id must be a GUID"):
        exception_store.list("contoso")


def test_tables_that_do_not_exist_hold_no_exceptions(azurite: AzuriteProcess, table_prefix: str) -> None:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    store = ExceptionStore(service, prefix=table_prefix, check_ids=CHECK_IDS)
    try:
        assert store.active_for(new_tenant(), TODAY) == {}
        assert store.list(include_expired=True) == []
        assert store.audit_trail() == []
        assert store.get(str(uuid.uuid4())) is None
    finally:
        store.close()


def test_table_names_fit_the_prefix_rules() -> None:
    longest = "p" + "x" * 51
    assert exception_table_names(longest) == (f"{longest}exceptions", f"{longest}exceptaudit")
    assert exception_table_names("pg") == ("pgexceptions", "pgexceptaudit")
    with pytest.raises(ValueError, match="table prefix"):
        exception_table_names("pg-test")

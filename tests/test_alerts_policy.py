"""The alert policy against Azurite: what news is owed, to whom, and only once (issue 5 §2, §5).

Runs are stored through `ScanStore.complete_run` (the real lifecycle), alerts through the real
`AlertStore` on the same tables service and prefix; the policy functions are called directly."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from checks import ALL_CHECKS
from notifiers.health_email import HealthProblem
from partnerguard.alerts.policy import (
    MAX_REMINDER_FINDINGS,
    AlertRef,
    HealthIncident,
    owed_after_scan,
    problem_document,
    problem_from_document,
    record_health,
    record_reminder,
    record_run_alert,
    reminder_slot,
)
from partnerguard.model import CheckMetadata, CheckOutcome, CheckResult, Finding, Severity, SubjectType, TenantInfo
from partnerguard.settings import Settings
from partnerguard.storage import ScanStore
from partnerguard.storage.alert_outbox import (
    AlertStore,
    alert_id_health,
    alert_id_reminder,
    alert_id_run,
    recipients_key,
)

pytestmark = pytest.mark.azurite

SECOPS = "secops@contoso.example"
NOC = "noc@contoso.example"
CUSTOMER_DESK = "desk@northwind.example"
# A Monday 08:00 UTC: 12-hour reminder slots start at 00:00 and 12:00.
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

_METADATA = {check.METADATA.id: check.METADATA for check in ALL_CHECKS}
REGISTRATION = _METADATA["mfa.registration"]
ENFORCEMENT = _METADATA["mfa.enforcement"]


@pytest.fixture
def alerts(scan_store: ScanStore) -> Iterator[AlertStore]:
    store = AlertStore(scan_store.service, scan_store.prefix)
    store.ensure_tables()
    yield store
    scan_store.service.delete_table(store.table.table_name)
    store.close()


def new_tenant() -> TenantInfo:
    # A fresh tenant per test: nothing of another test's lifecycle leaks in.
    return TenantInfo(str(uuid.uuid4()), "Northwind", "customer")


def user(subject_id: str, severity: Severity = Severity.CRITICAL) -> Finding:
    return Finding(subject_id, SubjectType.USER, f"user {subject_id}", "not MFA capable", severity)


def results(by_check: Mapping[CheckMetadata, Sequence[Finding]]) -> list[CheckResult]:
    return [CheckResult(metadata, CheckOutcome.from_findings(list(found))) for metadata, found in by_check.items()]


def scan(
    store: ScanStore,
    tenant: TenantInfo,
    finished: datetime,
    by_check: Mapping[CheckMetadata, Sequence[Finding]],
    excepted: frozenset[tuple[str, str]] = frozenset(),
) -> str:
    """One completed run that finished at `finished` (the findings' first_seen when new)."""
    started = finished - timedelta(minutes=1)
    run_id = store.start_run(tenant, started)
    store.complete_run(tenant, run_id, started, finished, results(by_check), excepted)
    return run_id


def settings_for(
    recipients: Sequence[str] = (SECOPS,),
    by_tenant: dict[str, tuple[str, ...]] | None = None,
    reminder_hours: int = 0,
) -> Settings:
    return Settings(
        alert_recipients=tuple(recipients),
        alert_recipients_by_tenant=by_tenant or {},
        alert_reminder_hours=reminder_hours,
    )


def alert_status(store: ScanStore, tenant: TenantInfo, run_id: str) -> str:
    run = store.get_run(tenant.id, run_id)
    assert run is not None
    return run.alert_status


# -- run alerts --------------------------------------------------------------------------------


def test_a_run_with_new_findings_owes_its_digest_under_a_deterministic_id(
    scan_store: ScanStore, alerts: AlertStore
) -> None:
    tenant = new_tenant()
    run_id = scan(scan_store, tenant, T0, {REGISTRATION: [user("u1")]})
    settings = settings_for()

    (record,) = record_run_alert(settings, scan_store, alerts, tenant.id, run_id, T0)

    assert record is not None
    assert record.alert_id == alert_id_run(tenant.id, run_id) == f"run~{tenant.id}~{run_id}"
    assert record.partition == recipients_key([SECOPS])
    assert (record.kind, record.state, record.tenant_id, record.run_id) == ("run", "pending", tenant.id, run_id)
    assert record.recipients == (SECOPS,)
    assert alert_status(scan_store, tenant, run_id) == "pending"


def test_recording_the_same_run_twice_owes_it_once(scan_store: ScanStore, alerts: AlertStore) -> None:
    tenant = new_tenant()
    run_id = scan(scan_store, tenant, T0, {REGISTRATION: [user("u1")]})
    settings = settings_for()

    first = owed_after_scan(settings, scan_store, alerts, tenant.id, run_id, T0)
    # The redelivered scan message notices the same run again, later.
    second = owed_after_scan(settings, scan_store, alerts, tenant.id, run_id, T0 + timedelta(minutes=5))

    assert [AlertRef.of(r) for r in first] == [AlertRef.of(r) for r in second]
    assert len(alerts.all()) == 1
    # The stored alert is the first one, not reset by the second notice.
    (stored,) = alerts.all()
    assert stored.created == T0


def test_an_alert_already_sent_is_not_owed_again(scan_store: ScanStore, alerts: AlertStore) -> None:
    tenant = new_tenant()
    run_id = scan(scan_store, tenant, T0, {REGISTRATION: [user("u1")]})
    settings = settings_for()
    (record,) = owed_after_scan(settings, scan_store, alerts, tenant.id, run_id, T0)
    alerts.set_state([record], "sent")

    (again,) = owed_after_scan(settings, scan_store, alerts, tenant.id, run_id, T0)

    assert again.state == "sent"  # the caller queues only what is not done


def test_a_run_that_changed_nothing_owes_nothing(scan_store: ScanStore, alerts: AlertStore) -> None:
    tenant = new_tenant()
    scan(scan_store, tenant, T0, {REGISTRATION: [user("u1")]})
    same = scan(scan_store, tenant, T0 + timedelta(hours=6), {REGISTRATION: [user("u1")]})

    assert record_run_alert(settings_for(), scan_store, alerts, tenant.id, same, T0) == []
    assert alerts.all() == []
    assert alert_status(scan_store, tenant, same) == "none"


def test_a_run_that_only_resolved_a_finding_owes_its_digest(scan_store: ScanStore, alerts: AlertStore) -> None:
    tenant = new_tenant()
    scan(scan_store, tenant, T0, {REGISTRATION: [user("u1"), user("u2")]})
    fixed = scan(scan_store, tenant, T0 + timedelta(hours=6), {REGISTRATION: [user("u1")]})

    (record,) = record_run_alert(settings_for(), scan_store, alerts, tenant.id, fixed, T0)

    assert record is not None and record.run_id == fixed


def test_no_recipients_means_nothing_is_recorded(scan_store: ScanStore, alerts: AlertStore) -> None:
    tenant = new_tenant()
    run_id = scan(scan_store, tenant, T0, {REGISTRATION: [user("u1")]})
    nobody = settings_for(recipients=(), reminder_hours=1)

    assert owed_after_scan(nobody, scan_store, alerts, tenant.id, run_id, T0 + timedelta(days=2)) == []
    assert alerts.all() == []
    assert alert_status(scan_store, tenant, run_id) == "none"


def test_recipients_by_tenant_make_a_recipient_set_of_their_own(scan_store: ScanStore, alerts: AlertStore) -> None:
    northwind, fabrikam = new_tenant(), new_tenant()
    settings = settings_for(by_tenant={northwind.id.lower(): (CUSTOMER_DESK,)})
    northwind_run = scan(scan_store, northwind, T0, {REGISTRATION: [user("u1")]})
    fabrikam_run = scan(scan_store, fabrikam, T0, {REGISTRATION: [user("u1")]})

    (northwind_alert,) = record_run_alert(settings, scan_store, alerts, northwind.id, northwind_run, T0)
    (fabrikam_alert,) = record_run_alert(settings, scan_store, alerts, fabrikam.id, fabrikam_run, T0)

    assert northwind_alert is not None and fabrikam_alert is not None
    assert set(northwind_alert.recipients) == {SECOPS, CUSTOMER_DESK}
    assert northwind_alert.partition == recipients_key([CUSTOMER_DESK, SECOPS])
    assert fabrikam_alert.recipients == (SECOPS,)
    assert fabrikam_alert.partition == recipients_key([SECOPS])
    assert northwind_alert.partition != fabrikam_alert.partition


def test_recipients_by_tenant_alone_alert_only_their_tenant(scan_store: ScanStore, alerts: AlertStore) -> None:
    northwind, fabrikam = new_tenant(), new_tenant()
    settings = settings_for(recipients=(), by_tenant={northwind.id.lower(): (CUSTOMER_DESK,)})
    northwind_run = scan(scan_store, northwind, T0, {REGISTRATION: [user("u1")]})
    fabrikam_run = scan(scan_store, fabrikam, T0, {REGISTRATION: [user("u1")]})

    (owed,) = record_run_alert(settings, scan_store, alerts, northwind.id, northwind_run, T0)

    assert owed is not None and owed.recipients == (CUSTOMER_DESK,)
    assert record_run_alert(settings, scan_store, alerts, fabrikam.id, fabrikam_run, T0) == []


# -- recipient sets ----------------------------------------------------------------------------


def test_a_recipient_set_key_ignores_order_case_spaces_and_repeats() -> None:
    key = recipients_key([SECOPS, NOC])
    assert key == recipients_key([NOC, SECOPS])
    assert key == recipients_key(["SecOps@Contoso.Example", " noc@contoso.example "])
    assert key == recipients_key([SECOPS, NOC, SECOPS.upper()])
    assert key.startswith("r-") and len(key) == 34


def test_different_recipient_sets_have_different_keys() -> None:
    keys = {
        recipients_key([SECOPS]),
        recipients_key([NOC]),
        recipients_key([SECOPS, NOC]),
        recipients_key([SECOPS, NOC, CUSTOMER_DESK]),
    }
    assert len(keys) == 4


@pytest.mark.parametrize("recipients", [[], (), SECOPS])
def test_a_recipient_set_is_a_non_empty_sequence(recipients: Sequence[str]) -> None:
    with pytest.raises(ValueError, match="recipient set"):
        recipients_key(recipients)


# -- reminders ---------------------------------------------------------------------------------


def test_reminders_are_off_by_default(scan_store: ScanStore, alerts: AlertStore) -> None:
    tenant = new_tenant()
    scan(scan_store, tenant, T0, {REGISTRATION: [user("u1")]})

    assert settings_for().alert_reminder_hours == 0
    assert Settings.from_env({}).alert_reminder_hours == 0
    assert record_reminder(settings_for(), scan_store, alerts, tenant.id, T0 + timedelta(days=30)) == []
    assert alerts.all() == []


def test_a_reminder_is_due_only_once_the_interval_has_passed(scan_store: ScanStore, alerts: AlertStore) -> None:
    tenant = new_tenant()
    scan(scan_store, tenant, T0, {REGISTRATION: [user("u1"), user("u2")]})
    settings = settings_for(reminder_hours=12)

    assert record_reminder(settings, scan_store, alerts, tenant.id, T0 + timedelta(hours=11, minutes=59)) == []
    (due,) = record_reminder(settings, scan_store, alerts, tenant.id, T0 + timedelta(hours=12))

    assert due is not None
    assert due.alert_id == alert_id_reminder(tenant.id, reminder_slot(T0 + timedelta(hours=12), 12))
    assert due.alert_id == f"reminder~{tenant.id}~20260105T12"
    assert due.kind == "reminder" and due.tenant_id == tenant.id
    assert due.payload == {
        "findings": [["mfa.registration", "u1"], ["mfa.registration", "u2"]],
        "interval_hours": 12,
    }


def test_one_reminder_per_slot(scan_store: ScanStore, alerts: AlertStore) -> None:
    tenant = new_tenant()
    scan(scan_store, tenant, T0, {REGISTRATION: [user("u1")]})
    settings = settings_for(reminder_hours=12)

    (first,) = record_reminder(settings, scan_store, alerts, tenant.id, T0 + timedelta(hours=16))
    # Every scan in the same 12-hour slot notices the same overdue finding.
    (again,) = record_reminder(settings, scan_store, alerts, tenant.id, T0 + timedelta(hours=21))
    (next_slot,) = record_reminder(settings, scan_store, alerts, tenant.id, T0 + timedelta(hours=28))

    assert first is not None and again is not None and next_slot is not None
    assert first.alert_id == again.alert_id
    assert next_slot.alert_id != first.alert_id
    assert len(alerts.all()) == 2


def test_a_reminder_counts_from_the_last_email_that_named_the_finding(
    scan_store: ScanStore, alerts: AlertStore
) -> None:
    tenant = new_tenant()
    scan(scan_store, tenant, T0, {REGISTRATION: [user("u1")]})
    settings = settings_for(reminder_hours=12)
    told = T0 + timedelta(hours=14)
    scan_store.mark_notified(tenant.id, [("mfa.registration", "u1")], told)

    # 12 hours after first seen, but only 10 after the email that named it.
    assert record_reminder(settings, scan_store, alerts, tenant.id, T0 + timedelta(hours=24)) == []
    assert record_reminder(settings, scan_store, alerts, tenant.id, told + timedelta(hours=12)) != []


def test_a_reminder_names_only_critical_findings_still_new_or_open(scan_store: ScanStore, alerts: AlertStore) -> None:
    tenant = new_tenant()
    first = {
        REGISTRATION: [
            user("critical-open"),
            user("critical-fixed"),
            user("critical-excepted"),
            user("high", Severity.HIGH),
        ],
        ENFORCEMENT: [user("critical-new")],
    }
    scan(scan_store, tenant, T0, first)
    later = {
        REGISTRATION: [user("critical-open"), user("critical-excepted"), user("high", Severity.HIGH)],
        ENFORCEMENT: [user("critical-new")],
    }
    scan(
        scan_store,
        tenant,
        T0 + timedelta(hours=6),
        later,
        excepted=frozenset({("mfa.registration", "critical-excepted")}),
    )
    states = {key[1]: record.state for key, record in scan_store.active_findings(tenant.id).items()}
    assert states["critical-open"] == "open" and states["critical-excepted"] == "excepted"
    assert "critical-fixed" not in states  # resolved

    (due,) = record_reminder(settings_for(reminder_hours=12), scan_store, alerts, tenant.id, T0 + timedelta(hours=13))

    assert due is not None
    assert due.payload["findings"] == [["mfa.enforcement", "critical-new"], ["mfa.registration", "critical-open"]]


def test_no_reminder_without_open_critical_findings(scan_store: ScanStore, alerts: AlertStore) -> None:
    tenant = new_tenant()
    scan(scan_store, tenant, T0, {REGISTRATION: [user("high", Severity.HIGH), user("fixed")]})
    scan(scan_store, tenant, T0 + timedelta(hours=1), {REGISTRATION: [user("high", Severity.HIGH)]})

    assert record_reminder(settings_for(reminder_hours=12), scan_store, alerts, tenant.id, T0 + timedelta(days=3)) == []
    assert alerts.all() == []


def test_a_reminder_lists_at_most_the_cap_oldest_first(scan_store: ScanStore, alerts: AlertStore) -> None:
    tenant = new_tenant()
    # Admins without MFA, by object id (GUIDs, as Graph names them).
    early = sorted((user(str(uuid.uuid4())) for _ in range(5)), key=lambda f: f.subject_id)
    late = sorted((user(str(uuid.uuid4())) for _ in range(MAX_REMINDER_FINDINGS)), key=lambda f: f.subject_id)
    scan(scan_store, tenant, T0, {REGISTRATION: early})
    scan(scan_store, tenant, T0 + timedelta(hours=1), {REGISTRATION: [*early, *late]})

    (due,) = record_reminder(settings_for(reminder_hours=12), scan_store, alerts, tenant.id, T0 + timedelta(days=1))

    assert due is not None
    listed = due.payload["findings"]
    assert len(listed) == MAX_REMINDER_FINDINGS
    # Those open longest come first; the newest are the ones left out.
    assert listed[:5] == [["mfa.registration", f.subject_id] for f in early]
    assert ["mfa.registration", late[-1].subject_id] not in listed
    # The alert reads back from storage whole (what the alert worker will do).
    stored = alerts.get(due.partition, due.alert_id)
    assert stored is not None and stored.payload == due.payload


@pytest.mark.parametrize(
    ("now", "hours", "slot"),
    [
        (datetime(2026, 1, 5, 11, 59, tzinfo=UTC), 12, "20260105T00"),
        (datetime(2026, 1, 5, 12, 0, tzinfo=UTC), 12, "20260105T12"),
        (datetime(2026, 1, 5, 23, 59, 59, tzinfo=UTC), 12, "20260105T12"),
        (datetime(2026, 1, 5, 7, 0, tzinfo=UTC), 1, "20260105T07"),
        (datetime(2026, 1, 5, 7, 0, tzinfo=UTC), 24, "20260105T00"),
    ],
)
def test_reminder_slots(now: datetime, hours: int, slot: str) -> None:
    assert reminder_slot(now, hours) == slot


# -- health ------------------------------------------------------------------------------------


def stale(tenant_id: str, last_run: str = "never") -> HealthIncident:
    problem = HealthProblem("stale", tenant_id, "Northwind", "no successful scan", T0 - timedelta(days=1))
    return HealthIncident(problem, tenant_id, last_run)


def poisoned(message_id: str) -> HealthIncident:
    problem = HealthProblem("poison", None, None, "1 message in partnerguard-scans-poison", T0)
    return HealthIncident(problem, "partnerguard-scans-poison", message_id)


def test_a_health_incident_is_owed_once(alerts: AlertStore) -> None:
    tenant = new_tenant()
    settings = settings_for()

    (owed,) = record_health(settings, alerts, [stale(tenant.id)], T0)
    again = record_health(settings, alerts, [stale(tenant.id)], T0 + timedelta(hours=6))
    # The tenant succeeded once and went stale again: a new incident.
    (later,) = record_health(settings, alerts, [stale(tenant.id, "8249061199999-0123456789")], T0)

    # The same incident again is the same alert (still owed: the caller queues it only when no
    # message is on its way); never a second one.
    assert [record.alert_id for record in again] == [owed.alert_id]
    assert len(alerts.all(owed.partition)) == 2
    assert owed.alert_id == alert_id_health("stale", tenant.id, "never") == f"health~stale~{tenant.id}~never"
    assert later.alert_id != owed.alert_id
    assert owed.tenant_id == tenant.id and owed.kind == "health"
    assert problem_from_document(owed.payload["problems"][0]) == stale(tenant.id).problem


def test_a_poison_queue_goes_to_the_general_recipients(alerts: AlertStore) -> None:
    tenant = new_tenant()
    settings = settings_for(by_tenant={tenant.id.lower(): (CUSTOMER_DESK,)})

    (queue_problem,) = record_health(settings, alerts, [poisoned("m1")], T0)
    (tenant_problem,) = record_health(settings, alerts, [stale(tenant.id)], T0)

    assert queue_problem.recipients == (SECOPS,) and queue_problem.tenant_id is None
    assert set(tenant_problem.recipients) == {SECOPS, CUSTOMER_DESK}


def test_a_health_problem_with_no_one_to_tell_is_logged_not_recorded(
    alerts: AlertStore, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="partnerguard.alerts.policy"):
        assert record_health(settings_for(recipients=()), alerts, [poisoned("m1")], T0) == []
    assert alerts.all() == []
    assert "no alert destination (ALERT_RECIPIENTS" in caplog.text


def test_a_problem_survives_its_payload_round_trip() -> None:
    problem = HealthProblem(
        "consent",
        "b2b2b2b2-0000-4000-8000-000000000002",
        "<b>Northwind</b>",
        "AADSTS7000229: missing service principal",
        T0,
        "https://login.microsoftonline.com/b2b2b2b2-0000-4000-8000-000000000002/adminconsent?client_id=x",
    )
    assert problem_from_document(problem_document(problem)) == problem
    undated = HealthProblem("poison", None, None, "2 messages", None)
    assert problem_from_document(problem_document(undated)) == undated


def test_finished_alerts_past_retention_are_purged_and_owed_ones_kept(alerts: AlertStore) -> None:
    settings = settings_for()
    (done,) = record_health(settings, alerts, [poisoned("m-done")], T0)
    (owed,) = record_health(settings, alerts, [poisoned("m-owed")], T0)
    alerts.set_state([done], "sent")

    assert alerts.purge(before=T0 - timedelta(days=1)) == 0  # nothing that old
    assert alerts.purge(before=T0 + timedelta(days=1)) == 1

    assert [a.alert_id for a in alerts.all(owed.partition)] == [owed.alert_id]  # still owed: kept

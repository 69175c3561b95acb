"""The monitor watching itself (issue 5 §5): stale tenants, broken consent and poison queues
become health incidents keyed so that each incident is one email, not one per timer tick.

First the incident functions on their own (registry records built in code, poison queues on
Azurite), then end to end through the Functions entry points (`AlertsEnv`): tenant simulator,
Azurite, and the ACS fake behind the real `EmailClient`."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from azure.storage.queue import QueueClient, QueueServiceClient

from partnerguard.alerts.monitor import consent_incidents, consent_url, poison_incidents, stale_incidents
from partnerguard.graph import client as graph_client
from partnerguard.queues.names import SCAN_POISON_QUEUE, SCAN_QUEUE
from partnerguard.settings import Settings
from partnerguard.storage.tenant_registry import LastRun, TenantRecord
from testbed.acs_fake import SentEmail
from testbed.azurite import AzuriteProcess
from testbed.simulator import TenantSimulator, generate_tenant
from tests.alerts_harness import AlertsEnv, alerts_env
from tests.graph_sim import fast_pacer

pytestmark = [pytest.mark.azurite, pytest.mark.simulator]

PARTNER = "a1a1a1a1-0000-4000-8000-000000000001"
CUSTOMER = "b2b2b2b2-0000-4000-8000-000000000002"
NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
RUN = "8249061199999-0123456789"
APP_ID = "11111111-2222-4333-8444-555555555555"


def record(tenant_id: str = CUSTOMER, **fields: object) -> TenantRecord:
    return TenantRecord(id=tenant_id, name="Northwind", role="customer", **fields)  # type: ignore[arg-type]


# -- stale -------------------------------------------------------------------------------------


def test_a_tenant_that_never_succeeded_is_stale_from_when_monitoring_began() -> None:
    began = NOW - timedelta(hours=13)
    failed = LastRun(RUN, "failed", NOW - timedelta(hours=1), None)
    (incident,) = stale_incidents(Settings(), [record(monitored_since=began, last_run=failed)], [CUSTOMER], NOW)

    assert (incident.subject, incident.incident) == (CUSTOMER, "never")
    problem = incident.problem
    assert (problem.kind, problem.tenant_id, problem.tenant_name, problem.since) == (
        "stale",
        CUSTOMER,
        "Northwind",
        began,
    )
    assert "monitoring began" in problem.detail and f"{RUN}, failed" in problem.detail


def test_a_tenant_that_succeeded_long_ago_is_stale_since_that_run() -> None:
    succeeded = NOW - timedelta(days=2)
    tenant = record(monitored_since=NOW - timedelta(days=30), last_succeeded_at=succeeded, last_succeeded_run_id=RUN)

    (incident,) = stale_incidents(Settings(), [tenant], [CUSTOMER], NOW)

    assert incident.incident == RUN
    assert incident.problem.since == succeeded
    assert RUN in incident.problem.detail


@pytest.mark.parametrize("age", [timedelta(0), timedelta(hours=6), timedelta(hours=12)])
def test_within_twice_the_schedule_nothing_is_stale(age: timedelta) -> None:
    recent = record(monitored_since=NOW - timedelta(days=30), last_succeeded_at=NOW - age, last_succeeded_run_id=RUN)
    fresh = record(PARTNER, monitored_since=NOW - age)
    assert stale_incidents(Settings(), [recent, fresh], [CUSTOMER, PARTNER], NOW) == []


def test_twice_the_schedule_follows_the_configured_schedule() -> None:
    # Weekdays at 09:00: the longest gap is three days, so four days without success is fine.
    weekdays = Settings(scan_schedule="0 0 9 * * 1-5")
    tenant = record(last_succeeded_at=NOW - timedelta(days=4), last_succeeded_run_id=RUN)
    assert stale_incidents(weekdays, [tenant], [CUSTOMER], NOW) == []
    assert len(stale_incidents(weekdays, [tenant], [CUSTOMER], NOW + timedelta(days=2, seconds=1))) == 1


def test_only_monitored_recorded_tenants_can_be_stale() -> None:
    old = record(monitored_since=NOW - timedelta(days=5))
    # No longer monitored (removed from PARTNERGUARD_TENANTS): not a problem.
    assert stale_incidents(Settings(), [old], [PARTNER], NOW) == []
    # Monitored and never recorded: its first scan has not even failed yet.
    assert stale_incidents(Settings(), [], [CUSTOMER], NOW) == []
    # A tenant id configured in upper case is the same tenant.
    assert len(stale_incidents(Settings(), [old], [CUSTOMER.upper()], NOW)) == 1
    # No reference time at all: nothing to measure from.
    assert stale_incidents(Settings(), [record()], [CUSTOMER], NOW) == []


# -- consent -----------------------------------------------------------------------------------


def test_a_tenant_without_consent_is_one_incident_per_breakage() -> None:
    settings = Settings(client_id=APP_ID)
    broke = datetime(2026, 1, 4, 7, 30, 15, tzinfo=UTC)
    missing = record(
        consent="missing",
        consent_error="AADSTS7000229: missing service principal",
        consent_since=broke,
        consent_checked_at=NOW,
    )

    (incident,) = consent_incidents(settings, [missing], [CUSTOMER])
    # Checked again later, still broken since the same moment: the same incident.
    rechecked = dataclasses.replace(missing, consent_checked_at=NOW + timedelta(days=1))
    (again,) = consent_incidents(settings, [rechecked], [CUSTOMER])

    assert (incident.subject, incident.incident) == (CUSTOMER, "missing-20260104T073015")
    assert again.incident == incident.incident
    problem = incident.problem
    assert problem.kind == "consent" and problem.since == broke
    assert "is not consented to" in problem.detail and "AADSTS7000229" in problem.detail
    assert problem.consent_url == f"https://login.microsoftonline.com/{CUSTOMER}/adminconsent?client_id={APP_ID}"


def test_a_new_breakage_or_a_new_state_is_a_new_incident() -> None:
    settings = Settings(client_id=APP_ID)
    first = record(consent="missing", consent_since=NOW)
    later = record(consent="missing", consent_since=NOW + timedelta(days=3))
    failing = record(consent="failing", consent_since=NOW, consent_error="AADSTS7000215: invalid client secret")

    keys = {consent_incidents(settings, [tenant], [CUSTOMER])[0].incident for tenant in (first, later, failing)}

    assert len(keys) == 3
    (failing_incident,) = consent_incidents(settings, [failing], [CUSTOMER])
    assert "keeps failing to sign in" in failing_incident.problem.detail


def test_consent_since_falls_back_to_when_it_was_checked() -> None:
    checked = NOW - timedelta(hours=1)
    (incident,) = consent_incidents(Settings(), [record(consent="missing", consent_checked_at=checked)], [CUSTOMER])
    assert incident.problem.since == checked
    (unknown,) = consent_incidents(Settings(), [record(consent="missing")], [CUSTOMER])
    assert unknown.incident == "missing-unknown" and unknown.problem.since is None


def test_consent_ok_or_unmonitored_is_no_incident() -> None:
    assert consent_incidents(Settings(), [record(consent="ok")], [CUSTOMER]) == []
    assert consent_incidents(Settings(), [record(consent="missing", consent_since=NOW)], [PARTNER]) == []


def test_a_hostile_consent_error_is_made_inert_in_the_detail() -> None:
    hostile = record(consent="failing", consent_since=NOW, consent_error="AADSTS50000\r\nBcc: x@evil.example\x1b[2J")
    (incident,) = consent_incidents(Settings(), [hostile], [CUSTOMER])
    assert "\r" not in incident.problem.detail and "\n" not in incident.problem.detail
    assert "\x1b" not in incident.problem.detail


def test_the_consent_url_is_the_admin_consent_endpoint_of_the_cloud() -> None:
    assert consent_url(Settings(client_id=APP_ID), CUSTOMER) == (
        f"https://login.microsoftonline.com/{CUSTOMER}/adminconsent?client_id={APP_ID}"
    )
    sovereign = Settings(client_id=APP_ID, authority_host="https://login.microsoftonline.us/")
    assert consent_url(sovereign, CUSTOMER) == (
        f"https://login.microsoftonline.us/{CUSTOMER}/adminconsent?client_id={APP_ID}"
    )
    # Without an app id there is no URL to give.
    assert consent_url(Settings(), CUSTOMER) is None
    # Whatever the ids hold is quoted: nothing can add a query parameter or a path.
    odd = consent_url(Settings(client_id="a&redirect_uri=https://evil.example"), "x/../y")
    assert odd == (
        "https://login.microsoftonline.com/x%2F..%2Fy/adminconsent?client_id=a%26redirect_uri%3Dhttps%3A%2F%2Fevil.example"
    )


# -- poison queues on Azurite ------------------------------------------------------------------


@pytest.fixture
def queues(azurite: AzuriteProcess) -> Iterator[dict[str, QueueClient]]:
    """Two poison queues of this test's own (created empty), and one that was never created."""
    service = QueueServiceClient.from_connection_string(azurite.connection_string)
    suffix = uuid.uuid4().hex[:10]
    names = [f"scans-{suffix}-poison", f"alerts-{suffix}-poison", f"never-{suffix}-poison"]
    clients = {name: service.get_queue_client(name) for name in names}
    for name in names[:2]:
        clients[name].create_queue()
    yield clients
    for name in names[:2]:
        clients[name].delete_queue()
    service.close()


def test_empty_or_missing_poison_queues_are_no_incident(queues: dict[str, QueueClient]) -> None:
    assert poison_incidents(queues) == []


def test_a_poison_queue_with_messages_is_one_incident_keyed_by_its_oldest_message(
    queues: dict[str, QueueClient],
) -> None:
    scans, alerts, _ = queues
    oldest = queues[scans].send_message("first")
    queues[scans].send_message("second")

    (incident,) = poison_incidents(queues)

    assert (incident.subject, incident.incident) == (scans, oldest.id)
    problem = incident.problem
    assert problem.kind == "poison" and problem.tenant_id is None
    assert problem.detail == f"2 messages in {scans}"
    assert problem.since is not None and problem.since.tzinfo is not None

    # More messages: the same incident, still one email.
    queues[scans].send_message("third")
    (same,) = poison_incidents(queues)
    assert same.incident == oldest.id and same.problem.detail == f"3 messages in {scans}"

    # Another queue poisoned too: one incident each.
    queues[alerts].send_message("an alert")
    assert {i.subject for i in poison_incidents(queues)} == {scans, alerts}


def test_once_the_oldest_message_is_dealt_with_the_next_one_is_a_new_incident(
    queues: dict[str, QueueClient],
) -> None:
    scans = next(iter(queues))
    queues[scans].send_message("first")
    second = queues[scans].send_message("second")
    (message,) = queues[scans].receive_messages(max_messages=1)
    queues[scans].delete_message(message)

    (incident,) = poison_incidents(queues)

    assert incident.incident == second.id
    assert incident.problem.detail == f"1 message in {scans}"


# -- end to end --------------------------------------------------------------------------------


@pytest.fixture
def sim(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[TenantSimulator]:
    """The partner and the customer, or (parametrized with False) the customer alone."""
    customer = generate_tenant(CUSTOMER, 20, seed=32, display_name="Northwind", incapable=1)
    tenants = [customer]
    if getattr(request, "param", True):
        tenants.insert(
            0, generate_tenant(PARTNER, 20, seed=31, role="partner", display_name="Contoso Partner", incapable=1)
        )
    # Each tick is six hours of the services' clock but a second of real time: Graph's limits
    # (and the client's pacing to them, per real seconds) would make every tick wait for the
    # last. What is tested here is what the monitor says, not how fast Graph is read.
    monkeypatch.setattr(graph_client, "PROCESS_PACER", fast_pacer())
    with TenantSimulator(tenants, enforce_limits=False) as simulator:
        yield simulator


@pytest.fixture
def env(azurite: AzuriteProcess, table_prefix: str, sim: TenantSimulator, tmp_path: Path) -> Iterator[AlertsEnv]:
    yield from alerts_env(azurite.connection_string, table_prefix, sim, tmp_path)


def health(sent: list[SentEmail], kind_words: str = "") -> list[SentEmail]:
    """The health emails among `sent` (of one kind when `kind_words` is given)."""
    return [e for e in sent if e.subject.startswith("PartnerGuard health:") and kind_words in e.subject]


NOT_SCANNED = "not scanned"
NO_CONSENT = "without working consent"
QUEUE = "queue with unprocessed messages"


def test_a_tenant_failing_for_twice_the_schedule_gets_one_health_email(env: AlertsEnv, sim: TenantSimulator) -> None:
    # Every scan of the customer fails: Graph answers its security defaults policy without the
    # boolean `isEnabled`, so the checks that need it end in error and the run is failed.
    sim.tenant(CUSTOMER).security_defaults["isEnabled"] = "maybe"

    per_cycle = [health(env.cycle()) for _ in range(5)]

    # The first tick's run fails; the ticks 6 and 12 hours after it are within twice the
    # schedule (12 h); the one 18 hours after it is past it: one email, and no more after.
    assert [len(emails) for emails in per_cycle] == [0, 0, 0, 1, 0]
    assert [run.status for run in env.services.store.list_runs(CUSTOMER)] == ["failed"] * 5
    (email,) = per_cycle[3]
    assert NOT_SCANNED in email.subject
    text = email.plain_text or ""
    assert CUSTOMER in text and PARTNER not in text
    assert "no successful scan since monitoring began" in text
    (alert,) = [a for a in env.services.alerts.all() if a.kind == "health"]
    assert alert.alert_id == f"health~stale~{CUSTOMER}~never" and alert.state == "sent"


@pytest.mark.parametrize("sim", [False], ids=["one-tenant"], indirect=True)
def test_a_poisoned_scan_message_gets_one_health_email(env: AlertsEnv) -> None:
    env.services.scan_queue()  # created, as the first fan-out would
    env.functions.send_raw(SCAN_QUEUE, b"this is no scan message")

    first = env.cycle()  # the worker poisons the message during this tick
    second = env.cycle()  # the next tick's monitor finds the poison queue not empty
    env.functions.send_raw(SCAN_QUEUE, b"nor is this")
    third = env.cycle()  # a second poisoned message: the same incident (same oldest message)
    fourth = env.cycle()

    assert health(first) == [] and health(third) == [] and health(fourth) == []
    (email,) = health(second)
    assert QUEUE in email.subject and SCAN_POISON_QUEUE in (email.plain_text or "")
    assert env.raised == []


@pytest.mark.parametrize("sim", [False], ids=["one-tenant"], indirect=True)
def test_lost_consent_gets_one_email_not_one_per_tick(env: AlertsEnv, sim: TenantSimulator) -> None:
    assert health(env.cycle()) == []
    sim.tenant(CUSTOMER).consented = False
    sim.expire_tokens()  # six hours later, the tokens of the last scan have expired too

    # Five ticks: the scan that finds consent gone, three skipped (probed again after a day),
    # and the daily probe, which finds it still missing.
    per_cycle = [health(env.cycle(), NO_CONSENT) for _ in range(5)]

    # Told by the scan that found it, at once; the timer's monitor sees the same incident after.
    assert [len(emails) for emails in per_cycle] == [1, 0, 0, 0, 0]
    (email,) = per_cycle[0]
    text = email.plain_text or ""
    assert CUSTOMER in text and f"/{CUSTOMER}/adminconsent?client_id=" in text
    registry = env.services.registry.get(CUSTOMER)
    assert registry is not None and registry.consent == "missing"

"""Issue 5's acceptance: alert emails through the real `EmailClient` to the ACS Email fake (which
checks the HMAC signature and, like ACS, does not de-duplicate on Operation-Id), driven through
the Functions entry points on Azurite and the tenant simulator.

One email per tenant with the right findings on the first scan; none when nothing changed; an
email saying a fixed user is resolved; exactly one email when a send fails once, when ACS
accepted a send but answered 500, and when the worker crashes after the send but before marking
it delivered; hostile display names escaped; throttling deferred and then grouped; a permanent
refusal recorded on the run and poisoned.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from partnerguard.alerts.messages import AlertMessage, parse_alert_message
from partnerguard.alerts.policy import AlertRef
from partnerguard.graph import client as graph_client
from partnerguard.queues.names import ALERT_POISON_QUEUE, ALERT_QUEUE, SCAN_QUEUE
from partnerguard.storage.alert_outbox import AlertStore, EmailRecord
from testbed.acs_fake import SentEmail
from testbed.azurite import AzuriteProcess
from testbed.simulator import TenantSimulator, generate_tenant
from tests.alerts_harness import RECIPIENT, SENDER, AlertsEnv, alerts_env, host_message
from tests.graph_sim import fast_pacer

pytestmark = [pytest.mark.azurite, pytest.mark.simulator]

PARTNER = "a1a1a1a1-0000-4000-8000-000000000001"
CUSTOMER = "b2b2b2b2-0000-4000-8000-000000000002"
HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture
def sim() -> Iterator[TenantSimulator]:
    partner = generate_tenant(PARTNER, 30, seed=21, role="partner", display_name="Contoso Partner", incapable=2)
    customer = generate_tenant(CUSTOMER, 30, seed=22, display_name="Northwind", incapable=1)
    # The customer's user without MFA carries a display name that is an HTML injection.
    (victim,) = customer.mfa_incapable_user_ids()
    user = customer.user(victim)
    assert user is not None
    user["displayName"] = HOSTILE
    for row in customer.user_registration_details:
        if row["id"] == victim:
            row["userDisplayName"] = HOSTILE
    with TenantSimulator([partner, customer], enforce_limits=False) as simulator:
        yield simulator


@pytest.fixture
def env(
    azurite: AzuriteProcess, table_prefix: str, sim: TenantSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AlertsEnv]:
    # Each tick is six hours of the services' clock but a moment of real time: Graph's limits
    # (pacing is tested on its own) would make every test wait for them.
    monkeypatch.setattr(graph_client, "PROCESS_PACER", fast_pacer())
    yield from alerts_env(azurite.connection_string, table_prefix, sim, tmp_path)


def by_tenant(sent: list[SentEmail], env: AlertsEnv) -> dict[str, SentEmail]:
    """Each email keyed by the tenant whose digest it is (the run's alert names it)."""
    emails: dict[str, SentEmail] = {}
    for email in sent:
        tenants = [t for t in (PARTNER, CUSTOMER) if t in (email.plain_text or "")]
        assert len(tenants) == 1, f"one tenant per digest, got {tenants} in {email.subject!r}"
        assert tenants[0] not in emails, "a second email for the same tenant"
        emails[tenants[0]] = email
    return emails


def mfa_registration_subjects(sim: TenantSimulator, tenant_id: str) -> set[str]:
    return sim.tenant(tenant_id).mfa_incapable_user_ids()


def fix_user(sim: TenantSimulator, tenant_id: str, user_id: str) -> None:
    """The user registers the Authenticator app: the report now says MFA capable."""
    for row in sim.tenant(tenant_id).user_registration_details:
        if row["id"] == user_id:
            row["isMfaCapable"] = True
            row["isMfaRegistered"] = True
            row["methodsRegistered"] = ["microsoftAuthenticatorPush"]


def runs_alert_status(env: AlertsEnv, tenant_id: str) -> str:
    (run,) = env.services.store.list_runs(tenant_id, top=1)
    return str(run.alert_status)


def test_the_first_scan_sends_one_email_per_tenant_with_its_findings(env: AlertsEnv, sim: TenantSimulator) -> None:
    sent = env.cycle()

    assert env.raised == []
    emails = by_tenant(sent, env)
    assert set(emails) == {PARTNER, CUSTOMER}
    for tenant_id, email in emails.items():
        assert email.sender == SENDER and email.recipients == (RECIPIENT,)
        assert email.operation_id_from_client  # our deterministic operation id, not the service's
        text = email.plain_text or ""

        # Every user without MFA of this tenant is counted and some are named (the digest lists a
        # few per kind of finding and links to the rest); no user of the other tenant is named.
        def names(tenant: str) -> set[str]:
            users = {u["id"]: u["displayName"] for u in sim.tenant(tenant).users}
            return {users[user_id] for user_id in mfa_registration_subjects(sim, tenant)}

        own = names(tenant_id)
        assert f"(mfa.registration): {len(mfa_registration_subjects(sim, tenant_id))} new" in text
        assert any(name in text for name in own)
        other = CUSTOMER if tenant_id == PARTNER else PARTNER
        # (Generated tenants reuse display names: only the other tenant's own names can tell.)
        for name in names(other) - {u["displayName"] for u in sim.tenant(tenant_id).users}:
            assert name not in text
        assert "NEW FINDINGS" in text and "mfa.registration" in text
        # A link to the HTTP API's findings of this tenant, for the details.
        assert f"https://partnerguard.contoso.example/api/tenants/{tenant_id}/findings" in (email.html or "")
        assert runs_alert_status(env, tenant_id) == "sent"


def test_an_identical_second_scan_sends_no_email(env: AlertsEnv) -> None:
    assert len(env.cycle()) == 2
    assert env.cycle() == []
    assert env.raised == []
    # Nothing changed, so the second runs owe nothing.
    assert runs_alert_status(env, PARTNER) == "none" and runs_alert_status(env, CUSTOMER) == "none"


def test_a_fixed_user_is_reported_resolved(env: AlertsEnv, sim: TenantSimulator) -> None:
    env.cycle()
    fixed = sorted(mfa_registration_subjects(sim, PARTNER))[0]
    fix_user(sim, PARTNER, fixed)

    sent = env.cycle()

    (email,) = sent  # only the partner changed
    text = email.plain_text or ""
    assert PARTNER in text
    resolved_section = text.split("RESOLVED (1)", 1)[1].split("Every finding of this tenant", 1)[0]
    # The digest names subjects (their ids are in the API it links to).
    name = next(u["displayName"] for u in sim.tenant(PARTNER).users if u["id"] == fixed)
    assert f": {name}" in resolved_section and "Fixed" in resolved_section
    assert "No new findings in this run." in text
    finding = env.services.store.get_finding(PARTNER, "mfa.registration", fixed)
    assert finding is not None and finding.state == "resolved" and finding.resolution == "fixed"


def test_a_send_that_fails_once_is_sent_exactly_once(env: AlertsEnv) -> None:
    env.acs.fail_next(503)  # refused before ACS took the message

    sent = env.cycle()

    assert len(sent) == 2 and len(by_tenant(sent, env)) == 2
    assert env.raised == []  # deferred with back-off, not failed: the next try delivered it
    assert runs_alert_status(env, PARTNER) == "sent" and runs_alert_status(env, CUSTOMER) == "sent"


def notified(env: AlertsEnv, tenant_id: str) -> int:
    """How many of the tenant's active findings an email is recorded to have told about."""
    findings = env.services.store.active_findings(tenant_id).values()
    return sum(1 for finding in findings if finding.last_notified is not None)


def test_a_send_accepted_but_answered_500_still_marks_the_findings_notified(env: AlertsEnv) -> None:
    # The retry finds the operation accepted and sends nothing: the findings the email told
    # about are marked all the same, or a reminder would come an interval early.
    env.acs.fail_next(500, after_accept=True)

    sent = env.cycle()

    assert len(sent) == 2 and env.raised == []
    assert notified(env, PARTNER) > 0 and notified(env, CUSTOMER) > 0


def test_a_send_accepted_but_answered_500_is_not_sent_again(env: AlertsEnv) -> None:
    # ACS took the message and then failed the response: a blind retry would send it twice.
    env.acs.fail_next(500, after_accept=True)

    sent = env.cycle()

    assert env.raised == []
    assert len(sent) == 2 and len(by_tenant(sent, env)) == 2
    # The retry asked ACS first: every operation was sent once.
    operation_ids = [email.operation_id for email in sent]
    assert len(set(operation_ids)) == len(operation_ids)


def test_a_crash_after_the_send_before_marking_it_delivered_still_sends_one(
    env: AlertsEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    crashes: list[str] = []
    finish = AlertStore.finish_email

    def crash_once(self: AlertStore, email: EmailRecord, state: str, *args: Any, **kwargs: Any) -> None:
        if not crashes and state == "sent":
            crashes.append(email.operation_id)
            raise ConnectionError("the worker's host died here")
        finish(self, email, state, *args, **kwargs)

    monkeypatch.setattr(AlertStore, "finish_email", crash_once)

    sent = env.cycle()

    assert len(crashes) == 1 and len(env.raised) == 1
    assert len(sent) == 2 and len(by_tenant(sent, env)) == 2
    assert [email.operation_id for email in sent].count(crashes[0]) == 1
    assert runs_alert_status(env, PARTNER) == "sent" and runs_alert_status(env, CUSTOMER) == "sent"
    # The crash came before the findings were marked told about: the retry marked them.
    assert notified(env, PARTNER) > 0 and notified(env, CUSTOMER) > 0


def test_a_redelivered_alert_message_sends_nothing_more(env: AlertsEnv) -> None:
    assert len(env.cycle()) == 2
    for alert in env.services.alerts.all():
        env.services.alert_queue().send_message(AlertMessage(AlertRef.of(alert)).to_json())

    env.drain(ALERT_QUEUE, "alert_worker")

    assert len(env.acs.sent) == 2 and env.raised == []


def test_a_hostile_display_name_is_escaped_in_the_html_part(env: AlertsEnv) -> None:
    emails = by_tenant(env.cycle(), env)
    html = emails[CUSTOMER].html or ""
    assert HOSTILE not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    # The plain-text part shows the name as text (nothing interprets it there).
    assert HOSTILE in (emails[CUSTOMER].plain_text or "")


def test_throttled_alerts_are_deferred_then_sent_together(env: AlertsEnv) -> None:
    env.acs.fail_next(429, times=2, retry_after=7)

    assert env.cycle(wait_deferred=0) == [] and env.raised == []

    # Deferred, not failed: owed still, flagged, and their messages queued again, invisible for
    # ACS's Retry-After (the host hands them over then).
    pending = sorted((a for a in env.services.alerts.all() if a.state == "pending"), key=lambda a: a.alert_id)
    assert len(pending) == 2 and all(alert.throttled and not alert.email for alert in pending)
    alert_queue = env.functions.raw_queue(ALERT_QUEUE)
    assert alert_queue.get_queue_properties().approximate_message_count == 2
    assert list(alert_queue.peek_messages(max_messages=32)) == []
    assert runs_alert_status(env, PARTNER) == "pending" and runs_alert_status(env, CUSTOMER) == "pending"

    # The first deferred message comes back: both digests go out as one email to the recipients.
    first = AlertMessage(AlertRef.of(pending[0]), deferrals=1)
    assert env.invoke("alert_worker", host_message(StoredMessage(first.to_json())))
    (email,) = env.acs.sent
    assert PARTNER in (email.plain_text or "") and CUSTOMER in (email.plain_text or "")
    assert email.subject.startswith("PartnerGuard: 2 alerts")
    assert runs_alert_status(env, PARTNER) == "sent" and runs_alert_status(env, CUSTOMER) == "sent"

    # The second finds its alert delivered: nothing more.
    second = AlertMessage(AlertRef.of(pending[1]), deferrals=1)
    assert env.invoke("alert_worker", host_message(StoredMessage(second.to_json())))
    assert len(env.acs.sent) == 1


class StoredMessage:
    """A message as read back from the queue, for `host_message`."""

    def __init__(self, content: str) -> None:
        self.id = "deferred-message"
        self.content = content.encode()
        self.dequeue_count = 1


def test_a_permanent_refusal_is_recorded_on_the_run_and_poisoned(env: AlertsEnv) -> None:
    env.acs.fail_next(400, times=1)

    sent = env.cycle()

    assert len(sent) == 1 and env.raised == []
    statuses = {runs_alert_status(env, PARTNER), runs_alert_status(env, CUSTOMER)}
    assert statuses == {"sent", "failed"}
    failed_tenant = PARTNER if runs_alert_status(env, PARTNER) == "failed" else CUSTOMER
    (run,) = env.services.store.list_runs(failed_tenant, top=1)
    assert run.alert_error and "400" in run.alert_error
    assert run.to_document()["alert"] == {"status": "failed", "error": run.alert_error}
    (poisoned,) = env.functions.json_messages(ALERT_POISON_QUEUE)
    assert poisoned["reason"].startswith("delivery failed for good")
    assert parse_alert_message(poisoned["body"]).ref.alert_id.startswith(f"run~{failed_tenant}~")
    # Nothing is retried in a loop: the scan queue and the alert queue are empty.
    assert env.functions.receive(ALERT_QUEUE) == [] and env.functions.receive(SCAN_QUEUE) == []

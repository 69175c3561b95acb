"""Teams and webhook failures while the alert worker delivers a digest (issue 17): each either ends
with the digest delivered to the failing channel — once, or again only after a timeout once the
receiver had taken it (the webhook's repeat carrying the same `Idempotency-Key`) — or fails
visibly: the run's `alert.status` failed naming the channel, the message poisoned with its
reason. Whatever one channel does, the email goes out exactly once and the other channel gets
its copy once: each destination is its own alert row (partnerguard/alerts/routing.py).

Each case is a tenant's first scan on tables of its own, through the Functions entry points as
the host drives them (tests/faults_harness.py), with the email through the ACS Email fake and
both channels configured, and a fault scripted into one channel's stand-in
(testbed/teams_fake.py, testbed/webhook_fake.py). Throttling and outages are waited out by
re-queueing the alert message with a delay, as for ACS.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

import pytest

from notifiers.alert_transport import AlertTransport
from notifiers.teams_transport import TeamsTransport
from notifiers.webhook_transport import WebhookTransport
from partnerguard.alerts.routing import Destination
from partnerguard.credentials import combined_ca_file
from partnerguard.queues.names import ALERT_POISON_QUEUE
from partnerguard.settings import Settings
from testbed.azurite import AzuriteProcess
from testbed.simulator import TenantSimulator, generate_tenant
from testbed.teams_fake import TeamsWorkflowFake
from testbed.webhook_fake import SignedWebhookFake
from testbed.webhook_receiver import WebhookReceiverFake
from tests.alerts_harness import AlertsEnv, alerts_env
from tests.faults_harness import newest_run, quick_graph, report_of, tick
from tests.reliability import record

pytestmark = [pytest.mark.azurite, pytest.mark.simulator]

TENANT = "c4c4c4c4-0000-4000-8000-000000000004"
# The host hands a deferred message over once its visibility delay (Retry-After) is over.
DEFERRED_WAIT_S = 10.0
# How long the channels wait for an answer here (production: 30 s): a hung receiver times out.
READ_TIMEOUT_S = 1.0

ChannelName = Literal["teams", "webhook"]
Script = Callable[[WebhookReceiverFake], None]


@dataclass(frozen=True)
class ChannelFault:
    case: str
    channel: ChannelName
    script: Script
    delivered: bool  # expected: the channel gets the digest (else the alert fails visibly)
    repeats: int = 0  # calls the receiver took again: only after a timeout once it had taken one


def fail(status: int, times: int = 1, retry_after: int | None = None, *, after_accept: bool = False) -> Script:
    return lambda receiver: receiver.fail_next(status, times, retry_after, after_accept=after_accept)


def hang_after_taking(receiver: WebhookReceiverFake) -> None:
    receiver.hang_next(1, after_accept=True)


def reset_before_taking(receiver: WebhookReceiverFake) -> None:
    receiver.reset_next(1, after_accept=False)


FAULTS = [
    ChannelFault("Teams 429 with Retry-After: 1, twice", "teams", fail(429, 2, 1), delivered=True),
    ChannelFault("Teams 429 without Retry-After, once", "teams", fail(429), delivered=True),
    ChannelFault("Teams 503 on the post, once (nothing taken)", "teams", fail(503), delivered=True),
    ChannelFault("Teams connection reset before the card was taken", "teams", reset_before_taking, delivered=True),
    ChannelFault(
        "Teams timeout after the card was taken (at least once: the card repeats)",
        "teams",
        hang_after_taking,
        delivered=True,
        repeats=1,
    ),
    ChannelFault("Teams 404: the workflow was deleted", "teams", fail(404), delivered=False),
    ChannelFault("Webhook 429 with Retry-After: 1, twice", "webhook", fail(429, 2, 1), delivered=True),
    ChannelFault("Webhook 500 on the call, once (nothing taken)", "webhook", fail(500), delivered=True),
    ChannelFault(
        "Webhook timeout after the call was taken (the repeat has the same Idempotency-Key)",
        "webhook",
        hang_after_taking,
        delivered=True,
        repeats=1,
    ),
    ChannelFault(
        "Webhook 504 from a gateway after the call was taken (repeat with the same Idempotency-Key)",
        "webhook",
        fail(504, after_accept=True),
        delivered=True,
        repeats=1,
    ),
    ChannelFault("Webhook 410: the receiver is gone", "webhook", fail(410), delivered=False),
]


@dataclass
class Channels:
    teams: TeamsWorkflowFake
    webhook: SignedWebhookFake

    def of(self, channel: ChannelName) -> WebhookReceiverFake:
        return self.teams if channel == "teams" else self.webhook

    def taken(self, channel: ChannelName) -> int:
        """Calls the receiver took (a repeat counts again)."""
        return len(self.teams.posts) if channel == "teams" else len(self.webhook.deliveries)


@pytest.fixture(scope="module")
def sim() -> Iterator[TenantSimulator]:
    tenant = generate_tenant(TENANT, 12, seed=41, role="partner", display_name="Wide World Importers", incapable=2)
    with quick_graph(), TenantSimulator([tenant], enforce_limits=False) as simulator:
        yield simulator


@pytest.fixture
def channels() -> Iterator[Channels]:
    with TeamsWorkflowFake() as teams, SignedWebhookFake() as webhook:
        yield Channels(teams, webhook)
        teams.release_hangs()
        webhook.release_hangs()


def quick_channel(settings: Settings, destination: Destination) -> AlertTransport:
    """`build_channel` (partnerguard/alerts/transport_from_settings.py) with a short read timeout."""
    assert destination.url is not None
    verify = combined_ca_file(settings.ca_bundle)
    if destination.channel == "teams":
        return TeamsTransport(destination.url, verify=verify, read_timeout=READ_TIMEOUT_S)
    assert settings.alert_webhook_secret is not None
    return WebhookTransport(destination.url, settings.alert_webhook_secret, verify=verify, read_timeout=READ_TIMEOUT_S)


@pytest.fixture
def env(
    azurite: AzuriteProcess, table_prefix: str, sim: TenantSimulator, channels: Channels, tmp_path: Path
) -> Iterator[AlertsEnv]:
    extra = {
        "ALERT_TEAMS_WEBHOOK_URL": channels.teams.url,
        "ALERT_WEBHOOK_URL": channels.webhook.url,
        "ALERT_WEBHOOK_SECRET": channels.webhook.secret,
    }
    cas = (channels.teams.ca_bundle, channels.webhook.ca_bundle)
    for alerts in alerts_env(azurite.connection_string, table_prefix, sim, tmp_path, extra, cas):
        alerts.services.channels = partial(quick_channel, alerts.services.settings)
        yield alerts


def injected(receiver: WebhookReceiverFake) -> int:
    """Calls the stand-in answered with a fault (an error status, a hang, a reset)."""
    return sum(1 for request in receiver.requests if request.status == 0 or request.status >= 400)


@pytest.mark.parametrize("fault", FAULTS, ids=[fault.case for fault in FAULTS])
def test_a_channel_fault_loses_nothing_and_repeats_only_after_a_timeout(
    fault: ChannelFault, env: AlertsEnv, channels: Channels, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    failing = channels.of(fault.channel)
    other: ChannelName = "webhook" if fault.channel == "teams" else "teams"
    fault.script(failing)

    outcome_tick = tick(env, deferred_wait_s=DEFERRED_WAIT_S)

    run = newest_run(env, TENANT)
    report = report_of(env, run)
    assert report is not None and report.status == "succeeded"
    news = {(check.id, f.finding.subject_id) for check in report.checks for f in check.findings if f.state == "new"}
    assert news, "the first scan has findings to tell"
    lost = news - set(env.services.store.active_findings(TENANT))
    taken = channels.taken(fault.channel)
    repeats = max(0, taken - 1)
    keys = channels.webhook.keys()
    poisoned = env.functions.json_messages(ALERT_POISON_QUEUE)
    reasons = [str(message.get("reason", "")) for message in poisoned]
    if fault.delivered:
        again = f", {repeats} repeat{'s' if repeats != 1 else ''} after the timeout" if repeats else ""
        outcome = f"delivered to {fault.channel} after {outcome_tick.alerts.deliveries} deliveries{again}; email once"
    else:
        outcome = f"{fault.channel} alert failed on the run, message poisoned; email and {other} once"
    record("faults", fault.case, outcome, tried=injected(failing), findings_lost=len(lost), duplicate_emails=0)

    assert not lost, sorted(lost)
    # The email and the other channel are untouched by this channel's trouble: once each.
    digests = [email for email in env.acs.sent if TENANT in (email.plain_text or "")]
    assert len(digests) == 1 == len(env.acs.sent)
    assert channels.taken(other) == 1
    if fault.delivered:
        assert taken == 1 + fault.repeats and repeats == fault.repeats, (taken, outcome)
        assert not poisoned and run.alert_status == "sent"
        if fault.channel == "webhook":
            # A repeat is the same call again: same key, so its receiver can drop it.
            assert len(keys) == 1 and set(keys.values()) == {1 + fault.repeats}
            assert [delivery.repeat for delivery in channels.webhook.deliveries] == [False] + [True] * repeats
    else:
        assert taken == 0
        # Visible: the run says which channel failed and why; the message poisoned with its reason.
        assert run.alert_status == "failed" and run.alert_error
        assert run.alert_error.startswith("Teams:" if fault.channel == "teams" else "the webhook:")
        (reason,) = reasons
        assert str(410 if fault.channel == "webhook" else 404) in reason
        assert any(reason in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)

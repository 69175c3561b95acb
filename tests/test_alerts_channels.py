"""Delivery to Teams and webhooks when the settings change under owed alerts (issue 17).

A channel's alerts live in a partition named by the channel and whose setting names it, never by
its URL (partnerguard/alerts/routing.py): a Workflows URL re-generated while an alert is owed
still delivers it, to the new URL; a channel removed from the settings fails its owed alerts
visibly instead of retrying them for two days. And a webhook call that may have been taken is
repeated under the same idempotency key, whatever happens in between (a 429 included). Each
test owes health alerts through the policy,
on Azurite, and delivers them through the production transports to the stand-ins.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from partnerguard.alerts.delivery import AlertDelivery, AlertFailed, AlertThrottled, AlertUnavailable
from partnerguard.alerts.policy import AlertRef
from partnerguard.alerts.transport_from_settings import build_channel
from partnerguard.settings import Settings
from partnerguard.storage import ScanStore
from partnerguard.storage.alert_outbox import ALERT_FAILED, ALERT_SENT, AlertStore
from testbed.azurite import AzuriteProcess
from testbed.loopback_https import combined_ca
from testbed.teams_fake import TeamsWorkflowFake
from testbed.webhook_fake import SignedWebhookFake
from tests.delivery_harness import START, ManualClock, alert_stores, owe

pytestmark = [pytest.mark.azurite]


@pytest.fixture
def stores(azurite: AzuriteProcess, table_prefix: str) -> Iterator[tuple[ScanStore, AlertStore]]:
    yield from alert_stores(azurite.connection_string, table_prefix)


@pytest.fixture
def teams() -> Iterator[TeamsWorkflowFake]:
    with TeamsWorkflowFake() as fake:
        yield fake


def teams_settings(url: str | None, ca_bundle: Path) -> Settings:
    environment = {"PARTNERGUARD_STORAGE": "UseDevelopmentStorage=true", "PARTNERGUARD_CA_BUNDLE": str(ca_bundle)}
    if url is not None:
        environment["ALERT_TEAMS_WEBHOOK_URL"] = url
    return Settings.from_env(environment)


def delivery_for(settings: Settings, stores: tuple[ScanStore, AlertStore]) -> AlertDelivery:
    store, alerts = stores
    return AlertDelivery(settings, store, alerts, None, ManualClock(), partial(build_channel, settings))


def test_an_alert_owed_to_a_rotated_teams_url_goes_to_the_new_url(
    stores: tuple[ScanStore, AlertStore], teams: TeamsWorkflowFake, tmp_path: Path
) -> None:
    with TeamsWorkflowFake() as rotated:
        ca = combined_ca(tmp_path / "cas.pem", teams.ca_bundle, rotated.ca_bundle)
        before = teams_settings(teams.url, ca)
        (owed,) = owe(before, stores[1], 1, START)
        assert owed.partition.startswith("t-") and owed.recipients == ("teams",)

        after = teams_settings(rotated.url, ca)
        delivered = delivery_for(after, stores).deliver(AlertRef.of(owed))

        assert (delivered.action, delivered.channel, delivered.target) == ("sent", "teams", "teams")
        assert len(rotated.posts) == 1 and teams.posts == []
        stored = stores[1].get(owed.partition, owed.alert_id)
        assert stored is not None and stored.state == ALERT_SENT
        # Neither the alert nor its message row holds the URL (a secret).
        (message,) = stores[1].emails(owed.partition)
        assert rotated.url not in repr(stored) + repr(message) and teams.url not in repr(stored) + repr(message)


def test_an_alert_owed_to_a_removed_channel_fails_visibly(
    stores: tuple[ScanStore, AlertStore], teams: TeamsWorkflowFake, tmp_path: Path
) -> None:
    ca = combined_ca(tmp_path / "cas.pem", teams.ca_bundle)
    (owed,) = owe(teams_settings(teams.url, ca), stores[1], 1, START)

    delivery = delivery_for(teams_settings(None, ca), stores)
    with pytest.raises(AlertFailed, match="no longer configured"):
        delivery.deliver(AlertRef.of(owed))

    stored = stores[1].get(owed.partition, owed.alert_id)
    assert stored is not None and stored.state == ALERT_FAILED and "no longer configured" in (stored.error or "")
    assert teams.posts == []
    # Asked again (a redelivered message), it is done: no second failure, nothing sent.
    assert delivery.deliver(AlertRef.of(owed)).action == "already"


def test_a_webhook_retry_keeps_its_idempotency_key_through_a_429(
    stores: tuple[ScanStore, AlertStore], tmp_path: Path
) -> None:
    with SignedWebhookFake() as webhook:
        settings = Settings.from_env(
            {
                "PARTNERGUARD_STORAGE": "UseDevelopmentStorage=true",
                "PARTNERGUARD_CA_BUNDLE": str(combined_ca(tmp_path / "cas.pem", webhook.ca_bundle)),
                "ALERT_WEBHOOK_URL": webhook.url,
                "ALERT_WEBHOOK_SECRET": webhook.secret,
            }
        )
        (owed,) = owe(settings, stores[1], 1, START)
        delivery = delivery_for(settings, stores)
        # Taken, then answered 500 (so in doubt); then throttled; then taken again.
        webhook.fail_next(500, after_accept=True)
        webhook.fail_next(429, retry_after=1)
        with pytest.raises(AlertUnavailable):
            delivery.deliver(AlertRef.of(owed))
        with pytest.raises(AlertThrottled):
            delivery.deliver(AlertRef.of(owed))
        assert delivery.deliver(AlertRef.of(owed)).action == "sent"

        # Two calls taken, one key: the receiver can tell the second is the first again.
        assert list(webhook.keys().values()) == [2]
        assert [d.repeat for d in webhook.deliveries] == [False, True]

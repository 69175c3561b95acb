"""Azurite stopped and restarted under the Functions app (issue 8): a scan cut off mid-way, and
an alert delivery cut off, finish on the host's next delivery once storage is back — the
findings of a clean scan, the digest sent exactly once.

The module runs an Azurite of its own, on fixed ports with a fixed data directory, so that it can
be stopped and started again with its data (the session's Azurite is never stopped).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from partnerguard.model import TenantSnapshot
from partnerguard.pipeline import Scanner, graph_snapshot
from partnerguard.settings import Settings
from partnerguard.storage import ScanStore
from partnerguard.storage.records import RUN_SUCCEEDED
from testbed.azurite import AzuriteProcess
from testbed.simulator import TenantSimulator
from tests.alerts_harness import AlertsEnv, alerts_env
from tests.faults_harness import (
    CONTOSO,
    Finding,
    active_findings,
    compared,
    contoso,
    newest_run,
    quick_graph,
    report_of,
    reported,
    store_of,
    tick,
)
from tests.reliability import record

pytestmark = [pytest.mark.azurite, pytest.mark.simulator]


class RestartableAzurite:
    """An Azurite that keeps its ports and its data across a stop and a start."""

    def __init__(self, location: Path) -> None:
        self.location = location
        self.process = AzuriteProcess(location).start()
        self.ports = dict(self.process.ports)
        self.connection_string = self.process.connection_string
        self.outages = 0

    def stop(self) -> None:
        self.process.stop()
        self.outages += 1

    def start(self) -> None:
        self.process = AzuriteProcess(
            self.location,
            blob_port=self.ports["blob"],
            queue_port=self.ports["queue"],
            table_port=self.ports["table"],
        ).start()

    @property
    def running(self) -> bool:
        return self.process.pid is not None

    def close(self) -> None:
        self.process.stop()


@dataclass
class App:
    env: AlertsEnv
    sim: TenantSimulator
    storage: RestartableAzurite
    baseline: set[Finding]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    storage = RestartableAzurite(tmp_path_factory.mktemp("faults-azurite"))
    try:
        with quick_graph(), TenantSimulator([contoso()], enforce_limits=False) as sim:
            baseline = clean_scan(sim, storage.connection_string)
            for env in alerts_env(storage.connection_string, "faultsstorage", sim, tmp_path_factory.mktemp("acs")):
                yield App(env, sim, storage, baseline)
                if not storage.running:  # a failed test left it stopped; the cleanup needs it
                    storage.start()
    finally:
        storage.close()


def clean_scan(sim: TenantSimulator, connection_string: str) -> set[Finding]:
    """The findings of an undisturbed scan of the tenant (tables of their own)."""
    settings = Settings.from_env({**sim.environment(), "PARTNERGUARD_STORAGE": connection_string})
    store = ScanStore.from_settings(settings.storage, prefix="faultsclean")
    store.ensure_tables()
    try:
        result = asyncio.run(Scanner(settings, store).scan(CONTOSO))
    finally:
        store.close()
    assert result.report is not None and result.report.status == "succeeded"
    return reported(result.report)


class StopAzuriteAfterGraph:
    """The production snapshot source, but Azurite stops once Graph is read and before anything
    of the scan is stored — on the first delivery only."""

    def __init__(self, env: AlertsEnv, storage: RestartableAzurite) -> None:
        self.env = env
        self.storage = storage
        self.calls = 0

    async def __call__(self, settings: Settings, tenant_id: str, now: datetime) -> TenantSnapshot:
        self.calls += 1
        snapshot = await graph_snapshot(settings, tenant_id, now, store=self.env.services.store)
        if self.calls == 1:
            await asyncio.to_thread(self.storage.stop)
        return snapshot


def test_azurite_stopped_mid_scan_then_restarted(app: App, caplog: pytest.LogCaptureFixture) -> None:
    env, storage = app.env, app.storage
    caplog.set_level(logging.WARNING)
    outages = storage.outages
    env.services.snapshot_source = StopAzuriteAfterGraph(env, storage)
    try:
        # The tenant's first scan: it owes one digest, which must go out once.
        faulted = tick(env, between_scan_deliveries=lambda _: storage.start())
    finally:
        env.services.snapshot_source = None

    run = newest_run(env)
    report = report_of(env, run)
    found = reported(report) if report is not None else set()
    lost = (app.baseline - found) | (app.baseline - active_findings(env))
    digests = [email for email in faulted.emails if CONTOSO in (email.plain_text or "")]
    duplicates = max(0, len(digests) - 1) + (len(faulted.emails) - len(digests))
    outcome = (
        f"{faulted.scans.raised} delivery raised (storage unreachable); the next finished the same run, "
        f"{run.status}: {compared(found, app.baseline)}, {len(digests)} digest"
    )
    record(
        "faults",
        "Azurite stopped mid-scan (Graph read, nothing stored), restarted before the next delivery",
        outcome,
        tried=storage.outages - outages,
        findings_lost=len(lost),
        duplicate_emails=duplicates,
    )

    assert faulted.scans.deliveries == 2 and faulted.scans.raised == 1 and faulted.scans.poisoned == 0
    assert run.status == RUN_SUCCEEDED and report is not None
    assert len(store_of(env).list_runs(CONTOSO)) == 1, "the redelivery repeated the run, not a second one"
    assert not lost, sorted(lost)
    assert len(digests) == 1 and duplicates == 0
    assert any("the host retries it" in r.getMessage() for r in caplog.records)


def test_azurite_stopped_as_the_alert_worker_takes_its_message_then_restarted(app: App) -> None:
    env, sim, storage = app.env, app.sim, app.storage
    tick(env)  # the tenant scanned and told (a no-op after the previous test)
    assert active_findings(env) == app.baseline
    # News to tell: a user who had MFA loses every method (the report says not capable).
    user_id = next(
        row["id"]
        for row in sim.tenant(CONTOSO).user_registration_details
        if row.get("isMfaCapable") and ("mfa.registration", row["id"]) not in app.baseline
    )
    for row in sim.tenant(CONTOSO).user_registration_details:
        if row["id"] == user_id:
            row["isMfaCapable"] = False
            row["methodsRegistered"] = []
    outages = storage.outages

    # Storage goes once the alert worker has its message, and is back for the host's redelivery.
    faulted = tick(env, alerts_received=storage.stop, between_alert_deliveries=lambda _: storage.start())

    news = ("mfa.registration", user_id)
    # The digest names users (never their object ids): the one news is the one user listed.
    name = next(user["displayName"] for user in sim.tenant(CONTOSO).users if user["id"] == user_id)
    digests = [email for email in faulted.emails if name in (email.plain_text or "")]
    run = newest_run(env)
    lost = (app.baseline | {news}) - active_findings(env)
    if not digests:
        lost.add(news)  # the new finding never reached the admins
    duplicates = max(0, len(digests) - 1) + (len(faulted.emails) - len(digests))
    record(
        "faults",
        "Azurite stopped as the alert worker took its message, restarted before the redelivery",
        f"{faulted.alerts.raised} alert delivery raised, the redelivery sent {len(digests)} digest; "
        f"alert {run.alert_status}",
        tried=storage.outages - outages,
        findings_lost=len(lost),
        duplicate_emails=duplicates,
    )

    assert faulted.alerts.raised == 1 and faulted.alerts.poisoned == 0
    assert not lost and duplicates == 0
    assert run.alert_status == "sent"

"""Every alert the bundled scenarios give, rendered for Teams and for the webhook, is accepted
by what validates it: Microsoft's Adaptive Card schema (through the Teams stand-in's validator)
and docs/webhook-payload.schema.json, within each channel's size budget.

The digests come from real scans (the production pipeline against the simulator, Table Storage
on Azurite); the reminders from the critical findings those scans left open in storage; the
resolved findings from the same rows as a later run would resolve them; the health alert from
each tenant going stale and losing consent."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from azure.data.tables import TableServiceClient

from notifiers.alert_content import AlertContent, AlertPart
from notifiers.digest_email import Digest
from notifiers.health_email import HealthAlert, HealthProblem
from notifiers.reminder_email import Reminder
from notifiers.teams_card import PAYLOAD_BUDGET as CARD_BUDGET
from notifiers.teams_card import render_teams_message
from notifiers.teams_card import serialize as serialize_card
from notifiers.webhook_payload import PAYLOAD_BUDGET as WEBHOOK_BUDGET
from notifiers.webhook_payload import render_webhook_payload
from notifiers.webhook_payload import serialize as serialize_document
from partnerguard.model import FindingState, Report
from partnerguard.pipeline import Scanner
from partnerguard.settings import Settings
from partnerguard.storage import ScanStore
from partnerguard.storage.records import FindingRecord
from testbed.azurite import AzuriteProcess
from testbed.simulator import TenantSimulator
from testbed.teams_fake import envelope_problems
from testbed.webhook_fake import payload_problems
from tests.channel_builders import OPERATION_ID
from tests.email_checks import PUBLIC_URL
from tests.graph_sim import pace_to

pytestmark = [pytest.mark.simulator, pytest.mark.azurite]


@dataclasses.dataclass
class Scanned:
    report: Report
    active: list[FindingRecord]


@pytest.fixture(scope="module")
def scanned(simulator: TenantSimulator, azurite_module_store: ScanStore) -> Iterator[list[Scanned]]:
    settings = Settings.from_env(simulator.environment())
    results = []
    for tenant in simulator.tenants:
        result = asyncio.run(Scanner(settings, azurite_module_store).scan(tenant.tenant_id))
        assert result.report is not None
        results.append(Scanned(result.report, list(azurite_module_store.active_findings(tenant.tenant_id).values())))
    yield results


@pytest.fixture(scope="module")
def azurite_module_store(azurite: AzuriteProcess) -> Iterator[ScanStore]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    store = ScanStore(service, prefix="c" + uuid.uuid4().hex[:12])
    store.ensure_tables()
    yield store
    for table in (store.runs, store.findings, store.run_findings):
        service.delete_table(table.table_name)
    store.close()


@pytest.fixture(scope="module", autouse=True)
def paced(simulator: TenantSimulator) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        pace_to(simulator, monkeypatch)
        yield


def parts(scans: list[Scanned]) -> list[AlertPart]:
    """Every alert the scans give: each tenant's digest (all new, then with resolved findings),
    its reminder when it has open critical findings, and one health alert naming every tenant."""
    found: list[AlertPart] = []
    for scan in scans:
        report = scan.report
        still_open = Counter(r.check_id for r in scan.active if r.state == FindingState.OPEN)
        found.append(Digest.from_run(report, [], dict(still_open)))
        later = report.finished + timedelta(hours=6)
        resolved = [
            dataclasses.replace(
                record,
                state=FindingState.RESOLVED,
                resolved_at=later,
                resolution="no longer observed" if record.check_id.endswith("sign-ins") else "fixed",
            )
            for record in scan.active
        ]
        found.append(Digest.from_run(report, resolved, {}))
        critical = tuple(
            r for r in scan.active if r.severity == "critical" and r.state in (FindingState.NEW, FindingState.OPEN)
        )
        if critical:
            found.append(Reminder(report.tenant, critical, later, 24))
    as_of = max(scan.report.finished for scan in scans) + timedelta(hours=1)
    problems = [
        HealthProblem(
            kind, scan.report.tenant.id, scan.report.tenant.name, "no successful scan", as_of - timedelta(days=2)
        )
        for scan in scans
        for kind in ("stale", "consent")
    ]
    problems.append(HealthProblem("poison", None, None, "2 messages in partnerguard-alerts-poison", None))
    found.append(HealthAlert(tuple(problems), as_of))
    return found


def test_every_bundled_alert_renders_a_valid_card_and_a_valid_document(scanned: list[Scanned]) -> None:
    alerts = parts(scanned)
    kinds = Counter(type(part).__name__ for part in alerts)
    assert kinds["Digest"] == 2 * len(scanned) > 2 and kinds["Reminder"] >= 1 and kinds["HealthAlert"] == 1
    assert sum(len(part.new) for part in alerts if isinstance(part, Digest)) > 20
    for public_url in (PUBLIC_URL, None):
        for part in alerts:
            content = AlertContent((part,), part.as_of if not isinstance(part, Digest) else part.finished, public_url)
            message = render_teams_message(content)
            assert envelope_problems(message) == [], type(part).__name__
            assert len(serialize_card(message)) <= CARD_BUDGET
            document = render_webhook_payload(OPERATION_ID, content)
            assert payload_problems(document) == [], type(part).__name__
            assert len(serialize_document(document)) <= WEBHOOK_BUDGET

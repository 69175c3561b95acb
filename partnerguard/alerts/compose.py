"""What a message says: alert rows turned into one channel-neutral `AlertContent`, read from storage.

An alert row holds only what storage does not keep elsewhere (see `policy`), so the message is
rendered when it is sent, from the run's stored report and the finding lifecycle:

- a run alert becomes the run's `Digest` (`notifiers.digest_email`): its new findings, the findings
  it resolved (fixed, or no longer observed), and how many are still open;
- a reminder becomes a `Reminder` (`notifiers.reminder_email`) of the open critical findings it
  names that are still open and critical;
- health alerts become one `HealthAlert` (`notifiers.health_email`) listing every problem, first.

Each channel renders the content its own way (an email, grouped when several alerts share one;
a Teams card; a webhook call), so all say the same. An alert with nothing left to say (a
reminder whose findings were all resolved meanwhile, a run whose report was purged) is
*dropped*: done, without a message.

Rendering is deterministic for given stored data, and the delivery never depends on it being
byte-identical across attempts: exactly-once rests on the operation id, not the content.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from notifiers.alert_content import AlertContent, AlertPart
from notifiers.digest_email import Digest
from notifiers.health_email import HealthAlert, HealthProblem
from notifiers.reminder_email import Reminder
from partnerguard.alerts.policy import problem_from_document
from partnerguard.model import FindingState, TenantInfo
from partnerguard.settings import Settings
from partnerguard.storage.alert_outbox import AlertRecord
from partnerguard.storage.store import ScanStore


@dataclass
class Composed:
    """One message for some alerts, and what sending it means for storage."""

    content: AlertContent | None
    included: list[str] = field(default_factory=list)  # alert ids the message carries
    dropped: list[str] = field(default_factory=list)  # alert ids with nothing left to say
    # tenant id -> (check id, subject id) of the findings the message tells about (last_notified).
    notified: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


def _tenant(store: ScanStore, tenant_id: str) -> TenantInfo:
    for run in store.list_runs(tenant_id, top=1):
        return TenantInfo(tenant_id, run.tenant_name or tenant_id, run.tenant_role or "customer")
    return TenantInfo(tenant_id, tenant_id, "customer")


def _run_digest(store: ScanStore, alert: AlertRecord) -> tuple[Digest, list[tuple[str, str]]] | None:
    assert alert.tenant_id is not None and alert.run_id is not None
    report = store.get_report(alert.tenant_id, alert.run_id)
    if report is None:
        return None
    resolved = store.resolved_findings(alert.tenant_id, alert.run_id)
    still_open: dict[str, int] = {}
    for record in store.active_findings(alert.tenant_id).values():
        if record.state == FindingState.OPEN:
            still_open[record.check_id] = still_open.get(record.check_id, 0) + 1
    digest = Digest.from_run(report, resolved, still_open)
    if not digest.has_changes:
        return None
    notified = [(f.check_id, f.subject_id) for f in digest.new]
    return digest, notified


def _reminder(
    settings: Settings, store: ScanStore, alert: AlertRecord, now: datetime
) -> tuple[Reminder, list[tuple[str, str]]] | None:
    assert alert.tenant_id is not None
    wanted = {(str(check), str(subject)) for check, subject in alert.payload.get("findings", [])}
    active = store.active_findings(alert.tenant_id)
    findings = [
        active[key]
        for key in sorted(wanted)
        if key in active
        and active[key].state in (FindingState.NEW, FindingState.OPEN)
        and active[key].severity == "critical"
    ]
    if not findings:
        return None
    interval = int(alert.payload.get("interval_hours") or settings.alert_reminder_hours or 0)
    reminder = Reminder(_tenant(store, alert.tenant_id), tuple(findings), now, interval)
    return reminder, [(f.check_id, f.subject_id) for f in findings]


def compose(settings: Settings, store: ScanStore, alerts: Sequence[AlertRecord], now: datetime) -> Composed:
    """What the message carrying `alerts` (in their order) says, or none when nothing is left."""
    composed = Composed(content=None)
    parts: list[AlertPart] = []
    problems: list[HealthProblem] = []
    health_ids: list[str] = []
    for alert in alerts:
        if alert.kind == "health":
            found = [problem_from_document(p) for p in alert.payload.get("problems", [])]
            if found:
                problems.extend(found)
                health_ids.append(alert.alert_id)
            else:
                composed.dropped.append(alert.alert_id)
            continue
        rendered = _run_digest(store, alert) if alert.kind == "run" else _reminder(settings, store, alert, now)
        if rendered is None:
            composed.dropped.append(alert.alert_id)
            continue
        part, keys = rendered
        parts.append(part)
        composed.included.append(alert.alert_id)
        if alert.tenant_id is not None:
            composed.notified.setdefault(alert.tenant_id, []).extend(keys)
    if problems:
        # The monitor's own problems first: they say the other news may be incomplete.
        parts.insert(0, HealthAlert(tuple(problems), now))
        composed.included[:0] = health_ids
    if parts:
        composed.content = AlertContent(tuple(parts), now, settings.public_url)
    return composed

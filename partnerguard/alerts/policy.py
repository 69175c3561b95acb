"""What news is owed, and to whom: the alert policy (issue 5 §2, §5).

Each function decides whether something deserves an email and, if so, records an alert row in
the outbox (`partnerguard.storage.alert_outbox`) under a **deterministic id**, so the same news is
owed once however often it is noticed:

- `record_run_alert`: a run that found something new or resolved something (`run~<tenant>~<run>`).
  A run with neither owes nothing: no email when nothing changed;
- `record_reminder`: with `ALERT_REMINDER_HOURS` > 0, open critical findings that no email has
  mentioned for that long (`reminder~<tenant>~<slot>`, one slot per interval);
- `record_health`: the monitor's own problems (`health~<kind>~<subject>~<incident>`): a tenant
  without a successful run for twice the schedule (incident = its last successful run), a poison
  queue that is not empty (incident = its oldest message), consent lost (incident = since when).

Each piece of news is recorded once per destination (`partnerguard.alerts.routing`: the tenant's
email recipients, Teams and webhook), under the same id in each destination's partition; health
problems of no tenant (poison queues) go to the default destinations. With no destination,
nothing is recorded.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from notifiers.health_email import HealthProblem
from partnerguard.alerts.routing import destinations_for
from partnerguard.model import FindingState, Severity
from partnerguard.settings import Settings
from partnerguard.storage.alert_outbox import (
    ALERT_PENDING,
    MAX_PAYLOAD_UNITS,
    AlertRecord,
    AlertStore,
    alert_id_health,
    alert_id_reminder,
    alert_id_run,
)
from partnerguard.storage.limits import to_json
from partnerguard.storage.records import ALERT_NONE
from partnerguard.storage.store import ScanStore

log = logging.getLogger(__name__)

# A reminder lists at most this many findings (the email links to the rest).
MAX_REMINDER_FINDINGS = 200


@dataclass(frozen=True)
class AlertRef:
    """Where an alert is: its destination's partition and its id (what an alert message carries)."""

    partition: str
    alert_id: str

    @classmethod
    def of(cls, record: AlertRecord) -> AlertRef:
        return cls(record.partition, record.alert_id)


def run_changed(store: ScanStore, tenant_id: str, run_id: str) -> bool:
    """Whether the run found a new finding or resolved one (the only news a run digest carries)."""
    report = store.get_report(tenant_id, run_id)
    if report is None:
        return False
    if any(item.state == FindingState.NEW for check in report.checks for item in check.findings):
        return True
    return store.resolved_in_run(tenant_id, run_id, limit=1) > 0


def record_run_alert(
    settings: Settings, store: ScanStore, alerts: AlertStore, tenant_id: str, run_id: str, now: datetime
) -> list[AlertRecord]:
    """Owe the run's digest to each destination when it changed something; the run's alert
    status says `pending`.

    The alert rows go first, then the run's status: a crash between them leaves the alerts owed
    (and queued again by whoever notices), and recording them again finds the same rows."""
    destinations = destinations_for(settings, tenant_id)
    if not destinations or not run_changed(store, tenant_id, run_id):
        return []
    records = [
        alerts.add(
            "run",
            alert_id_run(tenant_id, run_id),
            destination.stored_recipients,
            now,
            tenant_id=tenant_id,
            run_id=run_id,
            partition=destination.partition,
        )[0]
        for destination in destinations
    ]
    if any(record.state == ALERT_PENDING for record in records):
        run = store.get_run(tenant_id, run_id)
        if run is not None and run.alert_status == ALERT_NONE:
            store.set_alert_status(tenant_id, run_id, "pending")
    return records


def reminder_slot(now: datetime, hours: int) -> str:
    """The interval `now` falls in, as a key: one reminder per tenant per slot at most."""
    seconds = hours * 3600
    start = datetime.fromtimestamp(int(now.timestamp()) // seconds * seconds, UTC)
    return start.strftime("%Y%m%dT%H")


def record_reminder(
    settings: Settings, store: ScanStore, alerts: AlertStore, tenant_id: str, now: datetime
) -> list[AlertRecord]:
    """Owe a reminder of the tenant's open critical findings no email mentioned for the interval."""
    hours = settings.alert_reminder_hours
    destinations = destinations_for(settings, tenant_id)
    if hours <= 0 or not destinations:
        return []
    due_before = now - timedelta(hours=hours)
    overdue = [
        record
        for record in store.active_findings(tenant_id).values()
        if record.severity == Severity.CRITICAL
        and record.state in (FindingState.NEW, FindingState.OPEN)
        and (record.last_notified or record.first_seen or now) <= due_before
    ]
    if not overdue:
        return []
    overdue.sort(key=lambda r: (r.first_seen or now, r.check_id, r.subject_id))
    keys = _within_budget([[r.check_id, r.subject_id] for r in overdue[:MAX_REMINDER_FINDINGS]])
    records: list[AlertRecord] = []
    for destination in destinations:
        record, created = alerts.add(
            "reminder",
            alert_id_reminder(tenant_id, reminder_slot(now, hours)),
            destination.stored_recipients,
            now,
            tenant_id=tenant_id,
            payload={"findings": keys, "interval_hours": hours},
            partition=destination.partition,
        )
        if created:
            log.info(
                "tenant %s: a reminder of %d open critical findings is owed (%s)",
                tenant_id,
                len(overdue),
                destination.label,
            )
        records.append(record)
    return records


def _within_budget(keys: list[list[str]]) -> list[list[str]]:
    """The first keys whose JSON fits an alert payload (subject ids may be 4 K characters long);
    the reminder lists those and links to the rest."""
    kept: list[list[str]] = []
    used = 64  # the payload's other fields
    for key in keys:
        size = len(to_json(key)) + 1  # ASCII JSON, as stored: characters are UTF-16 units
        if used + size > MAX_PAYLOAD_UNITS:
            break
        kept.append(key)
        used += size
    return kept


def problem_document(problem: HealthProblem) -> dict[str, object]:
    return {
        "kind": problem.kind,
        "tenant_id": problem.tenant_id,
        "tenant_name": problem.tenant_name,
        "detail": problem.detail,
        "since": problem.since.isoformat() if problem.since else None,
        "consent_url": problem.consent_url,
    }


def problem_from_document(document: dict[str, object]) -> HealthProblem:
    since = document.get("since")
    return HealthProblem(
        kind=str(document["kind"]),  # type: ignore[arg-type]  # written by problem_document
        tenant_id=str(document["tenant_id"]) if document.get("tenant_id") else None,
        tenant_name=str(document["tenant_name"]) if document.get("tenant_name") else None,
        detail=str(document.get("detail") or ""),
        since=datetime.fromisoformat(since) if isinstance(since, str) else None,
        consent_url=str(document["consent_url"]) if document.get("consent_url") else None,
    )


@dataclass(frozen=True)
class HealthIncident:
    """One problem and the key that makes it one incident (see the module docstring)."""

    problem: HealthProblem
    subject: str
    incident: str


def record_health(
    settings: Settings, alerts: AlertStore, incidents: Sequence[HealthIncident], now: datetime
) -> list[AlertRecord]:
    """Owe one alert per incident (once: the incident is in the id); returns those still owed,
    new or not, so a caller queues again one whose message was lost."""
    owed: list[AlertRecord] = []
    for incident in incidents:
        problem = incident.problem
        destinations = destinations_for(settings, problem.tenant_id)
        if not destinations:
            log.warning(
                "monitor problem (%s) and no alert destination (ALERT_RECIPIENTS, Teams or webhook) to tell: %s",
                problem.kind,
                problem.detail,
            )
            continue
        for destination in destinations:
            record, created = alerts.add(
                "health",
                alert_id_health(problem.kind, incident.subject, incident.incident),
                destination.stored_recipients,
                now,
                tenant_id=problem.tenant_id,
                payload={"problems": [problem_document(problem)]},
                partition=destination.partition,
            )
            if created:
                log.info("monitor problem (%s) owed (%s)", problem.kind, destination.label)
            if record.state == ALERT_PENDING:
                owed.append(record)
    return owed


def owed_after_scan(
    settings: Settings, store: ScanStore, alerts: AlertStore, tenant_id: str, run_id: str, now: datetime
) -> list[AlertRecord]:
    """Everything a finished run owes: its digest, and a reminder when one is due. Idempotent."""
    owed = record_run_alert(settings, store, alerts, tenant_id, run_id, now)
    return owed + record_reminder(settings, store, alerts, tenant_id, now)

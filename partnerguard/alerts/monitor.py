"""The monitor watching itself (issue 5 §5): problems that would otherwise stop alerts silently.

A compliance monitor that quietly stops scanning is worse than none. Every timer tick looks for:

- **stale**: a monitored tenant with no successful run for twice the schedule's longest gap
  (`partnerguard.schedule`), measured from its last successful run, or from when PartnerGuard
  first recorded it if it never had one;
- **consent**: a tenant whose sign-in says the app is not consented to (or keeps failing);
- **poison**: a poison queue with messages: scans or alerts PartnerGuard gave up on.

Each becomes a `HealthIncident` whose key names the incident (the last successful run, the
moment consent broke, the oldest poisoned message), so the alert policy owes one email per
incident, not one per tick.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import quote

from notifiers.health_email import HealthProblem
from partnerguard.alerts.policy import HealthIncident
from partnerguard.model import iso
from partnerguard.schedule import longest_gap
from partnerguard.settings import Settings
from partnerguard.storage.tenant_registry import TenantRecord
from partnerguard.text import safe_text

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient

log = logging.getLogger(__name__)


def _incident_time(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%S")


def consent_url(settings: Settings, tenant_id: str) -> str | None:
    """The admin-consent URL of the app in `tenant_id` (Microsoft identity platform docs:
    "Request the permissions from a directory admin"), or None without an app id."""
    if not settings.client_id:
        return None
    authority = settings.authority_host.rstrip("/")
    return f"{authority}/{quote(tenant_id, safe='')}/adminconsent?client_id={quote(settings.client_id, safe='')}"


def stale_incidents(
    settings: Settings, records: Iterable[TenantRecord], monitored: Iterable[str], now: datetime
) -> list[HealthIncident]:
    limit = 2 * longest_gap(settings.scan_schedule)
    by_id = {record.id: record for record in records}
    incidents = []
    for tenant_id in monitored:
        record = by_id.get(tenant_id.lower())
        if record is None:
            continue  # never recorded: its first scan has not even failed yet
        reference = record.last_succeeded_at or record.monitored_since
        if reference is None or now - reference <= limit:
            continue
        if record.last_succeeded_at is not None:
            detail = f"no successful scan since {iso(record.last_succeeded_at)} (run {record.last_succeeded_run_id})"
        else:
            detail = f"no successful scan since monitoring began on {iso(reference)}"
        if record.last_run is not None:
            detail += f"; the last run, {record.last_run.run_id}, {record.last_run.status}"
        problem = HealthProblem(
            kind="stale", tenant_id=record.id, tenant_name=record.name, detail=detail, since=reference
        )
        incidents.append(HealthIncident(problem, record.id, record.last_succeeded_run_id or "never"))
    return incidents


def consent_incidents(
    settings: Settings, records: Iterable[TenantRecord], monitored: Iterable[str]
) -> list[HealthIncident]:
    wanted = {tenant_id.lower() for tenant_id in monitored}
    incidents = []
    for record in records:
        if record.id not in wanted or record.consent == "ok":
            continue
        since = record.consent_since or record.consent_checked_at
        what = "is not consented to" if record.consent == "missing" else "keeps failing to sign in"
        detail = f"PartnerGuard's app {what} in this tenant"
        if record.consent_error:
            detail += f": {safe_text(record.consent_error, 300)}"
        problem = HealthProblem(
            kind="consent",
            tenant_id=record.id,
            tenant_name=record.name,
            detail=detail,
            since=since,
            consent_url=consent_url(settings, record.id),
        )
        incidents.append(
            HealthIncident(problem, record.id, f"{record.consent}-{_incident_time(since) if since else 'unknown'}")
        )
    return incidents


def poison_incidents(queues: Mapping[str, QueueClient]) -> list[HealthIncident]:
    """One incident per non-empty poison queue, keyed by its oldest message."""
    from azure.core.exceptions import ResourceNotFoundError

    incidents = []
    for name, client in queues.items():
        try:
            count = client.get_queue_properties().approximate_message_count or 0
            oldest = next(iter(client.peek_messages(max_messages=1)), None) if count else None
        except ResourceNotFoundError:
            continue  # never created: nothing was ever poisoned
        if oldest is None:
            continue
        inserted = oldest.inserted_on
        problem = HealthProblem(
            kind="poison",
            tenant_id=None,
            tenant_name=None,
            detail=f"{count} message{'s' if count != 1 else ''} in {name}",
            since=inserted,
        )
        incidents.append(HealthIncident(problem, name, str(oldest.id)))
    return incidents

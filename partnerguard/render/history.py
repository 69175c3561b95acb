"""What the HTML, CSV and SARIF formats show beyond the report itself, read from storage.

A `Report` is one run. People reading it also want the tenant's trend (the compliance chart
over the stored runs) and how long each finding has been there (its lifecycle's `first_seen`).
Both come from the scan store, so they are loaded here, once per tenant, and handed to the
renderers as plain values: the renderers themselves never touch storage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Annotations only: the renderers stay importable without the storage SDK.
    from partnerguard.storage import ScanStore
    from partnerguard.storage.records import RunRecord

# Runs the compliance chart shows: a week and more at the default schedule (every 6 hours),
# and one page of the runs partition (`list_runs` reads newest first).
CHART_RUNS = 30
# Lifecycle rows per storage request when reading first/last seen (Table Storage's page maximum).
FINDINGS_PAGE = 1000


@dataclass(frozen=True)
class FindingDates:
    first_seen: datetime | None
    last_seen: datetime | None


@dataclass(frozen=True)
class TenantHistory:
    """The stored context of one tenant's report: runs newest first, and each active finding's
    dates keyed by (check id, subject id)."""

    runs: Sequence[RunRecord] = ()
    finding_dates: Mapping[tuple[str, str], FindingDates] = field(default_factory=dict)

    def dates(self, check_id: str, subject_id: str) -> FindingDates | None:
        return self.finding_dates.get((check_id, subject_id))


NO_HISTORY = TenantHistory()


def load_history(store: ScanStore, tenant_id: str, runs: int = CHART_RUNS) -> TenantHistory:
    """The tenant's newest `runs` runs and the dates of its active findings (new, open, excepted).

    Resolved findings are not read: a report lists only findings its run still saw, and those
    are active unless a later run resolved them (they then show no dates).
    """
    return TenantHistory(
        runs=tuple(store.list_runs(tenant_id, top=runs)), finding_dates=finding_dates(store, tenant_id)
    )


def finding_dates(store: ScanStore, tenant_id: str) -> dict[tuple[str, str], FindingDates]:
    dates: dict[tuple[str, str], FindingDates] = {}
    continuation: str | None = None
    while True:
        page = store.list_findings(tenant_id, state="active", top=FINDINGS_PAGE, continuation=continuation)
        for record in page.findings:
            dates[(record.check_id, record.subject_id)] = FindingDates(record.first_seen, record.last_seen)
        if page.next is None:
            return dates
        continuation = page.next

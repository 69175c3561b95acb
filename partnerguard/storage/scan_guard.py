"""The per-tenant "a scan is already queued or running" guard, one Table Storage entity per tenant.

Why an entity and not a query of the runs table: two producers (the timer and a POST, or two
POSTs on two instances) must not both queue a scan of one tenant. A query-then-write has a race
window; an entity written with ETag conditions does not — `create_entity` fails if another
writer created it first, and an update or delete with `If-Match: <etag>` fails (412) if anyone
changed it since we read it. Exactly one writer wins; the loser reads the winner back.

Why a time-to-live: a worker can die without releasing (process killed, host timeout). Every
guard carries `expires` (the function timeout plus a margin, `HostConfig.guard_ttl`); an expired
guard counts as free and the next acquirer takes it over with an ETag-conditioned replace, so a
crashed worker blocks its tenant for at most one TTL, never for good. The worker renews the TTL
when it starts scanning (`mark_running`), so a scan that waited long in the queue still gets a
whole function timeout.

Table `<prefix>scanguard`: PartitionKey the tenant id, RowKey `scan`; run_id, status (`queued` or
`running`), since, expires.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, TableServiceClient, UpdateMode

from partnerguard.storage.keys import TABLE_PREFIX_RE, is_run_id, tenant_key
from partnerguard.storage.records import RUN_QUEUED, RUN_RUNNING, as_utc

GUARD_ROW = "scan"
GUARD_STATUSES = (RUN_QUEUED, RUN_RUNNING)
# Writers that keep losing the ETag race give up after this many rounds and report the holder.
_MAX_ROUNDS = 5
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class GuardHolder:
    """Who holds a tenant's guard: the run, whether it is queued or running, since when, until when."""

    tenant_id: str
    run_id: str
    status: str
    since: datetime
    expires: datetime

    def live(self, now: datetime) -> bool:
        return now < self.expires


def _pk(tenant_id: str) -> str:
    # Tenant ids are GUIDs; one tenant is one partition whatever case a caller wrote it in.
    return tenant_key(tenant_id.lower())


def guard_table_name(prefix: str) -> str:
    if not TABLE_PREFIX_RE.match(prefix):
        raise ValueError(f"table prefix must be 1-52 letters or digits starting with a letter, got {prefix!r}")
    return f"{prefix}scanguard"


class ScanGuard:
    def __init__(self, service: TableServiceClient, prefix: str = "pg") -> None:
        self.service = service
        self.table: TableClient = service.get_table_client(guard_table_name(prefix))

    def ensure_tables(self) -> None:
        self.service.create_table_if_not_exists(self.table.table_name)

    def close(self) -> None:
        self.table.close()

    # -- reading ------------------------------------------------------------------------------

    def _read(self, tenant_id: str) -> TableEntity | None:
        try:
            return self.table.get_entity(_pk(tenant_id), GUARD_ROW)
        except ResourceNotFoundError:
            return None

    @staticmethod
    def _holder(tenant_id: str, entity: TableEntity) -> GuardHolder:
        since, expires = as_utc(entity.get("since")), as_utc(entity.get("expires"))
        return GuardHolder(
            tenant_id=tenant_id.lower(),
            run_id=str(entity.get("run_id") or ""),
            status=str(entity.get("status") or RUN_QUEUED),
            # A row without times (written by hand, or damaged) counts as long expired.
            since=since or EPOCH,
            expires=expires or EPOCH,
        )

    def holder(self, tenant_id: str, now: datetime) -> GuardHolder | None:
        """The live holder of the tenant's guard; None when free or expired."""
        entity = self._read(tenant_id)
        if entity is None:
            return None
        current = self._holder(tenant_id, entity)
        return current if current.live(now) else None

    # -- writing ------------------------------------------------------------------------------

    def _entity(self, tenant_id: str, run_id: str, status: str, now: datetime, ttl: timedelta) -> dict[str, Any]:
        if not is_run_id(run_id):
            raise ValueError(f"not a run id: {run_id!r}")
        if status not in GUARD_STATUSES:
            raise ValueError(f"guard status must be one of {GUARD_STATUSES}")
        if now.tzinfo is None:
            raise ValueError("guard times must be timezone-aware")
        if ttl <= timedelta(0):
            raise ValueError("a guard needs a positive time-to-live")
        return {
            "PartitionKey": _pk(tenant_id),
            "RowKey": GUARD_ROW,
            "run_id": run_id,
            "status": status,
            "since": now,
            "expires": now + ttl,
        }

    def _claim(
        self, tenant_id: str, run_id: str, status: str, now: datetime, ttl: timedelta, *, keep_since: bool
    ) -> GuardHolder | None:
        """Write the guard for `run_id` unless another run holds it live; None when written."""
        wanted = self._entity(tenant_id, run_id, status, now, ttl)
        for _ in range(_MAX_ROUNDS):
            entity = self._read(tenant_id)
            if entity is None:
                try:
                    self.table.create_entity(wanted)
                    return None
                except ResourceExistsError:
                    continue  # another writer created it first: read theirs
            current = self._holder(tenant_id, entity)
            if current.run_id != run_id and current.live(now):
                return current
            if keep_since and current.run_id == run_id:
                wanted["since"] = entity.get("since") or now
            try:
                self.table.update_entity(
                    wanted,
                    mode=UpdateMode.REPLACE,
                    etag=entity.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
                return None
            except (ResourceModifiedError, ResourceNotFoundError):
                continue  # changed or released since we read it: read again
        current_entity = self._read(tenant_id)
        if current_entity is not None:
            return self._holder(tenant_id, current_entity)
        raise RuntimeError(f"could not settle the scan guard of tenant {tenant_id} after {_MAX_ROUNDS} rounds")

    def acquire(self, tenant_id: str, run_id: str, now: datetime, ttl: timedelta) -> GuardHolder | None:
        """Take the guard for a queued run. None means acquired (or already ours); otherwise the
        live holder, whose scan the caller must not duplicate."""
        return self._claim(tenant_id, run_id, RUN_QUEUED, now, ttl, keep_since=True)

    def mark_running(self, tenant_id: str, run_id: str, now: datetime, ttl: timedelta) -> GuardHolder | None:
        """The worker starts `run_id`: status `running`, TTL renewed from now. None when the guard
        is ours (also when it had expired or was free); otherwise the other run holding it live."""
        return self._claim(tenant_id, run_id, RUN_RUNNING, now, ttl, keep_since=False)

    def renew(self, tenant_id: str, run_id: str, now: datetime, ttl: timedelta) -> GuardHolder | None:
        """A scan with no time limit (the command line's) still runs: TTL renewed from now, status
        `running`, `since` kept. None when the guard is ours; otherwise the other run holding it."""
        return self._claim(tenant_id, run_id, RUN_RUNNING, now, ttl, keep_since=True)

    def release(self, tenant_id: str, run_id: str) -> bool:
        """Free the guard if `run_id` still holds it (ETag-conditioned: never another run's)."""
        for _ in range(_MAX_ROUNDS):
            entity = self._read(tenant_id)
            if entity is None or str(entity.get("run_id") or "") != run_id:
                return False
            try:
                self.table.delete_entity(
                    partition_key=_pk(tenant_id),
                    row_key=GUARD_ROW,
                    etag=entity.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
                return True
            except ResourceModifiedError:
                continue
            except ResourceNotFoundError:
                return False
        return False

"""The tenant registry: what PartnerGuard knows about each monitored tenant between runs.

One row per tenant the app has scanned or discovered: its name and role as last seen, its last
run (for `GET /api/tenants` without reading every tenant's runs), and its **consent** state —
`ok`, `missing` (the app is not consented to in the tenant: AADSTS65001 and friends) or
`failing` (sign-in keeps failing for another reason). The timer reads the consent state to scan
a tenant without consent once a day instead of failing a run every schedule, and the worker
raises one alert when a tenant's consent goes missing, not one per run.

It also keeps what `doctor` judges (`partnerguard.doctor`), so `GET /api/tenants` can show it
without calling Graph: the **access facts** of the latest sign-in by `doctor` or a scan (sign-in
outcome, the token's Graph permissions, Entra ID P1, cloud; a JSON document the store does not
interpret) with when they were established, and a customer's **GDAP** state (`active`, `none`,
`unknown`) with when it was read from the partner tenant.

Table `<prefix>tenants`: PartitionKey `tenant` (one partition: hundreds of tenants, listed
together), RowKey the tenant id. Tenant-controlled names are capped before they are stored.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableClient, TableEntity, TableServiceClient, UpdateMode

from partnerguard.logs import redact
from partnerguard.model import iso
from partnerguard.settings import is_guid
from partnerguard.storage.batching import submit_all, upsert
from partnerguard.storage.keys import TABLE_PREFIX_RE, is_run_id
from partnerguard.storage.limits import MAX_TEXT_UNITS, cap_text, to_json
from partnerguard.storage.records import RUN_SUCCEEDED, as_utc

REGISTRY_PARTITION = "tenant"
Consent = Literal["ok", "missing", "failing"]
CONSENT_STATES: tuple[str, ...] = ("ok", "missing", "failing")
MAX_NAME_UNITS = 1024
# A customer's GDAP states as doctor and discovery record them.
GDAP_RECORDED: tuple[str, ...] = ("active", "none", "unknown")
# The access facts are a few hundred bytes (a sign-in outcome, ~15 permission names); anything
# near this is not ours to store.
MAX_ACCESS_UNITS = 8 * 1024


def registry_table_name(prefix: str) -> str:
    if not TABLE_PREFIX_RE.match(prefix):
        raise ValueError(f"table prefix must be 1-52 letters or digits starting with a letter, got {prefix!r}")
    return f"{prefix}tenants"


@dataclass(frozen=True)
class LastRun:
    run_id: str
    status: str
    finished: datetime | None
    summary: Mapping[str, int] | None

    def to_document(self) -> dict[str, Any]:
        """SPEC §4's `last_run` object of `GET /api/tenants`."""
        return {
            "run_id": self.run_id,
            "status": self.status,
            "finished": iso(self.finished) if self.finished else None,
            "summary": dict(self.summary) if self.summary is not None else None,
        }


@dataclass(frozen=True)
class TenantRecord:
    id: str
    name: str
    role: str
    consent: str = "ok"
    # Why consent is not ok: the sign-in error's code and first line (no tokens, capped).
    consent_error: str | None = None
    # When the consent state was last established by a sign-in (the daily re-probe reads it).
    consent_checked_at: datetime | None = None
    # Since when the state has been what it is (the first failure of a streak).
    consent_since: datetime | None = None
    # Consecutive runs whose sign-in failed (not for missing consent); reset by a good sign-in.
    sign_in_failures: int = 0
    discovered: bool = False
    last_run: LastRun | None = None
    last_succeeded_run_id: str | None = None
    last_succeeded_at: datetime | None = None
    # When PartnerGuard first recorded a run of this tenant (or discovered it): the reference
    # for "no successful run for twice the schedule" while it never had one.
    monitored_since: datetime | None = None
    # The access facts `doctor` judges (partnerguard.doctor.facts.AccessFacts as JSON), and when the
    # sign-in that established them happened; None until a doctor or a scan recorded them.
    access: Mapping[str, Any] | None = None
    access_checked_at: datetime | None = None
    # A customer's GDAP relationship with the partner (active | none | unknown), and when it was read.
    gdap: str | None = None
    gdap_checked_at: datetime | None = None

    def to_document(self) -> dict[str, Any]:
        """SPEC §4's tenant object of `GET /api/tenants`."""
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "consent": self.consent,
            "last_run": self.last_run.to_document() if self.last_run else None,
        }

    @classmethod
    def from_entity(cls, entity: Mapping[str, Any]) -> TenantRecord:
        tenant_id = str(entity["RowKey"])
        last_run = None
        run_id = entity.get("last_run_id")
        if isinstance(run_id, str) and run_id:
            summary_text = entity.get("last_run_summary")
            last_run = LastRun(
                run_id=run_id,
                status=str(entity.get("last_run_status") or ""),
                finished=as_utc(entity.get("last_run_finished")),
                summary=json.loads(summary_text) if isinstance(summary_text, str) and summary_text else None,
            )
        consent = entity.get("consent")
        failures = entity.get("sign_in_failures")
        access = _json_object(entity.get("access"))
        gdap = entity.get("gdap")
        return cls(
            id=tenant_id,
            name=str(entity.get("name") or tenant_id),
            role=str(entity.get("role") or "customer"),
            consent=consent if consent in CONSENT_STATES else "ok",
            consent_error=str(entity["consent_error"]) if entity.get("consent_error") else None,
            consent_checked_at=as_utc(entity.get("consent_checked_at")),
            consent_since=as_utc(entity.get("consent_since")),
            sign_in_failures=int(failures) if isinstance(failures, int) else 0,
            discovered=entity.get("discovered") is True,
            last_run=last_run,
            last_succeeded_run_id=str(entity["last_succeeded_run_id"]) if entity.get("last_succeeded_run_id") else None,
            last_succeeded_at=as_utc(entity.get("last_succeeded_at")),
            monitored_since=as_utc(entity.get("monitored_since")),
            access=access,
            access_checked_at=as_utc(entity.get("access_checked_at")) if access is not None else None,
            gdap=gdap if isinstance(gdap, str) and gdap in GDAP_RECORDED else None,
            gdap_checked_at=as_utc(entity.get("gdap_checked_at")),
        )


def _json_object(value: Any) -> dict[str, Any] | None:
    """A stored JSON object, or None (nothing stored, or a value this version cannot read)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def _row_key(tenant_id: str) -> str:
    # Only GUIDs become keys: the registry is listed to people and never holds arbitrary text.
    if not is_guid(tenant_id):
        raise ValueError("a tenant id must be a GUID")
    return tenant_id.lower()


class TenantRegistry:
    def __init__(self, service: TableServiceClient, prefix: str = "pg") -> None:
        self.service = service
        self.table: TableClient = service.get_table_client(registry_table_name(prefix))

    def ensure_tables(self) -> None:
        self.service.create_table_if_not_exists(self.table.table_name)

    def close(self) -> None:
        self.table.close()

    def get(self, tenant_id: str) -> TenantRecord | None:
        try:
            entity: TableEntity = self.table.get_entity(REGISTRY_PARTITION, _row_key(tenant_id))
        except ResourceNotFoundError:
            return None
        return TenantRecord.from_entity(entity)

    def list(self) -> list[TenantRecord]:
        rows = self.table.query_entities("PartitionKey eq @pk", parameters={"pk": REGISTRY_PARTITION})
        return [TenantRecord.from_entity(row) for row in rows]

    def _merge(self, tenant_id: str, properties: Mapping[str, Any]) -> None:
        self.table.upsert_entity(
            {"PartitionKey": REGISTRY_PARTITION, "RowKey": _row_key(tenant_id), **properties}, mode=UpdateMode.MERGE
        )

    def record_scan(
        self,
        tenant_id: str,
        name: str,
        role: str,
        run_id: str,
        status: str,
        now: datetime,
        summary: Mapping[str, int] | None = None,
    ) -> None:
        """The tenant's last run (and last successful run) and its name and role as it reported them."""
        if not is_run_id(run_id):
            raise ValueError(f"not a run id: {run_id!r}")
        properties: dict[str, Any] = {
            "name": cap_text(name or tenant_id, MAX_NAME_UNITS),
            "role": role,
            "last_run_id": run_id,
            "last_run_status": status,
            "last_run_finished": now,
            # Merge cannot remove a property: an empty string stands for "no summary".
            "last_run_summary": to_json(dict(summary)) if summary is not None else "",
        }
        if status == RUN_SUCCEEDED:
            properties.update(last_succeeded_run_id=run_id, last_succeeded_at=now)
        existing = self.get(tenant_id)
        if existing is None or existing.monitored_since is None:
            properties["monitored_since"] = now
        self._merge(tenant_id, properties)

    def set_consent(
        self,
        tenant_id: str,
        consent: str,
        error: str | None,
        now: datetime,
        sign_in_failures: int = 0,
        since: datetime | None = None,
    ) -> None:
        """The tenant's consent state as the latest sign-in established it."""
        if consent not in CONSENT_STATES:
            raise ValueError(f"consent must be one of {CONSENT_STATES}, got {consent!r}")
        self._merge(
            tenant_id,
            {
                "consent": consent,
                "consent_error": cap_text(redact(error), MAX_TEXT_UNITS) if error else "",
                "consent_checked_at": now,
                "consent_since": since or now,
                "sign_in_failures": sign_in_failures,
            },
        )

    def record_access(
        self, tenant_id: str, facts: Mapping[str, Any], now: datetime, name: str | None = None
    ) -> None:
        """The access facts of the sign-in at `now` (and the tenant's name when it was read)."""
        document = to_json(dict(facts))
        if len(document) > MAX_ACCESS_UNITS:  # ASCII JSON: characters are UTF-16 units
            raise ValueError("the access facts are too large to record")
        properties: dict[str, Any] = {"access": document, "access_checked_at": now}
        if name:
            properties["name"] = cap_text(name, MAX_NAME_UNITS)
        self._merge(tenant_id, properties)

    def record_gdap(self, states: Mapping[str, str], now: datetime) -> None:
        """Customers' GDAP states as read from the partner tenant at `now`, in batches."""
        for tenant_id, state in states.items():
            if state not in GDAP_RECORDED:
                raise ValueError(f"GDAP state must be one of {GDAP_RECORDED}, got {state!r}")
            _row_key(tenant_id)
        operations = [
            upsert(
                {"PartitionKey": REGISTRY_PARTITION, "RowKey": _row_key(t), "gdap": state, "gdap_checked_at": now},
                mode=UpdateMode.MERGE,
            )
            for t, state in states.items()
        ]
        submit_all(self.table, operations)

    def record_discovered(self, tenant_ids: Iterable[str], now: datetime) -> None:
        """The customers the latest discovery found, so a later discovery failure does not drop
        them from the schedule (the timer then falls back on configured + these). Customers an
        earlier discovery found and this one did not (relationship ended) are no longer marked."""
        found = list(dict.fromkeys(t.lower() for t in tenant_ids))
        gone = set(self.discovered()) - set(found)
        operations = [
            *(
                upsert(
                    {
                        "PartitionKey": REGISTRY_PARTITION,
                        "RowKey": _row_key(t),
                        "discovered": True,
                        "discovered_at": now,
                    },
                    mode=UpdateMode.MERGE,
                )
                for t in found
            ),
            *(
                upsert(
                    {"PartitionKey": REGISTRY_PARTITION, "RowKey": _row_key(t), "discovered": False},
                    mode=UpdateMode.MERGE,
                )
                for t in sorted(gone)
            ),
        ]
        submit_all(self.table, operations)

    def discovered(self) -> builtins.list[str]:
        rows = self.table.query_entities(
            "PartitionKey eq @pk and discovered eq true", parameters={"pk": REGISTRY_PARTITION}, select=["RowKey"]
        )
        return [str(row["RowKey"]) for row in rows]

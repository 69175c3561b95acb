"""Monitored tenants (configured + GDAP discovery from the simulator), the consent rules, and the
tenant registry on Azurite."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.data.tables import TableServiceClient

from partnerguard.graph.errors import ConsentMissing, SignInFailed
from partnerguard.monitored_tenants import (
    REPROBE_AFTER,
    SIGN_IN_FAILURES_BEFORE_FAILING,
    consent_after,
    customers_of,
    discover_gdap_customers,
    monitored_tenants,
    skip_reason,
)
from partnerguard.settings import Settings
from partnerguard.storage.tenant_registry import TenantRecord, TenantRegistry
from testbed.azurite import AzuriteProcess
from testbed.simulator import TenantSimulator, bundled_scenarios

PARTNER = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
FABRIKAM = "c0ffee00-1b2c-4d3e-8f90-a1b2c3d4e5f6"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
RUN = "8235746000000-0a1b2c3d4e"


@pytest.fixture(scope="module")
def sim() -> Iterator[TenantSimulator]:
    with TenantSimulator(bundled_scenarios()) as simulator:
        yield simulator


@pytest.fixture
def registry(azurite: AzuriteProcess, table_prefix: str) -> Iterator[TenantRegistry]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    registry = TenantRegistry(service, table_prefix)
    registry.ensure_tables()
    yield registry
    service.delete_table(registry.table.table_name)
    registry.close()


def live_customers(sim: TenantSimulator) -> list[str]:
    """Ground truth from the scenario file: customers of active or expiring relationships."""
    return list(
        dict.fromkeys(
            r["customer"]["tenantId"]
            for r in sim.tenant(PARTNER).delegated_admin_relationships
            if r["status"] in ("active", "expiring")
        )
    )


# -- discovery ------------------------------------------------------------------------------------


def test_customers_of_takes_live_relationships_and_distrusts_the_rest() -> None:
    relationships: list[dict[str, object]] = [
        {"status": "active", "customer": {"tenantId": FABRIKAM.upper()}},
        {"status": "expiring", "customer": {"tenantId": PARTNER}},
        {"status": "active", "customer": {"tenantId": FABRIKAM}},  # a second relationship, same customer
        {"status": "terminated", "customer": {"tenantId": "b2c3d4e5-0000-4000-8000-00000000cafe"}},
        {"status": "approvalPending", "customer": {"tenantId": "5984233e-d765-582a-a103-f8ce964f3e65"}},
        {"status": "active", "customer": {"tenantId": "../../etc/passwd"}},
        {"status": "active", "customer": "not an object"},
        {"status": "active"},
    ]
    assert customers_of(relationships) == [FABRIKAM, PARTNER]


def test_discovery_reads_the_partner_tenants_gdap_relationships(sim: TenantSimulator) -> None:
    settings = Settings.from_env(sim.environment())
    discovered = asyncio.run(discover_gdap_customers(settings))
    assert discovered == live_customers(sim)
    assert len(discovered) == 9  # 7 active + 2 expiring in the bundled Contoso scenario
    assert "b2c3d4e5-0000-4000-8000-00000000cafe" not in discovered  # terminated


def test_discovery_is_refused_where_gdap_does_not_exist(sim: TenantSimulator) -> None:
    settings = Settings.from_env({**sim.environment(), "AZURE_CLOUD": "usgov"})
    with pytest.raises(RuntimeError, match="usgov"):
        asyncio.run(discover_gdap_customers(settings))


def test_monitored_tenants_with_and_without_discovery(registry: TenantRegistry) -> None:
    configured = Settings.from_env({"PARTNERGUARD_TENANTS": f"{PARTNER},{FABRIKAM.upper()}"})
    discovering = Settings.from_env(
        {"PARTNERGUARD_TENANTS": f"{PARTNER},{FABRIKAM}", "PARTNERGUARD_DISCOVER_CUSTOMERS": "true"}
    )
    found = ["5e1d2c3b-4a59-4687-9a0b-1c2d3e4f5a6b", FABRIKAM]

    async def discover() -> list[str]:
        return found

    # Off: the discovery function is not even called.
    assert asyncio.run(monitored_tenants(configured, registry, discover, NOW)) == [PARTNER, FABRIKAM]
    assert registry.discovered() == []
    # On: configured first, then the new customers, without repeats; the registry remembers them.
    assert asyncio.run(monitored_tenants(discovering, registry, discover, NOW)) == [PARTNER, FABRIKAM, found[0]]
    assert sorted(registry.discovered()) == sorted(found)
    # A relationship ended: its customer is no longer discovered (nor a fallback candidate).
    found.pop(0)
    assert asyncio.run(monitored_tenants(discovering, registry, discover, NOW)) == [PARTNER, FABRIKAM]
    assert registry.discovered() == [FABRIKAM]


def test_discovery_records_each_customers_gdap_state(registry: TenantRegistry) -> None:
    settings = Settings.from_env(
        {
            "AZURE_TENANT_ID": PARTNER,
            "PARTNERGUARD_TENANTS": f"{PARTNER},{FABRIKAM}",
            "PARTNERGUARD_DISCOVER_CUSTOMERS": "true",
        }
    )
    northwind = "5e1d2c3b-4a59-4687-9a0b-1c2d3e4f5a6b"

    async def discover() -> list[str]:
        return [northwind]

    assert asyncio.run(monitored_tenants(settings, registry, discover, NOW)) == [PARTNER, FABRIKAM, northwind]
    # What doctor and GET /api/tenants report: a configured customer without a live relationship
    # is `none`; the partner tenant gets no GDAP state of its own.
    states = {t: (r.gdap, r.gdap_checked_at) for t in (PARTNER, FABRIKAM, northwind) if (r := registry.get(t))}
    assert states == {FABRIKAM: ("none", NOW), northwind: ("active", NOW)}


def test_a_discovery_failure_falls_back_on_what_is_known(
    registry: TenantRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings.from_env({"PARTNERGUARD_TENANTS": PARTNER, "PARTNERGUARD_DISCOVER_CUSTOMERS": "true"})
    earlier = "5e1d2c3b-4a59-4687-9a0b-1c2d3e4f5a6b"
    registry.record_discovered([earlier], NOW - timedelta(days=1))

    async def broken() -> list[str]:
        raise ConnectionError("graph.microsoft.com unreachable\nFORGED LOG LINE")

    tenants = asyncio.run(monitored_tenants(settings, registry, broken, NOW))
    assert tenants == [PARTNER, earlier]
    assert "customer discovery failed (ConnectionError" in caplog.text
    assert "\nFORGED" not in caplog.text


# -- consent --------------------------------------------------------------------------------------


def record(consent: str = "ok", checked: datetime | None = None, failures: int = 0) -> TenantRecord:
    return TenantRecord(FABRIKAM, "Fabrikam", "customer", consent, None, checked, checked, sign_in_failures=failures)


def test_missing_consent_alerts_once() -> None:
    missing = ConsentMissing("AADSTS7000229", "AADSTS7000229: no service principal")
    first = consent_after(None, missing, NOW)
    assert (first.consent, first.newly_broken, first.run_error_code) == ("missing", True, "consent_missing")
    again = consent_after(record("missing", NOW), missing, NOW + timedelta(days=1))
    assert (again.consent, again.newly_broken) == ("missing", False)
    assert again.since == NOW  # still missing since the first time
    healed = consent_after(record("missing", NOW), None, NOW + timedelta(days=2))
    assert (healed.consent, healed.newly_broken, healed.error, healed.run_error_code) == ("ok", False, None, None)


def test_sign_in_failures_become_failing_after_a_streak() -> None:
    error = SignInFailed("AADSTS7000215", "AADSTS7000215: Invalid client secret provided.")
    previous: TenantRecord | None = None
    updates = []
    for attempt in range(SIGN_IN_FAILURES_BEFORE_FAILING + 1):
        update = consent_after(previous, error, NOW + timedelta(hours=6 * attempt))
        updates.append(update)
        previous = record(update.consent, NOW, update.sign_in_failures)
    assert [u.consent for u in updates] == ["ok"] * (SIGN_IN_FAILURES_BEFORE_FAILING - 1) + ["failing", "failing"]
    assert [u.newly_broken for u in updates].count(True) == 1  # one alert, not one per failure
    assert all(u.run_error_code == "sign_in_failed" for u in updates)
    assert consent_after(previous, None, NOW).sign_in_failures == 0


def test_broken_consent_is_probed_again_after_a_day() -> None:
    assert skip_reason(None, NOW) is None
    assert skip_reason(record("ok", NOW), NOW) is None
    for state in ("missing", "failing"):
        reason = skip_reason(record(state, NOW), NOW + REPROBE_AFTER - timedelta(minutes=1))
        assert reason is not None and state in reason
        assert skip_reason(record(state, NOW), NOW + REPROBE_AFTER) is None
    assert skip_reason(record("missing", None), NOW) is None  # never probed: probe now


# -- the registry ---------------------------------------------------------------------------------


def test_the_registry_keeps_last_runs_and_consent(registry: TenantRegistry) -> None:
    assert registry.get(FABRIKAM) is None
    registry.record_scan(FABRIKAM, "Fabrikam", "customer", RUN, "succeeded", NOW, {"pass": 9, "fail": 1})
    later_run = "8235745000000-0a1b2c3d4e"
    registry.record_scan(FABRIKAM, "Fabrikam Ltd", "customer", later_run, "failed", NOW + timedelta(hours=6))
    registry.set_consent(FABRIKAM, "missing", "AADSTS65001: no consent", NOW + timedelta(hours=6))
    stored = registry.get(FABRIKAM.upper())
    assert stored is not None
    assert (stored.name, stored.consent, stored.consent_error) == ("Fabrikam Ltd", "missing", "AADSTS65001: no consent")
    assert stored.last_run is not None and stored.last_run.to_document() == {
        "run_id": later_run,
        "status": "failed",
        "finished": "2026-11-26T18:00:00Z",
        "summary": None,
    }
    # The last *successful* run is kept apart (the dashboard shows its age).
    assert (stored.last_succeeded_run_id, stored.last_succeeded_at) == (RUN, NOW)
    assert stored.to_document()["consent"] == "missing"
    registry.set_consent(FABRIKAM, "ok", None, NOW + timedelta(days=1))
    healed = registry.get(FABRIKAM)
    assert healed is not None and (healed.consent, healed.consent_error) == ("ok", None)
    assert [r.id for r in registry.list()] == [FABRIKAM]


def test_the_registry_caps_tenant_text_and_refuses_non_guids(registry: TenantRegistry) -> None:
    registry.record_scan(FABRIKAM, "N" * 100_000, "customer", RUN, "succeeded", NOW)
    stored = registry.get(FABRIKAM)
    assert stored is not None and len(stored.name) <= 1024
    with pytest.raises(ValueError, match="GUID"):
        registry.get("../etc")
    with pytest.raises(ValueError, match="consent"):
        registry.set_consent(FABRIKAM, "unknown", None, NOW)

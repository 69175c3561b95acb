"""A real scan of every bundled scenario reports exactly what the scenario's ground truth says.

The scan runs the production pipeline (azure-identity sign-in, msgraph transport, collector,
checks, Table Storage on Azurite) against the simulator; the expectations come from
`testbed.simulator.ground_truth`, which shares no code with `checks/` or the collector."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from partnerguard.pipeline import Scanner
from partnerguard.settings import Settings
from partnerguard.storage import ScanStore
from testbed.simulator import TenantScenario, TenantSimulator, bundled_scenarios
from testbed.simulator.ground_truth import LEGACY_AUTH_SIGN_INS, PASSWORD_GRANT, SINGLE_FACTOR_SIGN_INS
from tests.graph_sim import fast_simulator, pace_to

pytestmark = pytest.mark.simulator

SIGN_IN_RULES = (LEGACY_AUTH_SIGN_INS, SINGLE_FACTOR_SIGN_INS, PASSWORD_GRANT)
LICENCE = "licence:AAD_PREMIUM"


@pytest.fixture(scope="module")
def simulator() -> Iterator[TenantSimulator]:
    # Graph's request counts over short windows, and scans paced to them (tests/graph_sim.py).
    with fast_simulator(bundled_scenarios()) as sim:
        yield sim


@pytest.fixture(autouse=True)
def paced_to_the_simulator(simulator: TenantSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    pace_to(simulator, monkeypatch)


# Break-glass accounts across the bundled tenants (one setting serves every tenant): Contoso's
# Global Administrator by UPN (FIDO2), two Northwind members holding no role: one by UPN (a phone
# only), one by object id (FIDO2).
EMERGENCY_ACCESS_ACCOUNTS = (
    "break.glass@contosopartner.onmicrosoft.com",
    "frank.miller@northwindtraders.onmicrosoft.com",
    "cb4ac8b4-df0c-441f-95bf-54df258ececb",
)


def scan(simulator: TenantSimulator, store: ScanStore, tenant_id: str) -> tuple[dict[str, Any], datetime]:
    settings = Settings.from_env(
        {**simulator.environment(), "EMERGENCY_ACCESS_ACCOUNTS": ",".join(EMERGENCY_ACCESS_ACCOUNTS)}
    )
    started = datetime.now(UTC)
    result = asyncio.run(Scanner(settings, store).scan(tenant_id))
    assert result.report is not None
    document = result.report.to_document()
    assert document["status"] == "succeeded", document
    return {check["id"]: check for check in document["checks"]}, started


def subjects(check: dict[str, Any]) -> set[str]:
    return {finding["subject_id"] for finding in check["findings"]}


def scenario(simulator: TenantSimulator, name: str) -> TenantScenario:
    return next(tenant for tenant in simulator.tenants if tenant.display_name.startswith(name))


def test_partner_scan_reports_the_ground_truth(simulator: TenantSimulator, scan_store: ScanStore) -> None:
    contoso = scenario(simulator, "Contoso")
    checks, now = scan(simulator, scan_store, contoso.tenant_id)
    assert subjects(checks["mfa.registration"]) == contoso.expected_mfa_registration_subjects()
    for rule in SIGN_IN_RULES:
        assert subjects(checks[rule]) == contoso.sign_in_subjects(rule, now), rule
        assert checks[rule]["status"] == "fail"
    secrets = checks["apps.client-secrets"]
    assert {f["subject_id"]: f["severity"] for f in secrets["findings"]} == contoso.client_secret_subjects()
    assert subjects(checks["apps.credential-expiry"]) == contoso.expiring_credential_subjects(now)
    assert subjects(checks["gdap.privileged-roles"]) == contoso.privileged_gdap_relationship_ids()
    assert subjects(checks["gdap.expiring"]) == contoso.expiring_gdap_relationship_ids(now)
    # Every principal a policy excludes is named in its finding.
    policy = "a7abe1c2-9e1a-4ef4-b341-e07a83f73f16"
    excluded = contoso.ca_excluded_principals(policy)
    details = " ".join(
        f["detail"] + str(f["evidence"])
        for f in checks["mfa.enforcement"]["findings"]
        if f["subject_id"].startswith(policy + "|excluded-")
    )
    names = {u["id"]: u["displayName"] for u in contoso.users}
    for user_id in excluded["users"] | excluded["group_members"] | excluded["role_members"]:
        assert names[user_id] in details or user_id in details, names[user_id]


def test_unlicensed_security_defaults_scan_uses_the_fallback(simulator: TenantSimulator, scan_store: ScanStore) -> None:
    litware = scenario(simulator, "Litware")
    checks, _ = scan(simulator, scan_store, litware.tenant_id)
    registration = checks["mfa.registration"]
    assert registration["status"] == "fail"
    assert subjects(registration) == litware.expected_mfa_registration_subjects()
    for rule in SIGN_IN_RULES:
        assert (checks[rule]["status"], checks[rule]["reason_code"]) == ("not_assessed", LICENCE), rule
    assert checks["mfa.enforcement"]["status"] == "pass"  # security defaults
    assert {f["subject_id"]: f["severity"] for f in checks["apps.client-secrets"]["findings"]} == (
        litware.client_secret_subjects()
    )
    for gdap in ("gdap.privileged-roles", "gdap.expiring"):
        assert checks[gdap]["status"] == "not_assessed"  # a customer tenant


@pytest.mark.parametrize("name", ["Contoso", "Fabrikam", "Litware", "Northwind"])
def test_conditional_access_checks_report_the_ground_truth(
    simulator: TenantSimulator, scan_store: ScanStore, name: str
) -> None:
    # SPEC §1 "Edge cases, decided": policies read from beta; every bundled tenant keeps its verdict.
    tenant = scenario(simulator, name)
    checks, _ = scan(simulator, scan_store, tenant.tenant_id)
    for check_id in ("mfa.enforcement", "legacy-auth.blocked"):
        check = checks[check_id]
        assert (check["status"], subjects(check)) == tenant.expected_conditional_access_outcome(check_id), check_id
        if tenant.has_entra_premium:
            assert check["evidence"]["conditionalAccessApiVersion"] == "beta"


@pytest.mark.parametrize("name", ["Contoso", "Fabrikam", "Litware", "Northwind"])
def test_phishing_resistant_admins_report_the_ground_truth(
    simulator: TenantSimulator, scan_store: ScanStore, name: str
) -> None:
    # From the report (Contoso, Fabrikam) or each admin's methods without P1 (Litware, Northwind).
    tenant = scenario(simulator, name)
    checks, _ = scan(simulator, scan_store, tenant.tenant_id)
    check = checks["mfa.phishing-resistant-admins"]
    truth = tenant.expected_phishing_resistant_admin_subjects(EMERGENCY_ACCESS_ACCOUNTS)
    assert (check["status"], subjects(check)) == ("fail" if truth else "pass", truth)

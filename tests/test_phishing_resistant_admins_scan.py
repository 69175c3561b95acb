"""mfa.phishing-resistant-admins end to end (issue 18's acceptance): the production pipeline
(azure-identity sign-in, msgraph transport over HTTPS, collector, checks, Table Storage on
Azurite) against simulated tenants, compared with the simulator's ground truth.

- A tenant whose admins have a FIDO2 key, Windows Hello for Business or a passkey, and whose
  emergency-access account has a FIDO2 key, passes.
- A tenant whose admins use only Authenticator or a phone fails, naming each admin and the
  emergency-access account.
- Between the daily full reads of the registration report, an admin's newly registered key is
  seen on the next scan: admins' rows are read fresh, not taken from the stored roster.
- A guest holding a role is judged though guests are out of mfa.registration's scope: without
  P1 the fallback reads the guest's methods, fresh each scan (not from the day's method cache);
  with P1 a guest given a role since the full read has the row read by id.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from partnerguard.pipeline import Scanner
from partnerguard.settings import Settings
from partnerguard.storage import ScanStore
from testbed.simulator import TenantScenario, TenantSimulator, generate_tenant
from testbed.simulator.generate import make_authentication_methods, make_registration_detail, make_user
from testbed.simulator.ground_truth import tenant_wide_role_holders
from tests.graph_sim import fast_simulator, pace_to

pytestmark = pytest.mark.simulator

CHECK = "mfa.phishing-resistant-admins"
STRONG = "7a7a7a7a-1111-4222-8333-444444444444"
WEAK = "7b7b7b7b-1111-4222-8333-444444444444"
SWITCHED_OFF = "7c7c7c7c-1111-4222-8333-444444444444"
# Large enough (3 report pages) that a filtered page plus its one admin's row by id costs less
# than reading whole, so scans between full reads take the roster.
FRESH = "7d7d7d7d-1111-4222-8333-444444444444"
NO_P1 = "7e7e7e7e-1111-4222-8333-444444444444"  # no Entra ID P1: the fallback reads every method
GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"


def tenants() -> list[TenantScenario]:
    strong = generate_tenant(
        STRONG,
        40,
        seed=41,
        display_name="Strong Admins",
        admins=3,
        admin_methods=[
            ["fido2"],
            ["windowsHelloForBusiness", "microsoftAuthenticatorPush"],
            ["passKeyDeviceBoundAuthenticator"],
        ],
        emergency_access_methods=["fido2"],
    )
    weak = generate_tenant(
        WEAK,
        40,
        seed=42,
        display_name="Weak Admins",
        admins=3,
        admin_methods=[["microsoftAuthenticatorPush"], ["mobilePhone"], ["microsoftAuthenticatorPush", "mobilePhone"]],
        emergency_access_methods=["mobilePhone"],
    )
    switched_off = generate_tenant(
        SWITCHED_OFF,
        20,
        seed=43,
        display_name="No FIDO2",
        admins=2,
        admin_methods=[["fido2"], ["windowsHelloForBusiness"]],
        fido2_enabled=False,
    )
    fresh = generate_tenant(
        FRESH, 2_500, seed=44, display_name="Roster", admins=1, admin_methods=[["microsoftAuthenticatorPush"]]
    )
    no_p1 = generate_tenant(
        NO_P1, 20, seed=45, display_name="No P1", licences=(), guests=2, admins=1, admin_methods=[["fido2"]]
    )
    return [strong, weak, switched_off, fresh, no_p1]


@pytest.fixture
def simulator() -> Iterator[TenantSimulator]:
    # One per test: the freshness test changes a tenant between scans.
    with fast_simulator(tenants()) as sim:
        yield sim


@pytest.fixture(autouse=True)
def paced_to_the_simulator(simulator: TenantSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    pace_to(simulator, monkeypatch)


def emergency_upns(simulator: TenantSimulator) -> list[str]:
    """Every tenant's break-glass account by UPN: one setting serves every monitored tenant."""
    return [f"breakglass@{tenant.organization['verifiedDomains'][0]['name']}" for tenant in simulator.tenants]


def settings(simulator: TenantSimulator) -> Settings:
    return Settings.from_env(
        {**simulator.environment(), "EMERGENCY_ACCESS_ACCOUNTS": ",".join(emergency_upns(simulator))}
    )


def scan(simulator: TenantSimulator, store: ScanStore, tenant_id: str, at: datetime | None = None) -> dict[str, Any]:
    clock = (lambda: at) if at is not None else (lambda: datetime.now(UTC))
    result = asyncio.run(Scanner(settings(simulator), store, clock=clock).scan(tenant_id))
    assert result.report is not None
    document = result.report.to_document()
    assert document["status"] == "succeeded", document
    checks: list[dict[str, Any]] = [check for check in document["checks"] if check["id"] == CHECK]
    (check,) = checks
    return check


def glass_of(tenant: TenantScenario) -> dict[str, Any]:
    glass = tenant.user(f"breakglass@{tenant.organization['verifiedDomains'][0]['name']}")
    assert glass is not None
    return glass


def test_passes_when_admins_have_fido2_windows_hello_or_a_passkey(
    simulator: TenantSimulator, scan_store: ScanStore
) -> None:
    tenant = simulator.tenant(STRONG)
    check = scan(simulator, scan_store, STRONG)
    assert (check["status"], check["findings"]) == ("pass", [])
    assert check["evidence"]["admins"] == 3
    assert check["evidence"]["emergency_access_accounts"] == 1
    assert tenant.expected_phishing_resistant_admin_subjects(emergency_upns(simulator)) == set()


def test_fails_naming_each_admin_and_the_emergency_account_when_they_use_only_authenticator_or_phone(
    simulator: TenantSimulator, scan_store: ScanStore
) -> None:
    tenant = simulator.tenant(WEAK)
    check = scan(simulator, scan_store, WEAK)
    assert check["status"] == "fail"
    admins = tenant_wide_role_holders(tenant)
    glass = glass_of(tenant)
    findings = {finding["subject_id"]: finding for finding in check["findings"]}
    assert (
        set(findings)
        == admins | {glass["id"]}
        == tenant.expected_phishing_resistant_admin_subjects(emergency_upns(simulator))
    )
    users = {user["id"]: user for user in tenant.users}
    for user_id, finding in findings.items():
        user = users[user_id]
        assert finding["subject_type"] == "user" and finding["severity"] == "high"
        assert user["displayName"] in finding["detail"] and user["userPrincipalName"] in finding["detail"]
        assert finding["evidence"]["userPrincipalName"] == user["userPrincipalName"]
        assert finding["evidence"]["methodsRegistered"], user_id
        assert finding["evidence"]["conditionalAccessRequiresPhishingResistant"] is False
    for admin in admins:
        assert "Global Administrator" in findings[admin]["detail"]
        assert findings[admin]["evidence"]["roles"] == ["Global Administrator"]
    assert "emergency-access account" in findings[glass["id"]]["detail"]
    assert findings[glass["id"]]["evidence"]["emergencyAccess"] is True


def test_fido2_switched_off_in_the_methods_policy_does_not_count(
    simulator: TenantSimulator, scan_store: ScanStore
) -> None:
    tenant = simulator.tenant(SWITCHED_OFF)
    check = scan(simulator, scan_store, SWITCHED_OFF)
    truth = tenant.expected_phishing_resistant_admin_subjects(emergency_upns(simulator))
    assert len(truth) == 1  # the FIDO2 admin; Windows Hello needs no configuration
    assert check["status"] == "fail"
    assert {finding["subject_id"] for finding in check["findings"]} == truth
    (finding,) = check["findings"]
    assert finding["evidence"]["phishingResistantSwitchedOff"] == ["fido2"]


def test_an_admins_new_key_is_seen_between_full_reads_of_the_report(
    simulator: TenantSimulator, scan_store: ScanStore
) -> None:
    tenant = simulator.tenant(FRESH)
    first_at = datetime.now(UTC).replace(microsecond=0)
    first = scan(simulator, scan_store, FRESH, first_at)
    assert first["status"] == "fail"
    # The admin registers a security key; the next scan, an hour later, reads the report filtered
    # (only not-capable rows: the admin, still capable, is not among them) over the stored roster.
    (admin,) = tenant_wide_role_holders(tenant)
    row = next(row for row in tenant.user_registration_details if row["id"] == admin)
    row["methodsRegistered"] = [*row["methodsRegistered"], "fido2"]
    simulator.clear_requests()
    second = scan(simulator, scan_store, FRESH, first_at + timedelta(hours=1))
    reads = [r for r in simulator.requests if r.tenant_id == FRESH and "userRegistrationDetails" in r.path]
    assert any("isMfaCapable" in r.query for r in reads), "the second scan should read filtered, over the roster"
    assert [r.path.rsplit("/", 1)[1] for r in reads if r.in_batch] == [admin]  # the admin's row, fresh
    assert (second["status"], second["findings"]) == ("pass", [])
    assert tenant.expected_phishing_resistant_admin_subjects(emergency_upns(simulator)) == set()


def test_roles_held_through_a_group_count_and_roles_scoped_to_an_administrative_unit_do_not(
    simulator: TenantSimulator, scan_store: ScanStore
) -> None:
    tenant = simulator.tenant(STRONG)
    admins = tenant_wide_role_holders(tenant)
    rows = {row["id"]: row for row in tenant.user_registration_details}
    # Members holding no role whose one method is not phishing-resistant (Authenticator, a phone).
    members = [
        user
        for user in tenant.users
        if user["id"] not in admins
        and user["id"] in rows
        and rows[user["id"]]["methodsRegistered"] in (["microsoftAuthenticatorPush"], ["mobilePhone"])
    ]
    through_group, unit_admin = members[0], members[1]
    group_id = "5a1e5a1e-0000-4000-8000-00000000a11e"
    tenant.groups.append({"id": group_id, "displayName": "Exchange admins"})
    tenant.group_transitive_members[group_id] = [
        {"@odata.type": "#microsoft.graph.user", "id": through_group["id"], "displayName": through_group["displayName"]}
    ]
    exchange_administrator = "29232cdf-9323-42fd-ade2-1d097af3e4de"
    tenant.role_assignments += [
        {
            "id": "6a0c0c0c-0000-4000-8000-000000000001",
            "principalId": group_id,
            "roleDefinitionId": exchange_administrator,
            "directoryScopeId": "/",
        },
        {
            "id": "6a0c0c0c-0000-4000-8000-000000000002",
            "principalId": unit_admin["id"],
            "roleDefinitionId": exchange_administrator,
            "directoryScopeId": "/administrativeUnits/0c0c0c0c-0000-4000-8000-000000000001",
        },
    ]
    check = scan(simulator, scan_store, STRONG)
    findings = {finding["subject_id"]: finding for finding in check["findings"]}
    truth = tenant.expected_phishing_resistant_admin_subjects(emergency_upns(simulator))
    assert set(findings) == truth == {through_group["id"]}
    assert findings[through_group["id"]]["evidence"]["roles"] == ["Exchange Administrator"]
    assert check["evidence"]["admins"] == len(admins) + 1


def make_global_admin(tenant: TenantScenario, user_id: str) -> None:
    tenant.role_assignments.append(
        {
            "id": str(uuid.uuid4()),
            "principalId": user_id,
            "roleDefinitionId": GLOBAL_ADMINISTRATOR,
            "directoryScopeId": "/",
        }
    )


def test_a_guest_admin_is_judged_without_p1_and_read_fresh_not_from_the_method_cache(
    simulator: TenantSimulator, scan_store: ScanStore
) -> None:
    tenant = simulator.tenant(NO_P1)
    guest = next(user for user in tenant.users if user["userType"] == "Guest")
    make_global_admin(tenant, guest["id"])
    tenant.authentication_methods[guest["id"]] = make_authentication_methods(guest, ["mobilePhone"], random.Random(1))
    # INCLUDE_GUESTS is off: mfa.registration leaves guests out, this check does not.
    first = scan(simulator, scan_store, NO_P1)
    assert first["status"] == "fail", first
    (finding,) = first["findings"]
    assert finding["subject_id"] == guest["id"] and finding["evidence"]["source"] == "authenticationMethods"
    assert tenant.expected_phishing_resistant_admin_subjects(emergency_upns(simulator)) == {guest["id"]}

    # The guest registers a security key; the next scan, the same day, sees it: admins' methods
    # are not taken from the fallback's one-day cache.
    tenant.authentication_methods[guest["id"]] = make_authentication_methods(guest, ["fido2"], random.Random(1))
    simulator.clear_requests()
    second = scan(simulator, scan_store, NO_P1)
    methods_read = {
        r.path.split("/")[3] for r in simulator.requests if r.tenant_id == NO_P1 and r.path.endswith("/methods")
    }
    assert methods_read == tenant_wide_role_holders(tenant)  # everyone else from the cache
    assert (second["status"], second["findings"]) == ("pass", [])
    assert tenant.expected_phishing_resistant_admin_subjects(emergency_upns(simulator)) == set()


def test_a_guest_given_a_role_between_full_reads_has_the_row_read_by_id(
    simulator: TenantSimulator, scan_store: ScanStore
) -> None:
    tenant = simulator.tenant(FRESH)
    first_at = datetime.now(UTC).replace(microsecond=0)
    scan(simulator, scan_store, FRESH, first_at)
    # A guest invited since the full read, MFA capable (so not among the filtered rows), and
    # made Global Administrator.
    guest_id = str(uuid.uuid4())
    guest = make_user(guest_id, f"vendor_{guest_id[:8]}#EXT#@fresh.example", "Vendor Guest", user_type="Guest")
    tenant.users.append(guest)
    tenant.user_registration_details.append(make_registration_detail(guest, ["mobilePhone"]))
    tenant.authentication_methods[guest_id] = make_authentication_methods(guest, ["mobilePhone"], random.Random(2))
    make_global_admin(tenant, guest_id)
    (admin,) = tenant_wide_role_holders(tenant) - {guest_id}
    simulator.clear_requests()
    second = scan(simulator, scan_store, FRESH, first_at + timedelta(hours=1))
    reads = [r for r in simulator.requests if r.tenant_id == FRESH and "userRegistrationDetails" in r.path]
    assert any("isMfaCapable" in r.query for r in reads), "the second scan should read filtered, over the roster"
    assert sorted(r.path.rsplit("/", 1)[1] for r in reads if r.in_batch) == sorted([admin, guest_id])
    findings = {finding["subject_id"]: finding for finding in second["findings"]}
    assert second["status"] == "fail"
    assert (
        set(findings)
        == {admin, guest_id}
        == tenant.expected_phishing_resistant_admin_subjects(emergency_upns(simulator))
    )
    assert findings[guest_id]["evidence"]["source"] == "userRegistrationDetails"

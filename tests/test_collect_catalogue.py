"""collect_snapshot for the full catalogue: licences, applications, GDAP, exclusions, sign-ins.

The bundled scenarios (Contoso, the partner tenant with every gap; Fabrikam, a clean customer;
Northwind, a customer without P1) and variants of them, on the simulator with Graph's limits off
and a short-windowed pacer: what is tested here is what is read, not how fast.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from azure.data.tables import TableServiceClient

from partnerguard.collect import Licences, collect_snapshot
from partnerguard.graph.client import GraphClient
from partnerguard.model import NOT_COLLECTED, TenantSnapshot, Unavailable
from partnerguard.settings import Settings
from partnerguard.storage.sign_in_aggregates import SignInStore
from testbed.azurite import AzuriteProcess
from testbed.simulator import TenantSimulator, bundled_scenarios
from testbed.simulator.ground_truth import role_principal_ids, transitive_user_ids
from testbed.simulator.scenario import TenantScenario
from tests.graph_sim import fast_pacer, run, secret_settings

pytestmark = pytest.mark.simulator

NOW = datetime.now(UTC)  # the scenarios' sign-ins are relative to the time they were loaded
CONTOSO = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
FABRIKAM = "c0ffee00-1b2c-4d3e-8f90-a1b2c3d4e5f6"
NORTHWIND = "5e1d2c3b-4a59-4687-9a0b-1c2d3e4f5a6b"
# Contoso's data under other tenant ids, with one thing changed each.
NO_APP_READ = "a0a0a0a0-1111-4222-8333-444444444444"
NO_GROUP_READ = "b0b0b0b0-1111-4222-8333-444444444444"
SKU_SAYS_P1 = "c0c0c0c0-1111-4222-8333-444444444444"

EXCLUDED_GROUP = "88daf401-6b40-43ef-a54b-0c4e010c4759"
NESTED_GROUP = "a1d82e44-e37a-5547-b8c8-be6b79ac2470"
EXCLUDED_USER = "66d22876-72fd-4202-aa96-fb1a14a0f9e7"
PRIVILEGED_ROLE_ADMIN = "e8611ab8-c189-46e8-94e1-60213ab1f814"
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
# The expensive, paced P1-only APIs, skipped when subscribedSkus shows no P1.
PACED_P1_PATHS = (
    "/v1.0/reports/authenticationMethods/userRegistrationDetails",
    "/beta/auditLogs/signIns",
)
CONDITIONAL_ACCESS_PATH = "/beta/identity/conditionalAccess/policies"  # SPEC §1: beta first


def variant(base: TenantScenario, tenant_id: str) -> TenantScenario:
    copy = base.copy()
    copy.tenant_id = tenant_id
    copy.role = "customer"
    return copy


@pytest.fixture(scope="module")
def sim() -> Iterator[TenantSimulator]:
    scenarios = {scenario.tenant_id: scenario for scenario in bundled_scenarios()}
    contoso = scenarios[CONTOSO]
    no_app_read = variant(contoso, NO_APP_READ)
    no_app_read.granted_permissions = {"User.Read.All", "Organization.Read.All", "Policy.Read.All"}
    no_group_read = variant(contoso, NO_GROUP_READ)
    no_group_read.granted_permissions = {
        "User.Read.All",
        "Organization.Read.All",
        "Policy.Read.All",
        "AuditLog.Read.All",
        "RoleManagement.Read.Directory",
        "Application.Read.All",
    }
    # subscribedSkus lists P1, but Graph's licence check (the simulator's `licences`) says no.
    sku_says_p1 = variant(contoso, SKU_SAYS_P1)
    sku_says_p1.licences = []
    tenants = [*scenarios.values(), no_app_read, no_group_read, sku_says_p1]
    with TenantSimulator(tenants, enforce_limits=False) as simulator:
        yield simulator


def collect(
    sim: TenantSimulator,
    tenant_id: str,
    settings: Settings | None = None,
    sign_ins: SignInStore | None = None,
) -> TenantSnapshot:
    settings = settings or secret_settings(sim)

    async def go() -> TenantSnapshot:
        async with GraphClient(settings, tenant_id, pacer=fast_pacer(), retry_delay_seconds=0.05) as client:
            return await collect_snapshot(client, settings, tenant_id, NOW, sign_ins=sign_ins)

    return run(go())


def paths_of(sim: TenantSimulator, tenant_id: str) -> list[str]:
    return [record.path for record in sim.requests if record.tenant_id == tenant_id]


# -- licences -----------------------------------------------------------------------------------


def sku(part_number: str, plans: dict[str, str], status: str = "Enabled") -> dict[str, object]:
    return {
        "skuPartNumber": part_number,
        "capabilityStatus": status,
        "servicePlans": [{"servicePlanName": name, "provisioningStatus": state} for name, state in plans.items()],
    }


def test_p1_comes_from_a_provisioned_service_plan_of_a_usable_sku() -> None:
    business_premium = sku("SPB", {"AAD_PREMIUM": "Success", "EXCHANGE_S_STANDARD": "Success"})
    assert Licences.from_skus([business_premium]).entra_premium
    assert Licences.from_skus([business_premium]).names == {"SPB", "AAD_PREMIUM", "EXCHANGE_S_STANDARD"}
    assert Licences.from_skus([sku("EMSPREMIUM", {"AAD_PREMIUM_P2": "Success"})]).entra_premium
    assert Licences.from_skus([sku("SPB", {"AAD_PREMIUM": "Success"}, status="Warning")]).entra_premium
    # A SKU named AAD_PREMIUM whose plan is switched off, or a suspended SKU, licenses nothing.
    disabled_plan = Licences.from_skus([sku("AAD_PREMIUM", {"AAD_PREMIUM": "Disabled"})])
    assert not disabled_plan.entra_premium
    assert disabled_plan.names == {"AAD_PREMIUM"}
    assert not Licences.from_skus([sku("SPB", {"AAD_PREMIUM": "Success"}, status="Suspended")]).entra_premium
    assert not Licences.from_skus([sku("O365_BUSINESS_ESSENTIALS", {"EXCHANGE_S_STANDARD": "Success"})]).entra_premium
    assert not Licences.from_skus([{"servicePlans": "not a list"}, {"capabilityStatus": None}]).entra_premium


def test_licences_are_collected(sim: TenantSimulator) -> None:
    snapshot = collect(sim, CONTOSO)
    assert snapshot.licences == frozenset({"O365_BUSINESS_ESSENTIALS", "EXCHANGE_S_STANDARD", "AAD_PREMIUM"})


def test_without_p1_no_paced_p1_api_is_called(sim: TenantSimulator, sign_in_store: SignInStore) -> None:
    sim.clear_requests()
    snapshot = collect(sim, NORTHWIND, sign_ins=sign_in_store)
    assert not set(paths_of(sim, NORTHWIND)) & set(PACED_P1_PATHS)
    # The policies are one request: asked anyway, and Graph's licence 403 names the licence.
    assert paths_of(sim, NORTHWIND).count(CONDITIONAL_ACCESS_PATH) == 1
    for field in (snapshot.registration_details, snapshot.conditional_access_policies, snapshot.sign_in_aggregates):
        assert isinstance(field, Unavailable)
        assert field.reason_code == "licence:AAD_PREMIUM"
    assert snapshot.security_defaults_enabled is not None


def test_a_licence_403_wins_over_subscribed_skus(sim: TenantSimulator) -> None:
    sim.clear_requests()
    snapshot = collect(sim, SKU_SAYS_P1)
    assert isinstance(snapshot.licences, frozenset) and "AAD_PREMIUM" in snapshot.licences
    assert "/v1.0/reports/authenticationMethods/userRegistrationDetails" in paths_of(sim, SKU_SAYS_P1)
    assert isinstance(snapshot.registration_details, Unavailable)
    assert snapshot.registration_details.reason_code == "licence:AAD_PREMIUM"
    # ...and the report's licence 403 sends every user to the fallback.
    assert isinstance(snapshot.user_auth_methods, dict)


def test_no_directory_read_access_names_directory_read_all(sim: TenantSimulator) -> None:
    body = json.dumps(
        {"error": {"code": "Authentication_ApplicationHasNoDirectoryReadAccess", "message": "no directory access"}}
    )
    sim.inject_fault(r"^/v1\.0/reports/authenticationMethods/userRegistrationDetails$", status=403, body=body)
    try:
        snapshot = collect(sim, FABRIKAM)
    finally:
        sim.faults.clear()
    assert isinstance(snapshot.registration_details, Unavailable)
    assert snapshot.registration_details.reason_code == "permission:Directory.Read.All"


# -- applications and service principals --------------------------------------------------------


def test_applications_and_service_principals_are_read_with_select(sim: TenantSimulator) -> None:
    tenant = sim.tenant(CONTOSO)
    sim.clear_requests()
    snapshot = collect(sim, CONTOSO)
    assert not isinstance(snapshot.applications, Unavailable)
    assert not isinstance(snapshot.service_principals, Unavailable)
    assert [app["id"] for app in snapshot.applications] == [app["id"] for app in tenant.applications]
    assert [sp["id"] for sp in snapshot.service_principals] == [sp["id"] for sp in tenant.service_principals]
    for app, source in zip(snapshot.applications, tenant.applications, strict=True):
        assert app["passwordCredentials"] == source["passwordCredentials"]
        assert app["keyCredentials"] == source["keyCredentials"]
        assert "requiredResourceAccess" not in app  # $select: only what the checks read
    assert all("servicePrincipalType" in sp for sp in snapshot.service_principals)
    queries = {r.path: r.query for r in sim.requests if r.tenant_id == CONTOSO}
    assert "%24top=999" in queries["/v1.0/applications"] or "$top=999" in queries["/v1.0/applications"]


def test_a_missing_permission_is_named(sim: TenantSimulator) -> None:
    snapshot = collect(sim, NO_APP_READ)
    for field in (snapshot.applications, snapshot.service_principals):
        assert isinstance(field, Unavailable)
        assert field.reason_code == "permission:Application.Read.All"
    assert not isinstance(snapshot.users, Unavailable)


# -- GDAP ---------------------------------------------------------------------------------------


def test_gdap_is_read_in_the_partner_tenant(sim: TenantSimulator) -> None:
    snapshot = collect(sim, CONTOSO)
    assert snapshot.role == "partner"
    relationships = snapshot.delegated_admin_relationships
    assert not isinstance(relationships, Unavailable)
    assert [r["id"] for r in relationships] == [r["id"] for r in sim.tenant(CONTOSO).delegated_admin_relationships]
    assert any(r.get("@odata.type") == "#microsoft.graph.resellerDelegatedAdminRelationship" for r in relationships)


def test_gdap_is_not_read_in_customer_tenants(sim: TenantSimulator) -> None:
    sim.clear_requests()
    snapshot = collect(sim, FABRIKAM)
    assert snapshot.role == "customer"
    assert snapshot.delegated_admin_relationships is NOT_COLLECTED  # the engine says scope:partner-only
    assert "/v1.0/tenantRelationships/delegatedAdminRelationships" not in paths_of(sim, FABRIKAM)


def test_gdap_outside_the_public_cloud_is_cloud_unavailable(sim: TenantSimulator) -> None:
    settings = secret_settings(sim, AZURE_CLOUD="usgov")
    sim.clear_requests()
    snapshot = collect(sim, CONTOSO, settings=settings)
    assert snapshot.cloud == "usgov"
    assert isinstance(snapshot.delegated_admin_relationships, Unavailable)
    assert snapshot.delegated_admin_relationships.reason_code == "cloud"
    assert "/v1.0/tenantRelationships/delegatedAdminRelationships" not in paths_of(sim, CONTOSO)


# -- Conditional Access exclusions --------------------------------------------------------------


def test_exclusions_are_resolved_transitively_and_named(sim: TenantSimulator) -> None:
    tenant = sim.tenant(CONTOSO)
    sim.clear_requests()
    snapshot = collect(sim, CONTOSO)

    groups = snapshot.group_members
    assert isinstance(groups, dict)
    assert set(groups) == {EXCLUDED_GROUP}  # only what candidate policies exclude
    # Users of the nested group come through; the nested group itself is no user.
    assert groups[EXCLUDED_GROUP] == transitive_user_ids(tenant, EXCLUDED_GROUP)
    assert NESTED_GROUP not in groups[EXCLUDED_GROUP]
    assert transitive_user_ids(tenant, NESTED_GROUP) <= groups[EXCLUDED_GROUP]

    roles = snapshot.role_members
    assert isinstance(roles, dict)
    assert set(roles) == {PRIVILEGED_ROLE_ADMIN, GLOBAL_ADMIN}
    for role_id in roles:
        assert roles[role_id] == role_principal_ids(tenant, role_id)

    names = snapshot.principal_names
    assert names[EXCLUDED_USER] == "Backup Service"
    group = next(g for g in tenant.groups if g["id"] == EXCLUDED_GROUP)
    assert names[EXCLUDED_GROUP] == group["displayName"]  # GET /groups/{id}?$select=id,displayName
    assert names["8e81973e-0bec-47b0-b898-d190f9ebdacc"] == "Patti Fernandez"  # a role's principal
    for member in groups[EXCLUDED_GROUP]:
        assert names[member]

    # Group members and role assignments were read through $batch, role by role with a filter.
    members_reads = [r for r in sim.requests if r.tenant_id == CONTOSO and r.path.endswith("/transitiveMembers")]
    assert members_reads and all(r.in_batch for r in members_reads)
    role_reads = [
        r for r in sim.requests if r.tenant_id == CONTOSO and r.path == "/v1.0/roleManagement/directory/roleAssignments"
    ]
    by_role = [r for r in role_reads if "roleDefinitionId" in r.query]
    assert len(by_role) == 2 and all(r.in_batch for r in by_role)
    # The one other read is the fallback's: tenant-wide assignments, for its notion of admin.
    assert [r.query for r in role_reads if r not in by_role] == ["$filter=directoryScopeId%20eq%20'%2F'"]


def test_an_unreadable_group_leaves_the_rest(sim: TenantSimulator) -> None:
    snapshot = collect(sim, NO_GROUP_READ)
    assert isinstance(snapshot.group_members, Unavailable)
    assert snapshot.group_members.reason_code == "permission:GroupMember.Read.All"
    assert isinstance(snapshot.role_members, dict)
    assert snapshot.principal_names[EXCLUDED_USER] == "Backup Service"


def test_no_exclusion_reads_when_no_candidate_excludes_anyone(sim: TenantSimulator) -> None:
    sim.clear_requests()
    snapshot = collect(sim, FABRIKAM)
    assert snapshot.group_members == {}
    assert snapshot.role_members == {}
    assert not any(path.endswith("/transitiveMembers") for path in paths_of(sim, FABRIKAM))


# -- sign-ins -----------------------------------------------------------------------------------


@pytest.fixture
def sign_in_store(azurite: AzuriteProcess, table_prefix: str) -> Iterator[SignInStore]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    store = SignInStore(service, table_prefix)
    store.ensure_tables()
    yield store
    for table in (store.aggregates_table, store.watermarks_table):
        service.delete_table(table.table_name)
    store.close()
    service.close()


def test_sign_ins_are_collected_with_a_store_and_p1(sim: TenantSimulator, sign_in_store: SignInStore) -> None:
    sim.clear_requests()
    snapshot = collect(sim, CONTOSO, sign_ins=sign_in_store)
    aggregates = snapshot.sign_in_aggregates
    assert not isinstance(aggregates, Unavailable), aggregates
    assert {aggregate.rule for aggregate in aggregates} >= {"legacy-auth.sign-ins", "sam.password-grant"}
    assert "/beta/auditLogs/signIns" in paths_of(sim, CONTOSO)


def test_without_a_store_sign_ins_are_not_collected(sim: TenantSimulator) -> None:
    sim.clear_requests()
    snapshot = collect(sim, CONTOSO)
    assert snapshot.sign_in_aggregates is NOT_COLLECTED
    assert "/beta/auditLogs/signIns" not in paths_of(sim, CONTOSO)

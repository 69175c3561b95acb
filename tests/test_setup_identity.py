"""scripts/setup_identity.py, run for real against a stand-in `az` (tests/infra_fake_az.py) that
records every call and keeps a tenant's Entra state in a file.

What the script must guarantee: the Graph app ends up with exactly the application permissions
the code needs (introspected from the checks and the Graph request table, not copied), declared
and granted; the deployment's Graph identity is its federated credential for the right cloud,
and the sign-in identity the sign-in app's, one credential per deployment, never removing
another deployment's; no client secret is ever created and no implicit flow is left on; a second
run changes nothing; a dry run changes nothing and shows what it would do; customers are
onboarded by link or command, one tenant or many.

The tests that prove those guarantees run the script as a process against the stand-in on PATH.
Variations (national clouds, drift to repair) drive the script's `Setup` in-process over the
same stand-in's logic (`infra_fake_az.run`), since every `az` process costs a Python start-up.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from partnerguard.clouds import CLOUDS
from tests.infra_fake_az import FakeAzError, parse, run
from tests.infra_fake_azd import EnvironmentStore
from tests.infra_tenant_harness import (
    DEFAULT_ROLE,
    GRAPH_APP_ID,
    SCRIPT,
    SCRIPT_ENVIRONMENT,
    TENANT_ID,
    USER_ID,
    FakeTenant,
    creates_a_secret,
    empty_tenant,
    graph_service_principal,
    is_change,
    needed_permissions,
    role_id,
)

GRAPH_IDENTITY = "3c2b1a09-8f7e-4d6c-b5a4-938271605f4e"
SIGNIN_IDENTITY = "5d4c3b2a-1908-4f7e-8d6c-5b4a39281706"
SERVICE_IDENTITY = "9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a5b4"
APP_HOSTNAME = "func-pg-abc123.azurewebsites.net"
ENVIRONMENT = ("--environment", "pg-prod", "--resource-token", "abc123")
ISSUER = f"{CLOUDS['public'].authority_host}/{TENANT_ID}/v2.0"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("setup_identity", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first: dataclasses look their module up while the class is being made.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tenant(tmp_path: Path) -> Iterator[FakeTenant]:
    yield FakeTenant.create(tmp_path)


def output_values(completed: subprocess.CompletedProcess[str]) -> dict[str, str]:
    lines = [line.split("=", 1) for line in completed.stdout.splitlines() if "=" in line and " " not in line]
    return {key: value for key, value in lines}


def deployed(*extra: str) -> tuple[str, ...]:
    """The arguments of a run after the deployment: its identities, host name and names."""
    return (
        "--graph-identity-principal-id",
        GRAPH_IDENTITY,
        "--signin-identity-principal-id",
        SIGNIN_IDENTITY,
        "--identity-principal-id",
        SERVICE_IDENTITY,
        "--app-hostname",
        APP_HOSTNAME,
        *ENVIRONMENT,
        *extra,
    )


def full_setup(tenant: FakeTenant, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return tenant.run(*deployed(*extra), env=env)


def planned_calls(completed: subprocess.CompletedProcess[str]) -> list[list[str]]:
    """The az argv of each change a dry run printed."""
    prefix = "would run: az "
    return [shlex.split(line[len(prefix) :]) for line in completed.stdout.splitlines() if line.startswith(prefix)]


class InProcessAz:
    """The script's AzureCli, answered by the stand-in's logic without starting processes."""

    def __init__(self, state: dict[str, Any], failure: type[Exception], dry_run: bool = False) -> None:
        self.state = state
        self.failure = failure  # what the script's AzureCli raises when az exits non-zero
        self.dry_run = dry_run
        self.calls: list[list[str]] = []
        self.planned: list[list[str]] = []

    def read(self, *args: str) -> Any:
        self.calls.append(list(args))
        try:
            result = run([*args, "--output", "json"], self.state)
        except FakeAzError as error:
            raise self.failure(str(error)) from error
        return None if result is None else json.loads(json.dumps(result))  # a copy, as from a process

    def change(self, *args: str) -> Any:
        if self.dry_run:
            self.planned.append(list(args))
            return None
        return self.read(*args)

    def login(self, tenant_id: str, device_code: bool) -> None:
        self.read("login", "--tenant", tenant_id, "--allow-no-subscriptions")


def setup_in_process(
    tenant: FakeTenant, monkeypatch: pytest.MonkeyPatch, *args: str, dry_run: bool = False
) -> InProcessAz:
    """Runs the partner set-up in-process on the tenant's state file, and saves the state."""
    for name in SCRIPT_ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    script = load_script()
    state = tenant.state
    az = InProcessAz(state, script.SetupError, dry_run)
    script.Setup(az, script.parse_options(list(args))).setup_partner()
    tenant.write_state(state)
    return az


def deployment(name: str, token: str) -> tuple[str, ...]:
    """Another azd environment's run after its deployment: identities of its own."""
    return (
        "--graph-identity-principal-id",
        str(uuid.uuid5(uuid.NAMESPACE_OID, f"{name}-graph")),
        "--signin-identity-principal-id",
        str(uuid.uuid5(uuid.NAMESPACE_OID, f"{name}-signin")),
        "--identity-principal-id",
        str(uuid.uuid5(uuid.NAMESPACE_OID, f"{name}-service")),
        "--app-hostname",
        f"func-pg-{token}.azurewebsites.net",
        "--environment",
        name,
        "--resource-token",
        token,
    )


# -- the permission list and the clouds are the code's ----------------------------------------


def test_the_scripts_permissions_are_exactly_what_the_code_needs() -> None:
    script = load_script()
    assert set(script.GRAPH_PERMISSIONS) == needed_permissions()
    assert len(script.GRAPH_PERMISSIONS) == len(set(script.GRAPH_PERMISSIONS))


def test_the_scripts_clouds_are_partnerguards_clouds() -> None:
    script = load_script()
    assert set(script.CLOUDS) == set(CLOUDS)
    for name, cloud in CLOUDS.items():
        hosts = script.CLOUDS[name]
        assert (hosts.authority, hosts.graph, hosts.assertion_audience) == (
            cloud.authority_host,
            cloud.graph_endpoint,
            cloud.assertion_audience,
        )


# -- the partner tenant, the script as a process ----------------------------------------------


def test_first_run_sets_up_secretless_apps_with_exactly_the_needed_permissions_and_a_second_changes_nothing(
    tenant: FakeTenant,
) -> None:
    values = output_values(full_setup(tenant))

    app = tenant.app("PartnerGuard")
    assert values["PARTNERGUARD_GRAPH_CLIENT_ID"] == app["appId"]
    assert app["signInAudience"] == "AzureADMultipleOrgs"
    assert app["passwordCredentials"] == [] and app["keyCredentials"] == []
    wanted = {role_id(p) for p in needed_permissions()}
    (graph_access,) = [r for r in app["requiredResourceAccess"] if r["resourceAppId"] == GRAPH_APP_ID]
    assert {a["id"] for a in graph_access["resourceAccess"]} == wanted
    assert {a["type"] for a in graph_access["resourceAccess"]} == {"Role"}
    assert tenant.graph_roles_granted(app["appId"]) == wanted
    # The Graph identity, and only it, signs in as the Graph app: never the service identity.
    (credential,) = app["federatedIdentityCredentials"]
    assert credential["name"] == "partnerguard-pg-prod-abc123"
    assert credential["issuer"] == ISSUER
    assert credential["subject"] == GRAPH_IDENTITY
    assert credential["audiences"] == [CLOUDS["public"].assertion_audience]

    # The sign-in app of App Service Authentication: this tenant only, assigned users, and its
    # credential is the sign-in identity - no secret, no implicit flow.
    signin = tenant.app("PartnerGuard sign-in")
    assert values["PARTNERGUARD_SIGNIN_CLIENT_ID"] == signin["appId"]
    assert signin["signInAudience"] == "AzureADMyOrg"
    assert signin["web"]["redirectUris"] == [f"https://{APP_HOSTNAME}/.auth/login/aad/callback"]
    no_implicit_flow = {"enableIdTokenIssuance": False, "enableAccessTokenIssuance": False}
    assert signin["web"]["implicitGrantSettings"] == no_implicit_flow
    assert tenant.credentials("PartnerGuard sign-in") == {"partnerguard-pg-prod-abc123": SIGNIN_IDENTITY}
    assert signin["identifierUris"] == [f"api://{signin['appId']}"]
    assert signin["api"]["requestedAccessTokenVersion"] == 2
    assert signin["passwordCredentials"] == [] and signin["requiredResourceAccess"] == []
    service_principal = tenant.service_principal_of(signin["appId"])
    assert service_principal["appRoleAssignmentRequired"] is True
    assigned = [a for a in tenant.state["appRoleAssignments"] if a["resourceId"] == service_principal["id"]]
    assert [(a["principalId"], a["appRoleId"]) for a in assigned] == [(USER_ID, DEFAULT_ROLE)]

    assert not any(creates_a_secret(call) for call in tenant.calls())

    # The second run finds everything in place (by name: it is given no ids) and changes nothing.
    state = tenant.state
    tenant.forget_calls()
    again = output_values(full_setup(tenant))
    assert tenant.calls(), "the second run should still read the tenant"
    assert tenant.changes() == []
    assert again == values
    assert tenant.state == state


def test_dry_run_prints_every_change_and_makes_none(tenant: FakeTenant) -> None:
    state = tenant.state

    planned = planned_calls(full_setup(tenant, "--dry-run"))

    assert tenant.calls(), "a dry run still reads the tenant"
    assert tenant.changes() == []
    assert tenant.state == state
    planned_words = [parse(call)[0] for call in planned]
    assert planned_words.count(["ad", "app", "create"]) == 2
    assert planned_words.count(["ad", "app", "federated-credential", "create"]) == 2
    bodies = [json.loads(parse(call)[1]["--body"][0]) for call in planned if parse(call)[0] == ["rest"]]
    graph_roles = {body["appRoleId"] for body in bodies if body["appRoleId"] != DEFAULT_ROLE}
    assert graph_roles == {role_id(p) for p in needed_permissions()}
    assert not any(creates_a_secret(call) for call in planned)


def test_before_the_deployment_it_creates_the_apps_and_after_it_adds_identities_and_redirect(
    tenant: FakeTenant,
) -> None:
    before = tenant.run()
    assert "run this again after the deployment" in before.stderr
    assert tenant.app("PartnerGuard")["federatedIdentityCredentials"] == []
    assert tenant.app("PartnerGuard sign-in")["federatedIdentityCredentials"] == []
    tenant.forget_calls()

    full_setup(tenant)

    changes = [parse(call)[0] for call in tenant.changes()]
    assert changes == [
        ["ad", "app", "federated-credential", "create"],
        ["ad", "app", "update"],
        ["ad", "app", "federated-credential", "create"],
    ]
    assert tenant.credentials("PartnerGuard") == {"partnerguard-pg-prod-abc123": GRAPH_IDENTITY}
    assert tenant.credentials("PartnerGuard sign-in") == {"partnerguard-pg-prod-abc123": SIGNIN_IDENTITY}
    signin = tenant.app("PartnerGuard sign-in")
    assert signin["web"]["redirectUris"] == [f"https://{APP_HOSTNAME}/.auth/login/aad/callback"]


def test_azd_mode_checks_azd_and_hands_the_app_ids_to_the_environment_being_provisioned(
    tenant: FakeTenant,
) -> None:
    EnvironmentStore(tenant.project).create("pg-test")  # azd's default environment: not this one
    EnvironmentStore(tenant.project).create("pg-prod")
    values = output_values(full_setup(tenant, "--azd", env={"AZURE_ENV_NAME": "pg-prod"}))

    into_pg_prod = ["--environment", "pg-prod"]
    assert tenant.azd_calls() == [
        ["version", "--output", "json"],
        ["env", "set", "PARTNERGUARD_GRAPH_CLIENT_ID", values["PARTNERGUARD_GRAPH_CLIENT_ID"], *into_pg_prod],
        ["env", "set", "PARTNERGUARD_SIGNIN_CLIENT_ID", values["PARTNERGUARD_SIGNIN_CLIENT_ID"], *into_pg_prod],
    ]
    tenant.forget_calls()

    # azd's hooks export the azd environment, so the next run knows the apps by client id.
    full_setup(tenant, "--azd", env={**values, "AZURE_ENV_NAME": "pg-prod"})

    assert tenant.azd_calls() == [["version", "--output", "json"]]
    assert tenant.changes() == []
    saved = EnvironmentStore(tenant.project)
    assert saved.load("pg-prod")["PARTNERGUARD_GRAPH_CLIENT_ID"] == values["PARTNERGUARD_GRAPH_CLIENT_ID"]
    assert "PARTNERGUARD_GRAPH_CLIENT_ID" not in saved.load("pg-test")


@pytest.mark.parametrize(
    ("version", "accepted"),
    [("1.10.1", False), ("1.10.2-beta.1", False), ("1.10.2", True), ("1.29.0", True), ("0.0.0-dev.0", True)],
)
def test_azd_mode_refuses_an_azd_that_would_not_read_the_ids_back(
    tenant: FakeTenant, version: str, accepted: bool
) -> None:
    EnvironmentStore(tenant.project).create("pg-prod")
    env = {"FAKE_AZD_VERSION": version, "AZURE_ENV_NAME": "pg-prod"}

    completed = tenant.run("--azd", env=env, expect=0 if accepted else 1)

    if accepted:
        app_id = tenant.app("PartnerGuard")["appId"]
        assert EnvironmentStore(tenant.project).load("pg-prod")["PARTNERGUARD_GRAPH_CLIENT_ID"] == app_id
    else:
        assert "1.10.2" in completed.stderr and "#4363" in completed.stderr
        assert tenant.calls() == [], "it stops before touching the tenant"
        assert [call[:2] for call in tenant.azd_calls()] == [["version", "--output"]]


def test_azd_mode_refuses_an_az_signed_in_to_another_tenant_than_the_deployments(tenant: FakeTenant) -> None:
    """A partner's az is often signed in to a customer tenant. The deployment's tenant (azd's
    AZURE_TENANT_ID, main.bicep's partnerTenantId output) is where the apps must be: apps created
    in the tenant az happens to be in would give the function app a client id that tenant does not
    know, and the federated credentials an issuer it never trusts."""
    EnvironmentStore(tenant.project).create("pg-prod")
    other = "3c2b1a09-8f7e-4d6c-9b5a-4e3d2c1b0a99"
    env = {"AZURE_ENV_NAME": "pg-prod", "AZURE_TENANT_ID": other}

    completed = tenant.run(*deployed("--azd"), env=env, expect=1)

    assert other in completed.stderr and TENANT_ID in completed.stderr and "az login --tenant" in completed.stderr
    assert tenant.changes() == [], "nothing is created or changed in the wrong tenant"
    assert [call[:2] for call in tenant.azd_calls()] == [["version", "--output"]], "no app id handed to azd"

    # Signed in to the deployment's tenant (any case), it goes ahead.
    tenant.run(*deployed("--azd"), env={**env, "AZURE_TENANT_ID": TENANT_ID.upper()})
    assert tenant.app("PartnerGuard")["appId"]


# -- several deployments share the two apps -------------------------------------------------------


def test_two_environments_and_a_rerun_leave_every_federated_credential_in_place(
    tenant: FakeTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = deployment("pg-prod", "tok1"), deployment("pg-test", "tok2")
    setup_in_process(tenant, monkeypatch, *first)
    setup_in_process(tenant, monkeypatch, *second)
    both = {
        "PartnerGuard": tenant.credentials("PartnerGuard"),
        "PartnerGuard sign-in": tenant.credentials("PartnerGuard sign-in"),
    }
    assert set(both["PartnerGuard"]) == {"partnerguard-pg-prod-tok1", "partnerguard-pg-test-tok2"}
    assert set(both["PartnerGuard sign-in"]) == {"partnerguard-pg-prod-tok1", "partnerguard-pg-test-tok2"}
    assert len(set(both["PartnerGuard"].values())) == 2

    az = setup_in_process(tenant, monkeypatch, *first)  # the first environment again

    assert [call for call in az.calls if is_change(call)] == []
    assert tenant.credentials("PartnerGuard") == both["PartnerGuard"]
    assert tenant.credentials("PartnerGuard sign-in") == both["PartnerGuard sign-in"]


def test_a_recreated_identity_updates_its_own_deployments_credential_only(
    tenant: FakeTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_in_process(tenant, monkeypatch, *deployment("pg-prod", "tok1"))
    setup_in_process(tenant, monkeypatch, *deployment("pg-test", "tok2"))
    other = tenant.credentials("PartnerGuard")["partnerguard-pg-test-tok2"]
    recreated = "11112222-3333-4444-8555-666677778888"

    rerun = list(deployment("pg-prod", "tok1"))
    rerun[1] = recreated  # the Graph identity of pg-prod, deleted and deployed again
    setup_in_process(tenant, monkeypatch, *rerun)

    assert tenant.credentials("PartnerGuard") == {
        "partnerguard-pg-prod-tok1": recreated,
        "partnerguard-pg-test-tok2": other,
    }


def test_the_service_identitys_old_credential_is_removed_and_no_other_deployments(
    tenant: FakeTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before the Graph identity, one identity per deployment was the Graph app's credential
    (one fixed name). Upgrading removes the credential that trusts this deployment's service
    identity - it must no longer sign in as the Graph app - and leaves another deployment's."""
    setup_in_process(tenant, monkeypatch)  # the apps, before any deployment
    state = tenant.state
    app = next(a for a in state["applications"] if a["displayName"] == "PartnerGuard")
    another_deployments_identity = "22223333-4444-4555-8666-777788889999"
    app["federatedIdentityCredentials"] = [
        {"id": "1", "name": "partnerguard-managed-identity", "issuer": ISSUER, "subject": SERVICE_IDENTITY,
         "audiences": ["api://AzureADTokenExchange"]},
        {"id": "2", "name": "someone-elses", "issuer": ISSUER, "subject": another_deployments_identity,
         "audiences": ["api://AzureADTokenExchange"]},
    ]  # fmt: skip
    tenant.write_state(state)

    setup_in_process(tenant, monkeypatch, *deployed())

    assert tenant.credentials("PartnerGuard") == {
        "partnerguard-pg-prod-abc123": GRAPH_IDENTITY,
        "someone-elses": another_deployments_identity,
    }


def test_at_twenty_credentials_it_stops_and_says_so_removing_nothing(
    tenant: FakeTenant, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_in_process(tenant, monkeypatch)
    state = tenant.state
    app = next(a for a in state["applications"] if a["displayName"] == "PartnerGuard")
    app["federatedIdentityCredentials"] = [
        {"id": str(n), "name": f"env-{n}", "issuer": ISSUER, "subject": str(uuid.UUID(int=n + 1)),
         "audiences": ["api://AzureADTokenExchange"]}
        for n in range(20)
    ]  # fmt: skip
    tenant.write_state(state)
    before = tenant.credentials("PartnerGuard")

    with pytest.raises(Exception, match="20 federated credentials") as refused:
        setup_in_process(tenant, monkeypatch, *deployed())
    assert type(refused.value).__name__ == "SetupError"

    assert tenant.credentials("PartnerGuard") == before


def test_at_twenty_the_service_identitys_old_credential_makes_room_for_the_graph_identitys(
    tenant: FakeTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_in_process(tenant, monkeypatch)
    state = tenant.state
    app = next(a for a in state["applications"] if a["displayName"] == "PartnerGuard")
    others = [
        {"id": str(n), "name": f"env-{n}", "issuer": ISSUER, "subject": str(uuid.UUID(int=n + 1)),
         "audiences": ["api://AzureADTokenExchange"]}
        for n in range(19)
    ]  # fmt: skip
    legacy = {"id": "legacy", "name": "partnerguard-managed-identity", "issuer": ISSUER, "subject": SERVICE_IDENTITY,
              "audiences": ["api://AzureADTokenExchange"]}  # fmt: skip
    app["federatedIdentityCredentials"] = [*others, legacy]
    tenant.write_state(state)

    setup_in_process(tenant, monkeypatch, *deployed())

    credentials = tenant.credentials("PartnerGuard")
    assert len(credentials) == 20
    assert credentials["partnerguard-pg-prod-abc123"] == GRAPH_IDENTITY
    assert "partnerguard-managed-identity" not in credentials
    assert {c["name"] for c in others} <= set(credentials)


def test_without_a_deployment_name_the_credential_is_named_after_the_identity(
    tenant: FakeTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_in_process(tenant, monkeypatch, "--graph-identity-principal-id", GRAPH_IDENTITY)

    assert tenant.credentials("PartnerGuard") == {f"partnerguard-{GRAPH_IDENTITY}": GRAPH_IDENTITY}


# -- drift and variations, in-process -------------------------------------------------------


def test_permissions_the_code_does_not_need_are_removed_and_revoked(
    tenant: FakeTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_in_process(tenant, monkeypatch, *deployed())
    state = tenant.state
    (app,) = [a for a in state["applications"] if a["displayName"] == "PartnerGuard"]
    app["requiredResourceAccess"][0]["resourceAccess"].append({"id": role_id("Mail.Send"), "type": "Role"})
    principal = next(sp["id"] for sp in state["servicePrincipals"] if sp["appId"] == app["appId"])
    graph = graph_service_principal()["id"]
    state["appRoleAssignments"].append(
        {"id": "extra-grant", "principalId": principal, "resourceId": graph, "appRoleId": role_id("Mail.Send")}
    )
    tenant.write_state(state)

    setup_in_process(tenant, monkeypatch, *deployed())

    wanted = {role_id(p) for p in needed_permissions()}
    app = tenant.app("PartnerGuard")
    assert {a["id"] for a in app["requiredResourceAccess"][0]["resourceAccess"]} == wanted
    assert tenant.graph_roles_granted(app["appId"]) == wanted


def test_a_sign_in_app_with_the_implicit_flow_on_gets_it_switched_off(
    tenant: FakeTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_in_process(tenant, monkeypatch, *deployed())
    state = tenant.state
    signin = next(a for a in state["applications"] if a["displayName"] == "PartnerGuard sign-in")
    signin["web"]["implicitGrantSettings"] = {"enableIdTokenIssuance": True, "enableAccessTokenIssuance": True}
    tenant.write_state(state)

    setup_in_process(tenant, monkeypatch, *deployed())

    settings = tenant.app("PartnerGuard sign-in")["web"]["implicitGrantSettings"]
    assert settings == {"enableIdTokenIssuance": False, "enableAccessTokenIssuance": False}


def test_an_existing_client_secret_is_reported_and_left_alone(
    tenant: FakeTenant, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_in_process(tenant, monkeypatch)
    state = tenant.state
    app = next(a for a in state["applications"] if a["displayName"] == "PartnerGuard")
    app["passwordCredentials"] = [{"keyId": "6d5c4b3a-2918-4706-b5f4-e3d2c1b0a9f8", "displayName": "old"}]
    tenant.write_state(state)
    capsys.readouterr()

    az = setup_in_process(tenant, monkeypatch)

    assert "1 client secret" in capsys.readouterr().err
    assert [call for call in az.calls if is_change(call)] == []


def test_signed_in_as_a_service_principal_it_leaves_user_assignment_to_the_portal(
    tenant: FakeTenant, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tenant.state
    del state["userId"]
    tenant.write_state(state)

    setup_in_process(tenant, monkeypatch)

    assert "assign the dashboard's users in the portal" in capsys.readouterr().err
    signin = tenant.app("PartnerGuard sign-in")
    resource = tenant.service_principal_of(signin["appId"])["id"]
    assert [a for a in tenant.state["appRoleAssignments"] if a["resourceId"] == resource] == []


@pytest.mark.parametrize("cloud", sorted(CLOUDS))
def test_each_national_cloud_gets_its_own_issuer_audience_and_graph(
    tenant: FakeTenant, monkeypatch: pytest.MonkeyPatch, cloud: str
) -> None:
    az = setup_in_process(tenant, monkeypatch, "--cloud", cloud, *deployed())

    for app_name in ("PartnerGuard", "PartnerGuard sign-in"):
        (credential,) = tenant.app(app_name)["federatedIdentityCredentials"]
        assert credential["issuer"] == f"{CLOUDS[cloud].authority_host}/{TENANT_ID}/v2.0"
        assert credential["audiences"] == [CLOUDS[cloud].assertion_audience]
    urls = [parse(call)[1]["--url"][0] for call in az.calls if parse(call)[0] == ["rest"]]
    assert urls and all(url.startswith(f"{CLOUDS[cloud].graph_endpoint}/v1.0/") for url in urls)


# -- customer tenants -------------------------------------------------------------------------

CUSTOMERS = ("c0ffee00-1111-4222-8333-444455556666", "c0ffee00-7777-4888-9999-aaaabbbbcccc")
PARTNER_APP_ID = "1d2c3b4a-5968-4776-8594-a3b2c1d0e9f8"


def customer_tenant(tenant_id: str) -> dict[str, Any]:
    """The stand-in as a customer tenant: no apps of its own, the partner's app known by client id."""
    state = empty_tenant(tenant_id)
    state["multiTenantAppIds"] = [PARTNER_APP_ID]
    return state


def test_consent_in_a_customer_tenant_grants_exactly_the_needed_permissions_once(tenant: FakeTenant) -> None:
    tenant.write_state(customer_tenant(CUSTOMERS[0]))

    completed = tenant.run("consent", "--app-id", PARTNER_APP_ID)

    assert "consented" in completed.stdout
    assert tenant.graph_roles_granted(PARTNER_APP_ID) == {role_id(p) for p in needed_permissions()}
    assert tenant.state["applications"] == []
    assert not any(creates_a_secret(call) for call in tenant.calls())
    tenant.forget_calls()

    tenant.run("consent", "--app-id", PARTNER_APP_ID)

    assert tenant.changes() == []


def test_consent_in_many_tenants_signs_in_to_each_and_goes_on_past_a_failure(tenant: FakeTenant) -> None:
    """A partner admin (GDAP, or an admin of each customer) consents for a list of customers in
    one run; a tenant that cannot be reached is reported, and the others still consent."""
    partner = empty_tenant()
    partner["otherTenants"] = {customer: customer_tenant(customer) for customer in CUSTOMERS}
    tenant.write_state(partner)
    unreachable = "c0ffee00-dddd-4eee-8fff-000011112222"

    completed = tenant.run(
        "consent", "--app-id", PARTNER_APP_ID, "--tenant", CUSTOMERS[0], "--tenant", unreachable,
        "--tenant", CUSTOMERS[1], expect=1,
    )  # fmt: skip

    assert f"consented: tenant {CUSTOMERS[0]}" in completed.stdout
    assert f"consented: tenant {CUSTOMERS[1]}" in completed.stdout
    assert f"failed: tenant {unreachable}" in completed.stdout
    logins = [call for call in tenant.calls() if call[:1] == ["login"]]
    assert [parse(call)[1]["--tenant"] for call in logins] == [[CUSTOMERS[0]], [unreachable], [CUSTOMERS[1]]]
    state = tenant.state
    tenants = {state["tenantId"]: state, **state.get("otherTenants", {})}
    wanted = {role_id(p) for p in needed_permissions()}
    for customer in CUSTOMERS:
        customer_state = tenants[customer]
        (sp,) = [s for s in customer_state["servicePrincipals"] if s["appId"] == PARTNER_APP_ID]
        granted = {a["appRoleId"] for a in customer_state["appRoleAssignments"] if a["principalId"] == sp["id"]}
        assert granted == wanted
    assert not any(s["appId"] == PARTNER_APP_ID for s in tenants[TENANT_ID]["servicePrincipals"])


def test_links_give_each_customer_the_admin_consent_url_and_the_command(tenant: FakeTenant) -> None:
    env = {"PARTNERGUARD_TENANTS": ",".join((TENANT_ID, *CUSTOMERS)), "AZURE_TENANT_ID": TENANT_ID}

    completed = tenant.run("links", "--app-id", PARTNER_APP_ID, env=env)

    assert tenant.calls() == [], "links needs no Azure call"
    for customer in CUSTOMERS:
        link = f"https://login.microsoftonline.com/{customer}/adminconsent?client_id={PARTNER_APP_ID}"
        assert link in completed.stdout
        assert f"consent --app-id {PARTNER_APP_ID} --tenant {customer}" in completed.stdout
    assert f"/{TENANT_ID}/adminconsent" not in completed.stdout, "the partner tenant consents in its own set-up"

    usgov = tenant.run("links", "--app-id", PARTNER_APP_ID, "--cloud", "usgov", "--tenant", CUSTOMERS[0])
    assert f"https://login.microsoftonline.us/{CUSTOMERS[0]}/adminconsent?client_id={PARTNER_APP_ID}" in usgov.stdout


def test_the_partner_set_up_ends_with_the_customers_links(tenant: FakeTenant) -> None:
    completed = full_setup(tenant, env={"PARTNERGUARD_TENANTS": ",".join((TENANT_ID, CUSTOMERS[0]))})

    app_id = tenant.app("PartnerGuard")["appId"]
    assert f"/{CUSTOMERS[0]}/adminconsent?client_id={app_id}" in completed.stdout
    assert f"/{TENANT_ID}/adminconsent" not in completed.stdout


def test_consent_without_an_app_id_says_what_is_missing(tenant: FakeTenant) -> None:
    completed = tenant.run("consent", expect=1)

    assert "--app-id" in completed.stderr
    assert tenant.changes() == []

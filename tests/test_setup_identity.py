"""scripts/setup_identity.py, run for real against a stand-in `az` (tests/infra_fake_az.py) that
records every call and keeps a tenant's Entra state in a file.

What the script must guarantee: the Graph app ends up with exactly the application permissions
the code needs (introspected from the checks and the Graph request table, not copied), declared
and granted; the managed identity is its federated credential for the right cloud; no client
secret is ever created; a second run changes nothing; a dry run changes nothing and shows what
it would do.

The tests that prove those guarantees run the script as a process against the stand-in on PATH.
Variations (national clouds, drift to repair) drive the script's `Setup` in-process over the
same stand-in's logic (`infra_fake_az.run`), since every `az` process costs a Python start-up.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from checks import ALL_CHECKS
from partnerguard.clouds import CLOUDS
from partnerguard.graph.requests import ENDPOINTS
from tests.infra_fake_az import FakeAzError, parse, run

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "setup_identity.py"
FAKE_AZ = Path(__file__).with_name("infra_fake_az.py")
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# Graph permissions a careless script might grant; the fake Graph offers them beside the real ones.
DECOYS = ("Directory.ReadWrite.All", "Application.ReadWrite.All", "Mail.Send", "User.ReadWrite.All")
ROLE_NAMESPACE = uuid.UUID("6f1c1f40-4a1e-4d3c-9a57-3b0e8f1d2c11")
TENANT_ID = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
USER_ID = "0b9f5a8e-1d2c-4e3f-8a7b-6c5d4e3f2a1b"
IDENTITY_PRINCIPAL_ID = "3c2b1a09-8f7e-4d6c-b5a4-938271605f4e"
APP_HOSTNAME = "func-pg-abc123.azurewebsites.net"
# Environment variables the script reads as defaults; the tests set them explicitly or not at all.
SCRIPT_ENVIRONMENT = (
    "AZURE_CLOUD",
    "PARTNERGUARD_GRAPH_CLIENT_ID",
    "PARTNERGUARD_SIGNIN_CLIENT_ID",
    "PARTNERGUARD_IDENTITY_PRINCIPAL_ID",
    "PARTNERGUARD_APP_HOSTNAME",
)
CHANGING_VERBS = {"create", "update", "add", "delete", "set", "reset", "grant", "admin-consent"}


def needed_permissions() -> set[str]:
    """What the code needs: every check's declared permissions and every Graph request's."""
    return {p for check in ALL_CHECKS for p in check.METADATA.permissions} | {e.permission for e in ENDPOINTS}


def role_id(permission: str) -> str:
    return str(uuid.uuid5(ROLE_NAMESPACE, permission))


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("setup_identity", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first: dataclasses look their module up while the class is being made.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def is_change(argv: list[str]) -> bool:
    words, options = parse(argv)
    if words == ["rest"]:
        return options["--method"][0].lower() != "get"
    return words[-1] in CHANGING_VERBS


def creates_a_secret(argv: list[str]) -> bool:
    words, _ = parse(argv)
    return words[:3] in (["ad", "app", "credential"], ["ad", "sp", "credential"])


@dataclass
class FakeTenant:
    workspace: Path
    bin_dir: Path

    @property
    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads((self.workspace / "state.json").read_text())
        return state

    def write_state(self, state: dict[str, Any]) -> None:
        (self.workspace / "state.json").write_text(json.dumps(state, indent=1))

    def calls(self) -> list[list[str]]:
        log = self.workspace / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def changes(self) -> list[list[str]]:
        return [call for call in self.calls() if is_change(call)]

    def azd_calls(self) -> list[str]:
        log = self.workspace / "azd_calls.txt"
        return log.read_text().splitlines() if log.exists() else []

    def forget_calls(self) -> None:
        for name in ("calls.jsonl", "azd_calls.txt"):
            (self.workspace / name).unlink(missing_ok=True)

    def run(self, *args: str, env: dict[str, str] | None = None, expect: int = 0) -> subprocess.CompletedProcess[str]:
        environment = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENVIRONMENT}
        environment.update(env or {})
        environment["PATH"] = f"{self.bin_dir}{os.pathsep}{environment.get('PATH', '')}"
        environment["FAKE_AZ_DIR"] = str(self.workspace)
        completed = subprocess.run(
            [sys.executable, str(SCRIPT), *args],
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert completed.returncode == expect, f"exit {completed.returncode}\n{completed.stdout}\n{completed.stderr}"
        return completed

    # -- reading the state -----------------------------------------------------------------

    def apps_named(self, name: str) -> list[dict[str, Any]]:
        return [a for a in self.state["applications"] if a["displayName"] == name]

    def service_principal_of(self, app_id: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = [sp for sp in self.state["servicePrincipals"] if sp["appId"] == app_id]
        (sp,) = found
        return sp

    def graph_roles_granted(self, app_id: str) -> set[str]:
        principal = self.service_principal_of(app_id)["id"]
        graph = self.service_principal_of(GRAPH_APP_ID)["id"]
        return {
            a["appRoleId"]
            for a in self.state["appRoleAssignments"]
            if a["principalId"] == principal and a["resourceId"] == graph
        }


def graph_service_principal() -> dict[str, Any]:
    roles = sorted(needed_permissions() | set(DECOYS))
    return {
        "id": "5f0c7e1a-2b3c-4d5e-8f90-a1b2c3d4e5f6",
        "appId": GRAPH_APP_ID,
        "displayName": "Microsoft Graph",
        "appRoleAssignmentRequired": False,
        "appRoles": [{"id": role_id(name), "value": name, "allowedMemberTypes": ["Application"]} for name in roles],
    }


@pytest.fixture
def tenant(tmp_path: Path) -> Iterator[FakeTenant]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    workspace = tmp_path / "tenant"
    workspace.mkdir()
    az = bin_dir / "az"
    # -S -E: the stand-in needs only the standard library, and starts faster without site-packages.
    az.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -S -E {shlex.quote(str(FAKE_AZ))} \"$@\"\n")
    azd = bin_dir / "azd"
    azd.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {shlex.quote(str(workspace / "azd_calls.txt"))}\n')
    for executable in (az, azd):
        executable.chmod(0o755)
    fake = FakeTenant(workspace, bin_dir)
    fake.write_state(
        {
            "tenantId": TENANT_ID,
            "userId": USER_ID,
            "applications": [],
            "servicePrincipals": [graph_service_principal()],
            "appRoleAssignments": [],
        }
    )
    yield fake


def output_values(completed: subprocess.CompletedProcess[str]) -> dict[str, str]:
    lines = [line.split("=", 1) for line in completed.stdout.splitlines() if "=" in line and " " not in line]
    return {key: value for key, value in lines}


def full_setup(tenant: FakeTenant, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return tenant.run("--identity-principal-id", IDENTITY_PRINCIPAL_ID, "--app-hostname", APP_HOSTNAME, *extra, env=env)


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

    (app,) = tenant.apps_named("PartnerGuard")
    assert values["PARTNERGUARD_GRAPH_CLIENT_ID"] == app["appId"]
    assert app["signInAudience"] == "AzureADMultipleOrgs"
    assert app["passwordCredentials"] == [] and app["keyCredentials"] == []
    wanted = {role_id(p) for p in needed_permissions()}
    (graph_access,) = [r for r in app["requiredResourceAccess"] if r["resourceAppId"] == GRAPH_APP_ID]
    assert {a["id"] for a in graph_access["resourceAccess"]} == wanted
    assert {a["type"] for a in graph_access["resourceAccess"]} == {"Role"}
    assert tenant.graph_roles_granted(app["appId"]) == wanted
    (credential,) = app["federatedIdentityCredentials"]
    assert credential["issuer"] == f"{CLOUDS['public'].authority_host}/{TENANT_ID}/v2.0"
    assert credential["subject"] == IDENTITY_PRINCIPAL_ID
    assert credential["audiences"] == [CLOUDS["public"].assertion_audience]

    # The sign-in app of App Service Authentication: this tenant only, ID tokens, assigned users.
    (signin,) = tenant.apps_named("PartnerGuard sign-in")
    assert values["PARTNERGUARD_SIGNIN_CLIENT_ID"] == signin["appId"]
    assert signin["signInAudience"] == "AzureADMyOrg"
    assert signin["web"]["redirectUris"] == [f"https://{APP_HOSTNAME}/.auth/login/aad/callback"]
    assert signin["web"]["implicitGrantSettings"]["enableIdTokenIssuance"] is True
    assert signin["identifierUris"] == [f"api://{signin['appId']}"]
    assert signin["api"]["requestedAccessTokenVersion"] == 2
    assert signin["passwordCredentials"] == [] and signin["requiredResourceAccess"] == []
    service_principal = tenant.service_principal_of(signin["appId"])
    assert service_principal["appRoleAssignmentRequired"] is True
    assigned = [a for a in tenant.state["appRoleAssignments"] if a["resourceId"] == service_principal["id"]]
    assert [(a["principalId"], a["appRoleId"]) for a in assigned] == [(USER_ID, str(uuid.UUID(int=0)))]

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
    assert ["ad", "app", "federated-credential", "create"] in planned_words
    bodies = [json.loads(parse(call)[1]["--body"][0]) for call in planned if parse(call)[0] == ["rest"]]
    graph_roles = {body["appRoleId"] for body in bodies if body["appRoleId"] != str(uuid.UUID(int=0))}
    assert graph_roles == {role_id(p) for p in needed_permissions()}
    assert not any(creates_a_secret(call) for call in planned)


def test_before_the_deployment_it_creates_the_apps_and_after_it_adds_identity_and_redirect(
    tenant: FakeTenant,
) -> None:
    before = tenant.run()
    assert "run this again after the deployment" in before.stderr
    (app,) = tenant.apps_named("PartnerGuard")
    assert app["federatedIdentityCredentials"] == []
    tenant.forget_calls()

    full_setup(tenant)

    changes = [parse(call)[0] for call in tenant.changes()]
    assert changes == [["ad", "app", "federated-credential", "create"], ["ad", "app", "update"]]
    (app,) = tenant.apps_named("PartnerGuard")
    assert [c["subject"] for c in app["federatedIdentityCredentials"]] == [IDENTITY_PRINCIPAL_ID]
    (signin,) = tenant.apps_named("PartnerGuard sign-in")
    assert signin["web"]["redirectUris"] == [f"https://{APP_HOSTNAME}/.auth/login/aad/callback"]


def test_azd_mode_hands_the_app_ids_to_azd_once(tenant: FakeTenant) -> None:
    values = output_values(full_setup(tenant, "--azd"))
    assert tenant.azd_calls() == [
        f"env set PARTNERGUARD_GRAPH_CLIENT_ID {values['PARTNERGUARD_GRAPH_CLIENT_ID']}",
        f"env set PARTNERGUARD_SIGNIN_CLIENT_ID {values['PARTNERGUARD_SIGNIN_CLIENT_ID']}",
    ]
    tenant.forget_calls()

    # azd's hooks export the azd environment, so the next run knows the apps by client id.
    full_setup(tenant, "--azd", env=values)

    assert tenant.azd_calls() == []
    assert tenant.changes() == []


# -- drift and variations, in-process -------------------------------------------------------


def test_permissions_the_code_does_not_need_are_removed_and_revoked(
    tenant: FakeTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_in_process(tenant, monkeypatch, "--identity-principal-id", IDENTITY_PRINCIPAL_ID)
    state = tenant.state
    (app,) = [a for a in state["applications"] if a["displayName"] == "PartnerGuard"]
    app["requiredResourceAccess"][0]["resourceAccess"].append({"id": role_id("Mail.Send"), "type": "Role"})
    principal = next(sp["id"] for sp in state["servicePrincipals"] if sp["appId"] == app["appId"])
    graph = graph_service_principal()["id"]
    state["appRoleAssignments"].append(
        {"id": "extra-grant", "principalId": principal, "resourceId": graph, "appRoleId": role_id("Mail.Send")}
    )
    tenant.write_state(state)

    setup_in_process(tenant, monkeypatch, "--identity-principal-id", IDENTITY_PRINCIPAL_ID)

    wanted = {role_id(p) for p in needed_permissions()}
    (app,) = tenant.apps_named("PartnerGuard")
    assert {a["id"] for a in app["requiredResourceAccess"][0]["resourceAccess"]} == wanted
    assert tenant.graph_roles_granted(app["appId"]) == wanted


def test_a_new_managed_identity_replaces_the_federated_credential(
    tenant: FakeTenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup_in_process(tenant, monkeypatch, "--identity-principal-id", IDENTITY_PRINCIPAL_ID)
    replacement = "9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a5b4"

    setup_in_process(tenant, monkeypatch, "--identity-principal-id", replacement)

    (app,) = tenant.apps_named("PartnerGuard")
    assert [c["subject"] for c in app["federatedIdentityCredentials"]] == [replacement]


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
    (signin,) = tenant.apps_named("PartnerGuard sign-in")
    resource = tenant.service_principal_of(signin["appId"])["id"]
    assert [a for a in tenant.state["appRoleAssignments"] if a["resourceId"] == resource] == []


@pytest.mark.parametrize("cloud", sorted(CLOUDS))
def test_each_national_cloud_gets_its_own_issuer_audience_and_graph(
    tenant: FakeTenant, monkeypatch: pytest.MonkeyPatch, cloud: str
) -> None:
    az = setup_in_process(tenant, monkeypatch, "--cloud", cloud, "--identity-principal-id", IDENTITY_PRINCIPAL_ID)

    (app,) = tenant.apps_named("PartnerGuard")
    (credential,) = app["federatedIdentityCredentials"]
    assert credential["issuer"] == f"{CLOUDS[cloud].authority_host}/{TENANT_ID}/v2.0"
    assert credential["audiences"] == [CLOUDS[cloud].assertion_audience]
    urls = [parse(call)[1]["--url"][0] for call in az.calls if parse(call)[0] == ["rest"]]
    assert urls and all(url.startswith(f"{CLOUDS[cloud].graph_endpoint}/v1.0/") for url in urls)


# -- a customer tenant ------------------------------------------------------------------------


def customer_tenant(tenant: FakeTenant, app_id: str) -> None:
    """The stand-in as a customer tenant: no apps of its own, the partner's app known by client id."""
    tenant.write_state(
        {
            "tenantId": "c0ffee00-1111-4222-8333-444455556666",
            "userId": USER_ID,
            "multiTenantAppIds": [app_id],
            "applications": [],
            "servicePrincipals": [graph_service_principal()],
            "appRoleAssignments": [],
        }
    )


def test_consent_in_a_customer_tenant_grants_exactly_the_needed_permissions_once(tenant: FakeTenant) -> None:
    app_id = "1d2c3b4a-5968-4776-8594-a3b2c1d0e9f8"
    customer_tenant(tenant, app_id)

    completed = tenant.run("consent", "--app-id", app_id)

    assert "consented" in completed.stdout
    assert tenant.graph_roles_granted(app_id) == {role_id(p) for p in needed_permissions()}
    assert tenant.state["applications"] == []
    assert not any(creates_a_secret(call) for call in tenant.calls())
    tenant.forget_calls()

    tenant.run("consent", "--app-id", app_id)

    assert tenant.changes() == []


def test_consent_without_an_app_id_says_what_is_missing(tenant: FakeTenant) -> None:
    completed = tenant.run("consent", expect=1)

    assert "--app-id" in completed.stderr
    assert tenant.changes() == []

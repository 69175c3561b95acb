"""`azd up` on a fresh environment, driven through a stand-in that resolves parameters, prompts,
runs hooks and reloads the environment as azd's own code does (tests/infra_fake_azd.py names the
azd source files it follows), with the real hooks (scripts/setup_identity.py) against the
stand-in `az` of a partner tenant (tests/infra_fake_az.py).

What must hold: a fresh environment provisions interactively and with `--no-prompt`, given only
its name, subscription and location, without being asked for an app id that the preprovision
hook has yet to create; the ids the hook saves reach the deployment; two environments and a
re-run leave every federated credential in place. The same stand-in, given the templates as they
were before issue 14 (tests/infra_azd_before_issue_14/, copied from commit 680b4e1), prompts for
`graphAppClientId` and stops under `--no-prompt` with missing inputs: the stand-in can fail.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.infra_fake_azd import (
    Azd,
    DeploymentFailed,
    EnvironmentStore,
    HookFailed,
    MissingInputsError,
    PromptRequiredError,
    PromptUnanswered,
    arm_parameter_file_value,
    compile_template,
    envsubst,
)
from tests.infra_tenant_harness import REPO, TENANT_ID, FakeTenant

BEFORE_ISSUE_14 = Path(__file__).with_name("infra_azd_before_issue_14")
SUBSCRIPTION = "11111111-2222-4333-8444-555555555555"
LOCATION = "westeurope"
AZD_VERSION = "1.29.0"


@pytest.fixture
def partner(tmp_path: Path) -> Iterator[FakeTenant]:
    yield FakeTenant.create(tmp_path / "partner", azd_version=AZD_VERSION)


def make_project(root: Path, templates: Path = REPO) -> Path:
    """A project directory as azd sees one: azure.yaml and infra/ of `templates`, the scripts of
    this repository (the hooks run them), and its own .azure/ for the environments."""
    project = root / "project"
    project.mkdir()
    (project / "azure.yaml").write_text((templates / "azure.yaml").read_text())
    (project / "infra").symlink_to(templates / "infra", target_is_directory=True)
    (project / "scripts").symlink_to(REPO / "scripts", target_is_directory=True)
    return project


def shell(partner: FakeTenant, version: str) -> dict[str, str]:
    """A clean shell: the stand-ins on PATH, nothing of azd's or PartnerGuard's from the runner."""
    keep = {"HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT"}
    environment = {key: value for key, value in os.environ.items() if key in keep}
    environment["PATH"] = f"{partner.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    environment["FAKE_AZ_DIR"] = str(partner.workspace)
    environment["FAKE_AZD_VERSION"] = version
    return environment


def azd(partner: FakeTenant, project: Path, version: str = AZD_VERSION) -> Azd:
    return Azd(project, version=version, process_env=shell(partner, version), tenant_id=TENANT_ID)


def federated_credentials(partner: FakeTenant, app: str) -> dict[str, str]:
    return partner.credentials(app)


def assert_deployed_with_the_apps_of(partner: FakeTenant, deployment: dict[str, object]) -> None:
    assert deployment["graphAppClientId"] == partner.app("PartnerGuard")["appId"]
    assert deployment["signInClientId"] == partner.app("PartnerGuard sign-in")["appId"]


# -- a fresh environment ---------------------------------------------------------------------------


def test_a_fresh_environment_asks_only_for_subscription_and_location_interactively(
    partner: FakeTenant, tmp_path: Path
) -> None:
    stand_in = azd(partner, make_project(tmp_path))

    run = stand_in.up("pg-prod", answers={"subscription": SUBSCRIPTION, "location": LOCATION})

    assert run.prompts == [("subscription", "subscription"), ("location", "location")]
    assert run.steps == ["initialize", "preprovision", "provision", "postprovision", "deploy api"]
    (deployment,) = run.deployments
    assert_deployed_with_the_apps_of(partner, deployment)
    env = EnvironmentStore(stand_in.project).load("pg-prod")
    assert federated_credentials(partner, "PartnerGuard") == {
        f"partnerguard-pg-prod-{env['PARTNERGUARD_RESOURCE_TOKEN']}": env["PARTNERGUARD_GRAPH_IDENTITY_PRINCIPAL_ID"]
    }
    assert federated_credentials(partner, "PartnerGuard sign-in") == {
        f"partnerguard-pg-prod-{env['PARTNERGUARD_RESOURCE_TOKEN']}": env["PARTNERGUARD_SIGNIN_IDENTITY_PRINCIPAL_ID"]
    }
    redirects = partner.app("PartnerGuard sign-in")["web"]["redirectUris"]
    assert redirects == [f"https://{env['PARTNERGUARD_APP_HOSTNAME']}/.auth/login/aad/callback"]


def test_a_fresh_environment_provisions_with_no_prompt_given_name_subscription_and_location(
    partner: FakeTenant, tmp_path: Path
) -> None:
    stand_in = azd(partner, make_project(tmp_path))

    run = stand_in.up("pg-prod", no_prompt=True, subscription=SUBSCRIPTION, location=LOCATION)

    assert run.prompts == []
    (deployment,) = run.deployments
    assert_deployed_with_the_apps_of(partner, deployment)
    assert deployment["location"] == LOCATION and deployment["environmentName"] == "pg-prod"


def test_no_prompt_without_a_subscription_still_stops_where_azd_does(partner: FakeTenant, tmp_path: Path) -> None:
    stand_in = azd(partner, make_project(tmp_path))

    with pytest.raises(PromptRequiredError):
        stand_in.up("pg-prod", no_prompt=True, location=LOCATION)
    with pytest.raises(MissingInputsError) as missing:
        stand_in.up("pg-test", no_prompt=True, subscription=SUBSCRIPTION)
    assert missing.value.inputs == [("location", ["AZURE_LOCATION"])]
    assert partner.calls() == [], "no hook ran"


# -- several environments --------------------------------------------------------------------------


def test_two_environments_and_a_rerun_leave_every_federated_credential_in_place(
    partner: FakeTenant, tmp_path: Path
) -> None:
    stand_in = azd(partner, make_project(tmp_path))
    store = EnvironmentStore(stand_in.project)
    for name in ("pg-prod", "pg-test"):
        stand_in.env_new(name, subscription=SUBSCRIPTION, location=LOCATION)

    stand_in.up("pg-prod", no_prompt=True)
    stand_in.up("pg-test", no_prompt=True)
    after_both = {app: federated_credentials(partner, app) for app in ("PartnerGuard", "PartnerGuard sign-in")}
    rerun = stand_in.up("pg-prod", no_prompt=True)

    expected: dict[str, dict[str, str]] = {"PartnerGuard": {}, "PartnerGuard sign-in": {}}
    for name in ("pg-prod", "pg-test"):
        env = store.load(name)
        credential = f"partnerguard-{name}-{env['PARTNERGUARD_RESOURCE_TOKEN']}"
        expected["PartnerGuard"][credential] = env["PARTNERGUARD_GRAPH_IDENTITY_PRINCIPAL_ID"]
        expected["PartnerGuard sign-in"][credential] = env["PARTNERGUARD_SIGNIN_IDENTITY_PRINCIPAL_ID"]
        # The service identity of a deployment never signs in as the Graph app.
        assert env["PARTNERGUARD_IDENTITY_PRINCIPAL_ID"] not in expected["PartnerGuard"].values()
    assert after_both == expected
    assert {app: federated_credentials(partner, app) for app in expected} == expected
    # Both environments deploy with the same two apps, found again by the re-run.
    assert_deployed_with_the_apps_of(partner, rerun.deployments[-1])
    assert len(partner.apps_named("PartnerGuard")) == 1


# -- the setup before issue 14 fails in the same stand-in --------------------------------------------


def test_before_issue_14_a_fresh_environment_was_asked_for_the_graph_app_id(
    partner: FakeTenant, tmp_path: Path
) -> None:
    stand_in = azd(partner, make_project(tmp_path, BEFORE_ISSUE_14))

    with pytest.raises(PromptUnanswered, match="parameter 'graphAppClientId'"):
        stand_in.up("pg-prod", answers={"subscription": SUBSCRIPTION, "location": LOCATION})

    assert partner.calls() == [], "azd asks before the preprovision hook could create the app"


def test_before_issue_14_no_prompt_stopped_with_missing_inputs(partner: FakeTenant, tmp_path: Path) -> None:
    stand_in = azd(partner, make_project(tmp_path, BEFORE_ISSUE_14))

    with pytest.raises(MissingInputsError) as missing:
        stand_in.up("pg-prod", no_prompt=True, subscription=SUBSCRIPTION, location=LOCATION)

    assert missing.value.inputs == [
        ("graphAppClientId", ["PARTNERGUARD_GRAPH_CLIENT_ID"]),
        ("signInClientId", ["PARTNERGUARD_SIGNIN_CLIENT_ID"]),
    ]
    assert partner.calls() == []


# -- azd versions ------------------------------------------------------------------------------------


def test_an_azd_older_than_1_10_2_is_refused_by_the_project(partner: FakeTenant, tmp_path: Path) -> None:
    stand_in = azd(partner, make_project(tmp_path), version="1.10.1")

    with pytest.raises(Exception, match=r">= 1\.10\.2"):
        stand_in.up("pg-prod", no_prompt=True, subscription=SUBSCRIPTION, location=LOCATION)


def test_without_requiredversions_the_hook_refuses_an_old_azd(partner: FakeTenant, tmp_path: Path) -> None:
    project = make_project(tmp_path)
    text = (project / "azure.yaml").read_text()
    (project / "azure.yaml").write_text(text.replace('requiredVersions:\n  azd: ">= 1.10.2"\n', ""))
    stand_in = azd(partner, project, version="1.10.1")

    with pytest.raises(HookFailed, match=r"1\.10\.2"):
        stand_in.up("pg-prod", no_prompt=True, subscription=SUBSCRIPTION, location=LOCATION)
    assert partner.apps_named("PartnerGuard") == [], "the hook stopped before creating anything"


def test_an_azd_that_caches_parameters_would_deploy_without_the_ids_and_arm_refuses_it(
    partner: FakeTenant, tmp_path: Path
) -> None:
    """What both checks prevent: azd before 1.10.2 (#3973) deploys the parameters of its first
    pass, without the ids the hook saved; the function app module refuses the empty id."""
    project = make_project(tmp_path)
    text = (project / "azure.yaml").read_text()
    (project / "azure.yaml").write_text(text.replace('requiredVersions:\n  azd: ">= 1.10.2"\n', ""))
    stand_in = Azd(project, version="1.10.1", process_env=shell(partner, "1.10.2"), tenant_id=TENANT_ID)

    with pytest.raises(DeploymentFailed, match=r"graphAppClientId|signInClientId"):
        stand_in.up("pg-prod", no_prompt=True, subscription=SUBSCRIPTION, location=LOCATION)
    saved = EnvironmentStore(project).load("pg-prod")
    assert saved["PARTNERGUARD_GRAPH_CLIENT_ID"] == partner.app("PartnerGuard")["appId"], "the hook did save it"


# -- the stand-in resolves parameters as azd does ------------------------------------------------------


def write_template(root: Path, bicep: str, parameters: dict[str, str]) -> Path:
    infra = root / "infra"
    infra.mkdir(parents=True)
    (infra / "main.bicep").write_text(bicep)
    document = {"parameters": {name: {"value": value} for name, value in parameters.items()}}
    (infra / "main.parameters.json").write_text(json.dumps(document))
    (root / "azure.yaml").write_text("name: t\ninfra:\n  provider: bicep\n  path: infra\n  module: main\n")
    return root


TEMPLATE = """targetScope = 'subscription'
param required string
param withDefault string = ''
param nullable string?
param flag bool = false
output echoed string = required
"""


@pytest.mark.parametrize(
    ("version", "prompted"),
    [("1.29.0", ["required"]), ("1.11.0", ["nullable", "required"])],
)
def test_the_stand_in_prompts_for_required_parameters_and_nullable_ones_only_before_1_12(
    tmp_path: Path, version: str, prompted: list[str]
) -> None:
    project = write_template(tmp_path, TEMPLATE, {"required": "${REQUIRED}", "withDefault": "${UNSET}"})
    stand_in = Azd(project, version=version, process_env={})
    stand_in.env_new("e", subscription=SUBSCRIPTION)

    with pytest.raises(MissingInputsError) as missing:
        stand_in.up("e", no_prompt=True)

    assert [name for name, _ in missing.value.inputs] == prompted
    assert dict(missing.value.inputs)["required"] == ["REQUIRED"]


def test_the_stand_in_reads_values_from_the_environment_file_first_then_the_shell(tmp_path: Path) -> None:
    project = write_template(tmp_path, TEMPLATE, {"required": "${REQUIRED}", "flag": "${FLAG=false}"})
    stand_in = Azd(project, process_env={"REQUIRED": "from-the-shell", "FLAG": "true"})
    stand_in.env_new("e", subscription=SUBSCRIPTION)

    run = stand_in.up("e", no_prompt=True)
    assert run.deployments == [{"required": "from-the-shell", "flag": True}]

    EnvironmentStore(project).save("e", {**EnvironmentStore(project).load("e"), "REQUIRED": "from-dotenv"})
    run = stand_in.up("e", no_prompt=True)
    assert run.deployments == [{"required": "from-dotenv", "flag": True}]


def test_the_stand_in_substitutes_and_converts_like_azd() -> None:
    lookup = {"SET": ("value", True), "EMPTY": ("", True)}.get

    def look(name: str) -> tuple[str, bool]:
        return lookup(name) or ("", False)

    assert envsubst("${SET}", look) == ("value", ["SET"], False)
    assert envsubst("${UNSET}", look) == ("", ["UNSET"], True)
    assert envsubst("${UNSET=fallback}", look) == ("fallback", ["UNSET"], True)
    assert envsubst("${EMPTY=fallback}", look) == ("fallback", ["EMPTY"], False)
    parameters = compile_template(REPO / "infra" / "main.bicep").parameters
    assert arm_parameter_file_value(parameters["graphAppClientId"], "") is None  # then its default
    assert arm_parameter_file_value(parameters["discoverCustomers"], "false") is False
    assert arm_parameter_file_value(parameters["alertReminderHours"], "12") == 12
    assert arm_parameter_file_value(parameters["alertReminderHours"], "twelve") is None
    assert arm_parameter_file_value(parameters["scanSchedule"], "") == ""  # differs from the default

"""The alert channels' secrets in Azure (issue 17): a Key Vault the partner stores them in, and app
settings that are Key Vault references to them, never values.

What must hold: the vault authorises by Azure RBAC only and can be neither purged nor lost
unnoticed (soft delete, purge protection); the service identity, which resolves the references
(keyVaultReferenceIdentity), holds exactly Key Vault Secrets User on it and nothing grants anyone
write access; for the names in ALERT_SECRET_SETTINGS, and only those, the app setting is
`@Microsoft.KeyVault(VaultName=<vault>;SecretName=<setting-name>)`, the others ''; no secret value
passes through a parameter; and the azd stand-in (tests/infra_fake_azd.py) resolves the new
parameter from the environment as azd does, set, empty or unset.

The template expressions are evaluated from pycep's trees, as tests/test_infra_settings.py does,
with the ARM functions they use (`empty`, `split`, `toUpper`, `replace`, `contains`) modelled on
their documented behaviour (https://learn.microsoft.com/azure/azure-resource-manager/bicep/bicep-functions).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from partnerguard.settings import ConfigError, Settings
from tests.infra_bicep import (
    INFRA,
    MAIN,
    PARAMETERS_FILE,
    bicep_files,
    decorator,
    module_calls,
    parameters,
    resources,
    role_definition_ids,
    template,
    the_resource,
)
from tests.infra_fake_azd import Azd, EnvironmentStore
from tests.infra_tenant_harness import REPO, TENANT_ID, FakeTenant

KEY_VAULT = INFRA / "modules" / "key-vault.bicep"
FUNCTION_APP = INFRA / "modules" / "function-app.bicep"

# Built-in role definition ids (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
KEY_VAULT_WRITE_ROLES = {
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "00482a5a-887f-4fb3-b363-3b7fe8e74483": "Key Vault Administrator",
    "f25e0fa2-a7c8-4377-a976-54943a77a395": "Key Vault Contributor",
    "8b54135c-b56d-4d72-a534-26097cfdc8d8": "Key Vault Data Access Administrator",
}

# The settings whose values are secrets (SPEC §5), and the vault secret each one's reference names.
SECRET_SETTINGS = {
    "ALERT_TEAMS_WEBHOOK_URL": "alert-teams-webhook-url",
    "ALERT_WEBHOOK_URL": "alert-webhook-url",
    "ALERT_WEBHOOK_SECRET": "alert-webhook-secret",
    "ALERT_ROUTES_BY_TENANT": "alert-routes-by-tenant",
}
VAULT = "kv-pg-abcdefghijklm"
SUBSCRIPTION = "11111111-2222-4333-8444-555555555555"


# -- evaluating the templates' expressions -----------------------------------------------------------


def evaluate(expression: Any, scope: Mapping[str, Any]) -> Any:
    """The value of a pycep expression tree; a name in `scope` is a parameter, any other text a
    literal (pycep does not tell them apart; no template uses a parameter's name as a literal)."""
    if isinstance(expression, bool | int) or expression is None:
        return expression
    if isinstance(expression, list):
        return [evaluate(item, scope) for item in expression]
    if isinstance(expression, str):
        if expression in scope:
            return scope[expression]
        return re.sub(r"\$\{(\w+)\}", lambda m: str(scope[m.group(1)]), expression)
    if "operator" in expression and expression["operator"]["type"] == "conditional":
        operands = expression["operator"]["operands"]
        chosen = "true_value" if evaluate(operands["condition"], scope) else "false_value"
        return evaluate(operands[chosen], scope)
    function = expression["function"]
    kind, given = function["type"], function["parameters"]
    value = {name: evaluate(argument, scope) for name, argument in given.items()}
    if kind == "empty":
        return len(value["item_to_test"]) == 0
    if kind == "split":  # split('', ',') is [''], hence the template's empty() guard
        return value["input_string"].split(value["delimiter"])
    if kind == "replace":
        return value["original_string"].replace(value["old_string"], value["new_string"])
    if kind == "to_upper":
        return value["string_to_change"].upper()
    if kind == "contains":  # for an array: whether an element equals the item (case-sensitive)
        return value["item_to_find"] in value["container"]
    raise AssertionError(f"the test does not model {kind}()")


def arm_accepts(parameter: dict[str, Any], value: list[str]) -> bool:
    """ARM's check of an array parameter with allowed values: every element must be one of them
    (https://learn.microsoft.com/azure/azure-resource-manager/bicep/parameters#allowed-values)."""
    allowed = decorator(parameter, "allowed")
    return allowed is None or set(value) <= set(allowed)


def module_argument(main_value: str) -> list[str]:
    """What main.bicep passes the function app for ALERT_SECRET_SETTINGS=`main_value`."""
    argument = module_calls()["functionApp"]["config"]["params"]["alertSecretSettings"]
    result: list[str] = evaluate(argument, {"alertSecretSettings": main_value})
    return result


def alert_secret_app_settings(main_value: str) -> dict[str, str]:
    """The four secret settings of the app for ALERT_SECRET_SETTINGS=`main_value`, through
    main.bicep's expression and then the app settings'; ARM's parameter check included."""
    names = module_argument(main_value)
    declared = parameters(FUNCTION_APP)["alertSecretSettings"]
    if not arm_accepts(declared, names):
        raise ValueError(f"ARM refuses alertSecretSettings {names}")
    settings = the_resource("Microsoft.Web/sites/config", "appsettings").properties
    scope = {"alertSecretSettings": names, "keyVaultName": VAULT}
    return {name: evaluate(settings[name], scope) for name in SECRET_SETTINGS}


def reference(secret: str) -> str:
    return f"@Microsoft.KeyVault(VaultName={VAULT};SecretName={secret})"


# -- the vault ---------------------------------------------------------------------------------------


def test_the_vault_authorises_by_rbac_only_and_cannot_be_purged() -> None:
    vault = the_resource("Microsoft.KeyVault/vaults")
    assert vault.file == KEY_VAULT
    properties = vault.properties
    assert properties["enableRbacAuthorization"] is True
    assert "accessPolicies" not in properties, "RBAC decides; access policies would be a second door"
    assert properties["enableSoftDelete"] is True
    assert properties["enablePurgeProtection"] is True
    assert 7 <= properties["softDeleteRetentionInDays"] <= 90
    for use in ("enabledForDeployment", "enabledForTemplateDeployment", "enabledForDiskEncryption"):
        assert properties[use] is False, use
    # Without a virtual network App Service reaches the vault over its public endpoint, as it
    # reaches storage (whose checkov skips say the same); nothing is let in without a token.
    assert properties["networkAcls"]["bypass"] == "None"


def test_the_template_writes_and_reads_no_secret_of_the_vault() -> None:
    """The partner stores the secrets; no template creates one (its value would be in the template
    or a parameter) and no output reads one."""
    types = {r.type for r in resources()}
    assert not {t for t in types if t.startswith("Microsoft.KeyVault/vaults/")}, types
    for path in bicep_files():
        text = path.read_text()
        assert "getSecret(" not in text and "secretUriWithVersion" not in text, path.name


def test_the_service_identity_gets_exactly_secrets_user_on_the_vault_and_nobody_gets_write() -> None:
    assert role_definition_ids(KEY_VAULT) == {"identityPrincipalId": {KEY_VAULT_SECRETS_USER}}
    (assignment,) = [r for r in resources("Microsoft.Authorization/roleAssignments") if r.file == KEY_VAULT]
    assert assignment.body["scope"] == "vault"
    assert assignment.properties["principalType"] == "ServicePrincipal"
    principal = module_calls()["keyVault"]["config"]["params"]["identityPrincipalId"]
    assert principal["operator"]["operands"]["operand_1"] == "identity"  # the service identity, not Graph's
    for path in bicep_files():
        for role, name in KEY_VAULT_WRITE_ROLES.items():
            assert role not in path.read_text(), f"{path.name} grants {name}"
    # The identity that holds the role is the one App Service resolves references with.
    site = the_resource("Microsoft.Web/sites")
    assert site.properties["keyVaultReferenceIdentity"] == "identityId"
    call = module_calls()["functionApp"]["config"]["params"]
    assert call["identityId"]["operator"]["operands"]["operand_1"] == "identity"


def test_the_vault_has_a_valid_unique_name_and_is_an_output() -> None:
    """Key Vault names: 3-24 letters, digits and hyphens, a letter first, globally unique."""
    name = module_calls()["keyVault"]["config"]["params"]["name"]
    assert name == "kv-pg-${resourceToken}"
    token_length = 13  # uniqueString() returns 13 characters
    example = name.replace("${resourceToken}", "a" * token_length)
    assert re.fullmatch(r"[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]", example)
    output = template(MAIN)["outputs"]["PARTNERGUARD_KEY_VAULT_NAME"]["value"]["operator"]["operands"]
    assert output["operand_1"] == "keyVault"
    assert output["operand_2"]["operator"]["operands"] == {"operand_1": "outputs", "operand_2": "name"}
    call = module_calls()["functionApp"]["config"]["params"]["keyVaultName"]["operator"]["operands"]
    assert call["operand_1"] == "keyVault"


# -- the app settings ------------------------------------------------------------------------------


def test_by_default_every_secret_setting_is_empty() -> None:
    assert parameters(MAIN)["alertSecretSettings"]["default"] == ""
    assert alert_secret_app_settings("") == dict.fromkeys(SECRET_SETTINGS, "")


@pytest.mark.parametrize(
    "stored",
    [
        ["ALERT_TEAMS_WEBHOOK_URL"],
        ["ALERT_WEBHOOK_URL", "ALERT_WEBHOOK_SECRET"],
        ["ALERT_ROUTES_BY_TENANT"],
        list(SECRET_SETTINGS),
    ],
    ids=lambda names: "+".join(names),
)
def test_each_named_setting_becomes_a_key_vault_reference_and_the_others_stay_empty(stored: list[str]) -> None:
    settings = alert_secret_app_settings(",".join(stored))
    expected = {name: reference(secret) if name in stored else "" for name, secret in SECRET_SETTINGS.items()}
    assert settings == expected


def test_names_are_read_with_spaces_and_in_any_case() -> None:
    assert alert_secret_app_settings(" alert_webhook_url , ALERT_WEBHOOK_SECRET") == {
        "ALERT_TEAMS_WEBHOOK_URL": "",
        "ALERT_WEBHOOK_URL": reference("alert-webhook-url"),
        "ALERT_WEBHOOK_SECRET": reference("alert-webhook-secret"),
        "ALERT_ROUTES_BY_TENANT": "",
    }


@pytest.mark.parametrize("wrong", ["ALERT_TEAMS_URL", "ALERT_RECIPIENTS", "ALERT_WEBHOOK_URL,", "https://x.example/y"])
def test_a_name_that_is_not_a_secret_setting_fails_the_deployment(wrong: str) -> None:
    """A misspelt name must not leave a channel silently off, nor a value pass as a name."""
    with pytest.raises(ValueError, match="ARM refuses"):
        alert_secret_app_settings(wrong)


def test_the_secret_names_follow_the_setting_names_and_key_vaults_rules() -> None:
    """Documented as `az keyvault secret set --name alert-teams-webhook-url` (docs/deploy.md):
    the setting's name lower-cased with dashes; Key Vault allows letters, digits and dashes."""
    allowed = decorator(parameters(FUNCTION_APP)["alertSecretSettings"], "allowed")
    assert set(allowed) == set(SECRET_SETTINGS)
    for setting, secret in SECRET_SETTINGS.items():
        assert secret == setting.lower().replace("_", "-")
        assert re.fullmatch(r"[0-9a-zA-Z-]{1,127}", secret)
    deploy = (REPO / "docs" / "deploy.md").read_text()
    for secret in SECRET_SETTINGS.values():
        assert f"--name {secret}" in deploy, f"docs/deploy.md does not say how to store {secret}"


def test_an_unresolved_reference_stops_the_app_with_the_settings_name() -> None:
    """App Service leaves a reference it cannot resolve as the setting's literal value
    (https://learn.microsoft.com/azure/app-service/app-service-key-vault-references): what the
    template sets must then fail Settings clearly, naming the setting, not pass as a URL."""
    base = {"AZURE_TENANT_ID": TENANT_ID, "AZURE_CLIENT_ID": "5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e"}
    for name, value in alert_secret_app_settings(",".join(SECRET_SETTINGS)).items():
        with pytest.raises(ConfigError) as refused:
            Settings.from_env({**base, name: value})
        assert name in str(refused.value)
        assert "Key Vault reference" in str(refused.value)


# -- no secret through a parameter -----------------------------------------------------------------


def test_no_secret_value_passes_through_a_parameter() -> None:
    """The settings' values come from the vault alone: their expressions name only the vault and
    the list of names, no template parameter is a secret setting's value, and the parameters file
    maps no secret setting's variable."""
    settings = the_resource("Microsoft.Web/sites/config", "appsettings").properties
    declared = set(parameters(FUNCTION_APP))
    for name in SECRET_SETTINGS:
        text = json.dumps(settings[name])
        named = {p for p in declared if re.search(rf"(?<![A-Za-z0-9_]){p}(?![A-Za-z0-9_])", text)}
        assert named == {"alertSecretSettings", "keyVaultName"}, f"{name} uses {named}"
    mapped = json.loads(PARAMETERS_FILE.read_text())["parameters"]
    variables = {re.sub(r"^\$\{([A-Z0-9_]+).*\}$", r"\1", entry["value"]) for entry in mapped.values()}
    assert not variables & set(SECRET_SETTINGS), "a secret would pass through a parameter"
    assert mapped["alertSecretSettings"] == {"value": "${ALERT_SECRET_SETTINGS=}"}
    for path in (MAIN, FUNCTION_APP, KEY_VAULT):
        for parameter in parameters(path):
            assert not re.search(r"webhook|teams|routes", parameter, re.IGNORECASE), f"{path.name}: {parameter}"


# -- azd -------------------------------------------------------------------------------------------


@pytest.fixture
def partner(tmp_path: Path) -> FakeTenant:
    return FakeTenant.create(tmp_path / "partner", azd_version="1.29.0")


def make_project(root: Path) -> Path:
    """azure.yaml and infra/ of this repository, its scripts for the hooks, a .azure/ of its own."""
    project = root / "project"
    project.mkdir()
    (project / "azure.yaml").write_text((REPO / "azure.yaml").read_text())
    (project / "infra").symlink_to(REPO / "infra", target_is_directory=True)
    (project / "scripts").symlink_to(REPO / "scripts", target_is_directory=True)
    return project


def test_azd_passes_the_names_from_the_environment_and_an_empty_or_unset_value_means_none(
    partner: FakeTenant, tmp_path: Path
) -> None:
    """`azd env set ALERT_SECRET_SETTINGS ...` reaches the deployment as the string it is; an
    empty value (azd env set ALERT_SECRET_SETTINGS "") and an unset one leave the default ''."""
    project = make_project(tmp_path)
    # A clean shell, as tests/test_infra_azd_flow.py gives the stand-ins: nothing of azd's or
    # PartnerGuard's from the runner.
    shell = {key: value for key, value in os.environ.items() if key in {"HOME", "LANG", "LC_ALL", "TMPDIR"}}
    shell |= {
        "PATH": f"{partner.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "FAKE_AZ_DIR": str(partner.workspace),
    }
    shell["FAKE_AZD_VERSION"] = "1.29.0"
    stand_in = Azd(project, version="1.29.0", process_env=shell, tenant_id=TENANT_ID)
    stand_in.env_new("pg-prod", subscription=SUBSCRIPTION, location="westeurope")
    store = EnvironmentStore(project)

    run = stand_in.up("pg-prod", no_prompt=True)
    assert "alertSecretSettings" not in run.deployments[-1]
    assert store.load("pg-prod")["PARTNERGUARD_KEY_VAULT_NAME"]

    for value, expected in (
        ("ALERT_TEAMS_WEBHOOK_URL,ALERT_WEBHOOK_SECRET", "ALERT_TEAMS_WEBHOOK_URL,ALERT_WEBHOOK_SECRET"),
        ("", None),
    ):
        store.save("pg-prod", {**store.load("pg-prod"), "ALERT_SECRET_SETTINGS": value})
        run = stand_in.up("pg-prod", no_prompt=True)
        assert run.deployments[-1].get("alertSecretSettings") == expected
        settings = alert_secret_app_settings(run.deployments[-1].get("alertSecretSettings", ""))
        assert {name for name, v in settings.items() if v} == set(value.split(",")) - {""}

"""infra/: every Bicep file parses (pycep-parser, offline) and holds the security properties the
deployment promises: Flex Consumption on Python 3.11 with none of its deprecated settings, HTTPS
and TLS 1.2 only, no FTP or basic publishing, the site's configuration children deployed one
after the other; a service identity with the least data roles, a Graph identity and a sign-in
identity with no role at all, each attached to the function app only; storage and telemetry
without keys, App Service Authentication in front of every route but the liveness probe with
neither a secret nor the implicit flow, ACS Email with a linked sender domain, and no secret
anywhere.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest

from partnerguard.graph.pacing import SCAN_PROCESSES
from tests.functions_index import FUNCTIONS, bindings
from tests.infra_bicep import (
    INFRA,
    MAIN,
    PARAMETERS_FILE,
    REPO,
    bicep_files,
    decorator,
    module_calls,
    parameters,
    resources,
    role_definition_ids,
    template,
    the_resource,
    variable,
)

FUNCTION_APP = INFRA / "modules" / "function-app.bicep"
STORAGE = INFRA / "modules" / "storage.bicep"
MONITORING = INFRA / "modules" / "monitoring.bicep"
COMMUNICATION = INFRA / "modules" / "communication.bicep"

# Built-in role definition ids (https://learn.microsoft.com/azure/role-based-access-control/built-in-roles).
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
COMMUNICATION_AND_EMAIL_SERVICE_OWNER = "09976791-48a7-449e-bb21-39d1a415f350"
# The custom role ACS documents for sending with an Entra identity (communication.bicep cites it).
EMAIL_SENDER_ACTIONS = {
    "Microsoft.Communication/CommunicationServices/Read",
    "Microsoft.Communication/CommunicationServices/Write",
    "Microsoft.Communication/EmailServices/write",
}
BROAD_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "17d1049b-9a84-46fb-8f53-869881c3d3ab": "Storage Account Contributor",
    "81a9662b-bebf-436f-a333-f67b29880f12": "Storage Account Key Operator Service Role",
    COMMUNICATION_AND_EMAIL_SERVICE_OWNER: "Communication and Email Service Owner (lists the ACS keys)",
}
# Site properties the Flex Consumption plan deprecates
# (https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations).
FLEX_DEPRECATED_SITE_PROPERTIES = {
    "ftpsState",
    "use32BitWorkerProcess",
    "isReserved",
    "IsXenon",
    "windowsFxVersion",
    "alwaysOn",
    "preWarmedInstanceCount",
    "functionAppScaleLimit",
    "containerSize",
    "javaVersion",
    "powerShellVersion",
    "netFrameworkVersion",
    "linuxFxVersion",
}


def code_lines(path: Path) -> list[str]:
    """The Bicep text without comments (a `//` inside a string such as https:// is kept)."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("//")]
    return [re.sub(r"\s//.*$", "", line) for line in lines]


# -- the files ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_bicep_file_parses(path: Path) -> None:
    document = template(path)
    assert document.get("resources") or document.get("modules")


def test_templates_use_plain_resources_and_local_modules_only() -> None:
    for path in bicep_files():
        for name, module in template(path).get("modules", {}).items():
            assert module["type"] == "local", f"{path.name}: module {name} comes from a registry"
            assert (path.parent / module["detail"]["path"]).is_file()
        # checkov's Bicep parser has no user-defined types or imports; keep the templates readable to it.
        for line in code_lines(path):
            assert not re.match(r"\s*(type|import|extension|func)\s", line), f"{path.name}: {line.strip()}"


def test_every_module_call_passes_exactly_the_modules_parameters() -> None:
    """What `bicep build` would check, offline: required parameters given, no unknown ones."""
    for name, module in module_calls().items():
        declared = parameters(MAIN.parent / module["detail"]["path"])
        given = set(module["config"]["params"])
        required = {p for p, spec in declared.items() if spec.get("default") is None}
        assert required <= given, f"module {name} misses {sorted(required - given)}"
        assert given <= set(declared), f"module {name} passes unknown {sorted(given - set(declared))}"


def test_the_parameters_file_names_main_parameters_and_gives_every_required_one() -> None:
    given = json.loads(PARAMETERS_FILE.read_text())["parameters"]
    declared = parameters(MAIN)
    assert set(given) <= set(declared)
    required = {p for p, spec in declared.items() if spec.get("default") is None}
    assert required <= set(given)
    for name, entry in given.items():
        assert re.fullmatch(r"\$\{[A-Z][A-Z0-9_]*(=[^}]*)?\}", entry["value"]), f"{name}: azd substitution expected"


# -- the function app ---------------------------------------------------------------------------


def test_the_app_runs_on_flex_consumption_with_the_projects_python() -> None:
    plan = the_resource("Microsoft.Web/serverfarms")
    assert plan.body["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan.properties["reserved"] is True  # Linux
    site = the_resource("Microsoft.Web/sites")
    assert site.body["kind"] == "functionapp,linux"
    runtime = site.properties["functionAppConfig"]["runtime"]
    requires_python = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert runtime["name"] == "python"
    assert f">={runtime['version']}" in requires_python
    scale = site.properties["functionAppConfig"]["scaleAndConcurrency"]
    assert set(scale) == {"maximumInstanceCount", "instanceMemoryMB"}


def test_the_scan_worker_scales_to_as_many_processes_as_the_graph_pacer_shares_the_app_limits_among() -> None:
    """Each scanning process paces to 1/SCAN_PROCESSES of Graph's app-wide limits: more instances
    than that would exceed them together (docs/scaling.md)."""
    site = the_resource("Microsoft.Web/sites")
    assert site.properties["functionAppConfig"]["scaleAndConcurrency"]["maximumInstanceCount"] == "maximumInstanceCount"
    assert parameters(FUNCTION_APP)["maximumInstanceCount"]["default"] == SCAN_PROCESSES
    assert "maximumInstanceCount" not in module_calls()["functionApp"]["config"]["params"]
    settings = the_resource("Microsoft.Web/sites/config", "appsettings").properties
    assert "FUNCTIONS_WORKER_PROCESS_COUNT" not in settings  # one Python process per instance


def test_the_app_takes_https_and_tls_1_2_only_and_no_ftp_or_basic_publishing() -> None:
    site = the_resource("Microsoft.Web/sites")
    assert site.properties["httpsOnly"] is True
    assert site.properties["siteConfig"]["minTlsVersion"] == "1.2"
    assert site.properties["siteConfig"]["scmMinTlsVersion"] == "1.2"
    policies = resources("Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    assert {p.name: p.properties["allow"] for p in policies} == {"ftp": False, "scm": False}


def test_no_site_property_flex_consumption_deprecates() -> None:
    """FTP is refused by the `ftp` policy above, not by ftpsState, which Flex Consumption deprecates."""
    site = the_resource("Microsoft.Web/sites")
    used = {key.lower() for key in site.properties} | {key.lower() for key in site.properties["siteConfig"]}
    assert not used & {name.lower() for name in FLEX_DEPRECATED_SITE_PROPERTIES}


def test_the_sites_configuration_children_deploy_one_after_the_other() -> None:
    """ARM deploys siblings in parallel, and concurrent updates of one site's configuration race:
    app settings, then authentication (it names an app setting), then the FTP and SCM policies."""
    children = resources("Microsoft.Web/sites/config") + resources(
        "Microsoft.Web/sites/basicPublishingCredentialsPolicies"
    )
    assert all(child.body["parent"] == "functionApp" for child in children)
    after = {child.symbol: list(child.body.get("dependsOn") or []) for child in children}
    order = [symbol for symbol, needs in after.items() if not needs]
    assert len(order) == 1, f"one child goes first, found {order}"
    while len(order) < len(children):
        followers = [symbol for symbol, needs in after.items() if needs == [order[-1]]]
        assert len(followers) == 1, f"one child after {order[-1]}, found {followers}: {after}"
        order.append(followers[0])
    names = {child.symbol: child.name for child in children}
    assert [names[symbol] for symbol in order] == ["appsettings", "authsettingsV2", "ftp", "scm"]


def references(value: Any, name: str) -> bool:
    """Whether a pycep expression names `name` (a symbol, or inside an interpolated string)."""
    text = json.dumps(value)
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text) is not None


def test_three_identities_each_attached_to_the_function_app_only() -> None:
    """The service identity, the Graph identity and the sign-in identity: three modules of one
    file, each passed to the function app and to nothing else that could run code."""
    assert len(resources("Microsoft.ManagedIdentity/userAssignedIdentities")) == 1  # one module...
    calls = {name: call for name, call in module_calls().items() if call["detail"]["path"] == "modules/identity.bicep"}
    assert set(calls) == {"identity", "graphIdentity", "signInIdentity"}  # ...called three times
    names = {json.dumps(call["config"]["params"]["name"]) for call in calls.values()}
    assert len(names) == 3
    site = the_resource("Microsoft.Web/sites")
    assert site.body["identity"]["type"] == "UserAssigned"
    assert set(site.body["identity"]["userAssignedIdentities"]) == {
        "'${identityId}'",
        "'${graphIdentityId}'",
        "'${signInIdentityId}'",
    }
    # The Graph and sign-in identities reach only the function app module, as its id and client id.
    for identity, parameters_ in (
        ("graphIdentity", {"graphIdentityId", "graphIdentityClientId"}),
        ("signInIdentity", {"signInIdentityId", "signInIdentityClientId"}),
    ):
        for name, call in module_calls().items():
            given = {key for key, value in call["config"]["params"].items() if references(value, identity)}
            assert given == (parameters_ if name == "functionApp" else set()), f"{identity} reaches {name}: {given}"


def test_the_graph_identity_is_only_the_graph_apps_credential() -> None:
    """In the function app it appears once to attach it and once as the setting the Graph
    credential reads; it signs in to no Azure service (no data-plane role, no deployment storage,
    no Key Vault references, no connection)."""
    site = the_resource("Microsoft.Web/sites")
    assert not references(site.properties, "graphIdentityId")
    assert not references(site.properties, "graphIdentityClientId")
    settings = the_resource("Microsoft.Web/sites/config", "appsettings").properties
    assert settings["PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID"] == "graphIdentityClientId"
    assert [key for key, value in settings.items() if references(value, "graphIdentityClientId")] == [
        "PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID"
    ]
    assert [key for key, value in settings.items() if references(value, "signInIdentityClientId")] == [
        "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID"
    ]
    for assignment in resources("Microsoft.Authorization/roleAssignments"):
        assert assignment.properties["principalId"] == "identityPrincipalId"


def test_the_service_identity_serves_the_app_and_its_deployment() -> None:
    site = the_resource("Microsoft.Web/sites")
    deployment = site.properties["functionAppConfig"]["deployment"]["storage"]
    assert deployment["type"] == "blobContainer"
    assert deployment["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": "identityId",
    }
    call = module_calls()["functionApp"]["config"]["params"]
    assert "identity" in json.dumps(call["identityId"]) and "identity" in json.dumps(call["identityClientId"])


def test_app_service_authentication_guards_every_route_but_the_anonymous_ones() -> None:
    auth = the_resource("Microsoft.Web/sites/config", "authsettingsV2").properties
    assert auth["platform"]["enabled"] is True
    validation = auth["globalValidation"]
    assert validation["requireAuthentication"] is True
    assert validation["unauthenticatedClientAction"] == "RedirectToLoginPage"
    assert auth["httpSettings"]["requireHttps"] is True

    # Exactly the routes the app itself leaves anonymous are excluded; every other route also
    # keeps its function key (authLevel function), so keys still guard automation.
    anonymous: set[str] = set()
    keyed: set[str] = set()
    for name in FUNCTIONS:
        for binding in bindings(name):
            if binding["type"] == "httpTrigger":
                route, level = f"/api/{binding['route']}", binding["authLevel"].lower()
                assert level in ("anonymous", "function"), f"{route}: authLevel {level}"
                (anonymous if level == "anonymous" else keyed).add(route)
    assert keyed, "function keys guard every other route"
    assert set(validation["excludedPaths"]) == anonymous

    entra = auth["identityProviders"]["azureActiveDirectory"]
    assert entra["enabled"] is True
    assert entra["registration"]["clientId"] == "signInClientId"
    assert entra["registration"]["openIdIssuer"] == "${loginEndpoint}${partnerTenantId}/v2.0"


def test_app_service_authentication_has_neither_a_secret_nor_the_implicit_flow() -> None:
    """Without a client credential App Service Authentication uses the implicit grant. Its
    credential is the sign-in identity's token: the setting OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID
    holds that identity's client id, and registration names the setting (a preview feature:
    https://learn.microsoft.com/azure/app-service/configure-authentication-provider-aad#use-a-managed-identity-instead-of-a-secret-preview).
    No secret, no certificate; the sign-in app's implicit grant is off (tests/test_setup_identity.py)."""
    auth = the_resource("Microsoft.Web/sites/config", "authsettingsV2").properties
    registration = auth["identityProviders"]["azureActiveDirectory"]["registration"]
    assert registration["clientSecretSettingName"] == "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID"
    assert set(registration) == {"clientId", "clientSecretSettingName", "openIdIssuer"}
    settings = the_resource("Microsoft.Web/sites/config", "appsettings").properties
    assert settings["OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID"] == "signInIdentityClientId"
    call = module_calls()["functionApp"]["config"]["params"]
    assert references(call["signInIdentityClientId"], "signInIdentity")
    # Authentication is deployed after the app setting it names.
    assert the_resource("Microsoft.Web/sites/config", "authsettingsV2").body["dependsOn"] == ["appSettings"]


# -- storage ------------------------------------------------------------------------------------


def test_storage_allows_neither_keys_nor_anonymous_access() -> None:
    storage = the_resource("Microsoft.Storage/storageAccounts").properties
    assert storage["allowSharedKeyAccess"] is False
    assert storage["allowBlobPublicAccess"] is False
    assert storage["defaultToOAuthAuthentication"] is True
    assert storage["minimumTlsVersion"] == "TLS1_2"
    assert storage["supportsHttpsTrafficOnly"] is True
    assert storage["allowCrossTenantReplication"] is False
    for container in resources("Microsoft.Storage/storageAccounts/blobServices/containers"):
        assert container.properties["publicAccess"] == "None"


def test_the_service_identity_gets_the_least_data_roles_and_nothing_broad() -> None:
    storage_roles = {STORAGE_BLOB_DATA_OWNER, STORAGE_QUEUE_DATA_CONTRIBUTOR, STORAGE_TABLE_DATA_CONTRIBUTOR}
    assert role_definition_ids(STORAGE) == {"identityPrincipalId": storage_roles}
    assert role_definition_ids(MONITORING) == {"identityPrincipalId": {MONITORING_METRICS_PUBLISHER}}
    assert role_definition_ids(COMMUNICATION) == {"identityPrincipalId": {"custom:emailSenderRole"}}
    # The email role: exactly the actions ACS documents, no data actions, assignable in its own
    # resource group only, and assigned on the Communication Services resource.
    email_role = the_resource("Microsoft.Authorization/roleDefinitions")
    assert email_role.file == COMMUNICATION and email_role.properties["type"] == "CustomRole"
    (permissions,) = email_role.properties["permissions"]
    assert set(variable(COMMUNICATION, permissions["actions"])) == EMAIL_SENDER_ACTIONS
    assert (permissions["notActions"], permissions["dataActions"], permissions["notDataActions"]) == ([], [], [])
    (scope,) = email_role.properties["assignableScopes"]
    assert "resource_group" in json.dumps(scope)
    (email_assignment,) = [r for r in resources("Microsoft.Authorization/roleAssignments") if r.file == COMMUNICATION]
    assert email_assignment.body["scope"] == "communication"
    for assignment in resources("Microsoft.Authorization/roleAssignments"):
        assert assignment.properties["principalType"] == "ServicePrincipal"
        assert assignment.body["scope"] != "resourceGroup", "roles are scoped to one resource"
    for path in bicep_files():
        for role, name in BROAD_ROLES.items():
            assert role not in path.read_text(), f"{path.name} assigns {name}"
    # Every module that assigns roles gets the one identity's principal id from main.bicep.
    for name in ("storage", "monitoring", "communication"):
        principal = module_calls()[name]["config"]["params"]["identityPrincipalId"]
        assert principal["operator"]["operands"]["operand_1"] == "identity"


# -- telemetry ----------------------------------------------------------------------------------


def test_application_insights_takes_entra_authenticated_telemetry_only() -> None:
    components = the_resource("Microsoft.Insights/components").properties
    assert components["DisableLocalAuth"] is True
    assert components["WorkspaceResourceId"]
    workspace = the_resource("Microsoft.OperationalInsights/workspaces").properties
    assert workspace["features"]["disableLocalAuth"] is True
    settings = the_resource("Microsoft.Web/sites/config", "appsettings").properties
    # Without the authentication string (and the publisher role), an Entra-only component drops
    # everything the app sends, silently.
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == "ClientId=${identityClientId};Authorization=AAD"
    assert settings["APPLICATIONINSIGHTS_CONNECTION_STRING"] == "appInsightsConnectionString"
    assert role_definition_ids(MONITORING) == {"identityPrincipalId": {MONITORING_METRICS_PUBLISHER}}


# -- email --------------------------------------------------------------------------------------


def test_acs_email_has_a_linked_sender_domain_wired_into_the_app() -> None:
    domains = {r.properties["domainManagement"]: r for r in resources("Microsoft.Communication/emailServices/domains")}
    assert set(domains) == {"AzureManaged", "CustomerManaged"}
    # The Azure-managed domain (10 mails an hour) only when no custom domain is given.
    not_custom = {"operator": {"type": "not", "operands": {"bool_value": "useCustomDomain"}}}
    assert domains["AzureManaged"].condition == not_custom
    assert domains["CustomerManaged"].condition == "useCustomDomain"
    assert decorator(parameters(MAIN)["emailCustomDomain"], "description")
    assert parameters(MAIN)["emailCustomDomain"]["default"] == ""

    communication = the_resource("Microsoft.Communication/communicationServices").properties
    linked = json.dumps(communication["linkedDomains"])
    assert "customDomain" in linked and "azureManagedDomain" in linked and "emailReady" in linked

    settings = the_resource("Microsoft.Web/sites/config", "appsettings").properties
    assert settings["ACS_ENDPOINT"] == "acsEndpoint"
    assert settings["EMAIL_SENDER"] == "emailSender"
    call = module_calls()["functionApp"]["config"]["params"]
    assert json.dumps(call["acsEndpoint"]).count("communication") == 1
    assert json.dumps(call["emailSender"]).count("communication") == 1
    outputs = template(COMMUNICATION)["outputs"]
    assert "communication.properties.hostName" in json.dumps(outputs["endpoint"])
    assert "${senderUsername}@${senderDomain}" in json.dumps(outputs["senderAddress"])
    assert "mailFromSenderDomain" in json.dumps(variable(COMMUNICATION, "senderDomain"))


# -- secrets --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_no_template_reads_or_stores_a_secret(path: Path) -> None:
    text = "\n".join(code_lines(path))
    for forbidden in ("listKeys", "listConnectionStrings", "AccountKey=", "@secure"):
        assert forbidden not in text, f"{path.name} uses {forbidden}"
    # Authentication names an app setting only for the managed identity's assertion, never a secret.
    for setting in re.findall(r"clientSecretSettingName:\s*'([^']*)'", text):
        assert setting == "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID", f"{path.name}: {setting}"
    assert text.count("clientSecretSettingName") == len(re.findall(r"clientSecretSettingName:\s*'", text))


# Parameters whose names sound secret but are not, and why.
NOT_SECRET = {
    # The component refuses its instrumentation key (DisableLocalAuth, tested above): the string
    # only names where telemetry goes, and sending still needs an Entra token.
    "appInsightsConnectionString",
}


def test_no_parameter_is_a_secret() -> None:
    for path in bicep_files():
        for name, spec in parameters(path).items():
            secret_like = re.search(r"(secret|password|key|connectionstring)$", name, re.IGNORECASE)
            assert not secret_like or name in NOT_SECRET, f"{path.name}: {name}"
            assert spec.get("type") != "securestring"


# Outputs whose names sound secret but are not, and why.
NOT_SECRET_OUTPUTS = {
    # The vault's name, where the partner stores the alert secrets; it names no secret.
    "PARTNERGUARD_KEY_VAULT_NAME",
}


def test_the_outputs_name_no_secret() -> None:
    outputs: dict[str, Any] = template(MAIN)["outputs"]
    secret_like = {name for name in outputs if re.search(r"SECRET|KEY|PASSWORD|CONNECTION_STRING", name)}
    assert secret_like <= NOT_SECRET_OUTPUTS

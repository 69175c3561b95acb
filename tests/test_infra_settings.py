"""infra/ sets every app setting the code reads, in the form Azure needs, and nothing Azure must not
have. The list of settings comes from the code itself — `Settings.from_env` run over an
environment that records what it is asked for, and the bindings `function_app` registers — so a
setting added to the code without the template fails here.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from partnerguard import settings as settings_module
from partnerguard.clouds import CLOUDS
from partnerguard.settings import Settings
from tests.functions_index import FUNCTIONS, bindings
from tests.infra_bicep import (
    INFRA,
    MAIN,
    REPO,
    decorator,
    module_calls,
    parameters,
    template,
    the_resource,
)

COMMUNICATION = INFRA / "modules" / "communication.bicep"

# Settings the code reads that the template leaves unset on purpose, and why.
LOCAL_ONLY = {
    "AZURE_CLIENT_SECRET": "a secret; in Azure the managed identity is the app's federated credential",
    "AZURE_CLIENT_CERTIFICATE_PATH": "local use; in Azure the managed identity is the app's federated credential",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD": "local use, with the certificate",
    "AZURE_FEDERATED_TOKEN_FILE": "CI use (GitHub's OIDC token); in Azure the managed identity is the app's "
    "federated credential",
    "ACS_CONNECTION_STRING": "a secret; Azure sends with ACS_ENDPOINT and the managed identity",
    "EMAIL_OUTBOX_DIR": "local use and the demo: alerts as .eml files instead of email",
    "PARTNERGUARD_STORAGE": "the connection-string form; Azure uses the identity-based PARTNERGUARD_STORAGE__*",
    "PARTNERGUARD_CA_BUNDLE": "extra CAs for test doubles and TLS-inspecting proxies",
    "GRAPH_ENDPOINT": "derived from AZURE_CLOUD; an override for test doubles and private endpoints",
    "AZURE_AUTHORITY_HOST": "derived from AZURE_CLOUD; an override for test doubles and private endpoints",
}
# Settings App Service itself provides to every app.
PLATFORM = {
    "WEBSITE_HOSTNAME": "the app's default host name",
    "WEBSITE_INSTANCE_ID": "set on every Azure instance",
}
# Settings the Flex Consumption plan rejects or ignores: it takes the runtime from functionAppConfig
# and has no content share (https://learn.microsoft.com/azure/azure-functions/functions-app-settings#flex-consumption-plan-deprecations).
FLEX_REJECTED = {
    "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "FUNCTIONS_MAX_HTTP_CONCURRENCY",
    "FUNCTIONS_WORKER_PROCESS_COUNT",
    "FUNCTIONS_WORKER_DYNAMIC_CONCURRENCY_ENABLED",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTOVERVNET",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_NODE_DEFAULT_VERSION",
    "WEBSITE_MAX_DYNAMIC_APPLICATION_SCALE_OUT",
    "WEBSITE_SKIP_CONTENTSHARE_VALIDATION",
}
# The storage service each kind of binding reaches through its connection.
BINDING_SERVICE = {"queueTrigger": "queue", "queue": "queue", "blobTrigger": "blob", "blob": "blob", "table": "table"}


class RecordingEnvironment(dict[str, str]):
    """An environment that remembers every name it is asked for."""

    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.asked.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.asked.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.asked.add(key)
        return super().__contains__(key)


def settings_the_code_reads() -> set[str]:
    """Every name Settings.from_env reads: once as on a developer's machine, once with
    identity-based storage (which reads the __credential and __clientId it otherwise skips)."""
    asked: set[str] = set()
    for values in (
        {},
        {
            "PARTNERGUARD_STORAGE__tableServiceUri": "https://account.table.core.windows.net",
            "PARTNERGUARD_STORAGE__queueServiceUri": "https://account.queue.core.windows.net",
        },
    ):
        environment = RecordingEnvironment(values)
        Settings.from_env(environment)
        asked |= environment.asked
    return asked


def binding_settings() -> dict[str, str]:
    """Settings the Functions bindings name: `%NAME%` expressions, and each connection's
    identity-based service URI (setting name -> the binding that needs it)."""
    needed: dict[str, str] = {}
    for name in FUNCTIONS:
        for binding in bindings(name):
            for value in binding.values():
                for setting in re.findall(r"%([A-Za-z0-9_]+)%", str(value)):
                    needed[setting] = f"{name}.{binding['name']}"
            if "connection" in binding:
                assert binding["type"] in BINDING_SERVICE, f"{name}: a {binding['type']} connection is not modelled"
                service = BINDING_SERVICE[binding["type"]]
                needed[f"{binding['connection']}__{service}ServiceUri"] = f"{name}.{binding['name']}"
    return needed


@pytest.fixture(scope="module")
def app_settings() -> dict[str, Any]:
    settings: dict[str, Any] = the_resource("Microsoft.Web/sites/config", "appsettings").properties
    return settings


# -- nothing missing --------------------------------------------------------------------------


def test_the_template_sets_every_setting_the_code_reads_in_azure(app_settings: dict[str, Any]) -> None:
    required = settings_the_code_reads() - set(LOCAL_ONLY) - set(PLATFORM)
    missing = required - set(app_settings)
    assert not missing, f"infra/modules/function-app.bicep lacks {sorted(missing)}"


def test_the_template_sets_every_setting_the_bindings_name(app_settings: dict[str, Any]) -> None:
    needed = binding_settings()
    assert "SCAN_SCHEDULE" in needed, "the timer's schedule is an app setting (%SCAN_SCHEDULE%)"
    missing = {setting: binding for setting, binding in needed.items() if setting not in app_settings}
    assert not missing, f"bindings need {missing}"


def test_every_connection_is_identity_based_with_the_user_assigned_identity(app_settings: dict[str, Any]) -> None:
    connections = {b["connection"] for name in FUNCTIONS for b in bindings(name) if "connection" in b}
    # The host's own storage too; its connection-string form must not be there.
    for connection in connections | {"AzureWebJobsStorage"}:
        assert connection not in app_settings, f"{connection}: a connection string, not an identity"
        assert app_settings[f"{connection}__credential"] == "managedidentity"
        assert app_settings[f"{connection}__clientId"] == "identityClientId"
    for service in ("blob", "queue", "table"):
        assert app_settings[f"AzureWebJobsStorage__{service}ServiceUri"] == f"{service}Endpoint"
    assert app_settings["PARTNERGUARD_IDENTITY_CLIENT_ID"] == "identityClientId"
    accessor = module_calls()["functionApp"]["config"]["params"]["identityClientId"]["operator"]["operands"]
    assert accessor["operand_1"] == "identity"
    assert accessor["operand_2"]["operator"]["operands"] == {"operand_1": "outputs", "operand_2": "clientId"}


# -- nothing extra ----------------------------------------------------------------------------


def test_no_local_only_setting_or_secret_is_set(app_settings: dict[str, Any]) -> None:
    assert not set(LOCAL_ONLY) & set(app_settings), "secrets and local-only settings stay out of Azure"
    assert not set(PLATFORM) & set(app_settings)


def test_nothing_flex_consumption_rejects_is_set(app_settings: dict[str, Any]) -> None:
    assert not FLEX_REJECTED & set(app_settings)


def test_the_exemptions_are_settings_the_code_really_reads() -> None:
    """A setting dropped from the code must leave these lists too, or they hide nothing."""
    assert set(LOCAL_ONLY) | set(PLATFORM) <= settings_the_code_reads()


def test_every_setting_of_the_local_example_is_accounted_for(app_settings: dict[str, Any]) -> None:
    example = json.loads((REPO / "local.settings.example.json").read_text())["Values"]
    # AzureWebJobsStorage is set in its identity form; FUNCTIONS_WORKER_RUNTIME is for Core Tools.
    local_forms = {"AzureWebJobsStorage": "AzureWebJobsStorage__credential", "FUNCTIONS_WORKER_RUNTIME": None}
    for name in example:
        if name in local_forms:
            identity_form = local_forms[name]
            assert identity_form is None or identity_form in app_settings
            continue
        assert name in app_settings or name in LOCAL_ONLY, f"{name} is neither set nor exempted"


# -- the template's defaults are the code's -----------------------------------------------------


class Unresolved(Exception):
    """The value depends on a deployed resource or a value given at deployment."""


def bicep_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def evaluate(expression: Any, scope: Callable[[str], Any]) -> Any:
    """The value of the few expression forms the app settings use; Unresolved otherwise."""
    if isinstance(expression, bool | int) or expression is None:
        return expression
    if isinstance(expression, str):
        if "${" in expression:
            raise Unresolved(expression)
        return scope(expression)
    if "function" in expression and expression["function"]["type"] == "string":
        return bicep_string(evaluate(expression["function"]["parameters"]["value_to_convert"], scope))
    if "function" in expression and expression["function"]["type"] == "empty":
        return not evaluate(expression["function"]["parameters"]["item_to_test"], scope)
    if "operator" in expression and expression["operator"]["type"] == "conditional":
        operands = expression["operator"]["operands"]
        condition = evaluate(operands["condition"], scope)
        return evaluate(operands["true_value" if condition else "false_value"], scope)
    raise Unresolved(json.dumps(expression)[:80])


def main_scope(name: str) -> Any:
    """A name in main.bicep: a parameter with a literal default resolves to it."""
    declared = parameters(MAIN).get(name)
    if declared is None or not isinstance(declared.get("default"), str | int | bool):
        raise Unresolved(name)
    return declared["default"]


def module_scope(name: str) -> Any:
    """A name in function-app.bicep: a parameter resolves to what main.bicep passes."""
    call = module_calls()["functionApp"]["config"]["params"]
    if name not in call:
        return name  # not a parameter: a string literal
    argument = call[name]
    if isinstance(argument, str) and argument not in parameters(MAIN):
        raise Unresolved(argument)  # a variable or resource of main.bicep
    return evaluate(argument, main_scope)


@pytest.fixture
def readers_with_defaults(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """The settings read through the reader's defaulting methods (numbers, switches, schedule)."""
    names: set[str] = set()
    reader = settings_module._Reader
    for method in ("integer", "boolean", "schedule"):
        original = getattr(reader, method)
        signature = inspect.signature(original)

        def recording(self: Any, *args: Any, _original: Any = original, _signature: Any = signature, **kw: Any) -> Any:
            # schedule() takes no name: it reads SCAN_SCHEDULE.
            names.add(_signature.bind(self, *args, **kw).arguments.get("name", "SCAN_SCHEDULE"))
            return _original(self, *args, **kw)

        monkeypatch.setattr(reader, method, recording)
    Settings.from_env({})
    yield names


def test_the_templates_defaults_are_the_codes_defaults(
    app_settings: dict[str, Any], readers_with_defaults: set[str]
) -> None:
    resolved: dict[str, str] = {}
    for name, value in app_settings.items():
        try:
            resolved[name] = bicep_string(evaluate(value, module_scope))
        except Unresolved:
            continue  # e.g. storage endpoints, the identity, the ACS endpoint: known only once deployed
    assert readers_with_defaults <= set(resolved), "every defaulted setting comes from a parameter default"
    assert Settings.from_env(resolved) == Settings.from_env({})


def test_the_cloud_parameter_offers_exactly_the_clouds_the_code_knows() -> None:
    assert set(decorator(parameters(MAIN)["azureCloud"], "allowed")) == set(CLOUDS)


def test_until_a_sender_domain_is_linked_alerts_stay_off_so_the_app_still_starts(
    app_settings: dict[str, Any],
) -> None:
    """Recipients without ACS would stop the app at start (Settings' consistency check): the
    recipients, the endpoint and the sender all switch on the same `emailReady`."""
    assert module_calls()["communication"]["detail"]["path"] == "modules/communication.bicep"
    for name in ("ALERT_RECIPIENTS", "ALERT_RECIPIENTS_BY_TENANT"):
        condition = app_settings[name]["operator"]
        assert condition["type"] == "conditional" and condition["operands"]["condition"] == "emailReady"
        assert condition["operands"]["false_value"] == ""
    call = module_calls()["functionApp"]["config"]["params"]
    wiring = (("emailReady", "emailReady"), ("acsEndpoint", "endpoint"), ("emailSender", "senderAddress"))
    for parameter, output in wiring:
        accessor = call[parameter]["operator"]["operands"]
        assert accessor["operand_1"] == "communication"
        assert accessor["operand_2"]["operator"]["operands"] == {"operand_1": "outputs", "operand_2": output}
    outputs = template(COMMUNICATION)["outputs"]
    for output in ("endpoint", "senderAddress"):
        condition = outputs[output]["value"]["operator"]
        assert condition["type"] == "conditional" and condition["operands"]["condition"] == "emailReady"
        assert condition["operands"]["false_value"] == ""

    identity = {
        "PARTNERGUARD_IDENTITY_CLIENT_ID": "3c2b1a09-8f7e-4d6c-b5a4-938271605f4e",
        "PARTNERGUARD_STORAGE__tableServiceUri": "https://account.table.core.windows.net/",
        "PARTNERGUARD_STORAGE__queueServiceUri": "https://account.queue.core.windows.net/",
    }
    off = {"ALERT_RECIPIENTS": "", "ALERT_RECIPIENTS_BY_TENANT": "", "ACS_ENDPOINT": "", "EMAIL_SENDER": ""}
    on = {
        "ALERT_RECIPIENTS": "secops@contoso.example",
        "ACS_ENDPOINT": "https://acs-pg-abc.unitedstates.communication.azure.com",
        "EMAIL_SENDER": "DoNotReply@0a1b2c3d.azurecomm.net",
    }
    assert Settings.from_env({**identity, **off}).alert_recipients == ()
    assert Settings.from_env({**identity, **on}).acs_endpoint == on["ACS_ENDPOINT"]

"""infra/ and the settings file (docs/deploy.md, "Settings as code: the file in Azure"): with
`settingsFile` given, the template points PARTNERGUARD_CONFIG at the file inside the package and
leaves empty every setting it would otherwise fill with a default, so the file's values apply (a
non-empty app setting overrides the file, SPEC §5); only what the deployment itself knows stays set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from partnerguard.settings import Settings
from partnerguard.settings_file import SETTING_OF
from tests.infra_bicep import MAIN, module_calls, parameters, the_resource
from tests.test_infra_settings import Unresolved, bicep_string, evaluate, main_scope

EXAMPLE = Path(__file__).resolve().parent.parent / "docs" / "examples" / "partnerguard.yaml"
SETTINGS_FILE = "partnerguard.yaml"
# What the deployment knows better than any file: it stays set, and wins.
DEPLOYMENT_FACTS = {
    "AZURE_CLOUD",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "PARTNERGUARD_IDENTITY_CLIENT_ID",
    "PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID",
    "ACS_ENDPOINT",
    "EMAIL_SENDER",
    "PARTNERGUARD_PUBLIC_URL",
}
# Empty unless the partner gives them a value (parameters with an empty default, Key Vault
# references only for the secrets the partner named).
EMPTY_BY_DEFAULT = {"ALERT_RECIPIENTS", "ALERT_RECIPIENTS_BY_TENANT", "ALERT_ROUTES_BY_TENANT"}


def app_settings() -> dict[str, Any]:
    settings: dict[str, Any] = the_resource("Microsoft.Web/sites/config", "appsettings").properties
    return settings


def with_file_scope(name: str) -> Any:
    """A name in function-app.bicep, with main.bicep's settingsFile given and every other
    parameter at its default."""
    call = module_calls()["functionApp"]["config"]["params"]
    if name not in call:
        return name
    argument = call[name]
    if isinstance(argument, str) and argument not in parameters(MAIN):
        raise Unresolved(argument)
    return evaluate(argument, lambda n: SETTINGS_FILE if n == "settingsFile" else main_scope(n))


def test_the_settings_file_parameter_is_off_by_default_and_read_from_the_azd_environment() -> None:
    assert parameters(MAIN)["settingsFile"]["default"] == ""
    text = (MAIN.parent / "main.parameters.json").read_text(encoding="utf-8")
    assert '"settingsFile": { "value": "${PARTNERGUARD_SETTINGS_FILE=}" }' in text


def test_with_a_settings_file_the_template_points_at_it_inside_the_package() -> None:
    condition = app_settings()["PARTNERGUARD_CONFIG"]["operator"]["operands"]
    assert condition["condition"] == {"function": {"type": "empty", "parameters": {"item_to_test": "settingsFile"}}}
    assert (condition["true_value"], condition["false_value"]) == ("", "/home/site/wwwroot/${settingsFile}")


def test_with_a_settings_file_only_what_the_deployment_knows_overrides_it() -> None:
    settings = app_settings()
    still_set: dict[str, str] = {}
    for name in sorted(set(SETTING_OF.values()) & set(settings)):
        try:
            value = bicep_string(evaluate(settings[name], with_file_scope))
        except Unresolved:
            value = "(known once deployed)"
        if value:
            still_set[name] = value
    # PARTNERGUARD_TENANTS: pycep reads `!empty(a) ? b : c` as `!(empty(a) ? b : c)`, so its
    # argument is checked as text: the partner tenant is the default only without a file.
    still_set.pop("PARTNERGUARD_TENANTS", None)
    source = MAIN.read_text(encoding="utf-8")
    assert (
        "monitoredTenants: !empty(monitoredTenants) ? monitoredTenants : (empty(settingsFile) ? partnerTenantId : '')"
        in source
    )
    assert set(still_set) <= DEPLOYMENT_FACTS | EMPTY_BY_DEFAULT, still_set


def test_with_a_settings_file_its_values_apply_under_the_templates_settings() -> None:
    """The resolvable app settings of a deployment with the example file, read with the file:
    the file's thresholds and switches are what PartnerGuard uses."""
    resolved: dict[str, str] = {}
    for name, value in app_settings().items():
        try:
            resolved[name] = bicep_string(evaluate(value, with_file_scope))
        except Unresolved:
            continue
    resolved["PARTNERGUARD_CONFIG"] = str(EXAMPLE)  # where /home/site/wwwroot/partnerguard.yaml is here
    # The app settings the example's route names, and the webhook's signing secret (Key Vault
    # references in Azure).
    secrets = {
        "ALERT_TEAMS_WEBHOOK_URL_FABRIKAM": "https://prod-00.westus.logic.azure.com/workflows/0123",
        "ALERT_WEBHOOK_URL_FABRIKAM": "https://psa.fabrikam.example/hooks/partnerguard",
        "ALERT_WEBHOOK_SECRET": "0123456789abcdef0123456789abcdef",
    }
    from_file = Settings.from_env({"PARTNERGUARD_CONFIG": str(EXAMPLE), **secrets})
    deployed = Settings.from_env({**resolved, **secrets})
    for field in (
        "alert_reminder_hours",
        "alert_settle_seconds",
        "signin_lookback_hours",
        "credential_expiry_days",
        "secret_max_lifetime_days",
        "gdap_expiry_days",
        "include_guests",
        "run_retention_days",
        "discover_customers",
        "emergency_access_accounts",
    ):
        assert getattr(deployed, field) == getattr(from_file, field), field
    assert deployed.alert_reminder_hours == 24  # the example's, not the template's default 0

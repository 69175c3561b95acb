"""infra/ and the settings file (docs/deploy.md, "Settings as code: the file in Azure"): with
`settingsFile` given, the template points PARTNERGUARD_CONFIG at the file inside the package and
leaves empty every setting it would otherwise fill with a default, so the file's values apply (a
non-empty app setting overrides the file, SPEC §5); only what the deployment itself knows stays set."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from partnerguard.settings import ConfigError, Settings
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
    """The app settings of a deployment with the example file (every other parameter at its
    default), read with the file: the file's thresholds and switches are what PartnerGuard uses."""
    # The email transport is the deployment's (a linked sender domain): the example sets none.
    from_file = Settings.from_env({"PARTNERGUARD_CONFIG": str(EXAMPLE), **EMAIL_LINKED})
    deployed = Settings.from_env(default_app_settings(EMAIL_LINKED))
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


# What the template writes that is known only once deployed (resource ids, endpoints, the partner
# tenant), as a deployment with every parameter at its default would hold it. The test checks that
# exactly these are the unresolved ones, so a new app setting cannot slip past unmodelled.
SERVICE_IDENTITY = "3c2b1a09-8f7e-4d6c-b5a4-938271605f4e"
KNOWN_ONCE_DEPLOYED = {
    "AzureWebJobsStorage__clientId": SERVICE_IDENTITY,
    "AzureWebJobsStorage__blobServiceUri": "https://stpgexample.blob.core.windows.net/",
    "AzureWebJobsStorage__queueServiceUri": "https://stpgexample.queue.core.windows.net/",
    "AzureWebJobsStorage__tableServiceUri": "https://stpgexample.table.core.windows.net/",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000000",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": f"ClientId={SERVICE_IDENTITY};Authorization=AAD",
    # With a settings file the template leaves the tenants to it (test above).
    "PARTNERGUARD_TENANTS": "",
    "AZURE_TENANT_ID": "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73",
    "PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID": "6f5e4d3c-2b1a-4098-8f7e-6d5c4b3a2918",
    "PARTNERGUARD_IDENTITY_CLIENT_ID": SERVICE_IDENTITY,
    "OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID": "8e7d6c5b-4a39-4281-9f0e-1d2c3b4a5968",
    "PARTNERGUARD_STORAGE__clientId": SERVICE_IDENTITY,
    "PARTNERGUARD_STORAGE__tableServiceUri": "https://stpgexample.table.core.windows.net/",
    "PARTNERGUARD_STORAGE__queueServiceUri": "https://stpgexample.queue.core.windows.net/",
    "PARTNERGUARD_PUBLIC_URL": "https://func-pg-example.azurewebsites.net",
    "PARTNERGUARD_CONFIG": str(EXAMPLE),  # /home/site/wwwroot/partnerguard.yaml in Azure
}
# The alert settings that switch on communication.outputs.emailReady, in its two states: the
# Azure-managed domain (the default) is linked at once; a custom domain is not until verified.
EMAIL_LINKED = {
    "ALERT_RECIPIENTS": "",  # the parameter's default
    "ALERT_RECIPIENTS_BY_TENANT": "",
    "ACS_ENDPOINT": "https://acs-pg-example.unitedstates.communication.azure.com",
    "EMAIL_SENDER": "DoNotReply@0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d.azurecomm.net",
}
EMAIL_NOT_LINKED = dict.fromkeys(EMAIL_LINKED, "")


def default_app_settings(email: dict[str, str]) -> dict[str, str]:
    """The app settings of a deployment with the example as its settings file and every other
    parameter at its default (ALERT_SECRET_SETTINGS unset, so the four alert secrets are '')."""
    from tests.test_infra_key_vault import alert_secret_app_settings

    resolved: dict[str, str] = {}
    unresolved: set[str] = set()
    for name, value in app_settings().items():
        try:
            resolved[name] = bicep_string(evaluate(value, with_file_scope))
        except Unresolved:
            unresolved.add(name)
    alert_secrets = alert_secret_app_settings("")
    assert unresolved == set(KNOWN_ONCE_DEPLOYED) | set(email) | set(alert_secrets)
    assert set(alert_secrets.values()) == {""}
    return {**resolved, **alert_secrets, **KNOWN_ONCE_DEPLOYED, **email}


def test_the_documented_example_starts_with_the_app_settings_the_template_writes() -> None:
    """Deployed as docs/deploy.md says (the file in the package, the template's app settings, no
    alert secret stored), the example starts: its routes carry recipients, and a per-tenant channel
    is shown only commented out (in Azure a tenant's own URL goes into the Key Vault secret
    alert-routes-by-tenant, since the template can set no other alert setting)."""
    settings = Settings.from_env(default_app_settings(EMAIL_LINKED))
    assert settings.alert_recipients == ("secops@contoso.example", "it-lead@contoso.example")
    route = settings.alert_routes_by_tenant["3b8e4f1a-2c6d-4a9e-8b7f-5d1c0e2a9f46"]
    assert route.recipients == ("fabrikam-admins@fabrikam.example",)
    assert (route.teams_url, route.webhook_url) == (None, None)
    # The email transport is the deployment's (a linked sender domain), not the file's.
    assert settings.acs_endpoint == EMAIL_LINKED["ACS_ENDPOINT"]
    assert settings.email_sender == EMAIL_LINKED["EMAIL_SENDER"]


def test_until_the_sender_domain_is_linked_the_example_stops_rather_than_send_from_it() -> None:
    """With a custom domain not yet verified the template writes ACS_ENDPOINT and EMAIL_SENDER
    empty; the example sets no email transport of its own, so its recipients stop the app at start
    (docs/deploy.md: recipients go in the file once the domain is linked) instead of mail going out
    from a domain ACS has not linked. `config validate` warns of exactly this."""
    with pytest.raises(ConfigError) as raised:
        Settings.from_env(default_app_settings(EMAIL_NOT_LINKED))
    assert raised.value.setting == "ALERT_RECIPIENTS"

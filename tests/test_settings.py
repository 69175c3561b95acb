"""Settings of SPEC §5: defaults, the cloud table, overrides, and fail-fast errors that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from partnerguard.settings import DEVELOPMENT_STORAGE, ConfigError, Settings

PARTNER = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
CUSTOMER = "c0ffee00-1b2c-4d3e-8f90-a1b2c3d4e5f6"


def test_defaults_match_the_spec() -> None:
    s = Settings.from_env({})
    assert s.tenants == ()
    assert s.discover_customers is False
    assert s.scan_schedule == "0 0 */6 * * *"
    assert s.cloud.name == "public"
    assert s.graph_endpoint == "https://graph.microsoft.com"
    assert s.authority_host == "https://login.microsoftonline.com"
    assert s.instance_discovery is True
    assert s.storage.connection_string == DEVELOPMENT_STORAGE
    assert (s.signin_lookback_hours, s.credential_expiry_days, s.secret_max_lifetime_days, s.gdap_expiry_days) == (
        168,
        30,
        180,
        30,
    )
    assert s.include_guests is False and s.run_retention_days == 365 and s.alert_reminder_hours == 0
    assert s.alert_settle_seconds == 300


@pytest.mark.parametrize(
    ("cloud", "graph", "login", "audience", "gdap"),
    [
        (
            "public",
            "https://graph.microsoft.com",
            "https://login.microsoftonline.com",
            "api://AzureADTokenExchange",
            True,
        ),
        (
            "usgov",
            "https://graph.microsoft.us",
            "https://login.microsoftonline.us",
            "api://AzureADTokenExchangeUSGov",
            False,
        ),
        (
            "usgovdod",
            "https://dod-graph.microsoft.us",
            "https://login.microsoftonline.us",
            "api://AzureADTokenExchangeUSGov",
            False,
        ),
        (
            "china",
            "https://microsoftgraph.chinacloudapi.cn",
            "https://login.chinacloudapi.cn",
            "api://AzureADTokenExchangeChina",
            False,
        ),
    ],
)
def test_cloud_table(cloud: str, graph: str, login: str, audience: str, gdap: bool) -> None:
    s = Settings.from_env({"AZURE_CLOUD": cloud.upper()})
    assert (s.graph_endpoint, s.authority_host, s.cloud.assertion_audience, s.cloud.gdap_available) == (
        graph,
        login,
        audience,
        gdap,
    )
    assert s.graph_scope == f"{graph}/.default"
    assert s.instance_discovery is True


def test_overrides_and_a_foreign_authority_disables_instance_discovery() -> None:
    s = Settings.from_env(
        {"GRAPH_ENDPOINT": "https://127.0.0.1:8443/", "AZURE_AUTHORITY_HOST": "https://127.0.0.1:8443"}
    )
    assert s.graph_endpoint == "https://127.0.0.1:8443"
    assert s.authority_host == "https://127.0.0.1:8443"
    assert s.instance_discovery is False


@pytest.mark.parametrize(
    ("env", "setting"),
    [
        ({"AZURE_CLOUD": "mars"}, "AZURE_CLOUD"),
        ({"PARTNERGUARD_TENANTS": f"{PARTNER},contoso.com"}, "PARTNERGUARD_TENANTS"),
        ({"AZURE_TENANT_ID": "contoso"}, "AZURE_TENANT_ID"),
        ({"AZURE_CLIENT_ID": "123"}, "AZURE_CLIENT_ID"),
        ({"GRAPH_ENDPOINT": "http://graph.microsoft.com"}, "GRAPH_ENDPOINT"),
        ({"GRAPH_ENDPOINT": "https://graph.microsoft.com/v1.0"}, "GRAPH_ENDPOINT"),
        ({"AZURE_AUTHORITY_HOST": "login.microsoftonline.com"}, "AZURE_AUTHORITY_HOST"),
        ({"SCAN_SCHEDULE": "0 */6 * * *"}, "SCAN_SCHEDULE"),
        ({"SIGNIN_LOOKBACK_HOURS": "a week"}, "SIGNIN_LOOKBACK_HOURS"),
        ({"SIGNIN_LOOKBACK_HOURS": "0"}, "SIGNIN_LOOKBACK_HOURS"),
        ({"INCLUDE_GUESTS": "maybe"}, "INCLUDE_GUESTS"),
        ({"ALERT_SETTLE_SECONDS": "5m"}, "ALERT_SETTLE_SECONDS"),
        ({"ALERT_SETTLE_SECONDS": "-1"}, "ALERT_SETTLE_SECONDS"),
        ({"ALERT_SETTLE_SECONDS": "86401"}, "ALERT_SETTLE_SECONDS"),
        ({"ALERT_RECIPIENTS": "admin@contoso.com"}, "ALERT_RECIPIENTS"),
        ({"ALERT_RECIPIENTS": "not-an-address", "EMAIL_OUTBOX_DIR": "out"}, "ALERT_RECIPIENTS"),
        ({"ALERT_RECIPIENTS_BY_TENANT": "{not json"}, "ALERT_RECIPIENTS_BY_TENANT"),
        ({"ALERT_RECIPIENTS_BY_TENANT": '{"contoso": ["a@b.c"]}'}, "ALERT_RECIPIENTS_BY_TENANT"),
        ({"ACS_CONNECTION_STRING": "endpoint=https://x/;accesskey=y"}, "EMAIL_SENDER"),
        ({"AZURE_CLIENT_CERTIFICATE_PATH": "/nonexistent/cert.pem"}, "AZURE_CLIENT_CERTIFICATE_PATH"),
        (
            {"PARTNERGUARD_STORAGE__tableServiceUri": "https://x.table.core.windows.net"},
            "PARTNERGUARD_STORAGE__queueServiceUri",
        ),
        ({"WEBSITE_INSTANCE_ID": "abc"}, "PARTNERGUARD_STORAGE"),
        ({"PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID": "graph-identity"}, "PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID"),
    ],
)
def test_bad_values_fail_fast_naming_the_setting(env: dict[str, str], setting: str) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env(env)
    assert error.value.setting == setting
    assert str(error.value).startswith(f"{setting}: ")


def test_lists_roles_and_recipients() -> None:
    s = Settings.from_env(
        {
            "PARTNERGUARD_TENANTS": f" {PARTNER.upper()} , {CUSTOMER},{PARTNER}",
            "AZURE_TENANT_ID": PARTNER,
            "ALERT_RECIPIENTS": "secops@contoso.com, ciso@contoso.com",
            "ALERT_RECIPIENTS_BY_TENANT": (
                f'{{"{CUSTOMER.upper()}": ["fabrikam-admin@fabrikam.com", "secops@contoso.com"]}}'
            ),
            "EMAIL_OUTBOX_DIR": "outbox",
        }
    )
    assert s.tenants == (PARTNER, CUSTOMER)
    assert s.role_of(PARTNER.upper()) == "partner" and s.role_of(CUSTOMER) == "customer"
    assert s.recipients_for(CUSTOMER) == ("secops@contoso.com", "ciso@contoso.com", "fabrikam-admin@fabrikam.com")
    assert s.recipients_for(PARTNER) == ("secops@contoso.com", "ciso@contoso.com")
    assert s.email_outbox_dir == Path("outbox")


def test_identity_based_storage() -> None:
    s = Settings.from_env(
        {
            "PARTNERGUARD_STORAGE__tableServiceUri": "https://pg.table.core.windows.net",
            "PARTNERGUARD_STORAGE__queueServiceUri": "https://pg.queue.core.windows.net",
            "PARTNERGUARD_STORAGE__credential": "managedidentity",
            "PARTNERGUARD_STORAGE__clientId": CUSTOMER,
        }
    )
    assert s.storage.connection_string is None
    assert s.storage.table_service_uri == "https://pg.table.core.windows.net"
    assert s.storage.managed_identity_client_id == CUSTOMER


def test_require_graph_names_what_is_missing() -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env({}).require_graph()
    assert error.value.setting == "AZURE_TENANT_ID"
    with pytest.raises(ConfigError) as error:
        Settings.from_env({"AZURE_TENANT_ID": PARTNER, "AZURE_CLIENT_ID": CUSTOMER}).require_graph()
    assert error.value.setting == "AZURE_CLIENT_SECRET"
    Settings.from_env(
        {"AZURE_TENANT_ID": PARTNER, "AZURE_CLIENT_ID": CUSTOMER, "PARTNERGUARD_IDENTITY_CLIENT_ID": CUSTOMER}
    ).require_graph()


GRAPH_IDENTITY = "3c2b1a09-8f7e-4d6c-b5a4-938271605f4e"
SERVICE_IDENTITY = "9e8d7c6b-5a49-4382-a1b0-c9d8e7f6a5b4"


def test_the_graph_identity_is_its_own_setting_and_the_service_identity_its_fallback() -> None:
    graph_only = {"AZURE_TENANT_ID": PARTNER, "AZURE_CLIENT_ID": CUSTOMER}
    both = Settings.from_env(
        {
            **graph_only,
            "PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID": GRAPH_IDENTITY.upper(),
            "PARTNERGUARD_IDENTITY_CLIENT_ID": SERVICE_IDENTITY,
        }
    )
    assert both.graph_identity_client_id == GRAPH_IDENTITY  # GUIDs are compared lower-cased
    assert both.identity_client_id == SERVICE_IDENTITY
    assert both.graph_assertion_identity == GRAPH_IDENTITY
    # Without a Graph identity the service identity stays the app's federated credential (SPEC §5).
    fallback = Settings.from_env({**graph_only, "PARTNERGUARD_IDENTITY_CLIENT_ID": SERVICE_IDENTITY})
    assert fallback.graph_identity_client_id is None
    assert fallback.graph_assertion_identity == SERVICE_IDENTITY
    # The Graph identity alone is a credential for Graph; it is never the storage identity.
    graph_alone = Settings.from_env({**graph_only, "PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID": GRAPH_IDENTITY})
    graph_alone.require_graph()
    assert graph_alone.identity_client_id is None
    identity_storage = Settings.from_env(
        {
            "PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID": GRAPH_IDENTITY,
            "PARTNERGUARD_IDENTITY_CLIENT_ID": SERVICE_IDENTITY,
            "PARTNERGUARD_STORAGE__tableServiceUri": "https://pg.table.core.windows.net",
            "PARTNERGUARD_STORAGE__queueServiceUri": "https://pg.queue.core.windows.net",
        }
    )
    assert identity_storage.storage.managed_identity_client_id == SERVICE_IDENTITY


def test_acs_with_a_managed_identity_needs_the_service_identity_not_the_graph_one() -> None:
    acs = {"ACS_ENDPOINT": "https://acs.communication.azure.com", "EMAIL_SENDER": "pg@contoso.example"}
    with pytest.raises(ConfigError) as error:
        Settings.from_env({**acs, "PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID": GRAPH_IDENTITY})
    assert error.value.setting == "PARTNERGUARD_IDENTITY_CLIENT_ID"


def test_secrets_are_not_in_repr() -> None:
    s = Settings.from_env(
        {
            "AZURE_CLIENT_SECRET": "s3cr3t-value",
            "ACS_CONNECTION_STRING": "endpoint=https://x/;accesskey=k3y",
            "EMAIL_SENDER": "a@b.c",
        }
    )
    assert "s3cr3t-value" not in repr(s)
    assert "k3y" not in repr(s)


@pytest.mark.parametrize(
    ("env", "secret"),
    [
        (
            {"ACS_ENDPOINT": "endpoint=https://x.communication.azure.com/;accesskey=SuperSecretKey123"},
            "SuperSecretKey123",
        ),
        (
            {
                "PARTNERGUARD_STORAGE__tableServiceUri": "http://pg.example/?sv=2024&sig=SECRETSIGNATURE",
                "PARTNERGUARD_STORAGE__queueServiceUri": "https://pg.queue.core.windows.net",
            },
            "SECRETSIGNATURE",
        ),
    ],
)
def test_configuration_errors_never_echo_a_secret(env: dict[str, str], secret: str) -> None:
    with pytest.raises(ConfigError) as error:
        Settings.from_env(env)
    assert secret not in str(error.value)


def test_a_guid_with_a_trailing_newline_is_not_a_guid() -> None:
    from partnerguard.settings import is_guid
    from partnerguard.storage.keys import is_run_id

    assert is_guid(PARTNER) and not is_guid(PARTNER + "\n")
    assert is_run_id("abc-123") and not is_run_id("abc\n")

"""Where alerts go (issue 17): the channel settings of SPEC §5 and each tenant's destinations.

`ALERT_TEAMS_WEBHOOK_URL`, `ALERT_WEBHOOK_URL` (+ `ALERT_WEBHOOK_SECRET`) and
`ALERT_ROUTES_BY_TENANT` are read and refused like every other setting, their values are secrets
(never in a message, a repr or a log), and `partnerguard.alerts.routing` turns them into one
destination per channel, each in its own outbox partition that a rotated URL keeps.
"""

from __future__ import annotations

import json

import pytest

from partnerguard.alerts.routing import channel_of, destination_of, destinations_for
from partnerguard.logs import redact, register_secret
from partnerguard.settings import ConfigError, Settings
from partnerguard.storage.alert_outbox import PARTITION_RE, recipients_key

NORTHWIND = "11111111-1111-4111-8111-111111111111"
FABRIKAM = "22222222-2222-4222-8222-222222222222"
TEAMS = "https://prod-12.westeurope.logic.azure.com/workflows/abc/triggers/manual/paths/invoke?sig=TEAMSSIG123"
HOOK = "https://psa.contoso.example/hooks/partnerguard?token=HOOKTOKEN456"
SECRET = "s" * 40
NORTHWIND_TEAMS = "https://prod-13.westeurope.logic.azure.com/workflows/nw/invoke?sig=NORTHWINDSIG789"


def settings(**env: str) -> Settings:
    return Settings.from_env({"EMAIL_OUTBOX_DIR": "outbox", **env})


def test_the_channel_settings_are_read_and_kept_out_of_repr_and_logs() -> None:
    read = settings(
        ALERT_TEAMS_WEBHOOK_URL=TEAMS,
        ALERT_WEBHOOK_URL=HOOK,
        ALERT_WEBHOOK_SECRET=SECRET,
        ALERT_ROUTES_BY_TENANT=json.dumps({NORTHWIND: {"teams": NORTHWIND_TEAMS}}),
    )
    assert (read.alert_teams_webhook_url, read.alert_webhook_url, read.alert_webhook_secret) == (TEAMS, HOOK, SECRET)
    assert read.alert_routes_by_tenant[NORTHWIND].teams_url == NORTHWIND_TEAMS
    for secret in (TEAMS, HOOK, SECRET, NORTHWIND_TEAMS):
        assert secret not in repr(read)
        assert secret in read.secret_values()
        register_secret(secret)
    assert all(secret not in redact(f"posting to {TEAMS} {HOOK} {SECRET}") for secret in (TEAMS, HOOK, SECRET))
    assert read.alerts_configured


@pytest.mark.parametrize(
    ("env", "setting", "says"),
    [
        ({"ALERT_WEBHOOK_URL": HOOK}, "ALERT_WEBHOOK_SECRET", "every webhook call is signed"),
        ({"ALERT_WEBHOOK_URL": HOOK, "ALERT_WEBHOOK_SECRET": "short"}, "ALERT_WEBHOOK_SECRET", "too short"),
        ({"ALERT_TEAMS_WEBHOOK_URL": "http://teams.example/x?sig=PLAIN"}, "ALERT_TEAMS_WEBHOOK_URL", "https://"),
        ({"ALERT_ROUTES_BY_TENANT": "{"}, "ALERT_ROUTES_BY_TENANT", "not valid JSON"),
        ({"ALERT_ROUTES_BY_TENANT": '{"contoso": {}}'}, "ALERT_ROUTES_BY_TENANT", "not a tenant id"),
        (
            {"ALERT_ROUTES_BY_TENANT": json.dumps({NORTHWIND: {"slack": "https://x.example"}})},
            "ALERT_ROUTES_BY_TENANT",
            "keys",
        ),
        (
            {"ALERT_ROUTES_BY_TENANT": json.dumps({NORTHWIND: {"recipients": ["not an address"]}})},
            "ALERT_ROUTES_BY_TENANT",
            "not an email address",
        ),
        (
            {"ALERT_ROUTES_BY_TENANT": json.dumps({NORTHWIND: {"teams": "ALERT_TEAMS_NORTHWIND"}})},
            "ALERT_ROUTES_BY_TENANT",
            "names the setting ALERT_TEAMS_NORTHWIND, which is not set",
        ),
        (
            {"ALERT_TEAMS_WEBHOOK_URL": "@Microsoft.KeyVault(VaultName=pg-kv;SecretName=alert-teams-webhook-url)"},
            "ALERT_TEAMS_WEBHOOK_URL",
            "Key Vault reference App Service could not resolve",
        ),
    ],
)
def test_bad_channel_settings_fail_naming_the_setting(env: dict[str, str], setting: str, says: str) -> None:
    with pytest.raises(ConfigError) as raised:
        settings(**env)
    assert raised.value.setting == setting
    assert says in str(raised.value)


def test_a_malformed_secret_url_is_refused_without_showing_it() -> None:
    leaked = "ftp://teams.example/hook?sig=DONOTSHOW"
    with pytest.raises(ConfigError) as raised:
        settings(ALERT_ROUTES_BY_TENANT=json.dumps({NORTHWIND: {"webhook": leaked}}), ALERT_WEBHOOK_SECRET=SECRET)
    assert "DONOTSHOW" not in str(raised.value)


def test_routed_addresses_without_an_email_transport_stop_the_app() -> None:
    with pytest.raises(ConfigError, match="ALERT_RECIPIENTS"):
        Settings.from_env({"ALERT_ROUTES_BY_TENANT": json.dumps({NORTHWIND: {"recipients": ["a@contoso.example"]}})})
    # Teams alone needs no email transport.
    assert Settings.from_env({"ALERT_TEAMS_WEBHOOK_URL": TEAMS}).alerts_configured


def test_a_route_may_name_the_setting_that_holds_its_url() -> None:
    read = settings(
        ALERT_ROUTES_BY_TENANT=json.dumps({NORTHWIND: {"teams": "ALERT_TEAMS_NORTHWIND"}}),
        ALERT_TEAMS_NORTHWIND=NORTHWIND_TEAMS,
    )
    assert read.alert_routes_by_tenant[NORTHWIND].teams_url == NORTHWIND_TEAMS
    assert NORTHWIND_TEAMS in read.secret_values()


def test_each_tenant_gets_the_defaults_plus_its_own_route() -> None:
    read = settings(
        ALERT_RECIPIENTS="secops@contoso.example",
        ALERT_TEAMS_WEBHOOK_URL=TEAMS,
        ALERT_WEBHOOK_URL=HOOK,
        ALERT_WEBHOOK_SECRET=SECRET,
        ALERT_ROUTES_BY_TENANT=json.dumps(
            {
                NORTHWIND: {"recipients": ["desk@northwind.example"], "teams": NORTHWIND_TEAMS},
                # The same URL as the default is the default destination: one card, not two.
                FABRIKAM: {"webhook": HOOK},
            }
        ),
    )
    northwind = destinations_for(read, NORTHWIND)
    assert [(d.channel, d.recipients, d.owner) for d in northwind] == [
        ("email", ("secops@contoso.example", "desk@northwind.example"), "default"),
        ("teams", (), "default"),
        ("teams", (), NORTHWIND),
        ("webhook", (), "default"),
    ]
    assert [d.url for d in northwind[1:]] == [TEAMS, NORTHWIND_TEAMS, HOOK]
    assert [(d.channel, d.owner) for d in destinations_for(read, FABRIKAM)] == [
        ("email", "default"),
        ("teams", "default"),
        ("webhook", "default"),
    ]
    # The monitor's problems of no tenant go to the defaults only.
    assert [d.channel for d in destinations_for(read, None)] == ["email", "teams", "webhook"]
    partitions = [d.partition for d in northwind]
    assert len(set(partitions)) == 4 and all(PARTITION_RE.fullmatch(p) for p in partitions)
    assert partitions[0] == recipients_key(["secops@contoso.example", "desk@northwind.example"])
    assert [channel_of(p) for p in partitions] == ["email", "teams", "teams", "webhook"]
    # No partition key holds or reveals the URL.
    assert not any(secret in "".join(partitions) for secret in ("TEAMSSIG123", "HOOKTOKEN456"))


def test_a_rotated_url_keeps_its_partition_and_a_removed_channel_has_none() -> None:
    before = settings(ALERT_TEAMS_WEBHOOK_URL=TEAMS)
    rotated = settings(ALERT_TEAMS_WEBHOOK_URL=TEAMS.replace("TEAMSSIG123", "ROTATED000"))
    (teams,) = destinations_for(before, NORTHWIND)
    found = destination_of(rotated, teams.partition)
    assert found is not None and found.url is not None and "ROTATED000" in found.url
    assert destination_of(settings(), teams.partition) is None


def test_without_any_channel_nothing_is_routed() -> None:
    read = settings()
    assert destinations_for(read, NORTHWIND) == [] and not read.alerts_configured

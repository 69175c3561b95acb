"""Settings as code (issue 17, item 3): the settings file PARTNERGUARD_CONFIG names, merged under the
environment, and `python -m partnerguard config validate FILE`, which accepts the documented
example and refuses each kind of mistake with its line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from partnerguard.settings import ConfigError, Settings
from partnerguard.settings_file import SETTING_OF, schema
from tests.cli_harness import run_cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "partnerguard.yaml"
EXAMPLE_TEXT = EXAMPLE.read_text(encoding="utf-8")
FABRIKAM = "3b8e4f1a-2c6d-4a9e-8b7f-5d1c0e2a9f46"
TEAMS_URL = "https://prod-00.westus.logic.azure.com/workflows/0123/triggers/manual/paths/invoke?sig=abc"
# The email transport a deployment with a linked sender domain sets as app settings.
EMAIL = {
    "ACS_ENDPOINT": "https://acs-pg-example.unitedstates.communication.azure.com",
    "EMAIL_SENDER": "DoNotReply@alerts.contoso.example",
}


def line_of(text: str, fragment: str) -> int:
    """1-based line of the only line holding `fragment`."""
    [number] = [n for n, line in enumerate(text.splitlines(), 1) if fragment in line]
    return number


def write(tmp_path: Path, text: str, name: str = "partnerguard.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- config validate ---------------------------------------------------------------------------


def test_config_validate_accepts_the_documented_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "config", "validate", str(EXAMPLE))
    assert code == 0
    [line] = out.splitlines()
    assert line.startswith(f"{EXAMPLE}: OK, 19 settings (")
    # Its recipients rely on the deployment's email transport: said, but not a mistake.
    [warning] = err.splitlines()
    recipients = line_of(EXAMPLE_TEXT, "  recipients: [secops@")
    assert warning.startswith(f"{EXAMPLE}:{recipients}:3: warning: alerts.recipients (ALERT_RECIPIENTS): "), warning


def test_config_validate_needs_no_other_setting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """It checks the file it is given: a broken environment (as on a CI runner) does not matter."""
    monkeypatch.setenv("ALERT_REMINDER_HOURS", "not a number")
    code, _, err = run_cli(capsys, "config", "validate", str(EXAMPLE))
    assert code == 0, err


# Each kind of mistake: (what to replace in the example, its replacement, the text in the example
# whose line the error must name, the key the error names, words of the reason).
MISTAKES: dict[str, tuple[str, str, str, str, str]] = {
    "syntax": ("cloud: public", "cloud: public: usgov", "cloud: public: usgov", "", "not valid YAML"),
    "an unclosed list": (
        "cloud: public",
        "cloud: [public",
        "identity_client_id: 0f1e",  # where YAML notices; the message names where it began
        "",
        f"not valid YAML: while parsing a flow sequence started at line {line_of(EXAMPLE_TEXT, 'cloud: public')}: "
        "expected ',' or ']'",
    ),
    "unknown key with a close match": (
        "discover_customers: false",
        "discover_customer: false",
        "discover_customer: false",
        "discover_customer",
        "unknown key (did you mean 'discover_customers'?); allowed here: alerts, cloud,",
    ),
    "unknown nested key": (
        "  settle_seconds: 300",
        "  settle_seconds: 300\n  digest: daily",
        "  settle_seconds: 300",  # the new key is on the line after it
        "alerts.digest",
        "unknown key; allowed here: email, recipients, reminder_hours, routes, settle_seconds",
    ),
    "wrong type": (
        "run_retention_days: 365",
        "run_retention_days: a year",
        "run_retention_days:",
        "run_retention_days",
        "expected a whole number, got text 'a year'",
    ),
    "a list expected": (
        "  recipients: [secops@contoso.example, it-lead@contoso.example]",
        "  recipients: secops@contoso.example",
        "  recipients: secops",
        "alerts.recipients",
        "expected a list, got text",
    ),
    "out of range (Settings' own range)": (
        "  reminder_hours: 24",
        "  reminder_hours: 2161",
        "  reminder_hours:",
        "alerts.reminder_hours (ALERT_REMINDER_HOURS)",
        "expected a number from 0 to 2160, got 2161",
    ),
    "threshold out of range": (
        "  gdap_expiry_days: 30 ",
        "  gdap_expiry_days: 731 ",
        "  gdap_expiry_days:",
        "thresholds.gdap_expiry_days (GDAP_EXPIRY_DAYS)",
        "expected a number from 0 to 730, got 731",
    ),
    "not a tenant id": (
        "  - 3b8e4f1a-2c6d-4a9e-8b7f-5d1c0e2a9f46",
        "  - fabrikam.onmicrosoft.com",
        "  - fabrikam.onmicrosoft.com",
        "tenants[1]",
        "expected a GUID",
    ),
    "not an address (Settings' own check)": (
        "it-lead@contoso.example]",
        "it-lead]",
        "it-lead]",
        "alerts.recipients[1] (ALERT_RECIPIENTS)",
        "not an email address: 'it-lead'",
    ),
    "not a break-glass account": (
        "  - breakglass1@contoso.example",
        "  - breakglass1",
        "  - breakglass1",  # the item's own line
        "emergency_access_accounts[0] (EMERGENCY_ACCESS_ACCOUNTS)",
        "'breakglass1' is neither an object id (GUID) nor a user principal name",
    ),
    "a comma inside a list item": (
        "  - breakglass1@contoso.example",
        "  - breakglass1@contoso.example,breakglass2@contoso.example",
        "breakglass2",
        "emergency_access_accounts[0]",
        "one value per list item",
    ),
    "unknown cloud": ("cloud: public", "cloud: azure", "cloud: azure", "cloud", "expected one of public, usgov"),
    "not an https URL (Settings' own check)": (
        "public_url: https://func-pg-example.azurewebsites.net",
        "public_url: func-pg-example.azurewebsites.net",
        "public_url:",
        "public_url (PARTNERGUARD_PUBLIC_URL)",
        "expected an https:// URL",
    ),
    "a secret": (
        "  client_id: 9d8c7b6a",
        "  client_secret: s3cr3t-value\n  client_id: 9d8c7b6a",
        "  client_id: 9d8c7b6a",  # the secret is inserted on this line
        "graph.client_secret",
        "a secret: set it as an app setting (a Key Vault reference in Azure), not in the file",
    ),
    "a secret under its setting's name": (
        "include_guests: false",
        "include_guests: false\nALERT_WEBHOOK_SECRET: 0123456789abcdef0123456789abcdef",
        "include_guests: false",
        "ALERT_WEBHOOK_SECRET",
        "a secret: set it as an app setting",
    ),
    "a webhook URL in a route": (
        "      recipients: [fabrikam-admins@fabrikam.example]",
        f"      recipients: [fabrikam-admins@fabrikam.example]\n      teams: {TEAMS_URL}",
        "      recipients: [fabrikam-admins@fabrikam.example]",
        f"alerts.routes.{FABRIKAM}.teams",
        "a secret: set it as an app setting (a Key Vault reference in Azure), not in the file; name the app setting",
    ),
    "a route for something not a tenant": (
        f"    {FABRIKAM}:",
        "    fabrikam:",
        "    fabrikam:",
        "alerts.routes.fabrikam",
        "'fabrikam' is not a tenant id (GUID)",
    ),
    "a setting only the Functions host reads": (
        "include_guests: false",
        "include_guests: false\nscan_schedule: '0 0 * * * *'",
        "include_guests: false",
        "scan_schedule",
        "set SCAN_SCHEDULE as an app setting: the Functions host reads it for its bindings",
    ),
    "duplicate key": (
        "run_retention_days: 365",
        "run_retention_days: 365\nrun_retention_days: 30",
        "run_retention_days: 365",
        "",
        "duplicate key 'run_retention_days' (first at line",
    ),
}
# Mistakes inserted after the named line are reported on the next one.
INSERTED_AFTER = {
    "unknown nested key",
    "a webhook URL in a route",
    "a secret",
    "a secret under its setting's name",
    "a setting only the Functions host reads",
    "duplicate key",
}


@pytest.mark.parametrize("kind", list(MISTAKES))
def test_config_validate_refuses_each_mistake_with_its_line(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new, at, key, reason = MISTAKES[kind]
    assert EXAMPLE_TEXT.count(old) == 1, f"{kind}: the example changed"
    text = EXAMPLE_TEXT.replace(old, new)
    if kind == "a secret":
        line = line_of(text, "client_secret")
    else:
        line = line_of(text, at) + (1 if kind in INSERTED_AFTER else 0)
    path = write(tmp_path, text)

    code, out, err = run_cli(capsys, "config", "validate", str(path))

    assert (code, out) == (2, "")
    # The example's own warning (recipients relying on the deployment's email transport) stays.
    [problem] = [line for line in err.splitlines() if ": warning: " not in line]
    where, _, rest = problem.partition(": ")
    assert where.rsplit(":", 2)[0] == str(path)
    assert int(where.rsplit(":", 2)[1]) == line, problem
    if key:
        assert rest.startswith(f"{key}: "), problem
    assert reason in rest, problem


PARTNER = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
CONTOSO = "5e1d2c3b-4a59-4687-9a0b-1c2d3e4f5a6b"


def test_config_validate_refuses_each_invalid_route_field_with_its_own_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each route, and each recipient of a route, is checked on its own: every bad one is named at
    its own line, and a bad route neither hides another nor the settings after it."""
    text = (
        "alerts:\n"  # 1
        "  routes:\n"  # 2
        f"    {PARTNER}:\n"  # 3
        "      recipients: [ok@contoso.example, not-an-address]\n"  # 4
        f"    {FABRIKAM}:\n"  # 5
        "      recipients:\n"  # 6
        "        - also-bad\n"  # 7
        "        - fine@fabrikam.example\n"  # 8
        "        - third-bad\n"  # 9
        f"    {CONTOSO}:\n"  # 10
        f"      teams: {TEAMS_URL}\n"  # 11
        "  reminder_hours: 5000\n"  # 12
        "  email: {outbox_dir: outbox}\n"  # 13
    )
    code, out, err = run_cli(capsys, "config", "validate", str(write(tmp_path, text)))
    assert (code, out) == (2, "")
    problems = err.splitlines()
    assert [int(line.split(":")[1]) for line in problems] == [4, 7, 9, 11, 12], err
    not_an_address = "(ALERT_ROUTES_BY_TENANT): not an email address"
    assert f"alerts.routes.{PARTNER}.recipients[1] {not_an_address}: 'not-an-address'" in problems[0]
    assert f"alerts.routes.{FABRIKAM}.recipients[0] {not_an_address}: 'also-bad'" in problems[1]
    assert f"alerts.routes.{FABRIKAM}.recipients[2] (ALERT_ROUTES_BY_TENANT): not an email address" in problems[2]
    assert f"alerts.routes.{CONTOSO}.teams: a secret" in problems[3]
    assert "alerts.reminder_hours (ALERT_REMINDER_HOURS): expected a number from 0 to 2160" in problems[4]


def test_tenant_ids_differing_only_in_case_are_one_tenant_refused_with_both_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two routes for one tenant would silently become one (tenant ids ignore letter case): refused
    by `config validate` and at start, naming both lines."""
    text = (
        "alerts:\n"
        "  routes:\n"
        f"    {FABRIKAM}:\n"
        "      recipients: [a@fabrikam.example]\n"
        f"    {FABRIKAM.upper()}:\n"
        "      recipients: [b@fabrikam.example]\n"
        "  email: {outbox_dir: outbox}\n"
    )
    path = write(tmp_path, text)
    code, _, err = run_cli(capsys, "config", "validate", str(path))
    assert code == 2
    [problem] = err.splitlines()
    assert problem.startswith(f"{path}:5:5: alerts.routes.{FABRIKAM.upper()}: the same tenant as line 3 "), problem
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"PARTNERGUARD_CONFIG": str(path)})
    assert raised.value.setting == "PARTNERGUARD_CONFIG"
    assert f"{path}:5:5:" in str(raised.value) and "the same tenant as line 3" in str(raised.value)


@pytest.mark.parametrize("setting", ["ALERT_ROUTES_BY_TENANT", "ALERT_RECIPIENTS_BY_TENANT"])
@pytest.mark.parametrize("second", [FABRIKAM.upper(), FABRIKAM])
def test_a_tenant_given_twice_in_a_json_setting_is_refused(setting: str, second: str) -> None:
    """The same in the JSON app settings (the Key Vault secret alert-routes-by-tenant): JSON keeps
    only the last of two equal keys, and the reader lower-cases tenant ids."""
    if setting == "ALERT_ROUTES_BY_TENANT":
        first_value, second_value = '{"recipients": ["a@fabrikam.example"]}', '{"recipients": ["b@fabrikam.example"]}'
    else:
        first_value, second_value = '["a@fabrikam.example"]', '["b@fabrikam.example"]'
    value = f'{{"{FABRIKAM}": {first_value}, "{second}": {second_value}}}'
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({setting: value, "EMAIL_OUTBOX_DIR": "outbox"})
    assert raised.value.setting == setting
    assert f"{second!r} repeats {FABRIKAM!r}" in str(raised.value)


# -- config validate's warnings: what the file alone cannot make work --------------------------


@pytest.mark.parametrize(
    ("text", "line", "key"),
    [
        ("alerts:\n  recipients: [secops@contoso.example]\n", 2, "alerts.recipients (ALERT_RECIPIENTS)"),
        (
            f"alerts:\n  routes:\n    {FABRIKAM}:\n      recipients: [desk@fabrikam.example]\n",
            4,
            f"alerts.routes.{FABRIKAM}.recipients (ALERT_ROUTES_BY_TENANT)",
        ),
    ],
)
def test_recipients_without_an_email_transport_in_the_file_are_a_warning(
    text: str, line: int, key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The transport may come from app settings (the template sets ACS_ENDPOINT and EMAIL_SENDER once
    a sender domain is linked), so not a mistake; but without one the app refuses to start."""
    path = write(tmp_path, text)
    code, out, err = run_cli(capsys, "config", "validate", str(path))
    assert code == 0 and ": OK, 1 setting (" in out
    [warning] = err.splitlines()
    assert warning.startswith(f"{path}:{line}:3: warning: {key}: ") or warning.startswith(
        f"{path}:{line}:7: warning: {key}: "
    ), warning
    assert "the app refuses to start unless ACS_ENDPOINT and EMAIL_SENDER come from app settings" in warning
    # ... and it is true: the file alone does not start.
    with pytest.raises(ConfigError, match="ALERT_RECIPIENTS: set, but neither ACS_ENDPOINT"):
        Settings.from_env({"PARTNERGUARD_CONFIG": str(path)})


@pytest.mark.parametrize(
    "email",
    [
        "  email: {outbox_dir: outbox}\n",
        "  email: {acs_endpoint: 'https://acs.example', sender: DoNotReply@alerts.contoso.example}\n",
    ],
)
def test_recipients_with_an_email_transport_in_the_file_are_no_warning(
    email: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "alerts:\n  recipients: [secops@contoso.example]\n" + email)
    code, _, err = run_cli(capsys, "config", "validate", str(path))
    assert (code, err) == (0, "")


@pytest.mark.parametrize(
    ("channel", "named", "words"),
    [
        ("teams", "ALERT_TEAMS_WEBHOOK_URL", "every tenant's alerts go to ALERT_TEAMS_WEBHOOK_URL already"),
        ("webhook", "ALERT_WEBHOOK_URL", "every tenant's alerts go to ALERT_WEBHOOK_URL already"),
        ("teams", "ALERT_TEAMS_WEBHOOK_URL_FABRIKAM", "Key Vault secret alert-routes-by-tenant"),
    ],
)
def test_a_route_naming_an_app_setting_is_a_warning(
    channel: str, named: str, words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A route's channel names an app setting: one of the defaults adds nothing (a route URL equal
    to the default is the default destination), and any other must exist where the app runs,
    which in Azure only the Key Vault's ALERT_ROUTES_BY_TENANT can give."""
    path = write(tmp_path, f"alerts:\n  routes:\n    {FABRIKAM}:\n      {channel}: {named}\n")
    code, _, err = run_cli(capsys, "config", "validate", str(path))
    assert code == 0
    [warning] = err.splitlines()
    assert warning.startswith(f"{path}:4:7: warning: alerts.routes.{FABRIKAM}.{channel} (ALERT_ROUTES_BY_TENANT): ")
    assert words in warning


def test_every_mistake_of_a_file_is_listed_in_file_order(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = (
        "tenants: [7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73]\n"
        "thresholds:\n"
        "  signin_lookback_hours: 0\n"
        "  credential_expiry_days: 3651\n"
        "includ_guests: true\n"
        "alerts:\n"
        "  reminder_hours: -1\n"
    )
    code, _, err = run_cli(capsys, "config", "validate", str(write(tmp_path, text)))
    assert code == 2
    assert [int(line.split(":")[1]) for line in err.splitlines()] == [3, 4, 5, 7]


def test_an_empty_file_sets_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "config", "validate", str(write(tmp_path, "# nothing yet\n")))
    assert code == 0 and ": OK, 0 settings" in out


def test_a_missing_file_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "config", "validate", str(tmp_path / "absent.yaml"))
    assert code == 2 and "absent.yaml:1:1: cannot read the file" in err


def test_the_schema_and_the_reader_cover_the_same_keys() -> None:
    """Every key of the schema becomes a setting, and every setting the file can hold is in the
    schema: the two cannot drift apart."""

    def leaves(node: dict[str, Any], path: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
        found: set[tuple[str, ...]] = set()
        for key, child in node.get("properties", {}).items():
            nested = child.get("type") == "object" and "properties" in child
            found |= leaves(child, (*path, key)) if nested else {(*path, key)}
        return found

    assert leaves(schema()) == set(SETTING_OF)


def test_the_example_shows_every_key() -> None:
    """The documented example names every key (the local-only ones commented out)."""
    for path in SETTING_OF:
        assert f"{path[-1]}:" in EXAMPLE_TEXT, path


# -- the file under the environment ------------------------------------------------------------


def test_settings_come_from_the_file_and_a_non_empty_environment_value_overrides_them() -> None:
    environment = {
        "PARTNERGUARD_CONFIG": str(EXAMPLE),
        "ALERT_REMINDER_HOURS": "6",  # overrides the file's 24
        "RUN_RETENTION_DAYS": "",  # empty (the Bicep sets unused settings so): the file's 365 stands
        "SIGNIN_LOOKBACK_HOURS": "  ",
        **EMAIL,  # the example leaves the transport to the app settings (the deployment's)
    }
    settings = Settings.from_env(environment)
    assert settings.tenants == ("7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73", FABRIKAM)
    assert settings.alert_reminder_hours == 6
    assert settings.run_retention_days == 365 and settings.signin_lookback_hours == 168
    assert settings.alert_recipients == ("secops@contoso.example", "it-lead@contoso.example")
    assert settings.emergency_access_accounts == ("breakglass1@contoso.example", "5e4d3c2b-1a09-4f8e-8d7c-6b5a49382716")
    assert settings.tenant_id == "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
    # The routes reach Settings as ALERT_ROUTES_BY_TENANT.
    route = settings.alert_routes_by_tenant[FABRIKAM]
    assert route.recipients == ("fabrikam-admins@fabrikam.example",)
    assert (route.teams_url, route.webhook_url) == (None, None)
    assert settings.recipients_for(FABRIKAM)[-1] == "fabrikam-admins@fabrikam.example"


def test_the_routes_become_alert_routes_by_tenant_json(tmp_path: Path) -> None:
    from partnerguard.settings_file import read_settings_file

    read = read_settings_file(EXAMPLE)
    assert json.loads(read.values["ALERT_ROUTES_BY_TENANT"]) == {
        FABRIKAM: {"recipients": ["fabrikam-admins@fabrikam.example"]}
    }


def test_without_the_file_nothing_changes() -> None:
    assert Settings.from_env({"PARTNERGUARD_CONFIG": ""}) == Settings.from_env({})


def test_a_value_out_of_range_in_the_file_stops_start_up_naming_the_setting(tmp_path: Path) -> None:
    path = write(tmp_path, "alerts:\n  reminder_hours: 5000\n")
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"PARTNERGUARD_CONFIG": str(path)})
    assert raised.value.setting == "ALERT_REMINDER_HOURS"
    # ... unless the environment overrides it with a good value.
    assert Settings.from_env({"PARTNERGUARD_CONFIG": str(path), "ALERT_REMINDER_HOURS": "1"}).alert_reminder_hours == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tenants: [7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73]\nsecret: x\n", ":2:1: secret: a secret"),
        ("cloud: public\ncloud: china\n", ":2:1: duplicate key 'cloud'"),
        ("include_guests: [\n", "not valid YAML"),
    ],
)
def test_a_file_of_the_wrong_shape_stops_start_up_with_its_line(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"PARTNERGUARD_CONFIG": str(path)})
    assert raised.value.setting == "PARTNERGUARD_CONFIG"
    assert expected in str(raised.value) and "config validate" in str(raised.value)


def test_a_missing_file_stops_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^PARTNERGUARD_CONFIG: .*cannot read the file"):
        Settings.from_env({"PARTNERGUARD_CONFIG": str(tmp_path / "absent.yaml")})


# -- EMERGENCY_ACCESS_ACCOUNTS -----------------------------------------------------------------


def test_emergency_access_accounts_are_lower_cased_object_ids_or_upns_each_once() -> None:
    value = " BreakGlass1@Contoso.example, 5E4D3C2B-1A09-4F8E-8D7C-6B5A49382716,,breakglass1@contoso.example "
    settings = Settings.from_env({"EMERGENCY_ACCESS_ACCOUNTS": value})
    assert settings.emergency_access_accounts == ("breakglass1@contoso.example", "5e4d3c2b-1a09-4f8e-8d7c-6b5a49382716")
    assert Settings.from_env({}).emergency_access_accounts == ()


@pytest.mark.parametrize("value", ["breakglass", "5e4d3c2b-1a09-4f8e-8d7c", "a b@contoso.example", "x@y"])
def test_an_emergency_access_account_that_is_neither_is_refused(value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        Settings.from_env({"EMERGENCY_ACCESS_ACCOUNTS": value})
    assert raised.value.setting == "EMERGENCY_ACCESS_ACCOUNTS"


# -- in the deployed package ------------------------------------------------------------------


def test_the_deployed_package_reads_a_settings_file_shipped_in_it(tmp_path: Path) -> None:
    """As azd deploys it: the package (the repository minus .funcignore) with the partner's file
    at its root, run in an environment of requirements.txt alone. The schema ships inside
    partnerguard/, and PyYAML and jsonschema are runtime requirements."""
    import subprocess

    from tests.deployed_package import assemble, deployed_venv

    package = tmp_path / "package"
    assemble(ROOT, package)
    (package / "partnerguard.yaml").write_text(EXAMPLE_TEXT, encoding="utf-8")
    (package / "broken.yaml").write_text("alerts:\n  reminder_hours: 1\n  reminder_hours: 2\n", encoding="utf-8")
    probe = (
        "import sys\n"
        "from partnerguard.settings import ConfigError, Settings\n"
        f"email = {EMAIL!r}\n"
        "s = Settings.from_env({'PARTNERGUARD_CONFIG': sys.argv[1], **email})\n"
        "print(s.alert_reminder_hours, ','.join(s.tenants))\n"
        "try:\n"
        "    Settings.from_env({'PARTNERGUARD_CONFIG': sys.argv[2]})\n"
        "except ConfigError as error:\n"
        "    print(error)\n"
    )
    result = subprocess.run(
        [str(deployed_venv()), "-E", "-s", "-B", "-c", probe, "partnerguard.yaml", "broken.yaml"],
        cwd=package,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first == f"24 7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73,{FABRIKAM}"
    assert second.startswith("PARTNERGUARD_CONFIG: broken.yaml:3:3: duplicate key 'reminder_hours'")

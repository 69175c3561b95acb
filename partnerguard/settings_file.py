"""The settings file (`PARTNERGUARD_CONFIG`, SPEC §5): a reviewed YAML file with friendly,
structured keys, read into the same environment-style mapping (setting name → text) that
`Settings.from_env` reads, so every value gets exactly the app settings' validation and messages.

Why YAML and not TOML: PyYAML's composed nodes carry the line and column of every key
(partnerguard/yaml_source.py), and `config validate` must name the line of each mistake; the
standard library's `tomllib` returns values without positions.

The shape is partnerguard/settings.schema.json (JSON Schema, Draft 2020-12, no unknown key
anywhere). The schema has no place for a secret (`AZURE_CLIENT_SECRET`, the certificate password,
`ACS_CONNECTION_STRING`, the webhook URLs and secret): a reviewed file is read by many and lives in
version control, so secrets stay app settings (Key Vault references in Azure). A route's Teams or
webhook destination therefore names an app setting that holds the URL; in Azure, where the template
sets only the four fixed alert settings, a tenant's own URL goes into the Key Vault's
ALERT_ROUTES_BY_TENANT instead, which then replaces the file's routes (docs/deploy.md). Two settings stay out for
another reason: `SCAN_SCHEDULE` and `PARTNERGUARD_STORAGE*` are read by the Functions host itself
(the timer's `%SCAN_SCHEDULE%`, the queue triggers' connection), which sees app settings only; a
file value would be obeyed by PartnerGuard's code and ignored by the host.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from partnerguard.yaml_source import LocatedDocument, Position, YamlProblem, load_located
from partnerguard.yaml_source import Path as KeyPath

SCHEMA_PATH = Path(__file__).with_name("settings.schema.json")
# A settings file is a page of text; anything far larger is a mistake (a log, a binary).
MAX_FILE_BYTES = 256 * 1024

# Each key of the file and the setting it stands for. Lists become comma-separated text, booleans
# `true`/`false`, numbers their digits; `alerts.routes` becomes ALERT_ROUTES_BY_TENANT's JSON.
SETTING_OF: dict[KeyPath, str] = {
    ("tenants",): "PARTNERGUARD_TENANTS",
    ("discover_customers",): "PARTNERGUARD_DISCOVER_CUSTOMERS",
    ("cloud",): "AZURE_CLOUD",
    ("identity_client_id",): "PARTNERGUARD_IDENTITY_CLIENT_ID",
    ("public_url",): "PARTNERGUARD_PUBLIC_URL",
    ("graph", "tenant_id"): "AZURE_TENANT_ID",
    ("graph", "client_id"): "AZURE_CLIENT_ID",
    ("graph", "identity_client_id"): "PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID",
    ("graph", "certificate_path"): "AZURE_CLIENT_CERTIFICATE_PATH",
    ("graph", "federated_token_file"): "AZURE_FEDERATED_TOKEN_FILE",
    ("graph", "endpoint"): "GRAPH_ENDPOINT",
    ("graph", "authority_host"): "AZURE_AUTHORITY_HOST",
    ("graph", "ca_bundle"): "PARTNERGUARD_CA_BUNDLE",
    ("alerts", "recipients"): "ALERT_RECIPIENTS",
    ("alerts", "reminder_hours"): "ALERT_REMINDER_HOURS",
    ("alerts", "settle_seconds"): "ALERT_SETTLE_SECONDS",
    ("alerts", "routes"): "ALERT_ROUTES_BY_TENANT",
    ("alerts", "email", "sender"): "EMAIL_SENDER",
    ("alerts", "email", "acs_endpoint"): "ACS_ENDPOINT",
    ("alerts", "email", "outbox_dir"): "EMAIL_OUTBOX_DIR",
    ("thresholds", "signin_lookback_hours"): "SIGNIN_LOOKBACK_HOURS",
    ("thresholds", "credential_expiry_days"): "CREDENTIAL_EXPIRY_DAYS",
    ("thresholds", "secret_max_lifetime_days"): "SECRET_MAX_LIFETIME_DAYS",
    ("thresholds", "gdap_expiry_days"): "GDAP_EXPIRY_DAYS",
    ("include_guests",): "INCLUDE_GUESTS",
    ("run_retention_days",): "RUN_RETENTION_DAYS",
    ("emergency_access_accounts",): "EMERGENCY_ACCESS_ACCOUNTS",
}

SECRET_MESSAGE = "a secret: set it as an app setting (a Key Vault reference in Azure), not in the file"  # noqa: S105 (a message)
# Keys that hold a secret wherever they appear (compared in lower case): the settings' own names
# and the friendly names someone would reach for.
SECRET_KEYS = frozenset(
    {
        "azure_client_secret",
        "client_secret",
        "secret",
        "azure_client_certificate_password",
        "certificate_password",
        "client_certificate_password",
        "password",
        "acs_connection_string",
        "connection_string",
        "partnerguard_storage",
        "alert_teams_webhook_url",
        "teams_webhook_url",
        "alert_webhook_url",
        "webhook_url",
        "alert_webhook_secret",
        "webhook_secret",
    }
)
# Read by the Functions host's bindings, which see app settings only (module docstring).
HOST_SETTINGS = {
    "scan_schedule": "SCAN_SCHEDULE",
    "storage": "PARTNERGUARD_STORAGE",
}


@dataclass(frozen=True)
class Problem:
    """One mistake in the file: where, which key, and why."""

    position: Position
    key: str  # the key path, dotted ("alerts.reminder_hours"), or "" for the whole file
    reason: str

    def line(self, file: str) -> str:
        where = f"{file}:{self.position}"
        return f"{where}: {self.key}: {self.reason}" if self.key else f"{where}: {self.reason}"


@dataclass
class SettingsFile:
    """What a settings file holds: the settings as text, where each came from, and its mistakes."""

    path: Path
    values: dict[str, str] = field(default_factory=dict)
    origins: dict[str, Position] = field(default_factory=dict)  # setting name → line of its key
    keys: dict[str, str] = field(default_factory=dict)  # setting name → dotted key path
    # setting name → (item text, its dotted path, its position) of a list setting, so an error
    # about one item (an address, an account) can point at that item's own line.
    items: dict[str, list[tuple[str, str, Position]]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    # The parsed file with every key's position: `config validate` checks each route's fields on
    # their own lines. None when the file could not be parsed.
    document: LocatedDocument | None = None


class SettingsFileError(ValueError):
    """The settings file cannot be used; the message names the file, line and key of the first
    mistake (`python -m partnerguard config validate FILE` lists them all)."""


def dotted(path: KeyPath) -> str:
    return ".".join(str(part) if isinstance(part, str) else f"[{part}]" for part in path).replace(".[", "[")


@cache
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


def read_settings_file(path: Path) -> SettingsFile:
    """Read and check the file's shape; the values' own rules are Settings' (config_validation.py)."""
    result = SettingsFile(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        result.problems.append(Problem(Position(1, 1), "", f"cannot read the file ({error.strerror or error})"))
        return result
    if len(raw) > MAX_FILE_BYTES:
        result.problems.append(Problem(Position(1, 1), "", f"larger than {MAX_FILE_BYTES // 1024} KiB"))
        return result
    try:
        document = load_located(raw.decode("utf-8"))
    except UnicodeDecodeError:
        result.problems.append(Problem(Position(1, 1), "", "not UTF-8 text"))
        return result
    except YamlProblem as problem:
        result.problems.append(Problem(problem.position, "", problem.message))
        return result
    result.document = document
    if document.data is None:
        return result  # an empty file (or only comments) sets nothing
    result.problems.extend(_shape_problems(document))
    result.problems.extend(_repeated_tenants(document))
    result.problems.sort(key=lambda p: (p.position.line, p.position.column, p.key))
    wrong = [problem.key for problem in result.problems]
    for key_path, setting in SETTING_OF.items():
        value = lookup(document.data, key_path)
        # A value whose shape is wrong is not converted: its problem is reported already, and
        # the other settings are still checked, so one run of `config validate` lists them all.
        if value is None or any(related(dotted(key_path), key) for key in wrong):
            continue
        result.values[setting] = _as_text(value)
        result.origins[setting] = document.position(key_path)
        result.keys[setting] = dotted(key_path)
        if isinstance(value, list):
            result.items[setting] = [
                (str(item), dotted((*key_path, index)), document.values[(*key_path, index)])
                for index, item in enumerate(value)
            ]
    return result


def related(setting_key: str, problem_key: str) -> bool:
    """Whether a problem at `problem_key` lies inside the setting's key, or encloses it."""
    if not problem_key:
        return True
    inner, outer = (problem_key, setting_key) if len(problem_key) >= len(setting_key) else (setting_key, problem_key)
    return inner == outer or inner.startswith((outer + ".", outer + "["))


def values_or_raise(path: Path) -> dict[str, str]:
    """The file's settings for `Settings.from_env`; SettingsFileError when its shape is wrong."""
    read = read_settings_file(path)
    if read.problems:
        first = read.problems[0].line(str(path))
        more = len(read.problems) - 1
        hint = f" (and {more} more)" if more else ""
        raise SettingsFileError(f"{first}{hint}; `python -m partnerguard config validate {path}` lists them")
    return read.values


class EnvironmentOverFile(Mapping[str, str]):
    """The settings as PartnerGuard reads them: a non-empty environment value, else the file's.
    An empty environment value does not override: the Bicep sets unused settings to ''."""

    def __init__(self, environ: Mapping[str, str], file_values: Mapping[str, str]) -> None:
        self.environ = environ
        self.file_values = file_values

    def __getitem__(self, name: str) -> str:
        value = self.environ.get(name)
        if value is not None and value.strip():
            return value
        if name in self.file_values:
            return self.file_values[name]
        if value is not None:
            return value
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self.environ, *self.file_values]))

    def __len__(self) -> int:
        return len(set(self.environ) | set(self.file_values))


# -- shape --------------------------------------------------------------------------------------


def _shape_problems(document: LocatedDocument) -> list[Problem]:
    validator = jsonschema.Draft202012Validator(schema())
    problems: list[Problem] = []
    for error in validator.iter_errors(document.data):
        path: KeyPath = tuple(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            problems.extend(_unknown_keys(document, path, error.instance, error.schema))
        else:
            problems.append(Problem(document.position(path), dotted(path), _reason(error)))
    # The schema's messages come in its own order; people read a file top to bottom.
    return sorted(problems, key=lambda p: (p.position.line, p.position.column, p.key))


ROUTES_PATH: KeyPath = ("alerts", "routes")


def _repeated_tenants(document: LocatedDocument) -> Iterator[Problem]:
    """Tenant ids ignore letter case (PartnerGuard lower-cases them), so two route keys that differ
    only in case are one tenant: its routes would silently become one. `alerts.routes` is the file's
    only mapping keyed by tenant; the tenant lists (`tenants`) are sets, where a repeat is harmless."""
    routes = lookup(document.data, ROUTES_PATH)
    if not isinstance(routes, dict):
        return
    first: dict[str, Position] = {}
    for tenant in routes:
        position = document.keys[(*ROUTES_PATH, tenant)]
        if tenant.lower() in first:
            yield Problem(
                position,
                dotted((*ROUTES_PATH, tenant)),
                f"the same tenant as line {first[tenant.lower()].line} (tenant ids ignore letter case); "
                "one route per tenant",
            )
        else:
            first[tenant.lower()] = position


def _unknown_keys(
    document: LocatedDocument, path: KeyPath, instance: dict[str, Any], where: Mapping[str, Any]
) -> Iterator[Problem]:
    allowed = sorted(where.get("properties", {}))
    patterns = where.get("patternProperties", {})
    for key in instance:
        if key in allowed:
            continue
        if patterns and any(jsonschema.Draft202012Validator({"pattern": p}).is_valid(key) for p in patterns):
            continue
        key_path = (*path, key)
        position = document.keys.get(key_path, document.position(path))
        if key.lower() in SECRET_KEYS:
            yield Problem(position, dotted(key_path), SECRET_MESSAGE)
        elif not path and key.lower() in HOST_SETTINGS:
            setting = HOST_SETTINGS[key.lower()]
            yield Problem(
                position,
                dotted(key_path),
                f"set {setting} as an app setting: the Functions host reads it for its bindings and sees no file",
            )
        elif patterns:
            yield Problem(position, dotted(key_path), f"{key!r} is not a tenant id (GUID)")
        else:
            close = difflib.get_close_matches(key, allowed, n=1)
            suggestion = f" (did you mean {close[0]!r}?)" if close else ""
            yield Problem(
                position, dotted(key_path), f"unknown key{suggestion}; allowed here: {', '.join(allowed) or 'none'}"
            )


_YAML_TYPES = {bool: "true/false", int: "a number", float: "a number", str: "text", list: "a list", dict: "a mapping"}
_SCHEMA_TYPES = {
    "boolean": "true or false",
    "integer": "a whole number",
    "string": "text",
    "array": "a list",
    "object": "a mapping of keys",
}


def _reason(error: jsonschema.ValidationError) -> str:
    schema_here = error.schema if isinstance(error.schema, Mapping) else {}
    hint = schema_here.get("x-hint")
    got = _YAML_TYPES.get(type(error.instance), type(error.instance).__name__)
    if error.validator == "type":
        expected = _SCHEMA_TYPES.get(str(error.validator_value), str(error.validator_value))
        return f"expected {expected}, got {got} {_shown(error.instance)}"
    if error.validator == "enum":
        allowed = error.validator_value if isinstance(error.validator_value, list) else []
        choices = ", ".join(str(choice) for choice in allowed)
        return f"expected one of {choices}, got {_shown(error.instance)}"
    if error.validator == "pattern" and isinstance(error.instance, str) and "://" in error.instance:
        return f"{SECRET_MESSAGE}; name the app setting that holds the URL"
    if hint:
        return f"expected {hint}, got {_shown(error.instance)}"
    return error.message


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# -- values -------------------------------------------------------------------------------------


def lookup(data: Any, path: KeyPath) -> Any:
    for part in path:
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    if isinstance(value, dict):
        # alerts.routes: ALERT_ROUTES_BY_TENANT's JSON, tenant id → {recipients, teams, webhook}.
        return json.dumps(value, sort_keys=True)
    return str(value)

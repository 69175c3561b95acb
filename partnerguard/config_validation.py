"""`python -m partnerguard config validate FILE`: every mistake of a settings file, one line each,
naming the file, the line and column, and the key; and warnings of what the file alone cannot make
work.

Two passes. The file's shape against partnerguard/settings.schema.json (syntax, duplicate keys,
unknown keys, types, secrets, a tenant routed twice: partnerguard/settings_file.py). Then each
value through the very readers `Settings.from_env` uses (`check_each_value`), so a range or a
format is refused here exactly when it would be refused at start-up; a `ConfigError` names a
setting, and the setting is mapped back to the line of the key that produced it. The routes
(`alerts.routes`, one setting) are read one field at a time — each recipient, each channel — so
every bad field is named at its own line and one bad route hides no other.

The rules between settings (recipients need a transport, a webhook needs its secret) are left to
start-up: their other half is usually an app setting, which a file check cannot see. Where the
file leans on such an app setting, `config validate` says so as a warning (exit 0): recipients
without an email transport in the file, and a route naming an app setting for its channel.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from partnerguard.settings import ConfigError, check_each_value
from partnerguard.settings_file import (
    ROUTES_PATH,
    Problem,
    SettingsFile,
    dotted,
    lookup,
    read_settings_file,
    related,
)
from partnerguard.yaml_source import Path as KeyPath
from partnerguard.yaml_source import Position

ROUTES = "ALERT_ROUTES_BY_TENANT"
# Stands in for the app setting a route names (its URL is a secret, never in the file): whether that
# setting exists is known only where the app runs.
_APP_SETTING_STAND_IN = "https://app-setting.invalid/"
# Each channel's default setting. A route naming it adds nothing: a route URL equal to the default
# is the default destination (partnerguard/alerts/routing.py), and every tenant gets that already.
_DEFAULT_CHANNEL = {"teams": "ALERT_TEAMS_WEBHOOK_URL", "webhook": "ALERT_WEBHOOK_URL"}
# The only alert settings the Bicep can set in Azure (Key Vault references, ALERT_SECRET_SETTINGS;
# infra/modules/function-app.bicep). Any other setting a route names would be added by hand, and the
# next `azd provision` removes it.
_SETTINGS_THE_TEMPLATE_SETS = frozenset(
    {"ALERT_TEAMS_WEBHOOK_URL", "ALERT_WEBHOOK_URL", "ALERT_WEBHOOK_SECRET", "ALERT_ROUTES_BY_TENANT"}
)
# What gives email a transport in a file (ACS_CONNECTION_STRING is a secret, never in one).
_EMAIL_TRANSPORTS = ("ACS_ENDPOINT", "EMAIL_OUTBOX_DIR")

NO_TRANSPORT = (
    "recipients, but no email transport in this file: the app refuses to start unless ACS_ENDPOINT "
    "and EMAIL_SENDER come from app settings (in Azure the template sets them once a sender domain "
    "is linked; put recipients in the file only then: docs/deploy.md)"
)


@dataclass(frozen=True)
class Validation:
    file: SettingsFile
    problems: list[Problem]
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        name = str(self.file.path)
        if self.problems:
            return [problem.line(name) for problem in self.problems]
        count = len(self.file.values)
        return [f"{name}: OK, {count} setting{'s' if count != 1 else ''} ({', '.join(sorted(self.file.values))})"]

    def warning_lines(self) -> list[str]:
        name = str(self.file.path)
        return [f"{name}:{warning.position}: warning: {warning.key}: {warning.reason}" for warning in self.warnings]


def validate_settings_file(path: Path) -> Validation:
    read = read_settings_file(path)
    problems = list(read.problems)
    problems += _value_problems(read)
    routes = list(_route_fields(read))
    problems += _route_problems(routes)
    problems.sort(key=lambda p: (p.position.line, p.position.column, p.key))
    warnings = _recipient_warnings(read, routes) + list(_channel_warnings(routes))
    warnings.sort(key=lambda p: (p.position.line, p.position.column, p.key))
    return Validation(read, problems, warnings)


def _value_problems(read: SettingsFile) -> list[Problem]:
    # The routes are checked field by field (_route_problems).
    values = {name: value for name, value in read.values.items() if name != ROUTES}
    problems: list[Problem] = []
    # Settings stops at the first bad value: drop it and read again, until all are found.
    for _ in range(len(values) + 1):
        try:
            check_each_value(values)
            break
        except ConfigError as error:
            setting = error.setting
            if setting not in values:
                problems.append(Problem(Position(1, 1), "", str(error)))
                break
            reason = str(error).removeprefix(f"{error.setting}: ")
            position, key = read.origins[setting], read.keys[setting]
            # An error about one item of a list quotes it: point at that item's line.
            for text, item_key, item_position in read.items.get(setting, []):
                if repr(text) in reason:
                    position, key = item_position, item_key
                    break
            problems.append(Problem(position, f"{key} ({setting})", reason))
            del values[setting]
    return problems


@dataclass(frozen=True)
class _RouteField:
    """One field of one route: a recipient (`index` set), or the `teams` or `webhook` channel."""

    tenant: str
    name: str  # recipients | teams | webhook
    index: int | None
    value: Any
    path: KeyPath
    position: Position

    @property
    def key(self) -> str:
        return dotted(self.path)

    def as_setting(self) -> dict[str, str]:
        """ALERT_ROUTES_BY_TENANT holding this field alone, and a stand-in for a setting it names."""
        value = [self.value] if self.index is not None else self.value
        setting = {ROUTES: json.dumps({self.tenant: {self.name: value}})}
        if self.name in _DEFAULT_CHANNEL and isinstance(self.value, str):
            setting.setdefault(self.value.strip(), _APP_SETTING_STAND_IN)
        return setting


def _route_fields(read: SettingsFile) -> Iterator[_RouteField]:
    """The routes' fields whose shape is right (a field with a shape problem is reported already)."""
    document = read.document
    routes = lookup(document.data, ROUTES_PATH) if document else None
    if document is None or not isinstance(routes, dict):
        return
    shape = [problem.key for problem in read.problems]
    for tenant, route in routes.items():
        if not isinstance(route, dict):
            continue
        for name, value in route.items():
            pieces = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
            for index, piece in pieces:
                path: KeyPath = (*ROUTES_PATH, tenant, name, *(() if index is None else (index,)))
                if any(related(dotted(path), key) for key in shape):
                    continue
                yield _RouteField(tenant, name, index, piece, path, document.position(path))


def _route_problems(fields: list[_RouteField]) -> list[Problem]:
    problems: list[Problem] = []
    for route_field in fields:
        try:
            check_each_value(route_field.as_setting())
        except ConfigError as error:
            reason = str(error).removeprefix(f"{error.setting}: ")
            problems.append(Problem(route_field.position, f"{route_field.key} ({ROUTES})", reason))
    return problems


def _recipient_warnings(read: SettingsFile, fields: list[_RouteField]) -> list[Problem]:
    if any(read.values.get(name) for name in _EMAIL_TRANSPORTS):
        return []
    if read.values.get("ALERT_RECIPIENTS"):
        setting = "ALERT_RECIPIENTS"
        return [Problem(read.origins[setting], f"{read.keys[setting]} ({setting})", NO_TRANSPORT)]
    routed = next((f for f in fields if f.name == "recipients"), None)
    if routed is None or read.document is None:
        return []
    recipients_path = routed.path[:-1]
    key = f"{dotted(recipients_path)} ({ROUTES})"
    return [Problem(read.document.position(recipients_path), key, NO_TRANSPORT)]


def _channel_warnings(fields: list[_RouteField]) -> Iterator[Problem]:
    for route_field in fields:
        if route_field.name not in _DEFAULT_CHANNEL or not isinstance(route_field.value, str):
            continue
        named = route_field.value.strip()
        if named == _DEFAULT_CHANNEL[route_field.name]:
            reason = (
                f"names the default channel: every tenant's alerts go to {named} already, so this adds "
                "nothing (a route URL equal to the default is the default destination); remove it"
            )
        elif named not in _SETTINGS_THE_TEMPLATE_SETS:
            reason = (
                f"names the app setting {named}, which must exist where the app runs, or the app refuses "
                "to start; in Azure the template cannot set it (one added by hand is removed by the next "
                "azd provision): put this tenant's URL in the Key Vault secret alert-routes-by-tenant "
                "(ALERT_ROUTES_BY_TENANT, which then replaces the file's routes as a whole; docs/deploy.md)"
            )
        else:
            continue
        yield Problem(route_field.position, f"{route_field.key} ({ROUTES})", reason)

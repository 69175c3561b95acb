"""`python -m partnerguard config validate FILE`: every mistake of a settings file, one line each,
naming the file, the line and column, and the key.

Two passes. The file's shape against partnerguard/settings.schema.json (syntax, duplicate keys,
unknown keys, types, secrets: partnerguard/settings_file.py). Then each value through the very
readers `Settings.from_env` uses (`check_each_value`), so a range or a format is refused here
exactly when it would be refused at start-up; a `ConfigError` names a setting, and the setting is
mapped back to the line of the key that produced it. The rules between settings (recipients need
a transport, a webhook needs its secret) are left to start-up: their other half is usually an app
setting, which a file check cannot see.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from partnerguard.settings import ConfigError, check_each_value
from partnerguard.settings_file import Problem, SettingsFile, read_settings_file
from partnerguard.yaml_source import Position

ROUTES = "ALERT_ROUTES_BY_TENANT"
# Stands in for the app setting a route names (its URL is a secret, never in the file): whether that
# setting exists is known only where the app runs.
_APP_SETTING_STAND_IN = "https://app-setting.invalid/"


@dataclass(frozen=True)
class Validation:
    file: SettingsFile
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        name = str(self.file.path)
        if self.problems:
            return [problem.line(name) for problem in self.problems]
        count = len(self.file.values)
        return [f"{name}: OK, {count} setting{'s' if count != 1 else ''} ({', '.join(sorted(self.file.values))})"]


def validate_settings_file(path: Path) -> Validation:
    read = read_settings_file(path)
    problems = list(read.problems)
    problems += _value_problems(read)
    problems.sort(key=lambda p: (p.position.line, p.position.column, p.key))
    return Validation(read, problems)


def _value_problems(read: SettingsFile) -> list[Problem]:
    values = dict(read.values)
    for name in _named_app_settings(values.get(ROUTES)):
        values.setdefault(name, _APP_SETTING_STAND_IN)
    problems: list[Problem] = []
    # Settings stops at the first bad value: drop it and read again, until all are found.
    for _ in range(len(values) + 1):
        try:
            check_each_value(values)
            break
        except ConfigError as error:
            setting = _file_setting(error.setting, read)
            if setting is None or setting not in values:
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


def _file_setting(named: str, read: SettingsFile) -> str | None:
    """The file's setting a ConfigError is about (route errors name the route's tenant too)."""
    if named in read.values:
        return named
    if named.startswith(ROUTES) and ROUTES in read.values:
        return ROUTES
    return None


def _named_app_settings(routes_json: str | None) -> list[str]:
    if not routes_json:
        return []
    names: list[str] = []
    for route in json.loads(routes_json).values():
        names += [route[channel] for channel in ("teams", "webhook") if channel in route]
    return names

"""The documentation keeps up with the code: every check, every Graph permission and every
setting the code reads is documented, and the local settings example lists every setting."""

from __future__ import annotations

import json
import re
from pathlib import Path

from checks import ALL_CHECKS
from partnerguard.graph.requests import ENDPOINTS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def _settings_read_by_the_code() -> set[str]:
    source = (ROOT / "partnerguard" / "settings.py").read_text(encoding="utf-8")
    names = set(re.findall(r'"([A-Z][A-Z0-9_]{3,})"', source))
    prefix = "PARTNERGUARD_STORAGE"
    names |= {f"{prefix}{suffix}" for suffix in re.findall(r'f"\{prefix\}(__\w+)"', source)}
    # Set by the Functions host, read only to know we run in Azure.
    return names - {"WEBSITE_INSTANCE_ID", "WEBSITE_HOSTNAME"}


def test_every_check_is_documented_with_what_why_and_how() -> None:
    checks = _section("Checks")
    for check in ALL_CHECKS:
        row = next((line for line in checks.splitlines() if line.startswith(f"| `{check.METADATA.id}` |")), None)
        assert row is not None, f"{check.METADATA.id} has no row in the README's Checks table"
        assert row.count("|") >= 6, f"{check.METADATA.id}: the row needs what, why and how"


def test_every_graph_permission_is_documented() -> None:
    table = _section("Graph permissions")
    needed = {endpoint.permission for endpoint in ENDPOINTS}
    for check in ALL_CHECKS:
        needed |= set(check.METADATA.permissions)
    needed.add("Directory.Read.All")  # Microsoft's licence check on the report APIs (SPEC §6)
    documented = set(re.findall(r"^\| `([A-Za-z.]+)` \|", table, re.MULTILINE))
    assert needed <= documented, f"undocumented: {sorted(needed - documented)}"
    assert documented <= needed, f"documented but never needed: {sorted(documented - needed)}"


def test_every_setting_is_documented_and_in_the_local_settings_example() -> None:
    settings = _section("Settings (contract)")
    example = json.loads((ROOT / "local.settings.example.json").read_text(encoding="utf-8"))["Values"]
    for name in sorted(_settings_read_by_the_code()):
        if name.startswith("PARTNERGUARD_STORAGE__"):
            assert name.removeprefix("PARTNERGUARD_STORAGE") in settings, name
            continue
        assert name in settings, f"{name} is read by the code but not in the README's settings table"
        assert name in example, f"{name} is missing from local.settings.example.json"

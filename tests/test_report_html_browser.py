"""The HTML report of the bundled scenarios in a real browser (Debian's headless Chromium).

The scenarios are scanned through the command line (tenant simulator, Azurite), with extra
hostile names planted in the partner tenant first: its own name and two display names carry
markup that would mark the document (`data-pwned` on <html>) if it ever ran. The test then
loads the written file in Chromium and checks, on the DOM Chromium built:

- filtering works: a filter in the URL fragment (which the page's script applies on load, as
  it does for shared links) hides exactly the rows that do not match, and the count says so;
- no script from tenant data ran, and the detector is real: the same page with one name left
  unescaped and its Content-Security-Policy removed does get marked, and with the policy in
  place it does not (the policy holds on its own);
- a screenshot is saved under test-output/ for people to look at.

Chromium is a test dependency `make test` installs: when it is missing the test fails with the
command that installs it; it never skips.
"""

from __future__ import annotations

import contextlib
import copy
import io
import re
import struct
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from markupsafe import escape

from partnerguard import cli
from partnerguard.text import safe_text
from testbed.simulator import TenantSimulator
from tests.chromium_harness import CHROMIUM_FLAGS, chromium
from tests.graph_sim import pace_to
from tests.method_strength_harness import figure_counts, strength_figures

PARTNER = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
# The partner scenario's user whose display name is already `<script>alert(1)</script> Ops`.
OPS_USER = "616499c9-e25a-4605-aec6-f0245bd86d40"
TEST_OUTPUT = Path(__file__).resolve().parents[1] / "test-output"
WINDOW = (1280, 1800)


def pwned(marker: str) -> str:
    return f"document.documentElement.setAttribute('data-pwned','{marker}')"


HOSTILE_TENANT_NAME = f'Contoso <img src=x onerror="{pwned("tenant")}">'
HOSTILE_SCRIPT_USER = f"Mallory <script>{pwned('script')}</script>"
HOSTILE_ATTRIBUTE_USER = f'Trudy "><svg onload="{pwned("svg")}"> \u202egnp.exe'


def run_chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, f"chromium exited {result.returncode}: {result.stderr[-3000:]}"
    return result


def dump_dom(page: Path, fragment: str, profile: Path) -> str:
    """The DOM after the page's script ran, as Chromium serialises it."""
    url = page.as_uri() + (f"#{fragment}" if fragment else "")
    return run_chromium("--dump-dom", url, profile=profile).stdout


def marked(dom: str) -> str | None:
    match = re.search(r"<html\b[^>]*\bdata-pwned=\"([^\"]*)\"", dom)
    return match.group(1) if match else None


def finding_rows(html: str) -> list[dict[str, str]]:
    rows = []
    for attributes in re.findall(r"<tr class=\"finding\"([^>]*)>", html):
        row = dict(re.findall(r"([\w-]+)=\"([^\"]*)\"", attributes))
        row["hidden"] = "yes" if re.search(r"\bhidden\b", attributes) else "no"
        rows.append(row)
    return rows


def shown_count(dom: str) -> int:
    match = re.search(r"<span id=\"findings-shown\">(\d+)</span>", dom)
    assert match, "the page shows how many findings match"
    return int(match.group(1))


def plant_hostile_names(simulator: TenantSimulator) -> None:
    tenant = simulator.tenant(PARTNER)
    tenant.organization["displayName"] = HOSTILE_TENANT_NAME
    template = next(u for u in tenant.users if u["id"] == OPS_USER)
    registration = next(r for r in tenant.user_registration_details if r["id"] == OPS_USER)
    for name in (HOSTILE_SCRIPT_USER, HOSTILE_ATTRIBUTE_USER):
        user_id = str(uuid.uuid4())
        upn = f"{user_id[:8]}@contosopartner.onmicrosoft.com"
        tenant.users.append({**copy.deepcopy(template), "id": user_id, "displayName": name, "userPrincipalName": upn})
        tenant.user_registration_details.append(
            {**copy.deepcopy(registration), "id": user_id, "userDisplayName": name, "userPrincipalName": upn}
        )


@pytest.fixture(scope="module")
def profile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    yield tmp_path_factory.mktemp("chromium-profile")


@pytest.fixture(scope="module")
def report_page(simulator: TenantSimulator, cli_storage: str) -> Iterator[Path]:
    """The report of two scans of every bundled tenant: the hostile users are new in the second."""
    chromium()  # fail before the scans if the browser is missing
    TEST_OUTPUT.mkdir(exist_ok=True)
    page = TEST_OUTPUT / "report.html"
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**simulator.environment(), "PARTNERGUARD_STORAGE": cli_storage}.items():
            patch.setenv(name, value)
        pace_to(simulator, patch)  # as `cli_env` does: Graph's request counts over short windows
        assert scan("--format", "json") in (1, 3)
        plant_hostile_names(simulator)
        assert scan("--format", "html", "--output", str(page)) in (1, 3)
    yield page


def scan(*options: str) -> int:
    """`scan --all` in process, its output discarded (the HTML goes to a file)."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return cli.main(["scan", "--all", "--no-alerts", *options])


def test_the_report_filters_in_chromium_and_runs_no_tenant_script(report_page: Path, profile: Path) -> None:
    html = report_page.read_text(encoding="utf-8")
    rows = finding_rows(html)
    assert len(rows) > 20 and len({r["data-tenant"] for r in rows}) >= 2
    # Without a filter every finding shows, and nothing from tenant data ran.
    dom = dump_dom(report_page, "", profile)
    assert marked(dom) is None
    assert not re.search(r"<(img|svg)\b[^>]*\bon\w+=", dom)
    assert "Contoso &lt;img src=x onerror=" in dom and "Mallory &lt;script&gt;" in dom
    assert shown_count(dom) == len(rows) and all(r["hidden"] == "no" for r in finding_rows(dom))

    # A filter by state and severity: exactly the matching rows stay visible.
    dom = dump_dom(report_page, "state=new&severity=high", profile)
    expected = [r["data-state"] == "new" and r["data-severity"] == "high" for r in rows]
    assert 0 < sum(expected) < len(rows)
    assert [r["hidden"] == "no" for r in finding_rows(dom)] == expected
    assert shown_count(dom) == sum(expected)
    assert marked(dom) is None

    # Free-text search finds the planted user by name, whatever the rest of the filters.
    dom = dump_dom(report_page, "q=mallory&check=mfa.registration", profile)
    visible = [r for r in finding_rows(dom) if r["hidden"] == "no"]
    assert len(visible) == 1 and visible[0]["data-check"] == "mfa.registration"
    assert visible[0]["data-state"] == "new"  # first seen in the second scan
    assert shown_count(dom) == 1

    # A filter value the page does not offer means "all", never an empty or broken page.
    dom = dump_dom(report_page, "severity=%3Cscript%3E", profile)
    assert shown_count(dom) == len(rows) and marked(dom) is None


def test_the_method_strength_figures_render_in_chromium_as_the_ground_truth(
    report_page: Path, profile: Path, simulator: TenantSimulator
) -> None:
    # The DOM Chromium built (the hostile users planted before the second scan included).
    figures = strength_figures(dump_dom(report_page, "", profile))
    assert set(figures) == {tenant.tenant_id for tenant in simulator.tenants}
    for tenant in simulator.tenants:
        assert figure_counts(figures[tenant.tenant_id]) == tenant.expected_method_strength(), tenant.display_name


def test_the_detector_works_and_the_policy_alone_would_stop_an_unescaped_name(
    report_page: Path, profile: Path, tmp_path: Path
) -> None:
    html = report_page.read_text(encoding="utf-8")
    escaped = str(escape(safe_text(HOSTILE_TENANT_NAME, 200)))
    assert escaped in html
    unescaped = html.replace(escaped, HOSTILE_TENANT_NAME, 1)
    policy = re.compile(r"<meta http-equiv=\"Content-Security-Policy\"[^>]*>")
    assert policy.search(unescaped)

    without_policy = tmp_path / "unescaped-no-policy.html"
    without_policy.write_text(policy.sub("", unescaped), encoding="utf-8")
    assert marked(dump_dom(without_policy, "", profile)) == "tenant"  # the injected handler ran

    with_policy = tmp_path / "unescaped-with-policy.html"
    with_policy.write_text(unescaped, encoding="utf-8")
    dom = dump_dom(with_policy, "state=new", profile)
    assert marked(dom) is None  # blocked by the policy
    assert shown_count(dom) == sum(r["data-state"] == "new" for r in finding_rows(html))  # ours still runs


def test_a_screenshot_of_the_report_is_saved(report_page: Path, profile: Path) -> None:
    screenshot = TEST_OUTPUT / "report.png"
    screenshot.unlink(missing_ok=True)
    width, height = WINDOW
    run_chromium(
        f"--screenshot={screenshot}",
        f"--window-size={width},{height}",
        "--hide-scrollbars",
        report_page.as_uri(),
        profile=profile,
    )
    data = screenshot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == WINDOW
    assert len(data) > 50_000  # a rendered page, not a blank one

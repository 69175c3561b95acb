"""`scan` and `report` with `--format html|csv|sarif` through the command line, against the
tenant simulator and Azurite: stdout carries only the document, progress goes to stderr."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from partnerguard.render.csv_export import COLUMNS
from testbed.simulator import TenantSimulator, bundled_scenarios
from tests.cli_harness import run_cli

PARTNER = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
SCHEMA = json.loads((Path(__file__).parent / "schemas" / "sarif-2.1.0.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def documents() -> dict[str, Any]:
    """Filled by the first test: the JSON reports of the scan, to compare the other formats with."""
    return {}


def test_scan_all_as_csv_prints_only_the_document_and_plain_progress_on_stderr(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], documents: dict[str, Any]
) -> None:
    code, out, err = run_cli(capsys, "scan", "--all", "--format", "csv", "--no-alerts")
    assert code in (1, 3)  # the bundled scenarios have failing checks
    rows = list(csv.DictReader(io.StringIO(out, newline="")))
    assert out.startswith(",".join(f'"{c}"' for c in COLUMNS) + "\r\n")
    # Progress: one start and one finish line per tenant, on stderr only.
    tenants = len(bundled_scenarios())
    assert err.count(" started: tenant ") == tenants and err.count(" finished: ") == tenants
    assert "scan 1/" not in out and "\x1b" not in err
    # The same findings as the stored reports.
    code, out, _ = run_cli(capsys, "report", "--tenant", PARTNER, "--format", "json")
    report = json.loads(out)
    documents["partner"] = report
    expected = {(c["id"], f["subject_id"]) for c in report["checks"] for f in c["findings"]}
    assert {(r["check_id"], r["subject_id"]) for r in rows if r["tenant_id"] == PARTNER} == expected
    assert {r["state"] for r in rows} == {"new"}
    assert all(r["first_seen"] for r in rows)  # from the findings' lifecycle
    assert any(r["subject_name"] == "<script>alert(1)</script> Ops" for r in rows)


def test_report_as_sarif_is_valid_and_has_a_result_per_finding(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], documents: dict[str, Any]
) -> None:
    code, out, _ = run_cli(capsys, "report", "--tenant", PARTNER, "--format", "sarif")
    assert code in (1, 3)
    log = json.loads(out)
    jsonschema.Draft4Validator(SCHEMA).validate(log)
    (run,) = log["runs"]
    report = documents["partner"]
    assert len(run["results"]) == sum(len(c["findings"]) for c in report["checks"])
    assert {r["ruleId"] for r in run["results"]} == {c["id"] for c in report["checks"] if c["findings"]}
    assert run["properties"]["runId"] == report["run_id"]


def test_report_as_html_to_a_file_shows_the_tenants_mfa_coverage(
    cli_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    simulator: TenantSimulator,
    tmp_path: Path,
) -> None:
    target = tmp_path / "report.html"
    code, out, err = run_cli(capsys, "report", "--tenant", PARTNER, "--format", "html", "--output", str(target))
    assert code in (1, 3) and out == "" and f"wrote {target}" in err
    html = target.read_text(encoding="utf-8")
    # The coverage of the scenario's ground truth: enabled members, less those not MFA capable.
    scenario = simulator.tenant(PARTNER)
    in_scope = [u for u in scenario.users if u.get("accountEnabled", True) and u.get("userType") != "Guest"]
    incapable = scenario.expected_mfa_registration_subjects()
    capable = len(in_scope) - len(incapable)
    assert f"{capable} of {len(in_scope)} assessed users can complete MFA" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Ops" in html and "<script>alert" not in html

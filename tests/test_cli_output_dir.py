"""`scan` and `report` with `--output-dir DIR`: every file format of one run (json, html, csv,
sarif) under one timestamped base name, through the real command line against the tenant
simulator and Azurite. The partner tenant's name is hostile here, so the HTML must escape it."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jsonschema
import pytest

import partnerguard.clock
from partnerguard.render.csv_export import COLUMNS
from testbed.simulator import TenantSimulator, bundled_scenarios
from tests.cli_harness import run_cli
from tests.graph_sim import fast_simulator

PARTNER = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
HOSTILE_NAME = 'Contoso <b>Partner</b> & "Sons"'
SCHEMA = json.loads((Path(__file__).parent / "schemas" / "sarif-2.1.0.json").read_text(encoding="utf-8"))
BASE_NAME = re.compile(r"^partnerguard-\d{8}T\d{6}Z$")


@pytest.fixture(scope="module")
def simulator() -> Iterator[TenantSimulator]:
    """The bundled tenants, the partner's organization renamed to something HTML must escape."""
    scenarios = [scenario.copy() for scenario in bundled_scenarios()]
    for scenario in scenarios:
        if scenario.tenant_id == PARTNER:
            scenario.display_name = HOSTILE_NAME
            scenario.organization["displayName"] = HOSTILE_NAME
    with fast_simulator(scenarios) as sim:
        yield sim


def written_paths(err: str) -> list[Path]:
    return [Path(line.removeprefix("wrote ")) for line in err.splitlines() if line.startswith("wrote ")]


def test_scan_with_output_dir_writes_each_format_under_one_base_name(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = tmp_path / "runs" / "nightly"  # missing: created
    code, out, err = run_cli(capsys, "scan", "--all", "--no-alerts", "--output-dir", str(target))
    assert code in (1, 3)  # the bundled scenarios have failing checks
    assert out == ""  # the documents go to the files only
    paths = written_paths(err)
    assert sorted(paths) == sorted(target.iterdir())
    assert sorted(p.suffix for p in paths) == [".csv", ".html", ".json", ".sarif"]
    (base,) = {p.stem for p in paths}
    assert BASE_NAME.fullmatch(base)
    files = {p.suffix.lstrip("."): p for p in paths}

    document = json.loads(files["json"].read_text(encoding="utf-8"))
    assert document["schema"] == "partnerguard.reports/v1"
    reports = {r["tenant"]["id"]: r for r in document["reports"]}
    assert set(reports) == {s.tenant_id for s in bundled_scenarios()}
    assert reports[PARTNER]["tenant"]["name"] == HOSTILE_NAME

    text = files["csv"].read_bytes().decode("utf-8")  # as written: no newline translation
    assert text.startswith(",".join(f'"{c}"' for c in COLUMNS) + "\r\n")  # CRLF kept as rendered
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    findings = sum(len(c["findings"]) for r in reports.values() for c in r["checks"])
    assert len(rows) == findings > 0

    log = json.loads(files["sarif"].read_text(encoding="utf-8"))
    jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER).validate(log)
    assert {run["properties"]["runId"] for run in log["runs"]} == {r["run_id"] for r in reports.values()}

    page = files["html"].read_text(encoding="utf-8")
    # Escaped as the report's templates escape (quotes as &#34;), and never as markup.
    assert "Contoso &lt;b&gt;Partner&lt;/b&gt; &amp; &#34;Sons&#34;" in page and "<b>Partner" not in page


def test_output_dir_excludes_format_and_output(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for command in (["scan", "--tenant", PARTNER], ["report", "--tenant", PARTNER]):
        for extra in (["--format", "json"], ["--format", "table"], ["--output", str(tmp_path / "x.json")]):
            with pytest.raises(SystemExit) as exited:
                run_cli(capsys, *command, "--output-dir", str(tmp_path / "dir"), *extra)
            assert exited.value.code == 2
            _, err = capsys.readouterr()
            assert f"argument --output-dir: not allowed with argument {extra[0]}" in err
    assert list(tmp_path.iterdir()) == []  # refused before anything ran or was created


def test_report_with_output_dir_never_overwrites_an_existing_file(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stored run of its own, so the test does not depend on the order tests run in.
    code, _, _ = run_cli(capsys, "scan", "--tenant", PARTNER, "--no-alerts", "--format", "json")
    assert code in (1, 3)
    # A clock the test moves: the base name is the moment the command starts.
    moments = [datetime(2026, 1, 2, 12, 0, 0, tzinfo=UTC)]
    monkeypatch.setattr(partnerguard.clock, "utc_now", lambda: moments[-1])
    existing = tmp_path / "partnerguard-20260102T120000Z.csv"
    existing.write_text("kept\n", encoding="utf-8")

    code, out, err = run_cli(capsys, "report", "--tenant", PARTNER, "--output-dir", str(tmp_path))
    assert code == 2 and out == ""
    assert f"not overwriting {existing}" in err and "wrote " not in err
    assert existing.read_text(encoding="utf-8") == "kept\n"
    assert list(tmp_path.iterdir()) == [existing]  # no format of the run was written beside it

    moments.append(moments[-1] + timedelta(seconds=1))
    code, out, err = run_cli(capsys, "report", "--tenant", PARTNER, "--output-dir", str(tmp_path))
    assert code in (1, 3) and out == ""
    paths = written_paths(err)
    assert {p.name for p in paths} == {
        f"partnerguard-20260102T120001Z.{fmt}" for fmt in ("json", "html", "csv", "sarif")
    }
    report = json.loads((tmp_path / "partnerguard-20260102T120001Z.json").read_text(encoding="utf-8"))
    assert report["tenant"]["id"] == PARTNER  # `report` writes the single-report document
    assert existing.read_text(encoding="utf-8") == "kept\n"


def test_output_dir_that_is_a_file_is_a_usage_error(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    occupied = tmp_path / "a-file"
    occupied.write_text("", encoding="utf-8")
    code, out, err = run_cli(capsys, "report", "--tenant", PARTNER, "--output-dir", str(occupied))
    assert code == 2 and out == ""
    assert f"cannot use --output-dir {occupied}" in err

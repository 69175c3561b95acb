"""checkov's Bicep checks pass on infra/, except those the templates skip with a stated reason.

checkov pins packages the app's pins refuse, so `make install` puts it in .venv/tools (see
requirements-tools.txt) and this test runs it as a process. It runs offline: --skip-download
keeps it from fetching guidelines, CKV_SKIP_PACKAGE_UPDATE_CHECK from looking for a newer release.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.infra_bicep import INFRA, REPO

CHECKOV = REPO / ".venv" / "tools" / "bin" / "checkov"


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV.relative_to(REPO)} is missing: `make install` installs it (requirements-tools.txt)")
    completed = subprocess.run(
        [str(CHECKOV), "--framework", "bicep", "--directory", str(INFRA), "--skip-download", "--output", "json"],
        cwd=REPO,
        env={**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"},
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    # checkov exits 1 when a check fails; the report says which, so read it either way.
    assert completed.returncode in (0, 1), completed.stderr[-2000:]
    document = json.loads(completed.stdout)
    parts = document if isinstance(document, list) else [document]
    (bicep,) = [part for part in parts if part["check_type"] == "bicep"]
    result: dict[str, Any] = bicep
    return result


def test_checkov_reads_every_template(report: dict[str, Any]) -> None:
    # checkov's parser (an older pycep) lists every file it could not read, and checks none of it.
    assert report["summary"]["parsing_errors"] == 0, report["results"].get("parsing_errors")
    checked = report["results"]["passed_checks"] + report["results"]["skipped_checks"]
    scanned = {Path(check["file_abs_path"]).resolve() for check in checked}
    # The files whose resources checkov has checks for: the app and the storage account.
    for name in ("function-app.bicep", "storage.bicep"):
        assert (INFRA / "modules" / name).resolve() in scanned


def test_no_check_fails(report: dict[str, Any]) -> None:
    failed = [(c["check_id"], c["resource"], c["file_path"]) for c in report["results"]["failed_checks"]]
    assert failed == []
    assert report["summary"]["passed"] > 0


def test_every_skipped_check_states_its_reason(report: dict[str, Any]) -> None:
    for check in report["results"]["skipped_checks"]:
        reason = check["check_result"].get("suppress_comment", "")
        assert reason != "No comment provided" and len(reason.split()) >= 6, f"{check['check_id']}: {reason!r}"

"""The examples in docs/examples/ do what the docs say and set only settings PartnerGuard reads:
an example naming a setting that does not exist would run, silently ignore it, and mislead."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from partnerguard.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "docs" / "examples" / "github-code-scanning.yml"
SETTINGS_SOURCE = (ROOT / "partnerguard" / "settings.py").read_text(encoding="utf-8")
# A name of PartnerGuard's settings family (SPEC §5), as opposed to the runner's own variables.
SETTING_NAME = re.compile(r"^(AZURE|PARTNERGUARD|GRAPH|ALERT|ACS|EMAIL)_[A-Z0-9_]+$")
# A variable a step adds to the job's environment: `echo "NAME=value" >> "$GITHUB_ENV"`.
GITHUB_ENV_LINE = re.compile(r'echo "([A-Z][A-Z0-9_]*)=[^"]*" >> "\$GITHUB_ENV"')


def load() -> dict[Any, Any]:
    workflow: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    return workflow


def job_settings(workflow: dict[Any, Any]) -> set[str]:
    """Every PartnerGuard-looking variable the workflow sets, in `env:` blocks or via GITHUB_ENV."""
    names: set[str] = set()
    jobs = workflow["jobs"].values()
    blocks = [workflow.get("env") or {}] + [job.get("env") or {} for job in jobs]
    blocks += [step.get("env") or {} for job in jobs for step in job["steps"]]
    for block in blocks:
        names |= set(block)
    for job in jobs:
        for step in job["steps"]:
            names |= set(GITHUB_ENV_LINE.findall(step.get("run", "")))
    return {name for name in names if SETTING_NAME.match(name)}


def unread(names: set[str]) -> set[str]:
    """The names settings.py never mentions as a string: no setting reads them."""
    return {name for name in names if f'"{name}"' not in SETTINGS_SOURCE}


def test_the_code_scanning_workflow_has_the_documented_shape() -> None:
    workflow = load()
    assert workflow["permissions"] == {"id-token": "write", "contents": "read", "security-events": "write"}
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"schedule", "workflow_dispatch"}
    (job,) = workflow["jobs"].values()
    runs = [step.get("run", "") for step in job["steps"]]
    (scan,) = [run for run in runs if "python -m partnerguard scan" in run]
    assert "--all" in scan and "--format sarif" in scan and "--no-alerts" in scan
    assert "--output partnerguard.sarif" in scan
    (upload,) = [step for step in job["steps"] if str(step.get("uses", "")).startswith("github/codeql-action/")]
    assert upload["uses"].startswith("github/codeql-action/upload-sarif@")
    assert upload["with"]["sarif_file"] == "partnerguard.sarif"
    assert any("azurite" in run for run in runs)  # storage in the job unless the partner sets one


def test_every_setting_the_workflow_sets_is_one_partnerguard_reads() -> None:
    names = job_settings(load())
    assert {"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_CERTIFICATE_PATH", "PARTNERGUARD_STORAGE"} <= names
    assert unread(names) == set()
    # The check can fail: a federated-token setting PartnerGuard does not read is caught.
    assert unread({"AZURE_FEDERATED_TOKEN_FILE"}) == {"AZURE_FEDERATED_TOKEN_FILE"}


def test_the_workflow_environment_is_valid_settings(tmp_path: Path) -> None:
    """As the job sets them (secret storage left empty, so Azurite), the settings load and sign in
    with the certificate: the example is a configuration PartnerGuard accepts."""
    certificate = tmp_path / "partnerguard-ci.pem"
    certificate.write_text("placeholder", encoding="utf-8")
    settings = Settings.from_env(
        {
            "AZURE_TENANT_ID": "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73",
            "AZURE_CLIENT_ID": "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d",
            "PARTNERGUARD_TENANTS": "c0ffee00-1b2c-4d3e-8f90-a1b2c3d4e5f6",
            "PARTNERGUARD_STORAGE": "",
            "AZURE_CLIENT_CERTIFICATE_PATH": str(certificate),
        }
    )
    settings.require_graph()
    assert settings.client_certificate_path == certificate
    assert settings.storage.connection_string == "UseDevelopmentStorage=true"

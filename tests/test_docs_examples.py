"""The examples in docs/examples/ do what the docs say and set only settings PartnerGuard reads:
an example naming a setting that does not exist would run, silently ignore it, and mislead."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from partnerguard.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / "docs" / "examples" / "github-code-scanning.yml"
SETTINGS_SOURCE = (ROOT / "partnerguard" / "settings.py").read_text(encoding="utf-8")
# A name of PartnerGuard's settings family (SPEC §5), as opposed to the runner's own variables.
SETTING_NAME = re.compile(r"^(AZURE|PARTNERGUARD|GRAPH|ALERT|ACS|EMAIL)_[A-Z0-9_]+$")
# A variable a step adds to the job's environment: `echo "NAME=value" >> "$GITHUB_ENV"`.
GITHUB_ENV_LINE = re.compile(r'echo "([A-Z][A-Z0-9_]*)=[^"]*" >> "\$GITHUB_ENV"')
# Settings that carry an app credential for Graph: the workflow signs in with GitHub's OIDC token
# instead, on a dedicated app (a managed identity does not exist on a GitHub runner either).
APP_CREDENTIALS = {
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "PARTNERGUARD_IDENTITY_CLIENT_ID",
    "PARTNERGUARD_GRAPH_IDENTITY_CLIENT_ID",
}
SCAN_COMMAND = "python -m partnerguard scan --all --format sarif --output partnerguard.sarif --no-alerts"


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
    assert {"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE", "PARTNERGUARD_STORAGE"} <= names
    assert unread(names) == set()
    # The check can fail: a setting PartnerGuard does not read is caught.
    assert unread({"AZURE_FEDERATED_TOKEN_PATH"}) == {"AZURE_FEDERATED_TOKEN_PATH"}


def scan_step(workflow: dict[Any, Any]) -> dict[Any, Any]:
    (job,) = workflow["jobs"].values()
    (step,) = [step for step in job["steps"] if SCAN_COMMAND in step.get("run", "")]
    return dict(step)


def test_the_workflow_signs_in_with_githubs_oidc_token_and_holds_no_app_credential() -> None:
    workflow = load()
    text = WORKFLOW.read_text(encoding="utf-8")
    assert workflow["permissions"]["id-token"] == "write"  # without it GitHub issues no token
    assert job_settings(workflow) & APP_CREDENTIALS == set()
    # Its one secret is the optional storage account: nothing that signs in to a tenant.
    assert set(re.findall(r"secrets\.([A-Za-z0-9_]+)", text)) == {"PARTNERGUARD_STORAGE"}
    assert "BEGIN" not in text and "PRIVATE KEY" not in text
    step = scan_step(workflow)
    assert step["env"]["AZURE_FEDERATED_TOKEN_FILE"].startswith("${{ runner.temp }}/")
    run = step["run"]
    # GitHub's ID token request, for Entra's token-exchange audience, before the scan starts.
    for part in (
        "$ACTIONS_ID_TOKEN_REQUEST_URL",
        "$ACTIONS_ID_TOKEN_REQUEST_TOKEN",
        "audience=api://AzureADTokenExchange",
    ):
        assert part in run
    assert run.index("! fetch_token") < run.index(SCAN_COMMAND)  # no token, no scan
    # ...and it is refreshed while the scan runs.
    assert re.search(r"sleep \d+ & sleeper=\$!\n\s*wait \"\$sleeper\"\n\s*fetch_token", run)
    assert run.index("refresh_tokens &") < run.index(SCAN_COMMAND)
    assert "umask 077" in run and "chmod 600" in run
    # The comments name the dedicated app and its federated credential, never the production one.
    assert "DEDICATED, read-only Entra app" in text
    assert "repo:<owner>/<repo>:ref:refs/heads/main" in text
    assert "never the production Graph identity" in text


class FakeGitHubTokenService(BaseHTTPRequestHandler):
    """GitHub's ID-token endpoint as a job sees it ($ACTIONS_ID_TOKEN_REQUEST_URL): a bearer
    request token, an `audience` query parameter, `{"value": <jwt>}` back."""

    request_token = "runner-request-token"
    issued: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        query = parse_qs(urlsplit(self.path).query)
        if self.headers.get("Authorization") != f"bearer {self.request_token}":
            self.send_response(401)
            self.end_headers()
            return
        if query.get("audience") != ["api://AzureADTokenExchange"] or query.get("api-version") != ["2.0"]:
            self.send_response(400)
            self.end_headers()
            return
        token = f"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJyZXBvIn0.signature{len(self.issued)}"
        self.issued.append(token)
        body = json.dumps({"count": 1, "value": token}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def github_token_service() -> Iterator[str]:
    FakeGitHubTokenService.issued = []
    server = HTTPServer(("127.0.0.1", 0), FakeGitHubTokenService)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/_apis/token?api-version=2.0"
    finally:
        server.shutdown()
        server.server_close()


def run_scan_step(
    tmp_path: Path, request_url: str | None, command: str, refresh_every: str | None = None
) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    """The scan step's script in bash as the runner runs it, with the scan replaced by `command`
    (what PartnerGuard would find in the token file), `python` this interpreter, and the
    refresher's two minutes shortened to `refresh_every` seconds when given."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    token_file = tmp_path / "runner-temp" / "partnerguard-oidc.jwt"
    token_file.parent.mkdir()
    outputs = tmp_path / "github-output"
    outputs.touch()
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_OUTPUT": str(outputs),
        "AZURE_FEDERATED_TOKEN_FILE": str(token_file),
        "ACTIONS_ID_TOKEN_REQUEST_TOKEN": FakeGitHubTokenService.request_token,
    }
    if request_url is not None:
        env["ACTIONS_ID_TOKEN_REQUEST_URL"] = request_url
    script = scan_step(load())["run"]
    assert script.count(SCAN_COMMAND) == 1
    if refresh_every is not None:
        assert script.count("sleep 120 &") == 1
        script = script.replace("sleep 120 &", f"sleep {refresh_every} &")
    completed = subprocess.run(
        ["bash", "-e", "-c", script.replace(SCAN_COMMAND, command)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return completed, token_file, outputs


def test_the_scan_step_hands_githubs_token_to_partnerguard_in_a_private_file(
    tmp_path: Path, github_token_service: str
) -> None:
    seen = tmp_path / "seen"
    completed, token_file, outputs = run_scan_step(
        tmp_path,
        github_token_service,
        f'(stat -c %a "$AZURE_FEDERATED_TOKEN_FILE" > {seen}.mode; cat "$AZURE_FEDERATED_TOKEN_FILE" > {seen}; exit 1)',
    )
    assert completed.returncode == 0, completed.stderr
    (issued,) = FakeGitHubTokenService.issued
    assert seen.read_text(encoding="utf-8").strip() == issued
    assert Path(f"{seen}.mode").read_text(encoding="utf-8").strip() == "600"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert outputs.read_text(encoding="utf-8") == "code=1\n"  # the scan's own exit code
    assert issued not in completed.stdout + completed.stderr


def test_the_scan_step_refreshes_the_token_file_while_the_scan_runs(tmp_path: Path, github_token_service: str) -> None:
    """What PartnerGuard reads at a later sign-in is a newer token than the one it started with."""
    later = tmp_path / "later"
    wait_for_a_new_token = (
        'first=$(cat "$AZURE_FEDERATED_TOKEN_FILE"); '
        'for _ in $(seq 100); do sleep 0.05; [ "$(cat "$AZURE_FEDERATED_TOKEN_FILE")" != "$first" ] && break; done; '
        f'cat "$AZURE_FEDERATED_TOKEN_FILE" > {later}'
    )
    completed, _, outputs = run_scan_step(tmp_path, github_token_service, wait_for_a_new_token, refresh_every="0.2")
    assert completed.returncode == 0, completed.stderr
    issued = FakeGitHubTokenService.issued
    assert len(issued) >= 2
    assert later.read_text(encoding="utf-8").strip() in issued[1:]
    assert outputs.read_text(encoding="utf-8") == "code=0\n"


def test_without_id_token_permission_the_scan_step_says_so(tmp_path: Path) -> None:
    completed, token_file, outputs = run_scan_step(tmp_path, None, "exit 0")
    assert "id-token: write" in completed.stderr
    assert outputs.read_text(encoding="utf-8") == "code=2\n"  # the job's last step fails on it
    assert not token_file.exists()


def test_the_workflow_environment_is_valid_settings(tmp_path: Path) -> None:
    """As the job sets them (secret storage left empty, so Azurite), the settings load and sign in
    with the token file: the example is a configuration PartnerGuard accepts."""
    token_file = tmp_path / "partnerguard-oidc.jwt"
    token_file.write_text("eyJhbGciOiJSUzI1NiJ9.e30.c2ln\n", encoding="utf-8")
    settings = Settings.from_env(
        {
            "AZURE_TENANT_ID": "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73",
            "AZURE_CLIENT_ID": "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d",
            "PARTNERGUARD_TENANTS": "c0ffee00-1b2c-4d3e-8f90-a1b2c3d4e5f6",
            "PARTNERGUARD_STORAGE": "",
            "AZURE_FEDERATED_TOKEN_FILE": str(token_file),
        }
    )
    settings.require_graph()
    assert settings.federated_token_file == token_file
    assert settings.client_secret is None and settings.client_certificate_path is None
    assert settings.storage.connection_string == "UseDevelopmentStorage=true"

"""A partner tenant for scripts/setup_identity.py: the stand-in `az` (tests/infra_fake_az.py) and
`azd` (tests/infra_fake_azd.py) on PATH, over a state file of Entra objects. Shared by
tests/test_setup_identity.py and tests/test_infra_azd_flow.py."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checks import ALL_CHECKS
from partnerguard.graph.requests import ENDPOINTS
from tests.infra_fake_az import parse

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "setup_identity.py"
FAKE_AZ = Path(__file__).with_name("infra_fake_az.py")
FAKE_AZD = Path(__file__).with_name("infra_fake_azd.py")
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
# Graph permissions a careless script might grant; the fake Graph offers them beside the real ones.
DECOYS = ("Directory.ReadWrite.All", "Application.ReadWrite.All", "Mail.Send", "User.ReadWrite.All")
ROLE_NAMESPACE = uuid.UUID("6f1c1f40-4a1e-4d3c-9a57-3b0e8f1d2c11")
TENANT_ID = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
USER_ID = "0b9f5a8e-1d2c-4e3f-8a7b-6c5d4e3f2a1b"
DEFAULT_ROLE = str(uuid.UUID(int=0))
# Environment variables the script reads as defaults; the tests set them explicitly or not at all.
SCRIPT_ENVIRONMENT = (
    "AZURE_CLOUD",
    "AZURE_ENV_NAME",
    "AZURE_TENANT_ID",
    "PARTNERGUARD_TENANTS",
    "PARTNERGUARD_GRAPH_CLIENT_ID",
    "PARTNERGUARD_SIGNIN_CLIENT_ID",
    "PARTNERGUARD_IDENTITY_PRINCIPAL_ID",
    "PARTNERGUARD_GRAPH_IDENTITY_PRINCIPAL_ID",
    "PARTNERGUARD_SIGNIN_IDENTITY_PRINCIPAL_ID",
    "PARTNERGUARD_RESOURCE_TOKEN",
    "PARTNERGUARD_APP_HOSTNAME",
)
CHANGING_VERBS = {"create", "update", "add", "delete", "set", "reset", "grant", "admin-consent"}


def needed_permissions() -> set[str]:
    """What the code needs: every check's declared permissions and every Graph request's."""
    return {p for check in ALL_CHECKS for p in check.METADATA.permissions} | {e.permission for e in ENDPOINTS}


def role_id(permission: str) -> str:
    return str(uuid.uuid5(ROLE_NAMESPACE, permission))


def is_change(argv: list[str]) -> bool:
    words, options = parse(argv)
    if words == ["rest"]:
        return options["--method"][0].lower() != "get"
    return words[-1] in CHANGING_VERBS


def creates_a_secret(argv: list[str]) -> bool:
    words, _ = parse(argv)
    return words[:3] in (["ad", "app", "credential"], ["ad", "sp", "credential"])


def graph_service_principal() -> dict[str, Any]:
    roles = sorted(needed_permissions() | set(DECOYS))
    return {
        "id": "5f0c7e1a-2b3c-4d5e-8f90-a1b2c3d4e5f6",
        "appId": GRAPH_APP_ID,
        "displayName": "Microsoft Graph",
        "appRoleAssignmentRequired": False,
        "appRoles": [{"id": role_id(name), "value": name, "allowedMemberTypes": ["Application"]} for name in roles],
    }


def empty_tenant(tenant_id: str = TENANT_ID) -> dict[str, Any]:
    return {
        "tenantId": tenant_id,
        "userId": USER_ID,
        "applications": [],
        "servicePrincipals": [graph_service_principal()],
        "appRoleAssignments": [],
    }


@dataclass
class FakeTenant:
    workspace: Path
    bin_dir: Path
    project: Path  # the script's working directory: azd keeps its environments in project/.azure

    @classmethod
    def create(cls, root: Path, azd_version: str = "1.10.2") -> FakeTenant:
        """`az` and `azd` stand-ins in root/bin, the tenant's state in root/tenant."""
        bin_dir = root / "bin"
        bin_dir.mkdir(parents=True)
        workspace = root / "tenant"
        workspace.mkdir()
        project = root / "project"
        project.mkdir()
        python = shlex.quote(sys.executable)
        # -S -E: the stand-ins need only the standard library, and start faster without site-packages.
        scripts = {
            "az": f'#!/bin/sh\nexec {python} -S -E {shlex.quote(str(FAKE_AZ))} "$@"\n',
            "azd": (
                f"#!/bin/sh\nFAKE_AZD_LOG={shlex.quote(str(workspace / 'azd_calls.jsonl'))} "
                f'FAKE_AZD_VERSION="${{FAKE_AZD_VERSION:-{azd_version}}}" '
                f'exec {python} -S {shlex.quote(str(FAKE_AZD))} "$@"\n'
            ),
            # The hooks run `python3 scripts/setup_identity.py`: this interpreter, whatever PATH has.
            "python3": f'#!/bin/sh\nexec {python} "$@"\n',
        }
        for name, text in scripts.items():
            (bin_dir / name).write_text(text)
            (bin_dir / name).chmod(0o755)
        tenant = cls(workspace, bin_dir, project)
        tenant.write_state(empty_tenant())
        return tenant

    @property
    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads((self.workspace / "state.json").read_text())
        return state

    def write_state(self, state: dict[str, Any]) -> None:
        (self.workspace / "state.json").write_text(json.dumps(state, indent=1))

    def calls(self) -> list[list[str]]:
        log = self.workspace / "calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def changes(self) -> list[list[str]]:
        return [call for call in self.calls() if is_change(call)]

    def azd_calls(self) -> list[list[str]]:
        log = self.workspace / "azd_calls.jsonl"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def forget_calls(self) -> None:
        for name in ("calls.jsonl", "azd_calls.jsonl"):
            (self.workspace / name).unlink(missing_ok=True)

    def process_env(self, env: dict[str, str] | None = None) -> dict[str, str]:
        """The environment of a process that finds the stand-ins first on PATH."""
        environment = {k: v for k, v in os.environ.items() if k not in SCRIPT_ENVIRONMENT}
        environment.update(env or {})
        environment["PATH"] = f"{self.bin_dir}{os.pathsep}{environment.get('PATH', '')}"
        environment["FAKE_AZ_DIR"] = str(self.workspace)
        return environment

    def run(self, *args: str, env: dict[str, str] | None = None, expect: int = 0) -> subprocess.CompletedProcess[str]:
        completed = subprocess.run(
            [sys.executable, str(SCRIPT), *args],
            cwd=self.project,
            env=self.process_env(env),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert completed.returncode == expect, f"exit {completed.returncode}\n{completed.stdout}\n{completed.stderr}"
        return completed

    # -- reading the state -----------------------------------------------------------------

    def apps_named(self, name: str) -> list[dict[str, Any]]:
        return [a for a in self.state["applications"] if a["displayName"] == name]

    def app(self, name: str) -> dict[str, Any]:
        (found,) = self.apps_named(name)
        return found

    def credentials(self, name: str) -> dict[str, str]:
        """An app's federated credentials: name -> subject."""
        return {c["name"]: c["subject"] for c in self.app(name)["federatedIdentityCredentials"]}

    def service_principal_of(self, app_id: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = [sp for sp in self.state["servicePrincipals"] if sp["appId"] == app_id]
        (sp,) = found
        return sp

    def graph_roles_granted(self, app_id: str) -> set[str]:
        principal = self.service_principal_of(app_id)["id"]
        graph = self.service_principal_of(GRAPH_APP_ID)["id"]
        return {
            a["appRoleId"]
            for a in self.state["appRoleAssignments"]
            if a["principalId"] == principal and a["resourceId"] == graph
        }

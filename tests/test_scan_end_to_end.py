"""The whole pipeline on real local parts: `python -m partnerguard scan|report` against the tenant
simulator (real azure-identity sign-in, real msgraph transport over loopback HTTPS) and Azurite
(real azure-data-tables), and a 10,000-user tenant scanned end to end."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from partnerguard import cli
from partnerguard.pipeline import Scanner
from partnerguard.settings import Settings
from partnerguard.storage import ScanStore
from testbed.simulator import TenantSimulator, bundled_scenarios, generate_tenant
from tests.cli_harness import run_cli
from tests.graph_sim import fast_simulator, pace_to

PARTNER = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
FABRIKAM = "c0ffee00-1b2c-4d3e-8f90-a1b2c3d4e5f6"
NORTHWIND = "5e1d2c3b-4a59-4687-9a0b-1c2d3e4f5a6b"
BIG = "10000000-aaaa-4bbb-8ccc-dddddddddddd"
CHECK_IDS = [
    "mfa.registration",
    "mfa.enforcement",
    "legacy-auth.blocked",
    "legacy-auth.sign-ins",
    "sign-ins.single-factor",
    "sam.password-grant",
    "apps.client-secrets",
    "apps.credential-expiry",
    "gdap.privileged-roles",
    "gdap.expiring",
    "mfa.phishing-resistant-admins",
]


def by_id(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["id"]: check for check in document["checks"]}


def test_scan_then_report_reads_the_same_run_back(
    cli_env: dict[str, str], simulator: TenantSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "scan", "--tenant", PARTNER, "--format", "json")
    document = json.loads(out)  # stdout carries only the document
    assert code == 1  # checks fail; nothing errored
    assert document["schema"] == "partnerguard.report/v1"
    assert document["tenant"] == {"id": PARTNER, "name": "Contoso Partner Services", "role": "partner"}
    assert document["status"] == "succeeded"
    assert [c["id"] for c in document["checks"]] == CHECK_IDS
    checks = by_id(document)

    # mfa.registration reports exactly the users the simulator's ground truth names: the report's
    # verdict where it has a row, the authentication-methods fallback for the user it lacks.
    scenario = simulator.tenant(PARTNER)
    reported = {row["id"] for row in scenario.user_registration_details}
    expected = scenario.expected_mfa_registration_subjects()
    registration = checks["mfa.registration"]
    assert {f["subject_id"] for f in registration["findings"]} == expected
    assert expected - reported, "the scenario should have a user the registration report lacks"
    assert registration["status"] == "fail"
    assert all(f["state"] == "new" for f in registration["findings"])

    enforcement = checks["mfa.enforcement"]
    assert enforcement["status"] == "fail" and enforcement["severity"] == "critical"
    gaps = {f["subject_id"].split("|", 1)[1] for f in enforcement["findings"] if f["subject_type"] == "policy"}
    assert {"report-only", "excluded-users", "excluded-groups", "locations", "or-alternative"} <= gaps

    code, out, _ = run_cli(capsys, "report", "--tenant", PARTNER, "--format", "json")
    assert code == 1
    assert json.loads(out) == document

    # A second scan finds the same things again: now open, not new, and first seen is kept.
    code, out, _ = run_cli(capsys, "scan", "--tenant", PARTNER, "--format", "json")
    again = json.loads(out)
    assert again["run_id"] != document["run_id"]
    assert {f["state"] for f in by_id(again)["mfa.registration"]["findings"]} == {"open"}

    code, out, _ = run_cli(capsys, "report", "--tenant", PARTNER)
    assert code == 1
    assert again["run_id"] in out and "Contoso Partner Services" in out


def test_scan_all_takes_the_worst_exit_code_and_writes_the_reports_document(
    cli_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "reports.json"
    code, out, _ = run_cli(capsys, "scan", "--all", "--format", "json", "--output", str(output))
    assert out == ""
    document = json.loads(output.read_text(encoding="utf-8"))
    assert document["schema"] == "partnerguard.reports/v1"
    reports = {r["tenant"]["id"]: r for r in document["reports"]}
    assert set(reports) == {scenario.tenant_id for scenario in bundled_scenarios()}
    assert code == 1

    clean = by_id(reports[FABRIKAM])
    assert reports[FABRIKAM]["tenant"]["role"] == "customer"
    assert clean["mfa.registration"]["status"] == "pass"
    assert clean["mfa.enforcement"]["status"] == "pass"

    # Without Entra ID P1 the registration report and the sign-in logs answer 403: mfa.registration
    # is assessed through the authentication-methods fallback, the sign-in checks are not assessed
    # with the licence named, and Conditional Access cannot be enforced, so enforcement fails.
    northwind = next(s for s in bundled_scenarios() if s.tenant_id == NORTHWIND)
    unlicensed = by_id(reports[NORTHWIND])
    assert unlicensed["mfa.registration"]["status"] == "fail"
    assert {f["subject_id"] for f in unlicensed["mfa.registration"]["findings"]} == (
        northwind.expected_mfa_registration_subjects()
    )
    for check_id in ("legacy-auth.sign-ins", "sign-ins.single-factor", "sam.password-grant"):
        assert unlicensed[check_id]["status"] == "not_assessed"
        assert unlicensed[check_id]["reason_code"] == "licence:AAD_PREMIUM"
    assert unlicensed["mfa.enforcement"]["status"] == "fail"
    assert unlicensed["legacy-auth.blocked"]["status"] == "fail"


def test_clean_tenant_exits_0(cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "scan", "--tenant", FABRIKAM)
    assert code == 0
    assert "Fabrikam" in out
    code, _, _ = run_cli(capsys, "scan", "--tenant", FABRIKAM, "--strict")
    assert code == 1  # the GDAP checks are not assessed on a customer tenant; --strict counts that


def test_configuration_and_usage_errors_exit_2(
    cli_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AZURE_CLIENT_SECRET")
    code, out, err = run_cli(capsys, "scan", "--tenant", PARTNER, "--format", "json")
    assert (code, out) == (2, "")
    assert "AZURE_CLIENT_SECRET" in err
    monkeypatch.setenv("AZURE_CLOUD", "moon")
    code, _, err = run_cli(capsys, "report", "--tenant", PARTNER)
    assert code == 2 and "AZURE_CLOUD" in err
    with pytest.raises(SystemExit) as usage:
        cli.main(["scan", "--tenant", "contoso.onmicrosoft.com"])
    assert usage.value.code == 2


def test_report_without_a_stored_run_exits_2(cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "report", "--tenant", "99999999-9999-4999-8999-999999999999", "--format", "json")
    assert (code, out) == (2, "")
    assert "no stored run" in err


def test_a_scan_that_cannot_sign_in_fails_visibly(
    cli_env: dict[str, str], cli_storage: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = run_cli(capsys, "scan", "--tenant", FABRIKAM)  # a completed run to fall back on
    assert code == 0
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "not-the-secret")
    code, out, err = run_cli(capsys, "scan", "--tenant", FABRIKAM, "--format", "json")
    assert code == 3
    assert "failed" in err
    assert "not-the-secret" not in err + out
    # Still a complete document, visibly failed: every check `error` with the run's error code.
    document = json.loads(out)
    assert document["status"] == "failed"
    assert [c["id"] for c in document["checks"]] == CHECK_IDS
    assert {(c["status"], c["reason_code"]) for c in document["checks"]} == {("error", "error:sign_in_failed")}
    store = ScanStore.from_settings(Settings.from_env({"PARTNERGUARD_STORAGE": cli_storage}).storage)
    latest_run = store.list_runs(FABRIKAM, top=1)[0]
    assert latest_run.status == "failed" and latest_run.run_id == document["run_id"]
    assert latest_run.error is not None and latest_run.error["code"] == "sign_in_failed"
    # `report` shows the last completed run, but says the newest failed and exits as failed.
    code, out, err = run_cli(capsys, "report", "--tenant", FABRIKAM, "--format", "json")
    assert code == 3
    assert json.loads(out)["status"] == "succeeded"
    assert document["run_id"] in err and "failed" in err


def test_a_ten_thousand_user_tenant_reports_exactly_the_users_it_should(
    scan_store: ScanStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = generate_tenant(BIG, users=10_000, seed=7, incapable=150, disabled=120, guests=200, admins=5)
    # Paced to Graph's counts over short windows (tests/test_collect.py keeps the real windows).
    with fast_simulator([tenant]) as sim:
        pace_to(sim, monkeypatch)
        settings = Settings.from_env(sim.environment())
        result = asyncio.run(Scanner(settings, scan_store).scan(BIG))
    assert result.report is not None and result.report.status == "succeeded"
    checks = {c.id: c for c in result.report.checks}
    registration = checks["mfa.registration"]
    expected = tenant.mfa_incapable_user_ids()
    assert len(expected) == 150  # enabled members only: no disabled users, no guests
    assert registration.status.value == "fail"
    assert {f.finding.subject_id for f in registration.findings} == expected
    # The generated tenant has one Conditional Access policy that covers everyone.
    assert checks["mfa.enforcement"].status.value == "pass"
    stored = scan_store.latest_report(BIG)
    assert stored is not None and stored.to_document() == result.report.to_document()

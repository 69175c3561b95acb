"""`python -m partnerguard doctor` (SPEC §3) against the tenant simulator and Azurite: real sign-ins
(azure-identity), real Graph reads (msgraph transport) of simulated tenants that each lack
something — consent, a permission, Entra ID P1, a GDAP relationship — and real Table Storage.

The world: Contoso (partner, complete), Fabrikam (customer, its consent lacks AuditLog.Read.All),
Northwind (customer, no P1), Litware (customer, no P1 and no GDAP relationship with Contoso) and
Tailspin (customer, GDAP active, the app never consented to).

What doctor says a gap blinds is held to what a scan of the same tenant then reports
`not_assessed`: both come from the check catalogue, and this test fails if they drift apart.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from checks import ALL_CHECKS
from partnerguard import cli
from partnerguard.doctor.diagnosis import ConsentLink, diagnose_record
from partnerguard.model import TenantInfo
from partnerguard.settings import Settings
from partnerguard.storage.store import table_service_client
from partnerguard.storage.tenant_registry import TenantRegistry
from testbed.simulator import TenantScenario, TenantSimulator, bundled_scenarios
from tests.cli_harness import run_cli

pytestmark = [pytest.mark.azurite, pytest.mark.simulator]

PARTNER = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
FABRIKAM = "c0ffee00-1b2c-4d3e-8f90-a1b2c3d4e5f6"
NORTHWIND = "5e1d2c3b-4a59-4687-9a0b-1c2d3e4f5a6b"
LITWARE = "9d4c2b1a-8e7f-4a6b-9c5d-3e2f1a0b9c8d"
# An active GDAP customer of Contoso in the bundled partner scenario.
TAILSPIN = "a1b2c3d4-0000-4000-8000-00000000beef"
NOT_MONITORED = "11111111-2222-4333-8444-555555555555"
SCHEMA = json.loads((Path(__file__).parent / "schemas" / "partnerguard-doctor-v1.json").read_text(encoding="utf-8"))
P1_CHECKS = ["legacy-auth.sign-ins", "sign-ins.single-factor", "sam.password-grant"]
CUSTOMER_CHECKS = [c.METADATA.id for c in ALL_CHECKS if not c.METADATA.partner_only]


def _tailspin(fabrikam: TenantScenario) -> TenantScenario:
    tenant = fabrikam.copy()
    tenant.tenant_id = TAILSPIN
    tenant.display_name = "Tailspin Toys"
    tenant.organization = {**tenant.organization, "id": TAILSPIN, "displayName": "Tailspin Toys", "verifiedDomains": []}
    tenant.consented = False
    return tenant


@pytest.fixture(scope="module")
def simulator() -> Iterator[TenantSimulator]:
    scenarios = {s.tenant_id: s for s in bundled_scenarios()}
    scenarios[TAILSPIN] = _tailspin(scenarios[FABRIKAM])
    with TenantSimulator(scenarios.values()) as sim:
        fabrikam = sim.tenant(FABRIKAM)
        fabrikam.granted_permissions = set(fabrikam.roles - {"AuditLog.Read.All"})
        yield sim


def doctor(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any], str]:
    code, out, err = run_cli(capsys, "doctor", "--format", "json", *argv)
    document = json.loads(out)  # stdout carries only the document
    jsonschema.validate(document, SCHEMA)
    return code, document, err


def doctor_everyone(environment: dict[str, str]) -> dict[str, dict[str, Any]]:
    """`doctor --format json` over every monitored tenant, by tenant id (schema-checked)."""
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(out):
        for name, value in environment.items():
            patch.setenv(name, value)
        code = cli.main(["doctor", "--format", "json"])
    assert code == 1  # gaps
    document = json.loads(out.getvalue())
    jsonschema.validate(document, SCHEMA)
    assert [t["id"] for t in document["tenants"]] == [PARTNER, FABRIKAM, LITWARE, NORTHWIND, TAILSPIN]
    return {t["id"]: t for t in document["tenants"]}


@pytest.fixture(scope="module")
def report(simulator: TenantSimulator, cli_storage: str) -> dict[str, dict[str, Any]]:
    return doctor_everyone({**simulator.environment(), "PARTNERGUARD_STORAGE": cli_storage})


def blinded(tenant: dict[str, Any]) -> set[tuple[str, str]]:
    return {(b["check"], b["reason_code"]) for b in tenant["blinded_checks"]}


def scan_not_assessed(capsys: pytest.CaptureFixture[str], tenant_id: str) -> set[tuple[str, str]]:
    _, out, _ = run_cli(capsys, "scan", "--tenant", tenant_id, "--format", "json", "--no-alerts")
    checks = json.loads(out)["checks"]
    # Partner-only checks on a customer are out of scope, not blinded: doctor does not list them.
    return {
        (c["id"], c["reason_code"])
        for c in checks
        if c["status"] == "not_assessed" and c["reason_code"] != "scope:partner-only"
    }


def test_a_complete_partner_tenant_has_no_gap(report: dict[str, dict[str, Any]], cli_env: dict[str, str]) -> None:
    partner = report[PARTNER]
    assert partner["name"] == "Contoso Partner Services" and partner["role"] == "partner"
    assert partner["sign_in"] == "ok" and partner["detail"] is None
    assert partner["permissions"]["missing"] == []
    # Every permission the checks (and doctor's own reads) need, the GDAP one included here.
    needed = {p for check in ALL_CHECKS for p in check.METADATA.permissions} | {"Organization.Read.All"}
    assert set(partner["permissions"]["granted"]) == needed
    assert partner["licences"] == {"entra_id_p1": True}
    assert partner["gdap"] == "not-applicable"
    assert partner["blinded_checks"] == [] and partner["degraded_checks"] == [] and partner["fixes"] == []


def test_a_missing_permission_names_the_checks_it_blinds_and_the_consent_link(
    report: dict[str, dict[str, Any]], cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    fabrikam = report[FABRIKAM]
    assert fabrikam["sign_in"] == "ok"
    assert fabrikam["permissions"]["missing"] == ["AuditLog.Read.All"]
    assert "AuditLog.Read.All" not in fabrikam["permissions"]["granted"]
    # Partner-only checks do not apply to a customer: their permission is not needed there.
    assert "DelegatedAdminRelationship.Read.All" not in fabrikam["permissions"]["granted"]
    # The sign-in log needs AuditLog.Read.All; the registration report is served through
    # UserAuthenticationMethod.Read.All too (its page lists it), so mfa.registration is not blinded.
    assert blinded(fabrikam) == {(check, "permission:AuditLog.Read.All") for check in P1_CHECKS}
    [fix] = fabrikam["fixes"]
    assert "AuditLog.Read.All" in fix
    link = f"{cli_env['AZURE_AUTHORITY_HOST']}/{FABRIKAM}/adminconsent?client_id={cli_env['AZURE_CLIENT_ID']}"
    assert link in fix
    # What doctor says is blinded is what a scan then cannot assess.
    assert scan_not_assessed(capsys, FABRIKAM) == blinded(fabrikam)


def test_no_p1_blinds_the_sign_in_checks_and_degrades_mfa_registration(
    report: dict[str, dict[str, Any]], cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    northwind = report[NORTHWIND]
    assert northwind["licences"] == {"entra_id_p1": False}
    assert northwind["permissions"]["missing"] == []
    assert blinded(northwind) == {(check, "licence:AAD_PREMIUM") for check in P1_CHECKS}
    # Both read each user's (admin's) methods instead of the registration report.
    assert [(d["check"], d["reason_code"]) for d in northwind["degraded_checks"]] == [
        ("mfa.registration", "licence:AAD_PREMIUM"),
        ("mfa.phishing-resistant-admins", "licence:AAD_PREMIUM"),
    ]
    [fix] = northwind["fixes"]
    assert "Microsoft Entra ID P1" in fix and all(check in fix for check in P1_CHECKS)
    assert northwind["gdap"] == "active"
    assert scan_not_assessed(capsys, NORTHWIND) == blinded(northwind)


def test_no_gdap_relationship_is_a_gap_that_blinds_no_check(report: dict[str, dict[str, Any]]) -> None:
    litware = report[LITWARE]
    assert litware["gdap"] == "none"
    assert any("GDAP relationship" in fix and "Partner Center" in fix for fix in litware["fixes"])
    # Its other gap, no P1, is what blinds its checks; GDAP blinds none.
    assert {reason for _, reason in blinded(litware)} == {"licence:AAD_PREMIUM"}


def test_no_consent_blinds_every_check_and_gives_the_admin_consent_link(
    report: dict[str, dict[str, Any]], cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    tailspin = report[TAILSPIN]
    assert tailspin["sign_in"] == "no-consent"
    assert tailspin["detail"].startswith("AADSTS7000229")
    assert tailspin["permissions"] == {"granted": [], "missing": [], "satisfied_by": {}}
    assert tailspin["licences"] == {"entra_id_p1": None}
    assert tailspin["gdap"] == "active"  # read from the partner tenant, which does not need the customer's consent
    assert blinded(tailspin) == {(check, "consent") for check in CUSTOMER_CHECKS}
    [fix] = tailspin["fixes"]
    assert f"{cli_env['AZURE_AUTHORITY_HOST']}/{TAILSPIN}/adminconsent?client_id={cli_env['AZURE_CLIENT_ID']}" in fix
    assert "setup_identity.py consent" in fix
    # The scan of such a tenant fails at sign-in, before any check runs.
    code, out, _ = run_cli(capsys, "scan", "--tenant", TAILSPIN, "--format", "json", "--no-alerts")
    assert code == 3 and {c["reason_code"] for c in json.loads(out)["checks"]} == {"error:consent_missing"}


def test_exit_0_when_nothing_is_missing(cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, document, _ = doctor(capsys, "--tenant", PARTNER)
    assert code == 0
    assert [t["id"] for t in document["tenants"]] == [PARTNER]
    code, out, _ = run_cli(capsys, "doctor", "--tenant", PARTNER)
    assert code == 0
    assert "1 tenant(s), 0 with gaps" in out and "Contoso Partner Services" in out and "  OK" in out


def test_exit_1_for_one_gap(cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, document, _ = doctor(capsys, "--tenant", FABRIKAM)
    assert code == 1
    assert [t["id"] for t in document["tenants"]] == [FABRIKAM]
    assert document["tenants"][0]["gdap"] == "active"  # the partner's relationships are read all the same


@pytest.mark.parametrize("argv", [["--tenant", "not-a-guid"], ["--format", "xml"]])
def test_usage_errors_exit_2(cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as usage:
        cli.main(["doctor", *argv])
    assert usage.value.code == 2


def test_a_tenant_that_is_not_monitored_exits_2(cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "doctor", "--tenant", NOT_MONITORED)
    assert code == 2 and out == ""
    assert f"tenant {NOT_MONITORED} is not monitored" in err


@pytest.mark.parametrize(
    ("unset", "setting"),
    [(("AZURE_CLIENT_SECRET",), "AZURE_CLIENT_SECRET"), (("PARTNERGUARD_TENANTS",), "PARTNERGUARD_TENANTS")],
)
def test_configuration_errors_exit_2(
    cli_env: dict[str, str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    unset: tuple[str, ...],
    setting: str,
) -> None:
    for name in unset:
        monkeypatch.delenv(name)
    code, out, err = run_cli(capsys, "doctor")
    assert code == 2 and out == ""
    assert err.startswith("configuration error:") and setting in err


def test_a_rejected_credential_is_a_sign_in_error_not_missing_consent(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_CLIENT_SECRET", "not-the-secret-" + "x" * 20)
    code, document, _ = doctor(capsys, "--tenant", NORTHWIND)
    assert code == 1
    [northwind] = document["tenants"]
    assert northwind["sign_in"] == "error" and northwind["detail"].startswith("AADSTS7000215")
    assert blinded(northwind) == {(check, "error:AADSTS7000215") for check in CUSTOMER_CHECKS}
    assert "credential" in northwind["fixes"][0]


def test_the_facts_are_recorded_for_the_tenant_list(cli_env: dict[str, str]) -> None:
    report = doctor_everyone(cli_env)
    settings = Settings.from_env()
    registry = TenantRegistry(table_service_client(settings.storage))
    try:
        for tenant_id, document in report.items():
            record = registry.get(tenant_id)
            assert record is not None and record.access_checked_at is not None
            tenant = TenantInfo(tenant_id, document["name"], document["role"])
            diagnosis = diagnose_record(tenant, record, settings)
            assert diagnosis is not None
            # GET /api/tenants judges the recorded facts exactly as doctor judged what it read.
            assert diagnosis.to_document() == document
    finally:
        registry.close()
    assert ConsentLink.from_settings(settings).for_tenant(TAILSPIN).startswith(cli_env["AZURE_AUTHORITY_HOST"])


def test_without_storage_doctor_still_answers(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "PARTNERGUARD_STORAGE",
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
        "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
        "TableEndpoint=http://127.0.0.1:9/devstoreaccount1;",
    )
    code, document, err = doctor(capsys, "--tenant", NORTHWIND)
    assert code == 1 and document["tenants"][0]["licences"] == {"entra_id_p1": False}
    assert "storage unreachable" in err and "not recorded" in err
    assert "Eby8vdM02xNOcqF" not in err


HOSTILE = "Evil\x1b[2J\x1b[31mCorp\u202egnp.exe\nFORGED LINE"


def test_the_table_makes_tenant_names_inert(
    cli_env: dict[str, str], simulator: TenantSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    litware = simulator.tenant(LITWARE)
    original = litware.organization
    litware.organization = {**original, "displayName": HOSTILE}
    try:
        code, out, _ = run_cli(capsys, "doctor", "--tenant", LITWARE)
    finally:
        litware.organization = original
    assert code == 1
    assert "\x1b" not in out and "\u202e" not in out
    assert "\\u202egnp.exe" in out  # the right-to-left override is shown, not obeyed
    assert "\nFORGED LINE" not in out  # a newline in a name cannot start a line of its own
    assert "Corp" in out


def test_the_token_never_reaches_output_or_logs(
    cli_env: dict[str, str],
    simulator: TenantSimulator,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = set(simulator.authority._tokens)  # the simulator keeps what it issued, to validate calls
    with caplog.at_level(logging.DEBUG):
        code_json, out_json, err_json = run_cli(capsys, "-v", "doctor", "--format", "json")
        code_table, out_table, err_table = run_cli(capsys, "-v", "doctor")
    issued = set(simulator.authority._tokens) - before
    assert issued  # doctor signed in to every consented tenant
    secrets = [*issued, *(token.rsplit(".", 1)[1] for token in issued), cli_env["AZURE_CLIENT_SECRET"]]
    seen = "\n".join([out_json, err_json, out_table, err_table, caplog.text])
    for record in caplog.records:
        seen += "\n" + record.getMessage()
    for secret in secrets:
        assert secret not in seen
    assert code_json == code_table == 1


def test_a_higher_privileged_permission_counts_for_the_one_it_serves(
    cli_env: dict[str, str], simulator: TenantSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    northwind = simulator.tenant(NORTHWIND)
    northwind.granted_permissions = set(northwind.roles - {"User.Read.All", "Organization.Read.All"})
    try:
        code, document, _ = doctor(capsys, "--tenant", NORTHWIND)
        # The simulated Graph serves /users on Directory.Read.All as the real one does.
        _, out, _ = run_cli(capsys, "scan", "--tenant", NORTHWIND, "--format", "json", "--no-alerts")
    finally:
        northwind.granted_permissions = None
    [tenant] = document["tenants"]
    assert tenant["permissions"]["missing"] == []
    assert tenant["permissions"]["satisfied_by"] == {
        "Organization.Read.All": "Directory.Read.All",
        "User.Read.All": "Directory.Read.All",
    }
    assert code == 1  # no P1, still
    assert not any((c["reason_code"] or "").startswith("permission:") for c in json.loads(out)["checks"])


def test_doctor_is_in_the_readmes_command_table_and_closes_the_deployment_guide() -> None:
    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text(encoding="utf-8")
    commands = readme[readme.index("## Command line (contract)") : readme.index("## The report document")]
    assert "| `doctor [--tenant <id>] [--format table\\|json]` |" in commands
    assert '"schema": "partnerguard.doctor/v1"' in commands
    deploy = (root / "docs" / "deploy.md").read_text(encoding="utf-8")
    last = deploy.rstrip().rsplit("\n## ", 1)[1]
    assert last.startswith("Last: run `doctor`") and "python -m partnerguard doctor" in last


def test_an_unreachable_token_endpoint_is_that_tenants_sign_in_error_not_a_crash(
    cli_env: dict[str, str], simulator: TenantSimulator, capsys: pytest.CaptureFixture[str]
) -> None:
    simulator.inject_fault(rf"^/{NORTHWIND}/oauth2/v2\.0/token$", body="reset", times=20)
    try:
        code, document, _ = doctor(capsys)
    finally:
        simulator.faults.clear()
    tenants = {t["id"]: t for t in document["tenants"]}
    assert code == 1
    northwind = tenants[NORTHWIND]
    assert northwind["sign_in"] == "error" and northwind["detail"]
    assert {reason for _, reason in blinded(northwind)} == {f"error:{northwind['detail'].split(':')[0]}"}
    # Every other tenant was diagnosed all the same.
    assert tenants[PARTNER]["sign_in"] == "ok" and tenants[FABRIKAM]["permissions"]["missing"] == ["AuditLog.Read.All"]

"""`python -m partnerguard exceptions add|list|remove` end to end: the CLI against the tenant
simulator (real sign-in, real Graph transport) and an Azurite of this module's own."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from checks import CHECK_IDS
from partnerguard import cli
from partnerguard.settings import Settings
from partnerguard.storage.accepted_risks import ExceptionStore
from tests.cli_harness import run_cli

pytestmark = [pytest.mark.azurite, pytest.mark.simulator]

PARTNER = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
OWNER = "risk.owner@contoso.example"


def in_days(days: int) -> str:
    return (datetime.now(UTC).date() + timedelta(days=days)).isoformat()


def registration_findings(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    [check] = [c for c in document["checks"] if c["id"] == "mfa.registration"]
    return {f["subject_id"]: f for f in check["findings"]}


def scan_json(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, err = run_cli(capsys, "scan", "--tenant", PARTNER, "--format", "json", "--no-alerts")
    assert code in (0, 1, 3), err
    document: dict[str, Any] = json.loads(out)
    return document


def add_exception(capsys: pytest.CaptureFixture[str], subject: str, *extra: str) -> tuple[int, str, str]:
    return run_cli(
        capsys,
        "exceptions",
        "add",
        "--tenant",
        PARTNER,
        "--check",
        "mfa.registration",
        "--subject",
        subject,
        "--reason",
        "Break-glass account; FIDO2 key kept in the safe",
        "--accepted-by",
        OWNER,
        "--expires",
        in_days(30),
        *extra,
    )


def test_an_exception_through_the_cli_from_add_to_remove(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    before = registration_findings(scan_json(capsys))
    assert len(before) >= 2
    excepted_subject, other_subject = sorted(before)[:2]

    code, out, err = add_exception(capsys, excepted_subject)
    assert code == 0, err
    exception_id = out.strip()
    assert out == f"{exception_id}\n"  # stdout carries only the id
    assert "note:" not in err  # the finding is known: no warning

    code, out, _ = run_cli(capsys, "exceptions", "list", "--tenant", PARTNER, "--format", "json")
    assert code == 0
    listed = json.loads(out)
    assert listed["schema"] == "partnerguard.exceptions/v1"
    [item] = listed["exceptions"]
    assert (item["id"], item["subject_id"], item["status"], item["accepted_by"]) == (
        exception_id,
        excepted_subject,
        "active",
        OWNER,
    )
    assert item["expires"] == in_days(30) and item["removed_at"] is None

    # The next scan: exactly that finding is excepted, and says by which exception.
    document = scan_json(capsys)
    findings = registration_findings(document)
    assert findings[excepted_subject]["state"] == "excepted"
    assert findings[excepted_subject]["evidence"]["exception"] == {
        "id": exception_id,
        "reason": "Break-glass account; FIDO2 key kept in the safe",
        "accepted_by": OWNER,
        "expires": in_days(30),
    }
    assert {f["state"] for s, f in findings.items() if s != excepted_subject} == {"open"}
    assert findings[other_subject]["state"] == "open"

    # `report` shows the stored run the same way, as JSON and as the table for people.
    code, out, _ = run_cli(capsys, "report", "--tenant", PARTNER, "--format", "json")
    assert json.loads(out) == document
    code, out, _ = run_cli(capsys, "report", "--tenant", PARTNER)
    lines = out.splitlines()
    excepted_at = [number for number, line in enumerate(lines) if "[excepted]" in line]
    assert len(excepted_at) == 1
    # The kind's sentence, then the subjects it applies to on the next line.
    assert findings[excepted_subject]["subject_name"][:30] in lines[excepted_at[0] + 1]
    assert "1 excepted" in out

    # Remove it: kept in the listing of everything, gone from the valid ones.
    code, out, err = run_cli(
        capsys, "exceptions", "remove", "--id", exception_id, "--by", "ciso@contoso.example", "--reason", "Not any more"
    )
    assert (code, out) == (0, "")
    assert f"removed exception {exception_id}" in err
    code, out, _ = run_cli(capsys, "exceptions", "list", "--tenant", PARTNER, "--format", "json")
    assert json.loads(out)["exceptions"] == []
    code, out, _ = run_cli(capsys, "exceptions", "list", "--include-expired", "--format", "json")
    [item] = [e for e in json.loads(out)["exceptions"] if e["id"] == exception_id]
    assert (item["status"], item["removed_by"], item["removed_reason"]) == (
        "removed",
        "ciso@contoso.example",
        "Not any more",
    )
    code, out, _ = run_cli(capsys, "exceptions", "list", "--include-expired")
    assert code == 0 and exception_id in out and "removed by ciso@contoso.example" in out

    # The next scan reports the finding as new: it alerts again.
    assert registration_findings(scan_json(capsys))[excepted_subject]["state"] == "new"

    # The audit trail kept both events.
    store = ExceptionStore.from_settings(Settings.from_env().storage, check_ids=CHECK_IDS)
    try:
        events = [(e.event, e.by) for e in store.audit_trail(exception_id=exception_id)]
    finally:
        store.close()
    assert events == [("added", OWNER), ("removed", "ciso@contoso.example")]


def test_adding_an_exception_for_an_unknown_finding_warns_on_stderr(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = add_exception(capsys, "00000000-0000-4000-8000-00000000dead")
    assert code == 0 and out.strip()
    assert "note: no scan has reported mfa.registration for this subject yet" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--check", "mfa.everything"], "error: unknown check 'mfa.everything'"),
        (["--expires", in_days(366)], "more than 365 days ahead"),
        (["--expires", in_days(-1)], "is in the past"),
        (["--accepted-by", "bob"], "accepted-by must be a user principal name"),
        (["--subject", " "], "starts or ends with whitespace"),
        (["--reason", ""], "reason is empty"),
    ],
)
def test_validation_errors_exit_2_with_one_line(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    values = {
        "--check": "mfa.registration",
        "--subject": "00000000-0000-4000-8000-000000000001",
        "--reason": "why",
        "--accepted-by": OWNER,
        "--expires": in_days(10),
    }
    values.update(dict(zip(argv[::2], argv[1::2], strict=True)))
    args = ["exceptions", "add", "--tenant", PARTNER, *(part for pair in values.items() for part in pair)]
    code, out, err = run_cli(capsys, *args)
    assert (code, out) == (2, "")
    assert message in err
    assert len(err.strip().splitlines()) == 1


def test_remove_errors_exit_2(cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(
        capsys, "exceptions", "remove", "--id", "3f0e9a34-0000-4000-8000-000000000000", "--by", OWNER, "--reason", "x"
    )
    assert (code, out) == (2, "")
    assert err == "error: no exception has the id 3f0e9a34-0000-4000-8000-000000000000\n"
    code, _, err = run_cli(capsys, "exceptions", "remove", "--id", "a/b", "--by", OWNER, "--reason", "x")
    assert code == 2 and "not an exception id" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["exceptions"],
        ["exceptions", "add", "--tenant", "contoso.onmicrosoft.com"],
        ["exceptions", "list", "--format", "csv"],
        ["exceptions", "remove", "--id", "x"],
        [
            "exceptions",
            "add",
            "--tenant",
            PARTNER,
            "--check",
            "mfa.registration",
            "--subject",
            "s",
            "--reason",
            "r",
            "--accepted-by",
            OWNER,
            "--expires",
            "31/12/2025",
        ],
    ],
)
def test_usage_errors_exit_2(cli_env: dict[str, str], capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    with pytest.raises(SystemExit) as usage:
        cli.main(argv)
    assert usage.value.code == 2
    _, err = capsys.readouterr()
    assert "usage:" in err


def test_the_list_table_makes_text_inert(cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]) -> None:
    tenant = "0b5e7c1d-2f3a-4b5c-8d9e-0f1a2b3c4d5e"
    code, out, err = run_cli(
        capsys,
        "exceptions",
        "add",
        "--tenant",
        tenant,
        "--check",
        "apps.client-secrets",
        "--subject",
        "app\u202eobject:key",
        "--reason",
        "Legacy \u202eEVIL\u202c appliance",
        "--accepted-by",
        OWNER,
        "--expires",
        in_days(1),
    )
    assert code == 0, err
    code, out, _ = run_cli(capsys, "exceptions", "list", "--tenant", tenant)
    assert code == 0
    assert "\u202e" not in out and "\\u202e" in out
    assert "apps.client-secrets" in out and "active" in out
    code, out, _ = run_cli(capsys, "exceptions", "list", "--tenant", tenant, "--format", "json")
    assert out.isascii()
    assert json.loads(out)["exceptions"][0]["reason"] == "Legacy \u202eEVIL\u202c appliance"
    code, out, _ = run_cli(capsys, "exceptions", "list", "--tenant", "0b5e7c1d-0000-4b5c-8d9e-0f1a2b3c4d5e")
    assert (code, out) == (0, "no exceptions\n")

"""`--format sarif`: a SARIF 2.1.0 log valid against the schema, one run per tenant report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from checks import ALL_CHECKS, CHECK_IDS
from partnerguard.model import TenantInfo
from partnerguard.render.sarif import FINGERPRINT_KEY, render_sarif
from tests.report_builders import (
    HOSTILE_LONG,
    OTHER_TENANT_ID,
    RAW_UNSAFE,
    TENANT_ID,
    history,
    hostile_report,
    report,
)

# The SARIF 2.1.0 schema, vendored (tests/schemas/README.md says from where): no network in tests.
SCHEMA = json.loads((Path(__file__).parent / "schemas" / "sarif-2.1.0.json").read_text(encoding="utf-8"))


def sarif(*args: Any) -> dict[str, Any]:
    log: dict[str, Any] = json.loads(render_sarif(*args))
    jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER).validate(log)
    return log


def test_the_schema_rejects_what_is_not_sarif() -> None:
    """The validation above can fail: a log without a tool, or with an unknown level, is refused."""
    validator = jsonschema.Draft4Validator(SCHEMA)
    assert not validator.is_valid({"version": "2.1.0", "runs": [{}]})
    bad = json.loads(render_sarif([hostile_report()], None))
    bad["runs"][0]["results"][0]["level"] = "fatal"
    assert not validator.is_valid(bad)


def test_rules_are_the_check_catalogue_and_results_point_at_them() -> None:
    hostile = hostile_report()
    log = sarif([hostile], {TENANT_ID: history()})
    assert log["version"] == "2.1.0"
    (run,) = log["runs"]
    rules = run["tool"]["driver"]["rules"]
    assert [r["id"] for r in rules] == list(CHECK_IDS)
    registration = rules[0]
    metadata = ALL_CHECKS[0].METADATA
    assert registration["shortDescription"]["text"] == metadata.title
    assert registration["fullDescription"]["text"] == metadata.rationale
    assert registration["help"]["text"] == metadata.remediation
    assert registration["helpUri"] == metadata.references[0].url
    assert registration["properties"]["security-severity"] == "8.0"
    results = run["results"]
    assert len(results) == 10
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    admin = next(r for r in results if r["properties"]["subjectId"] == "admin-1")
    assert admin["ruleId"] == "mfa.registration" and admin["level"] == "error"
    assert admin["baselineState"] == "unchanged"
    assert admin["provenance"]["firstDetectionTimeUtc"] == "2025-05-29T12:00:00Z"
    location = admin["locations"][0]["logicalLocations"][0]
    assert location == {"name": "Alex Admin", "fullyQualifiedName": f"{TENANT_ID}/user/admin-1", "kind": "resource"}
    app = next(r for r in results if r["ruleId"] == "apps.client-secrets")
    assert app["level"] == "warning"
    assert sum(r["baselineState"] == "new" for r in results) == 7


def test_excepted_findings_are_accepted_suppressions() -> None:
    results = sarif([hostile_report()], None)["runs"][0]["results"]
    (excepted,) = [r for r in results if r["properties"]["state"] == "excepted"]
    (suppression,) = excepted["suppressions"]
    assert suppression["kind"] == "external" and suppression["status"] == "accepted"
    assert suppression["properties"] == {"exceptionId": "ex-1", "acceptedBy": "ciso@contoso.example",
                                         "expires": "2025-07-01"}
    assert all("suppressions" not in r for r in results if r is not excepted)


def test_unassessed_and_errored_checks_are_invocation_notifications() -> None:
    (invocation,) = sarif([hostile_report()], None)["runs"][0]["invocations"]
    assert invocation["executionSuccessful"] is False  # gdap.expiring errored: the run failed
    notes = {n["associatedRule"]["id"]: n for n in invocation["toolExecutionNotifications"]}
    assert set(notes) == {"legacy-auth.blocked", "gdap.expiring"}
    assert notes["legacy-auth.blocked"]["level"] == "warning"
    assert notes["legacy-auth.blocked"]["properties"] == {"reasonCode": "licence:AAD_PREMIUM"}
    assert notes["gdap.expiring"]["level"] == "error"
    clean = sarif([report()], None)["runs"][0]["invocations"][0]
    assert clean["executionSuccessful"] is True and clean["toolExecutionNotifications"] == []


def test_one_run_per_tenant_with_stable_fingerprints() -> None:
    other = report(tenant=TenantInfo(OTHER_TENANT_ID, "Fabrikam", "customer"))
    log = sarif([hostile_report(), other], None)
    assert [r["properties"]["tenant"]["id"] for r in log["runs"]] == [TENANT_ID, OTHER_TENANT_ID]
    assert log["runs"][1]["automationDetails"]["id"].startswith(f"partnerguard/{OTHER_TENANT_ID}/")
    again = sarif([hostile_report()], None)["runs"][0]["results"]
    first = log["runs"][0]["results"]
    assert [r["partialFingerprints"][FINGERPRINT_KEY] for r in first] == [
        r["partialFingerprints"][FINGERPRINT_KEY] for r in again
    ]
    assert len({r["partialFingerprints"][FINGERPRINT_KEY] for r in first}) == len(first)


def test_hostile_text_is_escaped_and_capped() -> None:
    text = render_sarif([hostile_report()], None)
    assert text.isascii()
    decoded = json.dumps(json.loads(text), ensure_ascii=False)
    for char in RAW_UNSAFE:
        assert char not in decoded, repr(char)  # shown as visible escapes, not obeyed
    assert HOSTILE_LONG not in decoded
    results = json.loads(text)["runs"][0]["results"]
    long = next(r for r in results if r["properties"]["subjectId"] == "user-6")
    assert len(long["locations"][0]["logicalLocations"][0]["name"]) == 1024

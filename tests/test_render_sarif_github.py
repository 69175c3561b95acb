"""`--format sarif` as GitHub code scanning ingests it: the SARIF of the bundled scenarios passes
the SARIF 2.1.0 schema and the rules GitHub documents for uploads, and an alert keeps its
identity from one scan to the next, excepted or not."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from partnerguard.model import CheckReport, Severity, Status, TenantInfo
from partnerguard.render.sarif import ALL_TENANTS_CATEGORY, FINGERPRINT_KEY, GITHUB_FINGERPRINT_KEY, render_sarif
from tests.cli_harness import run_cli
from tests.report_builders import TENANT_ID, hostile_report
from tests.report_builders import report as build_report

SCHEMA = json.loads((Path(__file__).parent / "schemas" / "sarif-2.1.0.json").read_text(encoding="utf-8"))
PARTNER = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"

# What GitHub code scanning requires of an uploaded SARIF file, as documented in "SARIF support
# for code scanning" (https://docs.github.com/en/code-security/reference/code-scanning/sarif-files/sarif-support):
# the "Supported properties" tables (a required property must be present and not the empty
# string), the upload limits of "File compatibility" (a file over any of them is rejected), and
# `runAutomationDetails.id` read as `category/run-id`. One run per tool and category in a file:
# https://github.blog/changelog/2024-05-06-code-scanning-will-stop-combining-runs-from-a-single-upload
MAX_RUNS = 20
MAX_RESULTS_PER_RUN = 25_000
MAX_RULES_PER_RUN = 25_000
MAX_LOCATIONS_PER_RESULT = 10  # the `result` table; the limits table allows 1,000
MAX_TAGS_PER_RULE = 20
RULE_NAME_LIMIT = 255
DESCRIPTION_LIMIT = 1024
LEVELS = {"note", "warning", "error"}
# GitHub's own fingerprints look like `39fa2ee980eb94b0:1` (the documented examples).
LINE_HASH = re.compile(r"^[0-9a-f]{16}:[0-9]+$")


def _text(node: Any, *path: str) -> str | None:
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, str) and node != "" else None


def github_violations(log: dict[str, Any]) -> list[str]:
    """Every way `log` breaks GitHub's documented ingestion rules; empty when GitHub accepts it."""
    problems: list[str] = []
    if not _text(log, "$schema"):
        problems.append("$schema missing")
    if log.get("version") != "2.1.0":
        problems.append("version is not 2.1.0")
    runs = log.get("runs")
    if not isinstance(runs, list) or not runs:
        return [*problems, "runs missing or empty"]
    if len(runs) > MAX_RUNS:
        problems.append(f"{len(runs)} runs > {MAX_RUNS}")
    categories: set[tuple[str | None, str]] = set()
    for r, run in enumerate(runs):
        where = f"runs[{r}]"
        driver = run.get("tool", {}).get("driver")
        if not _text(driver, "name"):
            problems.append(f"{where}.tool.driver.name missing")
        rules = driver.get("rules") if isinstance(driver, dict) else None
        if not isinstance(rules, list):
            problems.append(f"{where}.tool.driver.rules missing")
            rules = []
        if len(rules) > MAX_RULES_PER_RUN:
            problems.append(f"{where}: {len(rules)} rules > {MAX_RULES_PER_RUN}")
        automation_id = _text(run, "automationDetails", "id") or ""
        category = (_text(driver, "name"), automation_id.rpartition("/")[0])
        if category in categories:
            problems.append(f"{where}: a second run of tool and category {category}")
        categories.add(category)
        rule_ids = set()
        for i, rule in enumerate(rules):
            problems += _rule_violations(f"{where}.rules[{i}]", rule)
            rule_ids.add(rule.get("id"))
        results = run.get("results")
        if not isinstance(results, list):
            problems.append(f"{where}.results missing")
            continue
        if len(results) > MAX_RESULTS_PER_RUN:
            problems.append(f"{where}: {len(results)} results > {MAX_RESULTS_PER_RUN}")
        for i, result in enumerate(results):
            problems += _result_violations(f"{where}.results[{i}]", result, rule_ids)
    return problems


def _rule_violations(where: str, rule: dict[str, Any]) -> list[str]:
    problems = []
    if not _text(rule, "id"):
        problems.append(f"{where}.id missing")
    for field in ("shortDescription", "fullDescription"):
        text = _text(rule, field, "text")
        if text is None:
            problems.append(f"{where}.{field}.text missing")
        elif len(text) > DESCRIPTION_LIMIT:
            problems.append(f"{where}.{field}.text longer than {DESCRIPTION_LIMIT}")
    if not _text(rule, "help", "text"):
        problems.append(f"{where}.help.text missing")
    if "name" in rule and len(rule["name"]) > RULE_NAME_LIMIT:
        problems.append(f"{where}.name longer than {RULE_NAME_LIMIT}")
    level = rule.get("defaultConfiguration", {}).get("level")
    if level is not None and level not in LEVELS:
        problems.append(f"{where}.defaultConfiguration.level {level!r}")
    properties = rule.get("properties", {})
    if len(properties.get("tags", [])) > MAX_TAGS_PER_RULE:
        problems.append(f"{where}: more than {MAX_TAGS_PER_RULE} tags")
    if "security-severity" in properties:
        score = properties["security-severity"]
        # A string; a score outside (0.0, 10.0] means "no security severity".
        if not isinstance(score, str) or not re.fullmatch(r"\d+(\.\d+)?", score) or not 0 < float(score) <= 10:
            problems.append(f"{where}.properties.security-severity {score!r}")
    return problems


def _result_violations(where: str, result: dict[str, Any], rule_ids: set[Any]) -> list[str]:
    problems = []
    if result.get("ruleId") not in rule_ids:
        problems.append(f"{where}.ruleId {result.get('ruleId')!r} names no rule of the run")
    if not _text(result, "message", "text"):
        problems.append(f"{where}.message.text missing")
    if result.get("level", "warning") not in LEVELS | {"none"}:
        problems.append(f"{where}.level {result.get('level')!r}")
    fingerprints = result.get("partialFingerprints")
    if not isinstance(fingerprints, dict) or not fingerprints:
        problems.append(f"{where}.partialFingerprints missing")
    elif not LINE_HASH.match(fingerprints.get(GITHUB_FINGERPRINT_KEY, "")):
        # The only fingerprint GitHub reads; without it the upload action hashes the source file.
        problems.append(f"{where}.partialFingerprints.{GITHUB_FINGERPRINT_KEY} missing")
    locations = result.get("locations")
    if not isinstance(locations, list) or not locations:
        return [*problems, f"{where}.locations missing"]
    if len(locations) > MAX_LOCATIONS_PER_RESULT:
        problems.append(f"{where}: more than {MAX_LOCATIONS_PER_RESULT} locations")
    for j, location in enumerate(locations):
        physical = location.get("physicalLocation")
        uri = _text(physical, "artifactLocation", "uri")
        if uri is None:
            problems.append(f"{where}.locations[{j}].physicalLocation.artifactLocation.uri missing")
        elif re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^/", uri):
            problems.append(f"{where}.locations[{j}]: {uri!r} is not relative to the repository")
        region = physical.get("region") if isinstance(physical, dict) else None
        for key in ("startLine", "startColumn", "endLine", "endColumn"):
            if not isinstance(region, dict) or not isinstance(region.get(key), int) or region[key] < 1:
                problems.append(f"{where}.locations[{j}].physicalLocation.region.{key} missing")
    return problems


def validate(text: str) -> dict[str, Any]:
    log: dict[str, Any] = json.loads(text)
    jsonschema.Draft4Validator(SCHEMA, format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER).validate(log)
    assert github_violations(log) == []
    return log


def by_subject(run: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["ruleId"], r["properties"]["subjectId"]): r for r in run["results"]}


def test_the_github_rules_refuse_what_github_refuses() -> None:
    """The rules above can fail: each documented refusal, made on an otherwise accepted log."""
    good = json.loads(render_sarif([hostile_report()], None))
    assert github_violations(good) == []

    def broken(change: Any) -> list[str]:
        log = copy.deepcopy(good)
        change(log)
        return github_violations(log)

    result = "runs[0].results[0]"
    assert broken(lambda log: log["runs"][0]["results"][0]["locations"][0].pop("physicalLocation")) == [
        f"{result}.locations[0].physicalLocation.artifactLocation.uri missing",
        *(
            f"{result}.locations[0].physicalLocation.region.{k} missing"
            for k in ("startLine", "startColumn", "endLine", "endColumn")
        ),
    ]
    assert broken(lambda log: log["runs"][0]["results"][0]["partialFingerprints"].clear()) == [
        f"{result}.partialFingerprints missing"
    ]
    assert broken(lambda log: log["runs"][0]["results"][0]["message"].update(text="")) == [
        f"{result}.message.text missing"
    ]
    assert broken(lambda log: log["runs"][0]["tool"]["driver"]["rules"][0]["help"].pop("text")) == [
        "runs[0].rules[0].help.text missing"
    ]
    assert broken(
        lambda log: log["runs"][0]["tool"]["driver"]["rules"][0]["properties"].update({"security-severity": 8.0})
    ) == ["runs[0].rules[0].properties.security-severity 8.0"]
    uri = "file:///tmp/x"
    assert broken(
        lambda log: log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"].update(uri=uri)
    ) == [f"{result}.locations[0]: {uri!r} is not relative to the repository"]
    assert "21 runs > 20" in broken(lambda log: log.update(runs=log["runs"] * 21))
    assert "runs[1]: a second run of tool and category ('PartnerGuard', 'partnerguard/" + TENANT_ID + "')" in broken(
        lambda log: log.update(runs=log["runs"] * 2)
    )


def test_every_result_has_a_stable_synthetic_path_and_github_fingerprint() -> None:
    log = validate(render_sarif([hostile_report()], None))
    (run,) = log["runs"]
    admin = by_subject(run)["mfa.registration", "admin-1"]
    physical, logical = admin["locations"][0]["physicalLocation"], admin["locations"][0]["logicalLocations"][0]
    assert physical["artifactLocation"] == {"uri": f"partnerguard/tenants/{TENANT_ID}/mfa.registration"}
    assert logical["fullyQualifiedName"] == f"{TENANT_ID}/user/admin-1"  # the subject stays named
    fingerprints = admin["partialFingerprints"]
    assert fingerprints[GITHUB_FINGERPRINT_KEY] == fingerprints[FINGERPRINT_KEY][:16] + ":1"
    # One path per tenant and check: the subjects of a check share it, and only the fingerprint
    # tells them apart, so GitHub's fingerprints differ wherever the subjects do.
    registration = [r for r in run["results"] if r["ruleId"] == "mfa.registration"]
    assert len({r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in registration}) == 1
    assert len({r["partialFingerprints"][GITHUB_FINGERPRINT_KEY] for r in run["results"]}) == len(run["results"])
    rule = run["tool"]["driver"]["rules"][0]
    assert rule["help"]["markdown"].startswith(rule["help"]["text"]) and "\n- [" in rule["help"]["markdown"]


def test_a_check_this_version_no_longer_has_still_meets_the_rules() -> None:
    """A stored report naming a retired check, with no remediation: its rule has every text."""
    current = hostile_report()
    retired = CheckReport(
        "retired.check", "Retired check", Severity.HIGH, Status.FAIL, None, None, "", current.checks[0].findings[:1]
    )
    stored = dataclasses.replace(current, checks=(*current.checks, retired))
    (run,) = validate(render_sarif([stored], None))["runs"]
    (legacy,) = [r for r in run["tool"]["driver"]["rules"] if r["id"] == "retired.check"]
    assert legacy["fullDescription"]["text"] == legacy["help"]["markdown"] == "Retired check"
    (result,) = [r for r in run["results"] if r["ruleId"] == "retired.check"]
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"].endswith("/retired.check")


def test_the_bundled_scenarios_meet_the_schema_and_github_rules_and_keep_their_identity(
    cli_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run_cli(capsys, "scan", "--all", "--format", "sarif", "--no-alerts")
    assert code in (1, 3)  # the bundled scenarios have failing checks
    first = validate(out)
    partner_run = next(r for r in first["runs"] if r["properties"]["tenant"]["id"] == PARTNER)
    subject = next(r for r in partner_run["results"] if r["ruleId"] == "mfa.registration")
    subject_id = subject["properties"]["subjectId"]
    in_a_month = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    accept = f"--check mfa.registration --reason x --accepted-by ciso@contoso.example --expires {in_a_month}"
    code, out, _ = run_cli(capsys, "exceptions", "add", "--tenant", PARTNER, "--subject", subject_id, *accept.split())
    assert code == 0, out
    code, out, _ = run_cli(capsys, "scan", "--all", "--format", "sarif", "--no-alerts")
    second = validate(out)

    assert len(first["runs"]) == len(second["runs"]) > 1
    for before, after in zip(first["runs"], second["runs"], strict=True):
        assert before["properties"]["tenant"] == after["properties"]["tenant"]
        assert before["properties"]["runId"] != after["properties"]["runId"]  # two scans indeed
        old, new = by_subject(before), by_subject(after)
        assert set(old) == set(new)
        for key, result in old.items():
            # The same alert to GitHub: rule, path and fingerprints unchanged run to run.
            assert new[key]["partialFingerprints"] == result["partialFingerprints"], key
            assert new[key]["locations"][0]["physicalLocation"] == result["locations"][0]["physicalLocation"]
        fingerprints = [r["partialFingerprints"][GITHUB_FINGERPRINT_KEY] for r in after["results"]]
        assert len(set(fingerprints)) == len(fingerprints)  # and a different one per subject
    # The excepted finding is the same alert, now suppressed, and the only suppressed one.
    partner_after = by_subject(next(r for r in second["runs"] if r["properties"]["tenant"]["id"] == PARTNER))
    excepted = partner_after["mfa.registration", subject_id]
    assert excepted["properties"]["state"] == "excepted"
    assert excepted["suppressions"][0]["status"] == "accepted"
    assert excepted["suppressions"][0]["justification"] == "x"
    assert [k for k, r in partner_after.items() if "suppressions" in r] == [("mfa.registration", subject_id)]


def test_more_tenants_than_github_allows_runs_share_one_run_and_keep_every_alert() -> None:
    """25 tenants: one run per tenant would be 25 runs, which GitHub refuses; merged, every result
    keeps the rule, path and fingerprints it has in its own tenant's run, so no alert is lost or
    merged with another, and a retired check one stored report names still has its rule."""
    base = hostile_report()
    retired = CheckReport(
        "retired.check", "Retired check", Severity.HIGH, Status.FAIL, None, None, "", base.checks[0].findings[:1]
    )
    reports = [
        dataclasses.replace(
            base,
            tenant=TenantInfo(f"00000000-0000-4000-8000-{index:012d}", f"Customer {index}", "customer"),
            run_id=f"82490611{index:05d}-0123456789",
            checks=(*base.checks, retired) if index == 7 else base.checks,
        )
        for index in range(25)
    ]
    reports[3] = dataclasses.replace(
        build_report(statuses={"mfa.registration": Status.ERROR}, tenant=reports[3].tenant), run_id=reports[3].run_id
    )
    per_tenant = [json.loads(render_sarif([r], None))["runs"][0] for r in reports]
    assert github_violations({"$schema": "x", "version": "2.1.0", "runs": per_tenant}) == ["25 runs > 20"]

    (run,) = validate(render_sarif(reports, None))["runs"]
    assert run["automationDetails"]["id"] == f"{ALL_TENANTS_CATEGORY}/8249061100000-0123456789"
    rules = run["tool"]["driver"]["rules"]
    assert len({r["id"] for r in rules}) == len(rules) and any(r["id"] == "retired.check" for r in rules)
    expected = [result for tenant_run in per_tenant for result in tenant_run["results"]]
    assert len(run["results"]) == len(expected) > 25
    for merged, alone in zip(run["results"], expected, strict=True):
        assert merged["ruleId"] == alone["ruleId"]
        assert rules[merged["ruleIndex"]]["id"] == merged["ruleId"]
        assert merged["partialFingerprints"] == alone["partialFingerprints"]
        assert merged["locations"] == alone["locations"]
    fingerprints = [r["partialFingerprints"][GITHUB_FINGERPRINT_KEY] for r in run["results"]]
    assert len(set(fingerprints)) == len(fingerprints)  # 25 tenants, still one alert per subject
    assert len(run["invocations"]) == 25 and run["invocations"][3]["executionSuccessful"] is False
    (notice,) = run["invocations"][3]["toolExecutionNotifications"]
    assert rules[notice["associatedRule"]["index"]]["id"] == "mfa.registration"
    # Up to GitHub's limit, still one run per tenant with its own category.
    assert len(validate(render_sarif(reports[:20], None))["runs"]) == 20

"""`--format sarif`: the findings as a SARIF 2.1.0 log, for security tooling that ingests SARIF.

One SARIF run per tenant report, or one run for all when there are more than GitHub's 20 runs a
file (see `_runs`). Each run's `tool.driver.rules` is the check catalogue (rule id
= check id, with title, rationale, remediation, references and a `security-severity`), and
each finding is a result with `ruleId` = its check id, a level from its severity, and two
locations in one: the finding's subject as a logical location (`<tenant id>/<subject type>/<subject
id>`), and a physical location in a synthetic path per tenant and check
(`partnerguard/tenants/<tenant id>/<check id>`, line 1). Nothing is at that path: GitHub code
scanning refuses results without `physicalLocation.artifactLocation.uri`, and an alert's identity
there is its rule, its path and its `partialFingerprints`, so the path must be the same run to
run (GitHub, "SARIF support for code scanning":
https://docs.github.com/en/code-security/reference/code-scanning/sarif-files/sarif-support).

How the report's meaning maps onto SARIF:
- finding state `new` → `baselineState: "new"`; `open` and `excepted` → `"unchanged"`; an
  excepted finding also carries an accepted external suppression with the exception's reason;
- a check that is `not_assessed` or `error` is a tool execution notification (warning /
  error) on the run's invocation, and an `error` makes `executionSuccessful` false;
- `partialFingerprints` identify a finding across runs (tenant, check, subject), so consumers
  de-duplicate results run to run as PartnerGuard's own lifecycle does. The same key is given
  twice: in full under PartnerGuard's own name, and as `primaryLocationLineHash`, the only
  fingerprint GitHub code scanning reads; without it the upload action would hash line 1 of a
  file that does not exist, and every subject of a check would share one alert.

Text a tenant controls is shown through `safe_text` (control and bidi characters visible,
capped) and the JSON is 7-bit clean (`ensure_ascii`), like the report document.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from checks import ALL_CHECKS
from partnerguard import __version__
from partnerguard.model import CheckMetadata, CheckReport, Report, ReportFinding, Severity, Status, iso
from partnerguard.render.history import NO_HISTORY, TenantHistory
from partnerguard.text import safe_text

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
TOOL_NAME = "PartnerGuard"
FINGERPRINT_KEY = "partnerguardFinding/v1"
# GitHub's key, in the form its own tools write (`<16 hex digits>:<occurrence>`).
GITHUB_FINGERPRINT_KEY = "primaryLocationLineHash"
# Where results are "found": relative, so GitHub reads it as a path in the analysed repository.
ARTIFACT_ROOT = "partnerguard/tenants"
# GitHub requires a region; the synthetic file's first character stands for the whole finding.
REGION = {"startLine": 1, "startColumn": 1, "endLine": 1, "endColumn": 2}

# GitHub code scanning refuses a file of more runs ("File compatibility" in the page above).
MAX_RUNS = 20
# The category (`automationDetails.id` up to its last `/`) of the one run of a larger scan.
ALL_TENANTS_CATEGORY = "partnerguard/all-tenants"

NAME_LIMIT = 1024
TEXT_LIMIT = 4096

LEVELS: Mapping[Severity, str] = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
}
# The numeric severity code-scanning tools sort by (0.1-10; 9.0+ critical, 7.0+ high, 4.0+ medium).
SECURITY_SEVERITY: Mapping[Severity, str] = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
}
_BASELINE_STATE = {"new": "new", "open": "unchanged", "excepted": "unchanged"}


def render_sarif(reports: Sequence[Report], histories: Mapping[str, TenantHistory] | None = None) -> str:
    log = {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": _runs(reports, histories or {}),
    }
    return json.dumps(log, indent=2, ensure_ascii=True) + "\n"


def _runs(reports: Sequence[Report], histories: Mapping[str, TenantHistory]) -> list[dict[str, Any]]:
    """One run per tenant up to GitHub's limit of runs per file; beyond it, one run for all.

    GitHub refuses a file of more than `MAX_RUNS` runs. A merged run loses nothing an alert is
    known by: rule, synthetic path (which carries the tenant id) and fingerprints are the same
    as in the per-tenant form. Its category differs, though, so GitHub treats the first upload
    after crossing the limit as a new analysis (the per-tenant alerts are closed, the merged
    ones opened)."""
    runs = [_run(report, histories.get(report.tenant.id, NO_HISTORY)) for report in reports]
    if len(runs) <= MAX_RUNS:
        return runs
    return [_merged_run(reports, runs)]


def _merged_run(reports: Sequence[Report], runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The per-tenant runs as one: every tenant's rules (the catalogue, plus any retired check a
    stored report names), results re-indexed into the union, and one invocation per tenant."""
    rules: list[dict[str, Any]] = []
    rule_index: dict[str, int] = {}
    for run in runs:
        for rule in run["tool"]["driver"]["rules"]:
            if rule["id"] not in rule_index:
                rule_index[rule["id"]] = len(rules)
                rules.append(rule)
    results = [{**result, "ruleIndex": rule_index[result["ruleId"]]} for run in runs for result in run["results"]]
    invocations = []
    for run in runs:
        for invocation in run["invocations"]:
            notifications = [
                {**n, "associatedRule": {**n["associatedRule"], "index": rule_index[n["associatedRule"]["id"]]}}
                for n in invocation["toolExecutionNotifications"]
            ]
            invocations.append({**invocation, "toolExecutionNotifications": notifications})
    # The newest run id names this upload (run ids sort newest first); the category stays put.
    run_id = min(report.run_id for report in reports)
    return {
        "tool": _tool(rules),
        "automationDetails": {
            "description": {"text": f"PartnerGuard scan of {len(reports)} tenants"},
            "id": f"{ALL_TENANTS_CATEGORY}/{run_id}",
        },
        "invocations": invocations,
        "results": results,
        "properties": {"tenants": [run["properties"] for run in runs]},
    }


def _rules(report: Report) -> list[dict[str, Any]]:
    """The catalogue, plus any check a stored report names that this version no longer has."""
    rules = [_rule(check.METADATA) for check in ALL_CHECKS]
    known = {check.METADATA.id for check in ALL_CHECKS}
    rules += [_legacy_rule(check) for check in report.checks if check.id not in known]
    return rules


def _rule(metadata: CheckMetadata) -> dict[str, Any]:
    references = [{"title": r.title, "url": r.url} for r in metadata.references]
    markdown = metadata.remediation
    if references:
        markdown += "\n\nReferences:\n" + "\n".join(f"- [{r['title']}]({r['url']})" for r in references)
    rule: dict[str, Any] = {
        "id": metadata.id,
        "name": _rule_name(metadata.id),
        "shortDescription": {"text": metadata.title},
        "fullDescription": {"text": metadata.rationale},
        "help": {"text": metadata.remediation, "markdown": markdown},
        "defaultConfiguration": {"level": LEVELS[metadata.severity]},
        "properties": {
            "tags": ["security", "partner-security-requirements"],
            "precision": "high",
            "problem.severity": LEVELS[metadata.severity],
            "security-severity": SECURITY_SEVERITY[metadata.severity],
            "severity": str(metadata.severity),
            "permissions": list(metadata.permissions),
            "references": references,
        },
    }
    if metadata.references:
        rule["helpUri"] = metadata.references[0].url
    return rule


def _legacy_rule(check: CheckReport) -> dict[str, Any]:
    """A check this version no longer has: only what the stored report kept, and never an empty
    text, since GitHub refuses an empty string where it requires a description or help."""
    rule_id = safe_text(check.id, NAME_LIMIT)
    title = safe_text(check.title, NAME_LIMIT) or rule_id
    help_text = safe_text(check.remediation, TEXT_LIMIT) or title
    return {
        "id": rule_id,
        "shortDescription": {"text": title},
        "fullDescription": {"text": title},
        "help": {"text": help_text, "markdown": help_text},
        "defaultConfiguration": {"level": LEVELS[check.severity]},
        "properties": {"security-severity": SECURITY_SEVERITY[check.severity], "severity": str(check.severity)},
    }


def _rule_name(check_id: str) -> str:
    """`mfa.registration` → `MfaRegistration`: SARIF's rule name is an identifier, not prose."""
    return "".join(part[:1].upper() + part[1:] for part in check_id.replace("_", ".").split(".") if part)


def _tool(rules: list[dict[str, Any]]) -> dict[str, Any]:
    """The `tool` of a run: PartnerGuard, its version, and the rules its results refer to."""
    return {"driver": {"name": TOOL_NAME, "version": __version__, "semanticVersion": __version__, "rules": rules}}


def _run(report: Report, history: TenantHistory) -> dict[str, Any]:
    rules = _rules(report)
    rule_index = {rule["id"]: index for index, rule in enumerate(rules)}
    results = [_result(report, check, item, rule_index, history) for check in report.checks for item in check.findings]
    tenant = report.tenant
    return {
        "tool": _tool(rules),
        "automationDetails": {
            "description": {"text": f"PartnerGuard scan of tenant {tenant.id} ({tenant.role})"},
            "id": f"partnerguard/{tenant.id}/{report.run_id}",
        },
        "invocations": [_invocation(report, rule_index)],
        "results": results,
        "properties": {
            "tenant": {"id": tenant.id, "name": safe_text(tenant.name, NAME_LIMIT), "role": tenant.role},
            "runId": report.run_id,
            "status": report.status,
            "summary": report.summary,
        },
    }


def _invocation(report: Report, rule_index: Mapping[str, int]) -> dict[str, Any]:
    notifications = []
    for check in report.checks:
        if check.status not in (Status.NOT_ASSESSED, Status.ERROR):
            continue
        reason = check.reason or ("not assessed" if check.status is Status.NOT_ASSESSED else "error")
        rule_id = safe_text(check.id, NAME_LIMIT)
        notification: dict[str, Any] = {
            "level": "error" if check.status is Status.ERROR else "warning",
            "message": {"text": f"{rule_id} {check.status}: {safe_text(reason, TEXT_LIMIT)}"},
            "associatedRule": {"id": rule_id, "index": rule_index[rule_id]},
        }
        if check.reason_code:
            notification["properties"] = {"reasonCode": safe_text(check.reason_code, NAME_LIMIT)}
        notifications.append(notification)
    return {
        "executionSuccessful": report.status == "succeeded",
        "startTimeUtc": iso(report.started),
        "endTimeUtc": iso(report.finished),
        "toolExecutionNotifications": notifications,
    }


def fingerprint(tenant_id: str, check_id: str, subject_id: str) -> str:
    """Stable across runs for the same finding, as PartnerGuard's lifecycle keys it (SPEC §1)."""
    key = "\x00".join((tenant_id.lower(), check_id, subject_id))
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def artifact_uri(tenant_id: str, check_id: str) -> str:
    """The synthetic path of a tenant's check: each segment percent-encoded, so a stored report's
    odd check id can neither add a segment nor make the URI invalid."""
    return "/".join((ARTIFACT_ROOT, quote(tenant_id.lower(), safe=""), quote(check_id, safe="")))


def _result(
    report: Report,
    check: CheckReport,
    item: ReportFinding,
    rule_index: Mapping[str, int],
    history: TenantHistory,
) -> dict[str, Any]:
    finding = item.finding
    tenant_id = report.tenant.id
    name = safe_text(finding.subject_name or finding.subject_id, NAME_LIMIT)
    subject_id = safe_text(finding.subject_id, NAME_LIMIT)
    rule_id = safe_text(check.id, NAME_LIMIT)
    identity = fingerprint(tenant_id, check.id, finding.subject_id)
    result: dict[str, Any] = {
        "ruleId": rule_id,
        "ruleIndex": rule_index[rule_id],
        "kind": "fail",
        "level": LEVELS[finding.severity],
        "message": {"text": f"{name}: {safe_text(finding.detail, TEXT_LIMIT)}"},
        "locations": [
            {
                "physicalLocation": {
                    "artifactLocation": {"uri": artifact_uri(tenant_id, check.id)},
                    "region": dict(REGION),
                },
                "logicalLocations": [
                    {
                        "name": name,
                        "fullyQualifiedName": f"{tenant_id}/{finding.subject_type}/{subject_id}",
                        "kind": "resource",
                    }
                ],
            }
        ],
        "partialFingerprints": {
            FINGERPRINT_KEY: identity,
            GITHUB_FINGERPRINT_KEY: f"{identity[:16]}:1",
        },
        "baselineState": _BASELINE_STATE.get(item.state, "unchanged"),
        "properties": {
            "state": item.state,
            "severity": str(finding.severity),
            "security-severity": SECURITY_SEVERITY[finding.severity],
            "subjectType": str(finding.subject_type),
            "subjectId": subject_id,
            "tenantId": tenant_id,
        },
    }
    dates = history.dates(check.id, finding.subject_id)
    if dates is not None and dates.first_seen is not None:
        provenance = {"firstDetectionTimeUtc": iso(dates.first_seen)}
        if dates.last_seen is not None:
            provenance["lastDetectionTimeUtc"] = iso(dates.last_seen)
        result["provenance"] = provenance
    exception = finding.evidence.get("exception")
    if item.state == "excepted" and isinstance(exception, Mapping):
        result["suppressions"] = [
            {
                "kind": "external",
                "status": "accepted",
                "justification": safe_text(exception.get("reason") or "", TEXT_LIMIT),
                "properties": {
                    "exceptionId": safe_text(exception.get("id") or "", NAME_LIMIT),
                    "acceptedBy": safe_text(exception.get("accepted_by") or "", NAME_LIMIT),
                    "expires": safe_text(exception.get("expires") or "", NAME_LIMIT),
                },
            }
        ]
    return result

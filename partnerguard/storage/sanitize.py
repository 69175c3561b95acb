"""Make check results storable: cap tenant-controlled text and evidence, drop duplicate subjects.

This runs before the report is built, so the report `complete_run` returns is exactly the one
that later reads back from storage. Display names, policy names and client app strings come
from the tenant and are never trusted: they are capped in UTF-16 units, lone surrogates are
replaced, and evidence is cut to `MAX_EVIDENCE_CHARS` of JSON with a `"truncated": true` marker.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import replace

from partnerguard.model import CheckOutcome, CheckResult, Finding, TenantInfo
from partnerguard.storage.keys import utf16_units
from partnerguard.storage.limits import (
    MAX_DETAIL_UNITS,
    MAX_NAME_UNITS,
    MAX_SUBJECT_ID_UNITS,
    MAX_TEXT_UNITS,
    cap_json_object,
    cap_text,
    clean_text,
)

log = logging.getLogger(__name__)

MAX_TENANT_NAME_UNITS = 256


def storable_subject_id(subject_id: str) -> str:
    """The id itself; an absurdly long one is cut and suffixed with a digest, staying unique."""
    cleaned = clean_text(subject_id)
    if utf16_units(cleaned) <= MAX_SUBJECT_ID_UNITS:
        return cleaned
    digest = hashlib.sha256(subject_id.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{cap_text(cleaned, MAX_SUBJECT_ID_UNITS - 40)}#{digest}"


def storable_finding(finding: Finding) -> Finding:
    return replace(
        finding,
        subject_id=storable_subject_id(finding.subject_id),
        subject_name=cap_text(finding.subject_name, MAX_NAME_UNITS),
        detail=cap_text(finding.detail, MAX_DETAIL_UNITS),
        evidence=cap_json_object(finding.evidence),
    )


def _optional(text: str | None) -> str | None:
    return None if text is None else cap_text(text, MAX_TEXT_UNITS)


def storable_result(result: CheckResult) -> CheckResult:
    outcome = result.outcome
    findings: dict[str, Finding] = {}
    for finding in map(storable_finding, outcome.findings):
        # A subject is one finding per check (SPEC §1); a repeat is a check bug, keep the first.
        findings.setdefault(finding.subject_id, finding)
    if len(findings) < len(outcome.findings):
        log.warning(
            "check %s returned %d findings for %d distinct subjects; keeping the first of each",
            result.metadata.id,
            len(outcome.findings),
            len(findings),
        )
    metadata = replace(
        result.metadata,
        title=cap_text(result.metadata.title, MAX_TEXT_UNITS),
        remediation=cap_text(result.metadata.remediation, MAX_TEXT_UNITS),
    )
    capped = CheckOutcome(
        status=outcome.status,
        findings=tuple(findings.values()),
        reason=_optional(outcome.reason),
        reason_code=_optional(outcome.reason_code),
        note=_optional(outcome.note),
        evidence=cap_json_object(outcome.evidence),
    )
    return CheckResult(metadata, capped)


def storable_results(results: Sequence[CheckResult]) -> list[CheckResult]:
    seen: set[str] = set()
    for result in results:
        if result.metadata.id in seen:
            raise ValueError(f"check {result.metadata.id} appears twice in one run")
        seen.add(result.metadata.id)
    return [storable_result(result) for result in results]


def storable_tenant(tenant: TenantInfo) -> TenantInfo:
    return TenantInfo(id=tenant.id, name=cap_text(tenant.name, MAX_TENANT_NAME_UNITS), role=tenant.role)

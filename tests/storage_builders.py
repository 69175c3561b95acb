"""Check results built in code for the storage tests: two checks' metadata, findings and outcomes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from partnerguard.model import (
    CheckMetadata,
    CheckOutcome,
    CheckResult,
    Finding,
    Severity,
    Status,
    SubjectType,
    TenantInfo,
)

REGISTRATION = CheckMetadata(
    "mfa.registration", "Every user can do MFA", Severity.HIGH, "why", "Register a method", (), "AAD_PREMIUM"
)
SECRETS = CheckMetadata(
    "apps.client-secrets", "No client secrets", Severity.MEDIUM, "why", "Use certificates", (), None
)


def new_tenant(name: str = "Contoso") -> TenantInfo:
    # A fresh tenant per test keeps tests independent even on a shared table.
    return TenantInfo(str(uuid.uuid4()), name, "partner")


def finding(subject_id: str, name: str = "", severity: Severity = Severity.HIGH, **evidence: Any) -> Finding:
    return Finding(subject_id, SubjectType.USER, name or f"user {subject_id}", "not MFA capable", severity, evidence)


def result(metadata: CheckMetadata, findings: Sequence[Finding] = (), status: Status | None = None) -> CheckResult:
    if status is None:
        return CheckResult(metadata, CheckOutcome.from_findings(list(findings)))
    reason = None if status in (Status.PASS, Status.FAIL) else "could not read"
    code = {Status.NOT_ASSESSED: "licence:AAD_PREMIUM", Status.ERROR: "error:boom"}.get(status)
    return CheckResult(metadata, CheckOutcome(status, tuple(findings), reason, code))

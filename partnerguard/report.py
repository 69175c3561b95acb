"""The report document of SPEC §2 (`partnerguard.report/v1`, a contract) as typed objects.

`Report.to_document()` produces exactly the documented JSON; `Report.from_document()` reads it
back (the storage layer and `report` command use it). Everything that renders a report for
people (table, HTML, CSV, SARIF) starts from a `Report`, never from storage rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from checks.base import CheckMetadata, CheckOutcome, Finding, Severity, Status, SubjectType

REPORT_SCHEMA = "partnerguard.report/v1"
REPORTS_SCHEMA = "partnerguard.reports/v1"


class FindingState:
    NEW = "new"
    OPEN = "open"
    EXCEPTED = "excepted"
    RESOLVED = "resolved"


@dataclass(frozen=True)
class CheckResult:
    """A check's outcome in one run, before the finding lifecycle gave findings their state."""

    metadata: CheckMetadata
    outcome: CheckOutcome

    @property
    def assessed(self) -> bool:
        """Whether the check saw its data; only an assessed check may resolve old findings."""
        return self.outcome.status in (Status.PASS, Status.FAIL)


@dataclass(frozen=True)
class ReportFinding:
    finding: Finding
    state: str

    def to_document(self) -> dict[str, Any]:
        f = self.finding
        return {
            "subject_id": f.subject_id,
            "subject_type": str(f.subject_type),
            "subject_name": f.subject_name,
            "detail": f.detail,
            "severity": str(f.severity),
            "state": self.state,
            "evidence": dict(f.evidence),
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> ReportFinding:
        return cls(
            Finding(
                subject_id=doc["subject_id"],
                subject_type=SubjectType(doc["subject_type"]),
                subject_name=doc.get("subject_name") or "",
                detail=doc.get("detail") or "",
                severity=Severity(doc["severity"]),
                evidence=doc.get("evidence") or {},
            ),
            state=doc.get("state") or FindingState.OPEN,
        )


@dataclass(frozen=True)
class CheckReport:
    id: str
    title: str
    severity: Severity
    status: Status
    reason: str | None
    reason_code: str | None
    remediation: str
    findings: tuple[ReportFinding, ...] = ()
    evidence: Mapping[str, Any] = field(default_factory=dict)

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "id": self.id,
            "title": self.title,
            "severity": str(self.severity),
            "status": str(self.status),
            "reason": self.reason,
            "reason_code": self.reason_code,
            "remediation": self.remediation,
            "findings": [f.to_document() for f in self.findings],
        }
        if self.evidence:
            doc["evidence"] = dict(self.evidence)
        return doc

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> CheckReport:
        return cls(
            id=doc["id"],
            title=doc.get("title") or doc["id"],
            severity=Severity(doc["severity"]),
            status=Status(doc["status"]),
            reason=doc.get("reason"),
            reason_code=doc.get("reason_code"),
            remediation=doc.get("remediation") or "",
            findings=tuple(ReportFinding.from_document(f) for f in doc.get("findings") or ()),
            evidence=doc.get("evidence") or {},
        )


@dataclass(frozen=True)
class TenantInfo:
    id: str
    name: str
    role: str  # "partner" | "customer"


@dataclass(frozen=True)
class Report:
    tenant: TenantInfo
    run_id: str
    started: datetime
    finished: datetime
    checks: tuple[CheckReport, ...]

    @property
    def status(self) -> str:
        """A run with an `error` check is a failed run, visibly so (SPEC §1)."""
        return "failed" if any(c.status is Status.ERROR for c in self.checks) else "succeeded"

    @property
    def summary(self) -> dict[str, int]:
        counts = {str(s): 0 for s in Status}
        for check in self.checks:
            counts[str(check.status)] += 1
        return counts

    def to_document(self) -> dict[str, Any]:
        return {
            "schema": REPORT_SCHEMA,
            "tenant": {"id": self.tenant.id, "name": self.tenant.name, "role": self.tenant.role},
            "run_id": self.run_id,
            "started": iso(self.started),
            "finished": iso(self.finished),
            "status": self.status,
            "summary": self.summary,
            "checks": [c.to_document() for c in self.checks],
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Report:
        if doc.get("schema") != REPORT_SCHEMA:
            raise ValueError(f"not a {REPORT_SCHEMA} document: schema {doc.get('schema')!r}")
        tenant = doc["tenant"]
        return cls(
            tenant=TenantInfo(tenant["id"], tenant.get("name") or tenant["id"], tenant["role"]),
            run_id=doc["run_id"],
            started=datetime.fromisoformat(doc["started"]),
            finished=datetime.fromisoformat(doc["finished"]),
            checks=tuple(CheckReport.from_document(c) for c in doc["checks"]),
        )


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def check_report(result: CheckResult, states: Mapping[str, str]) -> CheckReport:
    """One check's part of the report; `states` maps subject_id to the finding's lifecycle state.

    Findings are listed most severe first, then by name, so reports read the same run to run.
    A `fail` whose every finding is excepted is reported as `pass` (SPEC §1).
    """
    outcome = result.outcome
    findings = tuple(
        ReportFinding(f, states.get(f.subject_id, FindingState.NEW))
        for f in sorted(outcome.findings, key=lambda f: (-f.severity.rank, f.subject_name.lower(), f.subject_id))
    )
    status = outcome.status
    if status is Status.FAIL and findings and all(f.state == FindingState.EXCEPTED for f in findings):
        status = Status.PASS
    reason = outcome.reason
    if reason is None and outcome.note:
        reason = outcome.note
    return CheckReport(
        id=result.metadata.id,
        title=result.metadata.title,
        severity=result.metadata.severity,
        status=status,
        reason=reason,
        reason_code=outcome.reason_code,
        remediation=result.metadata.remediation,
        findings=findings,
        evidence=outcome.evidence,
    )


def build_report(
    tenant: TenantInfo,
    run_id: str,
    started: datetime,
    finished: datetime,
    results: Sequence[CheckResult],
    states: Mapping[str, Mapping[str, str]],
) -> Report:
    """`states` maps check id -> subject id -> lifecycle state, as the finding store assigned them."""
    return Report(
        tenant=tenant,
        run_id=run_id,
        started=started,
        finished=finished,
        checks=tuple(check_report(r, states.get(r.metadata.id, {})) for r in results),
    )


def failed_report(tenant: TenantInfo, run_id: str, started: datetime, finished: datetime, code: str) -> Report:
    """The report of a run that failed before any check could run (sign-in refused, storage
    down): every check of the catalogue, each `error` with the run's error code, so a failed scan
    still answers with a complete, visibly failed document (SPEC §2: every check id, every report)."""
    from checks import ALL_CHECKS

    reason = f"The scan could not complete ({code}); nothing was assessed."
    return Report(
        tenant=tenant,
        run_id=run_id,
        started=started,
        finished=finished,
        checks=tuple(
            CheckReport(
                id=check.METADATA.id,
                title=check.METADATA.title,
                severity=check.METADATA.severity,
                status=Status.ERROR,
                reason=reason,
                reason_code=f"error:{code}",
                remediation=check.METADATA.remediation,
            )
            for check in ALL_CHECKS
        ),
    )


def reports_document(reports: Iterable[Report]) -> dict[str, Any]:
    return {"schema": REPORTS_SCHEMA, "reports": [r.to_document() for r in reports]}

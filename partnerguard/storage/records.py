"""What the store hands out: a run's record and a finding's lifecycle row, read from entities."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from partnerguard.model import iso

RUN_QUEUED = "queued"
RUN_RUNNING = "running"
RUN_SUCCEEDED = "succeeded"
RUN_FAILED = "failed"
ACTIVE_RUN_STATUSES = (RUN_QUEUED, RUN_RUNNING)

ALERT_NONE = "none"
ALERT_STATUSES = ("none", "pending", "sent", "failed")


def as_utc(value: Any) -> datetime | None:
    """A plain timezone-aware datetime from an entity value (the SDK's datetime subclass or None)."""
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return datetime.combine(value.date(), value.time(), tzinfo=UTC)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _iso_or_none(value: datetime | None) -> str | None:
    return iso(value) if value else None


@dataclass(frozen=True)
class RunRecord:
    tenant_id: str
    run_id: str
    status: str
    tenant_name: str | None = None
    tenant_role: str | None = None
    queued_at: datetime | None = None
    started: datetime | None = None
    finished: datetime | None = None
    summary: Mapping[str, int] | None = None
    error_code: str | None = None
    error_message: str | None = None
    alert_status: str = ALERT_NONE
    alert_error: str | None = None
    has_report: bool = False

    @property
    def error(self) -> dict[str, str] | None:
        """SPEC §4's `error` object, or None."""
        if self.error_code is None:
            return None
        return {"code": self.error_code, "message": self.error_message or ""}

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_RUN_STATUSES

    @classmethod
    def from_entity(cls, tenant_id: str, entity: Mapping[str, Any]) -> RunRecord:
        summary_text = _text(entity.get("summary"))
        return cls(
            tenant_id=tenant_id,
            run_id=str(entity["RowKey"]),
            status=_text(entity.get("status")) or RUN_RUNNING,
            tenant_name=_text(entity.get("tenant_name")),
            tenant_role=_text(entity.get("tenant_role")),
            queued_at=as_utc(entity.get("queued_at")),
            started=as_utc(entity.get("started")),
            finished=as_utc(entity.get("finished")),
            summary=json.loads(summary_text) if summary_text else None,
            error_code=_text(entity.get("error_code")),
            error_message=_text(entity.get("error_message")),
            alert_status=_text(entity.get("alert_status")) or ALERT_NONE,
            alert_error=_text(entity.get("alert_error")) or None,
            has_report=entity.get("has_report") is True,
        )

    def to_document(self) -> dict[str, Any]:
        """The run fields of SPEC §4's scan status document (without `report`)."""
        return {
            "run_id": self.run_id,
            "tenant_id": self.tenant_id,
            "status": self.status,
            "queued_at": _iso_or_none(self.queued_at),
            "started": _iso_or_none(self.started),
            "finished": _iso_or_none(self.finished),
            "error": self.error,
            "alert": {"status": self.alert_status, "error": self.alert_error},
        }


# The properties a run listing reads: everything but the (large) per-check JSON.
RUN_SUMMARY_PROPERTIES = [
    "RowKey",
    "status",
    "tenant_name",
    "tenant_role",
    "queued_at",
    "started",
    "finished",
    "summary",
    "error_code",
    "error_message",
    "alert_status",
    "alert_error",
    "has_report",
]


@dataclass(frozen=True)
class FindingRecord:
    """One finding's lifecycle across runs (the `findings` table)."""

    tenant_id: str
    check_id: str
    subject_id: str
    subject_type: str
    subject_name: str
    detail: str
    severity: str
    state: str
    evidence: Mapping[str, Any] = field(default_factory=dict)
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    resolved_at: datetime | None = None
    first_run_id: str | None = None
    last_run_id: str | None = None
    resolved_run_id: str | None = None
    # Why a resolved finding resolved: "fixed", or "no longer observed" for sign-in evidence
    # that aged out of the look-back window. None while the finding is active.
    resolution: str | None = None
    # When an email last told the recipients about this finding (its digest or a reminder).
    last_notified: datetime | None = None

    @classmethod
    def from_entity(cls, tenant_id: str, entity: Mapping[str, Any]) -> FindingRecord:
        evidence_text = _text(entity.get("evidence"))
        return cls(
            tenant_id=tenant_id,
            check_id=str(entity["check_id"]),
            subject_id=str(entity["subject_id"]),
            subject_type=_text(entity.get("subject_type")) or "",
            subject_name=_text(entity.get("subject_name")) or "",
            detail=_text(entity.get("detail")) or "",
            severity=_text(entity.get("severity")) or "",
            state=_text(entity.get("state")) or "",
            evidence=json.loads(evidence_text) if evidence_text else {},
            first_seen=as_utc(entity.get("first_seen")),
            last_seen=as_utc(entity.get("last_seen")),
            resolved_at=as_utc(entity.get("resolved_at")),
            first_run_id=_text(entity.get("first_run_id")),
            last_run_id=_text(entity.get("last_run_id")),
            resolved_run_id=_text(entity.get("resolved_run_id")),
            resolution=_text(entity.get("resolution")) if entity.get("state") == "resolved" else None,
            last_notified=as_utc(entity.get("last_notified")),
        )

    def to_document(self) -> dict[str, Any]:
        """SPEC §4's finding fields (`GET /api/tenants/{id}/findings`)."""
        return {
            "check_id": self.check_id,
            "subject_id": self.subject_id,
            "subject_type": self.subject_type,
            "subject_name": self.subject_name,
            "detail": self.detail,
            "severity": self.severity,
            "state": self.state,
            "evidence": dict(self.evidence),
            "first_seen": _iso_or_none(self.first_seen),
            "last_seen": _iso_or_none(self.last_seen),
            "resolved_at": _iso_or_none(self.resolved_at),
            "resolution": self.resolution,
            "last_notified": _iso_or_none(self.last_notified),
        }


@dataclass(frozen=True)
class FindingPage:
    findings: list[FindingRecord]
    # An opaque continuation token for the next page, or None on the last page.
    next: str | None

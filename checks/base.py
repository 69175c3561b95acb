"""What every check is made of: its metadata, the findings it returns, and its outcome.

A check is a module in this package with a `METADATA` (`CheckMetadata`) and a pure
`execute(snapshot, context) -> CheckOutcome`. It does no I/O: everything it reads is in the
`TenantSnapshot` that `partnerguard.collect` gathered before any check ran. Data the collector
could not read arrives as `Unavailable`; `available()` turns it into the check's `not_assessed`
(or `error`) outcome, so no check can report `pass` over data it did not see.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar


class Status(StrEnum):
    PASS = "pass"  # noqa: S105 (a status, not a password)
    FAIL = "fail"
    NOT_ASSESSED = "not_assessed"
    ERROR = "error"


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class SubjectType(StrEnum):
    USER = "user"
    POLICY = "policy"
    APPLICATION = "application"
    SERVICE_PRINCIPAL = "servicePrincipal"
    RELATIONSHIP = "relationship"
    TENANT = "tenant"


@dataclass(frozen=True)
class Reference:
    title: str
    url: str


@dataclass(frozen=True)
class CheckMetadata:
    id: str
    title: str
    severity: Severity
    rationale: str
    remediation: str
    # Least-privileged Graph application permissions, and the licence, the data needs.
    permissions: tuple[str, ...]
    licence: str | None
    references: tuple[Reference, ...] = ()
    # True for checks that only apply to the partner tenant (GDAP).
    partner_only: bool = False
    # True for checks whose findings are evidence seen in the sign-in look-back window: when a
    # finding disappears it is "no longer observed", not "fixed" (the lifecycle records which).
    evidence_window: bool = False


@dataclass(frozen=True)
class Finding:
    """One thing wrong, keyed by (tenant, check, subject_id) across runs (SPEC §1)."""

    subject_id: str
    subject_type: SubjectType
    subject_name: str
    detail: str
    severity: Severity
    evidence: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Unavailable:
    """Data the collector could not read, and why (SPEC §2 `reason` / `reason_code`).

    `reason_code` is one of `licence:<sku>`, `permission:<name>`, `cloud`, `scope:partner-only`,
    `error:<code>`. An `error:` code makes the checks that needed the data `error`, anything else
    `not_assessed`.
    """

    reason: str
    reason_code: str

    @property
    def status(self) -> Status:
        return Status.ERROR if self.reason_code.startswith("error:") else Status.NOT_ASSESSED


T = TypeVar("T")


class DataUnavailable(Exception):
    def __init__(self, unavailable: Unavailable) -> None:
        super().__init__(unavailable.reason)
        self.unavailable = unavailable


def available(data: T | Unavailable) -> T:
    """The collected value, or stop the check with the reason it could not be read."""
    if isinstance(data, Unavailable):
        raise DataUnavailable(data)
    return data


@dataclass(frozen=True)
class CheckContext:
    """What a check needs to know beyond the snapshot: thresholds and the clock."""

    now: datetime
    include_guests: bool = False
    signin_lookback_hours: int = 168
    credential_expiry_days: int = 30
    secret_max_lifetime_days: int = 180
    gdap_expiry_days: int = 30


@dataclass(frozen=True)
class CheckOutcome:
    status: Status
    findings: Sequence[Finding] = ()
    reason: str | None = None
    reason_code: str | None = None
    # Set by a check that assessed with a caveat people should read (e.g. security defaults).
    note: str | None = None
    # Check-level figures (e.g. {"unassessed_users": 12}); informative, not contract.
    evidence: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_findings(cls, findings: Sequence[Finding], note: str | None = None) -> CheckOutcome:
        return cls(Status.FAIL if findings else Status.PASS, tuple(findings), note=note)

    @classmethod
    def not_assessed(
        cls,
        reason: str,
        reason_code: str | None,
        findings: Sequence[Finding] = (),
        evidence: Mapping[str, Any] | None = None,
    ) -> CheckOutcome:
        return cls(Status.NOT_ASSESSED, tuple(findings), reason, reason_code, evidence=evidence or {})

    @classmethod
    def unavailable(cls, data: Unavailable) -> CheckOutcome:
        return cls(data.status, (), data.reason, data.reason_code)

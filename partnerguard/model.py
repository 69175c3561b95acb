"""PartnerGuard's domain model: what a check is and returns, what a scan collected, and the report.

Every layer speaks these types and nothing else: the checks read a `TenantSnapshot` and return a
`CheckOutcome` of `Finding`s; storage keeps them; renderers and alerts read a `Report`. This module
imports nothing of PartnerGuard's, so everything can import it without a cycle.

Three parts, in the order data flows:

1. **Checks** - `CheckMetadata` (id, severity, rationale, remediation, permissions, licence),
   `CheckContext` (thresholds and the clock), `Finding`, `CheckOutcome`, and `Unavailable`: data
   the collector could not read. A check is a module in `checks/` with a `METADATA` and a pure
   `execute(snapshot, context) -> CheckOutcome`; `available()` turns `Unavailable` into that
   check's `not_assessed` (or `error`), so no check can report `pass` over data it did not see.
2. **The snapshot** - everything the checks read about one tenant, gathered once per scan
   (ScubaGear's split). Each field holds the data or `Unavailable` with the reason. Big
   collections are small slotted records built straight from Graph's JSON, never msgraph-sdk
   models; objects whose shape the checks interpret rule by rule (Conditional Access policies)
   stay Graph's own JSON, so the rules quote Graph's documented property names.
3. **The report** - the document of SPEC section 2 (`partnerguard.report/v1`, a contract).
   `Report.to_document()` produces exactly the documented JSON and `Report.from_document()` reads
   it back; everything that renders a report for people starts from a `Report`, never from rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, TypeVar

# -- 1. checks: metadata, context, findings, outcomes -------------------------------------------


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
    # What the check does without the licence, when it still runs (mfa.registration's per-user
    # fallback); None: without the licence the check is not assessed. `doctor` reports a check
    # with a fallback as degraded by a missing licence, not blinded.
    licence_fallback: str | None = None
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
    # EMERGENCY_ACCESS_ACCOUNTS (SPEC §5): lower-cased object ids or UPNs of break-glass accounts,
    # whom mfa.phishing-resistant-admins judges whether or not they hold a role.
    emergency_access_accounts: tuple[str, ...] = ()


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


# -- 2. the snapshot: what a scan collected ------------------------------------------------------

JsonObject = Mapping[str, Any]

# The default of every collected field: a collector that forgot a field makes the checks that
# need it `error`, never `pass` over data nobody read.
NOT_COLLECTED = Unavailable("PartnerGuard did not collect this data in this scan.", "error:not-collected")


@dataclass(frozen=True, slots=True)
class User:
    """A user object: GET /users?$select=id,displayName,userPrincipalName,accountEnabled,userType."""

    id: str
    display_name: str
    user_principal_name: str
    account_enabled: bool
    user_type: str  # "Member" or "Guest"

    @property
    def is_guest(self) -> bool:
        return self.user_type.lower() == "guest"

    @classmethod
    def from_graph(cls, item: JsonObject) -> User:
        return cls(
            id=item["id"],
            display_name=item.get("displayName") or "",
            user_principal_name=item.get("userPrincipalName") or "",
            # Graph omits accountEnabled only when it was not selected; treat unknown as enabled
            # so that a user is never skipped by accident.
            account_enabled=item.get("accountEnabled") is not False,
            user_type=item.get("userType") or "Member",
        )


@dataclass(frozen=True, slots=True)
class RegistrationDetail:
    """One row of GET /reports/authenticationMethods/userRegistrationDetails."""

    id: str
    user_principal_name: str
    user_display_name: str
    user_type: str  # "member" or "guest"
    is_admin: bool
    is_mfa_capable: bool
    is_mfa_registered: bool
    methods_registered: tuple[str, ...]

    @classmethod
    def from_graph(cls, item: JsonObject) -> RegistrationDetail:
        return cls(
            id=item["id"],
            user_principal_name=item.get("userPrincipalName") or "",
            user_display_name=item.get("userDisplayName") or "",
            user_type=item.get("userType") or "member",
            is_admin=bool(item.get("isAdmin")),
            is_mfa_capable=bool(item.get("isMfaCapable")),
            is_mfa_registered=bool(item.get("isMfaRegistered")),
            methods_registered=tuple(item.get("methodsRegistered") or ()),
        )


@dataclass(frozen=True)
class RegistrationReadInfo:
    """How a scan read the registration report (partnerguard/registration_read.py): `full`, every
    row, or `filtered`, the not-capable rows merged with the roster of the last full read;
    `as_of` is when that full read ran (the scan's own time for a full read)."""

    kind: Literal["full", "filtered"]
    as_of: datetime


@dataclass(frozen=True, slots=True)
class SignInAggregate:
    """Successful sign-ins that one sign-in rule matched, summed per subject across scans.

    Sign-ins are collected incrementally (a watermark per tenant and event type) and folded into
    these aggregates in Table Storage, so a scan never re-reads a week of sign-ins. `rule` is the
    check id whose classifier matched (`legacy-auth.sign-ins`, `sign-ins.single-factor`,
    `sam.password-grant`); `subject_id` is that check's subject id (SPEC §1). The look-back window
    is applied by the checks to `last_seen`.
    """

    rule: str
    subject_id: str
    user_id: str
    user_principal_name: str
    user_display_name: str
    app_id: str
    app_display_name: str
    client_app_used: str
    first_seen: datetime
    last_seen: datetime
    # Sign-ins observed, at least: a late-arriving event re-read in the overlap is never counted twice.
    count: int
    event_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class SignInReadState:
    """How far this scan's sign-in read got. A read stops starting new pages at its deadline and
    continues in the next execution (partnerguard/sign_in_collection.py); until it completes, the
    sign-in checks report what they found so far and say how far back the read reached."""

    complete: bool
    window_start: datetime  # the start of the look-back window judged
    window_hours: int
    # Incomplete reads: every sign-in newer than this was read (with what earlier executions
    # stored); None for a complete read.
    read_back_to: datetime | None = None
    pages: int = 0  # pages read by this execution
    # Event type -> "full" | "filtered": the mode each was read in.
    modes: Mapping[str, str] = field(default_factory=dict)
    # Whether this execution moved the read on: folded a sign-in not read before, or completed a
    # range. A page that only re-serves what was folded (a frontier instant shared by a page's
    # worth of sign-ins) is no progress, so such a read cannot queue continuations forever.
    advanced: bool = False

    @property
    def progressed(self) -> bool:
        """Whether a continuation is worth queuing: only when this execution moved the read on."""
        return self.advanced


@dataclass(frozen=True)
class TenantSnapshot:
    tenant_id: str
    tenant_name: str
    role: Literal["partner", "customer"]
    collected_at: datetime
    cloud: str = "public"
    users: Sequence[User] | Unavailable = NOT_COLLECTED
    registration_details: Sequence[RegistrationDetail] | Unavailable = NOT_COLLECTED
    # How registration_details were read; None when they were not read or by a hand-built snapshot.
    registration_read: RegistrationReadInfo | None = None
    # GET /identity/conditionalAccess/policies, Graph's JSON per policy: beta, or v1.0 when beta
    # failed (then the beta-only device conditions are invisible). A grant's authentication
    # strength that Graph only referenced has its requirementsSatisfied filled in by the collector.
    conditional_access_policies: Sequence[JsonObject] | Unavailable = NOT_COLLECTED
    # Which version the policies came from: "beta" or "v1.0"; None when they were not read.
    conditional_access_api_version: str | None = None
    # Authentication strengths referenced by a policy whose requirement could not be read, by
    # strength id, with why (GET /policies/authenticationStrengthPolicies/{id} failed).
    unread_authentication_strengths: Mapping[str, Unavailable] = field(default_factory=dict)
    # GET /policies/identitySecurityDefaultsEnforcementPolicy -> isEnabled.
    security_defaults_enabled: bool | Unavailable = NOT_COLLECTED
    # beta GET /users/{id}/authentication/requirements -> perUserMfaState, by user id. Only read
    # when neither security defaults nor one Conditional Access policy covers every user. None
    # means exactly "not needed", and the collector says so explicitly: the default is
    # NOT_COLLECTED, so a collector that skipped it when it was needed can never yield `fail`.
    # A user whose own read failed is absent (the check counts them as unread).
    per_user_mfa_states: Mapping[str, str] | Unavailable | None = NOT_COLLECTED
    # mfa.registration fallback (SPEC §1), for users the registration report lacks or when it is
    # unlicensed: GET /users/{id}/authentication/methods -> the @odata.type of each method, by
    # user id; and the method configurations enabled in policies/authenticationMethodsPolicy.
    # None means the fallback was not needed or not collected by this version.
    user_auth_methods: Mapping[str, Sequence[str]] | Unavailable | None = None
    # Read every scan (mfa.phishing-resistant-admins counts a method only when the policy
    # enables it), not only for the fallback; None only in a hand-built snapshot.
    enabled_auth_method_ids: frozenset[str] | Unavailable | None = None
    # Users the fallback could not reach before the scan's time budget ran out.
    unassessed_user_ids: frozenset[str] = field(default_factory=frozenset)
    # Users the fallback reached but whose methods could not be read (throttled or 5xx for good,
    # a failed $batch, deleted since the user list was read).
    unreadable_user_ids: frozenset[str] = field(default_factory=frozenset)
    # Users holding an active directory role assignment (fallback's notion of an admin).
    admin_user_ids: frozenset[str] | Unavailable | None = None
    # Every scan: user id -> the roleDefinitionIds of the directory roles the user holds through
    # an active tenant-wide assignment (directly or through a role-assignable group). Read for
    # mfa.phishing-resistant-admins (which roles) and to read admins' registration rows fresh.
    # None: not collected by this version or a hand-built snapshot.
    admin_roles: Mapping[str, frozenset[str]] | Unavailable | None = None
    # Licences: the skuPartNumbers and enabled service plan names of GET /subscribedSkus
    # (e.g. AAD_PREMIUM, AAD_PREMIUM_P2). None when not read.
    licences: frozenset[str] | Unavailable | None = None
    # Whether some provisioned service plan of subscribedSkus carries Entra ID P1 (P2 included).
    entra_id_p1: bool | Unavailable | None = None
    # The Graph application permissions in the app's token for this tenant (its `roles` claim):
    # what `doctor` and GET /api/tenants report as granted. Read by the scan, judged by no check.
    app_roles: frozenset[str] | Unavailable | None = None
    # Conditional Access exclusions resolved: excluded group id -> transitive member user ids;
    # excluded role template id -> principal ids with an active assignment of that role; and
    # the display names of the principals involved, so findings name every excluded principal.
    group_members: Mapping[str, frozenset[str]] | Unavailable | None = None
    role_members: Mapping[str, frozenset[str]] | Unavailable | None = None
    principal_names: Mapping[str, str] = field(default_factory=dict)
    # Sign-in aggregates of every sign-in rule (see SignInAggregate), all stored ones: the
    # checks apply the look-back window.
    sign_in_aggregates: Sequence[SignInAggregate] | Unavailable = NOT_COLLECTED
    # How far the sign-in read got (None: not read, or by a collector before resumable reads).
    sign_in_read: SignInReadState | None = None
    # GET /applications and GET /servicePrincipals: Graph's JSON (id, appId, displayName,
    # passwordCredentials, keyCredentials; servicePrincipalType for service principals).
    applications: Sequence[JsonObject] | Unavailable = NOT_COLLECTED
    service_principals: Sequence[JsonObject] | Unavailable = NOT_COLLECTED
    # GET /tenantRelationships/delegatedAdminRelationships (partner tenant, public cloud only):
    # Graph's JSON, resellerDelegatedAdminRelationship items included.
    delegated_admin_relationships: Sequence[JsonObject] | Unavailable = NOT_COLLECTED


# -- 3. the report: SPEC section 2 ---------------------------------------------------------------

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


METRIC_COUNTS = (
    "users_in_scope",
    "mfa_capable",
    "phishing_resistant",
    "phone_only",
    "admins",
    "admins_mfa_capable",
    "admins_phishing_resistant",
    "admins_phone_only",
)


@dataclass(frozen=True)
class ReportMetrics:
    """The report's optional `metrics` (SPEC §2): how strong the in-scope users' methods are.

    Counts of users, never shares: each renderer divides for itself, so a share is never rounded
    twice and a reader can always see how many people a percentage means. `users_in_scope` and
    `admins` are the totals; every other count is a subset of its total. `as_of` is when the
    registration data they come from was read (a filtered read's roster: its full read). Computed
    by `partnerguard.method_strength_metrics`. `admins_mfa_capable` and `admins_phone_only` go
    beyond SPEC §2's list (additive) so that admins get the same three figures as all users.
    """

    users_in_scope: int
    mfa_capable: int
    phishing_resistant: int
    phone_only: int
    admins: int
    admins_mfa_capable: int
    admins_phishing_resistant: int
    admins_phone_only: int
    as_of: datetime

    def to_document(self) -> dict[str, Any]:
        return {**{name: getattr(self, name) for name in METRIC_COUNTS}, "as_of": iso(self.as_of)}

    @classmethod
    def from_document(cls, doc: object) -> ReportMetrics | None:
        """The metrics of a stored or received document; None when absent or not coherent (a
        hand-edited document): a renderer then shows no figures rather than wrong ones."""
        if not isinstance(doc, Mapping):
            return None
        counts: dict[str, int] = {}
        for name in METRIC_COUNTS:
            value = doc.get(name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                return None
            counts[name] = value
        try:
            as_of = datetime.fromisoformat(str(doc.get("as_of")))
        except ValueError:
            return None
        metrics = cls(**counts, as_of=as_of)
        users, admins = metrics.users_in_scope, metrics.admins
        if max(metrics.mfa_capable, metrics.phishing_resistant, metrics.phone_only, admins) > users:
            return None
        if max(metrics.admins_mfa_capable, metrics.admins_phishing_resistant, metrics.admins_phone_only) > admins:
            return None
        return metrics


@dataclass(frozen=True)
class Report:
    tenant: TenantInfo
    run_id: str
    started: datetime
    finished: datetime
    checks: tuple[CheckReport, ...]
    # SPEC §2's optional `metrics`: None for a run that could not compute them and for runs
    # stored before they existed.
    metrics: ReportMetrics | None = None

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
        doc: dict[str, Any] = {
            "schema": REPORT_SCHEMA,
            "tenant": {"id": self.tenant.id, "name": self.tenant.name, "role": self.tenant.role},
            "run_id": self.run_id,
            "started": iso(self.started),
            "finished": iso(self.finished),
            "status": self.status,
            "summary": self.summary,
            "checks": [c.to_document() for c in self.checks],
        }
        if self.metrics is not None:
            doc["metrics"] = self.metrics.to_document()
        return doc

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
            metrics=ReportMetrics.from_document(doc.get("metrics")),
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
    metrics: ReportMetrics | None = None,
) -> Report:
    """`states` maps check id -> subject id -> lifecycle state, as the finding store assigned them."""
    return Report(
        tenant=tenant,
        run_id=run_id,
        started=started,
        finished=finished,
        checks=tuple(check_report(r, states.get(r.metadata.id, {})) for r in results),
        metrics=metrics,
    )


def reports_document(reports: Iterable[Report]) -> dict[str, Any]:
    return {"schema": REPORTS_SCHEMA, "reports": [r.to_document() for r in reports]}

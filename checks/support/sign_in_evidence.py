"""Sign-in evidence shared by the three sign-in checks: reading one sign-in, judging the window.

Each sign-in check module owns its metadata, its rule (which successful sign-ins match, and the
subject each counts against) and how it words a finding; `rule_match` and `outcome` do the
rest, the same for all three. What the rules have in common lives here:
- reading a beta `signIn` object (https://learn.microsoft.com/en-us/graph/api/resources/signin?view=graph-rest-beta):
  only *successful* sign-ins of *users* count - `status.errorCode` 0 and a `userId`; a failed
  attempt proves nothing got in, and service-principal or managed-identity sign-ins have no
  user and are not what these rules are about;
- `SignInMatch`, what a rule reports for one sign-in, which the collector folds into
  per-subject `SignInAggregate`s in storage;
- the look-back window over those aggregates: an aggregate counts when its `last_seen` is at
  or after `now - SIGNIN_LOOKBACK_HOURS` (inclusive: a sign-in exactly at the edge is still
  inside the window the setting names);
- one finding per subject seen in the window, with the check's severity and the subject's
  evidence. Disabled users and guests are reported like anyone else: a sign-in that succeeded
  is evidence, whatever the account's state today;
- a sign-in read still in progress (`TenantSnapshot.sign_in_read` incomplete: a large tenant's
  first read spans several executions): what was found so far is a `fail` as usual, its
  evidence saying how far back the read reached; nothing found yet is `not_assessed`, never a
  `pass` over sign-ins nobody has read.

Sign-ins are tenant data read from Graph: every field is checked for type, and names are cut
to a bounded length before they reach storage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from checks.support.graph_json import NAME_LIMIT, text
from partnerguard.model import (
    CheckContext,
    CheckMetadata,
    CheckOutcome,
    Finding,
    SignInAggregate,
    SignInReadState,
    Status,
    SubjectType,
    TenantSnapshot,
    available,
)

# Event types of sign-ins that have no user behind them.
NON_USER_EVENT_TYPES = frozenset({"servicePrincipal", "managedIdentity"})
# Stands in for a missing appId so that a subject id never ends in an empty part.
UNKNOWN_APP = "unknown-app"


@dataclass(frozen=True, slots=True)
class SignInMatch:
    """One sign-in that one rule matched: the subject it counts against, and who and what it was."""

    rule: str  # the check id: "legacy-auth.sign-ins" | "sign-ins.single-factor" | "sam.password-grant"
    subject_id: str  # SPEC §1: "<userId>|<clientAppUsed lower-cased>" | "<userId>|<appId>" | "<appId>|<userId>"
    user_id: str
    user_principal_name: str
    user_display_name: str
    app_id: str
    app_display_name: str
    client_app_used: str


def is_successful(sign_in: Mapping[str, Any]) -> bool:
    """`status.errorCode` is 0. A missing or unreadable status is not proof of success."""
    status = sign_in.get("status")
    if not isinstance(status, Mapping):
        return False
    code = status.get("errorCode")
    return isinstance(code, int) and not isinstance(code, bool) and code == 0


def is_user_sign_in(sign_in: Mapping[str, Any]) -> bool:
    if not text(sign_in, "userId"):
        return False
    event_types = sign_in.get("signInEventTypes")
    if isinstance(event_types, Sequence) and not isinstance(event_types, str):
        named = {item for item in event_types if isinstance(item, str)}
        if named and named <= NON_USER_EVENT_TYPES:
            return False
    return True


def counts(sign_in: Mapping[str, Any]) -> bool:
    """Whether any sign-in rule may look at this sign-in: a successful sign-in of a user."""
    return is_successful(sign_in) and is_user_sign_in(sign_in)


def rule_match(rule: str, sign_in: Mapping[str, Any], subject_id: str) -> SignInMatch | None:
    """What `rule` (a check id) matched: `sign_in`, counted against `subject_id` - or None when the
    sign-in does not count, so that no rule can forget that a failed attempt proves nothing."""
    if not counts(sign_in):
        return None
    return SignInMatch(
        rule=rule,
        subject_id=subject_id,
        user_id=text(sign_in, "userId"),
        user_principal_name=text(sign_in, "userPrincipalName", NAME_LIMIT),
        user_display_name=text(sign_in, "userDisplayName", NAME_LIMIT),
        app_id=app_id(sign_in),
        app_display_name=text(sign_in, "appDisplayName", NAME_LIMIT),
        client_app_used=text(sign_in, "clientAppUsed", NAME_LIMIT),
    )


def app_id(sign_in: Mapping[str, Any]) -> str:
    return text(sign_in, "appId") or UNKNOWN_APP


# -- the window over stored aggregates ----------------------------------------------------------


def window_start(context: CheckContext) -> datetime:
    return context.now - timedelta(hours=context.signin_lookback_hours)


def in_window(aggregate: SignInAggregate, context: CheckContext) -> bool:
    """Seen at or after the window's start (inclusive). Later than `now` (clock skew) counts too."""
    return aggregate.last_seen >= window_start(context)


@dataclass(frozen=True)
class SubjectEvidence:
    """Every stored aggregate of one subject, merged (storage keeps one per subject; this is
    defensive, so that one subject can never become two findings)."""

    latest: SignInAggregate  # names and app as last seen
    first_seen: datetime
    last_seen: datetime
    count: int
    event_types: tuple[str, ...]
    lookback_hours: int  # the window they were judged in

    @property
    def subject_id(self) -> str:
        return self.latest.subject_id

    @property
    def seen(self) -> str:
        """When, as every sign-in finding's detail puts it."""
        return f"since {self.first_seen.date().isoformat()}, the last within the past {self.lookback_hours} hours"

    @property
    def user_name(self) -> str:
        """The user as a finding about them names them: display name, else UPN, else id."""
        return first_of((self.latest.user_display_name, self.latest.user_principal_name, self.latest.user_id))


def _merge(aggregates: Sequence[SignInAggregate], lookback_hours: int) -> SubjectEvidence:
    latest = max(aggregates, key=lambda aggregate: aggregate.last_seen)
    event_types = sorted({event_type for aggregate in aggregates for event_type in aggregate.event_types})
    return SubjectEvidence(
        latest=latest,
        first_seen=min(aggregate.first_seen for aggregate in aggregates),
        last_seen=latest.last_seen,
        count=sum(aggregate.count for aggregate in aggregates),
        event_types=tuple(event_types),
        lookback_hours=lookback_hours,
    )


def evidence_in_window(snapshot: TenantSnapshot, context: CheckContext, rule: str) -> list[SubjectEvidence]:
    """This rule's subjects seen within the window, ordered by subject id.

    Stops the check with the collector's reason (licence, permission, error) when the sign-in
    aggregates could not be read: never a pass over sign-ins nobody saw.
    """
    by_subject: dict[str, list[SignInAggregate]] = {}
    for aggregate in available(snapshot.sign_in_aggregates):
        if aggregate.rule == rule and in_window(aggregate, context):
            by_subject.setdefault(aggregate.subject_id, []).append(aggregate)
    return [_merge(by_subject[subject_id], context.signin_lookback_hours) for subject_id in sorted(by_subject)]


def evidence_of(subject: SubjectEvidence) -> dict[str, Any]:
    aggregate = subject.latest
    return {
        "userId": aggregate.user_id,
        "userPrincipalName": aggregate.user_principal_name[:NAME_LIMIT],
        "appId": aggregate.app_id,
        "appDisplayName": aggregate.app_display_name[:NAME_LIMIT],
        "clientAppUsed": aggregate.client_app_used[:NAME_LIMIT],
        "firstSeen": subject.first_seen.isoformat(),
        "lastSeen": subject.last_seen.isoformat(),
        "signInCount": subject.count,
        "eventTypes": list(subject.event_types),
    }


def first_of(values: Iterable[str]) -> str:
    """The first non-empty value, for a subject name with fallbacks (bounded: names are tenant data)."""
    return next((value for value in values if value), "")[:NAME_LIMIT]


# -- one sign-in check's outcome ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FindingWording:
    """What a sign-in check says about one subject; the rest of the finding is the same for all."""

    subject_type: SubjectType
    subject_name: str
    detail: str


def outcome(
    snapshot: TenantSnapshot,
    context: CheckContext,
    metadata: CheckMetadata,
    wording: Callable[[SubjectEvidence], FindingWording],
) -> CheckOutcome:
    """The check's outcome: fail with a finding for each subject its rule saw in the window,
    worded by `wording`, or pass; either way saying which window was judged."""
    # No filter on the account's state: a disabled user's or a guest's sign-in happened all the same.
    findings = []
    for subject in evidence_in_window(snapshot, context, metadata.id):
        said = wording(subject)
        findings.append(
            Finding(
                subject_id=subject.subject_id,
                subject_type=said.subject_type,
                subject_name=said.subject_name,
                detail=said.detail,
                severity=metadata.severity,
                evidence=evidence_of(subject),
            )
        )
    evidence: dict[str, Any] = {
        "lookbackHours": context.signin_lookback_hours,
        "windowStart": window_start(context).isoformat(),
    }
    read = snapshot.sign_in_read
    if read is None or read.complete:
        return CheckOutcome(Status.FAIL if findings else Status.PASS, tuple(findings), evidence=evidence)
    evidence.update(
        {
            "signInRead": "incomplete",
            "readBackTo": read.read_back_to.isoformat() if read.read_back_to else None,
            "pagesRead": read.pages,
        }
    )
    if findings:
        return CheckOutcome(
            Status.FAIL, tuple(findings), note=f"{_in_progress(read)}; more findings may follow.", evidence=evidence
        )
    # No reason_code: SPEC §2's codes name data that cannot be read; this will be, next execution
    # (as mfa.registration's users the fallback's time budget did not reach).
    return CheckOutcome.not_assessed(_in_progress(read), None, evidence=evidence)


def _in_progress(read: SignInReadState) -> str:
    reached = read.read_back_to.isoformat(timespec="seconds") if read.read_back_to else "its start"
    return (
        f"sign-in log read in progress: read back to {reached} of the {read.window_hours}-hour window; "
        "it continues in the next execution"
    )

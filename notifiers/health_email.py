"""The health alert: PartnerGuard watching itself.

A monitor that silently stops monitoring is worse than none: the partner believes tenants are
checked while nothing is. The alert worker sends this email when PartnerGuard itself has a
problem a person must fix, of three kinds:

- `stale`: a tenant without a successful scan for twice the schedule, whose compliance
  PartnerGuard can no longer show;
- `consent`: a tenant whose consent to the app is missing (revoked, never granted) or whose
  sign-in keeps failing, which PartnerGuard only probes once a day until it is fixed;
- `poison`: queue messages PartnerGuard could not process, moved to a `<queue>-poison` queue.

For each kind the email says what it means and what to do, lists the affected tenants or
queues, and links to `GET /api/tenants` (SPEC §4). Escaping is the one every alert email shares
(`notifiers.email_view`): tenant names, ids and error details capped and made inert, the HTML
autoescaped, the subject one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args

from notifiers.email_view import (
    DETAIL_LIMIT,
    ID_LIMIT,
    NAME_LIMIT,
    RenderedEmail,
    api_url,
    checked_link,
    clip,
    elapsed,
    plural,
    render_email,
)
from partnerguard.model import iso

HTML_TEMPLATE = "health.html.j2"
TEXT_TEMPLATE = "health.txt.j2"

HealthKind = Literal["stale", "poison", "consent"]
HEALTH_KINDS: tuple[HealthKind, ...] = get_args(HealthKind)

# When every customer's scan fails at once (the app's credential expired), every tenant is
# stale: list this many and count the rest, which GET /api/tenants shows in full.
MAX_LISTED_PER_KIND = 200
# A URL is ours or the caller's, but still capped: it goes into the message twice.
URL_LIMIT = 2000
# The tenant's part of a one-problem subject.
_SUBJECT_TENANT_LIMIT = 60

TENANTS_PATH = "/api/tenants"


@dataclass(frozen=True)
class HealthProblem:
    kind: HealthKind
    tenant_id: str | None  # None for "poison"
    tenant_name: str | None
    # What is wrong, as the caller saw it: the consent error, "no successful scan since <iso>",
    # "3 messages in partnerguard-scans-poison".
    detail: str
    # The last successful run, when consent broke, or the oldest poison message.
    since: datetime | None
    # For "consent": the admin consent URL of the tenant
    # (https://login.microsoftonline.com/{tenant}/adminconsent?client_id=<AZURE_CLIENT_ID>),
    # which the caller builds for its cloud's login host.
    consent_url: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in HEALTH_KINDS:
            raise ValueError(f"unknown health problem kind {self.kind!r}")
        if self.kind == "poison" and (self.tenant_id is not None or self.tenant_name is not None):
            raise ValueError("a poison problem is about a queue, not a tenant")
        if self.kind != "poison" and not self.tenant_id:
            raise ValueError(f"a {self.kind} problem needs the tenant id")
        if self.consent_url is not None:
            if self.kind != "consent":
                raise ValueError(f"a {self.kind} problem has no consent URL")
            checked_link(self.consent_url, "consent URL")
        if self.since is not None and self.since.tzinfo is None:
            raise ValueError("since must be timezone-aware")


@dataclass(frozen=True)
class HealthAlert:
    problems: tuple[HealthProblem, ...]
    as_of: datetime

    def __post_init__(self) -> None:
        if not self.problems:
            raise ValueError("a health alert needs at least one problem")
        if self.as_of.tzinfo is None:
            raise ValueError("as_of must be timezone-aware")


@dataclass(frozen=True)
class _KindWording:
    heading: str
    # Subject fragment for n problems of this kind.
    singular: str
    plural: str
    meaning: str
    action: str


# In the order the email lists them: consent first, because a tenant without consent also goes
# stale and fixing consent fixes both; poison last, being about the app rather than a tenant.
_WORDING: dict[HealthKind, _KindWording] = {
    "consent": _KindWording(
        heading="Consent missing or failing",
        singular="tenant without working consent",
        plural="tenants without working consent",
        meaning=(
            "PartnerGuard cannot sign in to this tenant: the app's consent there was revoked or never granted, "
            "or signing in keeps failing (the error says which). PartnerGuard does not scan the tenant and only "
            "tries again once a day until it is fixed."
        ),
        action=(
            "A Global Administrator (or Privileged Role Administrator) of that tenant must grant admin consent to "
            "the PartnerGuard app again: signed in as that administrator, open the admin consent URL shown with "
            "the tenant (in the public cloud "
            "https://login.microsoftonline.com/{tenant id}/adminconsent?client_id=<AZURE_CLIENT_ID>). "
            "The next successful sign-in sets the tenant's consent back to ok."
        ),
    ),
    "stale": _KindWording(
        heading="Tenants not scanned",
        singular="tenant not scanned",
        plural="tenants not scanned",
        meaning=(
            "No scan of this tenant has succeeded for twice the schedule: PartnerGuard cannot prove that it "
            "still meets the partner security requirements."
        ),
        action=(
            "GET /api/tenants lists each tenant's consent and last run; "
            "GET /api/tenants/{id}/scans/{run_id} shows that run's error."
        ),
    ),
    "poison": _KindWording(
        heading="Messages PartnerGuard could not process",
        singular="queue with unprocessed messages",
        plural="queues with unprocessed messages",
        meaning=(
            "Queue messages that failed every attempt, or could never be processed, were moved to a poison "
            "queue. The scans or alerts they asked for did not happen."
        ),
        action=(
            "Inspect the poison queue named here (<name>-poison) in PartnerGuard's storage account. A message "
            "PartnerGuard poisoned itself carries its reason; one the Functions host moved there after its last "
            "failed attempt names a run, whose error GET /api/tenants/{id}/scans/{run_id} shows. "
            "Fix the cause, then delete the messages."
        ),
    ),
}


def _ordered(problems: tuple[HealthProblem, ...], kind: HealthKind) -> list[HealthProblem]:
    """One kind's problems, the longest-standing first (unknown since last), then by name and id."""
    return sorted(
        (p for p in problems if p.kind == kind),
        key=lambda p: (
            p.since is None,
            p.since.timestamp() if p.since else 0.0,
            (p.tenant_name or p.tenant_id or "").casefold(),
            p.tenant_id or "",
            p.detail,
        ),
    )


def _subject(alert: HealthAlert) -> str:
    counts = {kind: sum(1 for p in alert.problems if p.kind == kind) for kind in _WORDING}
    parts = [
        f"{count} {_WORDING[kind].singular if count == 1 else _WORDING[kind].plural}"
        for kind, count in counts.items()
        if count
    ]
    subject = f"PartnerGuard health: {', '.join(parts)}"
    if len(alert.problems) == 1 and alert.problems[0].tenant_id:
        only = alert.problems[0]
        subject += f" — {clip(only.tenant_name or only.tenant_id, _SUBJECT_TENANT_LIMIT)}"
    return subject


def _problem_view(problem: HealthProblem, as_of: datetime) -> dict[str, Any]:
    tenant = None
    if problem.tenant_id:
        tenant = {
            "name": clip(problem.tenant_name or problem.tenant_id, NAME_LIMIT),
            "id": clip(problem.tenant_id, ID_LIMIT),
        }
    return {
        "tenant": tenant,
        "detail": clip(problem.detail, DETAIL_LIMIT),
        "since": iso(problem.since) if problem.since else "",
        "since_age": elapsed(problem.since, as_of) if problem.since else "",
        "consent_url": clip(problem.consent_url, URL_LIMIT) if problem.consent_url else None,
    }


def _view(alert: HealthAlert, public_url: str | None) -> dict[str, Any]:
    """Everything the templates print, each caller- or tenant-controlled string capped and inert."""
    groups = []
    for kind, wording in _WORDING.items():
        problems = _ordered(alert.problems, kind)
        if not problems:
            continue
        groups.append(
            {
                "kind": kind,
                "heading": wording.heading,
                "meaning": wording.meaning,
                "action": wording.action,
                "problems": [_problem_view(p, alert.as_of) for p in problems[:MAX_LISTED_PER_KIND]],
                "total": len(problems),
                "more": max(len(problems) - MAX_LISTED_PER_KIND, 0),
            }
        )
    total = len(alert.problems)
    return {
        "subject": _subject(alert),
        "summary": (
            f"PartnerGuard found {plural(total, 'problem')} with its own monitoring that "
            f"{'needs' if total == 1 else 'need'} someone to act. Until then it cannot show whether "
            "the tenants concerned meet the partner security requirements."
        ),
        "as_of": iso(alert.as_of),
        "groups": groups,
        "links": {"tenants": api_url(public_url, TENANTS_PATH)},
        # Shown when there is no public URL, so the reader still knows where to look.
        "api_path": TENANTS_PATH,
    }


def render_health_alert(alert: HealthAlert, public_url: str | None) -> RenderedEmail:
    """The health alert as a subject, an HTML body and a plain-text body.

    `public_url` is PARTNERGUARD_PUBLIC_URL (settings.public_url); without it the email names the
    API path but links nowhere.
    """
    return render_email(HTML_TEMPLATE, TEXT_TEMPLATE, _view(alert, public_url))

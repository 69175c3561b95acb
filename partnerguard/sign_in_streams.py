"""Which sign-in queries a scan sends: the streams of each event type, and the mode that picks them.

Per event type (`interactiveUser`, `nonInteractiveUser`: without a signInEventTypes filter Graph
returns interactive sign-ins only) a scan reads in one of two modes:

- **full**: one query for every sign-in of the event type in the range. Its stream key is the
  event type itself, the key of the watermark rows written before filtered streams existed.
- **filtered**: only what can become a finding, in disjoint queries, each AND-ed with the range,
  the event type and `status/errorCode eq 0` (every sign-in rule needs a successful sign-in):
  - `authenticationRequirement eq 'singleFactorAuthentication'` (stream `<event type>|sf`):
    every single-factor sign-in, hence every `sign-ins.single-factor` match, every successful
    ROPC sign-in (Microsoft: ROPC "doesn't support multifactor authentication"; an account that
    needs MFA is blocked, https://learn.microsoft.com/entra/identity-platform/v2-oauth-ropc),
    and every single-factor legacy sign-in whatever its clientAppUsed spelling;
  - for each clientAppUsed value Microsoft documents as a legacy authentication client
    (`LEGACY_CLIENT_APPS`), `clientAppUsed eq '<value>' and authenticationRequirement eq
    'multiFactorAuthentication'` (stream `<event type>|legacy:<value>`): legacy clients that can
    do MFA (Exchange ActiveSync, IMAP/POP/SMTP with OAuth, EWS, MAPI) still match
    `legacy-auth.sign-ins`.
  The two requirement values exclude each other, so no sign-in is read twice within a mode.

  What filtered mode cannot see (docs/scaling.md): a *multi-factor* sign-in through a legacy
  client whose clientAppUsed is none of the documented values (or spelled otherwise, should
  Graph's `eq` be case-sensitive: Microsoft does not say), and a sign-in whose
  authenticationRequirement is neither documented value. Graph documents no `$filter` on
  `authenticationProtocol` and only `eq` on `clientAppUsed`, so "outside the allow-list" cannot
  be asked for; full mode remains the reference and the bench's baseline.

**Mode choice** ("auto"): filtered when a full read of the range is expected to cost more
requests than the filtered queries (`1 + len(LEGACY_CLIENT_APPS)`, one page each when nothing
matches). Expected full pages = sign-ins per hour × range hours / 1,000 (the page size). The
rate is the stream's own measurement (sign-ins per hour over its completed full ranges); before
any, an assumption from the tenant's user count: `PRIOR_PER_USER_HOUR`, the volumes issue 16
sets for the benchmark (0.12 interactive, 1.2 non-interactive per user and hour). They are not
Microsoft figures; the first completed full range replaces them with the tenant's own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from partnerguard.graph.requests import (
    SIGN_INS,
    SIGN_INS_LEGACY_MULTI_FACTOR,
    SIGN_INS_SINGLE_FACTOR,
    GraphRequest,
)
from partnerguard.read_plan import SignInFilterMode
from partnerguard.storage.sign_in_aggregates import StreamMode

INTERACTIVE = "interactiveUser"
NON_INTERACTIVE = "nonInteractiveUser"
# The event types, in the order they are read. A sign-in listing both types (Graph does not
# document one) is counted by the first only.
EVENT_TYPES: tuple[str, ...] = (INTERACTIVE, NON_INTERACTIVE)

# The clientAppUsed values Microsoft lists under "Legacy authentication clients", spelled as the
# sign-in log filter lists them ("Legacy authentication client details",
# https://learn.microsoft.com/entra/identity/monitoring-health/howto-customize-filter-logs; the
# Conditional Access client-apps condition lists the same protocols,
# https://learn.microsoft.com/entra/identity/conditional-access/concept-conditional-access-conditions).
LEGACY_CLIENT_APPS: tuple[str, ...] = (
    "Authenticated SMTP",
    "Autodiscover",
    "Exchange ActiveSync",
    "Exchange Online PowerShell",
    "Exchange Web Services",
    "IMAP4",
    "MAPI over HTTP",
    "Offline Address Book",
    "Outlook Anywhere (RPC over HTTP)",
    "Outlook Service",
    "POP3",
    "Reporting Web Services",
    "Other clients",
)

# Requests of one filtered read of one event type when nothing matches: one page per query.
FILTERED_REQUESTS = 1 + len(LEGACY_CLIENT_APPS)
# signin-list: "The maximum and default page size is 1,000 objects".
PAGE_SIZE = 1000
# The assumed rate before a stream has measured its own (see the module docstring).
PRIOR_PER_USER_HOUR: dict[str, float] = {INTERACTIVE: 0.12, NON_INTERACTIVE: 1.2}

SINGLE_FACTOR_SUFFIX = "|sf"
LEGACY_PREFIX = "|legacy:"


@dataclass(frozen=True)
class Stream:
    """One query of one event type: its stream key and what it asks Graph for."""

    key: str
    event_type: str
    mode: StreamMode
    client_app: str | None = None  # the legacy value of a filtered legacy stream

    def request(self, since: datetime, until: datetime) -> GraphRequest:
        times = {"since": filter_time(since), "until": filter_time(until), "event_type": self.event_type}
        if self.mode == "full":
            return SIGN_INS.request(**times)
        if self.client_app is None:
            return SIGN_INS_SINGLE_FACTOR.request(**times)
        return SIGN_INS_LEGACY_MULTI_FACTOR.request(**times, client_app=self.client_app)


def streams_of(event_type: str, mode: StreamMode) -> tuple[Stream, ...]:
    """The streams one mode reads for one event type, in reading order."""
    if mode == "full":
        return (Stream(event_type, event_type, "full"),)
    return (
        Stream(event_type + SINGLE_FACTOR_SUFFIX, event_type, "filtered"),
        *(Stream(f"{event_type}{LEGACY_PREFIX}{app}", event_type, "filtered", app) for app in LEGACY_CLIENT_APPS),
    )


_FILTER_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def filter_time(moment: datetime) -> str:
    """Seconds precision, UTC, as the $filter literal (callers round `ge` down and `le` up)."""
    return moment.astimezone(UTC).strftime(_FILTER_TIME_FORMAT)


@dataclass(frozen=True)
class ModeChoice:
    mode: StreamMode
    why: str


def choose_mode(
    plan: SignInFilterMode,
    event_type: str,
    *,
    current: StreamMode | None,
    in_progress: bool,
    measured_per_hour: float | None,
    user_count: int | None,
    range_hours: float,
) -> ModeChoice:
    """The mode of this scan's read of one event type, and why (for the log)."""
    if in_progress and current is not None:
        return ModeChoice(current, "a range in progress is finished in the mode it began in")
    if plan == "never":
        return ModeChoice("full", "the read plan reads every sign-in")
    if plan == "always":
        return ModeChoice("filtered", "the read plan always filters")
    if measured_per_hour is not None:
        rate, source = measured_per_hour, "measured"
    elif user_count is not None:
        rate, source = user_count * PRIOR_PER_USER_HOUR[event_type], f"assumed for {user_count} users"
    else:
        return ModeChoice(current or "full", "no measured rate and no user count")
    pages = max(1, math.ceil(rate * max(range_hours, 0.0) / PAGE_SIZE))
    estimate = f"{rate:.1f} sign-ins/hour ({source}) over {range_hours:.2f} h: ~{pages} full page(s)"
    if pages > FILTERED_REQUESTS:
        return ModeChoice("filtered", f"{estimate} > {FILTERED_REQUESTS} filtered requests")
    return ModeChoice("full", f"{estimate} <= {FILTERED_REQUESTS} filtered requests")

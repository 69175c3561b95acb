"""Client-side pacing to Graph's published limits, so a scan rarely meets a 429.

A scan that paces itself finishes in the time Graph's limits allow; one that hammers Graph spends
minutes in back-off (SPEC §6). The limits are Microsoft's, copied from
https://learn.microsoft.com/graph/throttling-limits (the simulator keeps its own copy, which
shares nothing with this one, so that it can catch a mistake here):

- Identity and access reports (signIns, authentication-method reports such as
  userRegistrationDetails, and the per-user authentication methods API): 5 requests per 10 s per
  app per tenant, and 122 requests per 10 s per app across all tenants; 429s carry Retry-After.
- Conditional Access policies ("identity protection and conditional access"): 1 request per
  second per tenant for all apps together; the 429 carries no Retry-After.
- Identity and access (directory objects: users, groups, applications, organization, policies,
  subscribedSkus...): a token bucket in resource units (RU) per app per tenant — 3,500 RU per
  10 s for tenants under 50 users, 5,000 up to 500, 8,000 above — and 150,000 RU per 20 s per
  app across tenants. We pace every tenant at the smallest tier: it is what we can know before
  the users are read, and one scan comes near it only when it reads per-user MFA state of
  thousands of users. A request costs its path's base cost (`GET users` 2, `GET applications` 2,
  `GET subscribedSkus` 3, `GET groups/{id}/transitiveMembers` 5, anything else 1), minus one with
  `$select`, plus one with `$expand`, never below 1 (`request_cost`).

`$batch` sub-requests count one by one against these limits, so a batch costs its sub-requests.

**Windows.** The pacer keeps a sliding window of units per (tenant, API class), and one per API
class for the app-wide limits. Graph counts a request when it arrives; we know for certain only
that it arrived before its answer came back. So a request holds its units from when it is sent
(`acquire`) and, once answered, from the moment of the answer (`Reservation.settle`): the window
frees them one window after the answer, which is never earlier than Graph does, whatever the
latency. The price is one round trip per window, not a fixed guess.

**App-wide limits and scale-out.** The cross-tenant limits hold for the whole app, but a pacer
sees one process. A process therefore uses `1 / SCAN_PROCESSES` of them: the deployment runs
the scan worker on at most `SCAN_PROCESSES` processes (Flex Consumption `maximumInstanceCount`
of the scan function times worker processes per instance; docs/scaling.md says why one is
enough for 5,000 tenants).

**Adapting.** A 429 still happens (another app uses the tenant's Conditional Access budget, a
deployment overlaps two instances): the middleware reports it (`throttled`) and every request of
that window then waits — Graph's Retry-After when it gives one, else an exponential back-off from
the window's length with jitter, so tenants' retries do not fall into step. Every attempt,
retries included, passes through the pacer (it sits after the retry handler).

Locks: each window has a FIFO lock per event loop, so waiters queue instead of all waking at
each expiry. Locks are made per loop because the pacer outlives any one `asyncio.run`.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import parse_qsl, urlsplit


class ApiClass(StrEnum):
    """The throttling families of Graph that PartnerGuard's requests fall into."""

    REPORTS = "reports"
    CONDITIONAL_ACCESS = "conditionalAccess"
    DIRECTORY = "directory"


@dataclass(frozen=True)
class Limit:
    """`requests` units (requests, or resource units for the directory) per `per_seconds`."""

    requests: int
    per_seconds: float


@dataclass(frozen=True)
class ClassLimits:
    per_tenant: Limit | None
    # This process's part of the app-wide (cross-tenant) limit; see SCAN_PROCESSES.
    per_process: Limit | None
    # Whether Graph's 429s of this class carry Retry-After (else we back off on our own).
    retry_after: bool = True


# How many processes may scan at once for one deployment (see the module docstring and
# docs/scaling.md): the Flex Consumption plan's maximumInstanceCount for the scan worker (1) times
# the Python worker processes per instance (FUNCTIONS_WORKER_PROCESS_COUNT, default 1).
SCAN_PROCESSES = 1

REPORTS_PER_TENANT = Limit(5, 10.0)
REPORTS_PER_APP = Limit(122, 10.0)
CONDITIONAL_ACCESS_PER_TENANT = Limit(1, 1.0)
DIRECTORY_PER_TENANT = Limit(3500, 10.0)  # resource units, tier S (the smallest)
DIRECTORY_PER_APP = Limit(150_000, 20.0)  # resource units


def app_share(limit: Limit, processes: int) -> Limit:
    """One process's part of an app-wide limit."""
    if processes < 1:
        raise ValueError("processes must be at least 1")
    return Limit(max(1, limit.requests // processes), limit.per_seconds)


def graph_limits(processes: int = SCAN_PROCESSES) -> dict[ApiClass, ClassLimits]:
    """Graph's limits as one of `processes` scanning processes may use them."""
    return {
        ApiClass.REPORTS: ClassLimits(REPORTS_PER_TENANT, app_share(REPORTS_PER_APP, processes)),
        ApiClass.CONDITIONAL_ACCESS: ClassLimits(CONDITIONAL_ACCESS_PER_TENANT, None, retry_after=False),
        ApiClass.DIRECTORY: ClassLimits(DIRECTORY_PER_TENANT, app_share(DIRECTORY_PER_APP, processes)),
    }


GRAPH_LIMITS: Mapping[ApiClass, ClassLimits] = graph_limits()

# Base resource-unit costs of directory reads ("Identity and access service limits"); any other
# directory GET costs 1.
_DIRECTORY_BASE_COSTS: tuple[tuple[re.Pattern[str], int], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), cost)
    for pattern, cost in (
        (r"^/users/?$", 2),
        (r"^/applications/?$", 2),
        (r"^/applications/[^/]+/extensionProperties/?$", 2),
        (r"^/contracts/?$", 3),
        (r"^/subscribedSkus/?$", 3),
        (r"^/groups/[^/]+/members/?$", 3),
        (r"^/groups/[^/]+/transitiveMembers/?$", 5),
        (r"^/oauth2PermissionGrants(/[^/]+)?/?$", 2),
        (r"^/servicePrincipals/[^/]+/appRoleAssignments/?$", 2),
    )
)


def request_cost(api_class: ApiClass, relative_url: str) -> int:
    """Units one GET of `relative_url` (relative to the version root) costs in its class."""
    if api_class is not ApiClass.DIRECTORY:
        return 1
    parts = urlsplit(relative_url)
    cost = next((base for pattern, base in _DIRECTORY_BASE_COSTS if pattern.match(parts.path)), 1)
    options = {name.lower(): value for name, value in parse_qsl(parts.query, keep_blank_values=True)}
    if "$select" in options:
        cost -= 1
    if "$expand" in options:
        cost += 1
    top = options.get("$top", "")
    if top.isdigit() and int(top) < 20:
        cost -= 1
    return max(1, cost)


# Back-off after a 429 without Retry-After: the window's length times 2**strikes, capped, with
# jitter so that tenants throttled together do not retry together.
MAX_BACKOFF_SECONDS = 32.0
# How often a waiter looks again when the units it waits for are held by requests still in
# flight (their answer, not a clock, frees them).
IN_FLIGHT_POLL_SECONDS = 0.05
# Graph counts a request when it arrives; the window frees a request's units this long after
# its answer, to allow for clock granularity.
SAFETY_MARGIN_SECONDS = 0.01


@dataclass
class _Entry:
    time: float
    cost: int
    settled: bool = False


@dataclass
class _Window:
    """Units held within the last `limit.per_seconds`, and a block after a 429."""

    limit: Limit
    retry_after: bool
    entries: deque[_Entry] = field(default_factory=deque)
    used: int = 0
    blocked_until: float = 0.0
    strikes: int = 0

    @property
    def horizon(self) -> float:
        return self.limit.per_seconds + SAFETY_MARGIN_SECONDS

    def _expire(self, now: float) -> None:
        # In-flight entries stay until answered; one stuck at the head keeps later ones too,
        # which only errs on the safe side.
        while self.entries and self.entries[0].settled and self.entries[0].time <= now - self.horizon:
            self.used -= self.entries.popleft().cost

    def wait_needed(self, now: float, cost: int) -> float:
        self._expire(now)
        blocked = max(0.0, self.blocked_until - now)
        excess = self.used + cost - self.limit.requests
        if excess <= 0:
            return blocked
        freed = 0
        for entry in sorted((e for e in self.entries if e.settled), key=lambda e: e.time):
            freed += entry.cost
            if freed >= excess:
                return max(blocked, entry.time + self.horizon - now)
        # Only answers still to come can free enough: look again shortly.
        return max(blocked, IN_FLIGHT_POLL_SECONDS)

    def record(self, now: float, cost: int) -> _Entry:
        entry = _Entry(now, cost)
        self.entries.append(entry)
        self.used += cost
        return entry

    def throttle(self, now: float, retry_after_s: float | None, jitter: Callable[[], float]) -> float:
        """Block the window after a 429; returns for how long."""
        self.strikes += 1
        if retry_after_s is not None:
            pause = retry_after_s
        else:
            pause = min(MAX_BACKOFF_SECONDS, self.limit.per_seconds * 2 ** (self.strikes - 1)) * jitter()
        self.blocked_until = max(self.blocked_until, now + pause)
        return pause


class Reservation:
    """Units a request holds in its windows. `settle()` once the answer is in."""

    def __init__(
        self,
        entries: list[_Entry],
        waited: float,
        clock: Callable[[], float],
        on_settle: Callable[[], None] | None = None,
    ) -> None:
        self._entries = entries
        self.waited = waited
        self._clock = clock
        self._on_settle = on_settle

    def settle(self) -> None:
        if self._on_settle is not None:
            # Once only: the request is answered.
            on_settle, self._on_settle = self._on_settle, None
            on_settle()
        now = self._clock()
        for entry in self._entries:
            if not entry.settled:
                entry.time = max(entry.time, now)
                entry.settled = True


class Pacer:
    def __init__(
        self,
        limits: Mapping[ApiClass, ClassLimits] = GRAPH_LIMITS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = lambda: random.uniform(0.5, 1.5),  # noqa: S311 - not security
    ) -> None:
        self.limits = limits
        self.clock = clock
        self.sleep = sleep
        self.jitter = jitter
        self._tenant_windows: dict[tuple[str, ApiClass], _Window] = {}
        self._process_windows: dict[ApiClass, _Window] = {}
        self._locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, asyncio.Lock]] = (
            weakref.WeakKeyDictionary()
        )
        # Counts, for logs and the benchmark.
        self.throttled_count = 0
        # Requests let through and not yet answered (acquired, not settled). The benchmark's
        # virtual clock may only jump ahead while none is in flight: an answer still to come could
        # otherwise arrive "later" than it did (testbed/bench/virtual_time.py).
        self.in_flight = 0

    def max_cost(self, api_class: ApiClass) -> int | None:
        """The most units one request of this class may carry, or None if unbounded."""
        limits = self.limits[api_class]
        caps = [limit.requests for limit in (limits.per_tenant, limits.per_process) if limit is not None]
        return min(caps) if caps else None

    def _tenant_window(self, tenant_id: str, api_class: ApiClass) -> _Window | None:
        limits = self.limits[api_class]
        if limits.per_tenant is None:
            return None
        key = (tenant_id.lower(), api_class)
        if key not in self._tenant_windows:
            self._tenant_windows[key] = _Window(limits.per_tenant, limits.retry_after)
        return self._tenant_windows[key]

    def _process_window(self, api_class: ApiClass) -> _Window | None:
        limits = self.limits[api_class]
        if limits.per_process is None:
            return None
        if api_class not in self._process_windows:
            self._process_windows[api_class] = _Window(limits.per_process, limits.retry_after)
        return self._process_windows[api_class]

    def _lock(self, window: _Window) -> asyncio.Lock:
        locks = self._locks.setdefault(asyncio.get_running_loop(), {})
        return locks.setdefault(id(window), asyncio.Lock())

    async def _wait_for(self, windows: list[_Window], cost: int) -> float:
        waited = 0.0
        while True:
            now = self.clock()
            wait = max(window.wait_needed(now, cost) for window in windows)
            if wait <= 0:
                return waited
            await self.sleep(wait)
            waited += wait

    async def acquire(self, tenant_id: str, api_class: ApiClass, cost: int = 1) -> Reservation:
        """Wait until `cost` units of `api_class` may go to `tenant_id`, and hold them.

        The tenant's window is waited for first, under its own lock, then the app-wide one under
        its lock: a tenant waiting for its own window never holds up another tenant's requests.
        """
        if cost < 1:
            raise ValueError("cost must be at least 1")
        maximum = self.max_cost(api_class)
        if maximum is not None and cost > maximum:
            raise ValueError(f"a request costing {cost} can never fit the {api_class} limit of {maximum}")
        windows = [w for w in (self._tenant_window(tenant_id, api_class), self._process_window(api_class)) if w]
        if not windows:
            return self._reserved([], 0.0)
        waited = 0.0
        async with self._lock(windows[0]):
            waited += await self._wait_for(windows[:1], cost)
            if len(windows) > 1:
                async with self._lock(windows[1]):
                    # Nobody else can take the tenant's units meanwhile (we hold its lock), but a
                    # 429 may have blocked it: check both before recording.
                    waited += await self._wait_for(windows, cost)
                    entries = [window.record(self.clock(), cost) for window in windows]
            else:
                entries = [windows[0].record(self.clock(), cost)]
        return self._reserved(entries, waited)

    def _reserved(self, entries: list[_Entry], waited: float) -> Reservation:
        self.in_flight += 1
        return Reservation(entries, waited, self.clock, self._answered)

    def _answered(self) -> None:
        self.in_flight -= 1

    def throttled(
        self, tenant_id: str, api_class: ApiClass, retry_after_s: float | None, *, app_wide: bool = False
    ) -> float:
        """Graph answered 429: hold back every request of the window it names (the tenant's,
        or the app-wide one when Graph's x-ms-throttle-scope says `Application`). Returns the
        pause."""
        self.throttled_count += 1
        window = self._process_window(api_class) if app_wide else self._tenant_window(tenant_id, api_class)
        window = window or self._tenant_window(tenant_id, api_class) or self._process_window(api_class)
        if window is None:
            return 0.0
        return window.throttle(self.clock(), retry_after_s, self.jitter)

    def succeeded(self, tenant_id: str, api_class: ApiClass) -> None:
        """An answer other than 429: the next 429 of this window starts the back-off afresh."""
        window = self._tenant_window(tenant_id, api_class)
        if window is not None:
            window.strikes = 0


# One pacer per process: the cross-tenant limits are per app, not per client.
PROCESS_PACER = Pacer()

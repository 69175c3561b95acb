"""Client-side pacing to Graph's published limits, so a scan rarely meets a 429.

A scan that paces itself finishes in seconds; one that hammers Graph spends minutes in back-off
(SPEC §6). The limits are Microsoft's, copied from
https://learn.microsoft.com/graph/throttling-limits :

- Identity and access reports (signIns, authentication-method reports such as
  userRegistrationDetails, and the per-user authentication methods API): 5 requests per 10 s per
  app per tenant, and 122 requests per 10 s per app across all tenants.
- Conditional Access policies: 1 request per second per tenant, for all apps together.
- Identity and access (directory reads: users, organization, policies, per-user MFA state):
  resource-unit budgets per app per tenant, the smallest tier (tenants under 50 users) 3,500
  units per 10 s. We budget 2 units per read, the base cost of the costlier directory reads, so
  1,750 requests per 10 s; one scan only comes near it when it reads per-user MFA state of
  thousands of users.

`$batch` sub-requests count one by one against these limits, so a batch costs its size.

The pacer keeps a sliding window of send times per (tenant, API class), and one per API class
for the whole process. Every attempt, retries included, passes through it (it sits in the
middleware chain after the retry handler). It uses no asyncio primitive bound to a loop: checking
and recording happen without an await in between, which is atomic on an event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class ApiClass(StrEnum):
    """The throttling families of Graph that PartnerGuard's requests fall into."""

    REPORTS = "reports"
    CONDITIONAL_ACCESS = "conditionalAccess"
    DIRECTORY = "directory"


@dataclass(frozen=True)
class Limit:
    requests: int
    per_seconds: float


@dataclass(frozen=True)
class ClassLimits:
    per_tenant: Limit | None
    per_process: Limit | None


# https://learn.microsoft.com/graph/throttling-limits (see the module docstring).
GRAPH_LIMITS: Mapping[ApiClass, ClassLimits] = {
    ApiClass.REPORTS: ClassLimits(per_tenant=Limit(5, 10.0), per_process=Limit(122, 10.0)),
    ApiClass.CONDITIONAL_ACCESS: ClassLimits(per_tenant=Limit(1, 1.0), per_process=None),
    ApiClass.DIRECTORY: ClassLimits(per_tenant=Limit(1750, 10.0), per_process=None),
}

# Graph counts a request when it arrives, we when we send it: a little slack keeps arrivals of
# consecutive windows from overlapping when latency varies.
SAFETY_MARGIN_SECONDS = 0.2


class _Window:
    """Send times of the last `limit.per_seconds` seconds."""

    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        self.sent: deque[float] = deque()

    def wait_needed(self, now: float, cost: int) -> float:
        horizon = self.limit.per_seconds + SAFETY_MARGIN_SECONDS
        while self.sent and self.sent[0] <= now - horizon:
            self.sent.popleft()
        excess = len(self.sent) + cost - self.limit.requests
        if excess <= 0:
            return 0.0
        # The send that must leave the window before `cost` more fit in.
        return self.sent[excess - 1] + horizon - now

    def record(self, now: float, cost: int) -> None:
        self.sent.extend([now] * cost)


class Pacer:
    def __init__(
        self,
        limits: Mapping[ApiClass, ClassLimits] = GRAPH_LIMITS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limits = limits
        self.clock = clock
        self.sleep = sleep
        self._tenant_windows: dict[tuple[str, ApiClass], _Window] = {}
        self._process_windows: dict[ApiClass, _Window] = {}

    def max_cost(self, api_class: ApiClass) -> int | None:
        """The most sub-requests one request of this class may carry, or None if unbounded."""
        limits = self.limits[api_class]
        caps = [limit.requests for limit in (limits.per_tenant, limits.per_process) if limit is not None]
        return min(caps) if caps else None

    def _windows(self, tenant_id: str, api_class: ApiClass) -> list[_Window]:
        limits = self.limits[api_class]
        windows: list[_Window] = []
        if limits.per_tenant is not None:
            key = (tenant_id.lower(), api_class)
            if key not in self._tenant_windows:
                self._tenant_windows[key] = _Window(limits.per_tenant)
            windows.append(self._tenant_windows[key])
        if limits.per_process is not None:
            if api_class not in self._process_windows:
                self._process_windows[api_class] = _Window(limits.per_process)
            windows.append(self._process_windows[api_class])
        return windows

    async def acquire(self, tenant_id: str, api_class: ApiClass, cost: int = 1) -> float:
        """Wait until `cost` requests of `api_class` may go to `tenant_id`; returns the time waited."""
        if cost < 1:
            raise ValueError("cost must be at least 1")
        maximum = self.max_cost(api_class)
        if maximum is not None and cost > maximum:
            raise ValueError(f"a request costing {cost} can never fit the {api_class} limit of {maximum}")
        windows = self._windows(tenant_id, api_class)
        waited = 0.0
        while True:
            now = self.clock()
            wait = max((window.wait_needed(now, cost) for window in windows), default=0.0)
            if wait <= 0:
                for window in windows:
                    window.record(now, cost)
                return waited
            await self.sleep(wait)
            waited += wait


# One pacer per process: the cross-tenant reports limit is per app, not per client.
PROCESS_PACER = Pacer()

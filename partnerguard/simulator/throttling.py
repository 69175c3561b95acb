"""THE table of Microsoft Graph's throttling limits the simulator enforces, and the limiter.

Source: https://learn.microsoft.com/graph/throttling-limits
- "Identity and access reports service limits" (sign-in logs, the authentication-method
  registration reports, and the per-user authentication methods API): 5 requests per 10 seconds
  per app per tenant, and 122 requests per 10 seconds per app across all tenants. 429 carries
  Retry-After.
- "Conditional Access service limits": 1 request per second per tenant, for all apps together;
  the 429 carries no Retry-After.
- "Identity and access service limits" (directory objects): budgets in resource units, large
  enough that one scan never meets them. The simulator counts requests against a generous
  request budget so that a runaway loop is still answered 429 with Retry-After.

This is the server's side of throttling. It deliberately shares nothing with the client's
pacing table in `partnerguard/graph/`: the point of the simulator is to catch a client whose own
table is wrong.

Windows slide in real time (`time.monotonic`). A `$batch` counts each sub-request on its own.
A rejected request does not consume budget, as Graph's token-bucket behaviour suggests.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum

THROTTLING_DOC = "https://learn.microsoft.com/graph/throttling-limits"


class ApiClass(StrEnum):
    IDENTITY_REPORTS = "identity-reports"
    CONDITIONAL_ACCESS = "conditional-access"
    DIRECTORY = "directory"


class Scope(StrEnum):
    APP_PER_TENANT = "app-per-tenant"
    APP_ACROSS_TENANTS = "app-across-tenants"
    TENANT_ALL_APPS = "tenant-all-apps"


@dataclass(frozen=True)
class ThrottleLimit:
    api_class: ApiClass
    scope: Scope
    requests: int
    window_s: float
    retry_after: bool
    doc: str = THROTTLING_DOC


GRAPH_LIMITS: tuple[ThrottleLimit, ...] = (
    ThrottleLimit(ApiClass.IDENTITY_REPORTS, Scope.APP_PER_TENANT, 5, 10.0, retry_after=True),
    ThrottleLimit(ApiClass.IDENTITY_REPORTS, Scope.APP_ACROSS_TENANTS, 122, 10.0, retry_after=True),
    ThrottleLimit(ApiClass.CONDITIONAL_ACCESS, Scope.TENANT_ALL_APPS, 1, 1.0, retry_after=False),
    ThrottleLimit(ApiClass.DIRECTORY, Scope.APP_PER_TENANT, 3000, 10.0, retry_after=True),
)


@dataclass(frozen=True)
class Rejection:
    limit: ThrottleLimit
    # Whole seconds until the window admits another request (sent only if limit.retry_after).
    retry_after_s: int


class Throttle:
    """Sliding-window counters, one per (limit, scope key). Thread-safe."""

    def __init__(self, limits: Iterable[ThrottleLimit], clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = tuple(limits)
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[tuple[int, str], deque[float]] = {}

    @staticmethod
    def _key(limit: ThrottleLimit, tenant_id: str, app_id: str) -> str:
        if limit.scope is Scope.APP_PER_TENANT:
            return f"{app_id}|{tenant_id}"
        if limit.scope is Scope.APP_ACROSS_TENANTS:
            return app_id
        return tenant_id

    def admit(self, api_class: ApiClass, tenant_id: str, app_id: str) -> Rejection | None:
        """Count one request, or say which limit rejects it (and then count nothing)."""
        now = self._clock()
        with self._lock:
            windows: list[deque[float]] = []
            for index, limit in enumerate(self.limits):
                if limit.api_class is not api_class:
                    continue
                window = self._windows.setdefault((index, self._key(limit, tenant_id, app_id)), deque())
                while window and window[0] <= now - limit.window_s:
                    window.popleft()
                if len(window) >= limit.requests:
                    wait = window[0] + limit.window_s - now
                    return Rejection(limit, max(1, math.ceil(wait)))
                windows.append(window)
            for window in windows:
                window.append(now)
        return None

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()

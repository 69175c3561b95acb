"""THE table of Microsoft Graph's throttling limits the simulator enforces, and the limiter.

Source: https://learn.microsoft.com/graph/throttling-limits
- "Identity and access reports service limits" (sign-in logs, the authentication-method
  registration reports, and the per-user authentication methods API): 5 requests per 10 seconds
  per app per tenant, and 122 requests per 10 seconds per app across all tenants. 429 carries
  Retry-After.
- "Identity protection and conditional access service limits": 1 request per second per tenant,
  for all apps together; the 429 carries no Retry-After.
- "Identity and access service limits" (directory objects: users, groups, applications,
  servicePrincipals, organization, subscribedSkus, policies...): a token bucket of resource
  units (RU) per application+tenant pair, by tenant size — S (under 50 users) 3,500 RU per 10 s,
  M (50 to 500) 5,000, L (above 500) 8,000 — and 150,000 RU per 20 s per application. A request
  costs its path's base cost (`GET users` 2, `applications` 2, `subscribedSkus` 3,
  `groups/{id}/members` 3, `groups/{id}/transitiveMembers` 5, ...; anything else 1), minus 1 with
  `$select`, plus 1 with `$expand`, minus 1 with `$top` under 20, never below 1. A throttled
  response names its scope in `x-ms-throttle-scope` (`<Scope>/<Limit>/<AppId>/<TenantId>`).

This is the server's side of throttling. It deliberately shares nothing with the client's
pacing table in `partnerguard/graph/`: the point of the simulator is to catch a client whose own
table is wrong.

Windows slide in real time (`time.monotonic`); the token buckets are modelled as sliding windows
of the same size, which never admit more than a bucket would over a window. A `$batch` counts
each sub-request on its own. A rejected request does not consume budget, as Graph's token-bucket
behaviour suggests.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qsl

THROTTLING_DOC = "https://learn.microsoft.com/graph/throttling-limits"


class ApiClass(StrEnum):
    IDENTITY_REPORTS = "identity-reports"
    CONDITIONAL_ACCESS = "conditional-access"
    DIRECTORY = "directory"


class Scope(StrEnum):
    APP_PER_TENANT = "app-per-tenant"
    APP_ACROSS_TENANTS = "app-across-tenants"
    TENANT_ALL_APPS = "tenant-all-apps"


# What Graph writes as the first segment of x-ms-throttle-scope for each scope.
THROTTLE_SCOPE_NAMES = {
    Scope.APP_PER_TENANT: "Tenant_Application",
    Scope.APP_ACROSS_TENANTS: "Application",
    Scope.TENANT_ALL_APPS: "Tenant",
}


@dataclass(frozen=True)
class ThrottleLimit:
    api_class: ApiClass
    scope: Scope
    requests: int  # units: requests, or resource units for the directory
    window_s: float
    retry_after: bool
    doc: str = THROTTLING_DOC
    # The tenant sizes (user counts, inclusive) this limit applies to; None: any size.
    min_users: int = 0
    max_users: int | None = None

    def applies_to(self, tenant_users: int) -> bool:
        return tenant_users >= self.min_users and (self.max_users is None or tenant_users <= self.max_users)


GRAPH_LIMITS: tuple[ThrottleLimit, ...] = (
    ThrottleLimit(ApiClass.IDENTITY_REPORTS, Scope.APP_PER_TENANT, 5, 10.0, retry_after=True),
    ThrottleLimit(ApiClass.IDENTITY_REPORTS, Scope.APP_ACROSS_TENANTS, 122, 10.0, retry_after=True),
    ThrottleLimit(ApiClass.CONDITIONAL_ACCESS, Scope.TENANT_ALL_APPS, 1, 1.0, retry_after=False),
    ThrottleLimit(ApiClass.DIRECTORY, Scope.APP_PER_TENANT, 3500, 10.0, retry_after=True, max_users=49),
    ThrottleLimit(ApiClass.DIRECTORY, Scope.APP_PER_TENANT, 5000, 10.0, retry_after=True, min_users=50, max_users=500),
    ThrottleLimit(ApiClass.DIRECTORY, Scope.APP_PER_TENANT, 8000, 10.0, retry_after=True, min_users=501),
    ThrottleLimit(ApiClass.DIRECTORY, Scope.APP_ACROSS_TENANTS, 150_000, 20.0, retry_after=True),
)

# Base resource-unit costs of directory GETs ("Identity and access service limits"); paths not
# listed cost 1.
_RESOURCE_UNIT_BASE_COSTS: tuple[tuple[re.Pattern[str], int], ...] = tuple(
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
        (r"^/me/(licenseDetails|memberOf|ownedObjects|transitiveMemberOf)/?$", 2),
    )
)


def resource_units(path: str, query: str) -> int:
    """What a directory GET of `path` (after the version) with `query` costs."""
    normalised = "/" + path.strip("/")
    cost = next((base for pattern, base in _RESOURCE_UNIT_BASE_COSTS if pattern.match(normalised)), 1)
    options = {name.lower(): value for name, value in parse_qsl(query, keep_blank_values=True)}
    if "$select" in options:
        cost -= 1
    if "$expand" in options:
        cost += 1
    top = options.get("$top", "")
    if top.isdigit() and int(top) < 20:
        cost -= 1
    return max(1, cost)


@dataclass(frozen=True)
class Rejection:
    limit: ThrottleLimit
    # Whole seconds until the window admits another request (sent only if limit.retry_after).
    retry_after_s: int

    def scope_header(self, app_id: str, tenant_id: str) -> str:
        """Graph's x-ms-throttle-scope value for this rejection."""
        return f"{THROTTLE_SCOPE_NAMES[self.limit.scope]}/Read/{app_id}/{tenant_id}"


class Throttle:
    """Sliding-window counters, one per (limit, scope key). Thread-safe."""

    def __init__(self, limits: Iterable[ThrottleLimit], clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = tuple(limits)
        self._clock = clock
        self._lock = threading.Lock()
        # Each window holds (time, units) and the sum of its units.
        self._windows: dict[tuple[int, str], tuple[deque[tuple[float, int]], list[int]]] = {}

    @staticmethod
    def _key(limit: ThrottleLimit, tenant_id: str, app_id: str) -> str:
        if limit.scope is Scope.APP_PER_TENANT:
            return f"{app_id}|{tenant_id}"
        if limit.scope is Scope.APP_ACROSS_TENANTS:
            return app_id
        return tenant_id

    def admit(
        self, api_class: ApiClass, tenant_id: str, app_id: str, cost: int = 1, tenant_users: int = 0
    ) -> Rejection | None:
        """Count one request of `cost` units, or say which limit rejects it (and then count nothing)."""
        now = self._clock()
        with self._lock:
            windows: list[tuple[deque[tuple[float, int]], list[int]]] = []
            for index, limit in enumerate(self.limits):
                if limit.api_class is not api_class or not limit.applies_to(tenant_users):
                    continue
                window, used = self._windows.setdefault((index, self._key(limit, tenant_id, app_id)), (deque(), [0]))
                while window and window[0][0] <= now - limit.window_s:
                    used[0] -= window.popleft()[1]
                if used[0] + cost > limit.requests:
                    # When enough units will have left the window for this request to fit.
                    excess, freed, wait = used[0] + cost - limit.requests, 0, limit.window_s
                    for sent, units in window:
                        freed += units
                        if freed >= excess:
                            wait = sent + limit.window_s - now
                            break
                    return Rejection(limit, max(1, math.ceil(wait)))
                windows.append((window, used))
            for window, used in windows:
                window.append((now, cost))
                used[0] += cost
        return None

    def reset(self) -> None:
        with self._lock:
            self._windows.clear()

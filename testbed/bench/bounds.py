"""The least wall time Graph's limits allow for the requests a scan made.

The limits come from the simulator's own table (`testbed.simulator.throttling.GRAPH_LIMITS`,
which cites Microsoft's page), never from the client's pacing table: a bound computed from the
client's table would only measure the client against itself.

For one limit of L units per W seconds (a sliding window) and n units that Graph admitted
within its scope (a tenant, or the whole app), the first L may arrive at once and every further
L need another window: the last arrives no earlier than floor((n − 1) / L) · W after the first.
Requests answered 429 cost nothing and are not counted. The first request arrives one latency
after the scan starts, and its answer takes no time in the bound, so

    bound = latency + max over limits and scopes of floor((n − 1) / L) · W

which ignores everything else (sign-in, processing, storage) and is therefore a true lower bound.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from testbed.simulator.throttling import GRAPH_LIMITS, Scope, ThrottleLimit


@dataclass(frozen=True)
class Bound:
    seconds: float
    # The limit that sets it, e.g. "identity-reports, app-per-tenant: 35 units at 5 per 10 s".
    binding: str


def window_bound(units: int, limit: ThrottleLimit) -> float:
    """Seconds between the first and the last of `units` units under `limit`."""
    if units <= 0:
        return 0.0
    return math.floor((units - 1) / limit.requests) * limit.window_s


def lower_bound(
    admitted_units: Mapping[str, Mapping[str, int]],
    tenant_users: Mapping[str, int],
    latency_s: float,
    limits: Sequence[ThrottleLimit] = GRAPH_LIMITS,
) -> Bound:
    """`admitted_units`: API class → tenant → units Graph admitted (the simulator's stats);
    `tenant_users`: each tenant's user count (the directory tiers depend on it)."""
    best = 0.0
    binding = "no request"
    for limit in limits:
        per_tenant = admitted_units.get(limit.api_class.value, {})
        if limit.scope is Scope.APP_ACROSS_TENANTS:
            groups = {"all tenants": sum(per_tenant.values())}
        else:
            groups = {
                tenant: units for tenant, units in per_tenant.items() if limit.applies_to(tenant_users.get(tenant, 0))
            }
        for scope_key, units in groups.items():
            seconds = window_bound(units, limit)
            if seconds > best or binding == "no request":
                best = seconds
                where = "across tenants" if scope_key == "all tenants" else "per tenant"
                binding = f"{limit.api_class.value} {where}: {units} units at {limit.requests} per {limit.window_s:g} s"
    return Bound(latency_s + best, binding)

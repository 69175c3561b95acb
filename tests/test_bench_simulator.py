"""The simulator features the benchmark relies on: resource units for directory reads, a noisy
neighbour sharing the Conditional Access budget, realistic sign-in volumes, and request stats."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from testbed.simulator import TenantSimulator, generate_tenant
from testbed.simulator.generate import generate_sign_ins
from testbed.simulator.neighbours import NoisyNeighbour
from testbed.simulator.process import request_stats
from testbed.simulator.recording import RequestRecord
from testbed.simulator.throttling import GRAPH_LIMITS, ApiClass, Throttle, resource_units
from tests.simulator_http import client

TENANT = "5a5a5a5a-0000-4000-8000-000000000001"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_directory_reads_cost_the_resource_units_microsoft_lists() -> None:
    assert resource_units("/users", "$select=id,displayName&$top=999") == 1
    assert resource_units("/users", "") == 2
    assert resource_units("/subscribedSkus", "$select=id") == 2
    assert resource_units("/groups/g1/transitiveMembers", "$select=id&$top=999") == 4
    assert resource_units("/groups/g1/members", "$top=10") == 2
    assert resource_units("/organization", "$select=id") == 1


def test_the_directory_budget_depends_on_the_tenant_size() -> None:
    now = [0.0]
    throttle = Throttle(GRAPH_LIMITS, clock=lambda: now[0])
    # Tier S (under 50 users): 3,500 units per 10 s; a `GET users` without $select costs 2.
    assert all(throttle.admit(ApiClass.DIRECTORY, "small", "app", cost=2, tenant_users=10) is None for _ in range(1750))
    rejection = throttle.admit(ApiClass.DIRECTORY, "small", "app", cost=2, tenant_users=10)
    assert rejection is not None and rejection.limit.requests == 3500
    assert rejection.scope_header("app", "small") == "Tenant_Application/Read/app/small"

    # Tier L (above 500 users): 8,000.
    def large() -> object:
        return throttle.admit(ApiClass.DIRECTORY, "large", "app", cost=2, tenant_users=900)

    assert all(large() is None for _ in range(4000))
    assert large() is not None
    now[0] = 10.0
    assert large() is None


def test_a_noisy_neighbour_spends_the_tenants_conditional_access_budget() -> None:
    tenant = generate_tenant(TENANT, 20, seed=3)
    # Fifty requests a second from another app: the shared one-per-second budget is always spent.
    neighbour = NoisyNeighbour(TENANT, rate_per_s=50.0)
    with TenantSimulator([tenant], noisy_neighbours=[neighbour]) as sim, client(sim, TENANT) as http:
        deadline = time.monotonic() + 5
        while neighbour.admitted == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        answer = http.get("/v1.0/identity/conditionalAccess/policies")
    assert neighbour.admitted >= 1
    assert answer.status_code == 429
    assert "Retry-After" not in answer.headers  # Conditional Access gives none
    assert neighbour._thread is None  # stopped with the simulator


def test_sign_in_volumes_follow_the_rates_with_both_event_types() -> None:
    tenant = generate_tenant(TENANT, 200, seed=3)
    enabled = {user["id"] for user in tenant.users if user["accountEnabled"]}
    added = generate_sign_ins(tenant, NOW, 2.0, interactive_per_user_hour=0.5, non_interactive_per_user_hour=3.0)
    assert added == len(tenant.sign_ins) == round(len(enabled) * 2 * 0.5) + round(len(enabled) * 2 * 3.0)
    kinds = [row["signInEventTypes"][0] for row in tenant.sign_ins]
    assert kinds.count("interactiveUser") == round(len(enabled) * 2 * 0.5)
    assert kinds.count("nonInteractiveUser") == round(len(enabled) * 2 * 3.0)
    assert {row["userId"] for row in tenant.sign_ins} <= enabled
    earliest = (NOW - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert all(earliest <= row["createdDateTime"] <= NOW.strftime("%Y-%m-%dT%H:%M:%SZ") for row in tenant.sign_ins)
    single = [row for row in tenant.sign_ins if row["authenticationRequirement"] == "singleFactorAuthentication"]
    assert 0 < len(single) < len(tenant.sign_ins) // 20
    assert len({row["userId"] for row in single}) <= 2  # a few careless users, not everyone


def test_request_stats_count_sub_requests_and_admitted_units() -> None:
    records = [
        RequestRecord("POST", "/v1.0/$batch", "", 200, "t1", None, 1.0),
        RequestRecord("GET", "/v1.0/users", "$select=id", 200, "t1", "directory", 1.0, in_batch=True),
        RequestRecord("GET", "/v1.0/users", "", 200, "t1", "directory", 1.1),
        RequestRecord("GET", "/v1.0/auditLogs/signIns", "", 200, "t1", "identity-reports", 1.2),
        RequestRecord("GET", "/v1.0/auditLogs/signIns", "", 429, "t1", "identity-reports", 1.3),
        RequestRecord("GET", "/v1.0/auditLogs/signIns", "", 200, "t2", "identity-reports", 1.4),
        RequestRecord("POST", "/t1/oauth2/v2.0/token", "", 200, "t1", None, 0.5),
    ]
    stats = request_stats(records)
    assert stats["requests"] == 5 and stats["throttled"] == 1 and stats["batches"] == 1
    assert stats["admitted_units"] == {"directory": {"t1": 3}, "identity-reports": {"t1": 1, "t2": 1}}
    assert stats["throttled_by_class"] == {"identity-reports": 1}

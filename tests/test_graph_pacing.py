"""The client's pacer keeps to Graph's published limits, on a fake clock."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from partnerguard.graph.client import _app_wide_scope
from partnerguard.graph.pacing import (
    GRAPH_LIMITS,
    MAX_BACKOFF_SECONDS,
    SAFETY_MARGIN_SECONDS,
    ApiClass,
    Pacer,
    graph_limits,
    request_cost,
)
from partnerguard.graph.requests import (
    CONDITIONAL_ACCESS_POLICIES,
    USER_AUTHENTICATION_METHODS,
    USER_REGISTRATION_DETAILS,
)
from testbed.simulator import TenantSimulator, generate_tenant
from tests.graph_sim import fast_client, fast_pacer, run, secret_settings

TENANT_A = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
TENANT_B = "c0ffee00-1b2c-4d3e-8f90-a1b2c3d4e5f6"


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)  # let other tasks run, as a real sleep would


def make_pacer(limits=GRAPH_LIMITS) -> tuple[Pacer, FakeTime]:
    fake = FakeTime()
    return Pacer(limits, clock=fake.clock, sleep=fake.sleep, jitter=lambda: 1.0), fake


def send_times(
    pacer: Pacer, fake: FakeTime, calls: list[tuple[str, ApiClass, int]], latency: float = 0.0
) -> list[float]:
    """Send each call in turn; each is answered `latency` seconds after it was sent."""

    async def run() -> list[float]:
        times = []
        for tenant, api_class, cost in calls:
            reservation = await pacer.acquire(tenant, api_class, cost)
            times.append(fake.now)
            fake.now += latency
            reservation.settle()
        return times

    return asyncio.run(run())


def max_in_any_window(times: list[float], window: float) -> int:
    return max(sum(1 for t in times if start <= t < start + window) for start in times)


def test_reports_allow_five_per_ten_seconds_per_tenant() -> None:
    pacer, fake = make_pacer()
    times = send_times(pacer, fake, [(TENANT_A, ApiClass.REPORTS, 1)] * 12)
    assert times[:5] == [1000.0] * 5
    assert times[5] == pytest.approx(1000.0 + 10.0 + SAFETY_MARGIN_SECONDS)
    assert max_in_any_window(times, 10.0) == 5


def test_tenants_have_separate_report_windows() -> None:
    pacer, fake = make_pacer()
    times = send_times(pacer, fake, [(TENANT_A, ApiClass.REPORTS, 1)] * 5 + [(TENANT_B, ApiClass.REPORTS, 1)] * 5)
    assert times == [1000.0] * 10
    assert fake.sleeps == []


def test_reports_limit_across_tenants_is_122_per_ten_seconds() -> None:
    pacer, fake = make_pacer()
    tenants = [f"00000000-0000-0000-0000-{n:012d}" for n in range(40)]
    calls = [(tenant, ApiClass.REPORTS, 1) for tenant in tenants for _ in range(5)]  # 200 requests
    times = send_times(pacer, fake, calls)
    assert max_in_any_window(times, 10.0) == 122
    assert times[121] == 1000.0
    assert times[122] > 1010.0


def test_conditional_access_one_per_second() -> None:
    pacer, fake = make_pacer()
    times = send_times(pacer, fake, [(TENANT_A, ApiClass.CONDITIONAL_ACCESS, 1)] * 4)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert len(gaps) == 3
    assert all(gap >= 1.0 for gap in gaps)


def test_batch_sub_requests_count_one_by_one() -> None:
    pacer, fake = make_pacer()
    times = send_times(pacer, fake, [(TENANT_A, ApiClass.REPORTS, 5), (TENANT_A, ApiClass.REPORTS, 1)])
    assert times[0] == 1000.0
    assert times[1] > 1010.0


def test_a_request_bigger_than_the_window_is_refused() -> None:
    pacer, _ = make_pacer()
    assert pacer.max_cost(ApiClass.REPORTS) == 5
    with pytest.raises(ValueError, match="never fit"):
        asyncio.run(pacer.acquire(TENANT_A, ApiClass.REPORTS, 6))


def test_tenant_ids_are_case_insensitive() -> None:
    pacer, fake = make_pacer()
    times = send_times(pacer, fake, [(TENANT_A, ApiClass.REPORTS, 3), (TENANT_A.upper(), ApiClass.REPORTS, 3)])
    assert times[1] > 1010.0


def test_a_window_frees_units_one_window_after_the_answer_not_after_the_send() -> None:
    # Graph counts a request when it arrives, which may be as late as the answer: a slow answer
    # delays the next window by its latency, never less.
    pacer, fake = make_pacer()
    times = send_times(pacer, fake, [(TENANT_A, ApiClass.REPORTS, 1)] * 6, latency=0.5)
    assert times[:5] == [1000.0, 1000.5, 1001.0, 1001.5, 1002.0]
    assert times[5] == pytest.approx(1000.5 + 10.0 + SAFETY_MARGIN_SECONDS)


def test_units_held_by_a_request_in_flight_are_not_freed_by_the_clock() -> None:
    pacer, fake = make_pacer()

    async def run() -> float:
        first = await pacer.acquire(TENANT_A, ApiClass.CONDITIONAL_ACCESS)
        fake.now += 5.0  # far past the 1 s window, but no answer yet

        async def answer_later() -> None:
            await asyncio.sleep(0)
            first.settle()

        answering = asyncio.ensure_future(answer_later())
        second = await pacer.acquire(TENANT_A, ApiClass.CONDITIONAL_ACCESS)
        await answering
        second.settle()
        return fake.now

    sent = asyncio.run(run())
    assert fake.sleeps, "the second request waited for the first one's answer"
    assert sent >= 1005.0 + 1.0


def test_a_429_with_retry_after_holds_back_the_tenant_window_only() -> None:
    pacer, fake = make_pacer()
    send_times(pacer, fake, [(TENANT_A, ApiClass.REPORTS, 1)])
    assert pacer.throttled(TENANT_A, ApiClass.REPORTS, 7.0) == 7.0
    times = send_times(pacer, fake, [(TENANT_B, ApiClass.REPORTS, 1), (TENANT_A, ApiClass.REPORTS, 1)])
    assert times == [1000.0, 1007.0]


def test_a_429_without_retry_after_backs_off_exponentially_from_the_window_length() -> None:
    pacer, _ = make_pacer()
    pauses = [pacer.throttled(TENANT_A, ApiClass.CONDITIONAL_ACCESS, None) for _ in range(8)]
    assert pauses[:4] == [1.0, 2.0, 4.0, 8.0]
    assert max(pauses) == MAX_BACKOFF_SECONDS
    pacer.succeeded(TENANT_A, ApiClass.CONDITIONAL_ACCESS)
    assert pacer.throttled(TENANT_A, ApiClass.CONDITIONAL_ACCESS, None) == 1.0


def test_an_app_wide_429_holds_back_every_tenant() -> None:
    pacer, fake = make_pacer()
    pacer.throttled(TENANT_A, ApiClass.REPORTS, 3.0, app_wide=True)
    assert send_times(pacer, fake, [(TENANT_B, ApiClass.REPORTS, 1)]) == [1003.0]


def test_the_app_wide_limits_are_shared_between_scanning_processes() -> None:
    two = graph_limits(processes=2)
    shared = two[ApiClass.REPORTS].per_process
    assert shared is not None and shared.requests == 61
    assert two[ApiClass.REPORTS].per_tenant == GRAPH_LIMITS[ApiClass.REPORTS].per_tenant
    with pytest.raises(ValueError, match="at least 1"):
        graph_limits(processes=0)


def test_directory_reads_cost_resource_units_as_microsoft_lists_them() -> None:
    assert request_cost(ApiClass.DIRECTORY, "/users?$select=id,displayName&$top=999") == 1
    assert request_cost(ApiClass.DIRECTORY, "/users") == 2
    assert request_cost(ApiClass.DIRECTORY, "/subscribedSkus?$select=id") == 2
    assert request_cost(ApiClass.DIRECTORY, "/groups/abc/transitiveMembers?$select=id&$top=999") == 4
    assert request_cost(ApiClass.DIRECTORY, "/organization?$select=id") == 1
    assert request_cost(ApiClass.DIRECTORY, "/groups/abc?$expand=members") == 2
    assert request_cost(ApiClass.REPORTS, "/users") == 1


def test_resource_units_fill_the_directory_window() -> None:
    pacer, fake = make_pacer()
    times = send_times(pacer, fake, [(TENANT_A, ApiClass.DIRECTORY, 5)] * 701)
    assert times[699] == 1000.0  # 700 x 5 = 3,500 units
    assert times[700] > 1010.0


def test_waiters_of_one_window_are_served_in_order() -> None:
    pacer, _ = make_pacer()

    async def run() -> list[int]:
        order: list[int] = []

        async def one(number: int) -> None:
            reservation = await pacer.acquire(TENANT_A, ApiClass.CONDITIONAL_ACCESS)
            order.append(number)
            reservation.settle()

        await asyncio.gather(*(one(n) for n in range(5)))
        return order

    assert asyncio.run(run()) == [0, 1, 2, 3, 4]


# -- the client and the pacer, against the simulator ------------------------------------------


def _simulator_tenant() -> TenantSimulator:
    return TenantSimulator([generate_tenant(TENANT_A, 30, seed=4, role="partner")], enforce_limits=False)


def test_a_throttled_request_holds_back_its_window_and_is_retried() -> None:
    pacer = Pacer(GRAPH_LIMITS)
    with _simulator_tenant() as sim:
        sim.inject_fault(r"/reports/authenticationMethods/userRegistrationDetails", status=429, retry_after=1)
        settings = secret_settings(sim)

        async def read() -> list[dict[str, object]]:
            async with fast_client(settings, TENANT_A, pacer=pacer) as client:
                return await client.collect(USER_REGISTRATION_DETAILS.request())

        rows = run(read())
    assert len(rows) == 30 - 30 // 100  # every enabled user's row, after the retry
    assert pacer.throttled_count == 1
    window = pacer._tenant_window(TENANT_A, ApiClass.REPORTS)
    assert window is not None and window.blocked_until > 0  # Retry-After held the window
    # The failed attempt and the retry both count against the tenant's 5 per 10 s.
    assert window.used == 2


def test_conditional_access_429_without_retry_after_backs_off_and_succeeds() -> None:
    pacer = Pacer(GRAPH_LIMITS, jitter=lambda: 0.1)  # short pauses keep the test quick
    with _simulator_tenant() as sim:
        sim.inject_fault(r"/identity/conditionalAccess/policies", status=429, times=2)
        settings = secret_settings(sim)

        async def read() -> list[dict[str, object]]:
            async with fast_client(settings, TENANT_A, pacer=pacer) as client:
                return await client.collect(CONDITIONAL_ACCESS_POLICIES.request())

        policies = run(read())
        statuses = [r.status for r in sim.requests if r.path.endswith("/conditionalAccess/policies")]
    assert len(policies) == 1
    assert statuses == [429, 429, 200]
    assert pacer.throttled_count == 2


def test_an_application_scope_names_the_app_wide_window() -> None:
    assert _app_wide_scope("Application/Read/app/tenant")
    assert not _app_wide_scope("Tenant_Application/Read/app/tenant")
    assert not _app_wide_scope(None)


def test_throttled_batch_sub_requests_hold_back_the_window_once_per_batch() -> None:
    pacer = fast_pacer()  # Graph's counts in tiny windows: only the Retry-After is waited for
    with _simulator_tenant() as sim:
        user_ids = [user["id"] for user in sim.tenant(TENANT_A).users[:5]]
        # Three of the five sub-requests of the first batch meet a 429 with Retry-After.
        sim.inject_fault(r"/authentication/methods$", status=429, times=3, retry_after=1)
        settings = secret_settings(sim)

        async def read() -> list[int]:
            async with fast_client(settings, TENANT_A, pacer=pacer) as client:
                results = await client.batch(
                    [USER_AUTHENTICATION_METHODS.request(user_id=user_id) for user_id in user_ids]
                )
                return [result.status for result in results]

        statuses = run(read())
    assert statuses == [200] * 5  # the three were retried
    assert pacer.throttled_count == 1


def test_requests_in_flight_are_counted_until_answered_once() -> None:
    """`in_flight` (what the bench's virtual clock waits for) counts reservations not yet
    settled, limited or not; settling twice counts once."""
    pacer, _ = make_pacer()

    async def run_both() -> list[int]:
        seen = [pacer.in_flight]
        first = await pacer.acquire(TENANT_A, ApiClass.REPORTS)
        second = await pacer.acquire(TENANT_A, ApiClass.DIRECTORY, 2)
        seen.append(pacer.in_flight)
        first.settle()
        first.settle()
        seen.append(pacer.in_flight)
        second.settle()
        seen.append(pacer.in_flight)
        return seen

    assert asyncio.run(run_both()) == [0, 2, 1, 0]

"""The client's pacer keeps to Graph's published limits, on a fake clock."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from partnerguard.graph.pacing import GRAPH_LIMITS, SAFETY_MARGIN_SECONDS, ApiClass, Pacer

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


def make_pacer() -> tuple[Pacer, FakeTime]:
    fake = FakeTime()
    return Pacer(GRAPH_LIMITS, clock=fake.clock, sleep=fake.sleep), fake


def send_times(pacer: Pacer, fake: FakeTime, calls: list[tuple[str, ApiClass, int]]) -> list[float]:
    async def run() -> list[float]:
        times = []
        for tenant, api_class, cost in calls:
            await pacer.acquire(tenant, api_class, cost)
            times.append(fake.now)
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

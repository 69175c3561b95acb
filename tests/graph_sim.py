"""Helpers for the Graph-access tests that drive the tenant simulator over loopback HTTPS."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Coroutine, Iterable
from dataclasses import replace
from typing import Any, TypeVar

import pytest

from partnerguard.graph import client as graph_client
from partnerguard.graph.client import GraphClient
from partnerguard.graph.pacing import GRAPH_LIMITS, ClassLimits, Limit, Pacer
from partnerguard.settings import Settings
from testbed.simulator import GRAPH_LIMITS as SIMULATOR_LIMITS
from testbed.simulator import TenantScenario, TenantSimulator, ThrottleLimit

T = TypeVar("T")

# Generated tenants of these tests (not the bundled ones: the tests set their own populations).
PARTNER = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
UNLICENSED = "0a0a0a0a-1111-4222-8333-444444444444"
NO_AUDIT_LOG = "0b0b0b0b-1111-4222-8333-444444444444"
NOT_CONSENTED = "0c0c0c0c-1111-4222-8333-444444444444"
COVERED = "0d0d0d0d-1111-4222-8333-444444444444"
DEFAULTS_ON = "0e0e0e0e-1111-4222-8333-444444444444"


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def secret_settings(sim: TenantSimulator, **overrides: str) -> Settings:
    return Settings.from_env({**sim.environment(), **overrides})


def fast_client(settings: Settings, tenant_id: str, **options: Any) -> GraphClient:
    """A client that retries quickly, so fault tests take a second, not a minute."""
    return GraphClient(settings, tenant_id, retry_delay_seconds=0.05, **options)


def fast_pacer() -> Pacer:
    """Graph's request counts per window (so batch sizes stay 5 for reports), tiny windows."""
    return Pacer(
        {
            api_class: ClassLimits(
                per_tenant=Limit(limits.per_tenant.requests, 0.01) if limits.per_tenant else None,
                per_process=Limit(limits.per_process.requests, 0.01) if limits.per_process else None,
            )
            for api_class, limits in GRAPH_LIMITS.items()
        }
    )


# The simulator's copy of Graph's windows (10 s, 1 s, 20 s), shortened a thousandfold in
# `fast_limits`: 10 ms, 1 ms, 20 ms, never longer than `fast_pacer`'s (10 ms plus the pacer's
# safety margin), so a scan paced by it stays within them as a really paced scan stays within Graph's.
FAST_WINDOW_SCALE = 0.001


def fast_limits() -> tuple[ThrottleLimit, ...]:
    """Graph's limits as the simulator enforces them, with the same counts and tiny windows."""
    return tuple(replace(limit, window_s=limit.window_s * FAST_WINDOW_SCALE) for limit in SIMULATOR_LIMITS)


def fast_simulator(scenarios: Iterable[TenantScenario] | None = None, **options: Any) -> TenantSimulator:
    """A simulator that still refuses (429) whatever breaks Graph's request counts, over `fast_limits`
    windows: scans paced by `pacer_for(simulator)` take a second, not Graph's ten-second windows."""
    return TenantSimulator(scenarios, limits=fast_limits(), **options)


_PACERS: weakref.WeakKeyDictionary[TenantSimulator, Pacer] = weakref.WeakKeyDictionary()


def pacer_for(simulator: TenantSimulator) -> Pacer | None:
    """The pacer for scans of `simulator`: a `fast_pacer`, one per simulator (its windows outlive a
    test as the simulator's do), when the simulator enforces `fast_limits` or no limits; None when
    it enforces Graph's real windows, which only the process's real pacer respects."""
    if simulator.enforce_limits and simulator.limits != fast_limits():
        return None
    pacer = _PACERS.get(simulator)
    if pacer is None:
        pacer = _PACERS[simulator] = fast_pacer()
    return pacer


def pace_to(simulator: TenantSimulator, patch: pytest.MonkeyPatch) -> None:
    """Scans (which take `partnerguard.graph.client.PROCESS_PACER`) use `pacer_for(simulator)`,
    for as long as `patch` lasts; nothing changes for a simulator with Graph's real windows."""
    pacer = pacer_for(simulator)
    if pacer is not None:
        patch.setattr(graph_client, "PROCESS_PACER", pacer)

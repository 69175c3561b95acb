"""Helpers for the Graph-access tests that drive the tenant simulator over loopback HTTPS."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from partnerguard.graph.client import GraphClient
from partnerguard.graph.pacing import GRAPH_LIMITS, ClassLimits, Limit, Pacer
from partnerguard.settings import Settings
from testbed.simulator import TenantSimulator

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

"""The per-tenant scan guard on Azurite: one holder at a time, ETag-conditioned writes, a
time-to-live that frees a tenant whose worker crashed, and release only by the holder."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError
from azure.data.tables import TableServiceClient, UpdateMode

from partnerguard.storage.scan_guard import GUARD_ROW, ScanGuard
from testbed.azurite import AzuriteProcess

pytestmark = pytest.mark.azurite

TENANT = "c0ffee00-1b2c-4d3e-8f90-a1b2c3d4e5f6"
OTHER_TENANT = "5e1d2c3b-4a59-4687-9a0b-1c2d3e4f5a6b"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=40)
RUN_A = "8235746000000-aaaaaaaaaa"
RUN_B = "8235746000000-bbbbbbbbbb"


@pytest.fixture
def guard(azurite: AzuriteProcess, table_prefix: str) -> Iterator[ScanGuard]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    guard = ScanGuard(service, table_prefix)
    guard.ensure_tables()
    yield guard
    service.delete_table(guard.table.table_name)
    guard.close()


def test_one_run_holds_a_tenant_at_a_time(guard: ScanGuard) -> None:
    assert guard.holder(TENANT, NOW) is None
    assert guard.acquire(TENANT, RUN_A, NOW, TTL) is None
    holder = guard.acquire(TENANT, RUN_B, NOW + timedelta(minutes=1), TTL)
    assert holder is not None
    assert (holder.run_id, holder.status, holder.since, holder.expires) == (RUN_A, "queued", NOW, NOW + TTL)
    # Acquiring again for the same run is not a conflict (a producer retrying its own write).
    assert guard.acquire(TENANT, RUN_A, NOW + timedelta(minutes=2), TTL) is None
    # Tenants are independent, and case does not make a second tenant.
    assert guard.acquire(OTHER_TENANT, RUN_B, NOW, TTL) is None
    assert guard.acquire(TENANT.upper(), RUN_B, NOW, TTL) is not None


def test_an_expired_guard_is_free_and_taken_over(guard: ScanGuard) -> None:
    guard.acquire(TENANT, RUN_A, NOW, TTL)
    assert guard.holder(TENANT, NOW + TTL - timedelta(seconds=1)) is not None
    assert guard.holder(TENANT, NOW + TTL) is None  # a crashed worker blocks the tenant one TTL, no more
    assert guard.acquire(TENANT, RUN_B, NOW + TTL, TTL) is None
    holder = guard.holder(TENANT, NOW + TTL)
    assert holder is not None and holder.run_id == RUN_B


def test_mark_running_renews_the_time_to_live(guard: ScanGuard) -> None:
    guard.acquire(TENANT, RUN_A, NOW, TTL)
    later = NOW + timedelta(minutes=30)
    assert guard.mark_running(TENANT, RUN_A, later, TTL) is None
    holder = guard.holder(TENANT, later)
    assert holder is not None and (holder.status, holder.since, holder.expires) == ("running", later, later + TTL)
    # Another run cannot start while this one is live...
    blocked = guard.mark_running(TENANT, RUN_B, later, TTL)
    assert blocked is not None and blocked.run_id == RUN_A
    # ...and a run whose guard was released or never written starts anyway.
    assert guard.mark_running(OTHER_TENANT, RUN_B, later, TTL) is None


def test_only_the_holder_releases(guard: ScanGuard) -> None:
    guard.acquire(TENANT, RUN_A, NOW, TTL)
    assert guard.release(TENANT, RUN_B) is False
    assert guard.holder(TENANT, NOW) is not None
    assert guard.release(TENANT, RUN_A) is True
    assert guard.holder(TENANT, NOW) is None
    assert guard.release(TENANT, RUN_A) is False


def test_a_late_release_never_frees_the_next_holder(guard: ScanGuard) -> None:
    """A worker whose guard expired and was taken over must not release the new holder's guard."""
    guard.acquire(TENANT, RUN_A, NOW, TTL)
    guard.acquire(TENANT, RUN_B, NOW + TTL, TTL)  # RUN_A's worker was presumed dead
    assert guard.release(TENANT, RUN_A) is False
    holder = guard.holder(TENANT, NOW + TTL)
    assert holder is not None and holder.run_id == RUN_B


def test_writes_are_etag_conditioned(guard: ScanGuard) -> None:
    """What makes the guard race-free: a write based on a stale read is refused by the service."""
    guard.acquire(TENANT, RUN_A, NOW, TTL)
    stale = guard.table.get_entity(TENANT, GUARD_ROW)
    guard.mark_running(TENANT, RUN_A, NOW + timedelta(minutes=1), TTL)
    with pytest.raises(ResourceModifiedError):
        guard.table.update_entity(
            {**stale, "run_id": RUN_B},
            mode=UpdateMode.REPLACE,
            etag=stale.metadata["etag"],
            match_condition=MatchConditions.IfNotModified,
        )


@pytest.mark.parametrize("expired", [False, True])
def test_concurrent_acquirers_have_exactly_one_winner(guard: ScanGuard, expired: bool) -> None:
    """Creating a free guard and taking over an expired one both admit one writer."""
    at = NOW
    if expired:
        guard.acquire(TENANT, "8235746000000-0000000000", NOW - 2 * TTL, TTL)
    runs = [f"8235746000000-{i:010d}" for i in range(1, 11)]
    results: dict[str, object] = {}
    start = threading.Barrier(len(runs))

    def acquire(run_id: str) -> None:
        start.wait()
        results[run_id] = guard.acquire(TENANT, run_id, at, TTL)

    threads = [threading.Thread(target=acquire, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [run for run, holder in results.items() if holder is None]
    assert len(winners) == 1
    current = guard.holder(TENANT, at)
    assert current is not None and current.run_id == winners[0]


def test_bad_input_is_refused(guard: ScanGuard) -> None:
    with pytest.raises(ValueError, match="run id"):
        guard.acquire(TENANT, "not a run id", NOW, TTL)
    with pytest.raises(ValueError, match="time-to-live"):
        guard.acquire(TENANT, RUN_A, NOW, timedelta(0))
    with pytest.raises(ValueError, match="timezone"):
        guard.acquire(TENANT, RUN_A, NOW.replace(tzinfo=None), TTL)
    with pytest.raises(ValueError, match="prefix"):
        ScanGuard(guard.service, "bad-prefix")

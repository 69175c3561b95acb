"""The mfa.registration fallback (SPEC §1): each user's registered methods, read from Graph.

The registration report (`userRegistrationDetails`) needs Entra ID P1 and lags behind new users.
For the users it lacks, or for every user when the tenant has no P1, the fallback reads
`GET /users/{id}/authentication/methods` and `GET /policies/authenticationMethodsPolicy`, so
`checks.mfa_registration` can judge them itself (`checks.support.auth_methods`).

The per-user API is in Graph's identity-and-access reports throttling class: 5 requests per
10 s per tenant, `$batch` sub-requests counted one by one. A thousand users take over half an
hour, so the fallback:

- reads through `$batch`, one batch of as many users as the class allows at a time (the
  client's pacer sizes and spaces them), admins first;
- stops starting batches when the scan's time budget is spent, and reports the users it did not
  reach (`unassessed_user_ids`: the check is then `not_assessed` with their count). The budget
  is half the host's function timeout (`collect.fallback_budget_seconds`; 15 minutes, 450 users,
  with host.json's 30), not a setting: it is what a scan can spend without being cut off;
- reports apart the users it reached but could not read (`unreadable_user_ids`), so the check
  can tell "no time" from "Graph failed";
- keeps what it read for a day in Table Storage (`MethodCache`), so the next scans read only the
  rest and a tenant of any size converges. Admins and emergency-access accounts (`fresh_user_ids`)
  are read from Graph every scan, never from the cache, and first: mfa.phishing-resistant-admins
  must see a key registered or removed since the last scan, and they are few.

A missing permission (403) stops the reads: the map becomes `Unavailable` with the permission
named. A user deleted since the user list was read (404), one whose read failed for good
(throttled, 5xx), and every user of a `$batch` POST that failed for good, are left unreadable
rather than guessed; the other batches carry on. Only a failed sign-in stops the scan.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from partnerguard.graph.client import BatchResult, GraphClient
from partnerguard.graph.errors import GraphError, PermissionDenied, SignInFailed
from partnerguard.graph.pacing import ApiClass
from partnerguard.graph.requests import AUTHENTICATION_METHODS_POLICY, USER_AUTHENTICATION_METHODS
from partnerguard.model import Unavailable
from partnerguard.storage.method_cache import MethodCache

log = logging.getLogger(__name__)

# How long a user's methods read from Graph stay good enough to judge them (issue: "cached per
# user for a day").
CACHE_LIFETIME = timedelta(days=1)
# Newly read users are written to the cache whenever this many are pending (one Table
# transaction), so a scan stopped half-way keeps what it read.
CACHE_FLUSH_SIZE = 100
ENABLED = "enabled"


@dataclass(frozen=True)
class MethodReads:
    """Users' methods by user id (cached and newly read), the users not reached before the
    deadline, and the users whose read failed."""

    methods: Mapping[str, tuple[str, ...]]
    unassessed_user_ids: frozenset[str]
    unreadable_user_ids: frozenset[str]
    read_from_graph: int
    read_from_cache: int


@dataclass(frozen=True)
class FallbackOutcome:
    """What the fallback gives the snapshot (`TenantSnapshot` fields of the same names)."""

    user_auth_methods: Mapping[str, tuple[str, ...]] | Unavailable
    enabled_auth_method_ids: frozenset[str] | Unavailable
    unassessed_user_ids: frozenset[str]
    unreadable_user_ids: frozenset[str] = frozenset()
    # Counts, for logs and measurements.
    read_from_graph: int = 0
    read_from_cache: int = 0


def enabled_method_ids(policy: Mapping[str, object]) -> frozenset[str]:
    """The ids of the policy's authenticationMethodConfigurations whose state is `enabled`."""
    configurations = policy.get("authenticationMethodConfigurations")
    if not isinstance(configurations, list):
        raise ValueError("authenticationMethodsPolicy without authenticationMethodConfigurations")
    return frozenset(
        configuration["id"]
        for configuration in configurations
        if isinstance(configuration, dict)
        and isinstance(configuration.get("id"), str)
        and str(configuration.get("state", "")).lower() == ENABLED
    )


async def read_enabled_method_ids(client: GraphClient) -> frozenset[str]:
    return enabled_method_ids(await client.get_object(AUTHENTICATION_METHODS_POLICY.request()))


async def read_methods_policy(client: GraphClient, tenant_id: str) -> frozenset[str] | Unavailable:
    """The enabled configurations, or why they could not be read. Read once per scan: the
    fallback and mfa.phishing-resistant-admins both judge methods by it."""
    try:
        return await read_enabled_method_ids(client)
    except SignInFailed:
        raise
    except GraphError as error:
        log.warning("tenant %s: authentication methods policy unavailable: %s", tenant_id, error)
        return error.unavailable()
    except ValueError as error:
        return Unavailable(f"unexpected authentication methods policy: {error}", "error:UnexpectedResponse")


def method_types(items: Sequence[Mapping[str, object]]) -> tuple[str, ...]:
    """The `@odata.type` of each registered method, in Graph's order."""
    types = (item.get("@odata.type") for item in items)
    return tuple(odata_type for odata_type in types if isinstance(odata_type, str))


def reading_order(
    user_ids: Sequence[str], admin_user_ids: frozenset[str] | Unavailable, first: frozenset[str] = frozenset()
) -> list[str]:
    """Admins (and `first`: emergency-access accounts) first (a missed admin is a critical
    finding), then everyone else, each in input order."""
    unique = list(dict.fromkeys(user_ids))
    leading = first | (frozenset() if isinstance(admin_user_ids, Unavailable) else admin_user_ids)
    return [u for u in unique if u in leading] + [u for u in unique if u not in leading]


class _CacheWriter:
    """Newly read users, written to the cache in transactions of up to 100 as they accumulate."""

    def __init__(self, cache: MethodCache | None, tenant_id: str, now: datetime) -> None:
        self.cache = cache
        self.tenant_id = tenant_id
        self.now = now
        self.pending: dict[str, tuple[str, ...]] = {}

    async def add(self, user_id: str, methods: tuple[str, ...]) -> None:
        if self.cache is None:
            return
        self.pending[user_id] = methods
        if len(self.pending) >= CACHE_FLUSH_SIZE:
            await self.flush()

    async def flush(self) -> None:
        if self.cache is None or not self.pending:
            return
        batch, self.pending = self.pending, {}
        try:
            await asyncio.to_thread(self.cache.put_many, self.tenant_id, batch, self.now)
        except Exception as error:
            # The cache only saves requests: a scan that cannot write it is still right.
            log.warning(
                "tenant %s: could not cache %d users' methods: %s", self.tenant_id, len(batch), type(error).__name__
            )


async def _cached(
    cache: MethodCache | None, tenant_id: str, user_ids: Sequence[str], now: datetime
) -> dict[str, tuple[str, ...]]:
    if cache is None or not user_ids:
        return {}
    try:
        return await asyncio.to_thread(cache.get_many, tenant_id, user_ids, now - CACHE_LIFETIME)
    except Exception as error:
        log.warning("tenant %s: method cache unavailable, reading Graph: %s", tenant_id, type(error).__name__)
        return {}


async def _methods_of(client: GraphClient, result: BatchResult) -> tuple[str, ...]:
    return method_types(await client.collection_from_batch(result))


async def read_user_methods(
    client: GraphClient,
    tenant_id: str,
    user_ids: Sequence[str],
    now: datetime,
    *,
    admin_user_ids: frozenset[str] | Unavailable,
    cache: MethodCache | None,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
    fresh_user_ids: frozenset[str] = frozenset(),
) -> MethodReads | Unavailable:
    """Methods of `user_ids`: cached ones, then Graph's, admins first, until `deadline` (on `clock`).
    `fresh_user_ids` (admins, emergency-access accounts) are never taken from the cache.

    Returns `Unavailable` when the app may not read methods at all (403).
    """
    cacheable = [user_id for user_id in user_ids if user_id not in fresh_user_ids]
    methods: dict[str, tuple[str, ...]] = await _cached(cache, tenant_id, cacheable, now)
    from_cache = len(methods)
    order = reading_order(user_ids, admin_user_ids, fresh_user_ids)
    to_read = [user_id for user_id in order if user_id not in methods]
    batch_size = client.pacer.max_cost(ApiClass.REPORTS) or 20
    writer = _CacheWriter(cache, tenant_id, now)
    failed: set[str] = set()
    position = 0
    try:
        while position < len(to_read) and clock() < deadline:
            chunk = to_read[position : position + batch_size]
            position += len(chunk)
            try:
                results = await client.batch(
                    [USER_AUTHENTICATION_METHODS.request(user_id=user_id) for user_id in chunk]
                )
            except SignInFailed:
                raise
            except PermissionDenied as error:
                return error.unavailable()
            except GraphError as error:
                # The $batch POST itself failed for good (throttled, 5xx after retries): these
                # users stay unjudged; the next batches may well go through.
                log.warning("tenant %s: a batch of %d users' methods failed: %s", tenant_id, len(chunk), error)
                failed.update(chunk)
                continue
            for user_id, result in zip(chunk, results, strict=True):
                if isinstance(result.error, PermissionDenied):
                    return result.error.unavailable()
                if result.error is not None:
                    if result.status != 404:
                        log.warning("tenant %s: methods of a user unreadable: %s", tenant_id, result.error)
                    failed.add(user_id)
                    continue
                try:
                    user_methods = await _methods_of(client, result)
                except SignInFailed:
                    raise
                except PermissionDenied as error:
                    return error.unavailable()
                except GraphError as error:
                    log.warning("tenant %s: methods of a user unreadable: %s", tenant_id, error)
                    failed.add(user_id)
                    continue
                methods[user_id] = user_methods
                await writer.add(user_id, user_methods)
    finally:
        await writer.flush()
    not_reached = frozenset(to_read[position:])
    if not_reached:
        log.warning(
            "tenant %s: fallback time budget spent; %d users left for the next scan", tenant_id, len(not_reached)
        )
    return MethodReads(methods, not_reached, frozenset(failed), len(methods) - from_cache, from_cache)


async def run_fallback(
    client: GraphClient,
    tenant_id: str,
    user_ids: Sequence[str],
    now: datetime,
    *,
    admin_user_ids: frozenset[str] | Unavailable,
    cache: MethodCache | None,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
    policy: frozenset[str] | Unavailable | None = None,
    fresh_user_ids: frozenset[str] = frozenset(),
) -> FallbackOutcome:
    """The fallback for `user_ids`: the methods policy first (without it no method can be judged,
    so nothing else is read), then each user's methods. `policy`: the enabled configurations the
    scan already read (`read_methods_policy`); None reads them here. `fresh_user_ids` are read
    from Graph even when cached (`read_user_methods`)."""
    enabled = policy if policy is not None else await read_methods_policy(client, tenant_id)
    if isinstance(enabled, Unavailable):
        return FallbackOutcome(enabled, enabled, frozenset())
    reads = await read_user_methods(
        client,
        tenant_id,
        user_ids,
        now,
        admin_user_ids=admin_user_ids,
        cache=cache,
        deadline=deadline,
        clock=clock,
        fresh_user_ids=fresh_user_ids,
    )
    if isinstance(reads, Unavailable):
        return FallbackOutcome(reads, enabled, frozenset())
    log.info(
        "tenant %s: fallback has %d users' methods (%d from the cache), %d not reached, %d unreadable",
        tenant_id,
        len(reads.methods),
        reads.read_from_cache,
        len(reads.unassessed_user_ids),
        len(reads.unreadable_user_ids),
    )
    return FallbackOutcome(
        reads.methods,
        enabled,
        reads.unassessed_user_ids,
        reads.unreadable_user_ids,
        reads.read_from_graph,
        reads.read_from_cache,
    )

"""The registration report of one scan: read whole at most once a day, filtered in between.

`GET /reports/authenticationMethods/userRegistrationDetails` is in Graph's identity-and-access
reports class (5 requests per 10 s per tenant) and has no `$top`: a 100,000-user tenant is 101
pages, at least 200 s of pacing, every scan. Only its not-capable rows can become findings, and
Graph documents `$filter` (eq) on `isMfaCapable`, so:

- **full read** when the tenant has no stored roster (`RegistrationRoster`), when it is older
  than `ReadPlan.registration_full_read_every` (a day), or without a roster store. With
  `timedelta(0)` (the benchmark's baseline) every scan reads whole and no roster is kept. The rows
  become the new roster. The daily full read is what still sends users the report lacks (it
  lags behind new users, omits some) to the per-user fallback, and refreshes everyone else.
- **filtered read** otherwise: `isMfaCapable eq false` only, merged with the roster. A roster
  user among the filtered rows takes the fresh row; one absent from them is capable now. Users
  of the users list in neither, nor among the users that full read lacked, were created since;
  they are read one by one (`$batch` of `GET .../userRegistrationDetails/{id}`); a 404 means
  the report lacks them, and they reach the fallback as after a full read. Both are added to
  the roster, so each new user is asked for once. The users the full read lacked go to the
  fallback again until the next full read (or appear among the not-capable rows). When the new
  users are so many that a full read costs fewer requests, the scan reads whole instead.
- **admins fresh** on a filtered read: a roster row is up to a day old, and the filter returns
  only not-capable users, so an admin who registered or lost a phishing-resistant method since the
  full read would be judged on old `methodsRegistered`. Admins are few, so their rows (the holders
  of active role assignments, EMERGENCY_ACCESS_ACCOUNTS, and the roster's `isAdmin` rows) are read
  by id each scan (`$batch`) and replace the roster's. They are read whatever their scope (a
  guest admin is judged though INCLUDE_GUESTS is off) and whether or not the roster has them (a
  role given since the full read). A 404 drops the row, so the fallback reads that user's
  methods; a read that fails keeps the roster's row (logged). When these reads and the new
  users' cost more than a full read (a small tenant, many admins), the scan reads whole. The
  filtered page is read before the admins are awaited: finding them waits on the user list, the
  service principals and role-assignable groups, which the page need not wait for.

Either way the result is the `Sequence[RegistrationDetail]` a full read would give the check, so
the check and the fallback's choice of users are unchanged; `kind` and `as_of` (when the roster
was read) go into mfa.registration's evidence. The roster is an optimisation: a roster that
cannot be read or written is logged and the scan reads whole.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Collection, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from checks.mfa_registration import in_scope
from partnerguard.graph.client import GraphClient
from partnerguard.graph.errors import GraphError, LicenceRequired, PermissionDenied, SignInFailed
from partnerguard.graph.requests import (
    USER_REGISTRATION_DETAIL,
    USER_REGISTRATION_DETAILS,
    USER_REGISTRATION_DETAILS_NOT_CAPABLE,
)
from partnerguard.model import RegistrationDetail, RegistrationReadInfo, Unavailable, User
from partnerguard.read_plan import DEFAULT_READ_PLAN, ReadPlan
from partnerguard.storage.registration_roster import RegistrationRoster, Roster

log = logging.getLogger(__name__)

# Rows per report page when no full read has shown the tenant's: the list page states no page
# size; 1,000 is the identity-and-access report family's documented page (signin-list).
ASSUMED_ROWS_PER_PAGE = 1000


@dataclass(frozen=True)
class RegistrationRead:
    """The report's rows as a full read would give them, how they were read, and what it cost."""

    details: Sequence[RegistrationDetail]
    info: RegistrationReadInfo
    # Report requests made: pages of the list, plus one per user read by id.
    requests: int = 0
    point_reads: int = 0
    # Of the point reads, admins' rows read fresh over the roster's.
    admin_reads: int = 0


async def read_all_rows(client: GraphClient) -> tuple[list[RegistrationDetail], int]:
    """Every row of the report, and the pages it took."""
    details: list[RegistrationDetail] = []
    pages = 0
    async for page in client.pages(USER_REGISTRATION_DETAILS.request()):
        pages += 1
        details.extend(RegistrationDetail.from_graph(item) for item in page)
    return details, pages


async def read_not_capable_rows(client: GraphClient) -> tuple[list[RegistrationDetail], int]:
    details: list[RegistrationDetail] = []
    pages = 0
    async for page in client.pages(USER_REGISTRATION_DETAILS_NOT_CAPABLE.request()):
        pages += 1
        details.extend(RegistrationDetail.from_graph(item) for item in page)
    return details, pages


def _row_of(body: Any) -> RegistrationDetail | None:
    """One user's row from a `$batch` answer: the object itself, or inside `value` as the
    reference page's example shows it."""
    if isinstance(body, dict) and isinstance(body.get("value"), dict) and "id" not in body:
        body = body["value"]
    if isinstance(body, dict) and isinstance(body.get("id"), str):
        return RegistrationDetail.from_graph(body)
    return None


async def read_rows_by_id(
    client: GraphClient, tenant_id: str, user_ids: Sequence[str]
) -> tuple[list[RegistrationDetail], list[str]]:
    """The rows of `user_ids` the report has, and the ids it lacks (404). Either kind, and a user
    whose read failed for good, is left out of the rows: for a new user, the fallback reads that
    user's methods, as after a full read; for an admin, the roster's row stands."""
    try:
        results = await client.batch([USER_REGISTRATION_DETAIL.request(user_id=user_id) for user_id in user_ids])
    except SignInFailed:
        raise
    except GraphError as error:
        log.warning("tenant %s: %d users' registration rows unreadable by id (%s)", tenant_id, len(user_ids), error)
        return [], []
    rows: list[RegistrationDetail] = []
    lacking: list[str] = []
    failed = 0
    for user_id, result in zip(user_ids, results, strict=True):
        row = _row_of(result.body) if result.ok else None
        if row is not None and row.id == user_id:
            rows.append(row)
        elif result.status == 404:
            lacking.append(user_id)
        else:
            failed += 1
    if failed:
        log.warning("tenant %s: %d users' registration rows unreadable by id", tenant_id, failed)
    return rows, lacking


def merge(roster: Roster, not_capable: Sequence[RegistrationDetail]) -> dict[str, RegistrationDetail]:
    """The roster as the filtered rows update it: their rows as read now, and every other roster
    user capable (the filter would have returned them otherwise)."""
    fresh = {row.id: row for row in not_capable}
    merged: dict[str, RegistrationDetail] = {}
    for user_id, row in roster.rows.items():
        if user_id in fresh:
            continue
        merged[user_id] = row if row.is_mfa_capable else replace(row, is_mfa_capable=True, is_mfa_registered=True)
    merged.update(fresh)
    return merged


def full_read_cost(roster: Roster, users: int) -> int:
    """Report pages a full read of `users` rows would take, by the pages the last one took."""
    per_page = math.ceil(len(roster.rows) / roster.pages) if roster.pages and roster.rows else ASSUMED_ROWS_PER_PAGE
    return max(1, math.ceil(users / max(1, per_page)))


async def _load(roster: RegistrationRoster, tenant_id: str) -> Roster | None:
    try:
        return await asyncio.to_thread(roster.load, tenant_id)
    except Exception as error:
        log.warning("tenant %s: registration roster unavailable, reading the report whole: %s", tenant_id, error)
        return None


async def _store(
    roster: RegistrationRoster,
    tenant_id: str,
    rows: Sequence[RegistrationDetail],
    now: datetime,
    pages: int,
    listed_ids: Sequence[str],
) -> None:
    """The full read as the new roster; the listed users it lacked are kept as absent."""
    try:
        await asyncio.to_thread(roster.replace, tenant_id, rows, now, pages, listed_ids)
    except Exception as error:
        # The scan's rows are right; the next scan simply reads whole again.
        log.warning("tenant %s: registration roster not stored: %s", tenant_id, type(error).__name__)


async def _append(
    roster: RegistrationRoster,
    tenant_id: str,
    stored: Roster,
    rows: Sequence[RegistrationDetail],
    lacking: Sequence[str],
) -> None:
    """Users read by id join the roster until the next full read, so they are read once."""
    try:
        appended = await asyncio.to_thread(roster.append, tenant_id, stored, rows, lacking)
    except Exception as error:
        log.warning("tenant %s: new users not added to the registration roster: %s", tenant_id, type(error).__name__)
        return
    if not appended:
        log.info("tenant %s: registration roster changed meanwhile; new users not added", tenant_id)


async def read_registration(
    client: GraphClient,
    tenant_id: str,
    now: datetime,
    users: Awaitable[Sequence[User] | Unavailable],
    *,
    include_guests: bool,
    roster: RegistrationRoster | None = None,
    read_plan: ReadPlan = DEFAULT_READ_PLAN,
    admin_ids: Awaitable[Collection[str]] | None = None,
) -> RegistrationRead:
    """The report's rows for this scan (see the module's docstring). `users` is the scan's user
    list, awaited only by a filtered read, to find the users created since the full read;
    `admin_ids` likewise, the users whose rows a filtered read takes fresh (role holders and
    emergency-access accounts; the roster's `isAdmin` rows are added here)."""

    # A plan that reads whole every scan never uses a roster: none is loaded or written, so the
    # baseline costs what every scan cost before rosters existed.
    keeps_roster = roster is not None and read_plan.registration_full_read_every > timedelta(0)

    async def full() -> RegistrationRead:
        rows, pages = await read_all_rows(client)
        if roster is not None and keeps_roster:
            listed = await users
            absent = () if isinstance(listed, Unavailable) else [user.id for user in listed]
            await _store(roster, tenant_id, rows, now, pages, absent)
        return RegistrationRead(rows, RegistrationReadInfo("full", now), pages)

    stored = await _load(roster, tenant_id) if roster is not None and keeps_roster else None
    if stored is None or now - stored.read_at >= read_plan.registration_full_read_every or now < stored.read_at:
        return await full()
    # Admins' rows are read by id on top of at least one filtered page: when that alone costs more
    # than reading the report whole (a small tenant, or many admins), read whole, fresh for all.
    # Only the roster's `isAdmin` rows are counted here, not to wait for the role holders: the
    # count after the page (below) has them all.
    roster_admins = {user_id for user_id, row in stored.rows.items() if row.is_admin}
    if 1 + len(roster_admins) > full_read_cost(stored, len(stored.rows)):
        return await full()

    try:
        not_capable, pages = await read_not_capable_rows(client)
    except (SignInFailed, PermissionDenied, LicenceRequired):
        raise  # a full read would be refused the same way
    except GraphError as error:
        # The filter is only a saving: a read Graph refused or failed (after retries) is made
        # whole, so one bad answer never leaves mfa.registration unjudged for the day.
        log.warning("tenant %s: filtered registration read failed (%s); reading the report whole", tenant_id, error)
        return await full()
    merged = merge(stored, not_capable)
    listed = await users
    new_ids: list[str] = []
    if not isinstance(listed, Unavailable):
        new_ids = [
            user.id
            for user in listed
            if in_scope(user, include_guests) and user.id not in merged and user.id not in stored.absent
        ]
    admins = roster_admins | await _judged_users(listed, stored, admin_ids)
    # The filtered rows are fresh already; new users are read by id anyway.
    fresh = {*new_ids, *(row.id for row in not_capable)}
    refresh = sorted(user_id for user_id in admins if user_id not in fresh)
    if len(new_ids) + len(refresh) > full_read_cost(stored, len(merged) + len(new_ids)):
        log.info("tenant %s: %d users new since the roster; reading the report whole", tenant_id, len(new_ids))
        read = await full()
        return replace(read, requests=read.requests + pages)
    new_rows: list[RegistrationDetail] = []
    if new_ids:
        new_rows, lacking = await read_rows_by_id(client, tenant_id, new_ids)
        if roster is not None:
            await _append(roster, tenant_id, stored, new_rows, lacking)
    merged.update((row.id, row) for row in new_rows)
    if refresh:
        admin_rows, admins_lacking = await read_rows_by_id(client, tenant_id, refresh)
        merged.update((row.id, row) for row in admin_rows)
        for user_id in admins_lacking:
            merged.pop(user_id, None)  # the fallback reads their methods
    return RegistrationRead(
        list(merged.values()),
        RegistrationReadInfo("filtered", stored.read_at),
        pages + len(new_ids) + len(refresh),
        len(new_ids) + len(refresh),
        len(refresh),
    )


async def _judged_users(
    listed: Sequence[User] | Unavailable, stored: Roster, admin_ids: Awaitable[Collection[str]] | None
) -> set[str]:
    """The role holders and emergency-access accounts the collector names, whose rows a filtered
    read takes fresh: every enabled one of the user list, in scope or not, in the roster or not
    (mfa.phishing-resistant-admins judges them all). Without the user list, only those the
    roster has (the ids may then name service principals)."""
    if admin_ids is None:
        return set()
    wanted = set(await admin_ids)
    if isinstance(listed, Unavailable):
        return wanted & set(stored.rows)
    return {user.id for user in listed if user.account_enabled and user.id in wanted}

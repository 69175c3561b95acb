"""Incremental sign-in collection: read new sign-ins, fold them into per-subject aggregates.

Re-reading a week of sign-ins every scan does not scale (millions of rows at 5 requests per
10 s, SPEC §6). So each scan reads beta `GET /auditLogs/signIns` in two streams, one per event
type (`interactiveUser`, `nonInteractiveUser`: without a signInEventTypes filter Graph returns
interactive sign-ins only), each from its own watermark:

- **First scan** of a stream (no watermark, or a look-back longer than the reads so far
  covered): the whole window, `createdDateTime ge now-lookback and le now`.
- **Later scans**: from `watermark - WATERMARK_OVERLAP` to `now`, where the watermark is the
  newest `createdDateTime` folded from that stream. The overlap re-reads the recent past, so a
  sign-in that reached the log late (after the previous scan read past its time) is still seen.

**Fold.** Each page is folded as it arrives and then dropped: `checks.sign_in_matches`
names the rules a sign-in matches (none for failed sign-ins), and each match updates the
aggregate of its (rule, subject): `first_seen` = min, `last_seen` = max, the names of the newest
sign-in, the event types seen, and `count`. Memory grows with the number of subjects, never
with the number of sign-ins.

**Counting, at least.** Sign-ins re-read in the overlap must not be counted twice. Each
aggregate keeps, per event type, `counted_through`: the newest sign-in of that stream it has
counted. A sign-in is counted when it is newer than the aggregate's `counted_through` as it was
when the stream began (a new aggregate counts every sign-in). Because that mark is stored in the
same row as the count, counting is idempotent: re-reading any range never counts a sign-in twice,
whatever the watermark says. The price is that `count` is a lower bound: a sign-in that arrives
late *and* is older than a sign-in of the same subject already counted is folded (names, first
and last seen) but not counted. The checks report "at least N" sign-ins.

**Crash safety.** A stream's aggregates are written (entity-group transactions of up to 100, one
partition per tenant) only once the whole stream is folded, and its watermark only after all of
them are stored. A crash anywhere before that leaves the old watermark, so the next scan re-reads
(and, thanks to `counted_through`, does not double-count) rather than skips. A stream that fails
half-way writes nothing.

**Window.** All stored aggregates whose `last_seen` lies within the look-back window (plus
`WINDOW_MARGIN`; the checks apply the exact window) are returned; older ones are deleted: those
sign-ins have aged out, and the finding lifecycle resolves them as "no longer observed".

Errors: a licence 403 is `licence:AAD_PREMIUM`, a permission 403 `permission:AuditLog.Read.All`,
`Authentication_ApplicationHasNoDirectoryReadAccess` `permission:Directory.Read.All` (SPEC §6),
all through `partnerguard.graph.errors`. A failed sign-in to the tenant propagates, as in the
collector. Storage errors propagate too: the collector reports them as the check's `error`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from checks import sign_in_matches
from checks.support.sign_in_evidence import SignInMatch
from partnerguard.graph.client import GraphClient
from partnerguard.graph.errors import GraphError, SignInFailed
from partnerguard.graph.requests import SIGN_INS
from partnerguard.model import SignInAggregate, Unavailable
from partnerguard.storage.sign_in_aggregates import (
    AggregateRecord,
    SignInStore,
    Watermark,
    aggregate_key,
    storable_name,
)

log = logging.getLogger(__name__)

INTERACTIVE = "interactiveUser"
NON_INTERACTIVE = "nonInteractiveUser"
# The streams, in the order they are read. A sign-in listing both types (Graph does not
# document one) is counted by the first stream only.
EVENT_TYPES: tuple[str, ...] = (INTERACTIVE, NON_INTERACTIVE)

# How far before the watermark later scans start reading. Microsoft documented sign-in log
# latency as 2 minutes at the 95th and 5 minutes at the 99th percentile (the former "Azure AD
# reporting latencies" reference), and says today that delays in the underlying infrastructure
# add to it without a bound (https://learn.microsoft.com/entra/identity/monitoring-health/reference-log-latency).
# Two hours is 24 times the documented 99th percentile and costs little: re-read sign-ins are
# not counted again.
WATERMARK_OVERLAP = timedelta(hours=2)
# Aggregates are returned (and kept) this long past the look-back window; the checks apply the
# exact window to `last_seen` against their own clock.
WINDOW_MARGIN = timedelta(hours=1)

_FILTER_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def _filter_time(moment: datetime) -> str:
    """Seconds precision, UTC, as the $filter literal: truncating only ever widens `ge`."""
    return moment.astimezone(UTC).strftime(_FILTER_TIME_FORMAT)


def _floor_second(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def parse_created(value: Any) -> datetime | None:
    """A sign-in's createdDateTime (ISO 8601, up to 7 fractional digits) as a UTC instant."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@dataclass(frozen=True)
class ReadRange:
    """What one stream reads in this scan: `since` to `until`, both inclusive."""

    event_type: str
    since: datetime
    until: datetime
    covered_from: datetime  # from where the stored aggregates will be complete (before purging)
    full: bool  # True when the whole window is read (first scan, or a longer look-back)


def plan_read(event_type: str, watermark: Watermark | None, now: datetime, lookback: timedelta) -> ReadRange:
    """The whole window when nothing (or too little) was read before, else from the watermark
    less the overlap; never before the window, never after `now`."""
    until = _floor_second(now)
    window_start = _floor_second(now - lookback)
    if watermark is None or watermark.covered_from > window_start:
        return ReadRange(event_type, window_start, until, covered_from=window_start, full=True)
    since = max(window_start, _floor_second(watermark.newest - WATERMARK_OVERLAP))
    return ReadRange(event_type, since, until, covered_from=watermark.covered_from, full=False)


@dataclass
class StreamStats:
    pages: int = 0
    sign_ins: int = 0
    matches: int = 0
    counted: int = 0
    skipped: int = 0  # no readable createdDateTime, or outside the range asked for
    newest: datetime | None = None


class SignInFold:
    """The tenant's aggregates, updated sign-in by sign-in. Knows nothing of Graph or storage."""

    def __init__(self, records: Iterable[AggregateRecord]) -> None:
        self.records: dict[tuple[str, str], AggregateRecord] = {record.key: record for record in records}
        self.dirty: set[tuple[str, str]] = set()
        self._event_type = ""
        # Per aggregate touched by the current stream: its counted_through for the stream's
        # event type as it was when the stream began (None: nothing counted yet).
        self._counted_before: dict[tuple[str, str], datetime | None] = {}
        # (rule, subject id as matched) -> its storage key; subjects recur on most sign-ins, and
        # making an id storable measures it character by character.
        self._keys: dict[tuple[str, str], tuple[str, str]] = {}

    def start_stream(self, event_type: str) -> None:
        self._event_type = event_type
        self._counted_before = {}
        self.dirty = set()

    def _owns(self, sign_in: Mapping[str, Any]) -> bool:
        """Whether this stream counts the sign-in (one that lists an earlier stream's type was
        counted there)."""
        listed = sign_in.get("signInEventTypes")
        if not isinstance(listed, list):
            return True
        for event_type in EVENT_TYPES:
            if event_type == self._event_type:
                return True
            if event_type in listed:
                return False
        return True

    def add(self, sign_in: Mapping[str, Any], created: datetime) -> tuple[int, int]:
        """Fold one sign-in; returns (rules matched, times counted)."""
        matches = sign_in_matches(sign_in)
        if not matches:
            return 0, 0
        owned = self._owns(sign_in)
        counted = 0
        for found in matches:
            counted += self._fold(found, created, owned)
        return len(matches), counted

    def _fold(self, found: SignInMatch, created: datetime, owned: bool) -> int:
        key = self._keys.get((found.rule, found.subject_id))
        if key is None:
            key = self._keys[(found.rule, found.subject_id)] = aggregate_key(found.rule, found.subject_id)
        record = self.records.get(key)
        changed = record is None
        if record is None:
            record = AggregateRecord(
                rule=key[0],
                subject_id=key[1],
                user_id="",
                user_principal_name="",
                user_display_name="",
                app_id="",
                app_display_name="",
                client_app_used="",
                first_seen=created,
                last_seen=created,
                count=0,
            )
            self.records[key] = record
        if created >= record.last_seen:
            changed = _take_names(record, found) or changed
        if created < record.first_seen:
            record.first_seen = created
            changed = True
        if created > record.last_seen:
            record.last_seen = created
            changed = True
        if self._event_type not in record.event_types:
            record.event_types.add(self._event_type)
            changed = True
        counted = 0
        if owned:
            if key not in self._counted_before:
                self._counted_before[key] = record.counted_through.get(self._event_type)
            before = self._counted_before[key]
            through = record.counted_through.get(self._event_type)
            if through is None or created > through:
                record.counted_through[self._event_type] = created
                changed = True
            if before is None or created > before:
                record.count += 1
                counted = 1
        # A re-read sign-in that changes nothing (the usual case in the overlap) writes nothing.
        if changed:
            self.dirty.add(key)
        return counted

    def changed(self) -> list[AggregateRecord]:
        return [self.records[key] for key in sorted(self.dirty)]

    def aged_out(self, cutoff: datetime) -> list[tuple[str, str]]:
        return sorted(key for key, record in self.records.items() if record.last_seen < cutoff)

    def forget(self, keys: Iterable[tuple[str, str]]) -> None:
        for key in keys:
            self.records.pop(key, None)

    def aggregates(self) -> list[SignInAggregate]:
        return [self.records[key].to_aggregate() for key in sorted(self.records)]


def _take_names(record: AggregateRecord, found: SignInMatch) -> bool:
    """Give the record the names of `found` (its newest sign-in); True when any changed."""
    names = (
        storable_name(found.user_id),
        storable_name(found.user_principal_name),
        storable_name(found.user_display_name),
        storable_name(found.app_id),
        storable_name(found.app_display_name),
        storable_name(found.client_app_used),
    )
    current = (
        record.user_id,
        record.user_principal_name,
        record.user_display_name,
        record.app_id,
        record.app_display_name,
        record.client_app_used,
    )
    if names == current:
        return False
    (
        record.user_id,
        record.user_principal_name,
        record.user_display_name,
        record.app_id,
        record.app_display_name,
        record.client_app_used,
    ) = names
    return True


async def _read_stream(client: GraphClient, fold: SignInFold, read: ReadRange) -> StreamStats:
    """Fold every sign-in of one stream in `read`, page by page."""
    stats = StreamStats()
    fold.start_stream(read.event_type)
    request = SIGN_INS.request(
        since=_filter_time(read.since), until=_filter_time(read.until), event_type=read.event_type
    )
    async for page in client.pages(request):
        stats.pages += 1
        for sign_in in page:
            stats.sign_ins += 1
            created = parse_created(sign_in.get("createdDateTime"))
            # Outside the range asked for means Graph did not apply the filter: folding it could
            # move the watermark past sign-ins never read.
            if created is None or not read.since <= created <= read.until:
                stats.skipped += 1
                continue
            matched, counted = fold.add(sign_in, created)
            stats.matches += matched
            stats.counted += counted
            stats.newest = created if stats.newest is None else max(stats.newest, created)
    return stats


async def collect_sign_ins(
    client: GraphClient, store: SignInStore, tenant_id: str, now: datetime, lookback: timedelta
) -> Sequence[SignInAggregate] | Unavailable:
    """Read the sign-ins new since the last scan, fold them into the stored aggregates, and
    return the aggregates seen within `lookback` of `now` (plus `WINDOW_MARGIN`)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    if lookback <= timedelta(0):
        raise ValueError("the look-back window must be positive")
    cutoff = now - lookback - WINDOW_MARGIN
    fold = SignInFold(await asyncio.to_thread(lambda: list(store.aggregates(tenant_id))))
    for event_type in EVENT_TYPES:
        watermark = await asyncio.to_thread(store.watermark, tenant_id, event_type)
        read = plan_read(event_type, watermark, now, lookback)
        try:
            stats = await _read_stream(client, fold, read)
        except SignInFailed:
            raise
        except GraphError as error:
            log.warning("tenant %s: could not read %s sign-ins: %s", tenant_id, event_type, error)
            return error.unavailable()
        transactions = await asyncio.to_thread(store.save_aggregates, tenant_id, fold.changed())
        # Only now that every aggregate the stream touched is stored may the watermark move.
        known = [moment for moment in (stats.newest, watermark.newest if watermark else None) if moment]
        if known:
            # Aggregates last seen before `cutoff` are deleted below, so what is stored is
            # complete from `cutoff` on at best: a look-back lengthened later re-reads.
            covered_from = max(read.covered_from, cutoff)
            await asyncio.to_thread(
                store.set_watermark, tenant_id, Watermark(event_type, max(known), covered_from), now
            )
        log.info(
            "tenant %s: %s sign-ins %s..%s%s: %d read in %d page(s), %d rule match(es), %d counted, "
            "%d skipped, %d changed aggregate(s) written in %d transaction(s)",
            tenant_id,
            event_type,
            _filter_time(read.since),
            _filter_time(read.until),
            " (full window)" if read.full else "",
            stats.sign_ins,
            stats.pages,
            stats.matches,
            stats.counted,
            stats.skipped,
            len(fold.dirty),
            transactions,
        )
    aged = fold.aged_out(cutoff)
    if aged:
        await asyncio.to_thread(store.delete_aggregates, tenant_id, aged)
        fold.forget(aged)
        log.info("tenant %s: %d sign-in aggregate(s) aged out of the window and were deleted", tenant_id, len(aged))
    return fold.aggregates()

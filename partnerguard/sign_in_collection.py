"""Incremental, resumable sign-in collection: read new sign-ins, fold them into per-subject aggregates.

Re-reading a week of sign-ins every scan does not scale (millions of rows at 5 requests per
10 s, SPEC §6). So each scan reads beta `GET /auditLogs/signIns` in **streams** and folds each
page into stored per-subject aggregates as it arrives.

**Streams and modes** (`partnerguard.sign_in_streams`). Per event type (`interactiveUser`,
`nonInteractiveUser`) a scan reads either in *full* mode (one query for every sign-in, stream key
= the event type) or in *filtered* mode (disjoint queries for successful sign-ins that can
become a finding: one for single-factor sign-ins, one per documented legacy clientAppUsed value
for multi-factor ones). What filtered mode cannot see: a multi-factor sign-in through a legacy
client whose clientAppUsed is not a documented value, and a sign-in whose authenticationRequirement
is neither `singleFactorAuthentication` nor `multiFactorAuthentication` (docs/scaling.md, "Sign-ins:
filtered and resumable reads"). The read plan (`ReadPlan.sign_in_filters`) decides: "never" (full,
the bench's baseline), "always" (filtered), "auto" (filtered when the expected full read costs
more requests than the filtered queries; the choice and its reason are logged).

**Ranges.** Each stream reads ranges `createdDateTime ge since and le until`:
- with nothing read before (or a look-back longer than what the stored aggregates cover), the
  whole window;
- else from `read_through - WATERMARK_OVERLAP` (never before the window) to `now`, where
  `read_through` is the `until` of the stream's last completed range. The overlap re-reads the
  recent past, so a sign-in that reached the log late is still seen.

**Resumable per page.** Graph returns sign-ins newest first, so a range is read from `until`
back to `since`. After every page the changed aggregates are written (entity-group
transactions of up to 100, one partition per tenant), then the stream's checkpoint
(`StreamState`): the range in progress and its *frontier*, the `createdDateTime` of the oldest
sign-in folded and the ids folded at exactly that instant. A read that stops (its deadline, a
crash, a Graph error) resumes with `createdDateTime ge since and le <frontier rounded up to the
second>`, skipping sign-ins newer than the frontier and those at the frontier whose id was
folded. An in-progress range is finished before a new one starts; a read whose deadline passes
starts no new page and reports itself incomplete (`SignInReadState`).
Within one execution, ranges left in progress are read first, then the streams furthest
behind, then (a second round) the range up to now of streams that finished an older one, so a
budget spread over executions reaches every stream.

**Counting is idempotent: re-reading any range never counts a sign-in twice.** Each aggregate
keeps, per stream key:
- `counted_through` (a `CountMark`): the newest sign-in counted in that stream's completed
  ranges, with the ids counted at exactly that instant;
- `counting` (a `RangeMark`): the range in progress (its id, `since/until`), the newest sign-in
  counted in it and the ids at that instant, and the oldest counted (the aggregate's frontier)
  and the ids at it. Within a range pages arrive newest first, so every sign-in of the aggregate
  read in that range lies between the two.
A re-read sign-in is already counted iff it is at or before `counted_through` (ties broken by
id; old rows hold a bare instant per event type, which covers every sign-in at it) or inside
the range mark (strictly between its ends, or at an end with its id listed). Otherwise it is
counted and the range mark widened. When the aggregate is next touched by a *different* range of
the same stream, the old range (necessarily completed: a stream finishes a range before it
starts another) counts as folded into `counted_through`; it is written so when the row next
changes (a re-read that changes nothing writes nothing). Because the marks are stored in the same row as
the count, a crash between writing the aggregates and writing the checkpoint recounts nothing:
the page is read again and every sign-in on it is inside the range marks.
The price: `count` is a lower bound. A sign-in that arrives late and is older than one of the
same aggregate already counted (in a completed range, or between the ends of the range mark) is
folded (names, first and last seen) but not counted. The checks report "at least N" sign-ins.

**Mode switches never double count.** The streams of the new mode replace the old ones in one
transaction; each starts with `floor` = the instant through which the old mode had read (the
furthest of its streams) and `read_through` = where the least advanced old stream stopped (so it
reads from there less the overlap, not the whole window, and skips nothing an old stream had
still to read), and it counts only sign-ins newer than its floor: what lies at or before it was
counted by the old mode. A switch waits until the old mode has no range in progress. Marks of
the old streams are dropped from an aggregate's row when it next changes.

**Across event types.** A sign-in listing both event types (Graph does not document one) is
counted by the interactive streams only.

**Window.** All stored aggregates whose `last_seen` lies within the look-back window (plus
`WINDOW_MARGIN`; the checks apply the exact window) are returned; older ones are deleted: those
sign-ins have aged out, and the finding lifecycle resolves them as "no longer observed".

Errors: a licence 403 is `licence:AAD_PREMIUM`, a permission 403 `permission:AuditLog.Read.All`,
`Authentication_ApplicationHasNoDirectoryReadAccess` `permission:Directory.Read.All` (SPEC §6),
all through `partnerguard.graph.errors`; the pages read before the error stay checkpointed. A
failed sign-in to the tenant propagates, as in the collector. Storage errors propagate too: the
collector reports them as the check's `error`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from checks import sign_in_matches
from checks.support.sign_in_evidence import SignInMatch
from partnerguard.graph.client import GraphClient
from partnerguard.graph.errors import GraphError, SignInFailed
from partnerguard.model import SignInAggregate, SignInReadState, Unavailable
from partnerguard.read_plan import SignInFilterMode
from partnerguard.sign_in_streams import (
    EVENT_TYPES,
    INTERACTIVE,
    NON_INTERACTIVE,
    PAGE_SIZE,
    Stream,
    choose_mode,
    filter_time,
    streams_of,
)
from partnerguard.storage.sign_in_aggregates import (
    AggregateRecord,
    CountMark,
    RangeMark,
    SignInStore,
    StreamMode,
    StreamState,
    aggregate_key,
    storable_name,
)

__all__ = [
    "EVENT_TYPES",
    "INTERACTIVE",
    "NON_INTERACTIVE",
    "WATERMARK_OVERLAP",
    "WINDOW_MARGIN",
    "SignInCollection",
    "SignInFold",
    "begin_range",
    "collect_sign_ins",
    "parse_created",
]

log = logging.getLogger(__name__)

# How far before `read_through` later ranges start. Microsoft documented sign-in log latency as
# 2 minutes at the 95th and 5 minutes at the 99th percentile (the former "Azure AD reporting
# latencies" reference), and says today that delays in the underlying infrastructure add to it
# without a bound (https://learn.microsoft.com/entra/identity/monitoring-health/reference-log-latency).
# Two hours is 24 times the documented 99th percentile and costs little: re-read sign-ins are
# not counted again.
WATERMARK_OVERLAP = timedelta(hours=2)
# Aggregates are returned (and kept) this long past the look-back window; the checks apply the
# exact window to `last_seen` against their own clock.
WINDOW_MARGIN = timedelta(hours=1)


def _floor_second(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def _ceil_second(moment: datetime) -> datetime:
    floored = _floor_second(moment)
    return floored if floored == moment else floored + timedelta(seconds=1)


def parse_created(value: Any) -> datetime | None:
    """A sign-in's createdDateTime (ISO 8601, up to 7 fractional digits) as a UTC instant."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _sign_in_id(sign_in: Mapping[str, Any]) -> str:
    value = sign_in.get("id")
    return value if isinstance(value, str) else ""


# -- the fold ---------------------------------------------------------------------------------


class SignInFold:
    """The tenant's aggregates, updated sign-in by sign-in. Knows nothing of Graph or storage."""

    def __init__(self, records: Iterable[AggregateRecord], active_keys: Iterable[str] = ()) -> None:
        self.records: dict[tuple[str, str], AggregateRecord] = {record.key: record for record in records}
        self.dirty: set[tuple[str, str]] = set()
        # Stream keys whose marks are kept; marks of streams that no longer exist (a mode switch
        # replaced them, and their floor protects the new ones) are dropped when a row is touched.
        self.active_keys = frozenset(active_keys)
        self._stream_key = ""
        self._event_type = ""
        self._range_id = ""
        self._floor: datetime | None = None
        # (rule, subject id as matched) -> its storage key; subjects recur on most sign-ins, and
        # making an id storable measures it character by character.
        self._keys: dict[tuple[str, str], tuple[str, str]] = {}

    def start_stream(
        self,
        stream_key: str,
        event_type: str | None = None,
        range_id: str | None = None,
        floor: datetime | None = None,
    ) -> None:
        """Fold what follows as stream `stream_key` (of `event_type`; default: the key, as for
        full streams) reading range `range_id` (default: a new range per call)."""
        self._stream_key = stream_key
        self._event_type = event_type or stream_key
        self.dirty = set()
        self._range_id = range_id if range_id is not None else f"call-{time.monotonic_ns()}"
        self._floor = floor

    def changed(self) -> list[AggregateRecord]:
        """The records this stream changed and not yet taken."""
        return [self.records[key] for key in sorted(self.dirty)]

    def take_dirty(self) -> list[AggregateRecord]:
        """The records changed since the last call (to be written), and forget they changed."""
        changed = [self.records[key] for key in sorted(self.dirty)]
        self.dirty = set()
        return changed

    def _owns(self, sign_in: Mapping[str, Any]) -> bool:
        """Whether this stream counts the sign-in (one that lists an earlier event type was
        counted by that type's streams)."""
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
        sign_in_id = _sign_in_id(sign_in)
        counted = 0
        for found in matches:
            counted += self._fold(found, created, sign_in_id, owned)
        return len(matches), counted

    def _fold(self, found: SignInMatch, created: datetime, sign_in_id: str, owned: bool) -> int:
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
            done, mark = self._marks(record)
            if not _covered(done, mark, created, sign_in_id, self._floor):
                # Only a row that changes anyway takes the lazy fold of a completed range and
                # loses the marks of streams that no longer exist: a re-read writes nothing.
                if done is not None:
                    record.counted_through[self._stream_key] = done
                record.counting[self._stream_key] = (
                    mark.including(created, sign_in_id)
                    if mark is not None
                    else RangeMark(self._range_id, created, frozenset({sign_in_id}), created, frozenset({sign_in_id}))
                )
                self._drop_gone_marks(record)
                record.count += 1
                counted = 1
                changed = True
        # A re-read sign-in that changes nothing (the usual case in the overlap) writes nothing.
        if changed:
            self.dirty.add(key)
        return counted

    def _marks(self, record: AggregateRecord) -> tuple[CountMark | None, RangeMark | None]:
        """The record's completed mark and the current range's mark for this stream, a mark of
        an earlier (hence completed) range folded into the former."""
        done = record.counted_through.get(self._stream_key)
        mark = record.counting.get(self._stream_key)
        if mark is not None and mark.range_id != self._range_id:
            return mark.completed(done), None
        return done, mark

    def _drop_gone_marks(self, record: AggregateRecord) -> None:
        if not self.active_keys:
            return
        for gone in [stream_key for stream_key in record.counted_through if stream_key not in self.active_keys]:
            del record.counted_through[gone]
        for gone in [stream_key for stream_key in record.counting if stream_key not in self.active_keys]:
            del record.counting[gone]

    def aged_out(self, cutoff: datetime) -> list[tuple[str, str]]:
        return sorted(key for key, record in self.records.items() if record.last_seen < cutoff)

    def forget(self, keys: Iterable[tuple[str, str]]) -> None:
        for key in keys:
            self.records.pop(key, None)
            self.dirty.discard(key)

    def aggregates(self) -> list[SignInAggregate]:
        return [self.records[key].to_aggregate() for key in sorted(self.records)]


def _covered(
    done: CountMark | None, mark: RangeMark | None, created: datetime, sign_in_id: str, floor: datetime | None
) -> bool:
    """Whether the sign-in is already counted (or must not be: at or before the stream's floor)."""
    if floor is not None and created <= floor:
        return True
    if done is not None and done.covers(created, sign_in_id):
        return True
    return mark is not None and mark.covers(created, sign_in_id)


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


# -- planning -----------------------------------------------------------------------------------


@dataclass
class StreamStats:
    pages: int = 0
    sign_ins: int = 0
    matches: int = 0
    counted: int = 0
    skipped: int = 0  # no readable createdDateTime, outside the range, or folded before a resume
    transactions: int = 0


@dataclass
class _Deadline:
    at: float | None
    clock: Callable[[], float]

    def passed(self) -> bool:
        return self.at is not None and self.clock() >= self.at


def _range_id(state: StreamState) -> str:
    assert state.range_since is not None and state.range_until is not None
    return f"{state.range_since.isoformat()}/{state.range_until.isoformat()}"


def _covers_window(state: StreamState, now: datetime, lookback: timedelta) -> bool:
    """Whether the stored aggregates are complete back to the window's start (else a longer
    look-back than before: the whole window is read again)."""
    return (
        state.read_through is not None
        and state.covered_from is not None
        and state.covered_from <= _floor_second(now - lookback)
    )


def _up_to_date(state: StreamState, now: datetime, lookback: timedelta) -> bool:
    """Nothing to read: the stream has read through exactly `now` and covers the window. A
    `read_through` after `now` (an execution whose clock ran ahead) is not trusted: the range
    from it less the overlap up to `now` is read again."""
    return (
        _covers_window(state, now, lookback)
        and state.read_through is not None
        and state.read_through == _floor_second(now)
    )


def begin_range(state: StreamState, now: datetime, lookback: timedelta) -> StreamState:
    """The stream's next range: the whole window when nothing (or too little) was read before,
    else from read_through less the overlap; never before the window, never after `now`."""
    until = _floor_second(now)
    window_start = _floor_second(now - lookback)
    if not _covers_window(state, now, lookback) or state.read_through is None or state.covered_from is None:
        since, covered_from = window_start, window_start
    else:
        since = max(window_start, _floor_second(state.read_through - WATERMARK_OVERLAP))
        covered_from = state.covered_from
    return replace(
        state,
        covered_from=covered_from,
        range_since=min(since, until),
        range_until=until,
        frontier=None,
        frontier_ids=(),
        range_read=0,
        range_pages=0,
    )


def _range_hours(states: Iterable[StreamState], now: datetime, lookback: timedelta) -> float:
    """Hours the next range of these streams would span (the longest of them)."""
    window_start = now - lookback
    hours = 0.0
    for state in states:
        if state.read_through is None or state.covered_from is None or state.covered_from > window_start:
            start = window_start
        else:
            start = max(window_start, state.read_through - WATERMARK_OVERLAP)
        hours = max(hours, (now - start).total_seconds() / 3600)
    return hours if hours > 0 else lookback.total_seconds() / 3600


def _measured(states: Iterable[StreamState]) -> float | None:
    rates = [state.density for state in states if state.density is not None]
    return max(rates) if rates else None


def _switched(event_type: str, mode: StreamMode, old: Sequence[StreamState]) -> list[StreamState]:
    """The new mode's streams, replacing `old` (none in progress). Each counts only what is newer
    than the furthest any old stream had read (`floor`: the old mode counted up to there), and
    starts reading where the *least* advanced one had stopped (less the overlap), so nothing an
    old stream had still to read is skipped: it is folded, and counted when newer than the floor.
    An old stream that never completed a range makes the new ones read the whole window."""
    reads = [state.read_through for state in old]
    floors = [moment for moment in (*reads, *(state.floor for state in old)) if moment is not None]
    floor = max(floors) if floors else None
    start = None if not reads or None in reads else min(moment for moment in reads if moment is not None)
    covered = [state.covered_from for state in old]
    covered_from = None if start is None or None in covered else max(c for c in covered if c is not None)
    return [
        StreamState(
            key=stream.key,
            event_type=event_type,
            mode=mode,
            read_through=start,
            covered_from=covered_from,
            floor=floor,
            density=_measured(old),
        )
        for stream in streams_of(event_type, mode)
    ]


# -- reading -----------------------------------------------------------------------------------


@dataclass
class _Run:
    """One call's context: where it writes, what it folds into, when it must stop."""

    client: GraphClient
    store: SignInStore
    tenant_id: str
    now: datetime
    cutoff: datetime
    fold: SignInFold
    deadline: _Deadline
    pages: int = 0
    advanced: bool = False  # some page folded a sign-in not read before, or a range completed
    stopped: bool = False


async def _read_range(run: _Run, stream: Stream, state: StreamState) -> tuple[StreamState, StreamStats]:
    """Read (or resume) the stream's range in progress, page by page, checkpointing after each.
    Returns the final state: completed, or still in progress when the deadline stopped it."""
    assert state.range_since is not None and state.range_until is not None
    since, until = state.range_since, state.range_until
    stats = StreamStats()
    run.fold.start_stream(stream.key, stream.event_type, _range_id(state), state.floor)
    upper = until if state.frontier is None else min(until, _ceil_second(state.frontier))
    resumed_at, resumed_ids = state.frontier, frozenset(state.frontier_ids)
    async for page in run.client.pages(stream.request(since, upper)):
        frontier, frontier_ids = state.frontier, set(state.frontier_ids)
        read = 0
        for sign_in in page:
            stats.sign_ins += 1
            created = parse_created(sign_in.get("createdDateTime"))
            # Outside the range asked for means Graph did not apply the filter: folding it could
            # move the frontier past sign-ins never read.
            if created is None or not since <= created <= until:
                stats.skipped += 1
                continue
            sign_in_id = _sign_in_id(sign_in)
            if resumed_at is not None and (
                created > resumed_at or (created == resumed_at and sign_in_id in resumed_ids)
            ):
                stats.skipped += 1  # folded before the resume
                continue
            read += 1
            matched, counted = run.fold.add(sign_in, created)
            stats.matches += matched
            stats.counted += counted
            if frontier is None or created < frontier:
                frontier, frontier_ids = created, {sign_in_id}
            elif created == frontier:
                frontier_ids.add(sign_in_id)
        stats.pages += 1
        run.pages += 1
        run.advanced = run.advanced or read > 0
        # The aggregates first, then the checkpoint that accounts for them: a crash in between
        # re-reads this page, and the range marks keep it from counting twice.
        stats.transactions += await asyncio.to_thread(run.store.save_aggregates, run.tenant_id, run.fold.take_dirty())
        state = replace(
            state,
            frontier=frontier,
            frontier_ids=tuple(sorted(frontier_ids)),
            range_read=state.range_read + read,
            range_pages=state.range_pages + 1,
        )
        await asyncio.to_thread(run.store.save_stream, run.tenant_id, state, run.now)
        # A short page is (almost always) the last: asking for the next costs no request when
        # Graph sent no nextLink, and finishing the range spares the next execution a request
        # that would only re-serve the frontier. Should Graph page short anyway, one page more.
        if run.deadline.passed() and len(page) >= PAGE_SIZE:
            run.stopped = True
            return state, stats
    run.advanced = True
    return _completed(state, run.cutoff), stats


def _completed(state: StreamState, cutoff: datetime) -> StreamState:
    """The state once its range is read to the end."""
    assert state.range_since is not None and state.range_until is not None
    density = state.density
    if state.mode == "full":
        hours = (state.range_until - state.range_since).total_seconds() / 3600
        if hours > 0:
            density = state.range_read / hours
    return replace(
        state,
        read_through=state.range_until,
        # Aggregates last seen before `cutoff` are deleted, so what is stored is complete from
        # `cutoff` on at best: a look-back lengthened later re-reads.
        covered_from=max(state.covered_from or state.range_since, cutoff),
        density=density,
        range_since=None,
        range_until=None,
        frontier=None,
        frontier_ids=(),
        range_read=0,
        range_pages=0,
    )


@dataclass(frozen=True)
class SignInCollection:
    """What `collect_sign_ins` returns: the aggregates (or why none) and how far the read got."""

    aggregates: Sequence[SignInAggregate] | Unavailable
    read: SignInReadState | None = None
    modes: Mapping[str, str] = field(default_factory=dict)


async def _choose_streams(
    run: _Run,
    event_type: str,
    states: dict[str, StreamState],
    plan: SignInFilterMode,
    user_count: int | None,
    lookback: timedelta,
) -> tuple[StreamMode, tuple[Stream, ...]]:
    """Choose the event type's mode, switching its stored streams when it changes; returns the
    mode and the streams to read."""
    mine = [state for state in states.values() if state.event_type == event_type]
    current: StreamMode | None = None
    if mine:
        in_progress = [state for state in mine if state.in_progress]
        current = (in_progress or mine)[0].mode
    # A switch waits until every stream of the current mode has read through the same instant:
    # the new mode counts only what is newer than that instant (its floor), so a stream still
    # behind would leave sign-ins read but never counted.
    unsettled = any(state.in_progress for state in mine) or len({state.read_through for state in mine}) > 1
    choice = choose_mode(
        plan,
        event_type,
        current=current,
        in_progress=unsettled,
        measured_per_hour=_measured(mine),
        user_count=user_count,
        range_hours=_range_hours(mine, run.now, lookback),
    )
    wanted = {stream.key for stream in streams_of(event_type, choice.mode)}
    if not mine or current != choice.mode or {state.key for state in mine} != wanted:
        # A first read, a mode switch, or a stream set that changed (a new legacy value).
        kept = {state.key: state for state in mine if state.mode == choice.mode and state.key in wanted}
        if current == choice.mode:
            # Same mode, a stream more (a legacy value added): its queries overlap none of the
            # others', so it reads from the window's start; what an earlier mode counted (up to
            # the siblings' floor) it must not count again.
            floors = [state.floor for state in mine if state.floor is not None]
            fresh = [
                StreamState(
                    stream.key, event_type, choice.mode, floor=max(floors) if floors else None, density=_measured(mine)
                )
                for stream in streams_of(event_type, choice.mode)
                if stream.key not in kept
            ]
        else:
            fresh = [state for state in _switched(event_type, choice.mode, mine) if state.key not in kept]
        if mine and current != choice.mode:
            log.info(
                "tenant %s: %s sign-ins switch from %s to %s mode (%s); counting from %s on",
                run.tenant_id,
                event_type,
                current,
                choice.mode,
                choice.why,
                fresh[0].floor.isoformat() if fresh and fresh[0].floor else "the window's start",
            )
        gone = [state.key for state in mine if state.key not in kept]
        await asyncio.to_thread(run.store.replace_streams, run.tenant_id, fresh, gone, run.now)
        for key in gone:
            states.pop(key, None)
        states.update({state.key: state for state in fresh})
    # Marks of streams that no longer exist are dropped from rows as they are touched.
    run.fold.active_keys = frozenset(states)
    log.info("tenant %s: %s sign-ins read in %s mode: %s", run.tenant_id, event_type, choice.mode, choice.why)
    return choice.mode, streams_of(event_type, choice.mode)


_NEVER = datetime.min.replace(tzinfo=UTC)


async def _read_streams(
    run: _Run, streams: Sequence[Stream], states: dict[str, StreamState], lookback: timedelta
) -> None:
    """Read every stream up to now, or until the deadline passes. Ranges left in progress come
    first, then the streams furthest behind, so that a short budget spread over several
    executions reaches every stream instead of re-reading the first one's newest minutes. A
    stream whose range in progress ends before now reads the range up to now in a second round,
    after every stream had its turn."""
    order = sorted(
        streams, key=lambda stream: (not states[stream.key].in_progress, states[stream.key].read_through or _NEVER)
    )
    for _ in range(2):
        for stream in order:
            state = states[stream.key]
            if run.stopped or run.deadline.passed():
                run.stopped = True
                return
            if not state.in_progress:
                if _up_to_date(state, run.now, lookback):
                    continue
                state = begin_range(state, run.now, lookback)
                # Stored before the first request: a crash after a page's aggregates but before
                # its checkpoint then resumes this same range, whose marks cover that page.
                await asyncio.to_thread(run.store.save_stream, run.tenant_id, state, run.now)
            states[stream.key] = await _read_logged(run, stream, state)


async def _read_logged(run: _Run, stream: Stream, state: StreamState) -> StreamState:
    """Read the stream's range in progress (`_read_range`), store it once completed, log it."""
    assert state.range_since is not None and state.range_until is not None
    since, until, resumed = state.range_since, state.range_until, state.frontier
    state, stats = await _read_range(run, stream, state)
    if not state.in_progress:
        await asyncio.to_thread(run.store.save_stream, run.tenant_id, state, run.now)
    log.info(
        "tenant %s: stream %s %s..%s%s: %d read in %d page(s), %d rule match(es), %d counted, %d skipped, "
        "%d transaction(s)%s",
        run.tenant_id,
        stream.key,
        filter_time(since),
        filter_time(until),
        f" (resumed at {resumed.isoformat()})" if resumed else "",
        stats.sign_ins,
        stats.pages,
        stats.matches,
        stats.counted,
        stats.skipped,
        stats.transactions,
        "; stopped at the deadline" if state.in_progress else "",
    )
    return state


def _read_state(
    finals: Sequence[StreamState],
    now: datetime,
    lookback: timedelta,
    pages: int,
    modes: Mapping[str, str],
    *,
    advanced: bool,
) -> SignInReadState:
    """Complete when every stream has read through `now`; else how far back the read reached:
    the latest frontier of the unfinished streams (a stream not begun in this execution has
    reached nothing: `now`)."""
    until = _floor_second(now)
    unfinished = [
        state for state in finals if state.in_progress or state.read_through is None or state.read_through < until
    ]
    read_back_to: datetime | None = None
    if unfinished:
        read_back_to = max(
            (state.frontier or state.range_until or now) if state.in_progress else now for state in unfinished
        )
    return SignInReadState(
        complete=not unfinished,
        window_start=now - lookback,
        window_hours=math.ceil(lookback.total_seconds() / 3600),
        read_back_to=read_back_to,
        pages=pages,
        modes=dict(modes),
        advanced=advanced,
    )


async def collect_sign_ins(
    client: GraphClient,
    store: SignInStore,
    tenant_id: str,
    now: datetime,
    lookback: timedelta,
    *,
    plan: SignInFilterMode = "auto",
    user_count: int | None = None,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SignInCollection:
    """Read the sign-ins new since the last scan (or resume the read in progress), fold them into
    the stored aggregates, and return the aggregates seen within `lookback` of `now` (plus
    `WINDOW_MARGIN`) with how far the read got. No new page is started once `clock()` reaches
    `deadline`; the read continues in the next call."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    if lookback <= timedelta(0):
        raise ValueError("the look-back window must be positive")
    cutoff = now - lookback - WINDOW_MARGIN
    states = await asyncio.to_thread(store.streams, tenant_id)
    records = await asyncio.to_thread(lambda: list(store.aggregates(tenant_id)))
    run = _Run(client, store, tenant_id, now, cutoff, SignInFold(records), _Deadline(deadline, clock))
    modes: dict[str, str] = {}
    streams: list[Stream] = []
    for event_type in EVENT_TYPES:
        mode, chosen = await _choose_streams(run, event_type, states, plan, user_count, lookback)
        modes[event_type] = mode
        streams.extend(chosen)
    try:
        await _read_streams(run, streams, states, lookback)
    except SignInFailed:
        raise
    except GraphError as error:
        log.warning("tenant %s: could not read sign-ins: %s", tenant_id, error)
        return SignInCollection(error.unavailable(), None, modes)
    finals = [states[stream.key] for stream in streams]
    aged = run.fold.aged_out(cutoff)
    if aged:
        await asyncio.to_thread(store.delete_aggregates, tenant_id, aged)
        run.fold.forget(aged)
        # What is stored is complete from `cutoff` on at best now: a look-back lengthened later
        # must read the longer window again.
        for key, state in list(states.items()):
            if state.covered_from is not None and state.covered_from < cutoff:
                states[key] = replace(state, covered_from=cutoff)
                await asyncio.to_thread(store.save_stream, tenant_id, states[key], now)
        log.info("tenant %s: %d sign-in aggregate(s) aged out of the window and were deleted", tenant_id, len(aged))
    read_state = _read_state(finals, now, lookback, run.pages, modes, advanced=run.advanced)
    if not read_state.complete:
        log.info(
            "tenant %s: sign-in read incomplete after %d page(s): read back to %s; it continues in the next execution",
            tenant_id,
            run.pages,
            read_state.read_back_to.isoformat() if read_state.read_back_to else "?",
        )
    return SignInCollection(run.fold.aggregates(), read_state, modes)

"""The sign-in fold and read planning as pure functions: no Graph, no storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from partnerguard.sign_in_collection import (
    INTERACTIVE,
    NON_INTERACTIVE,
    WATERMARK_OVERLAP,
    SignInFold,
    begin_range,
    parse_created,
)
from partnerguard.storage.sign_in_aggregates import StreamState
from tests.sign_in_builders import APP, OTHER_USER, USER, legacy, sign_in

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
WEEK = timedelta(hours=168)

LEGACY = "legacy-auth.sign-ins"
SINGLE_FACTOR = "sign-ins.single-factor"
ROPC = "sam.password-grant"


def fold_all(fold: SignInFold, event_type: str, sign_ins: list[dict[str, Any]]) -> int:
    """Fold one stream; returns how many times something was counted."""
    fold.start_stream(event_type)
    counted = 0
    for item in sign_ins:
        created = parse_created(item["createdDateTime"])
        assert created is not None
        counted += fold.add(item, created)[1]
    return counted


def by_rule(fold: SignInFold, rule: str) -> dict[str, Any]:
    return {aggregate.subject_id: aggregate for aggregate in fold.aggregates() if aggregate.rule == rule}


# -- planning the read -------------------------------------------------------------------------


def fresh(read_through: datetime | None = None, covered_from: datetime | None = None) -> StreamState:
    return StreamState(INTERACTIVE, INTERACTIVE, "full", read_through=read_through, covered_from=covered_from)


def test_first_scan_reads_the_whole_window() -> None:
    state = begin_range(fresh(), NOW, WEEK)
    assert (state.range_since, state.range_until, state.covered_from) == (NOW - WEEK, NOW, NOW - WEEK)
    assert state.frontier is None and state.range_read == 0


def test_later_scans_read_from_where_the_last_range_ended_less_the_overlap() -> None:
    read_through = NOW - timedelta(hours=6, microseconds=250)
    state = begin_range(fresh(read_through, NOW - WEEK - timedelta(days=1)), NOW, WEEK)
    # Truncated to the second: only ever reads a little more.
    assert state.range_since == (read_through - WATERMARK_OVERLAP).replace(microsecond=0)
    assert state.range_until == NOW
    assert state.covered_from == NOW - WEEK - timedelta(days=1)


def test_a_read_through_older_than_the_window_reads_only_the_window() -> None:
    state = begin_range(fresh(NOW - timedelta(days=30), NOW - timedelta(days=40)), NOW, WEEK)
    assert state.range_since == NOW - WEEK


def test_a_longer_look_back_than_the_reads_covered_rereads_the_window() -> None:
    state = begin_range(fresh(NOW - timedelta(hours=1), NOW - timedelta(hours=24)), NOW, WEEK)
    assert state.range_since == state.covered_from == NOW - WEEK


def test_now_is_truncated_to_the_second_in_the_filter() -> None:
    state = begin_range(fresh(), NOW + timedelta(milliseconds=900), WEEK)
    assert state.range_until == NOW


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-26T11:59:58.1234567Z", datetime(2026, 11, 26, 11, 59, 58, 123456, tzinfo=UTC)),
        ("2026-11-26T11:59:58Z", datetime(2026, 11, 26, 11, 59, 58, tzinfo=UTC)),
        ("2026-11-26T13:59:58+02:00", datetime(2026, 11, 26, 11, 59, 58, tzinfo=UTC)),
        ("not a time", None),
        ("", None),
        (None, None),
        (17, None),
    ],
)
def test_created_date_time_parsing(value: Any, expected: datetime | None) -> None:
    assert parse_created(value) == expected


# -- folding -----------------------------------------------------------------------------------


def test_each_rule_gets_its_own_aggregate_per_subject() -> None:
    fold = SignInFold([])
    times = [NOW - timedelta(hours=h) for h in (1, 5, 30)]
    counted = fold_all(
        fold,
        INTERACTIVE,
        [
            legacy(times[0]),
            legacy(times[1]),
            legacy(times[2], client_app="POP3"),
            sign_in(times[0], protocol="ropc", requirement="singleFactorAuthentication", user_id=OTHER_USER),
            sign_in(times[1]),  # MFA through a browser: no rule
        ],
    )
    assert set(by_rule(fold, LEGACY)) == {f"{USER}|imap4", f"{USER}|pop3"}
    imap = by_rule(fold, LEGACY)[f"{USER}|imap4"]
    assert (imap.count, imap.first_seen, imap.last_seen) == (2, times[1], times[0])
    assert imap.event_types == (INTERACTIVE,)
    assert set(by_rule(fold, SINGLE_FACTOR)) == {f"{USER}|{APP}", f"{OTHER_USER}|{APP}"}
    assert by_rule(fold, SINGLE_FACTOR)[f"{USER}|{APP}"].count == 3
    assert set(by_rule(fold, ROPC)) == {f"{APP}|{OTHER_USER}"}
    # 3 legacy + 3 single-factor (user) + 1 single-factor (other) + 1 ropc
    assert counted == 8


def test_failed_sign_ins_are_not_folded() -> None:
    fold = SignInFold([])
    fold_all(fold, INTERACTIVE, [legacy(NOW - timedelta(hours=1), error_code=50126)])
    assert fold.aggregates() == []
    assert fold.changed() == []


def test_rereading_a_stream_counts_nothing_twice() -> None:
    stream = [legacy(NOW - timedelta(hours=h)) for h in (1, 2, 3)]
    fold = SignInFold([])
    assert fold_all(fold, INTERACTIVE, stream) == 6  # legacy + single-factor, three times
    assert fold_all(fold, INTERACTIVE, stream) == 0
    assert by_rule(fold, LEGACY)[f"{USER}|imap4"].count == 3


def test_newest_first_or_oldest_first_within_a_range_folds_the_same() -> None:
    # Graph lists sign-ins newest first; a range's mark spans what it counted, so either
    # monotonic order counts every sign-in once.
    stream = [legacy(NOW - timedelta(hours=h)) for h in (1, 2, 3, 7)]
    forward, backward = SignInFold([]), SignInFold([])
    fold_all(forward, INTERACTIVE, stream)
    fold_all(backward, INTERACTIVE, list(reversed(stream)))
    assert forward.aggregates() == backward.aggregates()
    assert by_rule(forward, LEGACY)[f"{USER}|imap4"].count == 4


def test_a_sign_in_out_of_graphs_order_inside_a_ranges_mark_is_folded_not_counted() -> None:
    """Graph documents newest-first order; should it break it, the count stays a lower bound."""
    fold = SignInFold([])
    fold_all(fold, INTERACTIVE, [legacy(NOW - timedelta(hours=h)) for h in (1, 7, 3)])
    imap = by_rule(fold, LEGACY)[f"{USER}|imap4"]
    assert (imap.count, imap.first_seen, imap.last_seen) == (2, NOW - timedelta(hours=7), NOW - timedelta(hours=1))


def test_a_late_sign_in_newer_than_what_was_counted_is_counted() -> None:
    fold = SignInFold([])
    fold_all(fold, INTERACTIVE, [legacy(NOW - timedelta(hours=5))])
    # Arrived late: older than the next scan's newest sign-in, newer than this subject's last.
    counted = fold_all(fold, INTERACTIVE, [legacy(NOW - timedelta(hours=4)), legacy(NOW - timedelta(hours=1))])
    aggregate = by_rule(fold, LEGACY)[f"{USER}|imap4"]
    assert counted == 4
    assert aggregate.count == 3


def test_a_late_sign_in_older_than_what_was_counted_is_folded_but_not_counted() -> None:
    """The documented "at least" semantics."""
    fold = SignInFold([])
    fold_all(fold, INTERACTIVE, [legacy(NOW - timedelta(hours=1), name="Old Name")])
    late = NOW - timedelta(hours=3)
    fold_all(fold, INTERACTIVE, [legacy(late, name="Older Name")])
    aggregate = by_rule(fold, LEGACY)[f"{USER}|imap4"]
    assert aggregate.count == 1
    assert aggregate.first_seen == late
    assert aggregate.user_display_name == "Old Name"  # names come from the newest sign-in


def test_names_follow_the_newest_sign_in() -> None:
    fold = SignInFold([])
    fold_all(
        fold,
        INTERACTIVE,
        [legacy(NOW - timedelta(hours=1), name="Renamed"), legacy(NOW - timedelta(hours=9), name="Before")],
    )
    assert by_rule(fold, LEGACY)[f"{USER}|imap4"].user_display_name == "Renamed"


def test_each_event_type_counts_against_its_own_mark() -> None:
    fold = SignInFold([])
    fold_all(fold, INTERACTIVE, [sign_in(NOW - timedelta(hours=1), requirement="singleFactorAuthentication")])
    # Older than the interactive mark, but a different stream: counted.
    fold_all(
        fold,
        NON_INTERACTIVE,
        [sign_in(NOW - timedelta(hours=2), requirement="singleFactorAuthentication", event_type=NON_INTERACTIVE)],
    )
    aggregate = by_rule(fold, SINGLE_FACTOR)[f"{USER}|{APP}"]
    assert aggregate.count == 2
    assert aggregate.event_types == (INTERACTIVE, NON_INTERACTIVE)


def test_a_sign_in_in_both_streams_is_counted_once() -> None:
    both = legacy(NOW - timedelta(hours=1), event_types=[INTERACTIVE, NON_INTERACTIVE])
    fold = SignInFold([])
    fold_all(fold, INTERACTIVE, [both])
    fold_all(fold, NON_INTERACTIVE, [both])
    assert by_rule(fold, LEGACY)[f"{USER}|imap4"].count == 1


def test_changed_lists_only_what_the_current_stream_touched() -> None:
    fold = SignInFold([])
    fold_all(fold, INTERACTIVE, [legacy(NOW - timedelta(hours=1))])
    assert {record.rule for record in fold.changed()} == {LEGACY, SINGLE_FACTOR}
    fold_all(fold, NON_INTERACTIVE, [sign_in(NOW - timedelta(hours=1), event_type=NON_INTERACTIVE)])
    assert fold.changed() == []


def test_a_re_read_that_changes_nothing_writes_nothing() -> None:
    stream = [legacy(NOW - timedelta(hours=h)) for h in (1, 2)]
    fold = SignInFold([])
    fold_all(fold, INTERACTIVE, stream)
    fold_all(fold, INTERACTIVE, stream)
    assert fold.changed() == []
    fold_all(fold, INTERACTIVE, [*stream, legacy(NOW - timedelta(hours=1), name="Renamed")])
    assert {record.rule for record in fold.changed()} == {LEGACY, SINGLE_FACTOR}


def test_hostile_names_and_subject_ids_are_capped_before_storage() -> None:
    fold = SignInFold([])
    fold_all(fold, INTERACTIVE, [legacy(NOW, user_id="u/" + "x" * 9000, client_app="Other clients")])
    (aggregate,) = by_rule(fold, LEGACY).values()
    assert len(aggregate.subject_id) <= 4096
    assert aggregate.subject_id.startswith("u/xxx")


def test_aged_out_aggregates_are_listed_for_deletion() -> None:
    fold = SignInFold([])
    fold_all(fold, INTERACTIVE, [legacy(NOW - timedelta(days=9)), legacy(NOW, user_id=OTHER_USER)])
    aged = fold.aged_out(NOW - WEEK)
    assert aged == [(LEGACY, f"{USER}|imap4"), (SINGLE_FACTOR, f"{USER}|{APP}")]
    fold.forget(aged)
    assert {a.subject_id for a in fold.aggregates()} == {f"{OTHER_USER}|imap4", f"{OTHER_USER}|{APP}"}

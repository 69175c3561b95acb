"""`longest_gap`: the scan schedule (NCRONTAB, six fields) as the longest time between firings,
which the monitor doubles to decide when a tenant has gone too long without a successful scan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from partnerguard.schedule import HORIZON, ScheduleError, longest_gap
from partnerguard.settings import DEFAULT_SCAN_SCHEDULE


@pytest.mark.parametrize(
    ("schedule", "gap"),
    [
        ("0 0 */6 * * *", timedelta(hours=6)),
        ("0 */5 * * * *", timedelta(minutes=5)),
        ("0 0 * * * *", timedelta(hours=1)),
        # Daily on weekdays: Friday 09:00 to Monday 09:00.
        ("0 0 9 * * 1-5", timedelta(days=3)),
        ("0 30 2 * * SUN", timedelta(days=7)),
        ("0 30 2 * * sun", timedelta(days=7)),
        ("0 0 9 * * MON-FRI", timedelta(days=3)),
        ("0 0 9 * * Mon-Fri", timedelta(days=3)),
        # Monday and Thursday: Thursday to Monday is the longer gap.
        ("0 0 0 * * MON,THU", timedelta(days=4)),
        ("0 0 0 * * 1,4", timedelta(days=4)),
        # Lists and ranges of hours: 01:00 and 13:00, then 08:00 to 17:00 hourly (night gap).
        ("0 0 1,13 * * *", timedelta(hours=12)),
        ("0 0 8-17 * * *", timedelta(hours=15)),
        # Steps on a range: minutes 15, 30, 45 of each hour (45 to the next hour's 15).
        ("0 15-45/15 * * * *", timedelta(minutes=30)),
        ("0 0 0-23/8 * * *", timedelta(hours=8)),
        # A start with a step runs to the end of the field: 02:00, 09:00, 16:00, 23:00.
        ("0 0 2/7 * * *", timedelta(hours=7)),
        # The seconds field is ignored: a firing anywhere in a minute fires that minute.
        ("*/10 0 */6 * * *", timedelta(hours=6)),
    ],
)
def test_the_longest_gap_of_a_schedule(schedule: str, gap: timedelta) -> None:
    assert longest_gap(schedule) == gap


def test_the_default_schedule_is_six_hours() -> None:
    assert longest_gap(DEFAULT_SCAN_SCHEDULE) == timedelta(hours=6)


@pytest.mark.parametrize("sunday", ["0", "7", "SUN"])
def test_seven_is_sunday_too(sunday: str) -> None:
    assert longest_gap(f"0 0 12 * * {sunday}") == timedelta(days=7)
    # With Saturday: Sunday to Saturday is the gap, whichever way Sunday is written.
    assert longest_gap(f"0 0 12 * * 6,{sunday}") == timedelta(days=6)


def test_a_range_ending_in_seven_ends_on_sunday() -> None:
    # Friday, Saturday, Sunday: Sunday to Friday is the gap.
    assert longest_gap("0 0 12 * * 5-7") == timedelta(days=5)
    assert longest_gap("0 0 12 * * FRI-SAT,7") == timedelta(days=5)


def test_a_weekly_schedule_counts_the_same_whatever_day_the_window_starts() -> None:
    # 2026-01-01 is a Thursday; start on a Sunday and on a Monday instead.
    for start in (datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 2, 7, 13, tzinfo=UTC)):
        assert longest_gap("0 0 9 * * 1-5", start) == timedelta(days=3)


def test_month_names_restrict_the_months() -> None:
    # January only, from 1 January: daily until the window (35 days) leaves January. The gap
    # from 31 January to the next 1 January is outside the window, so daily is what it sees.
    assert longest_gap("0 0 0 * JAN *") == timedelta(days=1)
    assert longest_gap("0 0 0 * jan,FEB *") == timedelta(days=1)
    # Monthly on the first: January to February.
    assert longest_gap("0 0 0 1 * *") == timedelta(days=31)


def test_a_schedule_firing_once_or_never_in_the_window_has_at_least_the_window() -> None:
    assert longest_gap("0 0 0 1 JUN *") == HORIZON  # never between 1 January and 5 February
    # Once (1 January): one firing is no gap, and certainly not a one-minute one.
    assert longest_gap("0 0 0 1 JAN *") >= HORIZON
    assert longest_gap("0 0 0 31 * *") >= HORIZON


@pytest.mark.parametrize(
    "schedule",
    [
        "0 0 */6 * *",  # five fields
        "0 0 0 */6 * * *",  # seven fields
        "",
        "0 60 * * * *",  # minute out of range
        "0 0 24 * * *",  # hour out of range
        "0 0 0 0 * *",  # day 0
        "0 0 0 32 * *",
        "0 0 0 * 13 *",  # month 13
        "0 0 0 * 0 *",
        "0 0 0 * * 8",  # day of week 8
        "0 0 17-9 * * *",  # reversed range
        "0 */0 * * * *",  # step 0
        "0 0 */x * * *",  # step not a number
        "0 0 a * * *",
        "0 0 1- * * *",
        "0 0 1,,2 * * *",  # empty list item
        "0 0 0 * * MON-FUN",
        "0 0 0 * MON *",  # a day name in the month field
        "0 0 0 * * JAN",  # a month name in the day-of-week field
        "0 0 -1 * * *",
    ],
)
def test_a_bad_schedule_is_a_schedule_error(schedule: str) -> None:
    with pytest.raises(ScheduleError):
        longest_gap(schedule)


def test_a_schedule_error_is_a_value_error_naming_the_field() -> None:
    with pytest.raises(ValueError, match="hour"):
        longest_gap("0 0 25 * * *")

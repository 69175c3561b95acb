"""How often the scan timer fires: the longest gap between two firings of an NCRONTAB schedule.

The monitor alerts when a tenant has had no successful run for twice the schedule (issue 5 §5),
so it needs the schedule as a duration. NCRONTAB (`SCAN_SCHEDULE`, six fields: second minute
hour day month day-of-week, as the Functions timer reads it) is evaluated minute by minute over
`HORIZON`; the longest gap between consecutive firings is the interval that matters (`0 0 9 * *
1-5` fires daily on weekdays, but a tenant scanned on Friday is next scanned on Monday).

Supported per field: `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, lists, and the
English month and day names (`JAN`, `MON`), as NCrontab accepts them. Seconds are ignored (a
firing anywhere in the minute is a firing that minute).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import lru_cache

# Long enough to see weekly patterns twice and a month's day-of-month rules; a schedule with no
# firing in this window (e.g. once a year) has at least this as its gap.
HORIZON = timedelta(days=35)

_NAMES = {
    "month": {
        name: number
        for number, name in enumerate(
            ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1
        )
    },
    "dow": {name: number for number, name in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])},
}
_BOUNDS = {"minute": (0, 59), "hour": (0, 23), "day": (1, 31), "month": (1, 12), "dow": (0, 6)}


class ScheduleError(ValueError):
    pass


def _number(text: str, kind: str) -> int:
    names = _NAMES.get(kind, {})
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise ScheduleError(f"{text!r} is not a number in the {kind} field")
    return int(text)


def _field(text: str, kind: str) -> frozenset[int]:
    low, high = _BOUNDS[kind]
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = _number(step_text, kind) if step_text else 1
        if step < 1:
            raise ScheduleError(f"step {step} in the {kind} field")
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start, end = _number(first, kind), _number(last, kind)
        else:
            start = _number(body, kind)
            end = high if step_text else start
        if kind == "dow" and end == 7:  # 7 is Sunday too in cron dialects
            values.add(0)
            end = 6
            if start == 7:  # "7" alone: Sunday only
                continue
        if not (low <= start <= high and low <= end <= high and start <= end):
            raise ScheduleError(f"{part!r} is out of range {low}-{high} in the {kind} field")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@lru_cache(maxsize=16)
def longest_gap(schedule: str, start: datetime | None = None) -> timedelta:
    """The longest time between two consecutive firings of `schedule` over `HORIZON`."""
    fields = schedule.split()
    if len(fields) != 6:
        raise ScheduleError(f"an NCRONTAB schedule has six fields, got {len(fields)}")
    minutes, hours, days, months, weekdays = (
        _field(text, kind) for text, kind in zip(fields[1:], ("minute", "hour", "day", "month", "dow"), strict=True)
    )
    moment = (start or datetime(2026, 1, 1, tzinfo=UTC)).replace(second=0, microsecond=0)
    end = moment + HORIZON
    step = timedelta(minutes=1)
    previous: datetime | None = None
    longest = timedelta(0)
    while moment < end:
        if (
            moment.minute in minutes
            and moment.hour in hours
            and moment.day in days
            and moment.month in months
            and (moment.weekday() + 1) % 7 in weekdays
        ):
            if previous is not None:
                longest = max(longest, moment - previous)
            previous = moment
        moment += step
    if previous is None or longest == timedelta(0):
        # No firing, or one (a yearly or 31st-of-the-month schedule): no gap was seen in the
        # window, so the gap is at least the window.
        return HORIZON
    # The wrap-around gap (last firing in the window to the first of the next) is covered by the
    # window holding every weekly and monthly pattern more than once.
    return max(longest, step)

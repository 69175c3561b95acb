"""The compliance chart's geometry: one stacked column per stored run, oldest on the left.

Each completed run is a column of its check statuses (pass at the bottom, then not assessed,
error, and fail on top), so a tenant getting better shows green growing and red shrinking. A
run that failed before any check ran has no summary: it is drawn as a full-height column of its
own kind, so a gap in monitoring is visible rather than hidden. Queued and running runs are
left out. The result is plain numbers; the HTML template draws them as inline SVG (no script,
no library), and each column carries a tooltip (an SVG `<title>`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from partnerguard.storage.records import RunRecord

WIDTH = 720.0
HEIGHT = 190.0
MARGIN_LEFT = 34.0
MARGIN_RIGHT = 8.0
MARGIN_TOP = 10.0
MARGIN_BOTTOM = 26.0
# A column's share of its slot: the rest is the gap that keeps neighbours apart.
COLUMN_FILL = 0.7
MAX_COLUMN_WIDTH = 36.0

# Bottom to top.
STACK_ORDER = ("pass", "not_assessed", "error", "fail")
STATUS_LABELS = {"pass": "pass", "not_assessed": "not assessed", "error": "error", "fail": "fail"}
COMPLETED = ("succeeded", "failed")


@dataclass(frozen=True)
class Segment:
    status: str
    count: int
    y: float
    height: float


@dataclass(frozen=True)
class Column:
    run_id: str
    finished: datetime
    status: str
    x: float
    width: float
    segments: tuple[Segment, ...]
    # A failed run without a summary: drawn full height, in its own colour.
    no_summary: bool
    tooltip: str


@dataclass(frozen=True)
class Tick:
    value: int
    y: float


@dataclass(frozen=True)
class Chart:
    width: float
    height: float
    plot_left: float
    plot_right: float
    plot_top: float
    plot_bottom: float
    columns: tuple[Column, ...]
    ticks: tuple[Tick, ...]
    first_label: str
    last_label: str
    description: str


def compliance_chart(runs: Sequence[RunRecord]) -> Chart | None:
    """The chart of `runs` (any order), or None when no run completed."""
    completed = sorted(
        (r for r in runs if r.status in COMPLETED and r.finished is not None),
        key=lambda r: (r.finished, r.run_id),
    )
    if not completed:
        return None
    totals = [_total(r.summary) for r in completed if r.summary]
    y_max = max([*totals, 1])
    plot_left, plot_right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    plot_top, plot_bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
    plot_height = plot_bottom - plot_top
    slot = (plot_right - plot_left) / len(completed)
    width = min(slot * COLUMN_FILL, MAX_COLUMN_WIDTH)
    columns = []
    for index, run in enumerate(completed):
        x = plot_left + slot * index + (slot - width) / 2
        assert run.finished is not None  # filtered above
        summary = run.summary or {}
        segments: list[Segment] = []
        bottom = plot_bottom
        for status in STACK_ORDER:
            count = _count(summary.get(status))
            if not count:
                continue
            height = plot_height * count / y_max
            bottom -= height
            segments.append(Segment(status, count, round(bottom, 2), round(height, 2)))
        no_summary = not summary
        columns.append(
            Column(
                run_id=run.run_id,
                finished=run.finished,
                status=run.status,
                x=round(x, 2),
                width=round(width, 2),
                segments=tuple(segments),
                no_summary=no_summary,
                tooltip=_tooltip(run.finished, run.run_id, run.status, summary),
            )
        )
    ticks = tuple(Tick(value, round(plot_bottom - plot_height * value / y_max, 2)) for value in _tick_values(y_max))
    first, last = completed[0].finished, completed[-1].finished
    assert first is not None and last is not None
    latest = columns[-1]
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        plot_left=plot_left,
        plot_right=plot_right,
        plot_top=plot_top,
        plot_bottom=plot_bottom,
        columns=tuple(columns),
        ticks=ticks,
        first_label=f"{first:%Y-%m-%d %H:%M}",
        last_label=f"{last:%Y-%m-%d %H:%M} UTC",
        description=(
            f"Check statuses of the last {len(columns)} completed run(s), oldest first. "
            f"Latest: {latest.tooltip}."
        ),
    )


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _total(summary: Mapping[str, int]) -> int:
    return sum(_count(summary.get(status)) for status in STACK_ORDER)


def _tick_values(y_max: int) -> list[int]:
    """0, the top, and a middle line when it falls on a whole number of checks."""
    values = [0, y_max]
    if y_max >= 4 and y_max % 2 == 0:
        values.insert(1, y_max // 2)
    return values


def _tooltip(finished: datetime, run_id: str, status: str, summary: Mapping[str, int]) -> str:
    when = f"{finished:%Y-%m-%d %H:%M} UTC"
    if not summary:
        return f"{when}, run {run_id} {status} before any check ran"
    counts = ", ".join(f"{STATUS_LABELS[s]} {_count(summary.get(s))}" for s in reversed(STACK_ORDER))
    return f"{when}, run {run_id} {status}: {counts}"

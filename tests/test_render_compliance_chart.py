"""The compliance chart's geometry: columns per completed run, oldest first, heights to scale."""

from __future__ import annotations

from partnerguard.render.compliance_chart import compliance_chart
from partnerguard.storage.records import RunRecord
from tests.report_builders import NOW, TENANT_ID, runs


def test_no_completed_run_no_chart() -> None:
    assert compliance_chart([]) is None
    assert compliance_chart([RunRecord(TENANT_ID, "q", "queued"), RunRecord(TENANT_ID, "r", "running")]) is None


def test_columns_run_oldest_to_newest_and_stack_to_scale() -> None:
    chart = compliance_chart(runs(TENANT_ID, 3))  # newest first, as list_runs returns them
    assert chart is not None
    assert [c.run_id for c in chart.columns] == ["run-02", "run-01", "run-00"]
    xs = [c.x for c in chart.columns]
    assert xs == sorted(xs) and chart.columns[-1].x + chart.columns[-1].width <= chart.plot_right
    plot_height = chart.plot_bottom - chart.plot_top
    for column in chart.columns:
        # Ten checks fill the plot; each status's height is its share of them.
        assert [s.status for s in column.segments] == ["pass", "not_assessed", "fail"]
        assert abs(sum(s.height for s in column.segments) - plot_height) < 0.05
        assert column.segments[0].y + column.segments[0].height == chart.plot_bottom
        assert all(abs(s.height - plot_height * s.count / 10) < 0.01 for s in column.segments)
    assert [t.value for t in chart.ticks] == [0, 5, 10]
    assert chart.last_label == f"{NOW:%Y-%m-%d %H:%M} UTC"


def test_a_run_that_failed_before_any_check_is_a_column_of_its_own() -> None:
    chart = compliance_chart(runs(TENANT_ID, 4, failed_without_summary=(1,)))
    assert chart is not None
    failed = [c for c in chart.columns if c.no_summary]
    assert [c.run_id for c in failed] == ["run-01"] and failed[0].segments == ()
    assert "failed before any check ran" in failed[0].tooltip
    assert "Latest:" in chart.description and "run run-00 succeeded" in chart.description

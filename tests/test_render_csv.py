"""`--format csv`: one row per finding, safe to open in a spreadsheet, hostile text inert."""

from __future__ import annotations

import csv
import io

import pytest

from partnerguard.render.csv_export import COLUMNS, neutralise, render_csv
from tests.report_builders import (
    HOSTILE_FORMULA,
    HOSTILE_LONG,
    RAW_UNSAFE,
    TENANT_ID,
    history,
    hostile_report,
    report,
)


def parse(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("  =cmd|' /C calc'!A0", "'  =cmd|' /C calc'!A0"),
        ("\uff1d1+1", "'\uff1d1+1"),  # full-width equals sign
        ("Alice = admin", "Alice = admin"),
        ("", ""),
    ],
)
def test_cells_that_could_start_a_formula_are_prefixed(cell: str, expected: str) -> None:
    assert neutralise(cell) == expected


def test_one_row_per_finding_with_lifecycle_dates() -> None:
    hostile = hostile_report()
    text = render_csv([hostile], {TENANT_ID: history()})
    assert text.startswith(",".join(f'"{c}"' for c in COLUMNS) + "\r\n")
    rows = parse(text)
    assert len(rows) == sum(len(c.findings) for c in hostile.checks) == 10
    admin = next(r for r in rows if r["subject_id"] == "admin-1")
    assert admin["check_id"] == "mfa.registration" and admin["check_status"] == "fail"
    assert admin["severity"] == "critical" and admin["state"] == "open"
    assert admin["first_seen"] == "2025-05-29T12:00:00Z" and admin["last_seen"] == "2025-06-01T12:00:00Z"
    assert admin["tenant_id"] == TENANT_ID and admin["run_started"] == "2025-06-01T12:00:00Z"
    excepted = next(r for r in rows if r["state"] == "excepted")
    assert excepted["excepted_until"] == "2025-07-01"


def test_hostile_text_is_inert_in_every_cell() -> None:
    text = render_csv([hostile_report()], None)
    for char in RAW_UNSAFE:
        assert char not in text, repr(char)
    rows = parse(text)
    # Control characters never break a row: the header plus one physical line per finding.
    assert text.count("\r\n") == len(rows) + 1 and "\n" not in text.replace("\r\n", "")
    formula = next(r for r in rows if r["subject_name"].startswith("'="))
    assert formula["subject_name"] == "'" + HOSTILE_FORMULA and formula["detail"] == "'" + HOSTILE_FORMULA
    for row in rows:
        for value in row.values():
            assert not value or value[0] not in "=+-@\t\r", value
    long = next(r for r in rows if r["subject_id"] == "user-6")
    assert HOSTILE_LONG not in text and len(long["subject_name"]) == 1024
    assert rows[0]["tenant_name"].startswith("<img src=x onerror=")  # CSV is text: escaping is not HTML's


def test_a_report_without_findings_is_the_header_only() -> None:
    assert parse(render_csv([report()], None)) == []

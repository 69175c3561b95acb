"""docs/reliability.md says what the fault, bad-input, hostile-data and secrets suites measured.

These tests run after every other test of the session (tests/reliability.py moves them last), so
the ledger holds what this session's suites recorded (with pytest-xdist, in the same worker:
tests/parallel.py). A row recorded differently from the page, or not on it, fails; when every
suite ran (`make test`), a row on the page that no test recorded fails too. With
PARTNERGUARD_WRITE_RELIABILITY=1 and every suite run, the page is written first.
"""

from __future__ import annotations

import os

import pytest

from tests.reliability import (
    DOC_PATH,
    LEDGER,
    REGENERATE,
    SESSION,
    WRITE_VARIABLE,
    Row,
    compare,
    parse_document,
    render_document,
)


def committed_page() -> str:
    if not DOC_PATH.exists():
        pytest.fail(f"{DOC_PATH} is missing; generate it: {REGENERATE}")
    return DOC_PATH.read_text(encoding="utf-8")


def test_the_page_agrees_with_what_the_suites_measured() -> None:
    elsewhere = SESSION.elsewhere()
    if elsewhere:
        # pytest-xdist ran some of the suites in another worker: this process's ledger lacks
        # their figures. tests/parallel.py keeps them in one worker under `--dist loadfile`.
        pytest.fail(
            f"{len(elsewhere)} of the suites' tests did not run in this process (e.g. "
            f"{sorted(elsewhere)[0]}), so its ledger cannot be compared with {DOC_PATH.name}; "
            "run with the default `--dist loadfile` (pyproject.toml) or without workers (`-n 0`)"
        )
    recorded = list(LEDGER.values())
    complete = SESSION.complete()
    if os.environ.get(WRITE_VARIABLE) == "1":
        if not complete:
            pytest.fail(f"{DOC_PATH.name} is written from a run of every suite, every test: {REGENERATE}")
        if SESSION.failed:
            pytest.fail(f"not writing {DOC_PATH.name}: these suite tests failed: {sorted(SESSION.failed)}")
        DOC_PATH.write_text(render_document(recorded), encoding="utf-8")
    problems = compare(parse_document(committed_page()), recorded, complete=complete)
    assert not problems, "\n".join([*problems, f"if the suites changed on purpose, regenerate: {REGENERATE}"])


def test_the_page_is_exactly_the_rendering_of_its_rows() -> None:
    # Hand edits (a changed total, a reworded header, a row out of format) fail here even when
    # no suite ran this session.
    text = committed_page()
    assert render_document(parse_document(text)) == text, f"edited by hand? regenerate: {REGENERATE}"


# -- the comparison itself --------------------------------------------------------------------------

RESET = Row("faults", "Graph connection reset", "completed, same findings", 2)
BODY = Row("bad input", "POST body not {}", "400 JSON error", 30)


def test_a_row_measured_differently_or_missing_from_the_page_is_reported() -> None:
    measured_more = Row("faults", RESET.case, RESET.outcome, 3)
    assert compare([RESET], [measured_more], complete=False) == [
        "faults / 'Graph connection reset': the page says tried 2, 'completed, same findings', findings lost 0, "
        "duplicate emails 0, measured tried 3, 'completed, same findings', findings lost 0, duplicate emails 0"
    ]
    assert compare([RESET], [RESET, BODY], complete=False) == [
        "bad input / 'POST body not {}': measured but not on the page"
    ]
    lost = Row("faults", RESET.case, RESET.outcome, 2, findings_lost=1)
    assert len(compare([RESET], [lost], complete=False)) == 1


def test_rows_no_test_recorded_matter_only_when_every_suite_ran() -> None:
    assert compare([RESET, BODY], [RESET], complete=False) == []
    assert compare([RESET, BODY], [RESET], complete=True) == [
        "bad input / 'POST body not {}': on the page but no test recorded it"
    ]


def test_cells_with_pipes_and_backslashes_read_back() -> None:
    tricky = Row("hostile data", "name `a|b\\|c`", "shown as text \\ escaped |", 4, 0, 0)
    page = render_document([tricky, RESET])
    assert parse_document(page) == [RESET, tricky]  # the page lists suites in their fixed order
    assert "| 2 | 4 | 0 | 0 |" in page  # totals: faults injected, inputs tried, lost, duplicates
    with pytest.raises(ValueError, match="one line"):
        render_document([Row("faults", "two\nlines", "x", 1)])

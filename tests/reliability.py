"""The reliability ledger: what the fault, bad-input, hostile-data and secrets suites tried and
what happened, recorded by the tests themselves (issue 8).

Every suite calls `record(...)` for each case it ran; the counts are deterministic (fixed
inputs, derandomized property tests), so the table they add up to is the same on every run.
`docs/reliability.md` is that table; a test compares it with what this session recorded.

This module is also a pytest plugin (registered in `tests/conftest.py`): it notes which of the
suites' tests were collected and ran, moves `tests/test_reliability_doc.py` after everything
else, and at the end of the session writes what was recorded to `test-output/reliability.json`.
The ledger lives in the process that runs the suites: with pytest-xdist, tests/parallel.py sends
every suite module and the page's test to one worker, and the page's test fails rather than
compare a part of the figures when some of the suites' tests ran in another process.
`render_document` / `parse_document` turn rows into the page and back; `compare` says where a
page and a session disagree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePath

import pytest

SUITES = ("faults", "bad input", "hostile data", "secrets")


@dataclass
class Row:
    suite: str
    case: str  # what was tried, for people: "Graph 429 without Retry-After on signIns"
    outcome: str  # what happened: "scan completed, same findings" / "400 with JSON error" / ...
    tried: int = 0  # faults injected or inputs tried
    findings_lost: int = 0
    duplicate_emails: int = 0


LEDGER: dict[tuple[str, str], Row] = {}


def record(
    suite: str,
    case: str,
    outcome: str,
    *,
    tried: int = 1,
    findings_lost: int = 0,
    duplicate_emails: int = 0,
) -> None:
    """Add one case's figures (called again for the same case, the counts add up)."""
    if suite not in SUITES:
        raise ValueError(f"suite must be one of {SUITES}, got {suite!r}")
    row = LEDGER.setdefault((suite, case), Row(suite, case, outcome))
    if row.outcome != outcome:
        raise ValueError(f"case {case!r} recorded with two outcomes: {row.outcome!r} and {outcome!r}")
    row.tried += tried
    row.findings_lost += findings_lost
    row.duplicate_emails += duplicate_emails


# -- the page -------------------------------------------------------------------------------------

REPO_ROOT = Path(__file__).resolve().parents[1]
DOC_PATH = REPO_ROOT / "docs" / "reliability.md"
JSON_PATH = REPO_ROOT / "test-output" / "reliability.json"
WRITE_VARIABLE = "PARTNERGUARD_WRITE_RELIABILITY"
# The test modules of each suite, in tests/. A session that ran every test of all of them is
# complete: the page must then hold exactly its rows, no more.
SUITE_MODULES = {
    "faults": "test_faults_*.py",
    "bad input": "test_bad_input_*.py",
    "hostile data": "test_hostile_*.py",
    "secrets": "test_secrets_*.py",
}
DOC_TEST_MODULE = "test_reliability_doc.py"
REGENERATE = (
    f"{WRITE_VARIABLE}=1 .venv/bin/pytest "
    + " ".join(f"tests/{pattern}" for pattern in SUITE_MODULES.values())
    + f" tests/{DOC_TEST_MODULE}"
)
TITLE = "# Reliability: faults survived, bad input refused, nothing lost"
SUITE_TITLES = {
    "faults": "Faults",
    "bad input": "Bad input",
    "hostile data": "Hostile tenant data",
    "secrets": "Secrets",
}
SUITE_NOTES = {
    "faults": (
        "Faults injected into the tenant simulator (Graph and its token endpoint), Azurite, the ACS\n"
        "Email fake and the Teams and webhook stand-ins while the Functions app scans and alerts\n"
        "(`tests/test_faults_*.py`). *Tried* counts the faulty answers served (or outages). Each case\n"
        "either completes with the findings of a clean scan, or fails visibly (the run `failed` with\n"
        "its error code, the message retried then poisoned, the alert `failed`) and the next scan\n"
        "reports the findings of a clean scan; *findings lost* compares with that clean scan,\n"
        "*duplicate emails* counts emails the ACS fake received twice or for news already told."
    ),
    "bad input": "Input that breaks the contract, sent to the app's entry points (`tests/test_bad_input_*.py`).",
    "hostile data": "Tenant data crafted to attack what reads it (`tests/test_hostile_*.py`).",
    "secrets": "Where secrets could leak (`tests/test_secrets_*.py`).",
}
# What alert delivery promises (issue 15), stated where the measurements are.
ALERT_GUARANTEE = (
    "## What alert delivery guarantees",
    "",
    "No alert is lost: each is delivered, or recorded `failed` where it shows (the alert, its run's",
    "`alert.status` in the HTTP API, the poison queue), whatever crashes, expired leases, lost queue",
    "messages, throttling or outages come in between. An admin gets an email twice only if Azure",
    "Communication Services, asked about an operation it had accepted, answers that it never saw it",
    "(404) more than `ALERT_SETTLE_SECONDS` (default 300) after the attempt it accepted was over.",
    "After a send that may or may not have been taken (a timeout or reset after the request left, a",
    "5xx, a 202 lost with its worker), PartnerGuard sends again only once that window has passed and",
    "a lookup made after it still answers 404: ACS has answered 404 for an operation it had accepted",
    "and delivered (Azure/azure-sdk-for-python#35849), and Microsoft documents no retention for",
    "operation status. This rests on one bound: a send ends within its client timeouts (10 s to",
    "connect, 60 s to read), well inside the five-minute lease renewed just before it. ACS refusing",
    "the caller (401/403) is retried for an hour before the alert fails.",
    "",
    "Teams (a Workflows webhook) and the JSON webhook are **at least once**: neither offers a",
    "lookup, so a send in doubt (a timeout or reset after the request left, a 5xx) is sent again,",
    "and a card may repeat; a webhook repeat carries the same `Idempotency-Key` (the message's",
    "operation id, kept through throttling) for its receiver to drop. They are not waited on: no",
    "settle window, since no lookup could end one. A 429 is honoured like ACS's (`Retry-After`, else",
    "back-off), and a refusal for good fails the alert visibly. Each destination (email, Teams,",
    "webhook) is its own alert row, delivered and failed on its own, so one channel's trouble never",
    "repeats or delays another's message; the run's `alert.status` stays `pending` until every",
    "destination is done and then says `failed`, naming the channel, if any failed. The channel",
    "rows of the fault table count *duplicate emails* as ever (the email went once) and say in the",
    "outcome how many calls a receiver took again after a timeout.",
    "",
    "The simulation rows of the fault table measure it (`tests/alerts_simulation.py`): seeded",
    "schedules over the real worker, delivery and outbox, 120 in `make test` and 10,000 in",
    "`make soak`; there *findings lost* counts alerts lost, *duplicate emails* those outside the",
    "window, and *tried* the faults the schedules injected.",
)
TABLE_HEADER = "| case | tried | outcome | findings lost | duplicate emails |"
TABLE_RULE = "|---|---:|---|---:|---:|"
TOTALS_HEADER = "| faults injected | inputs tried | findings lost | duplicate emails |"
TOTALS_RULE = "|---:|---:|---:|---:|"
NO_ROWS = "No case recorded."


@dataclass(frozen=True)
class Totals:
    faults_injected: int
    inputs_tried: int
    findings_lost: int
    duplicate_emails: int


def totals(rows: Iterable[Row]) -> Totals:
    """Faults injected (the fault suite's tries), inputs tried (every other suite's), and the
    findings lost and duplicate emails of them all."""
    rows = list(rows)
    return Totals(
        faults_injected=sum(row.tried for row in rows if row.suite == "faults"),
        inputs_tried=sum(row.tried for row in rows if row.suite != "faults"),
        findings_lost=sum(row.findings_lost for row in rows),
        duplicate_emails=sum(row.duplicate_emails for row in rows),
    )


def _cell(text: str) -> str:
    if any(ord(character) < 0x20 for character in text):
        raise ValueError(f"a ledger cell must be one line without control characters: {text!r}")
    # Backslash first, so that an escaped pipe reads back unambiguously.
    return text.replace("\\", "\\\\").replace("|", "\\|")


def _cells(line: str) -> list[str]:
    """A table line's cells, unescaped (the inverse of `_cell`)."""
    if not (line.startswith("|") and line.endswith("|")):
        raise ValueError(f"not a table row: {line!r}")
    cells: list[str] = []
    current: list[str] = []
    characters = iter(line[1:-1])
    for character in characters:
        if character == "\\":
            current.append(next(characters, ""))
        elif character == "|":
            cells.append("".join(current).strip())
            current = []
        else:
            current.append(character)
    cells.append("".join(current).strip())
    return cells


def render_document(rows: Iterable[Row]) -> str:
    """docs/reliability.md for these rows: how it is made, the totals, then a table per suite in
    the order the rows were recorded."""
    rows = list(rows)
    total = totals(rows)
    lines = [
        TITLE,
        "",
        "Generated by the test run, not written by hand: every fault, bad-input, hostile-data and",
        "secrets test records what it tried and what happened in the ledger (`tests/reliability.py`),",
        "and `tests/test_reliability_doc.py`, which runs after them in `make test`, fails when this page",
        "disagrees with what they measured. After changing a suite, regenerate it with",
        "",
        "```sh",
        REGENERATE,
        "```",
        "",
        "(every suite must run for the page to be written; each run also leaves its figures in",
        "`test-output/reliability.json`). Counts are deterministic: fixed fault schedules, fixed inputs,",
        "derandomized property tests with a fixed number of examples.",
        "",
        *ALERT_GUARANTEE,
        "",
        "## Totals",
        "",
        TOTALS_HEADER,
        TOTALS_RULE,
        f"| {total.faults_injected} | {total.inputs_tried} | {total.findings_lost} | {total.duplicate_emails} |",
    ]
    for suite in SUITES:
        lines += ["", f"## {SUITE_TITLES[suite]}", "", SUITE_NOTES[suite], ""]
        suite_rows = [row for row in rows if row.suite == suite]
        if not suite_rows:
            lines.append(NO_ROWS)
            continue
        lines += [TABLE_HEADER, TABLE_RULE]
        for row in suite_rows:
            lines.append(
                f"| {_cell(row.case)} | {row.tried} | {_cell(row.outcome)} | {row.findings_lost} | "
                f"{row.duplicate_emails} |"
            )
    return "\n".join(lines) + "\n"


def parse_document(text: str) -> list[Row]:
    """The rows of a page `render_document` wrote (totals are derived, so they are not read)."""
    by_title = {f"## {title}": suite for suite, title in SUITE_TITLES.items()}
    rows: list[Row] = []
    suite: str | None = None
    for line in text.splitlines():
        if line.startswith("## "):
            suite = by_title.get(line)
            continue
        if suite is None or not line.startswith("|") or line in (TABLE_HEADER, TABLE_RULE):
            continue
        cells = _cells(line)
        if len(cells) != 5:
            raise ValueError(f"a {suite} row needs 5 cells, got {len(cells)}: {line!r}")
        case, tried, outcome, lost, duplicates = cells
        rows.append(Row(suite, case, outcome, int(tried), int(lost), int(duplicates)))
    return rows


def compare(documented: Sequence[Row], recorded: Sequence[Row], *, complete: bool) -> list[str]:
    """Where the page and the session disagree, one line each. Every recorded row must be on the
    page as recorded; when the session ran every suite (`complete`), the page may hold no other."""
    on_page = {(row.suite, row.case): row for row in documented}
    problems = []
    if len(on_page) != len(documented):
        problems.append("the page lists a case twice")
    for row in recorded:
        page_row = on_page.get((row.suite, row.case))
        if page_row is None:
            problems.append(f"{row.suite} / {row.case!r}: measured but not on the page")
        elif page_row != row:
            problems.append(f"{row.suite} / {row.case!r}: the page says {_figures(page_row)}, measured {_figures(row)}")
    if complete:
        measured = {(row.suite, row.case) for row in recorded}
        problems += [
            f"{suite} / {case!r}: on the page but no test recorded it"
            for suite, case in on_page
            if (suite, case) not in measured
        ]
    return problems


def _figures(row: Row) -> str:
    return (
        f"tried {row.tried}, {row.outcome!r}, findings lost {row.findings_lost}, "
        f"duplicate emails {row.duplicate_emails}"
    )


# -- the plugin -----------------------------------------------------------------------------------


def _suite_module(path: Path) -> bool:
    return path.parent == REPO_ROOT / "tests" and any(path.match(pattern) for pattern in SUITE_MODULES.values())


def ledger_module(name: str) -> bool:
    """Whether the test file `name` (in tests/) records into the ledger or checks the page: with
    pytest-xdist these files run in one worker, in order (tests/parallel.py)."""
    return name == DOC_TEST_MODULE or any(PurePath(name).match(pattern) for pattern in SUITE_MODULES.values())


@dataclass
class SessionRecord:
    """What this pytest session collected and ran of the suites' tests."""

    modules: set[Path] = field(default_factory=set)  # suite modules collected
    tests: set[str] = field(default_factory=set)  # every test those modules hold
    selected: set[str] = field(default_factory=set)  # of those, the ones this session runs
    reported: set[str] = field(default_factory=set)  # of those, the ones this process ran so far
    ran: set[str] = field(default_factory=set)  # of those, the ones that ran (not skipped)
    failed: set[str] = field(default_factory=set)

    def complete(self) -> bool:
        """Whether every test of every suite module in tests/ ran this session (a `-k`, a node id
        or a skipped test makes the session partial)."""
        on_disk = {path for pattern in SUITE_MODULES.values() for path in (REPO_ROOT / "tests").glob(pattern)}
        return bool(on_disk) and on_disk <= self.modules and self.tests <= self.ran

    def elsewhere(self) -> set[str]:
        """The suites' tests of this session that have not run in this process (yet): with
        pytest-xdist, tests another worker ran, whose figures this process's ledger lacks."""
        return self.selected - self.reported

    def document(self, rows: Sequence[Row]) -> dict[str, object]:
        total = totals(rows)
        return {
            "schema": "partnerguard.reliability/v1",
            "complete": self.complete(),
            "modules": sorted(str(path.relative_to(REPO_ROOT)) for path in self.modules),
            "tests": len(self.tests),
            "ran": len(self.ran & self.tests),
            "failed": sorted(self.failed),
            "totals": asdict(total),
            "rows": [asdict(row) for row in rows],
        }


SESSION = SessionRecord()


def pytest_collectreport(report: pytest.CollectReport) -> None:
    # A module's (and a class's) collect report lists all its tests, before any selection by
    # node id or -k: what a complete session has to run.
    # Report paths are relative to the rootdir, which pyproject.toml makes the repository.
    path = REPO_ROOT / report.fspath if report.fspath else None
    if path is None or not _suite_module(path) or not report.passed:
        return
    SESSION.modules.add(path)
    SESSION.tests.update(node.nodeid for node in report.result if isinstance(node, pytest.Item))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The page's test compares what every other test recorded: it runs last. (Trylast: after
    `-k`, `-m` and `--deselect` chose the session's tests.)"""
    items.sort(key=lambda item: item.path.name == DOC_TEST_MODULE)
    SESSION.selected = {item.nodeid for item in items} & SESSION.tests


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.nodeid not in SESSION.tests:
        return
    SESSION.reported.add(report.nodeid)
    if report.when == "call" and not report.skipped:
        SESSION.ran.add(report.nodeid)
    if report.failed:
        SESSION.failed.add(report.nodeid)


def pytest_sessionfinish() -> None:
    if not LEDGER and not SESSION.reported:
        # None of the suites ran here (or, with pytest-xdist, in this worker, or this is the
        # controller): leave the figures of the process that ran them in place.
        return
    JSON_PATH.parent.mkdir(parents=True, exist_ok=True)
    JSON_PATH.write_text(json.dumps(SESSION.document(list(LEDGER.values())), indent=2) + "\n", encoding="utf-8")

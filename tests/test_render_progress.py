"""Progress of `scan --all`: live lines on a terminal, plain lines elsewhere, tenant text inert."""

from __future__ import annotations

import asyncio
import io
import re

import pytest

from checks import CHECK_IDS
from partnerguard.model import TenantInfo
from partnerguard.pipeline import ScanResult
from partnerguard.render.progress import (
    PlainProgress,
    TerminalProgress,
    progress_for,
    scan_with_progress,
)
from tests.report_builders import HOSTILE_CONTROLS, report

TENANTS = [f"aaaaaaaa-0000-4000-8000-{n:012d}" for n in range(1, 7)]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Ticks:
    """A clock that advances one second per reading: elapsed times are exact, nothing sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def result_for(tenant_id: str) -> ScanResult:
    if tenant_id == TENANTS[1]:
        return ScanResult(tenant_id, "run-failed", None, error="sign-in refused")
    name = HOSTILE_CONTROLS if tenant_id == TENANTS[0] else "Tenant " + tenant_id[-2:]
    return ScanResult(tenant_id, "run-" + tenant_id[-2:], report(tenant=TenantInfo(tenant_id, name, "customer")))


def scan_all(progress: PlainProgress | TerminalProgress, concurrency: int = 2) -> list[ScanResult]:
    in_flight = 0
    most = 0

    async def scan(tenant_id: str) -> ScanResult:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0)  # let the other scans start
        in_flight -= 1
        return result_for(tenant_id)

    results = asyncio.run(scan_with_progress(scan, TENANTS, progress, concurrency=concurrency))
    assert most == concurrency  # bounded, and actually concurrent
    return results


def test_results_come_back_in_tenant_order_with_every_event_reported_plainly() -> None:
    stream = io.StringIO()
    results = scan_all(PlainProgress(stream, len(TENANTS), Ticks()))
    assert [r.tenant_id for r in results] == TENANTS
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 * len(TENANTS)
    assert sum(line.startswith("scan ") and " started: tenant " in line for line in lines) == len(TENANTS)
    finished = [line for line in lines if " finished: " in line]
    assert [line.split()[1] for line in finished] == [f"{n}/6" for n in range(1, 7)]
    failed = next(line for line in finished if TENANTS[1] in line)
    assert f"finished: {TENANTS[1]}: failed (unknown), run run-failed" in failed
    ok = next(line for line in finished if "Tenant 03" in line)
    passed = len(CHECK_IDS)  # the fake report passes every check of the catalogue
    assert f"Tenant 03 ({TENANTS[2]}): succeeded, fail 0 · pass {passed} · not assessed 0 · error 0, run run-03" in ok
    assert "\x1b" not in stream.getvalue() and "\r" not in stream.getvalue()


def test_a_terminal_gets_live_lines_then_one_line_per_tenant() -> None:
    stream = Terminal()
    scan_all(TerminalProgress(stream, len(TENANTS), Ticks()))
    screen = render_screen(stream.getvalue())
    # What stays on screen: one line per tenant, none of the live lines.
    assert len(screen) == len(TENANTS)
    assert all(re.match(r"[✓✗] \[\d/6\] ", line) for line in screen)
    assert sum(line.startswith("✗") for line in screen) == 1
    assert "scanning" in stream.getvalue() and "tenants scanned" in stream.getvalue()
    # A tenant name with terminal escapes prints them as text: one escape per redraw, all ours.
    hostile = next(line for line in screen if TENANTS[0] in line)
    assert "Eve\\x1b[2J\\x1b[31mRED\\x0d\\x0aforged line" in hostile
    assert "\x1b[2J" not in stream.getvalue() and "\x1b[31m" not in stream.getvalue()


def test_ticks_redraw_elapsed_time_in_place() -> None:
    stream = Terminal()
    clock = Ticks()
    progress = TerminalProgress(stream, 2, clock)
    progress.started(TENANTS[0])
    progress.tick()
    progress.tick()
    assert render_screen(stream.getvalue())[0].startswith(f"  … scanning {TENANTS[0]} (")
    assert len(render_screen(stream.getvalue())) == 2  # the live line and the count
    progress.close()
    assert render_screen(stream.getvalue()) == []


@pytest.mark.parametrize(
    ("tty", "verbose", "kind"),
    [(True, False, TerminalProgress), (False, False, PlainProgress), (True, True, PlainProgress)],
)
def test_live_lines_only_on_a_quiet_terminal(
    tty: bool, verbose: bool, kind: type, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERM", "xterm")
    stream = Terminal() if tty else io.StringIO()
    assert isinstance(progress_for(stream, 3, verbose=verbose), kind)
    monkeypatch.setenv("TERM", "dumb")
    assert isinstance(progress_for(Terminal(), 3), PlainProgress)


def render_screen(output: str) -> list[str]:
    """The lines a terminal shows after `output`, for the escapes TerminalProgress writes
    (cursor up n lines, carriage return, clear to the end of the screen)."""
    lines: list[str] = [""]
    row = 0
    for token in re.split(r"(\x1b\[\d*A|\x1b\[J|\r|\n)", output):
        if not token:
            continue
        if token.startswith("\x1b[") and token.endswith("A"):
            row = max(row - int(token[2:-1] or 1), 0)
        elif token == "\x1b[J":
            del lines[row + 1 :]
            lines[row] = ""
        elif token == "\r":
            continue  # the writer only uses it before clearing from column 0
        elif token == "\n":
            row += 1
            if row == len(lines):
                lines.append("")
        else:
            lines[row] += token
    return [line for line in lines if line]

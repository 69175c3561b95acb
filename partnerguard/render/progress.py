"""Progress of `scan --all` on stderr, one tenant at a time, while the scans run concurrently.

A large tenant's first scan takes minutes; with dozens of tenants a silent command looks hung.
On a terminal the scans in flight are live lines that update in place (the tenant and how long
it has been scanning) above a count of tenants done, and each tenant that finishes leaves one
permanent line with its outcome. Anywhere else (a pipe, a CI log, a file) the same events are
plain lines, one per start and one per finish, with no escape sequences.

Progress only ever goes to the stream it is given (stderr): with a machine format on stdout,
stdout carries the document alone. Tenant names are tenant-controlled: they go through
`safe_text`, so a name cannot move the cursor or rewrite the screen.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Protocol, TextIO

from partnerguard.text import safe_text

if TYPE_CHECKING:
    from partnerguard.pipeline import ScanResult

# How often the live lines' elapsed times are redrawn on a terminal.
TICK_SECONDS = 1.0
NAME_LIMIT = 60

# ANSI: cursor up n lines; carriage return and clear to the end of the screen.
_UP = "\x1b[{}A"
_CLEAR_BELOW = "\r\x1b[J"

Clock = Callable[[], float]


class ScanProgress(Protocol):
    def started(self, tenant_id: str) -> None: ...
    def finished(self, tenant_id: str, result: ScanResult) -> None: ...
    def tick(self) -> None: ...
    def close(self) -> None: ...


def progress_for(stream: TextIO, total: int, *, verbose: bool = False, clock: Clock = time.monotonic) -> ScanProgress:
    """Live lines on an interactive terminal, plain lines otherwise.

    With `verbose` the log writes to the same stream at any moment, which would tear live lines
    apart: plain lines then too.
    """
    interactive = stream.isatty() and os.environ.get("TERM", "") != "dumb" and not verbose
    return TerminalProgress(stream, total, clock) if interactive else PlainProgress(stream, total, clock)


def outcome_text(result: ScanResult) -> str:
    """What a finished scan found, in one line: the run's status and its checks by status."""
    report = result.report
    if report is None:
        return f"failed ({safe_text(result.error_code or 'unknown', 40)}), run {result.run_id}"
    s = report.summary
    return (
        f"{report.status}, fail {s['fail']} · pass {s['pass']} · not assessed {s['not_assessed']} · "
        f"error {s['error']}, run {result.run_id}"
    )


def tenant_label(result: ScanResult) -> str:
    name = result.report.tenant.name if result.report is not None else ""
    if name and name != result.tenant_id:
        return f"{safe_text(name, NAME_LIMIT)} ({result.tenant_id})"
    return result.tenant_id


class PlainProgress:
    """One line per event, for logs and pipes."""

    def __init__(self, stream: TextIO, total: int, clock: Clock = time.monotonic) -> None:
        self.stream = stream
        self.total = total
        self.clock = clock
        self.begun = 0
        self.done = 0
        self._starts: dict[str, float] = {}

    def started(self, tenant_id: str) -> None:
        self.begun += 1
        self._starts[tenant_id] = self.clock()
        self._write(f"scan {self.begun}/{self.total} started: tenant {tenant_id}")

    def finished(self, tenant_id: str, result: ScanResult) -> None:
        self.done += 1
        seconds = self.clock() - self._starts.pop(tenant_id, self.clock())
        self._write(
            f"scan {self.done}/{self.total} finished: {tenant_label(result)}: {outcome_text(result)} ({seconds:.1f} s)"
        )

    def tick(self) -> None:
        """Nothing to redraw: plain lines are never rewritten."""

    def close(self) -> None:
        """Nothing to clear."""

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()


class TerminalProgress:
    """Live lines for the scans in flight, redrawn in place; a permanent line per finished scan."""

    def __init__(self, stream: TextIO, total: int, clock: Clock = time.monotonic) -> None:
        self.stream = stream
        self.total = total
        self.clock = clock
        self.done = 0
        self._in_flight: dict[str, float] = {}
        self._drawn = 0  # live lines on screen below the permanent ones

    def started(self, tenant_id: str) -> None:
        self._in_flight[tenant_id] = self.clock()
        self._redraw()

    def finished(self, tenant_id: str, result: ScanResult) -> None:
        self.done += 1
        started = self._in_flight.pop(tenant_id, self.clock())
        mark = "✓" if result.report is not None and result.report.status == "succeeded" else "✗"
        line = (
            f"{mark} [{self.done}/{self.total}] {tenant_label(result)}: {outcome_text(result)} "
            f"({self.clock() - started:.1f} s)"
        )
        self._redraw(line)

    def tick(self) -> None:
        if self._in_flight:
            self._redraw()

    def close(self) -> None:
        """Clear the live lines; the permanent ones stay."""
        self._in_flight.clear()
        self._redraw(live=False)

    def _redraw(self, permanent: str | None = None, live: bool = True) -> None:
        width = max(shutil.get_terminal_size(fallback=(100, 24)).columns - 1, 20)
        parts = [_UP.format(self._drawn) if self._drawn else "", _CLEAR_BELOW]
        if permanent is not None:
            parts.append(_fit(permanent, width) + "\n")
        lines: list[str] = []
        if live:
            now = self.clock()
            lines = [f"  … scanning {tenant} ({now - since:.0f} s)" for tenant, since in self._in_flight.items()]
            lines.append(f"  {self.done}/{self.total} tenants scanned")
        parts.extend(_fit(line, width) + "\n" for line in lines)
        self._drawn = len(lines)
        self.stream.write("".join(parts))
        self.stream.flush()


def _fit(line: str, width: int) -> str:
    """Cut to the terminal's width: a wrapped line would throw off the cursor arithmetic."""
    return line if len(line) <= width else line[: width - 1] + "…"


async def scan_with_progress(
    scan: Callable[[str], Awaitable[ScanResult]],
    tenant_ids: Sequence[str],
    progress: ScanProgress,
    concurrency: int | None = None,
    tick_seconds: float = TICK_SECONDS,
) -> list[ScanResult]:
    """Scan the tenants like `Scanner.scan_many` (bounded concurrency, results in the order of
    `tenant_ids`), telling `progress` as each scan starts and ends."""
    # As many tenants at once as `Scanner.scan_many` scans (imported here: the pipeline is
    # heavy, and rendering modules stay light to import).
    from partnerguard.pipeline import SCAN_CONCURRENCY

    gate = asyncio.Semaphore(SCAN_CONCURRENCY if concurrency is None else concurrency)

    async def one(tenant_id: str) -> ScanResult:
        async with gate:
            progress.started(tenant_id)
            result = await scan(tenant_id)
            progress.finished(tenant_id, result)
            return result

    async def ticker() -> None:
        while True:
            await asyncio.sleep(tick_seconds)
            progress.tick()

    ticking = asyncio.create_task(ticker())
    try:
        return list(await asyncio.gather(*(one(t) for t in tenant_ids)))
    finally:
        ticking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticking
        progress.close()

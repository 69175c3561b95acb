"""Virtual time for benchmark cases that would take hours of real time.

A first read of 22 million sign-ins at 5 requests per 10 s is 12 hours of waiting for Graph's
windows. `VirtualTimeLoop` is an asyncio event loop whose clock is a `SharedClock`: real monotonic
time plus the seconds it skipped. When the loop would block and nothing is in flight, it does not
wait for its earliest timer: it moves virtual time to it. That is a discrete-event simulation:

- every `asyncio.sleep` (PartnerGuard's pacer, its retry back-offs, kiota's Retry-After waits)
  and every deadline measured with `loop.time()` runs on virtual time, unchanged;
- time jumps only when *every* task waits for a timer: not while a callback is ready, not while
  a Graph request is in flight (`Pacer.in_flight`: acquired, not yet answered), and not while a
  worker thread runs (`asyncio.to_thread`: storage, sign-in). Concurrent sleeps therefore
  overlap, as they would in real time: ten tasks sleeping 10 s cost 10 virtual seconds, not 100;
- work takes the real time it takes (CPU, the simulator's answers, Azurite), so virtual time is
  never less than real time: a case that is CPU-bound shows it.

The simulator process reads the same clock (the offset is shared through a file), so Graph's
throttling windows slide in virtual seconds too. Why not run the simulator in this process
instead: its threads would share the interpreter lock and the memory of the process measured,
and PartnerGuard's peak RSS and CPU time would include Graph's.
"""

from __future__ import annotations

import asyncio
import os
import selectors
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from testbed.simulator.shared_clock import SharedClock

T = TypeVar("T")
# PARTNERGUARD_BENCH_SKIPS=1: say on stderr what each jump of a second or more waits for.
DEBUG_SKIPS = os.environ.get("PARTNERGUARD_BENCH_SKIPS") == "1"


class _SkippingSelector(selectors.DefaultSelector):
    """The loop's selector: a wait with a timeout becomes a jump in virtual time when nothing
    can wake the loop before the timeout but the timer itself."""

    def __init__(self) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        loop = self.loop
        if loop is None or timeout is None or timeout <= 0:
            return list(super().select(timeout))
        ready = list(super().select(0))
        if ready or loop.busy():
            # Something real is under way (an answer, a thread): wait for it in real time.
            return ready or list(super().select(timeout))
        loop.skip(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on virtual time; `in_flight` says how many outside operations (requests)
    are under way, besides the loop's own worker threads, which it counts itself."""

    def __init__(self, clock: SharedClock, in_flight: Callable[[], int] = lambda: 0) -> None:
        selector = _SkippingSelector()
        super().__init__(selector)
        selector.loop = self
        self.clock = clock
        self._in_flight = in_flight
        self._threads = 0
        # Seconds this loop skipped, for the case's report.
        self.skipped = 0.0

    def time(self) -> float:
        return self.clock.now()

    def busy(self) -> bool:
        return self._threads > 0 or self._in_flight() > 0

    def skip(self, seconds: float) -> None:
        if DEBUG_SKIPS and seconds >= 1:
            print(f"virtual time: +{seconds:.2f} s for {self._scheduled[0]!r}", file=sys.stderr)  # type: ignore[attr-defined]
        self.clock.advance(seconds)
        self.skipped += seconds

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        future = super().run_in_executor(executor, func, *args)
        self._threads += 1
        future.add_done_callback(self._thread_done)
        return future

    def _thread_done(self, _: asyncio.Future[Any]) -> None:
        self._threads -= 1


def run_virtual(main: Coroutine[Any, Any, T], clock: SharedClock, in_flight: Callable[[], int] = lambda: 0) -> T:
    """`asyncio.run(main)` on a `VirtualTimeLoop` reading `clock`. Several runs may share one
    clock: virtual time carries on from one to the next."""
    with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(clock, in_flight)) as runner:
        return runner.run(main)

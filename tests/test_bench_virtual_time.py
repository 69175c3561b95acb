"""The benchmark's virtual clock: sleeps cost no real time, concurrent sleeps overlap like a
discrete-event simulation, and nothing real (a worker thread, a request in flight) is ever
overtaken by a jump. Pure and fast: no simulator, no storage."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from testbed.bench.virtual_time import run_virtual
from testbed.simulator.shared_clock import SharedClock


def test_a_sleep_of_an_hour_takes_an_hour_of_virtual_time_and_no_real_time() -> None:
    clock = SharedClock()

    async def main() -> float:
        loop = asyncio.get_running_loop()
        began = loop.time()
        await asyncio.sleep(3600)
        return loop.time() - began

    real = time.monotonic()
    virtual = run_virtual(main(), clock)
    assert 3600 <= virtual < 3601
    assert time.monotonic() - real < 1.0
    assert clock.offset() >= 3599


def test_concurrent_sleeps_overlap_and_wake_in_time_order() -> None:
    """Time advances to the earliest waiter once every task waits: the sum of the sleeps (75 s)
    is never what passes, the longest chain (30 s) is."""
    clock = SharedClock()
    woke: list[tuple[str, int]] = []

    async def sleeper(start: float, name: str, *pauses: float) -> None:
        loop = asyncio.get_running_loop()
        for pause in pauses:
            await asyncio.sleep(pause)
            woke.append((name, round(loop.time() - start)))

    async def main() -> float:
        start = asyncio.get_running_loop().time()
        await asyncio.gather(sleeper(start, "a", 10, 10), sleeper(start, "b", 15), sleeper(start, "c", 5, 5, 20))
        return asyncio.get_running_loop().time() - start

    elapsed = run_virtual(main(), clock)
    assert 30 <= elapsed < 30.5
    assert woke == [("c", 5), ("a", 10), ("c", 10), ("b", 15), ("a", 20), ("c", 30)]


def test_time_does_not_jump_while_a_worker_thread_runs() -> None:
    """Storage and sign-in run in threads: their answer must arrive before a timer that, in real
    time, would fire long after it."""
    clock = SharedClock()
    order: list[str] = []

    async def main() -> None:
        async def thread() -> None:
            await asyncio.to_thread(time.sleep, 0.2)
            order.append("thread")

        async def timer() -> None:
            await asyncio.sleep(100)
            order.append("timer")

        await asyncio.gather(timer(), thread())

    run_virtual(main(), clock)
    assert order == ["thread", "timer"]


def test_time_does_not_jump_while_a_request_is_in_flight() -> None:
    """`in_flight` (the pacer's count of requests sent and not yet answered) holds time back: a
    request answered after 0.3 s of real time is answered at 0.3 s, not after the 50 s timer."""
    clock = SharedClock()
    flying = [0]
    seen: dict[str, float] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def request() -> None:
            answered = loop.create_future()
            flying[0] += 1
            # The answer comes from outside the loop, as a socket's would: no worker thread of
            # the loop's own is involved, only the in-flight count says "wait".
            threading.Timer(0.3, loop.call_soon_threadsafe, (answered.set_result, None)).start()
            await answered
            flying[0] -= 1
            seen["answer"] = loop.time() - start

        async def waiter() -> None:
            await asyncio.sleep(50)
            seen["timer"] = loop.time() - start

        await asyncio.gather(request(), waiter())

    run_virtual(main(), clock, in_flight=lambda: flying[0])
    assert 0.25 <= seen["answer"] < 5
    assert 50 <= seen["timer"] < 51


def test_without_the_in_flight_count_the_same_answer_would_come_too_late() -> None:
    """The control for the test above: were the request not counted, the loop would jump to the
    timer and the answer would arrive 50 virtual seconds late."""
    clock = SharedClock()
    seen: dict[str, float] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        answered = loop.create_future()
        answered.add_done_callback(lambda _: seen.__setitem__("answer", loop.time() - start))
        threading.Timer(0.3, loop.call_soon_threadsafe, (answered.set_result, None)).start()
        await asyncio.gather(answered, asyncio.sleep(50))

    run_virtual(main(), clock)
    assert seen["answer"] >= 50


def test_in_flight_alone_holds_time_back() -> None:
    """With only the in-flight count saying "busy" (no thread of the loop's own), the loop waits
    in real time for whatever will answer; here a plain thread clears the count after 0.2 s."""
    clock = SharedClock()
    flying = [1]
    threading.Timer(0.2, lambda: flying.__setitem__(0, 0)).start()

    async def main() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        # Poll like the pacer does while units are held by requests in flight.
        while flying[0]:  # noqa: ASYNC110 - the pacer's polling is what is tested
            await asyncio.sleep(0.05)
        return loop.time() - start

    real = time.monotonic()
    elapsed = run_virtual(main(), clock, in_flight=lambda: flying[0])
    assert 0.15 <= elapsed < 1.0
    assert time.monotonic() - real >= 0.15


def test_virtual_time_carries_on_from_one_run_to_the_next() -> None:
    clock = SharedClock()

    async def nap() -> float:
        await asyncio.sleep(600)
        return asyncio.get_running_loop().time()

    first = run_virtual(nap(), clock)
    second = run_virtual(nap(), clock)
    assert second - first >= 600


def test_the_offset_is_shared_with_another_process(tmp_path: Path) -> None:
    path = tmp_path / "clock"
    writer = SharedClock(path, create=True)
    writer.advance(7200.5)
    reader = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from testbed.simulator.shared_clock import SharedClock; "
            "print(SharedClock(sys.argv[1]).offset())",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert float(reader.stdout) == 7200.5
    # Both processes read the same system-wide monotonic clock plus the offset.
    assert abs(SharedClock(path).now() - writer.now()) < 0.5
    with pytest.raises(ValueError):
        writer.advance(-1)


class _BodyLater(httpx.AsyncByteStream):
    """A response body that arrives 0.3 s (real) after the headers, from outside the loop, as a
    slow socket's would."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        arrived = loop.create_future()
        threading.Timer(0.3, loop.call_soon_threadsafe, (arrived.set_result, b'{"value": []}')).start()
        yield await arrived


class _HeadersFirst(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=_BodyLater())


def test_a_body_still_on_the_wire_is_never_overtaken_by_a_jump() -> None:
    """PartnerGuard's pacing middleware holds a request in flight until its body is read: httpx
    reads bodies after the middleware returns, and a request counted as answered at its headers
    would let the clock jump over the body (to the 30 s sleeper here, or an httpx timeout)."""
    from partnerguard.graph.client import PACING_EXTENSION, PacingMiddleware, PacingOption
    from partnerguard.graph.pacing import ApiClass, Pacer

    clock = SharedClock()
    pacer = Pacer(clock=clock.now)
    done: dict[str, float] = {}

    async def main() -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()

        async def request() -> None:
            outgoing = httpx.Request("GET", "https://graph.example/beta/auditLogs/signIns")
            outgoing.extensions[PACING_EXTENSION] = PacingOption(ApiClass.REPORTS)
            response = await PacingMiddleware(pacer, "tenant").send(outgoing, _HeadersFirst())
            await response.aread()  # what httpx does next, if the middleware has not
            done["body"] = loop.time() - start

        async def sleeper() -> None:
            await asyncio.sleep(30)
            done["sleeper"] = loop.time() - start

        await asyncio.gather(request(), sleeper())

    run_virtual(main(), clock, in_flight=lambda: pacer.in_flight)
    assert 0.25 <= done["body"] < 5
    assert 30 <= done["sleeper"] < 31

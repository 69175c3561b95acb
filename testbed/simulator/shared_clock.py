"""One clock that the benchmark process and the simulator process read alike.

Virtual time is `time.monotonic()` plus an offset: the seconds the benchmark's event loop skipped
because every task was waiting for a timer (`testbed/bench/virtual_time.py`). CLOCK_MONOTONIC is
system-wide on Linux, so two processes agree on it; only the offset needs sharing. It lives in a
small file both map (`mmap`): the benchmark writes, the simulator's throttling windows read. So
Graph's limits slide in the same virtual seconds as PartnerGuard's pacer and its deadlines, and a
case that spends hours waiting for Graph's windows runs in minutes.

The offset only grows, and only while no request is in flight (the loop skips then), so a reader
never sees it change during a request. It is written under a sequence counter all the same (a
seqlock: odd while a write is under way), so a reader can never see half of a write.
"""

from __future__ import annotations

import mmap
import struct
import time
from pathlib import Path

_LAYOUT = struct.Struct("<Qd")  # sequence counter, offset in seconds


class SharedClock:
    """`now()`: monotonic seconds plus the shared offset. Without `path`, the offset is private
    to this process (an anonymous map): the same clock for code that needs no second process."""

    def __init__(self, path: str | Path | None = None, *, create: bool = False) -> None:
        self.path = Path(path) if path is not None else None
        if self.path is None:
            self._map = mmap.mmap(-1, _LAYOUT.size)
        else:
            if create:
                self.path.write_bytes(_LAYOUT.pack(0, 0.0))
            with self.path.open("r+b") as file:
                self._map = mmap.mmap(file.fileno(), _LAYOUT.size)

    def offset(self) -> float:
        while True:
            before, value = _LAYOUT.unpack_from(self._map, 0)
            after = _LAYOUT.unpack_from(self._map, 0)[0]
            if before == after and before % 2 == 0:
                return float(value)

    def now(self) -> float:
        return time.monotonic() + self.offset()

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by `seconds` (never back)."""
        if seconds < 0:
            raise ValueError("virtual time never goes back")
        sequence, value = _LAYOUT.unpack_from(self._map, 0)
        _LAYOUT.pack_into(self._map, 0, sequence + 1, value)
        _LAYOUT.pack_into(self._map, 0, sequence + 2, value + seconds)

    def close(self) -> None:
        self._map.close()

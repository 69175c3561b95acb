"""What the simulator saw and what it was told to break: request records and injected faults."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestRecord:
    """One request the simulator answered. `path` has no query; `query` is the raw query string.
    `$batch` sub-requests are recorded too (`in_batch=True`), after the `$batch` call itself
    (whose status is that of the envelope)."""

    method: str
    path: str
    query: str
    status: int
    tenant_id: str | None
    api_class: str | None
    at: float
    in_batch: bool = False


@dataclass
class Fault:
    """Answer the next `times` requests whose path matches `pattern` with `status` (or drop the
    connection when `body == "reset"`), instead of serving them. `delay_s` holds each of those
    requests that long before answering: longer than the client's timeout, it is a hang (whole
    requests only; `$batch` sub-requests answer at once)."""

    pattern: re.Pattern[str]
    status: int = 503
    times: int = 1
    retry_after: int | None = None
    body: str | bytes | None = None
    delay_s: float = 0.0

    @property
    def resets_connection(self) -> bool:
        return self.body == "reset"


class FaultInjector:
    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def take(self, path: str) -> Fault | None:
        """The first pending fault matching `path`, consuming one of its `times`."""
        with self._lock:
            for fault in self._faults:
                if fault.times > 0 and fault.pattern.search(path):
                    fault.times -= 1
                    return fault
            self._faults = [fault for fault in self._faults if fault.times > 0]
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

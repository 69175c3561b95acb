"""What the local webhook receivers share (the Teams Workflows fake, the signed-webhook fake): a
loopback HTTPS server with its own CA (`testbed.loopback_https`), a record of every request, and
the faults a real receiver has been seen to have, injected on request as `testbed.acs_fake` does:

- **an error answer** (`fail_next(status, retry_after=...)`): 429 with or without Retry-After
  (seconds, or an HTTP date given as text), 500, 503, ...; with `after_accept=True` the call is
  taken (recorded as delivered) *before* the error goes out, which is why a retry may repeat it;
- **no answer at all** (`hang_next()`): the connection is held open past the client's read
  timeout (taken first by default: the caller cannot tell whether it went through);
- **a reset** (`reset_next()`): the connection is dropped with a TCP reset instead of an answer,
  before or after taking the call.

Faults are taken only by a well-formed call to the receiver's own URL, so a pending fault is not
used up by a request the receiver would have refused anyway. A subclass says what a well-formed
call to its `path` is (`_verdict`) and keeps what it accepted. Standard library plus trustme.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from testbed.loopback_https import LoopbackFake, LoopbackHandler, LoopbackServer

# The longest a hung call holds its connection when nobody lets go (a test that forgot to).
HANG_LIMIT_SECONDS = 120.0

# A body too large is still read (and dropped) up to this size before the 413 goes out.
_DRAIN_LIMIT = 16 * 1024 * 1024

FaultKind = Literal["status", "hang", "reset"]


@dataclass(frozen=True)
class ReceivedRequest:
    """One request the receiver answered (or hung up on). `refused` says why it was turned down,
    for the test; the wire answer stays as terse as a real receiver's. `at` is `time.monotonic()`."""

    method: str
    path: str
    status: int  # 0: no answer (a hang or a reset)
    refused: str | None
    accepted: bool
    at: float


@dataclass
class _Fault:
    kind: FaultKind
    times: int
    status: int = 0
    retry_after: str | None = None
    after_accept: bool = False


@dataclass
class Verdict:
    """What the subclass made of a call: an answer, and whether it takes the call (`accept`, to be
    recorded only once the call is taken, which a fault may decide first)."""

    status: int
    refused: str | None = None
    accept: Callable[[], None] | None = None
    body: bytes = b""


class _Server(LoopbackServer):
    def __init__(self, receiver: WebhookReceiverFake, tls: ssl.SSLContext) -> None:
        self.receiver = receiver
        super().__init__(tls, _Handler)


class _Handler(LoopbackHandler):
    server: _Server

    def _dispatch(self) -> None:
        receiver = self.server.receiver
        headers = {name.lower(): value for name, value in self.headers.items()}
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > receiver.max_body:
            verdict = Verdict(413, "body too large")
            if 0 < length <= _DRAIN_LIMIT:
                # Read and dropped, so the client, still sending, gets the answer rather than a reset.
                self.rfile.read(length)
            self.close_connection = True  # an unread body would corrupt the next request
        else:
            body = self.rfile.read(length) if length else b""
            verdict = receiver._route(self.command, self.path, headers, body)
        fault = receiver._take_fault() if verdict.accept is not None else None
        accepted = verdict.accept is not None and (fault is None or fault.after_accept)
        if accepted:
            assert verdict.accept is not None
            verdict.accept()
        path = urlsplit(self.path).path
        if fault is None:
            receiver._record(
                ReceivedRequest(self.command, path, verdict.status, verdict.refused, accepted, time.monotonic())
            )
            self._answer(verdict.status, verdict.body, {})
            return
        status = fault.status if fault.kind == "status" else 0
        receiver._record(ReceivedRequest(self.command, path, status, "injected fault", accepted, time.monotonic()))
        if fault.kind == "status":
            headers_out = {} if fault.retry_after is None else {"Retry-After": fault.retry_after}
            self._answer(fault.status, b"", headers_out)
        elif fault.kind == "hang":
            # Past any client's read timeout: held until the fake lets go, then dropped.
            receiver._released.wait(HANG_LIMIT_SECONDS)
            self.close_connection = True
        else:
            self._reset()

    def _reset(self) -> None:
        """Drop the connection with a TCP reset (SO_LINGER 0), without a TLS close or an answer."""
        self.close_connection = True
        connection: socket.socket = self.request
        with contextlib.suppress(OSError):
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            # The raw descriptor is closed under the TLS layer, so no close_notify is sent first.
            socket.socket(fileno=connection.detach()).close()

    def _answer(self, status: int, body: bytes, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        if self.close_connection:
            # Said, so the client does not reuse a connection this side is about to close.
            self.send_header("Connection", "close")
        for name, value in headers.items():
            self.send_header(name, value)
        if body:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class WebhookReceiverFake(LoopbackFake):
    """A receiver on `https://127.0.0.1:<port>/...`; subclasses name their `path` and validate
    what reaches it (`_verdict`)."""

    # Bodies larger than this are refused with 413 without being read.
    max_body = 1024 * 1024

    def __init__(self, thread_name: str) -> None:
        super().__init__(thread_name)
        self._lock = threading.Lock()
        self._requests: list[ReceivedRequest] = []
        self._faults: list[_Fault] = []

    def _make_server(self, tls: ssl.SSLContext) -> LoopbackServer:
        return _Server(self, tls)

    # -- faults ------------------------------------------------------------------------------

    def fail_next(
        self, status: int, times: int = 1, retry_after: int | str | None = None, *, after_accept: bool = False
    ) -> None:
        """Answer the next `times` well-formed calls with `status` (and `Retry-After`, seconds or an
        HTTP date); with `after_accept` the call is taken first."""
        if status < 400 or times < 1:
            raise ValueError("fail_next needs an error status (>= 400) and times >= 1")
        retry = None if retry_after is None else str(retry_after)
        self._add(_Fault("status", times, status, retry, after_accept))

    def hang_next(self, times: int = 1, *, after_accept: bool = True) -> None:
        """Hold the next `times` well-formed calls open without answering (until `release_hangs`)."""
        self._released.clear()
        self._add(_Fault("hang", times, after_accept=after_accept))

    def reset_next(self, times: int = 1, *, after_accept: bool = False) -> None:
        """Reset the connection of the next `times` well-formed calls instead of answering."""
        self._add(_Fault("reset", times, after_accept=after_accept))

    def _add(self, fault: _Fault) -> None:
        if fault.times < 1:
            raise ValueError("a fault needs times >= 1")
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.times > 0:
                    fault.times -= 1
                    self._faults = [pending for pending in self._faults if pending.times > 0]
                    return fault
        return None

    # -- state for tests ---------------------------------------------------------------------

    @property
    def requests(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._requests)

    def _record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    # Why a call to another path was refused, in `requests` ("no such workflow").
    unknown_path = "no such path"

    @property
    def path(self) -> str:
        """The one path the receiver answers on."""
        raise NotImplementedError

    def _route(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Verdict:
        # A receiver answers 404 to a path it does not know before it looks at the method.
        if urlsplit(target).path != self.path:
            return Verdict(404, self.unknown_path)
        if method != "POST":
            return Verdict(405, "not a POST")
        return self._verdict(target, headers, body)

    def _verdict(self, target: str, headers: Mapping[str, str], body: bytes) -> Verdict:
        """What the receiver makes of a POST to its `path` (`target` with its query)."""
        raise NotImplementedError

    @staticmethod
    def _json_type(headers: Mapping[str, str]) -> bool:
        return headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"

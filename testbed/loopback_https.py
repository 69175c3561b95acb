"""Loopback HTTPS scaffolding shared by the local fakes (the tenant simulator and the ACS email
fake): a threaded HTTP/1.1 server on 127.0.0.1 with a private trustme CA, so real clients
verify it like any other server, and a stop that leaves no threads, sockets or files behind.

Standard library plus trustme. Each fake subclasses `LoopbackServer` (to carry its own state)
and `LoopbackHandler` (to route requests), and runs its servers through `LoopbackHttps`.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import trustme


class LoopbackServer(ThreadingHTTPServer):
    """A `ThreadingHTTPServer` on an ephemeral loopback port, over TLS when given a context
    (plain HTTP with `tls=None`), that tracks its open connections so `stop()` can end them."""

    daemon_threads = False  # server_close() joins the connection threads: no leaks between tests
    block_on_close = True

    def __init__(self, tls: ssl.SSLContext | None, handler: type[LoopbackHandler]) -> None:
        self.tls = tls
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        connection, address = super().get_request()
        if self.tls is not None:
            # The handshake runs in the connection's own thread (see LoopbackHandler.setup), so
            # one slow client cannot stall the accept loop.
            connection = self.tls.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
        return connection, address

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients dropping connections (and our own shutdowns and resets) are expected; stay quiet.
        return

    def close_connections(self) -> None:
        """Shut down every open connection, so keep-alive handler threads stop waiting for the
        next request and `server_close()` can join them."""
        with self.connections_lock:
            for connection in list(self.connections):
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        """Stop accepting, end open connections, then close (joining the connection threads)."""
        self.shutdown()
        self.close_connections()
        self.server_close()


class LoopbackHandler(BaseHTTPRequestHandler):
    """Request handler base: HTTP/1.1 keep-alive, TLS handshake off the accept thread,
    connection tracking for `LoopbackServer.close_connections`, and no logging."""

    protocol_version = "HTTP/1.1"
    server: LoopbackServer

    def setup(self) -> None:
        if isinstance(self.request, ssl.SSLSocket):
            self.request.do_handshake()
        with self.server.connections_lock:
            self.server.connections.add(self.request)
        super().setup()

    def finish(self) -> None:
        # The client may already be gone; flushing to a dead socket is not an error here.
        with contextlib.suppress(OSError):
            super().finish()
        with self.server.connections_lock:
            self.server.connections.discard(self.request)

    def log_message(self, format: str, *args: Any) -> None:
        # Never log: request lines and headers carry tokens and signatures, bodies addresses.
        return

    # Every method goes to one `_dispatch`, which routes on method and path itself (and answers
    # 404/405 as the real service would) rather than leaving unknown methods to http.server.
    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        raise NotImplementedError("a loopback handler routes its requests in _dispatch")


class LoopbackHttps:
    """What a loopback fake needs around its servers: a private work directory holding a fresh
    CA's certificate (`ca_bundle`, for clients to trust), a server TLS context with a leaf
    certificate for 127.0.0.1 and localhost, and the threads serving its servers.

    A fresh CA per instance means a client configured for another fake cannot connect by
    mistake; the CA's key lives only in memory.
    """

    def __init__(self, workdir_prefix: str) -> None:
        self._workdir = tempfile.TemporaryDirectory(prefix=workdir_prefix)
        self.workdir = Path(self._workdir.name)
        ca = trustme.CA()
        self.ca_bundle = self.workdir / "ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_bundle))
        self.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.tls.minimum_version = ssl.TLSVersion.TLSv1_2
        # Only HTTP/1.1 is offered, so a client that prefers HTTP/2 falls back cleanly.
        self.tls.set_alpn_protocols(["http/1.1"])
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(self.tls)
        self._servers: list[LoopbackServer] = []
        self._threads: list[threading.Thread] = []

    @property
    def running(self) -> bool:
        return bool(self._servers)

    def serve(self, server: LoopbackServer, thread_name: str) -> None:
        """Run `server` in a daemon thread until `stop()`."""
        self._servers.append(server)
        thread = threading.Thread(
            target=server.serve_forever,
            # A short poll keeps shutdown() quick.
            kwargs={"poll_interval": 0.05},
            name=thread_name,
            daemon=True,
        )
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Stop every server, join their threads, and delete the work directory (CA included)."""
        for server in self._servers:
            server.stop()
        for thread in self._threads:
            thread.join(timeout=5)
        self._servers, self._threads = [], []
        self._workdir.cleanup()


class LoopbackFake:
    """A fake service on loopback HTTPS with its own CA: started and stopped (or used as a context
    manager), its base URL once started, and `release_hangs` for the connections it holds open on
    purpose. A subclass says which server answers (`_make_server`)."""

    def __init__(self, thread_name: str) -> None:
        self._thread_name = thread_name
        self._released = threading.Event()
        self._loopback = LoopbackHttps(f"partnerguard-{thread_name}-")
        self.ca_bundle = self._loopback.ca_bundle
        self._base = ""

    def _make_server(self, tls: ssl.SSLContext) -> LoopbackServer:
        raise NotImplementedError("a loopback fake says which server answers")

    def start(self) -> Self:
        if self._loopback.running:
            return self
        server = self._make_server(self._loopback.tls)
        self._base = f"https://127.0.0.1:{server.server_address[1]}"
        self._loopback.serve(server, f"{self._thread_name}-{server.server_address[1]}")
        return self

    def stop(self) -> None:
        self.release_hangs()
        self._loopback.stop()

    def release_hangs(self) -> None:
        """Let go of the connections the fake is holding open (they are dropped, unanswered)."""
        self._released.set()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if not self._base:
            raise RuntimeError(f"the {self._thread_name} is not started")
        return self._base


def combined_ca(path: Path, *bundles: Path) -> Path:
    """One PEM with every loopback fake's CA: PARTNERGUARD_CA_BUNDLE takes one file."""
    path.write_bytes(b"\n".join(bundle.read_bytes().strip() for bundle in bundles) + b"\n")
    return path

"""The tenant simulator's HTTPS server: Entra ID and Microsoft Graph for simulated tenants, on
loopback, with a CA of its own (trustme) so real clients verify it like any other server.

Standard library only (plus trustme), on the loopback HTTPS scaffolding in
`testbed.loopback_https`: `ThreadingHTTPServer` speaking HTTP/1.1 with keep-alive over TLS.
ALPN offers only `http/1.1`, so an httpx client with `http2=True` falls back cleanly. The
managed-identity endpoint listens separately on plain HTTP, as App Service's does
(`IDENTITY_ENDPOINT=http://127.0.0.1:<port>/msi/token`).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from urllib.parse import parse_qsl, urlsplit

from testbed.loopback_https import LoopbackHandler, LoopbackHttps, LoopbackServer
from testbed.simulator.entra_id import (
    AuthResponse,
    EntraAuthority,
    FederatedAssertion,
    FederatedIdentityCredential,
)
from testbed.simulator.graph_api import GraphResponse, GraphService, fault_response
from testbed.simulator.neighbours import NoisyNeighbour
from testbed.simulator.recording import Fault, FaultInjector, RequestRecord
from testbed.simulator.scenario import TenantScenario, bundled_scenarios
from testbed.simulator.sign_in_log import LazySignInLog
from testbed.simulator.throttling import GRAPH_LIMITS, Throttle, ThrottleLimit

_OPENID_RE = re.compile(r"^/(?P<tenant>[^/]+)(?:/(?P<version>v2\.0))?/\.well-known/openid-configuration$")
_TOKEN_RE = re.compile(r"^/(?P<tenant>[^/]+)/oauth2/v2\.0/token$")
_GRAPH_RE = re.compile(r"^/(?P<version>v1\.0|beta)(?P<path>/.*)?$")
_MAX_BODY = 4 * 1024 * 1024


class _Server(LoopbackServer):
    def __init__(self, simulator: TenantSimulator, tls: ssl.SSLContext | None, managed_identity_only: bool) -> None:
        self.simulator = simulator
        self.managed_identity_only = managed_identity_only
        super().__init__(tls, _Handler)


class _Handler(LoopbackHandler):
    server: _Server

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0 or length > _MAX_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        simulator = self.server.simulator
        try:
            body = self._read_body()
        except ValueError:
            self._send(GraphResponse(413, {"error": {"code": "RequestEntityTooLarge", "message": "Too large."}}))
            return
        if simulator.latency_s > 0:
            time.sleep(simulator.latency_s)
        parts = urlsplit(self.path)
        path, query = parts.path, parts.query
        headers = {name.lower(): value for name, value in self.headers.items()}
        fault = simulator.faults.take(path)
        if fault is not None:
            if fault.delay_s > 0:
                time.sleep(fault.delay_s)  # a hung upstream: the client's timeout should fire first
            simulator.record(
                RequestRecord(
                    self.command,
                    path,
                    query,
                    0 if fault.resets_connection else fault.status,
                    None,
                    None,
                    time.time(),
                )
            )
            if fault.resets_connection:
                self._reset()
            else:
                self._send(fault_response(fault))
            return
        response = self._route(path, query, headers, body)
        simulator.record(
            RequestRecord(
                self.command,
                path,
                query,
                response.status,
                response.tenant_id,
                response.api_class.value if response.api_class else None,
                time.time(),
            )
        )
        self._send(response)

    def _route(self, path: str, query: str, headers: dict[str, str], body: bytes) -> GraphResponse:
        simulator = self.server.simulator
        if path == "/msi/token" and self.command == "GET":
            return _from_auth(simulator.authority.managed_identity_token(dict(parse_qsl(query)), headers))
        if self.server.managed_identity_only:
            return _not_found(path)
        graph = _GRAPH_RE.match(path)
        if graph:
            return simulator.graph.handle(self.command, graph["version"], graph["path"] or "/", query, headers, body)
        openid = _OPENID_RE.match(path)
        if openid and self.command == "GET":
            return _from_auth(simulator.authority.openid_configuration(openid["tenant"], openid["version"] or "v1"))
        token = _TOKEN_RE.match(path)
        if token and self.command == "POST":
            form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            response = _from_auth(simulator.authority.token(token["tenant"], form, headers.get("client-request-id")))
            tenant = simulator.authority.resolve_tenant(token["tenant"])
            response.tenant_id = tenant.tenant_id if tenant else None
            return response
        return _not_found(path)

    def _send(self, response: GraphResponse) -> None:
        if isinstance(response.body, bytes | str):
            payload = response.body.encode() if isinstance(response.body, str) else response.body
        else:
            payload = json.dumps(response.body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        self.send_response(response.status)
        headers = {"Content-Type": "application/json; charset=utf-8", **response.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send a TCP RST: the client sees the
        # connection reset mid-request, as with a dropped load balancer connection.
        with contextlib.suppress(OSError):
            self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        with contextlib.suppress(OSError):
            # Close before socketserver's own shutdown(SHUT_WR), which would send a polite FIN.
            self.request.close()


def _from_auth(response: AuthResponse) -> GraphResponse:
    return GraphResponse(response.status, response.body, dict(response.headers))


def _not_found(path: str) -> GraphResponse:
    return GraphResponse(404, {"error": {"code": "NotFound", "message": f"No simulated endpoint at {path}."}})


class TenantSimulator:
    """Microsoft Entra ID + Microsoft Graph for the given tenant scenarios, over loopback HTTPS.

    The scenarios are served live: `sim.tenant(id)` returns the very object the server reads,
    so a test can change it between two scans. The home tenant (the app's, `AZURE_TENANT_ID`) is
    the first partner-role scenario.
    """

    def __init__(
        self,
        scenarios: Iterable[TenantScenario] | None = None,
        *,
        enforce_limits: bool = True,
        latency_s: float = 0.0,
        limits: Sequence[ThrottleLimit] | None = None,
        token_lifetime_s: int = 3599,
        noisy_neighbours: Sequence[NoisyNeighbour] = (),
        clock: Callable[[], float] = time.monotonic,
        sign_in_logs: Mapping[str, LazySignInLog] | None = None,
    ) -> None:
        tenants = list(bundled_scenarios() if scenarios is None else scenarios)
        if not tenants:
            raise ValueError("the simulator needs at least one tenant scenario")
        self._tenants: dict[str, TenantScenario] = {}
        for tenant in tenants:
            if tenant.tenant_id in self._tenants:
                raise ValueError(f"tenant {tenant.tenant_id} appears twice")
            self._tenants[tenant.tenant_id] = tenant
        self.home_tenant_id = next((t.tenant_id for t in tenants if t.role == "partner"), tenants[0].tenant_id)
        self.latency_s = latency_s
        self.enforce_limits = enforce_limits
        self.limits = tuple(GRAPH_LIMITS if limits is None else limits)
        self.faults = FaultInjector()
        self._records: list[RequestRecord] = []
        self._records_lock = threading.Lock()
        self._loopback = LoopbackHttps("partnerguard-sim-")
        workdir = self._loopback.workdir
        self.ca_bundle = self._loopback.ca_bundle
        self._base_url = ""
        self.authority = EntraAuthority(
            self._tenants,
            self.home_tenant_id,
            lambda: self._base_url,
            workdir,
            token_lifetime_s=token_lifetime_s,
        )
        # `clock`: the benchmark's shared virtual clock, so Graph's windows slide in the same
        # seconds as the client's pacer (testbed/simulator/shared_clock.py).
        self.throttle = Throttle(self.limits, clock=clock) if enforce_limits else None
        # Tenant id -> its sign-ins generated on demand (the benchmark's big logs), served instead
        # of the scenario's listed ones.
        self.sign_in_logs: dict[str, LazySignInLog] = {key.lower(): log for key, log in (sign_in_logs or {}).items()}
        # Other apps spending budgets PartnerGuard shares with them (they need the limits on).
        self.noisy_neighbours = tuple(noisy_neighbours)
        if self.noisy_neighbours and self.throttle is None:
            raise ValueError("noisy neighbours share Graph's limits: they need enforce_limits=True")
        self.graph = GraphService(
            self._tenants,
            self.authority,
            self.throttle,
            lambda: self._base_url,
            self.record,
            self.faults.take,
            self.sign_in_logs,
        )
        self._managed_identity_url = ""

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> TenantSimulator:
        if self._loopback.running:
            return self
        https = _Server(self, self._loopback.tls, managed_identity_only=False)
        plain = _Server(self, None, managed_identity_only=True)
        self._base_url = f"https://127.0.0.1:{https.server_address[1]}"
        self._managed_identity_url = f"http://127.0.0.1:{plain.server_address[1]}/msi/token"
        for server in (https, plain):
            self._loopback.serve(server, f"tenant-simulator-{server.server_address[1]}")
        if self.throttle is not None:
            for neighbour in self.noisy_neighbours:
                neighbour.start(self.throttle)
        return self

    def stop(self) -> None:
        for neighbour in self.noisy_neighbours:
            neighbour.stop()
        self._loopback.stop()

    def __enter__(self) -> TenantSimulator:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()

    # -- what clients need -------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if not self._base_url:
            raise RuntimeError("the simulator is not started")
        return self._base_url

    @property
    def client_id(self) -> str:
        return self.authority.client_id

    @property
    def client_secret(self) -> str:
        return self.authority.client_secret

    @property
    def certificate_path(self) -> Path:
        return self.authority.certificate_path

    @property
    def managed_identity_client_id(self) -> str:
        return self.authority.managed_identity_client_id

    def environment(self) -> dict[str, str]:
        """The settings a PartnerGuard process needs to scan the simulated tenants."""
        return {
            "GRAPH_ENDPOINT": self.base_url,
            "AZURE_AUTHORITY_HOST": self.base_url,
            "AZURE_CLIENT_ID": self.client_id,
            "AZURE_CLIENT_SECRET": self.client_secret,
            "PARTNERGUARD_CA_BUNDLE": str(self.ca_bundle),
            "AZURE_TENANT_ID": self.home_tenant_id,
            "PARTNERGUARD_TENANTS": ",".join(self._tenants),
        }

    def managed_identity_environment(self) -> dict[str, str]:
        """IDENTITY_ENDPOINT / IDENTITY_HEADER as App Service sets them, for ManagedIdentityCredential."""
        if not self._managed_identity_url:
            raise RuntimeError("the simulator is not started")
        return {
            "IDENTITY_ENDPOINT": self._managed_identity_url,
            "IDENTITY_HEADER": self.authority.identity_header,
        }

    # -- state for tests ---------------------------------------------------------------------

    def tenant(self, tenant_id: str) -> TenantScenario:
        return self._tenants[tenant_id.lower()]

    @property
    def tenants(self) -> list[TenantScenario]:
        return list(self._tenants.values())

    @property
    def requests(self) -> list[RequestRecord]:
        with self._records_lock:
            return list(self._records)

    def record(self, record: RequestRecord) -> None:
        with self._records_lock:
            self._records.append(record)

    def clear_requests(self) -> None:
        with self._records_lock:
            self._records.clear()

    def inject_fault(
        self,
        path_regex: str,
        status: int = 503,
        times: int = 1,
        retry_after: int | None = None,
        body: str | bytes | None = None,
        delay_s: float = 0.0,
    ) -> None:
        """Answer the next `times` requests whose path matches `path_regex` (re.search) with
        `status`, an optional Retry-After and an optional raw body (e.g. truncated JSON), or
        drop the connection with `body="reset"`; `delay_s` holds each answer that long first
        (a hang, past the client's timeout). `$batch` sub-requests match on `/v1.0/...`."""
        self.faults.add(Fault(re.compile(path_regex), status, times, retry_after, body, delay_s))

    def expire_tokens(self) -> None:
        self.authority.expire_tokens()

    def add_federated_credential(self, credential: FederatedIdentityCredential) -> None:
        """Register a federated identity credential on the app: tokens of an external issuer
        (a fake GitHub in the tests) become accepted client assertions."""
        self.authority.add_federated_credential(credential)

    @property
    def federated_assertions(self) -> list[FederatedAssertion]:
        """The external federated assertions the token endpoint judged, in order."""
        return self.authority.federated_assertions

    def reset_throttling(self) -> None:
        if self.throttle is not None:
            self.throttle.reset()

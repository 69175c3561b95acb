"""An async Microsoft Graph client on msgraph-core's transport, reading plain JSON.

What we take from the SDK: msgraph-core's httpx transport and middleware (retry with
Retry-After, redirects, telemetry headers), kiota's Azure Identity authentication provider (token
per request, allowed hosts, the Continuous Access Evaluation claims challenge and its one retry)
and the request adapter that ties them together. What we skip: the generated models. Each
request carries a `NativeResponseHandler`, so the adapter hands back the raw `httpx.Response`
and we parse it as JSON: model deserialisation costs 2–3 ms per object (SPEC §6), plain JSON
parsing about a microsecond.

Our own additions: a pacing middleware after the retry handler (every attempt is paced), retries
of transport failures (timeouts, resets), `@odata.nextLink` paging with a loop guard, and `$batch`
with relative sub-request URLs and our own retry of throttled sub-requests, which Graph does not
retry and msgraph-core's batch helpers send with absolute URLs that Graph rejects
(msgraph-sdk-python #1015, msgraph-sdk-python-core #1116).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from azure.core.credentials import AccessToken, TokenCredential
from azure.core.exceptions import ClientAuthenticationError
from kiota_abstractions.method import Method
from kiota_abstractions.native_response_handler import NativeResponseHandler
from kiota_abstractions.request_information import RequestInformation
from kiota_abstractions.request_option import RequestOption
from kiota_authentication_azure.azure_identity_authentication_provider import (
    AzureIdentityAuthenticationProvider,
)
from kiota_http.kiota_client_factory import KiotaClientFactory
from kiota_http.middleware.middleware import REQUEST_OPTIONS_KEY, BaseMiddleware
from kiota_http.middleware.options import ResponseHandlerOption, RetryHandlerOption
from msgraph_core import BaseGraphRequestAdapter, GraphClientFactory
from msgraph_core.middleware import GraphTelemetryHandler

from partnerguard.credentials import build_graph_credential
from partnerguard.graph.errors import (
    GraphError,
    GraphRequestError,
    TransientGraphError,
    error_from_response,
    error_from_sign_in,
)
from partnerguard.graph.pacing import PROCESS_PACER, ApiClass, Pacer, request_cost
from partnerguard.graph.permissions import UnreadableToken, token_roles
from partnerguard.graph.requests import ApiVersion, GraphRequest
from partnerguard.graph.tls import ssl_context
from partnerguard.settings import Settings

log = logging.getLogger(__name__)

# Graph accepts at most 20 requests in one $batch:
# https://learn.microsoft.com/graph/json-batching
MAX_BATCH_SIZE = 20
# $batch POSTs of one client in flight at once; the pacer still bounds the rate.
BATCH_CONCURRENCY = 4
RETRYABLE_STATUSES = frozenset({429, 503, 504})
# Refresh a cached token this long before it expires.
TOKEN_REFRESH_MARGIN_SECONDS = 300


# Where the pacing middleware keeps a request's PacingOption for its retries.
PACING_EXTENSION = "partnerguard.pacing"


class PacingOption(RequestOption):
    """Tells the pacing middleware which API class a request is in and what it costs."""

    KEY = "PartnerGuardPacingOption"

    def __init__(self, api_class: ApiClass, cost: int = 1) -> None:
        self.api_class = api_class
        self.cost = cost

    @staticmethod
    def get_key() -> str:
        return PacingOption.KEY


class PacingMiddleware(BaseMiddleware):
    """Waits for the pacer before each attempt and tells it how the attempt went; it sits
    after the retry handler, so retries are paced too and a 429 holds back the whole window,
    not only the request that met it."""

    def __init__(self, pacer: Pacer, tenant_id: str) -> None:
        super().__init__()
        self.pacer = pacer
        self.tenant_id = tenant_id

    async def send(self, request: httpx.Request, transport: httpx.AsyncBaseTransport) -> httpx.Response:
        # Kiota's request options are gone from the request by the time the retry handler sends
        # it again, so the first attempt keeps the pacing option where a retry finds it.
        option = request.extensions.get(PACING_EXTENSION)
        if not isinstance(option, PacingOption):
            options = request.extensions.get(REQUEST_OPTIONS_KEY) or {}
            option = options.get(PacingOption.get_key())
            if isinstance(option, PacingOption):
                request.extensions[PACING_EXTENSION] = option
        if not isinstance(option, PacingOption):
            unpaced: httpx.Response = await super().send(request, transport)
            return unpaced
        reservation = await self.pacer.acquire(self.tenant_id, option.api_class, option.cost)
        if reservation.waited:
            log.debug("paced %s request for %.2f s", option.api_class, reservation.waited)
        try:
            response: httpx.Response = await super().send(request, transport)
            # The answer is in once its body is (httpx would read it after the middleware
            # returns): read it while the units are held, so that nothing counts the request as
            # answered while its body is still on the wire - the benchmark's virtual clock only
            # jumps ahead when no request is in flight (testbed/bench/virtual_time.py).
            await response.aread()
        finally:
            # Graph counted the request before it answered: from now on the window is exact.
            reservation.settle()
        if response.status_code == 429:
            pause = self.pacer.throttled(
                self.tenant_id,
                option.api_class,
                _retry_after_seconds(response.headers.get("Retry-After")),
                app_wide=_app_wide_scope(response.headers.get("x-ms-throttle-scope")),
            )
            log.info(
                "tenant %s: %s request throttled; holding back for %.1f s", self.tenant_id, option.api_class, pause
            )
        else:
            self.pacer.succeeded(self.tenant_id, option.api_class)
        return response


def _app_wide_scope(value: str | None) -> bool:
    """Whether Graph's `x-ms-throttle-scope` (`<Scope>/<Limit>/<AppId>/<TenantId>`, documented
    for the identity and access limits) names the app-wide limit rather than the tenant's."""
    return value is not None and value.split("/", 1)[0].strip().lower() == "application"


class ThreadedCredential:
    """An async face (azure-core's AsyncTokenCredential) on a synchronous credential.

    Token requests run in a worker thread so they never block the event loop; the latest token
    is kept and reused until shortly before it expires, so most calls need no thread at all.
    A claims challenge (Continuous Access Evaluation) always goes to the credential.

    `rebuild`, when given, makes a fresh credential: `renew()` uses it after Graph rejected a
    token it had no reason to reject (401 without a claims challenge), since the old
    credential's MSAL cache would hand back the very same token.
    """

    def __init__(self, credential: TokenCredential, rebuild: Callable[[], TokenCredential] | None = None) -> None:
        self.credential = credential
        self._rebuild = rebuild
        self._cached: dict[tuple[tuple[str, ...], bool], AccessToken] = {}
        self._lock = asyncio.Lock()

    async def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        key = (tuple(scopes), enable_cae)
        reusable = claims is None and tenant_id is None and not kwargs
        if reusable and self._fresh(key):
            return self._cached[key]
        async with self._lock:
            if reusable and self._fresh(key):
                return self._cached[key]
            token = await asyncio.to_thread(
                self.credential.get_token,
                *scopes,
                claims=claims,
                tenant_id=tenant_id,
                enable_cae=enable_cae,
                **kwargs,
            )
            self._cached[key] = token
            return token

    def _fresh(self, key: tuple[tuple[str, ...], bool]) -> bool:
        token = self._cached.get(key)
        return token is not None and token.expires_on - time.time() > TOKEN_REFRESH_MARGIN_SECONDS

    async def renew(self) -> None:
        async with self._lock:
            self._cached.clear()
            if self._rebuild is not None:
                old, self.credential = self.credential, self._rebuild()
                await asyncio.to_thread(_close_quietly, old)

    async def close(self) -> None:
        """Closes the credential only when this object built it (else it is the caller's)."""
        if self._rebuild is not None:
            await asyncio.to_thread(_close_quietly, self.credential)

    async def __aenter__(self) -> ThreadedCredential:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _close_quietly(credential: TokenCredential) -> None:
    close = getattr(credential, "close", None)
    if callable(close):
        close()


@dataclass(frozen=True)
class BatchResult:
    """The answer to one sub-request of a `$batch`: its JSON body, or the error it ended with."""

    request: GraphRequest
    status: int
    body: Any
    error: GraphError | None

    @property
    def ok(self) -> bool:
        return self.error is None


def _header(headers: Any, name: str) -> str | None:
    if not isinstance(headers, dict):
        return None
    for key, value in headers.items():
        if isinstance(key, str) and key.lower() == name.lower():
            return str(value)
    return None


def _retry_after_seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class GraphClient:
    """Reads Graph as plain JSON for one tenant. Use `async with`, or call `aclose()`."""

    def __init__(
        self,
        settings: Settings,
        tenant_id: str,
        credential: TokenCredential | None = None,
        *,
        pacer: Pacer | None = None,
        timeout_seconds: float = 60.0,
        max_retries: int = 5,
        retry_delay_seconds: float = 1.0,
        transport_retries: int = 2,
    ) -> None:
        self.settings = settings
        self.tenant_id = tenant_id
        self.pacer = pacer or PROCESS_PACER
        self.graph_host = urlsplit(settings.graph_endpoint).hostname or ""
        self.max_retries = max_retries
        self.retry_delay_seconds = retry_delay_seconds
        self.transport_retries = transport_retries
        http = httpx.AsyncClient(
            verify=ssl_context(settings.ca_bundle),
            timeout=httpx.Timeout(timeout_seconds, connect=min(10.0, timeout_seconds)),
            # Redirects are the RedirectHandler middleware's job (it drops the Authorization
            # header when a redirect leaves the host), not httpx's.
            follow_redirects=False,
        )
        retry_options: dict[str, RequestOption] = {
            RetryHandlerOption.get_key(): RetryHandlerOption(delay=retry_delay_seconds, max_retries=max_retries)
        }
        # The default chain of GraphClientFactory.create_with_default_middleware, with pacing
        # inserted after the retry handler so that every retry is paced as well.
        middleware = [
            *KiotaClientFactory.get_default_middleware(retry_options),
            PacingMiddleware(self.pacer, tenant_id),
            GraphTelemetryHandler(),
        ]
        self._http = GraphClientFactory.create_with_custom_middleware(middleware, client=http)
        if credential is None:
            # Ours to build, renew and close.
            def rebuild() -> TokenCredential:
                return build_graph_credential(settings, tenant_id)

            self._credential = ThreadedCredential(rebuild(), rebuild)
        else:
            self._credential = ThreadedCredential(credential)
        auth = AzureIdentityAuthenticationProvider(
            self._credential, scopes=[settings.graph_scope], allowed_hosts=[self.graph_host]
        )
        self._adapter = BaseGraphRequestAdapter(auth, http_client=self._http)

    async def __aenter__(self) -> GraphClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        await self._credential.close()

    async def token_roles(self) -> frozenset[str]:
        """The Graph application permissions in the app's token for this tenant (its `roles`).

        The same token the requests carry (same scope, CAE on, as kiota asks for it), so this costs
        a sign-in only when no request has signed in yet. A refused sign-in raises `SignInFailed`
        (`ConsentMissing` when the app is not consented to in the tenant); the token never leaves
        this method."""
        try:
            token = await self._credential.get_token(self.settings.graph_scope, enable_cae=True)
        except ClientAuthenticationError as error:
            raise error_from_sign_in(error, "token") from None
        try:
            return token_roles(token.token)
        except UnreadableToken as error:
            raise GraphRequestError("UnreadableToken", str(error), None, "token") from None

    def url_for(self, request: GraphRequest) -> str:
        return f"{self.settings.graph_endpoint}/{request.api_version}{request.relative_url}"

    async def _send(
        self, method: Method, url: str, request: GraphRequest, body: bytes | None = None, cost: int = 1
    ) -> httpx.Response:
        transport_failures = 0
        renewed = False
        while True:
            info = RequestInformation(method)
            info.url = url
            info.headers.try_add("Accept", "application/json")
            if body is not None:
                info.set_stream_content(body, "application/json")
            info.add_request_options(
                [ResponseHandlerOption(NativeResponseHandler()), PacingOption(request.api_class, cost)]
            )
            try:
                response: httpx.Response = await self._adapter.send_async(info, None, {})
            except ClientAuthenticationError as error:
                raise error_from_sign_in(error, request.name) from None
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as error:
                # Every request we send is a read (a $batch of GETs included): safe to repeat.
                if transport_failures >= self.transport_retries:
                    raise TransientGraphError(
                        type(error).__name__, str(error) or "connection failed", None, request.name
                    ) from None
                transport_failures += 1
                await asyncio.sleep(self.retry_delay_seconds * transport_failures)
                continue
            challenge = response.headers.get("WWW-Authenticate", "")
            if response.status_code == 401 and not renewed and "claims=" not in challenge:
                # A token Graph no longer accepts (expired early, revoked without CAE): sign in
                # afresh once. Claims challenges are the adapter's (it retries those itself).
                renewed = True
                await self._credential.renew()
                continue
            return response

    async def _json(
        self, method: Method, url: str, request: GraphRequest, body: bytes | None = None, cost: int | None = None
    ) -> Any:
        if cost is None:
            # Every page of a collection costs what its first request costs: same path, same options.
            cost = request_cost(request.api_class, request.relative_url)
        response = await self._send(method, url, request, body, cost)
        try:
            payload = response.json() if response.content else None
        except (json.JSONDecodeError, UnicodeDecodeError):
            payload = None
            if response.is_success:
                raise GraphRequestError(
                    "InvalidJson",
                    "Graph answered with a body that is not JSON",
                    response.status_code,
                    request.name,
                ) from None
        if not response.is_success:
            raise error_from_response(response.status_code, payload, request.permission, request.name)
        return payload

    def _checked_next_link(self, link: Any, request: GraphRequest) -> str:
        parts = urlsplit(link) if isinstance(link, str) else None
        if parts is None or parts.scheme != "https" or parts.hostname != self.graph_host:
            # Never send the app's token, or follow a page, anywhere but the Graph host.
            raise GraphRequestError(
                "UnexpectedNextLink", "a nextLink pointed outside Microsoft Graph", None, request.name
            )
        return str(link)

    async def pages(self, request: GraphRequest, next_link: str | None = None) -> AsyncIterator[list[dict[str, Any]]]:
        """Each page's `value`, following `@odata.nextLink` verbatim until there is none.

        With `next_link`, paging starts there instead (the rest of a collection whose first page
        came back inside a `$batch`); the link is checked like any other.
        """
        url = self.url_for(request) if next_link is None else self._checked_next_link(next_link, request)
        seen = {url}
        while True:
            payload = await self._json(Method.GET, url, request)
            if not isinstance(payload, dict) or not isinstance(payload.get("value"), list):
                raise GraphRequestError(
                    "UnexpectedResponse", "a collection response without a value array", 200, request.name
                )
            yield [item for item in payload["value"] if isinstance(item, dict)]
            link = payload.get("@odata.nextLink")
            if link is None:
                return
            url = self._checked_next_link(link, request)
            if url in seen:
                raise GraphRequestError(
                    "RepeatedNextLink",
                    "Graph repeated a nextLink; paging stopped to avoid a loop",
                    200,
                    request.name,
                )
            seen.add(url)

    async def raw_pages(self, request: GraphRequest) -> AsyncIterator[bytes]:
        """Each page's body exactly as Graph sent it, following `@odata.nextLink`: for
        measurements that parse the same bytes two ways (docs/performance.md)."""
        url = self.url_for(request)
        cost = request_cost(request.api_class, request.relative_url)
        while True:
            response = await self._send(Method.GET, url, request, cost=cost)
            if not response.is_success:
                raise error_from_response(response.status_code, None, request.permission, request.name)
            yield response.content
            payload = json.loads(response.content)
            link = payload.get("@odata.nextLink") if isinstance(payload, dict) else None
            if link is None:
                return
            url = self._checked_next_link(link, request)

    async def collect(self, request: GraphRequest) -> list[dict[str, Any]]:
        """Every item of a collection, all pages."""
        items: list[dict[str, Any]] = []
        async for page in self.pages(request):
            items.extend(page)
        return items

    async def collection_from_batch(self, result: BatchResult) -> list[dict[str, Any]]:
        """Every item of a collection whose first page is a successful `$batch` answer: that
        page's `value`, then the following pages from its `@odata.nextLink`, if any."""
        body = result.body
        if not isinstance(body, dict) or not isinstance(body.get("value"), list):
            raise GraphRequestError(
                "UnexpectedResponse", "a collection response without a value array", result.status, result.request.name
            )
        items = [item for item in body["value"] if isinstance(item, dict)]
        link = body.get("@odata.nextLink")
        if link is not None:
            async for page in self.pages(result.request, next_link=link if isinstance(link, str) else ""):
                items.extend(page)
        return items

    async def get_object(self, request: GraphRequest) -> dict[str, Any]:
        payload = await self._json(Method.GET, self.url_for(request), request)
        if not isinstance(payload, dict):
            raise GraphRequestError("UnexpectedResponse", "expected a JSON object", 200, request.name)
        return payload

    async def batch(self, requests: Sequence[GraphRequest], api_version: ApiVersion | None = None) -> list[BatchResult]:
        """Send GET requests through `$batch`, in order; retries throttled sub-requests.

        Sub-requests go at most 20 to a batch, fewer when their API class allows fewer per
        window (a reports batch carries 5), with URLs relative to the version root. A failed
        `$batch` POST itself raises (the other batches of the call are cancelled first, so no
        request keeps running behind the error); a sub-request that fails for good has `error` set.
        """
        if not requests:
            return []
        versions = {request.api_version for request in requests}
        if len(versions) > 1 or (api_version is not None and versions != {api_version}):
            raise ValueError("all requests of one batch must use the same API version")
        version = next(iter(versions))
        results: list[BatchResult | None] = [None] * len(requests)
        chunks: list[list[int]] = []
        for api_class in dict.fromkeys(request.api_class for request in requests):
            indices = [i for i, request in enumerate(requests) if request.api_class == api_class]
            size = min(MAX_BATCH_SIZE, self.pacer.max_cost(api_class) or MAX_BATCH_SIZE)
            chunks.extend(indices[start : start + size] for start in range(0, len(indices), size))
        slots = asyncio.Semaphore(BATCH_CONCURRENCY)

        async def run(chunk: list[int]) -> None:
            async with slots:
                await self._run_batch(requests, chunk, version, results)

        await _all_or_none([run(chunk) for chunk in chunks])
        return [result for result in results if result is not None]

    async def _run_batch(
        self,
        requests: Sequence[GraphRequest],
        chunk: list[int],
        version: ApiVersion,
        results: list[BatchResult | None],
    ) -> None:
        pending = list(chunk)
        first = requests[chunk[0]]
        batch_request = GraphRequest(
            name=f"$batch({first.name})",
            api_version=version,
            relative_url="/$batch",
            api_class=first.api_class,
            permission=first.permission,
        )
        url = self.url_for(batch_request)
        for attempt in range(self.max_retries + 1):
            body = json.dumps(
                {"requests": [{"id": str(i), "method": "GET", "url": requests[i].relative_url} for i in pending]}
            ).encode()
            cost = sum(request_cost(requests[i].api_class, requests[i].relative_url) for i in pending)
            payload = await self._json(Method.POST, url, batch_request, body, cost=cost)
            answers = payload.get("responses") if isinstance(payload, dict) else None
            by_id = {
                str(answer.get("id")): answer
                for answer in (answers if isinstance(answers, list) else [])
                if isinstance(answer, dict)
            }
            retry: list[int] = []
            wait = 0.0
            # The windows Graph throttled in this batch, with the longest Retry-After of each.
            throttled: dict[tuple[ApiClass, bool], float | None] = {}
            last_attempt = attempt == self.max_retries
            for index in pending:
                answer = by_id.get(str(index))
                status = answer.get("status") if answer else None
                if not isinstance(status, int) or (status in RETRYABLE_STATUSES and not last_attempt):
                    retry.append(index)
                    if answer is not None:
                        hinted = _retry_after_seconds(_header(answer.get("headers"), "Retry-After"))
                        wait = max(wait, hinted if hinted is not None else 0.0)
                        if status == 429:
                            scope = _header(answer.get("headers"), "x-ms-throttle-scope")
                            key = (requests[index].api_class, _app_wide_scope(scope))
                            known = [value for value in (throttled.get(key), hinted) if value is not None]
                            throttled[key] = max(known) if known else None
                    continue
                answer_body = answer.get("body") if answer else None
                error = (
                    error_from_response(status, answer_body, requests[index].permission, requests[index].name)
                    if status >= 400
                    else None
                )
                results[index] = BatchResult(requests[index], status, answer_body, error)
            for (api_class, app_wide), hinted in throttled.items():
                # Once per window and batch, so the other batches of this tenant wait too (and
                # a back-off without Retry-After grows per batch, not per sub-request).
                self.pacer.throttled(self.tenant_id, api_class, hinted, app_wide=app_wide)
            if not retry:
                return
            pending = retry
            if last_attempt:
                break
            # Retry-After when Graph gave one (it does for most throttled sub-requests), else
            # exponential back-off: Conditional Access, for one, answers 429 without it.
            await asyncio.sleep(wait or self.retry_delay_seconds * 2**attempt)
        for index in pending:
            results[index] = BatchResult(
                requests[index],
                0,
                None,
                TransientGraphError(
                    "MissingBatchResponse",
                    "no answer to this sub-request after retries",
                    None,
                    requests[index].name,
                ),
            )


async def _all_or_none(runs: Sequence[Coroutine[Any, Any, None]]) -> None:
    """Run `runs` concurrently until all succeed; on the first failure cancel the rest, wait for
    them to stop, and raise that failure (as itself, not an ExceptionGroup: callers catch
    `GraphError`). Cancelling the caller cancels every run too."""
    tasks = [asyncio.ensure_future(run) for run in runs]
    if not tasks:
        return
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        # Retrieve every outcome, cancellations and later failures included, so none is left
        # unretrieved ("Task exception was never retrieved").
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        failure = task.exception() if task in done and not task.cancelled() else None
        if failure is not None:
            raise failure

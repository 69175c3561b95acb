"""One HTTPS POST of one alert to a webhook URL, and its answer as the transport contract's errors.

Shared by the Teams channel (notifiers/teams_transport.py) and the JSON webhook
(notifiers/webhook_transport.py). Neither receiver offers a lookup, so this is where
at-least-once is decided, and it follows notifiers/alert_transport.py:

- **a send is never retried here**: a second POST after one the receiver took is a second Teams
  card or a second ticket. The alert worker retries, with its own back-off;
- **what the answer means**: 2xx accepted (Workflows answers 202); 429 `SendThrottled` with the
  receiver's Retry-After (seconds or an HTTP date); 408 and 5xx `SendUnavailable`, ambiguous (the
  receiver may have acted before failing); 401/403 `SendDenied` (a rotated secret, a flow whose
  owner lost access); any other answer (400, 404 a deleted workflow, 410, 413 too large, a
  redirect) `SendRejected`: the same call would be refused again;
- **what a failure before an answer means**: a connection that was never made (refused, DNS, TLS
  handshake, the pool's wait) sent nothing: `SendUnavailable(ambiguous=False)`; a timeout or reset
  once the request was on its way may have been taken: `ambiguous=True`.

Timeouts: 10 s to connect, 30 s for each read or write, so a send ends well inside the delivery's
SEND_WINDOW (2 minutes, partnerguard/alerts/delivery.py). The answer's body is never needed, and
never read beyond its first 64 KB.

**The URL is a secret** (a Workflows URL carries its `sig=` in the query; a PSA's inbound URL often
a token in the path). It never appears in `name`, `repr`, an error message or a log line: errors
say "the Teams webhook answered 404", httpx's exceptions (whose messages may quote the URL) are
never chained, and httpx's own "HTTP Request: POST <url>" log line is rewritten by a filter on its
logger (`_HIDDEN`). The URL is also registered with `partnerguard.logs` so any formatter masks it.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

import httpx

from notifiers.alert_transport import Lookup, SendDenied, SendRejected, SendThrottled, SendUnavailable
from notifiers.retry_after import retry_after_seconds
from partnerguard.logs import register_secret

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
# How much of an answer's body is read (never needed; read so the connection can be reused).
_MAX_BODY = 64 * 1024
_TRANSIENT = frozenset({408, 500, 502, 503, 504})
_DENIED = frozenset({401, 403})

Verify = ssl.SSLContext | str | bool | None


def tls_verify(verify: Verify) -> ssl.SSLContext | bool:
    """What httpx is given: a CA file (partnerguard.credentials.combined_ca_file: the public roots
    plus PARTNERGUARD_CA_BUNDLE) becomes a context, since httpx deprecates paths; None (no extra
    CA: `combined_ca_file` answers None) is the public roots; False is refused, as an alert must
    never go to a receiver that was not verified."""
    if verify is None:
        return True
    if verify is False:
        raise ValueError("a webhook is always verified: pass True, a CA file or an SSL context")
    if isinstance(verify, str):
        return ssl.create_default_context(cafile=verify)
    return verify


class _HideUrls(logging.Filter):
    """Rewrites httpx's log records that would print a webhook URL (its `HTTP Request:` line)."""

    def __init__(self) -> None:
        super().__init__()
        self._urls: dict[str, str] = {}
        self._lock = threading.Lock()

    def hide(self, url: str, replacement: str) -> None:
        with self._lock:
            self._urls[url] = replacement
            self._urls[str(httpx.URL(url))] = replacement

    def _clean(self, value: object) -> object:
        text = str(value)
        with self._lock:
            hidden = [(url, name) for url, name in self._urls.items() if url in text]
        if not hidden:
            return value
        for url, name in sorted(hidden, key=lambda pair: -len(pair[0])):
            text = text.replace(url, name)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self._clean(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self._clean(arg) for arg in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {key: self._clean(arg) for key, arg in record.args.items()}
        return True


_HIDDEN = _HideUrls()
logging.getLogger("httpx").addFilter(_HIDDEN)


class WebhookPoster:
    """POSTs bodies to one URL; `channel` ("teams", "webhook") is what messages call it."""

    def __init__(
        self,
        channel: str,
        url: str,
        *,
        verify: Verify = True,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        try:
            parts = httpx.URL(url)
        except httpx.InvalidURL:
            parts = None
        if parts is None or parts.scheme != "https" or not parts.host:
            # Not quoted, nor chained: the URL is a secret even when it is wrong.
            raise ValueError(f"the {channel} webhook URL must be an https:// URL")
        self.channel = channel
        # What messages call it: "the Teams webhook", "the webhook".
        self._label = "the webhook" if channel == "webhook" else f"the {channel.capitalize()} webhook"
        self._url = url
        register_secret(url)
        _HIDDEN.hide(url, f"<{channel} webhook URL>")
        self._client = httpx.Client(
            verify=tls_verify(verify),
            timeout=httpx.Timeout(connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout),
            # A receiver that redirects is refused rather than followed: a POST is never re-sent.
            follow_redirects=False,
            # A fresh connection per alert: alerts are minutes apart, and a kept-alive connection the
            # receiver closed meanwhile would fail the next send after it left, as an ambiguous
            # failure that the retry turns into a duplicate.
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    def __repr__(self) -> str:
        return f"WebhookPoster(channel={self.channel!r})"

    def post(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Send once; return when the receiver answered 2xx, raise the contract's errors otherwise."""
        try:
            with self._client.stream("POST", self._url, content=body, headers=dict(headers)) as response:
                status = response.status_code
                answer_headers = dict(response.headers)
                self._drain(response)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            # Nothing left this process: the receiver cannot have taken it.
            raise SendUnavailable(self._failure("could not be reached", error), ambiguous=False) from None
        except (httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.LocalProtocolError) as error:
            raise SendRejected(self._failure("cannot be called", error)) from None
        except httpx.TransportError as error:
            # A write or read timeout, a reset, a connection closed without an answer: the request
            # was on its way, so the receiver may have acted on it.
            raise SendUnavailable(self._failure("did not answer", error), ambiguous=True) from None
        self._raise_for(status, answer_headers)

    @staticmethod
    def _drain(response: httpx.Response) -> None:
        read = 0
        try:
            for chunk in response.iter_raw():
                read += len(chunk)
                if read >= _MAX_BODY:
                    break
        except httpx.TransportError:
            # The status is what matters; a body cut short changes nothing.
            return

    def _failure(self, what: str, error: Exception) -> str:
        # The type only: httpx's messages may quote the URL.
        return f"{self._label} {what} ({type(error).__name__})"

    def _raise_for(self, status: int, headers: Mapping[str, Any]) -> None:
        if 200 <= status < 300:
            return
        text = f"{self._label} answered {status}"
        if status == 429:
            raise SendThrottled(text, retry_after_seconds(headers))
        if status in _TRANSIENT or status >= 500:
            raise SendUnavailable(text, ambiguous=True)
        if status in _DENIED:
            raise SendDenied(text)
        raise SendRejected(text)

    def close(self) -> None:
        self._client.close()


class WebhookChannel:
    """What the Teams and JSON webhook transports share: an `AlertTransport` (notifiers/
    alert_transport.py) to one URL, one alert per call, and no lookup. A subclass names its
    `channel` and renders and sends (`send`) through `_poster`.

    Neither a Workflows webhook nor a generic receiver keeps a record a caller can query, so
    `lookup` answers "unknown" without asking anyone: delivery is at-least-once (above)."""

    channel: ClassVar[str]
    confirms_operations = False
    # One alert per call: a Teams channel reads one digest per card (whose size budget is spent on
    # one tenant's findings), and a PSA turns each call into one ticket.
    max_alerts = 1

    def __init__(
        self,
        url: str,
        *,
        verify: Verify = True,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self._poster = WebhookPoster(
            self.channel, url, verify=verify, connect_timeout=connect_timeout, read_timeout=read_timeout
        )

    @property
    def name(self) -> str:
        return self.channel

    def __repr__(self) -> str:
        # Never the URL: it is a secret.
        return f"{type(self).__name__}()"

    def lookup(self, operation_id: str) -> Lookup:
        return Lookup("unknown")

    def close(self) -> None:
        self._poster.close()

"""A local fake of Azure Communication Services Email, for tests that drive the real
`azure.communication.email.EmailClient` end to end over loopback HTTPS.

It speaks the two data-plane operations the SDK uses (REST reference, "Email - Send" and
"Email - Get Send Result"):

- `POST /emails:send?api-version=...`: validates the message, records it, answers 202 with
  `Operation-Location`, `operation-id` and an `EmailSendResult` body (`status: Running`);
- `GET /emails/operations/{operationId}?api-version=...`: the status monitor the SDK's
  poller follows; an operation turns `Succeeded` (or a scripted `Failed`) when polled.

Every request must carry the HMAC-SHA256 signature the SDK's `HMACCredentialsPolicy` computes
from the access key, checked the way the service checks it, so a wrong key or a body altered
after signing is refused with 401. Like ACS, the fake does NOT de-duplicate on the client's
`Operation-Id` header: two sends with one Operation-Id are two emails. Exactly-once delivery is
the caller's job, and tests built on this fake must be able to see it fail.

It misbehaves as the real service has been seen to, on request:

- **accept, then fail the answer** (`fail_next(..., after_accept=True)`): the message is taken,
  the client sees a 5xx;
- **accept, then never answer** (`hang_next()`): the message is taken and the connection is held
  open without a response until the client's read timeout gives up on it (released at `stop()`
  or by `release_hangs()`);
- **lookups that do not know an accepted operation** (`lookup_lag` seconds after accepting, and
  `forget_after` seconds after accepting for good): ACS answered 404 to `GET
  /emails/operations/{id}` for an operation it had accepted and delivered
  (Azure/azure-sdk-for-python#35849), and the REST reference ("Email - Get Send Result")
  documents no retention for operation status. Both are measured on `clock` (seconds; by
  default `time.monotonic`), which a test replaces with a clock it moves forward itself.

The HMAC date check always uses the wall clock: the SDK signs with it.

Standard library plus trustme, on the loopback HTTPS scaffolding it shares with
`testbed.simulator.server` (`testbed.loopback_https`): `ThreadingHTTPServer` over TLS
with a CA of its own, joined connection threads, and a clean `stop()`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import parse_qs, quote, unquote, urlsplit

from testbed.loopback_https import LoopbackFake, LoopbackHandler, LoopbackServer

# The api-versions the SDK's ApiVersion enum knows (azure-communication-email 1.1.0).
API_VERSIONS = frozenset({"2023-03-31", "2024-07-01-preview", "2025-09-01"})
# ACS caps a send request (attachments included) at 10 MB.
MAX_REQUEST_BYTES = 10 * 1024 * 1024
# ACS's documented service limit: 50 recipients per email across To, CC and BCC.
MAX_RECIPIENTS = 50
# Azure's HMAC-signed services refuse requests whose x-ms-date is far from their clock, so a
# captured request cannot be replayed later. The exact ACS window is not documented; 15 minutes
# is the usual Azure figure and is wide enough for any test machine.
DEFAULT_MAX_CLOCK_SKEW = timedelta(minutes=15)

_SEND_PATH = "/emails:send"
_OPERATION_RE = re.compile(r"^/emails/operations/(?P<id>[^/]+)$")
# The signed headers the SDK uses; the service requires at least these three (the date may be
# `date` instead of `x-ms-date`).
_REQUIRED_SIGNED = frozenset({"host", "x-ms-content-sha256"})
# Same message for every authentication failure, as the service gives: the reason is recorded
# in `AcsEmailFake.requests` for the test, never told to the caller.
_DENIED = {"code": "Denied", "message": "Denied by the resource provider."}

OperationStatus = Literal["NotStarted", "Running", "Succeeded", "Failed", "Canceled"]
FaultTarget = Literal["send", "status"]


@dataclass(frozen=True)
class EmailAddress:
    address: str
    display_name: str | None = None


@dataclass(frozen=True)
class EmailAttachment:
    name: str
    content_type: str
    content: bytes
    content_id: str | None = None


@dataclass(frozen=True)
class SentEmail:
    """One message the fake accepted (a 202, or a scripted error sent after accepting it).

    Strings are exactly as the client sent them: nothing is trimmed, escaped or normalised,
    so tests can check what a real recipient would get. `headers` are the message's custom
    email headers (the request body's `headers`), not HTTP headers.
    """

    operation_id: str
    operation_id_from_client: bool
    sender: str
    to: tuple[EmailAddress, ...]
    cc: tuple[EmailAddress, ...]
    bcc: tuple[EmailAddress, ...]
    reply_to: tuple[EmailAddress, ...]
    subject: str
    html: str | None
    plain_text: str | None
    headers: Mapping[str, str]
    attachments: tuple[EmailAttachment, ...]
    user_engagement_tracking_disabled: bool | None
    client_request_id: str | None
    body: Mapping[str, Any] = field(repr=False)

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every recipient address, To then CC then BCC."""
        return tuple(entry.address for entry in (*self.to, *self.cc, *self.bcc))


@dataclass(frozen=True)
class AcsRequest:
    """One request the fake answered. `refused` says why authentication or validation failed
    (the wire response stays as terse as the service's); `at` is `time.monotonic()`."""

    method: str
    path: str
    query: str
    status: int
    operation_id: str | None
    refused: str | None
    at: float


@dataclass
class _Fault:
    status: int
    times: int
    retry_after: int | None
    target: FaultTarget
    after_accept: bool
    hang: bool = False


@dataclass
class _Operation:
    id: str
    status: OperationStatus
    running_polls_left: int
    outcome: tuple[str, str] | None  # (code, message) when the operation is scripted to fail
    accepted_at: float = 0.0  # on the fake's `clock`

    def result(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "status": self.status}
        if self.status == "Failed" and self.outcome is not None:
            body["error"] = {"code": self.outcome[0], "message": self.outcome[1]}
        return body


@dataclass
class _Reply:
    status: int
    body: Mapping[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)
    operation_id: str | None = None
    refused: str | None = None
    # No answer at all: the connection is held open, then dropped (a hung service).
    hang: bool = False


class _Refused(Exception):
    """A request the service would turn down: becomes an ACS error response."""

    def __init__(self, status: int, code: str, message: str, target: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.target = target

    def reply(self) -> _Reply:
        return _error(self.status, self.code, self.message, target=self.target, refused=self.message)


def _error(
    status: int,
    code: str,
    message: str,
    *,
    target: str | None = None,
    refused: str | None = None,
    headers: dict[str, str] | None = None,
) -> _Reply:
    error: dict[str, Any] = {"code": code, "message": message}
    if target is not None:
        error["target"] = target
    # ACS sends the error code in a header too; azure-core reads either.
    return _Reply(status, {"error": error}, {"x-ms-error-code": code, **(headers or {})}, refused=refused)


# -- HMAC -------------------------------------------------------------------------------------


def content_hash(body: bytes) -> str:
    """`x-ms-content-sha256`: base64 of the SHA-256 of the exact request body."""
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def sign(access_key: str, string_to_sign: str) -> str:
    """The HMAC-SHA256 signature ACS expects: keyed with the base64-decoded access key."""
    digest = hmac.new(base64.b64decode(access_key), string_to_sign.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def hmac_refusal(
    access_key: str,
    method: str,
    path_and_query: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime,
    max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW,
) -> str | None:
    """Why this request's HMAC authentication fails, or None when it is valid.

    `headers` must have lower-case names. The string to sign is
    `VERB\\npath?query\\n<values of SignedHeaders, joined by ';'>`, the SDK's and the service's
    rule; `path_and_query` is the request target exactly as received, since that is what the
    service verifies (a client that signs one path and sends another is refused).
    """
    authorization = headers.get("authorization", "")
    scheme, _, parameters = authorization.partition(" ")
    if scheme != "HMAC-SHA256":
        return "Authorization is not HMAC-SHA256"
    fields: dict[str, str] = {}
    for part in parameters.split("&"):
        # Signature values are base64 and may end in '=': split on the first '=' only.
        name, sep, value = part.partition("=")
        if sep:
            fields[name.strip()] = value.strip()
    signed_headers = [name.strip().lower() for name in fields.get("SignedHeaders", "").split(";") if name.strip()]
    signature = fields.get("Signature", "")
    if not signed_headers or not signature:
        return "Authorization lacks SignedHeaders or Signature"
    if not _REQUIRED_SIGNED.issubset(signed_headers) or not ({"x-ms-date", "date"} & set(signed_headers)):
        return "SignedHeaders must include a date, host and x-ms-content-sha256"
    missing = [name for name in signed_headers if name not in headers]
    if missing:
        return f"signed header(s) missing from the request: {', '.join(missing)}"

    # The body hash is checked on its own: a valid signature over a hash that does not match
    # the body means the body was changed after signing.
    if not hmac.compare_digest(headers["x-ms-content-sha256"].encode("utf-8"), content_hash(body).encode("ascii")):
        return "x-ms-content-sha256 does not match the body"

    date_header = headers.get("x-ms-date") if "x-ms-date" in signed_headers else headers.get("date")
    try:
        signed_at = parsedate_to_datetime(date_header or "")
    except (TypeError, ValueError):
        return "the signed date is not an HTTP date"
    if signed_at.tzinfo is None:
        return "the signed date has no time zone"
    if abs(now - signed_at) > max_clock_skew:
        return "the signed date is outside the allowed clock skew"

    string_to_sign = f"{method.upper()}\n{path_and_query}\n" + ";".join(headers[name] for name in signed_headers)
    try:
        expected = sign(access_key, string_to_sign)
    except binascii.Error:  # pragma: no cover - the fake's own key is always valid base64
        return "the access key is not base64"
    if not hmac.compare_digest(signature.encode("utf-8"), expected.encode("ascii")):
        return "signature mismatch"
    return None


# -- message validation -----------------------------------------------------------------------


def _address(value: Any, target: str) -> EmailAddress:
    if not isinstance(value, dict):
        raise _Refused(400, "BadRequest", "An email address must be an object.", target)
    address = value.get("address")
    display_name = value.get("displayName")
    if not isinstance(address, str) or not _looks_like_address(address):
        raise _Refused(400, "BadRequest", "Invalid email address.", f"{target}.address")
    if display_name is not None and not isinstance(display_name, str):
        raise _Refused(400, "BadRequest", "displayName must be a string.", f"{target}.displayName")
    return EmailAddress(address, display_name)


def _looks_like_address(address: str) -> bool:
    # Deliberately loose (the service's own rules are not published), but strict where it
    # matters: one '@', both sides non-empty, and no whitespace or control characters, so an
    # address cannot smuggle extra header lines.
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain or "@" in domain:
        return False
    return not any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in address)


def _address_list(value: Any, target: str) -> tuple[EmailAddress, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _Refused(400, "BadRequest", f"{target} must be an array.", target)
    return tuple(_address(entry, f"{target}[{index}]") for index, entry in enumerate(value))


def _optional_string(container: Mapping[str, Any], key: str, target: str) -> str | None:
    value = container.get(key)
    if value is not None and not isinstance(value, str):
        raise _Refused(400, "BadRequest", f"{target} must be a string.", target)
    return value


def _parse_message(
    body: bytes, content_type: str
) -> tuple[dict[str, Any], tuple[EmailAddress, ...], tuple[EmailAddress, ...], tuple[EmailAddress, ...]]:
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise _Refused(415, "UnsupportedMediaType", "Content-Type must be application/json.")
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise _Refused(400, "BadRequest", "The request body is not valid JSON.") from error
    if not isinstance(message, dict):
        raise _Refused(400, "BadRequest", "The request body must be a JSON object.")
    sender = message.get("senderAddress")
    if not isinstance(sender, str) or not _looks_like_address(sender):
        raise _Refused(400, "BadRequest", "senderAddress must be an email address.", "senderAddress")
    recipients = message.get("recipients")
    if not isinstance(recipients, dict):
        raise _Refused(400, "BadRequest", "recipients is required.", "recipients")
    to = _address_list(recipients.get("to"), "recipients.to")
    if not to:
        raise _Refused(400, "BadRequest", "recipients.to needs at least one address.", "recipients.to")
    cc = _address_list(recipients.get("cc"), "recipients.cc")
    bcc = _address_list(recipients.get("bcc"), "recipients.bcc")
    if len(to) + len(cc) + len(bcc) > MAX_RECIPIENTS:
        raise _Refused(400, "BadRequest", f"At most {MAX_RECIPIENTS} recipients per email.", "recipients")
    content = message.get("content")
    if not isinstance(content, dict):
        raise _Refused(400, "BadRequest", "content is required.", "content")
    subject = content.get("subject")
    if not isinstance(subject, str) or not subject:
        raise _Refused(400, "BadRequest", "content.subject is required.", "content.subject")
    html = _optional_string(content, "html", "content.html")
    plain_text = _optional_string(content, "plainText", "content.plainText")
    if not html and not plain_text:
        raise _Refused(400, "BadRequest", "content needs html or plainText.", "content")
    return message, to, cc, bcc


def _headers_of(message: Mapping[str, Any]) -> dict[str, str]:
    headers = message.get("headers")
    if headers is None:
        return {}
    if not isinstance(headers, dict) or not all(
        isinstance(name, str) and isinstance(value, str) for name, value in headers.items()
    ):
        raise _Refused(400, "BadRequest", "headers must map strings to strings.", "headers")
    return dict(headers)


def _attachments_of(message: Mapping[str, Any]) -> tuple[EmailAttachment, ...]:
    attachments = message.get("attachments")
    if attachments is None:
        return ()
    if not isinstance(attachments, list):
        raise _Refused(400, "BadRequest", "attachments must be an array.", "attachments")
    parsed: list[EmailAttachment] = []
    for index, attachment in enumerate(attachments):
        target = f"attachments[{index}]"
        if not isinstance(attachment, dict):
            raise _Refused(400, "BadRequest", "An attachment must be an object.", target)
        name, content_type = attachment.get("name"), attachment.get("contentType")
        encoded, content_id = attachment.get("contentInBase64"), attachment.get("contentId")
        if not isinstance(name, str) or not name or not isinstance(content_type, str) or not content_type:
            raise _Refused(400, "BadRequest", "An attachment needs name and contentType.", target)
        if content_id is not None and not isinstance(content_id, str):
            raise _Refused(400, "BadRequest", "contentId must be a string.", f"{target}.contentId")
        if not isinstance(encoded, str):
            raise _Refused(400, "BadRequest", "contentInBase64 is required.", f"{target}.contentInBase64")
        try:
            content = base64.b64decode(encoded, validate=True)
        except binascii.Error as error:
            raise _Refused(400, "BadRequest", "contentInBase64 is not base64.", f"{target}.contentInBase64") from error
        parsed.append(EmailAttachment(name, content_type, content, content_id))
    return tuple(parsed)


def _tracking_flag(message: Mapping[str, Any]) -> bool | None:
    value = message.get("userEngagementTrackingDisabled")
    if value is not None and not isinstance(value, bool):
        raise _Refused(400, "BadRequest", "userEngagementTrackingDisabled must be a boolean.")
    return value


def _canonical_operation_id(value: str) -> str | None:
    """The lookup key for an operation id (GUIDs compare case-insensitively), or None."""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return None


# -- HTTP server ------------------------------------------------------------------------------

# The longest a hung send holds its connection when nobody lets go (a test that forgot to).
HANG_LIMIT_SECONDS = 120.0


class _Server(LoopbackServer):
    def __init__(self, fake: AcsEmailFake, tls: ssl.SSLContext) -> None:
        self.fake = fake
        super().__init__(tls, _Handler)


class _Handler(LoopbackHandler):
    server: _Server

    def _dispatch(self) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        parts = urlsplit(self.path)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            # The body hash covers the exact bytes; the SDK always sends a Content-Length.
            reply = _error(411, "LengthRequired", "Content-Length is required.", refused="chunked body")
            self.close_connection = True
        else:
            try:
                length = int(headers.get("content-length") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > MAX_REQUEST_BYTES:
                reply = _error(413, "RequestEntityTooLarge", "The request is too large.", refused="body size")
                self.close_connection = True  # the unread body would corrupt the next request
            else:
                body = self.rfile.read(length) if length else b""
                reply = self.server.fake._handle(self.command, self.path, headers, body)
        self.server.fake._record(
            AcsRequest(
                self.command, parts.path, parts.query, reply.status, reply.operation_id, reply.refused, time.monotonic()
            )
        )
        if reply.hang:
            # Past any client's read timeout: held until the fake is told to let go, then dropped.
            self.server.fake._released.wait(HANG_LIMIT_SECONDS)
            self.close_connection = True
            return
        self._send(reply, headers.get("x-ms-client-request-id"))

    def _send(self, reply: _Reply, client_request_id: str | None) -> None:
        payload = b"" if reply.body is None else json.dumps(reply.body, ensure_ascii=False).encode("utf-8")
        self.send_response(reply.status)
        headers = dict(reply.headers)
        if payload:
            headers["Content-Type"] = "application/json; charset=utf-8"
        if client_request_id is not None:
            # The SDK asks for it (x-ms-return-client-request-id: true) to correlate its logs.
            headers["x-ms-client-request-id"] = client_request_id
        headers["x-ms-request-id"] = str(uuid.uuid4())
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class AcsEmailFake(LoopbackFake):
    """Azure Communication Services Email on `https://127.0.0.1:<port>/`, for the real SDK.

    Usage (`connection_verify` is azure-core's name for the CA bundle to trust)::

        with AcsEmailFake() as fake:
            client = EmailClient.from_connection_string(
                fake.connection_string, connection_verify=str(fake.ca_bundle), polling_interval=0
            )
            client.begin_send(message).result()

    `running_polls` status polls answer `Running` before an operation turns terminal;
    `poll_retry_after`, when set, is the Retry-After (seconds) sent with non-terminal statuses,
    as the service does (left unset, the SDK waits its own `polling_interval`).
    """

    def __init__(
        self,
        *,
        running_polls: int = 0,
        poll_retry_after: int | None = None,
        max_clock_skew: timedelta = DEFAULT_MAX_CLOCK_SKEW,
        clock: Callable[[], float] = time.monotonic,
        lookup_lag: float = 0.0,
        forget_after: float | None = None,
    ) -> None:
        if running_polls < 0:
            raise ValueError("running_polls cannot be negative")
        self.running_polls = running_polls
        self.poll_retry_after = poll_retry_after
        self.max_clock_skew = max_clock_skew
        # Seconds on `clock` during which a lookup answers 404 for an operation just accepted,
        # and after which it answers 404 again for good (None: never forgotten).
        self.clock = clock
        self.lookup_lag = lookup_lag
        self.forget_after = forget_after
        super().__init__("acs-email-fake")
        # ACS access keys are 64 random bytes, base64-encoded; a fresh one per fake means a
        # client configured for another fake (or a stale key) is refused.
        self.access_key = base64.b64encode(secrets.token_bytes(64)).decode("ascii")
        self._lock = threading.Lock()
        self._sent: list[SentEmail] = []
        self._operations: dict[str, _Operation] = {}
        self._requests: list[AcsRequest] = []
        self._faults: list[_Fault] = []
        self._outcomes: list[tuple[str, str]] = []

    def _make_server(self, tls: ssl.SSLContext) -> LoopbackServer:
        return _Server(self, tls)

    # -- what clients need -------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return self.base_url + "/"

    @property
    def connection_string(self) -> str:
        return f"endpoint={self.endpoint};accesskey={self.access_key}"

    # -- state for tests ---------------------------------------------------------------------

    @property
    def sent(self) -> list[SentEmail]:
        with self._lock:
            return list(self._sent)

    @property
    def operations(self) -> dict[str, OperationStatus]:
        """Operation id (as the client supplied it, or as generated) → current status."""
        with self._lock:
            return {operation.id: operation.status for operation in self._operations.values()}

    @property
    def requests(self) -> list[AcsRequest]:
        with self._lock:
            return list(self._requests)

    def fail_next(
        self,
        status: int,
        times: int = 1,
        retry_after: int | None = None,
        *,
        target: FaultTarget = "send",
        after_accept: bool = False,
    ) -> None:
        """Answer the next `times` authenticated `target` requests ("send" or "status") with
        `status` and an ACS error body, plus `Retry-After: retry_after` when given.

        With `after_accept=True` (sends only) the email is recorded and its operation created
        *before* the error goes out: the service took the message but the client saw a failure,
        the case that makes a blind retry send twice.
        """
        if status < 400 or times < 1:
            raise ValueError("fail_next needs an error status (>= 400) and times >= 1")
        if after_accept and target != "send":
            raise ValueError("after_accept applies to sends only")
        with self._lock:
            self._faults.append(_Fault(status, times, retry_after, target, after_accept))

    def hang_next(self, times: int = 1, *, after_accept: bool = True) -> None:
        """Hold the next `times` well-formed sends open without answering, past the client's
        read timeout; with `after_accept` (the default) the email is taken first, as a service
        that accepted the message and then stalled: the client cannot tell it went through."""
        if times < 1:
            raise ValueError("hang_next needs times >= 1")
        with self._lock:
            self._faults.append(_Fault(0, times, None, "send", after_accept, hang=True))

    def fail_next_operation(
        self, code: str = "EmailDropped", message: str = "Email was dropped after several attempts to deliver."
    ) -> None:
        """The next accepted send ends `Failed` with this error, instead of `Succeeded`."""
        with self._lock:
            self._outcomes.append((code, message))

    # -- request handling (server threads) ---------------------------------------------------

    def _record(self, request: AcsRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _take_fault(self, target: FaultTarget) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.target == target and fault.times > 0:
                    fault.times -= 1
                    self._faults = [pending for pending in self._faults if pending.times > 0]
                    return fault
        return None

    def _handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> _Reply:
        refusal = hmac_refusal(
            self.access_key, method, target, headers, body, now=datetime.now(UTC), max_clock_skew=self.max_clock_skew
        )
        if refusal is not None:
            return _error(401, _DENIED["code"], _DENIED["message"], refused=refusal)
        parts = urlsplit(target)
        query = parse_qs(parts.query, keep_blank_values=True)
        operation = _OPERATION_RE.match(parts.path)
        if parts.path == _SEND_PATH and method == "POST":
            route: FaultTarget = "send"
        elif operation and method == "GET":
            route = "status"
        else:
            return _error(404, "NotFound", "Resource not found.", refused="no such route")
        api_version = query.get("api-version", [""])[-1]
        if api_version not in API_VERSIONS:
            return _error(
                400, "UnsupportedApiVersion", "The api-version is missing or not supported.", refused="api-version"
            )
        try:
            if route == "send":
                return self._send(headers, body, api_version)
            assert operation is not None
            return self._status(unquote(operation["id"]))
        except _Refused as refused:
            return refused.reply()

    def _fault_reply(self, fault: _Fault, operation_id: str | None) -> _Reply:
        if fault.hang:
            return _Reply(0, None, operation_id=operation_id, refused="injected fault", hang=True)
        code = {429: "TooManyRequests"}.get(fault.status) or HTTPStatus(fault.status).phrase.replace(" ", "")
        headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
        reply = _error(fault.status, code, "Injected failure.", refused="injected fault", headers=headers)
        reply.operation_id = operation_id
        return reply

    def _send(self, headers: Mapping[str, str], body: bytes, api_version: str) -> _Reply:
        supplied = headers.get("operation-id")
        if supplied is not None and _canonical_operation_id(supplied) is None:
            # The REST reference declares Operation-Id as a uuid: being strict here keeps the
            # caller from depending on free-form ids the service may refuse.
            raise _Refused(400, "BadRequest", "Operation-Id must be a GUID.", "Operation-Id")
        message, to, cc, bcc = _parse_message(body, headers.get("content-type", ""))
        subject = message["content"]["subject"]
        html = message["content"].get("html")
        plain_text = message["content"].get("plainText")
        email_headers = _headers_of(message)
        attachments = _attachments_of(message)
        tracking = _tracking_flag(message)
        reply_to = _address_list(message.get("replyTo"), "replyTo")
        # Faults are taken only for well-formed sends, so a pending fault is not used up by a
        # request the service would have refused anyway.
        fault = self._take_fault("send")
        if fault is not None and not fault.after_accept:
            return self._fault_reply(fault, supplied)
        now = self.clock()
        operation_id = supplied if supplied is not None else str(uuid.uuid4())
        key = _canonical_operation_id(operation_id)
        assert key is not None
        with self._lock:
            outcome = self._outcomes.pop(0) if self._outcomes else None
            # No de-duplication, as in ACS: a repeated Operation-Id sends another email and
            # restarts the operation under the same id.
            operation = _Operation(operation_id, "Running", self.running_polls, outcome, now)
            self._operations[key] = operation
            self._sent.append(
                SentEmail(
                    operation_id=operation_id,
                    operation_id_from_client=supplied is not None,
                    sender=message["senderAddress"],
                    to=to,
                    cc=cc,
                    bcc=bcc,
                    reply_to=reply_to,
                    subject=subject,
                    html=html,
                    plain_text=plain_text,
                    headers=email_headers,
                    attachments=attachments,
                    user_engagement_tracking_disabled=tracking,
                    client_request_id=headers.get("x-ms-client-request-id"),
                    body=message,
                )
            )
            result = operation.result()
        if fault is not None:
            return self._fault_reply(fault, operation_id)
        reply_headers = {
            "Operation-Location": (
                f"{self.endpoint}emails/operations/{quote(operation_id, safe='')}?api-version={api_version}"
            ),
            "operation-id": operation_id,
        }
        if self.poll_retry_after is not None:
            reply_headers["Retry-After"] = str(self.poll_retry_after)
        return _Reply(202, result, reply_headers, operation_id=operation_id)

    def _status(self, operation_id: str) -> _Reply:
        key = _canonical_operation_id(operation_id)
        fault = self._take_fault("status")
        if fault is not None:
            return self._fault_reply(fault, operation_id)
        now = self.clock()
        with self._lock:
            operation = self._operations.get(key) if key is not None else None
            if operation is not None and not self._visible(operation, now):
                operation = None  # accepted, and a lookup does not know it (yet, or any more)
            if operation is None:
                reply = _error(404, "NotFound", "Operation not found.", refused="unknown operation")
                reply.operation_id = operation_id
                return reply
            if operation.status == "Running":
                if operation.running_polls_left > 0:
                    operation.running_polls_left -= 1
                else:
                    operation.status = "Failed" if operation.outcome is not None else "Succeeded"
            result = operation.result()
            running = operation.status == "Running"
        headers = {"Retry-After": str(self.poll_retry_after)} if running and self.poll_retry_after is not None else {}
        return _Reply(200, result, headers, operation_id=operation.id)

    def _visible(self, operation: _Operation, now: float) -> bool:
        """Whether a lookup now finds the accepted `operation` (see `lookup_lag`, `forget_after`)."""
        if now < operation.accepted_at + self.lookup_lag:
            return False
        return self.forget_after is None or now < operation.accepted_at + self.forget_after

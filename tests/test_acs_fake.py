"""The ACS Email fake, driven by the real `azure.communication.email.EmailClient` over loopback
HTTPS: send and poll, status lookups, throttling and retries, HMAC refusals, no de-duplication on
Operation-Id, and hostile strings kept verbatim. A hand-written signer covers what the SDK
cannot be made to send (tampered bodies, stale dates, foreign schemes)."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.communication.email import EmailClient
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.core.rest import HttpRequest

from testbed.acs_fake import MAX_RECIPIENTS, AcsEmailFake, EmailAddress, EmailAttachment, content_hash, sign

API_VERSION = "2025-09-01"


def _message(**overrides: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "senderAddress": "DoNotReply@alerts.example.com",
        "recipients": {"to": [{"address": "admin@contoso.example", "displayName": "Contoso Admin"}]},
        "content": {"subject": "PartnerGuard digest", "plainText": "2 new findings", "html": "<p>2 new findings</p>"},
    }
    message.update(overrides)
    return message


@pytest.fixture
def fake() -> Iterator[AcsEmailFake]:
    with AcsEmailFake() as running:
        yield running


def _client(fake: AcsEmailFake, **kwargs: Any) -> EmailClient:
    # polling_interval=0: without a Retry-After the SDK would wait 30 s between polls.
    kwargs.setdefault("polling_interval", 0)
    return EmailClient.from_connection_string(fake.connection_string, connection_verify=str(fake.ca_bundle), **kwargs)


@pytest.fixture
def client(fake: AcsEmailFake) -> Iterator[EmailClient]:
    with _client(fake) as email_client:
        yield email_client


# -- a signer independent of the SDK, for requests the SDK will not send ---------------------


def _raw_request(
    fake: AcsEmailFake,
    method: str,
    target: str,
    body: bytes = b"",
    *,
    key: str | None = None,
    signed_target: str | None = None,
    signed_body: bytes | None = None,
    date: datetime | None = None,
    extra_headers: dict[str, str] | None = None,
    authorization: str | None = None,
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Send one HMAC-signed request with http.client; the signed target/body/date can differ
    from what is sent, to forge the mismatches a real client could produce."""
    host = urlsplit(fake.endpoint).netloc
    when = format_datetime(date or datetime.now(UTC), usegmt=True)
    hashed = content_hash(body if signed_body is None else signed_body)
    string_to_sign = f"{method}\n{signed_target or target}\n{when};{host};{hashed}"
    signature = sign(key or fake.access_key, string_to_sign)
    headers = {
        "x-ms-date": when,
        "x-ms-content-sha256": hashed,
        "Authorization": authorization
        or f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}",
        "Content-Type": "application/json",
        **(extra_headers or {}),
    }
    context = ssl.create_default_context(cafile=str(fake.ca_bundle))
    connection = http.client.HTTPSConnection("127.0.0.1", urlsplit(fake.endpoint).port, context=context, timeout=10)
    try:
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        payload = response.read()
        return (
            response.status,
            json.loads(payload) if payload else {},
            {name.lower(): value for name, value in response.getheaders()},
        )
    finally:
        connection.close()


def _send_target() -> str:
    return f"/emails:send?api-version={API_VERSION}"


# -- lifecycle and configuration --------------------------------------------------------------


def test_endpoint_key_and_connection_string() -> None:
    first, second = AcsEmailFake(), AcsEmailFake()
    with pytest.raises(RuntimeError):
        _ = first.endpoint
    with first, second:
        assert first.endpoint.startswith("https://127.0.0.1:") and first.endpoint.endswith("/")
        assert first.endpoint != second.endpoint
        assert len(base64.b64decode(first.access_key, validate=True)) == 64
        assert first.access_key != second.access_key
        assert first.connection_string == f"endpoint={first.endpoint};accesskey={first.access_key}"
        assert first.ca_bundle.read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_stop_closes_the_port_and_joins_threads() -> None:
    before = {thread.name for thread in threading.enumerate()}
    fake = AcsEmailFake().start()
    port = urlsplit(fake.endpoint).port
    assert port is not None
    with _client(fake) as email_client:
        email_client.begin_send(_message()).result()
        fake.stop()  # while the client still holds a keep-alive connection
    assert not fake.ca_bundle.exists()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    leftover = {thread.name for thread in threading.enumerate()} - before
    assert not any(name.startswith("acs-email-fake") for name in leftover)


def test_fail_next_rejects_nonsense() -> None:
    fake = AcsEmailFake()
    with pytest.raises(ValueError):
        fake.fail_next(200)
    with pytest.raises(ValueError):
        fake.fail_next(429, times=0)
    with pytest.raises(ValueError):
        fake.fail_next(500, target="status", after_accept=True)
    with pytest.raises(ValueError):
        AcsEmailFake(running_polls=-1)


# -- sending and polling ----------------------------------------------------------------------


def test_send_polls_to_succeeded_and_records_the_message(fake: AcsEmailFake, client: EmailClient) -> None:
    message = _message(
        recipients={
            "to": [{"address": "admin@contoso.example", "displayName": "Contoso Admin"}],
            "cc": [{"address": "sec@contoso.example"}],
            "bcc": [{"address": "audit@partner.example"}],
        },
        replyTo=[{"address": "support@partner.example"}],
        headers={"X-PartnerGuard-Digest": "2024-06-01T06:00Z"},
        attachments=[
            {"name": "report.csv", "contentType": "text/csv", "contentInBase64": base64.b64encode(b"a,b\n").decode()}
        ],
        userEngagementTrackingDisabled=True,
    )
    result = client.begin_send(message).result()

    assert result["status"] == "Succeeded"
    [sent] = fake.sent
    assert result["id"] == sent.operation_id
    assert not sent.operation_id_from_client  # the fake generated it, as ACS does
    assert uuid.UUID(sent.operation_id)
    assert sent.sender == "DoNotReply@alerts.example.com"
    assert sent.to == (EmailAddress("admin@contoso.example", "Contoso Admin"),)
    assert sent.recipients == ("admin@contoso.example", "sec@contoso.example", "audit@partner.example")
    assert sent.reply_to == (EmailAddress("support@partner.example"),)
    assert (sent.subject, sent.plain_text, sent.html) == (
        "PartnerGuard digest",
        "2 new findings",
        "<p>2 new findings</p>",
    )
    assert sent.headers == {"X-PartnerGuard-Digest": "2024-06-01T06:00Z"}
    assert sent.attachments == (EmailAttachment("report.csv", "text/csv", b"a,b\n"),)
    assert sent.user_engagement_tracking_disabled is True
    assert sent.client_request_id  # the SDK's x-ms-client-request-id, for correlating logs
    assert sent.body == message
    assert fake.operations == {sent.operation_id: "Succeeded"}
    assert [(r.method, r.path, r.status) for r in fake.requests] == [
        ("POST", "/emails:send", 202),
        ("GET", f"/emails/operations/{sent.operation_id}", 200),
    ]


def test_operation_is_running_until_polled(fake: AcsEmailFake, client: EmailClient) -> None:
    operation_id = str(uuid.uuid4())
    initial = client.begin_send(_message(), operation_id=operation_id, polling=False).result()

    assert initial == {"id": operation_id, "status": "Running"}
    assert fake.operations == {operation_id: "Running"}
    assert [sent.operation_id for sent in fake.sent] == [operation_id]
    assert fake.sent[0].operation_id_from_client

    response = client.send_request(HttpRequest("GET", f"/emails/operations/{operation_id}?api-version={API_VERSION}"))
    assert response.status_code == 200
    assert response.json() == {"id": operation_id, "status": "Succeeded"}
    assert fake.operations == {operation_id: "Succeeded"}


def test_send_answers_202_with_operation_headers(fake: AcsEmailFake) -> None:
    operation_id = str(uuid.uuid4())
    body = json.dumps(_message()).encode()
    status, payload, headers = _raw_request(
        fake, "POST", _send_target(), body, extra_headers={"Operation-Id": operation_id}
    )

    assert status == 202
    assert payload == {"id": operation_id, "status": "Running"}
    assert headers["operation-id"] == operation_id
    assert headers["operation-location"] == (
        f"{fake.endpoint}emails/operations/{operation_id}?api-version={API_VERSION}"
    )
    assert "retry-after" not in headers  # poll_retry_after unset


def test_poller_honours_retry_after_on_running_status() -> None:
    with AcsEmailFake(running_polls=1, poll_retry_after=1) as fake, _client(fake) as client:
        result = client.begin_send(_message()).result()

        assert result["status"] == "Succeeded"
        polls = [request for request in fake.requests if request.method == "GET"]
        assert len(polls) == 2  # Running (with Retry-After: 1), then Succeeded
        # polling_interval is 0, so a one-second gap can only come from Retry-After.
        assert polls[1].at - polls[0].at >= 0.95


def test_failed_operation_surfaces_as_an_error(fake: AcsEmailFake, client: EmailClient) -> None:
    fake.fail_next_operation("EmailDropped", "Email was dropped.")
    with pytest.raises(HttpResponseError):
        client.begin_send(_message()).result()

    [sent] = fake.sent
    assert fake.operations == {sent.operation_id: "Failed"}
    response = client.send_request(
        HttpRequest("GET", f"/emails/operations/{sent.operation_id}?api-version={API_VERSION}")
    )
    assert response.json() == {
        "id": sent.operation_id,
        "status": "Failed",
        "error": {"code": "EmailDropped", "message": "Email was dropped."},
    }
    # Only the next operation fails.
    assert client.begin_send(_message()).result()["status"] == "Succeeded"


# -- status lookups through send_request ------------------------------------------------------


def test_lookup_known_and_unknown_operations(fake: AcsEmailFake, client: EmailClient) -> None:
    operation_id = str(uuid.uuid4())
    client.begin_send(_message(), operation_id=operation_id).result()

    relative = client.send_request(HttpRequest("GET", f"/emails/operations/{operation_id}?api-version={API_VERSION}"))
    absolute = client.send_request(
        HttpRequest("GET", f"{fake.endpoint}emails/operations/{operation_id}?api-version={API_VERSION}")
    )
    upper = client.send_request(
        HttpRequest("GET", f"/emails/operations/{operation_id.upper()}?api-version={API_VERSION}")
    )
    for response in (relative, absolute, upper):
        assert response.status_code == 200
        assert response.json() == {"id": operation_id, "status": "Succeeded"}

    for unknown in (str(uuid.uuid4()), "not-a-guid"):
        missing = client.send_request(HttpRequest("GET", f"/emails/operations/{unknown}?api-version={API_VERSION}"))
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "NotFound"
        assert missing.headers["x-ms-error-code"] == "NotFound"
        with pytest.raises(HttpResponseError):
            missing.raise_for_status()


def test_lookup_needs_a_supported_api_version(client: EmailClient) -> None:
    operation_id = str(uuid.uuid4())
    client.begin_send(_message(), operation_id=operation_id).result()

    for query in ("", "?api-version=1999-01-01"):
        response = client.send_request(HttpRequest("GET", f"/emails/operations/{operation_id}{query}"))
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "UnsupportedApiVersion"


def test_unknown_routes_are_404(client: EmailClient) -> None:
    for method, path in (("GET", "/emails:send"), ("POST", "/emails/operations/x"), ("GET", "/")):
        response = client.send_request(HttpRequest(method, f"{path}?api-version={API_VERSION}"))
        assert response.status_code == 404, (method, path)


# -- throttling, server errors and retries ----------------------------------------------------


def test_429_with_retry_after_is_retried_after_the_delay(fake: AcsEmailFake, client: EmailClient) -> None:
    fake.fail_next(429, retry_after=1)
    result = client.begin_send(_message()).result()

    assert result["status"] == "Succeeded"
    posts = [request for request in fake.requests if request.method == "POST"]
    assert [post.status for post in posts] == [429, 202]
    assert posts[1].at - posts[0].at >= 0.95  # the SDK waited the Retry-After second
    assert len(fake.sent) == 1  # the throttled attempt sent nothing


def test_429_without_retry_after_is_not_retried_for_a_send(fake: AcsEmailFake, client: EmailClient) -> None:
    # azure-core retries POST only on 500/503/504, or on any error carrying Retry-After.
    fake.fail_next(429)
    with pytest.raises(HttpResponseError) as raised:
        client.begin_send(_message())

    assert raised.value.status_code == 429
    assert raised.value.error is not None and raised.value.error.code == "TooManyRequests"
    assert [request.status for request in fake.requests] == [429]
    assert fake.sent == []


def test_500_before_accepting_is_retried_and_sends_once(fake: AcsEmailFake, client: EmailClient) -> None:
    fake.fail_next(500)
    client.begin_send(_message()).result()

    assert [request.status for request in fake.requests if request.method == "POST"] == [500, 202]
    assert len(fake.sent) == 1


def test_500_after_accepting_makes_the_sdk_retry_send_twice(fake: AcsEmailFake, client: EmailClient) -> None:
    # The service took the message, the client saw 500 and retried the POST with the same
    # Operation-Id: ACS does not de-duplicate, so the recipient gets two emails.
    operation_id = str(uuid.uuid4())
    fake.fail_next(500, after_accept=True)
    client.begin_send(_message(), operation_id=operation_id).result()

    assert [request.status for request in fake.requests if request.method == "POST"] == [500, 202]
    assert [sent.operation_id for sent in fake.sent] == [operation_id, operation_id]
    assert fake.operations == {operation_id: "Succeeded"}


def test_status_fault_is_retried_by_the_poller(fake: AcsEmailFake, client: EmailClient) -> None:
    fake.fail_next(503, target="status")
    assert client.begin_send(_message()).result()["status"] == "Succeeded"
    assert [request.status for request in fake.requests] == [202, 503, 200]


# -- no de-duplication ------------------------------------------------------------------------


def test_same_operation_id_twice_is_two_emails(fake: AcsEmailFake, client: EmailClient) -> None:
    operation_id = str(uuid.uuid4())
    first = client.begin_send(_message(), operation_id=operation_id).result()
    second = client.begin_send(_message(), operation_id=operation_id).result()

    assert first == second == {"id": operation_id, "status": "Succeeded"}
    assert [sent.operation_id for sent in fake.sent] == [operation_id, operation_id]
    assert fake.operations == {operation_id: "Succeeded"}


def test_operation_id_must_be_a_guid(fake: AcsEmailFake, client: EmailClient) -> None:
    with pytest.raises(HttpResponseError) as raised:
        client.begin_send(_message(), operation_id="digest-2024-06-01")
    assert raised.value.status_code == 400
    assert fake.sent == []


# -- authentication ---------------------------------------------------------------------------


def test_wrong_key_is_refused(fake: AcsEmailFake) -> None:
    wrong_key = base64.b64encode(b"\x00" * 64).decode()
    with (
        EmailClient(fake.endpoint, AzureKeyCredential(wrong_key), connection_verify=str(fake.ca_bundle)) as client,
        pytest.raises(ClientAuthenticationError) as raised,
    ):
        client.begin_send(_message())

    assert raised.value.status_code == 401
    assert raised.value.error is not None and raised.value.error.code == "Denied"
    assert fake.sent == [] and fake.operations == {}
    assert [(request.status, request.refused) for request in fake.requests] == [(401, "signature mismatch")]


def test_another_fakes_key_is_refused_for_lookups_too(fake: AcsEmailFake, client: EmailClient) -> None:
    operation_id = str(uuid.uuid4())
    client.begin_send(_message(), operation_id=operation_id).result()
    with AcsEmailFake() as other:
        foreign = EmailClient(
            fake.endpoint, AzureKeyCredential(other.access_key), connection_verify=str(fake.ca_bundle)
        )
        with foreign:
            response = foreign.send_request(
                HttpRequest("GET", f"/emails/operations/{operation_id}?api-version={API_VERSION}")
            )
    assert response.status_code == 401
    assert response.json() == {"error": {"code": "Denied", "message": "Denied by the resource provider."}}


def test_hand_signed_request_is_accepted(fake: AcsEmailFake) -> None:
    # Proves the test's own signer agrees with the fake, so the refusals below are meaningful.
    status, _, _ = _raw_request(fake, "POST", _send_target(), json.dumps(_message()).encode())
    assert status == 202
    assert len(fake.sent) == 1


@pytest.mark.parametrize(
    ("forgery", "reason"),
    [
        ({"signed_body": b"{}"}, "x-ms-content-sha256 does not match the body"),
        ({"signed_target": "/emails:send?api-version=2023-03-31"}, "signature mismatch"),
        ({"date": datetime.now(UTC) - timedelta(hours=1)}, "the signed date is outside the allowed clock skew"),
        ({"authorization": "Bearer eyJ0eXAiOiJKV1QifQ.e30."}, "Authorization is not HMAC-SHA256"),
        ({"authorization": "HMAC-SHA256 Signature=abc"}, "Authorization lacks SignedHeaders or Signature"),
        (
            {"authorization": "HMAC-SHA256 SignedHeaders=host;x-ms-content-sha256&Signature=abc"},
            "SignedHeaders must include a date, host and x-ms-content-sha256",
        ),
        (
            {
                "authorization": "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256;x-extra&Signature=abc",
            },
            "signed header(s) missing from the request: x-extra",
        ),
    ],
)
def test_forged_requests_are_refused(fake: AcsEmailFake, forgery: dict[str, Any], reason: str) -> None:
    status, payload, headers = _raw_request(fake, "POST", _send_target(), json.dumps(_message()).encode(), **forgery)

    assert status == 401
    assert payload == {"error": {"code": "Denied", "message": "Denied by the resource provider."}}
    assert headers["x-ms-error-code"] == "Denied"
    assert fake.requests[-1].refused == reason
    assert fake.sent == []


def test_body_changed_after_signing_is_refused(fake: AcsEmailFake) -> None:
    # The attacker also fixes up x-ms-content-sha256 for the new body; the signature, which
    # covers the hash, no longer matches.
    original = json.dumps(_message()).encode()
    tampered = json.dumps(_message(senderAddress="ceo@contoso.example")).encode()
    host = urlsplit(fake.endpoint).netloc
    now = datetime.now(UTC)
    when = format_datetime(now, usegmt=True)
    signature = sign(fake.access_key, f"POST\n{_send_target()}\n{when};{host};{content_hash(original)}")
    status, _, _ = _raw_request(
        fake,
        "POST",
        _send_target(),
        tampered,
        authorization=f"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}",
        date=now,
    )
    assert status == 401
    assert fake.requests[-1].refused == "signature mismatch"
    assert fake.sent == []


# -- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message",
    [
        pytest.param({k: v for k, v in _message().items() if k != "senderAddress"}, id="no-sender"),
        pytest.param(_message(senderAddress="not-an-address"), id="bad-sender"),
        pytest.param(_message(recipients={"to": []}), id="no-to"),
        pytest.param(_message(recipients={"cc": [{"address": "a@b.example"}]}), id="cc-only"),
        pytest.param(_message(recipients={"to": [{"displayName": "x"}]}), id="to-without-address"),
        pytest.param(
            _message(recipients={"to": [{"address": "a@b.example\r\nBcc: evil@x.example"}]}), id="address-injection"
        ),
        pytest.param(
            _message(recipients={"to": [{"address": f"u{i}@b.example"} for i in range(MAX_RECIPIENTS + 1)]}),
            id="too-many-recipients",
        ),
        pytest.param(_message(content={"plainText": "x"}), id="no-subject"),
        pytest.param(_message(content={"subject": "s"}), id="no-body"),
        pytest.param(_message(content={"subject": "s", "html": 5}), id="html-not-string"),
        pytest.param(_message(headers={"X-Count": 1}), id="header-not-string"),
        pytest.param(
            _message(attachments=[{"name": "a", "contentType": "text/plain", "contentInBase64": "%%%"}]),
            id="attachment-not-base64",
        ),
        pytest.param(_message(userEngagementTrackingDisabled="yes"), id="tracking-not-bool"),
    ],
)
def test_invalid_messages_are_refused(fake: AcsEmailFake, client: EmailClient, message: dict[str, Any]) -> None:
    with pytest.raises(HttpResponseError) as raised:
        client.begin_send(message)

    assert raised.value.status_code == 400
    assert raised.value.error is not None and raised.value.error.code == "BadRequest"
    assert fake.sent == [] and fake.operations == {}


def test_pending_fault_is_not_used_up_by_an_invalid_send(fake: AcsEmailFake, client: EmailClient) -> None:
    fake.fail_next(500)
    with pytest.raises(HttpResponseError):
        client.begin_send(_message(content={"subject": "s"}))
    client.begin_send(_message()).result()
    assert [request.status for request in fake.requests if request.method == "POST"] == [400, 500, 202]


def test_non_json_body_and_content_type_are_refused(fake: AcsEmailFake) -> None:
    status, payload, _ = _raw_request(fake, "POST", _send_target(), b"{not json")
    assert (status, payload["error"]["code"]) == (400, "BadRequest")
    status, _, _ = _raw_request(
        fake, "POST", _send_target(), json.dumps(_message()).encode(), extra_headers={"Content-Type": "text/plain"}
    )
    assert status == 415
    assert fake.sent == []


# -- hostile content --------------------------------------------------------------------------


def test_hostile_strings_are_recorded_verbatim(fake: AcsEmailFake, client: EmailClient) -> None:
    subject = "Alert\r\nBcc: attacker@evil.example\r\n\r\n<b>x</b> \u202egnp.exe \U0001f6a8 ' OR 1=1 --"
    html = '<script>alert("x")</script><img src=x onerror=alert(1)>{{ 7*7 }}\x00\ud7ff'
    plain = "line1\nline2\r\n\t%s %(x)s ${jndi:ldap://evil}"
    display = 'Admin "Root", <root@evil.example>\r\nX-Injected: 1'
    headers = {"X-Tenant": "Contoso\u0000\u2028Ltd", "X-Note": "é" * 3}
    message = _message(
        recipients={"to": [{"address": "admin@contoso.example", "displayName": display}]},
        content={"subject": subject, "html": html, "plainText": plain},
        headers=headers,
    )
    client.begin_send(message).result()

    [sent] = fake.sent
    assert sent.subject == subject
    assert sent.html == html
    assert sent.plain_text == plain
    assert sent.to == (EmailAddress("admin@contoso.example", display),)
    assert sent.headers == headers

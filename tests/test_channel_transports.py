"""The Teams and webhook transports against their local stand-ins, over real loopback HTTPS:
what each answer and each network failure becomes (notifiers/alert_transport.py), that nothing
is ever sent twice by the transport itself, that the webhook's signature holds, and that the
URLs and the secret never appear in an error, a repr or a log line."""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from notifiers.alert_transport import (
    Lookup,
    SendDenied,
    SendRejected,
    SendThrottled,
    SendUnavailable,
    TransportError,
)
from notifiers.teams_card import render_teams_message
from notifiers.teams_transport import TeamsTransport
from notifiers.webhook_payload import render_webhook_payload, serialize, signed_headers
from notifiers.webhook_transport import WebhookTransport
from testbed.teams_fake import TeamsWorkflowFake
from testbed.webhook_fake import SignedWebhookFake
from testbed.webhook_receiver import WebhookReceiverFake
from tests.channel_builders import OPERATION_ID, closed_port, content, digest, health, reminder

# Short enough that a hung receiver costs a test half a second.
SHORT_READ = 0.5


class MovableClock:
    """Unix seconds a test moves; the webhook fake checks signatures against it."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@dataclass
class Channel:
    fake: WebhookReceiverFake
    make: Callable[..., TeamsTransport | WebhookTransport]
    secrets: tuple[str, ...]  # what must never be shown: the URL, its parts, the signing secret

    def transport(self, **options: object) -> TeamsTransport | WebhookTransport:
        return self.make(**options)

    def deliveries(self) -> int:
        if isinstance(self.fake, TeamsWorkflowFake):
            return len(self.fake.posts)
        assert isinstance(self.fake, SignedWebhookFake)
        return len(self.fake.deliveries)


@pytest.fixture
def webhook_clock() -> MovableClock:
    return MovableClock()


@pytest.fixture(params=["teams", "webhook"])
def channel(request: pytest.FixtureRequest, webhook_clock: MovableClock) -> Iterator[Channel]:
    if request.param == "teams":
        with TeamsWorkflowFake() as teams:
            url, ca = teams.url, str(teams.ca_bundle)

            def make_teams(**options: object) -> TeamsTransport:
                return TeamsTransport(str(options.pop("url", url)), verify=options.pop("verify", ca), **options)  # type: ignore[arg-type]

            yield Channel(teams, make_teams, (url, teams.signature, teams.workflow_id))
    else:
        with SignedWebhookFake(clock=webhook_clock) as hook:
            url, ca = hook.url, str(hook.ca_bundle)

            def make_hook(**options: object) -> WebhookTransport:
                secret = str(options.pop("secret", hook.secret))
                return WebhookTransport(
                    str(options.pop("url", url)),
                    secret,
                    verify=options.pop("verify", ca),  # type: ignore[arg-type]
                    clock=lambda: datetime.fromtimestamp(webhook_clock(), UTC),
                    **options,  # type: ignore[arg-type]
                )

            yield Channel(hook, make_hook, (url, hook.secret, hook.path))


def send(transport: TeamsTransport | WebhookTransport) -> str | None:
    return transport.send(OPERATION_ID, ["ignored@contoso.example"], content(digest(3)))


def failure(channel: Channel, expected: type[TransportError], **options: object) -> TransportError:
    transport = channel.transport(**options)
    try:
        with pytest.raises(expected) as raised:
            send(transport)
    finally:
        transport.close()
    error = raised.value
    shown = f"{error} {error!r} {transport!r} {transport.name}"
    for secret in channel.secrets:
        assert secret not in shown
    # httpx's exception (whose text may quote the URL) is not chained.
    assert error.__cause__ is None and (error.__context__ is None or error.__suppress_context__)
    return error


def test_a_send_is_accepted_once_and_names_the_channel_not_the_url(channel: Channel) -> None:
    transport = channel.transport()
    assert transport.lookup(OPERATION_ID) == Lookup("unknown")
    assert channel.fake.requests == []  # the lookup asked nobody
    assert (transport.confirms_operations, transport.max_alerts) == (False, 1)
    assert send(transport) == transport.name
    assert transport.name in ("teams", "webhook") and repr(transport) in ("TeamsTransport()", "WebhookTransport()")
    assert channel.deliveries() == 1 and [r.status for r in channel.fake.requests] == [202]
    transport.close()


def test_every_kind_of_alert_is_accepted_by_the_stand_in(channel: Channel) -> None:
    transport = channel.transport()
    for part in (digest(40, resolved=10), reminder(5), health()):
        transport.send(OPERATION_ID, [], content(part))
    assert channel.deliveries() == 3
    transport.close()


def test_the_teams_stand_in_gets_the_card_as_rendered() -> None:
    with TeamsWorkflowFake() as teams:
        transport = TeamsTransport(teams.url, verify=str(teams.ca_bundle))
        send(transport)
        (post,) = teams.posts
        assert post.card == render_teams_message(content(digest(3)))["attachments"][0]["content"]
        transport.close()


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [(7, 7.0), (None, None), ("http-date", 120.0)],
)
def test_429_is_throttled_with_the_receivers_retry_after(
    channel: Channel, retry_after: int | str | None, expected: float | None
) -> None:
    if retry_after == "http-date":
        retry_after = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    channel.fake.fail_next(429, retry_after=retry_after)
    error = failure(channel, SendThrottled)
    assert isinstance(error, SendThrottled)
    if expected is None:
        assert error.retry_after is None
    else:
        assert error.retry_after is not None and expected - 3 <= error.retry_after <= expected
    assert channel.deliveries() == 0


@pytest.mark.parametrize("status", [500, 502, 503, 408])
def test_5xx_and_408_are_unavailable_and_ambiguous(channel: Channel, status: int) -> None:
    channel.fake.fail_next(status)
    error = failure(channel, SendUnavailable)
    assert isinstance(error, SendUnavailable) and error.ambiguous
    assert channel.deliveries() == 0


def test_accept_then_500_is_ambiguous_and_a_retry_repeats_it(channel: Channel) -> None:
    """Why the webhook carries an idempotency key: the receiver took it, the sender saw a 500."""
    channel.fake.fail_next(500, after_accept=True)
    error = failure(channel, SendUnavailable)
    assert isinstance(error, SendUnavailable) and error.ambiguous
    assert channel.deliveries() == 1
    transport = channel.transport()
    send(transport)  # the alert worker's retry
    transport.close()
    assert channel.deliveries() == 2
    if isinstance(channel.fake, SignedWebhookFake):
        assert channel.fake.keys() == {OPERATION_ID: 2}
        assert [d.repeat for d in channel.fake.deliveries] == [False, True]


@pytest.mark.parametrize("after_accept", [True, False])
def test_a_hung_receiver_times_out_ambiguous(channel: Channel, after_accept: bool) -> None:
    channel.fake.hang_next(after_accept=after_accept)
    started = time.monotonic()
    error = failure(channel, SendUnavailable, read_timeout=SHORT_READ)
    assert time.monotonic() - started < 5
    assert isinstance(error, SendUnavailable) and error.ambiguous
    assert channel.deliveries() == int(after_accept)
    channel.fake.release_hangs()


@pytest.mark.parametrize("after_accept", [True, False])
def test_a_reset_after_the_request_left_is_ambiguous(channel: Channel, after_accept: bool) -> None:
    channel.fake.reset_next(after_accept=after_accept)
    error = failure(channel, SendUnavailable)
    assert isinstance(error, SendUnavailable) and error.ambiguous
    assert channel.deliveries() == int(after_accept)


def test_a_refused_connection_sent_nothing(channel: Channel) -> None:
    url = f"https://127.0.0.1:{closed_port()}/hooks/x?sig=never-shown-signature"
    error = failure(channel, SendUnavailable, url=url)
    assert isinstance(error, SendUnavailable) and not error.ambiguous
    assert "never-shown-signature" not in str(error)


def test_an_untrusted_certificate_sends_nothing(channel: Channel) -> None:
    """Without the stand-in's CA the TLS handshake fails: nothing left, not ambiguous."""
    error = failure(channel, SendUnavailable, verify=True)
    assert isinstance(error, SendUnavailable) and not error.ambiguous
    assert channel.fake.requests == []


@pytest.mark.parametrize("status", [401, 403])
def test_401_and_403_are_denied(channel: Channel, status: int) -> None:
    channel.fake.fail_next(status)
    assert not isinstance(failure(channel, SendDenied), SendThrottled)


@pytest.mark.parametrize("status", [400, 404, 410, 413])
def test_other_4xx_are_refused_for_good(channel: Channel, status: int) -> None:
    channel.fake.fail_next(status)
    error = failure(channel, SendRejected)
    assert not isinstance(error, SendDenied)


def test_a_deleted_workflow_is_refused_for_good_and_a_wrong_sig_denied() -> None:
    with TeamsWorkflowFake() as teams:
        gone = teams.url.replace(teams.workflow_id, "0" * 32)
        transport = TeamsTransport(gone, verify=str(teams.ca_bundle))
        with pytest.raises(SendRejected) as raised:
            send(transport)
        assert not isinstance(raised.value, SendDenied)
        wrong = TeamsTransport(teams.url.replace(teams.signature, "forged"), verify=str(teams.ca_bundle))
        with pytest.raises(SendDenied):
            send(wrong)
        assert [r.refused for r in teams.requests] == ["no such workflow", "wrong or missing sig"]
        assert teams.posts == []
        transport.close()
        wrong.close()


def test_the_teams_stand_in_refuses_an_invalid_card_and_a_message_over_28_kb() -> None:
    with (
        TeamsWorkflowFake() as teams,
        httpx.Client(verify=ssl.create_default_context(cafile=teams.ca_bundle)) as client,
    ):
        message = render_teams_message(content(digest(2)))
        message["attachments"][0]["content"]["body"][0]["colour"] = "red"  # not in the schema
        assert client.post(teams.url, json=message).status_code == 400
        message = render_teams_message(content(digest(2)))
        message["attachments"][0]["content"]["body"].append({"type": "TextBlock", "text": "x" * 29 * 1024})
        assert client.post(teams.url, json=message).status_code == 413
        message = {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.thumbnail"}]}
        assert client.post(teams.url, json=message).status_code == 400
        assert teams.posts == []
        assert client.post(teams.url, json=render_teams_message(content(digest(2)))).status_code == 202


# -- the webhook's signature -------------------------------------------------------------------


@pytest.fixture
def hook(webhook_clock: MovableClock) -> Iterator[tuple[SignedWebhookFake, httpx.Client]]:
    with (
        SignedWebhookFake(clock=webhook_clock) as fake,
        httpx.Client(verify=ssl.create_default_context(cafile=fake.ca_bundle)) as client,
    ):
        yield fake, client


def signed(fake: SignedWebhookFake, timestamp: int, body: bytes | None = None) -> tuple[bytes, dict[str, str]]:
    body = body if body is not None else serialize(render_webhook_payload(OPERATION_ID, content(digest())))
    return body, signed_headers(fake.secret, timestamp, body, operation_id=OPERATION_ID, kind="digest")


def test_the_webhook_signature_verifies_and_tampering_is_refused(
    hook: tuple[SignedWebhookFake, httpx.Client], webhook_clock: MovableClock
) -> None:
    fake, client = hook
    transport = WebhookTransport(
        fake.url, fake.secret, verify=str(fake.ca_bundle), clock=lambda: datetime.fromtimestamp(webhook_clock(), UTC)
    )
    send(transport)
    transport.close()
    (delivery,) = fake.deliveries
    assert delivery.idempotency_key == OPERATION_ID and delivery.signed_at == int(webhook_clock())

    now = int(webhook_clock())
    body, headers = signed(fake, now)
    tampered_body = body.replace(b'"User 0"', b'"User X"')
    assert tampered_body != body
    assert client.post(fake.url, content=tampered_body, headers=headers).status_code == 401
    forged = {**headers, "X-PartnerGuard-Signature": headers["X-PartnerGuard-Signature"][:-4] + "0000"}
    assert client.post(fake.url, content=body, headers=forged).status_code == 401
    later = {
        **headers,
        "X-PartnerGuard-Signature": headers["X-PartnerGuard-Signature"].replace(f"t={now}", f"t={now + 1}"),
    }
    assert client.post(fake.url, content=body, headers=later).status_code == 401
    missing = {name: value for name, value in headers.items() if name != "X-PartnerGuard-Signature"}
    assert client.post(fake.url, content=body, headers=missing).status_code == 401
    assert [r.refused for r in fake.requests[1:]] == [
        "signature mismatch",
        "signature mismatch",
        "signature mismatch",
        "signature missing or malformed",
    ]
    # The untouched call is taken (a repeat of the same key, which the receiver sees as one).
    assert client.post(fake.url, content=body, headers=headers).status_code == 202
    assert fake.keys() == {OPERATION_ID: 2}


def test_a_stale_or_replayed_call_is_refused(
    hook: tuple[SignedWebhookFake, httpx.Client], webhook_clock: MovableClock
) -> None:
    fake, client = hook
    body, headers = signed(fake, int(webhook_clock()))
    assert client.post(fake.url, content=body, headers=headers).status_code == 202
    webhook_clock.now += 301  # past the 5-minute tolerance
    assert client.post(fake.url, content=body, headers=headers).status_code == 401
    assert fake.requests[-1].refused == "signature timestamp outside the tolerance"
    # A sender whose clock is 6 minutes behind the receiver's is refused too, and told so as 401.
    behind = WebhookTransport(
        fake.url,
        fake.secret,
        verify=str(fake.ca_bundle),
        clock=lambda: datetime.fromtimestamp(webhook_clock() - 360, UTC),
    )
    with pytest.raises(SendDenied):
        send(behind)
    behind.close()
    # The transport signs when it sends: a call sent now is taken.
    current = WebhookTransport(
        fake.url, fake.secret, verify=str(fake.ca_bundle), clock=lambda: datetime.fromtimestamp(webhook_clock(), UTC)
    )
    send(current)
    current.close()
    assert len(fake.deliveries) == 2


def test_a_wrong_secret_is_denied(hook: tuple[SignedWebhookFake, httpx.Client]) -> None:
    fake, _ = hook
    transport = WebhookTransport(fake.url, "not-the-shared-secret", verify=str(fake.ca_bundle))
    with pytest.raises(SendDenied) as raised:
        send(transport)
    transport.close()
    assert fake.secret not in str(raised.value) and fake.url not in str(raised.value)
    assert fake.requests[-1].refused == "signature mismatch"


def test_a_body_that_fails_the_schema_is_refused(hook: tuple[SignedWebhookFake, httpx.Client]) -> None:
    fake, client = hook
    document = render_webhook_payload(OPERATION_ID, content(digest()))
    document["kind"] = "ticket"
    body = serialize(document)
    headers = signed_headers(fake.secret, int(time.time()), body, operation_id=OPERATION_ID, kind="digest")
    assert client.post(fake.url, content=body, headers=headers).status_code == 400
    body, headers = signed(fake, int(time.time()))
    headers["Idempotency-Key"] = "00000000-0000-5000-8000-000000000000"
    assert client.post(fake.url, content=body, headers=headers).status_code == 400
    assert fake.deliveries == []


# -- secrets -----------------------------------------------------------------------------------


def test_no_url_or_secret_in_any_log_line(channel: Channel, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    # The command line quiets httpx (partnerguard/logs.py); a CLI test earlier in this worker
    # leaves that level behind, and this test must see httpx's own request lines.
    caplog.set_level(logging.DEBUG, logger="httpx")
    transport = channel.transport(read_timeout=SHORT_READ)
    send(transport)
    faults: list[Callable[[], None]] = [
        lambda: channel.fake.fail_next(503),
        lambda: channel.fake.fail_next(429, retry_after=3),
        lambda: channel.fake.reset_next(),
        lambda: channel.fake.hang_next(),
    ]
    for arm in faults:
        arm()
        with pytest.raises(TransportError):
            send(transport)
    channel.fake.release_hangs()
    transport.close()
    logged = "\n".join(
        f"{record.name} {record.getMessage()} {record.exc_text or ''} {record.args!r}" for record in caplog.records
    )
    assert "HTTP Request: POST" in logged  # httpx logged every call, the URL hidden
    for secret in channel.secrets:
        assert secret not in logged
    assert f"<{transport.name} webhook URL>" in logged


def test_a_wrong_url_is_refused_without_quoting_it() -> None:
    for url in ["http://hooks.example/abc?sig=topsecret", "not a url sig=topsecret", "https://"]:
        with pytest.raises(ValueError) as raised:
            TeamsTransport(url)
        assert "topsecret" not in str(raised.value)
    with pytest.raises(ValueError, match="always verified"):
        TeamsTransport("https://hooks.example/x", verify=False)
    # No extra CA (combined_ca_file answers None): the public roots.
    TeamsTransport("https://hooks.example/x", verify=None).close()

"""The email transports the alert delivery relies on for exactly-once (notifiers/email_transport.py):

- `AcsTransport` on the real `EmailClient` against the ACS Email fake: the lookup tells whether
  ACS has an operation; a send is never retried by the SDK (ACS does not de-duplicate on
  Operation-Id); service answers map to throttled / rejected / unavailable;
- `EmlOutbox`: a file per operation, written once.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from notifiers.acs import AcsTransport
from notifiers.alert_transport import SendRejected, SendThrottled, SendUnavailable
from notifiers.digest_email import RenderedEmail
from notifiers.outbox import EmlOutbox
from notifiers.retry_after import retry_after_seconds
from partnerguard.alerts.delivery import operation_id_for
from partnerguard.storage.alert_outbox import OPERATION_ID_RE, AlertRecord
from testbed.acs_fake import AcsEmailFake

SENDER = "alerts@partnerguard.contoso.example"
RECIPIENTS = ("secops@contoso.example", "noc@contoso.example")
EMAIL = RenderedEmail(
    subject="PartnerGuard: 1 new finding in Northwind",
    html="<html><body><p>One user cannot do MFA.</p></body></html>",
    text="One user cannot do MFA.",
)


@pytest.fixture
def fake() -> Iterator[AcsEmailFake]:
    with AcsEmailFake() as acs:
        yield acs


def transport_for(fake: AcsEmailFake, connection_string: str | None = None) -> AcsTransport:
    return AcsTransport.from_connection_string(
        connection_string or fake.connection_string, SENDER, connection_verify=str(fake.ca_bundle)
    )


@pytest.fixture
def transport(fake: AcsEmailFake) -> Iterator[AcsTransport]:
    acs = transport_for(fake)
    yield acs
    acs.close()


def new_operation() -> str:
    return str(uuid.uuid4())


def posts(fake: AcsEmailFake) -> int:
    return sum(1 for request in fake.requests if request.method == "POST")


# -- lookup and send ---------------------------------------------------------------------------


def test_an_operation_acs_never_saw_is_unknown(fake: AcsEmailFake, transport: AcsTransport) -> None:
    assert transport.lookup(new_operation()).state == "unknown"
    assert fake.sent == []


def test_a_sent_operation_is_known_and_sent_as_given(fake: AcsEmailFake, transport: AcsTransport) -> None:
    operation_id = new_operation()

    assert transport.send(operation_id, RECIPIENTS, EMAIL) is None

    (sent,) = fake.sent
    assert sent.operation_id == operation_id and sent.operation_id_from_client
    assert sent.sender == SENDER and sent.recipients == RECIPIENTS
    assert (sent.subject, sent.html, sent.plain_text) == (EMAIL.subject, EMAIL.html, EMAIL.text)
    assert sent.headers == {"X-PartnerGuard-Operation-Id": operation_id}
    assert sent.user_engagement_tracking_disabled is True
    # Accepted is enough: the send did not poll the operation.
    assert [r.method for r in fake.requests] == ["POST"]
    assert transport.lookup(operation_id).state == "delivered"
    assert transport.lookup(operation_id.upper()).state == "delivered"  # GUIDs compare case-insensitively


def test_an_operation_still_running_is_accepted() -> None:
    with AcsEmailFake(running_polls=1) as fake:
        transport = transport_for(fake)
        operation_id = new_operation()
        transport.send(operation_id, RECIPIENTS, EMAIL)

        assert transport.lookup(operation_id).state == "accepted"
        assert transport.lookup(operation_id).state == "delivered"
        transport.close()


def test_an_operation_acs_failed_after_accepting_it_is_failed_with_its_reason(
    fake: AcsEmailFake, transport: AcsTransport
) -> None:
    fake.fail_next_operation("EmailDropped", "Email was dropped.")
    operation_id = new_operation()
    transport.send(operation_id, RECIPIENTS, EMAIL)

    found = transport.lookup(operation_id)

    assert found.state == "failed"
    assert found.error == "EmailDropped: Email was dropped."


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_failed_send_is_never_retried_by_the_sdk(fake: AcsEmailFake, transport: AcsTransport, status: int) -> None:
    fake.fail_next(status, times=1)

    with pytest.raises(SendUnavailable, match=str(status)):
        transport.send(new_operation(), RECIPIENTS, EMAIL)

    # azure-core retries these for any method by default; a retried send could be a second email.
    assert posts(fake) == 1 and fake.sent == []


def test_a_send_accepted_but_answered_500_is_unavailable_and_the_lookup_knows_it(
    fake: AcsEmailFake, transport: AcsTransport
) -> None:
    fake.fail_next(500, after_accept=True)
    operation_id = new_operation()

    with pytest.raises(SendUnavailable):
        transport.send(operation_id, RECIPIENTS, EMAIL)

    assert posts(fake) == 1 and len(fake.sent) == 1
    # What the worker asks before trying again: ACS has it, so it is not sent twice.
    assert transport.lookup(operation_id).state != "unknown"


def test_429_is_throttled_with_the_services_retry_after_and_not_retried(
    fake: AcsEmailFake, transport: AcsTransport
) -> None:
    fake.fail_next(429, times=1, retry_after=7)

    with pytest.raises(SendThrottled) as throttled:
        transport.send(new_operation(), RECIPIENTS, EMAIL)

    assert throttled.value.retry_after == 7.0
    assert posts(fake) == 1 and fake.sent == []


def test_429_without_retry_after_is_throttled_without_one(fake: AcsEmailFake, transport: AcsTransport) -> None:
    fake.fail_next(429, times=1)
    with pytest.raises(SendThrottled) as throttled:
        transport.send(new_operation(), RECIPIENTS, EMAIL)
    assert throttled.value.retry_after is None


@pytest.mark.parametrize("status", [400, 403, 413])
def test_a_refused_send_is_rejected(fake: AcsEmailFake, transport: AcsTransport, status: int) -> None:
    fake.fail_next(status, times=1)
    with pytest.raises(SendRejected, match=f"ACS answered {status}"):
        transport.send(new_operation(), RECIPIENTS, EMAIL)
    assert posts(fake) == 1


def test_a_wrong_access_key_is_rejected_and_the_key_is_not_in_the_error(fake: AcsEmailFake) -> None:
    wrong_key = "d3Jvbmcga2V5" * 8
    transport = transport_for(fake, f"endpoint={fake.endpoint};accesskey={wrong_key}")
    with pytest.raises(SendRejected) as rejected:
        transport.send(new_operation(), RECIPIENTS, EMAIL)
    assert wrong_key not in str(rejected.value) and fake.access_key not in str(rejected.value)
    assert "401" in str(rejected.value)
    transport.close()


@pytest.mark.parametrize("operation_id", ["run~x~y", "not-a-guid", "12345"])
def test_operation_ids_must_be_guids(fake: AcsEmailFake, transport: AcsTransport, operation_id: str) -> None:
    with pytest.raises(SendRejected, match="400"):
        transport.send(operation_id, RECIPIENTS, EMAIL)
    assert fake.sent == []


def test_the_delivery_makes_guid_operation_ids_from_the_alert_ids() -> None:
    partition = "r-" + "0" * 32
    alerts = [
        AlertRecord(partition, "run~b2b2b2b2-0000-4000-8000-000000000002~r1", "run", ("a@contoso.example",)),
        AlertRecord(partition, "health~poison~partnerguard-scans-poison~m1", "health", ("a@contoso.example",)),
    ]
    operation_id = operation_id_for(alerts)
    assert OPERATION_ID_RE.fullmatch(operation_id)
    assert uuid.UUID(operation_id).version == 5
    # The same alerts make the same operation, in any order; other alerts another one.
    assert operation_id_for(list(reversed(alerts))) == operation_id
    assert operation_id_for(alerts[:1]) != operation_id
    # Taken back out of an email (after a 429), the same alerts go out under a new id.
    later = [dataclasses.replace(alert, generation=1) for alert in alerts]
    assert operation_id_for(later) != operation_id
    # The same news to a webhook is another operation (its idempotency key is not the email's id).
    webhook = [dataclasses.replace(alert, partition="w-" + "0" * 32) for alert in alerts]
    assert operation_id_for(webhook) != operation_id
    with pytest.raises(ValueError, match="one destination"):
        operation_id_for([alerts[0], webhook[1]])


def test_a_lookup_refused_for_good_is_rejected(fake: AcsEmailFake, transport: AcsTransport) -> None:
    fake.fail_next(403, times=1, target="status")
    with pytest.raises(SendRejected, match="403"):
        transport.lookup(new_operation())


def test_a_lookup_may_be_retried_by_the_sdk(fake: AcsEmailFake, transport: AcsTransport) -> None:
    # Unlike a send, asking again is harmless: a transient failure is retried inside the client.
    fake.fail_next(503, times=1, target="status")
    assert transport.lookup(new_operation()).state == "unknown"
    assert [r.status for r in fake.requests] == [503, 404]


# -- Retry-After -------------------------------------------------------------------------------

NOW_EPOCH = datetime(2026, 1, 5, 12, 0, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"Retry-After": "0"}, 0.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"x-ms-retry-after-ms": "1500"}, 1.5),
        # The millisecond header is the more precise: it wins.
        ({"Retry-After": "9", "Retry-After-Ms": "2000"}, 2.0),
        # An HTTP date, 30 seconds from now; one in the past means now.
        ({"Retry-After": format_datetime(datetime(2026, 1, 5, 12, 0, 30, tzinfo=UTC), usegmt=True)}, 30.0),
        ({"Retry-After": "Mon, 05 Jan 2026 11:00:00 GMT"}, 0.0),
        ({"retry-after-ms": "-10"}, 0.0),
    ],
)
def test_retry_after_is_read_in_every_form(headers: dict[str, str], seconds: float) -> None:
    assert retry_after_seconds(headers, now_epoch=NOW_EPOCH) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Retry-After": ""},
        {"Retry-After": "soon"},
        {"Retry-After": "-5"},
        {"Retry-After": "1e3"},
        {"Retry-After": "Mon, 99 Foo 2026"},
        {"retry-after-ms": "fast"},
        {"retry-after-ms": "nan"},
        {"retry-after-ms": "inf"},
    ],
)
def test_a_retry_after_that_is_garbage_is_none(headers: dict[str, str]) -> None:
    assert retry_after_seconds(headers, now_epoch=NOW_EPOCH) is None


def test_retry_after_as_a_date_counts_from_the_current_time_by_default() -> None:
    soon = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    waited = retry_after_seconds({"Retry-After": soon})
    assert waited is not None and 3500 < waited <= 3600


# -- the outbox --------------------------------------------------------------------------------


def test_the_outbox_writes_an_operation_once(tmp_path: Path) -> None:
    outbox = EmlOutbox(tmp_path / "outbox", SENDER)
    operation_id = new_operation()
    assert outbox.lookup(operation_id).state == "unknown"

    written = outbox.send(operation_id, RECIPIENTS, EMAIL)

    assert written == str(tmp_path / "outbox" / f"{operation_id}.eml")
    first = Path(written).read_bytes()
    assert b"X-PartnerGuard-Operation-Id: " + operation_id.encode() in first
    assert outbox.lookup(operation_id).state == "delivered"

    # The same operation again, even with other content: the first file stays, nothing is added.
    other = RenderedEmail(subject="Another subject", html="<p>other</p>", text="other")
    assert outbox.send(operation_id, RECIPIENTS, other) == written
    assert Path(written).read_bytes() == first
    assert [p.name for p in (tmp_path / "outbox").iterdir()] == [f"{operation_id}.eml"]


def test_the_outbox_rejects_what_it_can_never_write(tmp_path: Path) -> None:
    outbox = EmlOutbox(tmp_path, SENDER)
    with pytest.raises(SendRejected):
        outbox.send("../escape", RECIPIENTS, EMAIL)
    with pytest.raises(SendRejected):
        outbox.send(new_operation(), ["not an address"], EMAIL)
    with pytest.raises(SendRejected):
        outbox.send(new_operation(), RECIPIENTS, RenderedEmail(subject="a\r\nBcc: x@evil.example", html="", text=""))
    assert list(tmp_path.iterdir()) == []


def test_an_outbox_it_cannot_write_to_is_unavailable(tmp_path: Path) -> None:
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a directory")
    outbox = EmlOutbox(in_the_way / "outbox", SENDER)
    with pytest.raises(SendUnavailable):
        outbox.send(new_operation(), RECIPIENTS, EMAIL)

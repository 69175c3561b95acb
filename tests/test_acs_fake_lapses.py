"""The ACS Email fake misbehaves as ACS has (issue 15): it accepts a send and never answers, and its
lookups do not know an accepted operation for a lag after accepting it, or any more after a while
(Azure/azure-sdk-for-python#35849; no retention is documented for operation status). Checked
through the real `EmailClient`, on a clock the test moves.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from notifiers.acs import AcsTransport
from notifiers.alert_transport import SendUnavailable
from notifiers.digest_email import RenderedEmail
from testbed.acs_fake import AcsEmailFake
from tests.delivery_harness import ManualClock

SENDER = "alerts@partnerguard.contoso.example"
EMAIL = RenderedEmail(subject="PartnerGuard: 1 new finding", html="<p>One</p>", text="One")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def fake(clock: ManualClock) -> Iterator[AcsEmailFake]:
    with AcsEmailFake(clock=clock.seconds) as acs:
        yield acs


def transport(fake: AcsEmailFake, **options: float) -> AcsTransport:
    return AcsTransport.from_connection_string(
        fake.connection_string, SENDER, connection_verify=str(fake.ca_bundle), **options
    )


def test_lookups_do_not_know_an_accepted_operation_for_the_lag(fake: AcsEmailFake, clock: ManualClock) -> None:
    fake.lookup_lag = 20
    acs = transport(fake)
    operation_id = str(uuid.uuid4())
    acs.send(operation_id, ["secops@contoso.example"], EMAIL)

    clock.advance(19)
    assert acs.lookup(operation_id).state == "unknown"  # accepted, and "never seen"
    clock.advance(1)
    assert acs.lookup(operation_id).state != "unknown"
    acs.close()


def test_lookups_forget_an_operation_after_a_while(fake: AcsEmailFake, clock: ManualClock) -> None:
    fake.forget_after = 3600
    acs = transport(fake)
    operation_id = str(uuid.uuid4())
    acs.send(operation_id, ["secops@contoso.example"], EMAIL)

    assert acs.lookup(operation_id).state != "unknown"
    clock.advance(3600)
    assert acs.lookup(operation_id).state == "unknown"
    assert len(fake.sent) == 1
    acs.close()


@pytest.mark.parametrize("after_accept", [True, False])
def test_a_hung_send_times_out_in_the_client_whether_or_not_it_was_taken(
    fake: AcsEmailFake, after_accept: bool
) -> None:
    acs = transport(fake, read_timeout=1.0)
    fake.hang_next(after_accept=after_accept)
    operation_id = str(uuid.uuid4())

    with pytest.raises(SendUnavailable) as unavailable:
        acs.send(operation_id, ["secops@contoso.example"], EMAIL)

    assert unavailable.value.ambiguous  # the request left: the client cannot tell
    fake.release_hangs()
    assert len(fake.sent) == (1 if after_accept else 0)
    assert (acs.lookup(operation_id).state != "unknown") is after_accept
    acs.close()


def test_a_send_that_never_reached_the_service_is_not_ambiguous(fake: AcsEmailFake) -> None:
    # Nothing listens on port 9 (discard): the connection is refused, nothing can have been taken.
    acs = AcsTransport.from_connection_string(
        f"endpoint=https://127.0.0.1:9/;accesskey={fake.access_key}", SENDER, connection_verify=str(fake.ca_bundle)
    )
    with pytest.raises(SendUnavailable) as unavailable:
        acs.send(str(uuid.uuid4()), ["secops@contoso.example"], EMAIL)
    assert not unavailable.value.ambiguous
    acs.close()

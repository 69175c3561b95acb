"""The alert path on real parts, for the alert tests: the tenant simulator (Graph), Azurite
(tables and queues), and the ACS Email fake behind the real `EmailClient`, all over loopback,
driven through the Functions entry points the host calls (timer, scan worker, alert worker).

`AlertsEnv.cycle()` is one schedule tick as it happens in Azure: the timer fans out, every scan
message is handed to the scan worker, every alert message to the alert worker; messages a
worker raised on are handed over again with a higher dequeue count (the host's retry).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from azure.functions.queue import QueueMessage as FunctionsQueueMessage
from azure.functions.timer import TimerRequest  # the concrete request the host builds

from partnerguard.queues.names import ALERT_QUEUE, SCAN_QUEUE
from testbed.acs_fake import AcsEmailFake, SentEmail
from testbed.loopback_https import combined_ca
from testbed.simulator import TenantSimulator
from tests.functions_index import FunctionsEnv, functions_env, user_function

SENDER = "alerts@partnerguard.contoso.example"
RECIPIENT = "secops@contoso.example"


def acs_environment(sim: TenantSimulator, acs: AcsEmailFake, directory: Path, *more_cas: Path) -> dict[str, str]:
    """`more_cas`: the CAs of other loopback fakes the app calls (the Teams and webhook stand-ins)."""
    cas = combined_ca(directory / "loopback-cas.pem", sim.ca_bundle, acs.ca_bundle, *more_cas)
    return {
        **sim.environment(),
        "PARTNERGUARD_CA_BUNDLE": str(cas),
        "ACS_CONNECTION_STRING": acs.connection_string,
        "EMAIL_SENDER": SENDER,
        "ALERT_RECIPIENTS": RECIPIENT,
        "PARTNERGUARD_PUBLIC_URL": "https://partnerguard.contoso.example",
        # The fake's lookups know an accepted operation at once unless a test scripts a lag, and
        # the services' clock moves only when a test moves it: a settle window would never pass.
        # The window is tested with a clock that moves (tests/test_alerts_ambiguous_sends.py,
        # tests/test_faults_acs_settle.py).
        "ALERT_SETTLE_SECONDS": "0",
    }


def host_message(message: Any, dequeue_count: int | None = None) -> FunctionsQueueMessage:
    """A message as the host hands it to a queue trigger (body base64-decoded)."""
    return FunctionsQueueMessage(  # type: ignore[no-untyped-call]
        id=message.id, body=message.content, dequeue_count=dequeue_count or message.dequeue_count or 1
    )


@dataclass
class AlertsEnv:
    functions: FunctionsEnv
    acs: AcsEmailFake
    # Exceptions the workers raised (the host would retry those messages).
    raised: list[BaseException] = field(default_factory=list)

    @property
    def services(self) -> Any:
        return self.functions.services

    def invoke(self, function_name: str, message: FunctionsQueueMessage) -> bool:
        """Call a queue trigger; False when it raised (recorded in `raised`)."""
        try:
            asyncio.run(user_function(function_name)(message))
            return True
        except Exception as error:
            self.raised.append(error)
            return False

    def drain(self, queue: str, function_name: str, max_attempts: int = 5, wait_deferred: float = 0.0) -> int:
        """Hand every visible message of `queue` to its worker, retrying raised ones like the host;
        with `wait_deferred`, also those a worker queued again with a delay, for that many seconds."""
        handled = 0
        deadline = time.monotonic() + wait_deferred
        while True:
            for message in self.functions.receive(queue):
                for attempt in range(1, max_attempts + 1):
                    handled += 1
                    if self.invoke(function_name, host_message(message, attempt)):
                        break
            waiting = self.functions.raw_queue(queue).get_queue_properties().approximate_message_count or 0
            if not waiting or time.monotonic() >= deadline:
                return handled
            time.sleep(0.5)

    def cycle(self, wait_deferred: float = 30.0) -> list[SentEmail]:
        """One schedule tick, six hours after the last; the emails ACS received during it
        (waiting up to `wait_deferred` seconds for alerts a worker deferred)."""
        before = len(self.acs.sent)
        self.functions.clock.advance(timedelta(hours=6))
        asyncio.run(user_function("scan_timer")(TimerRequest(past_due=False)))
        self.drain(SCAN_QUEUE, "scan_worker")
        self.drain(ALERT_QUEUE, "alert_worker", wait_deferred=wait_deferred)
        return self.acs.sent[before:]


def alerts_env(
    connection_string: str,
    prefix: str,
    sim: TenantSimulator,
    directory: Path,
    extra: Mapping[str, str] | None = None,
    extra_cas: Sequence[Path] = (),
) -> Iterator[AlertsEnv]:
    with AcsEmailFake() as acs:
        environment = {**acs_environment(sim, acs, directory, *extra_cas), **(extra or {})}
        for functions in functions_env(connection_string, prefix, environment):
            yield AlertsEnv(functions, acs)

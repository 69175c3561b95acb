"""The command line's synchronous delivery (`delivery.deliver_now`) and settle windows (issue 15,
What to build 1): `scan` waits out a window of up to four minutes, its budget, and otherwise
leaves the alert owed — never failed, never sent twice. On Azurite, with a clock the test moves.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from partnerguard.alerts.delivery import CLI_WAIT_BUDGET_SECONDS, AlertDelivery, Deferred, Delivery, deliver_now
from partnerguard.alerts.policy import AlertRef
from partnerguard.storage import ScanStore
from partnerguard.storage.alert_outbox import AlertStore
from testbed.azurite import AzuriteProcess
from tests.delivery_harness import ManualClock, ScriptedAcs, alert_stores, owe, settings_for

pytestmark = pytest.mark.azurite


@pytest.fixture
def stores(azurite: AzuriteProcess, table_prefix: str) -> Iterator[tuple[ScanStore, AlertStore]]:
    yield from alert_stores(azurite.connection_string, table_prefix)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.mark.parametrize(("settle", "delivered"), [(200, True), (300, False)])
def test_the_command_line_waits_out_a_settle_window_within_its_budget_and_otherwise_leaves_it_owed(
    stores: tuple[ScanStore, AlertStore], clock: ManualClock, settle: int, delivered: bool
) -> None:
    store, alerts = stores
    settings = settings_for(settle)
    (alert,) = owe(settings, alerts, 1, clock())
    acs = ScriptedAcs(sends=["refuse-500"])
    worker = AlertDelivery(settings, store, alerts, acs, clock)

    result = deliver_now(worker, AlertRef.of(alert), clock.sleep, lambda: 0.0)

    assert sum(clock.slept) <= CLI_WAIT_BUDGET_SECONDS
    stored = alerts.get(alert.partition, alert.alert_id)
    assert stored is not None
    if delivered:
        assert isinstance(result, Delivery) and result.action == "sent" and len(acs.emails) == 1
        assert sum(clock.slept) >= settle  # the window was waited out, not skipped
    else:
        # Owed still (the next scan, or the Functions app, sends it), neither failed nor sent twice.
        assert isinstance(result, Deferred) and "ALERT_SETTLE_SECONDS" in result.reason
        assert stored.state == "pending" and acs.emails == []

"""Issue 15's acceptance: `scan` on the command line against an ACS that forgets for a while.

With ALERT_SETTLE_SECONDS=30 and the ACS Email fake answering lookups 404 for 20 s after it
accepted a send (as ACS has, Azure/azure-sdk-for-python#35849):

- the first send is accepted and answered 500: one `scan` delivers the digest exactly once;
- the first send is refused with 500 before ACS takes it: one `scan` delivers it exactly once,
  after the settle window.

Either way the run's alert status ends `sent`. The command line runs in process on Azurite and
the tenant simulator; its waits (back-off, settle window) sleep on a clock the test moves, the
same clock the fake's lookup lag is measured on, so nothing here waits for real time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from partnerguard.alerts import inline
from partnerguard.graph import client as graph_client
from partnerguard.settings import StorageSettings
from partnerguard.storage import ScanStore
from testbed.acs_fake import AcsEmailFake
from testbed.simulator import TenantSimulator, generate_tenant
from tests.alerts_harness import acs_environment
from tests.cli_harness import run_cli
from tests.delivery_harness import ManualClock
from tests.graph_sim import fast_pacer
from tests.reliability import record

pytestmark = [pytest.mark.azurite, pytest.mark.simulator]

SETTLE_SECONDS = 30
LOOKUP_LAG_SECONDS = 20
EXIT_FINDINGS = 1
ACCEPTED_THEN_500 = "f1f1f1f1-0000-4000-8000-000000000001"
REFUSED_WITH_500 = "f2f2f2f2-0000-4000-8000-000000000002"


@pytest.fixture(scope="module")
def simulator() -> Iterator[TenantSimulator]:
    """Overrides the harness's bundled scenarios: one small tenant per case, one user without MFA."""
    scenarios = [
        generate_tenant(tenant_id, 15, seed=70 + n, role="partner" if n == 0 else "customer", incapable=1)
        for n, tenant_id in enumerate((ACCEPTED_THEN_500, REFUSED_WITH_500))
    ]
    with TenantSimulator(scenarios, enforce_limits=False) as sim:
        yield sim


@pytest.fixture(autouse=True)
def fast_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graph_client, "PROCESS_PACER", fast_pacer())


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    """The command line's alert delivery reads this clock and sleeps on it."""
    manual = ManualClock(datetime.now(UTC).replace(microsecond=0))
    monkeypatch.setattr(inline, "utc_now", manual)
    monkeypatch.setattr(inline, "time", SimpleNamespace(sleep=manual.sleep))
    return manual


@pytest.fixture
def acs(
    cli_env: dict[str, str],
    simulator: TenantSimulator,
    clock: ManualClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[AcsEmailFake]:
    with AcsEmailFake(clock=clock.seconds, lookup_lag=LOOKUP_LAG_SECONDS) as fake:
        for name, value in acs_environment(simulator, fake, tmp_path).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("ALERT_SETTLE_SECONDS", str(SETTLE_SECONDS))
        yield fake


@pytest.fixture
def store(cli_storage: str) -> Iterator[ScanStore]:
    scans = ScanStore.from_settings(StorageSettings(connection_string=cli_storage))
    yield scans
    scans.close()


@dataclass(frozen=True)
class Case:
    tenant: str
    name: str
    after_accept: bool


CASES = [
    Case(
        ACCEPTED_THEN_500,
        f"ACS accepts the send and answers 500; lookups answer 404 for {LOOKUP_LAG_SECONDS} s after "
        f"accepting (ALERT_SETTLE_SECONDS={SETTLE_SECONDS}); one command line scan",
        after_accept=True,
    ),
    Case(
        REFUSED_WITH_500,
        f"ACS refuses the send with 500 before accepting it; lookups answer 404 for {LOOKUP_LAG_SECONDS} s "
        f"after accepting (ALERT_SETTLE_SECONDS={SETTLE_SECONDS}); one command line scan",
        after_accept=False,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=["accepted-then-500", "refused-with-500"])
def test_one_scan_delivers_the_digest_exactly_once_however_the_first_send_failed(
    case: Case,
    acs: AcsEmailFake,
    clock: ManualClock,
    store: ScanStore,
    capsys: pytest.CaptureFixture[str],
) -> None:
    acs.fail_next(500, after_accept=case.after_accept)
    started = clock()

    code, _, err = run_cli(capsys, "scan", "--tenant", case.tenant)

    digests = [email for email in acs.sent if case.tenant in (email.plain_text or "")]
    (run,) = store.list_runs(case.tenant, top=1)
    posts = [request.status for request in acs.requests if request.method == "POST"]
    waited = (clock() - started).total_seconds()
    outcome = (
        f"{len(digests)} digest sent, "
        + ("the retry found it accepted" if case.after_accept else "sent again once the settle window was over")
        + f"; run alert {run.alert_status}"
    )
    record("faults", case.name, outcome, tried=1, duplicate_emails=max(0, len(digests) - 1))

    assert code == EXIT_FINDINGS, err[-2000:]
    assert len(digests) == 1 and len(acs.sent) == 1, f"sent {len(acs.sent)} times; POSTs answered {posts}"
    assert run.alert_status == "sent" and "alert email sent" in err
    if case.after_accept:
        # Accepted by the first POST: never posted again; the lookups told once the lag was over.
        assert posts == [500]
    else:
        assert posts == [500, 202]
        # Not posted again before the window was over: until then, "never seen" proves nothing.
        assert waited >= SETTLE_SECONDS

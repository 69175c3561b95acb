"""`partnerguard scan` delivers the alerts its runs owe, synchronously (SPEC §3; issue 5): through
the real `EmailClient` to the ACS fake, or as `.eml` files; once; not with `--no-alerts`; and
exit code 3 when an alert failed for good.

The command line runs in process (`tests/cli_harness.py`) on Azurite and a simulator of this
module's own: one small tenant per test, so each test's first scan finds something new."""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path
from types import SimpleNamespace

import pytest

from partnerguard.alerts import inline
from partnerguard.alerts.inline import deliver_for_runs
from partnerguard.graph import client as graph_client
from partnerguard.settings import Settings, StorageSettings
from partnerguard.storage import ScanStore
from testbed.acs_fake import AcsEmailFake
from testbed.simulator import TenantSimulator, generate_tenant
from tests.alerts_harness import RECIPIENT, SENDER, acs_environment
from tests.cli_harness import run_cli
from tests.graph_sim import fast_pacer

pytestmark = [pytest.mark.azurite, pytest.mark.simulator]

EXIT_FINDINGS = 1
EXIT_RUN_FAILED = 3
# One tenant per test (see the module docstring); each has one user without MFA.
SENT_ONCE = "d1d1d1d1-0000-4000-8000-000000000001"
NO_ALERTS = "d2d2d2d2-0000-4000-8000-000000000002"
REFUSED = "d3d3d3d3-0000-4000-8000-000000000003"
THROTTLED = "d4d4d4d4-0000-4000-8000-000000000004"
OUTBOX = "d5d5d5d5-0000-4000-8000-000000000005"
TENANTS = (SENT_ONCE, NO_ALERTS, REFUSED, THROTTLED, OUTBOX)


@pytest.fixture(scope="module")
def simulator() -> Iterator[TenantSimulator]:
    """Overrides the harness's bundled scenarios with one small tenant per test."""
    scenarios = [
        generate_tenant(tenant_id, 20, seed=50 + n, role="partner" if n == 0 else "customer", incapable=1)
        for n, tenant_id in enumerate(TENANTS)
    ]
    with TenantSimulator(scenarios, enforce_limits=False) as sim:
        yield sim


@pytest.fixture(autouse=True)
def fast_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    # A tenant scanned twice within seconds would wait for Graph's reports limit (per ten real
    # seconds): what is tested here is the alert, not the pacing.
    monkeypatch.setattr(graph_client, "PROCESS_PACER", fast_pacer())


@pytest.fixture
def acs(
    cli_env: dict[str, str], simulator: TenantSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AcsEmailFake]:
    """The ACS fake, and the command line's environment set to send alerts through it."""
    with AcsEmailFake() as fake:
        for name, value in acs_environment(simulator, fake, tmp_path).items():
            monkeypatch.setenv(name, value)
        yield fake


@pytest.fixture
def store(cli_storage: str) -> Iterator[ScanStore]:
    scans = ScanStore.from_settings(StorageSettings(connection_string=cli_storage))
    yield scans
    scans.close()


def latest_run_alert(store: ScanStore, tenant_id: str) -> tuple[str, str, str | None]:
    (run,) = store.list_runs(tenant_id, top=1)
    return run.run_id, run.alert_status, run.alert_error


def test_a_scan_sends_its_alert_once_and_exits_with_the_scans_code(
    acs: AcsEmailFake, store: ScanStore, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(capsys, "scan", "--tenant", SENT_ONCE)

    assert code == EXIT_FINDINGS  # the scan's code: a finding, and the alert went out
    (email,) = acs.sent
    assert email.sender == SENDER and email.recipients == (RECIPIENT,)
    assert SENT_ONCE in (email.plain_text or "") and "mfa.registration" in (email.plain_text or "")
    assert email.operation_id_from_client
    assert "alert email sent" in err
    run_id, status, _ = latest_run_alert(store, SENT_ONCE)
    assert status == "sent"

    # The same tenant again: nothing changed, nothing owed, nothing sent.
    code, _, err = run_cli(capsys, "scan", "--tenant", SENT_ONCE)

    assert code == EXIT_FINDINGS
    assert len(acs.sent) == 1 and "alert email" not in err
    second_run, status, _ = latest_run_alert(store, SENT_ONCE)
    assert second_run != run_id and status == "none"


def test_no_alerts_sends_nothing(acs: AcsEmailFake, store: ScanStore, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "scan", "--tenant", NO_ALERTS, "--no-alerts")

    assert code == EXIT_FINDINGS
    assert acs.sent == [] and acs.requests == []  # not even a lookup
    assert "alert" not in err
    _, status, _ = latest_run_alert(store, NO_ALERTS)
    assert status == "none"


def test_a_refused_alert_exits_3_and_is_recorded_on_the_run(
    acs: AcsEmailFake, store: ScanStore, capsys: pytest.CaptureFixture[str]
) -> None:
    acs.fail_next(400)

    code, _, err = run_cli(capsys, "scan", "--tenant", REFUSED)

    assert code == EXIT_RUN_FAILED
    assert acs.sent == []
    assert "alert delivery failed" in err and "400" in err
    _, status, error = latest_run_alert(store, REFUSED)
    assert status == "failed" and error is not None and "400" in error
    # A refusal is final: one send, not retried.
    assert [r.method for r in acs.requests if r.method == "POST"] == ["POST"]


def test_a_throttled_alert_is_waited_for_and_sent_once(
    acs: AcsEmailFake, store: ScanStore, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    # The command line sleeps out ACS's Retry-After; record the wait instead of waiting.
    monkeypatch.setattr(inline, "time", SimpleNamespace(sleep=waits.append))
    acs.fail_next(429, times=1, retry_after=7)

    code, _, err = run_cli(capsys, "scan", "--tenant", THROTTLED)

    assert code == EXIT_FINDINGS
    # ACS's Retry-After, plus at most 20 % jitter so deferred alerts do not wake together.
    assert len(waits) == 1 and 7.0 <= waits[0] <= 7.0 * 1.2
    (email,) = acs.sent
    assert THROTTLED in (email.plain_text or "")
    assert "alert delivery failed" not in err
    _, status, _ = latest_run_alert(store, THROTTLED)
    assert status == "sent"


def test_the_outbox_gets_one_eml_file(
    cli_env: dict[str, str],
    store: ScanStore,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    outbox = tmp_path / "outbox"
    monkeypatch.setenv("EMAIL_OUTBOX_DIR", str(outbox))
    monkeypatch.setenv("ALERT_RECIPIENTS", RECIPIENT)

    code, _, err = run_cli(capsys, "scan", "--tenant", OUTBOX)

    assert code == EXIT_FINDINGS
    (eml,) = outbox.glob("*.eml")
    assert f"alert email sent ({eml})" in err
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert message["To"] == RECIPIENT and message["X-PartnerGuard-Operation-Id"] == eml.stem
    body = message.get_body(preferencelist=("plain",))
    assert body is not None and OUTBOX in body.get_content()

    # Delivering the same run again (a retry of the command, say) writes nothing more.
    run_id, status, _ = latest_run_alert(store, OUTBOX)
    assert status == "sent"
    again = deliver_for_runs(Settings.from_env(), store, [(OUTBOX, run_id)])
    assert again.sent == [] and again.failed == []
    assert [d.action for d in again.delivered] == ["already"]
    assert list(outbox.glob("*.eml")) == [eml]
    assert [p.name for p in outbox.iterdir()] == [eml.name]  # no temporary file left behind

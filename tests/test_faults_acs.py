"""ACS Email failures while the alert worker delivers a digest (issue 8): each either ends with the
digest delivered exactly once, naming every new finding, or fails visibly — the run's
`alert.status` failed with the error, the message poisoned with its reason — and never sends the
same news twice.

Each case is a tenant's first scan (so one digest is owed) on tables of its own, through the
Functions entry points as the host drives them (tests/faults_harness.py), with a fixed fault
schedule scripted into the ACS Email fake. The alert worker waits out throttling and outages by
re-queueing the message with a delay, up to a budget of deferrals (about two days); the outage
case cuts that budget to one deferral so that it runs out within the test.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from partnerguard import alert_jobs
from partnerguard.model import Report
from partnerguard.queues.names import ALERT_POISON_QUEUE
from testbed.acs_fake import AcsEmailFake
from testbed.azurite import AzuriteProcess
from testbed.simulator import TenantSimulator, generate_tenant
from tests.alerts_harness import AlertsEnv, alerts_env
from tests.faults_harness import newest_run, quick_graph, report_of, tick
from tests.reliability import record

pytestmark = [pytest.mark.azurite, pytest.mark.simulator]

TENANT = "c3c3c3c3-0000-4000-8000-000000000003"
INJECTED = "injected fault"  # how the fake marks the requests it failed on purpose
# The host hands a deferred message over once its visibility delay (ACS's Retry-After) is over.
DEFERRED_WAIT_S = 8.0
# The deferral budget of the outage case (production: MAX_DEFERRALS, about two days).
SHORT_DEFERRAL_BUDGET = 1


@dataclass(frozen=True)
class AcsFault:
    case: str
    script: Callable[[AcsEmailFake], None]
    delivered: bool  # expected: the digest goes out (else the alert fails visibly)
    deferral_budget: int | None = None  # cut MAX_DEFERRALS to this


def fail(status: int, times: int = 1, **options: object) -> Callable[[AcsEmailFake], None]:
    return lambda acs: acs.fail_next(status, times, **options)  # type: ignore[arg-type]


FAULTS = [
    AcsFault("ACS 503 on the send, once (nothing accepted)", fail(503), delivered=True),
    AcsFault("ACS 500 after accepting the send", fail(500, after_accept=True), delivered=True),
    AcsFault("ACS 503 on the operation lookup before the send, once", fail(503, target="status"), delivered=True),
    AcsFault("ACS 429 with Retry-After: 1 on the send, twice", fail(429, 2, retry_after=1), delivered=True),
    AcsFault(
        f"ACS 503 on every send until the deferral budget runs out (cut to {SHORT_DEFERRAL_BUDGET})",
        fail(503, SHORT_DEFERRAL_BUDGET + 1),
        delivered=False,
        deferral_budget=SHORT_DEFERRAL_BUDGET,
    ),
    AcsFault("ACS 400 refusing the send", fail(400), delivered=False),
]


@pytest.fixture(scope="module")
def sim() -> Iterator[TenantSimulator]:
    tenant = generate_tenant(TENANT, 12, seed=31, role="partner", display_name="Tailspin Toys", incapable=2)
    with quick_graph(), TenantSimulator([tenant], enforce_limits=False) as simulator:
        yield simulator


@pytest.fixture
def env(azurite: AzuriteProcess, table_prefix: str, sim: TenantSimulator, tmp_path: Path) -> Iterator[AlertsEnv]:
    yield from alerts_env(azurite.connection_string, table_prefix, sim, tmp_path)


def untold(report: Report, digest_text: str) -> set[tuple[str, str]]:
    """New findings the digest does not account for: a digest lists a few subjects per kind and
    links to the rest, so what it must get right is each check's count of new findings (its
    summary line), which the linked findings then list one by one."""
    missing: set[tuple[str, str]] = set()
    for check in report.checks:
        new = [(check.id, item.finding.subject_id) for item in check.findings if item.state == "new"]
        if new and f"{check.title}\n  {len(new)} new" not in digest_text:
            missing.update(new)
    return missing


def injected(acs: AcsEmailFake) -> int:
    """Faulty answers the fake served, plus accepted sends it then failed."""
    refused = sum(1 for request in acs.requests if request.refused == INJECTED)
    return refused + sum(1 for status in acs.operations.values() if status == "Failed")


@pytest.mark.parametrize("schedule", FAULTS, ids=[fault.case for fault in FAULTS])
def test_an_acs_fault_delivers_once_or_fails_the_alert_visibly(
    schedule: AcsFault, env: AlertsEnv, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING)
    if schedule.deferral_budget is not None:
        monkeypatch.setattr(alert_jobs, "MAX_DEFERRALS", schedule.deferral_budget)
    schedule.script(env.acs)

    outcome_tick = tick(env, deferred_wait_s=DEFERRED_WAIT_S)

    run = newest_run(env, TENANT)
    report = report_of(env, run)
    assert report is not None and report.status == "succeeded"
    news = {(check.id, f.finding.subject_id) for check in report.checks for f in check.findings if f.state == "new"}
    assert news, "the first scan has findings to tell"
    digests = [email for email in env.acs.sent if TENANT in (email.plain_text or "")]
    # Lost: a new finding not kept as active, or, when the digest went out, not named in it.
    lost = news - set(env.services.store.active_findings(TENANT))
    if run.alert_status == "sent":
        told = " ".join(email.plain_text or "" for email in digests)
        lost |= untold(report, told)
    duplicates = max(0, len(digests) - 1) + (len(env.acs.sent) - len(digests))
    operation_ids = [email.operation_id for email in env.acs.sent]
    poisoned = env.functions.json_messages(ALERT_POISON_QUEUE)
    reasons = [str(message.get("reason", "")) for message in poisoned]
    if run.alert_status == "sent":
        deliveries = outcome_tick.alerts.deliveries
        outcome = f"{len(digests)} digest sent, after {deliveries} deliver{'y' if deliveries == 1 else 'ies'}"
    else:
        why = "; ".join(reason.split(":", 1)[0] for reason in reasons) or "no reason"
        outcome = f"alert {run.alert_status} on the run, message poisoned ({why})"
    record(
        "faults",
        schedule.case,
        outcome,
        tried=injected(env.acs),
        findings_lost=len(lost),
        duplicate_emails=duplicates,
    )

    assert (run.alert_status == "sent") == schedule.delivered, outcome
    assert not lost, sorted(lost)
    assert duplicates == 0 and len(set(operation_ids)) == len(operation_ids)
    if schedule.delivered:
        assert len(digests) == 1 and not poisoned
    else:
        # Visible: the error on the run (the HTTP API shows it), the message poisoned with its
        # reason, and the reason logged.
        assert run.alert_error
        assert run.to_document()["alert"] == {"status": "failed", "error": run.alert_error}
        (reason,) = reasons
        assert reason and any(reason in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)

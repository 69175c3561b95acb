"""Graph and sign-in faults while the Functions app scans (issue 8): every fault either leaves the
scan complete with the findings of a clean scan, or fails the run visibly — the failed checks
`error` with their code, the reason logged — and the next scan, the fault gone, reports the clean
scan's findings again. Nothing is resolved by a fault, and no email repeats news already told.

One module-wide app (timer → scan worker → alert worker, on Azurite, the tenant simulator and
the ACS Email fake) scans the bundled partner tenant once cleanly: that scan's findings are the
baseline and its digest the only email owed. Each case then injects a fixed fault schedule into
the simulator, runs a tick (and a recovery tick when the run failed), and records in the
reliability ledger how many faulty answers were served and what was measured.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from partnerguard.storage.records import RUN_FAILED, RUN_SUCCEEDED
from testbed.azurite import AzuriteProcess
from testbed.simulator import TenantSimulator
from testbed.simulator.recording import Fault
from tests.alerts_harness import AlertsEnv, alerts_env
from tests.faults_harness import (
    CONTOSO,
    GRAPH_RETRIES,
    GRAPH_TIMEOUT_S,
    Finding,
    active_findings,
    assessed_checks,
    compared,
    contoso,
    errored_checks,
    newest_run,
    quick_graph,
    report_of,
    reported,
    resolved_by,
    tick,
)
from tests.reliability import record

pytestmark = [pytest.mark.azurite, pytest.mark.simulator]

USERS = r"^/v1\.0/users$"
REGISTRATION = r"^/v1\.0/reports/authenticationMethods/userRegistrationDetails$"
POLICIES = r"^/beta/identity/conditionalAccess/policies$"  # read from beta first (SPEC §1)
SIGN_INS = r"^/beta/auditLogs/signIns$"
APPLICATIONS = r"^/v1\.0/applications$"
SERVICE_PRINCIPALS = r"^/v1\.0/servicePrincipals$"
GDAP = r"^/v1\.0/tenantRelationships/delegatedAdminRelationships$"
PER_USER_MFA = r"^/beta/users/[^/]+/authentication/requirements$"  # inside $batch
TOKEN = r"/oauth2/v2\.0/token$"

ATTEMPTS = GRAPH_RETRIES + 1
# azure-identity's token request: one try and three retries (azure-core's RetryPolicy).
TOKEN_ATTEMPTS = 4
HTML_PAGE = "<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>"
# What a hung request finally answers: a client that waited for it would fail the check on it.
LATE_ANSWER = json.dumps({"value": "the client should have given up waiting"})
TOKEN_SERVER_ERROR = json.dumps(
    {"error": "server_error", "error_description": "AADSTS90033: A transient error has occurred. Please try again."}
)


def repeating_users_page(sim: TenantSimulator) -> str:
    """Half the users and a nextLink that, followed, answers the same page and link again."""
    users = sim.tenant(CONTOSO).users
    link = f"{sim.base_url}/v1.0/users?$skiptoken=repeats"
    return json.dumps({"value": users[: len(users) // 2], "@odata.nextLink": link})


@dataclass(frozen=True)
class GraphFault:
    case: str  # the ledger's words
    path: str
    times: int  # faulty answers in the schedule; every one must be served
    status: int = 503
    retry_after: int | None = None
    body: str | Callable[[TenantSimulator], str] | None = None
    delay_s: float = 0.0
    survived: bool = True  # expected: the scan completes (else the run fails visibly)

    def fault(self, sim: TenantSimulator) -> Fault:
        body = self.body(sim) if callable(self.body) else self.body
        return Fault(re.compile(self.path), self.status, self.times, self.retry_after, body, self.delay_s)


FAULTS = [
    GraphFault("Graph 429 with Retry-After: 1, twice, on the registration report", REGISTRATION, 2, 429, 1),
    GraphFault("Graph 429 without Retry-After, twice, on Conditional Access policies", POLICIES, 2, 429),
    GraphFault("Graph 429 on 3 $batch sub-requests (per-user MFA state)", PER_USER_MFA, 3, 429, 1),
    GraphFault("Graph 503, twice, on users", USERS, 2, 503),
    GraphFault("Graph 504, twice, on sign-ins", SIGN_INS, 2, 504),
    GraphFault("Graph connection reset, twice, on applications", APPLICATIONS, 2, body="reset"),
    GraphFault(
        f"Graph request hanging past the client's timeout ({GRAPH_TIMEOUT_S:.0f} s), on service principals",
        SERVICE_PRINCIPALS,
        1,
        200,
        body=LATE_ANSWER,
        delay_s=GRAPH_TIMEOUT_S + 3,
    ),
    GraphFault("token endpoint 500, once", TOKEN, 1, 500, body=TOKEN_SERVER_ERROR),
    GraphFault("token endpoint connection reset, once", TOKEN, 1, body="reset"),
    GraphFault(f"Graph 503 on all {ATTEMPTS} attempts at users", USERS, ATTEMPTS, 503, survived=False),
    GraphFault(
        f"Graph connection reset on all {ATTEMPTS} attempts at applications",
        APPLICATIONS,
        ATTEMPTS,
        body="reset",
        survived=False,
    ),
    GraphFault(
        "Graph 200 with a truncated JSON body, on users", USERS, 1, 200, body='{"value": [{"id": "', survived=False
    ),
    # Contoso's report is one page and it has four admins: one filtered page plus the admins' rows
    # by id would cost more than reading whole, so every scan reads it whole (issue 18), and a
    # malformed page fails the checks that read it. (A filtered read that fails is made whole by
    # a full read: tests/test_registration_read.py, on a tenant large enough to read filtered.)
    GraphFault(
        "Graph 200 with an HTML body, on the registration report",
        REGISTRATION,
        1,
        200,
        body=HTML_PAGE,
        survived=False,
    ),
    GraphFault(
        "Graph 502 with a gateway's HTML page, on GDAP relationships", GDAP, 1, 502, body=HTML_PAGE, survived=False
    ),
    GraphFault("Graph nextLink that repeats, on users", USERS, 2, 200, body=repeating_users_page, survived=False),
    GraphFault(
        f"token endpoint 500 on all {TOKEN_ATTEMPTS} attempts of a sign-in",
        TOKEN,
        TOKEN_ATTEMPTS,
        500,
        body=TOKEN_SERVER_ERROR,
        survived=False,
    ),
]


@dataclass
class App:
    env: AlertsEnv
    sim: TenantSimulator
    baseline: set[Finding]


@pytest.fixture(scope="module")
def app(azurite: AzuriteProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    directory: Path = tmp_path_factory.mktemp("faults-graph")
    with quick_graph(), TenantSimulator([contoso()], enforce_limits=False) as sim:
        for env in alerts_env(azurite.connection_string, "faultsgraph", sim, directory):
            clean = tick(env)
            run = newest_run(env)
            report = report_of(env, run)
            assert run.status == RUN_SUCCEEDED and report is not None and len(clean.emails) == 1
            baseline = reported(report)
            # The baseline is itself right: the users without MFA are the scenario's ground truth.
            assert {s for c, s in baseline if c == "mfa.registration"} == contoso().expected_mfa_registration_subjects()
            yield App(env, sim, baseline)


@pytest.fixture
def clean_faults(app: App) -> Iterator[None]:
    app.sim.faults.clear()
    yield
    app.sim.faults.clear()


@pytest.mark.usefixtures("clean_faults")
@pytest.mark.parametrize("schedule", FAULTS, ids=[fault.case for fault in FAULTS])
def test_a_graph_fault_is_survived_or_fails_the_run_visibly(
    schedule: GraphFault, app: App, caplog: pytest.LogCaptureFixture
) -> None:
    env, sim, baseline = app.env, app.sim, app.baseline
    assert active_findings(env) == baseline, "the previous case left the tenant's findings changed"
    caplog.set_level(logging.WARNING)
    fault = schedule.fault(sim)
    sim.faults.add(fault)

    faulted = tick(env)
    injected = schedule.times - fault.times
    run = newest_run(env)
    report = report_of(env, run)
    lost = resolved_by(env, run)  # a fault must never make a finding look fixed
    emails = list(faulted.emails)
    if run.status == RUN_SUCCEEDED:
        assert report is not None
        lost |= baseline - reported(report)
        outcome = f"scan completed: {compared(reported(report), baseline)}"
        why = ""
    else:
        assert run.status == RUN_FAILED
        if report is None:  # failed before any check ran: the run carries the error
            assert run.error_code, "a run failed before its checks says why"
            why = f"run failed: {run.error_code}"
        else:
            # The checks that could still read their data report them all; the others say error.
            errored = errored_checks(report)
            assert errored, "a failed run names its failed checks"
            complete = assessed_checks(report)
            lost |= {finding for finding in baseline if finding[0] in complete} - reported(report)
            why = "run failed: " + ", ".join(f"{check} {code}" for check, code in sorted(errored.items()))
        sim.faults.clear()
        recovery = tick(env)
        emails += recovery.emails
        recovered = newest_run(env)
        recovered_report = report_of(env, recovered)
        assert recovered.status == RUN_SUCCEEDED and recovered_report is not None
        lost |= baseline - reported(recovered_report)
        outcome = f"{why}; next scan: {compared(reported(recovered_report), baseline)}"
    lost |= baseline - active_findings(env)
    # Nothing changed in the tenant since the baseline's digest: any email repeats told news.
    duplicates = len(emails)
    record("faults", schedule.case, outcome, tried=injected, findings_lost=len(lost), duplicate_emails=duplicates)

    assert injected == schedule.times, "the whole fault schedule was served"
    assert (run.status == RUN_SUCCEEDED) == schedule.survived, outcome
    assert not lost, f"findings lost: {sorted(lost)}"
    assert duplicates == 0, [email.subject for email in emails]
    assert faulted.scans.poisoned == 0 and faulted.alerts.poisoned == 0
    if not schedule.survived:
        # The reason is in the log, for whoever reads the run's failure.
        code = why.rsplit(" ", 1)[-1].removeprefix("error:")
        warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert any(code in message for message in warnings), (code, warnings)

"""The virtual-time case: scans at Graph's limits that would take hours of real time, run in
minutes on the shared virtual clock (`testbed/bench/virtual_time.py`), in a fresh process of its
own like every case (`python -m testbed.bench.cases virtual_scans`).

A case is a list of *phases*, each a round of scans of the same tenants at a given moment:
a warm-up scan that leaves the state a previous scan would have (watermarks, stored aggregates,
the registration roster), then the measured scan 15 minutes later; or a first scan run as
executions until every tenant's sign-in read is complete. Each execution is one
`Scanner.scan_many` (one Functions invocation per tenant: host.json's 30-minute timeout bounds it
in virtual time through the collection's own deadline). Per phase the case reports virtual and
real time, CPU time, the executions and their virtual durations, the statuses, and (for a few
tenants) the findings, which the runner compares with the simulator's ground truth. The phase's
real `time.time()` window lets the runner ask the simulator for that phase's requests.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from testbed.bench.virtual_time import run_virtual
from testbed.simulator.shared_clock import SharedClock

Params = Mapping[str, Any]

# The checks whose findings a case compares with the ground truth.
COMPARED_CHECKS = ("mfa.registration", "legacy-auth.sign-ins", "sign-ins.single-factor", "sam.password-grant")
# Virtual seconds between two phases: every throttling window (10 s at most) has emptied.
PAUSE_BETWEEN_PHASES_S = 60.0


def _findings(results: Sequence[Any]) -> dict[str, dict[str, list[str]]]:
    """tenant -> check -> subject ids, of the compared checks."""
    found: dict[str, dict[str, list[str]]] = {}
    for result in results:
        if result.report is None:
            continue
        found[result.tenant_id] = {
            check.id: sorted(f.finding.subject_id for f in check.findings)
            for check in result.report.checks
            if check.id in COMPARED_CHECKS
        }
    return found


def _check_errors(results: Sequence[Any]) -> list[str]:
    """The checks that ended in `error` (a failed run), with why: a few, for the page."""
    errors = {
        f"{check.id}: {check.reason_code}: {check.reason}"
        for result in results
        if result.report is not None
        for check in result.report.checks
        if str(check.status) == "error"
    }
    return sorted(errors)[:5]


def _read_state(result: Any) -> dict[str, Any] | None:
    read = result.sign_in_read
    if read is None:
        return None
    return {"complete": read.complete, "pages": read.pages, "modes": dict(read.modes)}


def virtual_scans(params: Params) -> dict[str, Any]:
    from partnerguard.graph.pacing import PROCESS_PACER
    from partnerguard.pipeline import Scanner, graph_snapshot
    from partnerguard.read_plan import ReadPlan
    from testbed.bench.cases import _statuses, _store, peak_rss_mb

    clock = SharedClock(params["clock_path"])
    # PartnerGuard's pacer reads the virtual clock; its sleeps are asyncio's, hence virtual on
    # the loop; time may only jump while none of its requests is in flight.
    PROCESS_PACER.clock = clock.now
    settings, store = _store(params)
    plan = ReadPlan.full_reads() if params["plan"] == "baseline" else ReadPlan()
    tenant_ids: list[str] = list(params["tenant_ids"])
    concurrency = int(params.get("concurrency", 1))
    keep_findings = bool(params.get("keep_findings", False))
    phases_out: list[dict[str, Any]] = []
    for phase in params["phases"]:
        anchor = datetime.fromisoformat(phase["at"])
        phase_began = clock.now()

        def scan_time(anchor: datetime = anchor, began: float = phase_began) -> datetime:
            # The scans' wall clock: the phase's moment plus the virtual time since it began.
            return anchor + timedelta(seconds=clock.now() - began)

        # The collection's deadlines (the sign-in read's share of the function timeout) run on
        # the virtual clock too.
        source = functools.partial(graph_snapshot, store=store, read_plan=plan, monotonic=clock.now)
        scanner = Scanner(settings, store, snapshot_source=source, clock=scan_time, read_plan=plan)
        pending = list(tenant_ids)
        executions: list[dict[str, Any]] = []
        results: dict[str, Any] = {}
        real_began, cpu_began = time.time(), time.process_time()
        max_executions = int(phase.get("max_executions", 1))
        while pending and len(executions) < max_executions:
            began, cpu, scan_started = clock.now(), time.process_time(), scan_time()
            round_results = run_virtual(
                scanner.scan_many(pending, concurrency=concurrency), clock, lambda: PROCESS_PACER.in_flight
            )
            executions.append(
                {
                    "tenants": len(pending),
                    "scan_started": scan_started.isoformat(),
                    "virtual_s": clock.now() - began,
                    "cpu_s": time.process_time() - cpu,
                    "pages": sum((r.sign_in_read.pages if r.sign_in_read else 0) for r in round_results),
                }
            )
            for result in round_results:
                results[result.tenant_id] = result
            pending = [r.tenant_id for r in round_results if r.sign_in_read_continues]
        final = [results[t] for t in tenant_ids if t in results]
        phases_out.append(
            {
                "name": phase["name"],
                "virtual_s": clock.now() - phase_began,
                "real_s": time.time() - real_began,
                "real_window": [real_began, time.time()],
                "cpu_s": time.process_time() - cpu_began,
                "executions": executions,
                "unfinished": len(pending),
                "statuses": _statuses(r.report for r in final),
                "errors": sorted({r.error for r in final if r.error})[:5] + _check_errors(final),
                "read_states": [_read_state(r) for r in final[:3]],
                "scan_now": scan_time().isoformat(),
                "findings": _findings(final) if keep_findings else {},
                "finding_counts": {
                    check: sum(len(by_check.get(check, ())) for by_check in _findings(final).values())
                    for check in COMPARED_CHECKS
                },
            }
        )
        run_virtual(_pause(), clock)
    store.close()
    return {
        "phases": phases_out,
        "client_429s": PROCESS_PACER.throttled_count,
        "peak_rss_mb": peak_rss_mb(),
        "plan": params["plan"],
    }


async def _pause() -> None:
    await asyncio.sleep(PAUSE_BETWEEN_PHASES_S)

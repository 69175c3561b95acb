"""The cases of issue 16, at Graph's limits on virtual time: what the filtered, resumable reads
(`ReadPlan()`, production) cost against today's full reads (`ReadPlan.full_reads()`, the
baseline), measured by the same code in the same run.

Each case starts one simulator process whose throttling windows follow the case's virtual clock
(a shared file, `testbed/simulator/shared_clock.py`) and whose tenants' sign-ins are generated on
demand (`testbed/simulator/sign_in_log.py`), then one fresh case process that runs the phases in
order (`testbed/bench/virtual_cases.py`). A steady state is reached for real: a warm-up scan
leaves the state a previous scan would, then the measured scans follow 15 (virtual) minutes apart:

    warm-up (baseline) → baseline scan → production scan (switches the sign-in streams'
    mode) → production scan (steady state, measured) [→ the day's full roster read]

The simulator's requests are attributed to phases by their real time of arrival.
"""

from __future__ import annotations

import itertools
import json
import math
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from testbed.bench.bounds import lower_bound
from testbed.bench.sizes import BenchSizes
from testbed.simulator.process import SignInLogSpec, SimulatorProcess, SimulatorSpec, TenantSpec
from testbed.simulator.shared_clock import SharedClock

Progress = Callable[[str], None]
# host.json's functionTimeout: one execution of the scan worker may run this long.
FUNCTION_TIMEOUT_S = 30 * 60
STEADY_GAP = timedelta(minutes=15)
# The first scan's tenant: 2 % legacy sign-ins from few accounts (sign_in_log.py says why).
FIRST_SCAN_PROFILE = "non_compliant_few_accounts"
REGISTRATION_PATHS = ("userRegistrationDetails", "userRegistrationDetails/{id}")


@dataclass(frozen=True)
class PhaseFigures:
    """One phase, with the simulator's view of its requests."""

    name: str
    virtual_s: float
    real_s: float
    cpu_s: float
    executions: list[dict[str, Any]]
    unfinished: int
    statuses: dict[str, int]
    errors: list[str]
    reports_requests: int
    registration_pages: int
    sign_in_pages: int
    throttled: int
    requests: int
    bound_s: float
    binding: str
    scan_now: str
    findings: dict[str, dict[str, list[str]]]
    finding_counts: dict[str, int]
    read_states: list[Any]

    def as_json(self) -> dict[str, Any]:
        figures = dict(self.__dict__)
        figures.pop("findings")
        return figures


_PREFIXES = itertools.count(1)


def _fresh_prefix() -> str:
    """Table prefix of one case run: its own tables, even for two runs in the same second."""
    return f"vbench{datetime.now(UTC):%H%M%S}n{next(_PREFIXES)}"


def minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _run_phases(
    case: str,
    spec: SimulatorSpec,
    clock_path: Path,
    tenants: Sequence[str],
    users: int,
    plans_and_phases: Sequence[tuple[str, list[dict[str, Any]]]],
    storage: str,
    concurrency: int,
    keep_findings: bool,
    ground_truth_for: Callable[[SimulatorProcess, dict[str, PhaseFigures]], dict[str, Any]] | None = None,
) -> tuple[dict[str, PhaseFigures], dict[str, Any]]:
    """Run each (plan, phases) in its own case process against one simulator; the phases of all
    of them share the virtual clock and the stored state (one prefix), in order."""
    from testbed.bench.runner import run_case

    prefix = _fresh_prefix()
    phases: dict[str, PhaseFigures] = {}
    extra: dict[str, Any] = {"peak_rss_mb": {}, "client_429s": {}}
    with SimulatorProcess(spec) as simulator:
        for plan, plan_phases in plans_and_phases:
            figures = run_case(
                "virtual_scans",
                {
                    "environment": {**simulator.environment, "PARTNERGUARD_STORAGE": storage},
                    "prefix": prefix,
                    "tenant_ids": list(tenants),
                    "clock_path": str(clock_path),
                    "plan": plan,
                    "phases": plan_phases,
                    "concurrency": concurrency,
                    "keep_findings": keep_findings,
                },
                timeout_s=3 * 3600,
            )
            extra["peak_rss_mb"][plan] = max(extra["peak_rss_mb"].get(plan, 0.0), figures["peak_rss_mb"])
            extra["client_429s"][plan] = extra["client_429s"].get(plan, 0) + figures["client_429s"]
            for phase in figures["phases"]:
                since, until = phase["real_window"]
                stats = simulator.phase_stats(since, until)
                bound = lower_bound(stats["admitted_units"], dict.fromkeys(tenants, users), spec.latency_s)
                by_path = stats.get("reports_by_path", {})
                phases[phase["name"]] = PhaseFigures(
                    name=phase["name"],
                    virtual_s=phase["virtual_s"],
                    real_s=phase["real_s"],
                    cpu_s=phase["cpu_s"],
                    executions=phase["executions"],
                    unfinished=phase["unfinished"],
                    statuses=phase["statuses"],
                    errors=phase["errors"],
                    reports_requests=int(stats["requests_by_class"].get("identity-reports", 0))
                    - int(stats["throttled_by_class"].get("identity-reports", 0)),
                    registration_pages=sum(int(by_path.get(path, 0)) for path in REGISTRATION_PATHS),
                    sign_in_pages=int(by_path.get("signIns", 0)),
                    throttled=int(stats["throttled"]),
                    requests=int(stats["requests"]),
                    bound_s=bound.seconds,
                    binding=bound.binding,
                    scan_now=phase["scan_now"],
                    findings=phase["findings"],
                    finding_counts=phase["finding_counts"],
                    read_states=phase["read_states"],
                )
        if ground_truth_for is not None:
            extra["ground_truth"] = ground_truth_for(simulator, phases)
        extra["simulator_cpu_s"] = simulator.stats().get("cpu_s")
    return phases, extra


def _clock_file(workdir: str) -> Path:
    path = Path(workdir) / "virtual-clock"
    SharedClock(path, create=True).close()
    return path


def _steady_phases(t0: datetime, with_daily: bool) -> list[tuple[str, list[dict[str, Any]]]]:
    """Warm-up, then a scan every 15 minutes: baseline, production (mode switch), production."""
    at = [t0 - 3 * STEADY_GAP, t0 - 2 * STEADY_GAP, t0 - STEADY_GAP, t0]
    new = [
        {"name": "switch", "at": at[2].isoformat()},
        {"name": "new", "at": at[3].isoformat()},
    ]
    if with_daily:
        # A day after the last full roster read (the mode-switching scan's: the baseline's full
        # reads keep no roster): the day's full read.
        new.append({"name": "daily", "at": (at[2] + timedelta(days=1, minutes=1)).isoformat()})
    return [
        ("baseline", [{"name": "warm-up", "at": at[0].isoformat()}, {"name": "baseline", "at": at[1].isoformat()}]),
        ("new", new),
    ]


def steady_log_hours(sizes: BenchSizes) -> float:
    """The log reaches back far enough for the warm-up's read to be a steady-state read too."""
    return sizes.overlap_hours + 3 * STEADY_GAP.total_seconds() / 3600 + 0.25


def run_steady(
    sizes: BenchSizes, storage: str, progress: Progress, *, profile: str
) -> tuple[list[Any], dict[str, Any]]:
    from testbed.bench.runner import Metric, tenant_id

    tenant = tenant_id(3 if profile == "compliant" else 4)
    users = sizes.virtual_users
    t0 = minute(datetime.now(UTC))
    compliant = profile == "compliant"
    progress(f"steady state, {profile.replace('_', '-')} {users:,}-user tenant (virtual time)")
    with tempfile.TemporaryDirectory(prefix="partnerguard-clock-") as workdir:
        clock_path = _clock_file(workdir)
        spec = SimulatorSpec(
            [
                TenantSpec(
                    tenant,
                    users,
                    seed=21,
                    incapable=0 if compliant else users // 20,
                    guests=0 if compliant else None,
                    sign_in_log=SignInLogSpec(t0.isoformat(), steady_log_hours(sizes), profile, seed=21),
                )
            ],
            latency_s=sizes.latency_s,
            enforce_limits=True,
            clock_path=str(clock_path),
        )
        phases, extra = _run_phases(
            f"steady_{profile}", spec, clock_path, [tenant], users, _steady_phases(t0, compliant), storage, 1, False
        )
    new, baseline = phases["new"], phases["baseline"]
    label = f"{'compliant' if compliant else 'non-compliant'} {users:,}-user tenant, steady state"
    metrics = [
        Metric(
            f"{label}: virtual time per scan at Graph's limits",
            new.virtual_s,
            "s",
            "< 120 s" if compliant else "context",
            new.virtual_s < 120 if compliant else None,
            f"production reads: {_describe(new)}; baseline (full reads): {_describe(baseline)}; the first "
            "production scan after the baseline's (no roster stored yet: the whole registration report; and "
            "the sign-in streams switch from full to filtered reads): "
            f"{_describe(phases['switch'])}",
            clock="virtual",
        ),
        Metric(
            f"{label}: reports requests per scan, production vs baseline",
            new.reports_requests,
            "requests",
            "context",
            None,
            f"{new.reports_requests} vs {baseline.reports_requests} (registration report {new.registration_pages} vs "
            f"{baseline.registration_pages} pages, sign-ins {new.sign_in_pages} vs {baseline.sign_in_pages} pages); "
            f"lower bound {new.bound_s:.0f} s vs {baseline.bound_s:.0f} s ({new.binding} / {baseline.binding})",
            clock="virtual",
        ),
    ]
    if compliant:
        daily = phases["daily"]
        metrics.append(
            Metric(
                f"{label}: registration report pages per scan",
                new.registration_pages,
                "pages",
                "≤ 10 pages",
                new.registration_pages <= 10,
                f"{new.registration_pages} between full roster reads (baseline: {baseline.registration_pages} every "
                f"scan); the once-a-day scan that re-reads the whole roster: {daily.registration_pages} pages, "
                f"{_describe(daily)}",
                clock="virtual",
            )
        )
    metrics.append(_rss_metric(label, extra, (new, baseline)))
    raw = {
        "phases": {name: figures.as_json() for name, figures in phases.items()},
        **{key: value for key, value in extra.items() if key != "ground_truth"},
    }
    return metrics, raw


def _describe(phase: PhaseFigures) -> str:
    cpu = sum(float(execution["cpu_s"]) for execution in phase.executions)
    return (
        f"{phase.virtual_s:,.1f} s virtual ({phase.real_s:,.1f} s real), {phase.reports_requests} reports requests "
        f"({phase.registration_pages} registration, {phase.sign_in_pages} sign-in pages), "
        f"{phase.throttled} answered 429, {cpu:,.1f} s CPU, bound {phase.bound_s:,.0f} s"
    )


def _rss_metric(label: str, extra: Mapping[str, Any], phases: Sequence[PhaseFigures]) -> Any:
    from testbed.bench.runner import Metric

    rss = max(extra["peak_rss_mb"].values()) if extra["peak_rss_mb"] else 0.0
    cpu = [sum(float(e["cpu_s"]) for e in phase.executions) / max(1, sum(phase.statuses.values())) for phase in phases]
    return Metric(
        f"{label}: peak RSS",
        rss,
        "MB",
        "< 400 MB",
        rss < 400,
        f"the scanning process (the simulator runs in its own); CPU per scan: {cpu[0]:,.2f} s production, "
        f"{cpu[1]:,.2f} s baseline; by plan: {json.dumps(extra['peak_rss_mb'])}",
        clock="virtual",
    )


def run_first_scan(sizes: BenchSizes, storage: str, progress: Progress) -> tuple[list[Any], dict[str, Any]]:
    from testbed.bench.runner import Metric, tenant_id

    tenant = tenant_id(5)
    users = sizes.virtual_users
    t0 = minute(datetime.now(UTC))
    hours = sizes.first_scan_log_hours
    progress(f"first scan of a non-compliant {users:,}-user tenant: {hours:g} h of sign-ins (virtual time)")
    with tempfile.TemporaryDirectory(prefix="partnerguard-clock-") as workdir:
        clock_path = _clock_file(workdir)
        spec = SimulatorSpec(
            [
                TenantSpec(
                    tenant,
                    users,
                    seed=31,
                    incapable=users // 20,
                    sign_in_log=SignInLogSpec(t0.isoformat(), hours, FIRST_SCAN_PROFILE, seed=31),
                )
            ],
            latency_s=sizes.latency_s,
            enforce_limits=True,
            clock_path=str(clock_path),
        )

        def truth(simulator: SimulatorProcess, phases: dict[str, PhaseFigures]) -> dict[str, Any]:
            last = phases["new"].executions[-1]
            return dict(simulator.ground_truth(tenant, datetime.fromisoformat(last["scan_started"]), 168))

        # The production reads first (to completion), then the baseline's first executions in a
        # fresh state (another tenant id would need another simulator: a prefix of its own).
        phases, extra = _run_phases(
            "first_scan",
            spec,
            clock_path,
            [tenant],
            users,
            [("new", [{"name": "new", "at": t0.isoformat(), "max_executions": sizes.first_scan_max_executions}])],
            storage,
            1,
            True,
            truth,
        )
        baseline_phases, baseline_extra = _run_phases(
            "first_scan_baseline",
            spec,
            clock_path,
            [tenant],
            users,
            [
                (
                    "baseline",
                    [
                        {
                            "name": "baseline",
                            "at": t0.isoformat(),
                            "max_executions": sizes.first_scan_baseline_executions,
                        }
                    ],
                )
            ],
            storage,
            1,
            False,
        )
    new, baseline = phases["new"], baseline_phases["baseline"]
    truth_now = extra.get("ground_truth", {})
    found = next(iter(new.findings.values()), {})
    mismatched = sorted(check for check in truth_now if sorted(found.get(check, [])) != sorted(truth_now[check]))
    longest = max((float(e["virtual_s"]) for e in new.executions), default=0.0)
    # The baseline is measured for a bounded number of executions and extrapolated from its
    # sign-in pages per execution to the pages the whole window holds.
    enabled = users - users // 100  # generate_tenant disables 1 %
    expected_rows = enabled * hours * (sizes.interactive_per_user_hour + sizes.non_interactive_per_user_hour)
    baseline_pages = [int(e["pages"]) for e in baseline.executions]
    per_execution = max(1, baseline_pages[0]) if baseline_pages else 1
    baseline_needed = derived_executions(expected_rows, per_execution)
    finished = new.unfinished == 0
    baseline_minutes = [f"{float(execution['virtual_s']) / 60:,.1f}" for execution in baseline.executions]
    metrics = [
        Metric(
            f"first scan of a {users:,}-user tenant: executions needed (production reads)",
            len(new.executions),
            "executions",
            "completes",
            finished and not mismatched,
            f"{len(new.executions)} execution(s), the longest {longest / 60:,.1f} min of virtual time (host.json: "
            f"{FUNCTION_TIMEOUT_S // 60} min); {'complete' if finished else 'NOT complete'}; findings "
            + (
                "identical to the ground truth of one complete read"
                if not mismatched
                else f"differing from the ground truth in {', '.join(mismatched)}"
            )
            + f" ({json.dumps(new.finding_counts)}); {_describe(new)}",
            clock="virtual",
        ),
        Metric(
            f"first scan of a {users:,}-user tenant: executions needed (baseline, full reads)",
            baseline_needed,
            "executions",
            "context",
            None,
            f"derived, not run to the end: {len(baseline.executions)} execution(s) measured "
            f"({', '.join(str(p) for p in baseline_pages)} sign-in pages, "
            f"{', '.join(baseline_minutes)} min virtual each); "
            f"the window holds ~{expected_rows:,.0f} sign-ins (~{expected_rows / 1000:,.0f} pages of 1,000), so "
            f"~{baseline_needed} executions at {per_execution} pages each; {_describe(baseline)}",
            clock="virtual",
        ),
        _rss_metric(f"first scan of a {users:,}-user tenant", _merge_rss(extra, baseline_extra), (new, baseline)),
    ]
    raw = {
        "phases": {"new": new.as_json(), "baseline": baseline.as_json()},
        "mismatched_checks": mismatched,
        "ground_truth_counts": {check: len(subjects) for check, subjects in truth_now.items()},
        "baseline_executions_derived": baseline_needed,
        "peak_rss_mb": _merge_rss(extra, baseline_extra)["peak_rss_mb"],
    }
    return metrics, raw


def derived_executions(sign_ins: float, pages_per_execution: int, page_size: int = 1000) -> int:
    """Executions a full read of `sign_ins` needs at the measured pages per execution (Graph's
    sign-in pages hold up to `page_size`; every page but each stream's last is full)."""
    if pages_per_execution < 1:
        raise ValueError("an execution reads at least one page")
    return max(1, math.ceil(math.ceil(sign_ins / page_size) / pages_per_execution))


def _merge_rss(*extras: Mapping[str, Any]) -> dict[str, Any]:
    merged: dict[str, float] = {}
    for extra in extras:
        for plan, rss in extra["peak_rss_mb"].items():
            merged[plan] = max(merged.get(plan, 0.0), rss)
    return {"peak_rss_mb": merged}


def run_fleet(sizes: BenchSizes, storage: str, progress: Progress) -> tuple[list[Any], dict[str, Any]]:
    from testbed.bench.runner import Metric, tenant_id

    count, users = sizes.fleet_tenants, sizes.fleet_users
    tenants = [tenant_id(20_000 + n) for n in range(count)]
    t0 = minute(datetime.now(UTC))
    log_hours = sizes.overlap_hours + 2 * STEADY_GAP.total_seconds() / 3600
    progress(f"fleet: {count:,} tenants x {users:,} users, steady state (virtual time)")
    with tempfile.TemporaryDirectory(prefix="partnerguard-clock-") as workdir:
        clock_path = _clock_file(workdir)
        # One tenant in ten signs in like the non-compliant tenant; tenants of a kind share their
        # users and generated log (the simulator's memory), not their ids.
        spec = SimulatorSpec(
            [
                TenantSpec(
                    tenant,
                    users,
                    seed=41,
                    sign_in_log=SignInLogSpec(
                        t0.isoformat(), log_hours, "non_compliant" if index % 10 == 0 else "compliant", seed=41
                    ),
                )
                for index, tenant in enumerate(tenants)
            ],
            latency_s=sizes.latency_s,
            enforce_limits=True,
            clock_path=str(clock_path),
        )
        # Two rounds, not four: the log holds the 2.25 h a steady-state scan reads, so the
        # baseline's round (full reads, the first over the log) sends exactly the requests of its
        # steady state, and leaves the state (full streams, their measured density) the
        # production round then reads from, 15 minutes later, as its steady state.
        phases, extra = _run_phases(
            "fleet",
            spec,
            clock_path,
            tenants,
            users,
            [
                ("baseline", [{"name": "baseline", "at": (t0 - STEADY_GAP).isoformat()}]),
                ("new", [{"name": "new", "at": t0.isoformat()}]),
            ],
            storage,
            sizes.scan_concurrency,
            False,
        )
    new, baseline = phases["new"], phases["baseline"]
    ratio = new.virtual_s / new.bound_s if new.bound_s else 0.0
    label = f"{count:,} tenants × {users:,} users, steady state"
    metrics = [
        Metric(
            f"{label}: round time",
            new.virtual_s,
            "s",
            "< 900 s",
            new.virtual_s < 900,
            f"production reads: {_describe(new)}, {ratio:.2f}× the cross-tenant bound; baseline (full reads): "
            f"{_describe(baseline)}; {sizes.scan_concurrency} scans at once in one process; statuses "
            f"{json.dumps(new.statuses)}",
            clock="virtual",
        ),
        _rss_metric(label, extra, (new, baseline)),
    ]
    raw = {"phases": {name: figures.as_json() for name, figures in phases.items()}, **extra}
    return metrics, raw

"""Runs the benchmark cases and turns their raw figures into the metrics of docs/performance.md."""

from __future__ import annotations

import functools
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from testbed.azurite import AzuriteProcess
from testbed.bench.bounds import lower_bound
from testbed.bench.cases import RESULT_MARKER
from testbed.bench.sizes import BenchSizes
from testbed.simulator.process import NeighbourSpec, SignInVolume, SimulatorProcess, SimulatorSpec, TenantSpec

REPO_ROOT = Path(__file__).resolve().parents[2]
Progress = Callable[[str], None]


@dataclass(frozen=True)
class Metric:
    name: str
    measured: float
    unit: str
    target: str
    # True/False against the target; None for figures given for context only.
    met: bool | None
    detail: str = ""
    # The clock of the case that measured it: "wall" (real time on this machine) or "virtual"
    # (the shared virtual clock of testbed/bench/virtual_time.py: real time plus the waits skipped).
    clock: str = "wall"


@dataclass
class BenchResults:
    sizes: BenchSizes
    machine: dict[str, str]
    started: str
    metrics: list[Metric] = field(default_factory=list)
    raw: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0
    # Real minutes each case took (the whole `make bench` must stay well under 45 minutes).
    case_minutes: dict[str, float] = field(default_factory=dict)


def tenant_id(number: int) -> str:
    return f"b0000000-0000-4000-8000-{number:012d}"


def run_case(name: str, params: Mapping[str, Any], timeout_s: float = 1800.0) -> dict[str, Any]:
    """Run one case in a fresh interpreter and return what it printed after RESULT_MARKER."""
    completed = subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", "testbed.bench.cases", name],
        input=json.dumps(params),
        stdout=subprocess.PIPE,
        # PARTNERGUARD_BENCH_SKIPS=1 (testbed/bench/virtual_time.py): the case's stderr is shown.
        stderr=None if os.environ.get("PARTNERGUARD_BENCH_SKIPS") == "1" else subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        timeout=timeout_s,
        check=False,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if completed.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark case {name} failed ({completed.returncode}): {(completed.stderr or '')[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1][len(RESULT_MARKER) :])
    return result


def _read_file(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError:
        return ""


def machine() -> dict[str, str]:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in _read_file("/proc/cpuinfo").splitlines() if "model name" in line),
        platform.processor() or "unknown",
    )
    memory_kb = next(
        (int(line.split()[1]) for line in _read_file("/proc/meminfo").splitlines() if line.startswith("MemTotal")), 0
    )
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return {
        "cpu": cpu,
        "cores": str(cores),
        "memory": f"{memory_kb / 1024 / 1024:.1f} GiB",
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_at_start": " / ".join(f"{value:.2f}" for value in load),
    }


@contextmanager
def _azurite(connection_string: str | None) -> Iterator[str]:
    if connection_string is not None:
        yield connection_string
        return
    with tempfile.TemporaryDirectory(prefix="partnerguard-bench-") as workdir, AzuriteProcess(Path(workdir)) as azurite:
        yield azurite.connection_string


def _prefix() -> str:
    return "bench" + datetime.now(UTC).strftime("%H%M%S")


def _share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def run_big_tenant(sizes: BenchSizes, storage: str, progress: Progress) -> tuple[list[Metric], dict[str, Any]]:
    tenant = tenant_id(1)
    spec = SimulatorSpec([TenantSpec(tenant, sizes.big_tenant_users, seed=7)], enforce_limits=False)
    progress(f"big tenant: generating {sizes.big_tenant_users:,} users")
    with SimulatorProcess(spec) as simulator:
        progress("big tenant: scanning (limits off), then parsing sample pages both ways")
        figures = run_case(
            "big_tenant",
            {
                "environment": {**simulator.environment, "PARTNERGUARD_STORAGE": storage},
                "prefix": _prefix(),
                "tenant_id": tenant,
                "sample_pages": sizes.model_sample_pages,
            },
        )
    json_rate = _share(figures["sample_users"], figures["json_s"])
    model_rate = _share(figures["model_users"], figures["model_s"])
    ratio = _share(json_rate, model_rate)
    metrics = [
        Metric(
            f"{figures['users']:,}-user tenant: users/s evaluated, plain JSON vs msgraph-sdk models (same pages)",
            ratio,
            "×",
            "≥ 50×",
            ratio >= 50,
            f"{json_rate:,.0f} vs {model_rate:,.0f} users/s over the same {figures['sample_pages']} pages "
            f"({figures['sample_users']:,} users and their registration rows): parse, build, evaluate every check",
        ),
        Metric(
            f"{figures['users']:,}-user tenant: peak RSS of the whole scan",
            figures["peak_rss_mb"],
            "MB",
            "< 400 MB",
            figures["peak_rss_mb"] < 400,
            "collect, evaluate and persist in one process, Graph's limits off",
        ),
        Metric(
            f"{figures['users']:,}-user tenant: users/s end to end",
            _share(figures["users"], figures["scan_s"]),
            "users/s",
            "context",
            None,
            f"the whole scan in {figures['scan_s']:.1f} s over loopback HTTPS (limits off), "
            f"storage included; status {figures['status']}, {figures['registration_findings']} "
            "mfa.registration findings",
        ),
    ]
    return metrics, figures


def _sign_ins(sizes: BenchSizes, now: datetime) -> SignInVolume:
    return SignInVolume(
        now.isoformat(),
        sizes.signin_hours,
        sizes.interactive_per_user_hour,
        sizes.non_interactive_per_user_hour,
    )


def _limited(
    name: str,
    spec: SimulatorSpec,
    tenants: list[str],
    users: int,
    sizes: BenchSizes,
    storage: str,
    concurrency: int,
) -> tuple[dict[str, Any], Mapping[str, Any]]:
    with SimulatorProcess(spec) as simulator:
        figures = run_case(
            "limited_scan",
            {
                "environment": {**simulator.environment, "PARTNERGUARD_STORAGE": storage},
                "prefix": _prefix(),
                "tenant_ids": tenants,
                "signin_hours": sizes.signin_hours,
                "concurrency": concurrency,
            },
        )
        stats = simulator.stats()
    bound = lower_bound(stats["admitted_units"], dict.fromkeys(tenants, users), spec.latency_s)
    figures.update(
        {
            "bound_s": bound.seconds,
            "binding": bound.binding,
            "requests": stats["requests"],
            "throttled": stats["throttled"],
            "requests_by_class": stats["requests_by_class"],
            "throttled_by_class": stats["throttled_by_class"],
            "neighbours": stats["neighbours"],
            "simulator_cpu_s": stats.get("cpu_s"),
            "case": name,
        }
    )
    return figures, stats


def run_one_tenant(sizes: BenchSizes, storage: str, progress: Progress) -> tuple[list[Metric], dict[str, Any]]:
    tenant = tenant_id(2)
    now = datetime.now(UTC)
    spec = SimulatorSpec(
        [TenantSpec(tenant, sizes.limited_tenant_users, seed=11, role="partner", sign_ins=_sign_ins(sizes, now))],
        latency_s=sizes.latency_s,
        enforce_limits=True,
        noisy_neighbours=(NeighbourSpec(tenant, sizes.neighbour_rate_per_s),),
    )
    progress(f"one tenant: {sizes.limited_tenant_users:,} users at Graph's limits, {sizes.latency_s * 1000:g} ms")
    figures, _ = _limited("one_tenant", spec, [tenant], sizes.limited_tenant_users, sizes, storage, 1)
    ratio = _share(figures["wall_s"], figures["bound_s"])
    throttled_share = _share(figures["throttled"], figures["requests"])
    collisions = figures["throttled_by_class"].get("conditional-access", 0)
    own = figures["throttled"] - collisions
    metrics = [
        Metric(
            "one tenant at Graph's limits: wall time / lower bound",
            ratio,
            "×",
            "≤ 1.25×",
            ratio <= 1.25,
            f"{figures['wall_s']:.1f} s against {figures['bound_s']:.1f} s ({figures['binding']}); "
            f"CPU time: {figures['cpu_s']:.0f} s in the scanning process",
        ),
        Metric(
            "one tenant at Graph's limits: requests answered 429",
            throttled_share * 100,
            "%",
            "< 1 %",
            throttled_share < 0.01,
            f"{figures['throttled']} of {figures['requests']} requests "
            f"(by class: {json.dumps(figures['throttled_by_class'])}): {own} caused by PartnerGuard's own "
            f"pacing (reports, directory), {collisions} Conditional Access read(s) meeting the other app's "
            "use of the tenant's shared one-per-second budget, which no client can see (Graph answers "
            "those without Retry-After; the back-off retried them). The other app's requests: "
            f"{json.dumps(figures['neighbours'])}",
        ),
    ]
    return metrics, figures


def run_many_tenants(sizes: BenchSizes, storage: str, progress: Progress) -> tuple[list[Metric], dict[str, Any]]:
    now = datetime.now(UTC)
    tenants = [tenant_id(1000 + n) for n in range(sizes.tenants)]
    volume = _sign_ins(sizes, now)
    spec = SimulatorSpec(
        [TenantSpec(t, sizes.users_per_tenant, seed=5, sign_ins=volume) for t in tenants],
        latency_s=sizes.latency_s,
        enforce_limits=True,
    )
    progress(f"many tenants: {sizes.tenants} x {sizes.users_per_tenant:,} users at Graph's limits")
    figures, _ = _limited("many_tenants", spec, tenants, sizes.users_per_tenant, sizes, storage, sizes.scan_concurrency)
    ratio = _share(figures["wall_s"], figures["bound_s"])
    throttled_share = _share(figures["throttled"], figures["requests"])
    metrics = [
        Metric(
            f"{sizes.tenants} tenants × {sizes.users_per_tenant:,} users: wall time / cross-tenant bound",
            ratio,
            "×",
            "≤ 1.5×",
            ratio <= 1.5,
            f"{figures['wall_s']:.1f} s against {figures['bound_s']:.1f} s ({figures['binding']}); "
            f"{sizes.scan_concurrency} scans at once in one process; {figures['throttled']} of "
            f"{figures['requests']} requests answered 429 ({throttled_share * 100:.2f} %); CPU time: "
            f"{figures['cpu_s']:.0f} s in the scanning process, {figures['simulator_cpu_s'] or 0:.0f} s in the "
            f"simulator, on {os.cpu_count()} cores",
        ),
    ]
    return metrics, figures


def run_storage(sizes: BenchSizes, storage: str, progress: Progress) -> tuple[list[Metric], dict[str, Any]]:
    progress(f"storage: {sizes.findings:,} findings batched, {sizes.one_by_one_findings:,} one by one")
    figures = run_case(
        "storage",
        {
            "connection_string": storage,
            "prefix": _prefix(),
            "findings": sizes.findings,
            "one_by_one_findings": sizes.one_by_one_findings,
        },
    )
    batched_rate = _share(figures["findings"], figures["batched_s"])
    one_by_one_rate = _share(figures["sample"], figures["one_by_one_sample_s"])
    sample_batched_rate = _share(figures["sample"], figures["batched_sample_s"])
    # Like for like: the same findings, each way, on fresh tables in the same run.
    ratio = _share(sample_batched_rate, one_by_one_rate)
    # Two entities per finding (run finding and lifecycle row). Batched, the emulator's own work
    # per entity is nearly all there is; one by one adds a request per entity.
    entities = 2 * figures["sample"]
    engine_ms = _share(figures["batched_sample_s"], entities) * 1000
    request_ms = _share(figures["one_by_one_sample_s"] - figures["batched_sample_s"], entities) * 1000
    metrics = [
        Metric(
            f"{figures['sample']:,} findings persisted: batched vs one by one",
            ratio,
            "×",
            "≥ 10×",
            ratio >= 10,
            f"{sample_batched_rate:,.0f} vs {one_by_one_rate:,.0f} findings/s, the same findings written each "
            f"way to fresh tables. Per entity, Azurite's table engine takes {engine_ms:.2f} ms however it is "
            f"sent, and a request of its own adds {request_ms:.2f} ms: batching saves the requests, not the "
            "engine's work, so against the emulator no client can do better than "
            f"({engine_ms:.2f} + {request_ms:.2f}) / {engine_ms:.2f} = "
            f"{_share(engine_ms + request_ms, engine_ms):.1f}×",
        ),
        Metric(
            f"{figures['findings']:,} findings persisted in batches: findings/s",
            batched_rate,
            "findings/s",
            "context",
            None,
            f"{figures['batched_s']:.1f} s for {figures['findings']:,} findings ({2 * figures['findings']:,} rows "
            f"in {2 * figures['findings'] // 100:,} transactions of one partition each); slower per finding "
            "than the sample because the emulator's inserts slow down as its tables grow",
        ),
    ]
    return metrics, figures


def run_startup(sizes: BenchSizes, progress: Progress) -> tuple[list[Metric], dict[str, Any]]:
    progress("startup: import function_app")
    runs = [run_case("startup", {}) for _ in range(max(1, sizes.import_runs))]
    import_s = statistics.median(run["import_s"] for run in runs)
    rss = statistics.median(run["peak_rss_mb"] for run in runs)
    metrics = [
        Metric(
            "`import function_app`: time",
            import_s,
            "s",
            "< 1 s",
            import_s < 1,
            f"median of {len(runs)} fresh interpreters",
        ),
        Metric(
            "`import function_app`: peak RSS",
            rss,
            "MB",
            "< 150 MB",
            rss < 150,
            f"the interpreter alone: {statistics.median(run['interpreter_rss_mb'] for run in runs):.0f} MB",
        ),
    ]
    return metrics, {"runs": runs}


CaseRun = Callable[[BenchSizes, str, Progress], tuple[list[Metric], dict[str, Any]]]


def _cases() -> dict[str, CaseRun]:
    """Every case that needs storage, by name, in the order `make bench` runs them."""
    from testbed.bench.virtual_runner import run_first_scan, run_fleet, run_steady

    return {
        "big_tenant": run_big_tenant,
        "one_tenant": run_one_tenant,
        "many_tenants": run_many_tenants,
        "steady_compliant": functools.partial(run_steady, profile="compliant"),
        "steady_non_compliant": functools.partial(run_steady, profile="non_compliant"),
        "first_scan": run_first_scan,
        "fleet": run_fleet,
        "storage": run_storage,
    }


CASE_NAMES = (*_cases(), "startup")


def run_bench(
    sizes: BenchSizes,
    *,
    storage: str | None = None,
    progress: Progress = print,
    only: Sequence[str] | None = None,
) -> BenchResults:
    """Every case (or those named in `only`), in turn, with the time each took; `storage`: an
    Azurite connection string to use instead of starting one."""
    began = time.monotonic()
    results = BenchResults(sizes, machine(), datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"))
    wanted = set(CASE_NAMES if only is None else only)
    unknown = wanted - set(CASE_NAMES)
    if unknown:
        raise ValueError(f"no such case: {', '.join(sorted(unknown))} (cases: {', '.join(CASE_NAMES)})")
    with _azurite(storage) as connection:
        for name, run in _cases().items():
            if name not in wanted:
                continue
            case_began = time.monotonic()
            try:
                metrics, figures = run(sizes, connection, progress)
            except Exception as error:  # one failed case must not lose the others' figures
                progress(f"case {name} FAILED: {error}")
                metrics = [Metric(f"case {name}", 0.0, "", "runs", False, f"failed: {str(error)[-1500:]}")]
                figures = {"error": str(error)[-3000:]}
            results.metrics.extend(metrics)
            results.raw[name] = figures
            results.case_minutes[name] = (time.monotonic() - case_began) / 60
            for metric in metrics:
                progress(f"{metric.name}: {metric.measured:,.2f} {metric.unit} (target {metric.target})")
    if "startup" in wanted:
        metrics, figures = run_startup(sizes, progress)
        results.metrics.extend(metrics)
        results.raw["startup"] = figures
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    results.machine["load_at_end"] = " / ".join(f"{value:.2f}" for value in load)
    results.duration_s = time.monotonic() - began
    return results

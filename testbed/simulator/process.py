"""The tenant simulator in a process of its own, for measurements.

In-process, the simulator's threads would share the interpreter lock and the memory of the
process being measured: a benchmark would count Graph's work as PartnerGuard's, and a
100,000-user tenant's scenario in PartnerGuard's peak RSS. `SimulatorProcess` starts
`python -m testbed.simulator.process`, which builds the tenants a `SimulatorSpec` describes
(`generate_tenant`, plus realistic sign-ins) and serves them; the parent talks to it over the
child's stdin/stdout, one JSON line per message:

- parent → child, first line: the spec; child → parent: `{"environment": {...}}` once serving;
- then `{"command": "stats"}` → counts of the Graph requests served, by throttling class and
  status (`$batch` sub-requests counted one by one, as Graph's limits count them), optionally
  only those answered between `since` and `until` (`time.time()` seconds: one phase of a case);
  `{"command": "reset"}` → forget the requests and throttling windows;
  `{"command": "ground_truth", "tenant_id", "now", "window_hours"}` → the subjects a correct scan
  reports for the sign-in rules and mfa.registration (the oracle, `ground_truth.py`, over the
  tenant's generated sign-in log); end of input → stop.

A spec may name a `clock_path`: the file of the benchmark's shared virtual clock
(`shared_clock.py`), which Graph's throttling windows then follow; and per tenant a
`sign_in_log`: sign-ins generated on demand (`sign_in_log.py`) instead of listed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

from testbed.simulator.generate import (
    INTERACTIVE_PER_USER_HOUR,
    NON_INTERACTIVE_PER_USER_HOUR,
    generate_sign_ins,
    generate_tenant,
    make_subscribed_skus,
)
from testbed.simulator.ground_truth import LEGACY_AUTH_SIGN_INS, PASSWORD_GRANT, SINGLE_FACTOR_SIGN_INS
from testbed.simulator.neighbours import NoisyNeighbour
from testbed.simulator.recording import RequestRecord
from testbed.simulator.scenario import JsonObject, TenantScenario
from testbed.simulator.server import TenantSimulator
from testbed.simulator.shared_clock import SharedClock
from testbed.simulator.sign_in_log import PROFILES, LazySignInLog, sign_in_subjects
from testbed.simulator.throttling import ApiClass, resource_units

REPO_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SignInVolume:
    """`hours` of sign-ins before `now` (ISO 8601), at per-user hourly rates."""

    now: str
    hours: float
    interactive_per_user_hour: float = INTERACTIVE_PER_USER_HOUR
    non_interactive_per_user_hour: float = NON_INTERACTIVE_PER_USER_HOUR


@dataclass(frozen=True)
class SignInLogSpec:
    """Sign-ins generated on demand from `end - hours` to `end` (ISO 8601), shaped by one of
    `sign_in_log.PROFILES` ("compliant", "non_compliant")."""

    end: str
    hours: float
    profile: str = "compliant"
    seed: int = 1


@dataclass(frozen=True)
class TenantSpec:
    tenant_id: str
    users: int
    seed: int = 1
    role: str = "customer"
    display_name: str | None = None
    sign_ins: SignInVolume | None = None
    sign_in_log: SignInLogSpec | None = None
    # generate_tenant's populations; None: its defaults (2 % not MFA capable, 2 % guests).
    incapable: int | None = None
    guests: int | None = None


@dataclass(frozen=True)
class NeighbourSpec:
    tenant_id: str
    rate_per_s: float


@dataclass(frozen=True)
class SimulatorSpec:
    tenants: Sequence[TenantSpec]
    latency_s: float = 0.0
    enforce_limits: bool = True
    noisy_neighbours: Sequence[NeighbourSpec] = field(default_factory=tuple)
    clock_path: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SimulatorSpec:
        raw = json.loads(text)
        tenants = [
            TenantSpec(
                **{
                    **t,
                    "sign_ins": SignInVolume(**t["sign_ins"]) if t.get("sign_ins") else None,
                    "sign_in_log": SignInLogSpec(**t["sign_in_log"]) if t.get("sign_in_log") else None,
                }
            )
            for t in raw["tenants"]
        ]
        neighbours = [NeighbourSpec(**n) for n in raw.get("noisy_neighbours", ())]
        return cls(
            tenants,
            raw.get("latency_s", 0.0),
            raw.get("enforce_limits", True),
            tuple(neighbours),
            raw.get("clock_path"),
        )


def build_simulator(spec: SimulatorSpec) -> TenantSimulator:
    """The simulator a spec describes. Tenants of the same size and seed have the same users
    (`generate_tenant` is deterministic), so they share one directory (`_same_directory`), one
    list of sign-ins and one generated log: the simulator only reads them, and 1,000 tenants'
    copies would otherwise take gigabytes and minutes to build."""
    scenarios = []
    shared_sign_ins: dict[tuple[int, int, SignInVolume], list[JsonObject]] = {}
    logs: dict[str, LazySignInLog] = {}
    shared_logs: dict[tuple[Any, ...], LazySignInLog] = {}
    shapes: dict[tuple[Any, ...], TenantScenario] = {}
    for tenant in spec.tenants:
        role: Literal["partner", "customer"] = "partner" if tenant.role == "partner" else "customer"
        shape = (tenant.users, tenant.seed, role, tenant.display_name, tenant.incapable, tenant.guests)
        if shape in shapes:
            scenario = _same_directory(shapes[shape], tenant.tenant_id)
        else:
            scenario = shapes[shape] = generate_tenant(
                tenant.tenant_id,
                tenant.users,
                tenant.seed,
                role=role,
                display_name=tenant.display_name,
                incapable=tenant.incapable,
                guests=tenant.guests,
            )
        if tenant.sign_in_log is not None:
            # Same users (same size, seed, populations), same log: generated minutes are shared.
            log_key = (tenant.users, tenant.seed, tenant.incapable, tenant.guests, tenant.sign_in_log)
            if log_key not in shared_logs:
                end = datetime.fromisoformat(tenant.sign_in_log.end)
                shared_logs[log_key] = LazySignInLog(
                    scenario.users,
                    scenario.tenant_id,
                    end - timedelta(hours=tenant.sign_in_log.hours),
                    end,
                    PROFILES[tenant.sign_in_log.profile],
                    seed=tenant.sign_in_log.seed,
                )
            logs[scenario.tenant_id] = shared_logs[log_key]
        if tenant.sign_ins is not None:
            key = (tenant.users, tenant.seed, tenant.sign_ins)
            if key in shared_sign_ins:
                scenario.sign_ins = shared_sign_ins[key]
                scenarios.append(scenario)
                continue
            shared_sign_ins[key] = scenario.sign_ins
            generate_sign_ins(
                scenario,
                datetime.fromisoformat(tenant.sign_ins.now),
                tenant.sign_ins.hours,
                interactive_per_user_hour=tenant.sign_ins.interactive_per_user_hour,
                non_interactive_per_user_hour=tenant.sign_ins.non_interactive_per_user_hour,
                seed=tenant.seed,
            )
        scenarios.append(scenario)
    neighbours = [NoisyNeighbour(n.tenant_id, n.rate_per_s) for n in spec.noisy_neighbours]
    clock = SharedClock(spec.clock_path).now if spec.clock_path else time.monotonic
    return TenantSimulator(
        scenarios,
        enforce_limits=spec.enforce_limits,
        latency_s=spec.latency_s,
        noisy_neighbours=neighbours,
        clock=clock,
        sign_in_logs=logs,
    )


def _same_directory(base: TenantScenario, tenant_id: str) -> TenantScenario:
    """Another tenant with `base`'s directory (generate_tenant is deterministic: same size and
    seed, same users). Only what names the tenant is its own; the rest is shared, read-only, so
    a thousand tenants cost the simulator one tenant's memory and generation time."""
    tenant_id = tenant_id.lower()
    organization = {**base.organization, "id": tenant_id}
    return dataclasses.replace(
        base,
        tenant_id=tenant_id,
        organization=organization,
        subscribed_skus=make_subscribed_skus(tenant_id, base.licences, len(base.users)),
        sign_ins=[],
    )


def _units(record: RequestRecord) -> int:
    """What the request cost in its class: resource units for directory reads, else 1."""
    if record.api_class != ApiClass.DIRECTORY.value:
        return 1
    path = record.path.split("/", 2)[2] if record.path.count("/") >= 2 else record.path  # drop "/v1.0"
    return resource_units("/" + path, record.query)


def request_stats(records: Sequence[RequestRecord], neighbours: Sequence[NoisyNeighbour] = ()) -> dict[str, Any]:
    """Graph requests by throttling class and status; `$batch` envelopes and sign-in (token)
    requests apart, since Graph's limits count the sub-requests, not the envelope. `admitted`
    holds, per class and tenant, the units of the requests Graph let through (a 429 costs
    nothing), which is what its limits bound. `reports_by_path`: the reports requests per path
    (the registration report, its one-user rows, sign-ins)."""
    graph = [r for r in records if r.api_class is not None]
    reports = Counter(
        _report_path(r.path) for r in graph if r.api_class == ApiClass.IDENTITY_REPORTS.value and r.status != 429
    )
    by_class = Counter(str(r.api_class) for r in graph)
    throttled = Counter(str(r.api_class) for r in graph if r.status == 429)
    admitted: dict[str, dict[str, int]] = {}
    for record in graph:
        if record.status != 429:
            per_tenant = admitted.setdefault(str(record.api_class), {})
            tenant = record.tenant_id or ""
            per_tenant[tenant] = per_tenant.get(tenant, 0) + _units(record)
    times = [r.at for r in graph]
    return {
        "requests": len(graph),
        "throttled": sum(throttled.values()),
        "requests_by_class": dict(by_class),
        "throttled_by_class": dict(throttled),
        "reports_by_path": dict(reports),
        "admitted_units": admitted,
        "batches": sum(1 for r in records if r.api_class is None and r.path.endswith("/$batch")),
        "first_request": min(times) if times else None,
        "last_request": max(times) if times else None,
        "neighbours": [{"tenant_id": n.tenant_id, "admitted": n.admitted, "rejected": n.rejected} for n in neighbours],
    }


def _report_path(path: str) -> str:
    """A reports path without its version and per-user id: `signIns`, `userRegistrationDetails`,
    `userRegistrationDetails/{id}`, ..."""
    parts = [part for part in path.split("/") if part][1:]
    if len(parts) >= 4 and parts[-2] == "userRegistrationDetails":
        return "userRegistrationDetails/{id}"
    return parts[-1] if parts else path


def ground_truth(
    sim: TenantSimulator, logs: dict[str, LazySignInLog], tenant_id: str, now: datetime, window_hours: int
) -> dict[str, list[str]]:
    """What a correct scan reports for the sign-in rules and mfa.registration (guests excluded,
    the default)."""
    scenario = sim.tenant(tenant_id)
    log = logs.get(tenant_id.lower())
    answer = {"mfa.registration": sorted(scenario.expected_mfa_registration_subjects())}
    for rule in (LEGACY_AUTH_SIGN_INS, SINGLE_FACTOR_SIGN_INS, PASSWORD_GRANT):
        found = (
            sign_in_subjects(log, rule, now, window_hours)
            if log is not None
            else scenario.sign_in_subjects(rule, now, window_hours)
        )
        answer[rule] = sorted(found)
    return answer


def _serve(stdin: IO[str], stdout: IO[str]) -> int:
    spec = SimulatorSpec.from_json(stdin.readline())
    with build_simulator(spec) as sim:
        stdout.write(json.dumps({"environment": sim.environment()}) + "\n")
        stdout.flush()
        serving_since = time.process_time()  # building the tenants is not serving them
        for line in stdin:
            message = json.loads(line)
            command = message.get("command")
            if command == "stats":
                since, until = message.get("since"), message.get("until")
                records = [
                    r for r in sim.requests if (since is None or r.at >= since) and (until is None or r.at <= until)
                ]
                answer: dict[str, Any] = request_stats(records, sim.noisy_neighbours)
                # The simulator's CPU time since it started serving: Graph's share of the machine.
                answer["cpu_s"] = time.process_time() - serving_since
            elif command == "ground_truth":
                answer = ground_truth(
                    sim,
                    sim.sign_in_logs,
                    message["tenant_id"],
                    datetime.fromisoformat(message["now"]),
                    int(message["window_hours"]),
                )
            elif command == "reset":
                sim.clear_requests()
                sim.reset_throttling()
                answer = {"ok": True}
            else:
                answer = {"error": f"unknown command {command!r}"}
            stdout.write(json.dumps(answer) + "\n")
            stdout.flush()
    return 0


class SimulatorProcess:
    """A simulator serving `spec` in a child process. Use `with`."""

    def __init__(self, spec: SimulatorSpec, *, start_timeout_s: float = 600.0) -> None:
        self.spec = spec
        self.start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[str] | None = None
        self.environment: dict[str, str] = {}

    def start(self) -> SimulatorProcess:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "testbed.simulator.process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
            env=env,
        )
        answer = self._exchange(self.spec.to_json())
        if "environment" not in answer:
            raise RuntimeError(f"the simulator process did not start: {answer}")
        self.environment = dict(answer["environment"])
        return self

    def _exchange(self, line: str) -> Mapping[str, Any]:
        process = self._process
        if process is None or process.stdin is None or process.stdout is None:
            raise RuntimeError("the simulator process is not running")
        process.stdin.write(line + "\n")
        process.stdin.flush()
        reply = process.stdout.readline()
        if not reply:
            raise RuntimeError(f"the simulator process ended (exit code {process.poll()})")
        answer: Mapping[str, Any] = json.loads(reply)
        return answer

    def stats(self) -> Mapping[str, Any]:
        return self._exchange(json.dumps({"command": "stats"}))

    def phase_stats(self, since: float, until: float) -> Mapping[str, Any]:
        """The stats of the requests answered between two `time.time()` instants."""
        return self._exchange(json.dumps({"command": "stats", "since": since, "until": until}))

    def ground_truth(self, tenant_id: str, now: datetime, window_hours: int) -> Mapping[str, Any]:
        return self._exchange(
            json.dumps(
                {
                    "command": "ground_truth",
                    "tenant_id": tenant_id,
                    "now": now.isoformat(),
                    "window_hours": window_hours,
                }
            )
        )

    def reset(self) -> None:
        self._exchange(json.dumps({"command": "reset"}))

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(_serve(sys.stdin, sys.stdout))

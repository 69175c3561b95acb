"""docs/performance.md from a benchmark run: the figures, the targets, the machine, the method."""

from __future__ import annotations

import json

from testbed.bench.runner import BenchResults, Metric
from testbed.bench.virtual_runner import steady_log_hours
from testbed.simulator.throttling import GRAPH_LIMITS


def _value(metric: Metric) -> str:
    if metric.unit == "×":
        return f"{metric.measured:,.2f}×"
    if metric.unit == "%":
        return f"{metric.measured:.2f} %"
    if metric.unit == "s":
        return f"{metric.measured:.2f} s"
    return f"{metric.measured:,.0f} {metric.unit}"


def _verdict(metric: Metric) -> str:
    if metric.met is None:
        return "—"
    return "met" if metric.met else "**not met**"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(results: BenchResults, *, command: str = "make bench") -> str:
    sizes = results.sizes
    lines = [
        "# Performance",
        "",
        f"Written by `{command}` (`python -m testbed.bench`) on {results.started}, in "
        f"{results.duration_s / 60:.1f} minutes. Do not edit by hand: run it again. How PartnerGuard "
        "would scan 5,000 tenants is in [scaling.md](scaling.md).",
        "",
        "## Results",
        "",
        "Clock: *wall* figures are real time on this machine; *virtual* ones come from cases that "
        "run on the shared virtual clock (real time plus the waits for Graph's windows, skipped): "
        "see [Virtual time](#virtual-time).",
        "",
        "| measure | result | target | | clock |",
        "|---|---|---|---|---|",
    ]
    for metric in results.metrics:
        lines.append(
            f"| {_cell(metric.name)} | {_value(metric)} | {metric.target} | {_verdict(metric)} | {metric.clock} |"
        )
    unmet = [metric for metric in results.metrics if metric.met is False]
    lines += ["", "Details:", ""]
    lines += [f"- **{_cell(metric.name)}**: {_cell(metric.detail)}" for metric in results.metrics if metric.detail]
    if unmet:
        lines += [
            "",
            "Targets not met in this run: " + "; ".join(_cell(m.name) for m in unmet) + ". The details above give "
            "the figures behind each; docs/scaling.md discusses the limits involved.",
        ]
    lines += [
        "",
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        *(f"| {key.replace('_', ' ')} | {_cell(value)} |" for key, value in results.machine.items()),
        "",
        "The load averages show whether other work shared the machine during the run; every wall-time "
        "figure above is on it, simulator and Azurite included. Real minutes per case: "
        + ", ".join(f"{name} {minutes:.1f}" for name, minutes in results.case_minutes.items())
        + ".",
        "",
        "## How each figure is measured",
        "",
        "Every case runs in a fresh Python process (its peak RSS is its own), against the tenant "
        "simulator running in a process of its own (`testbed/simulator/process.py`: its CPU and "
        "memory are not PartnerGuard's) and a real Azurite. PartnerGuard runs unchanged: the real "
        "azure-identity sign-in, the msgraph-core transport with PartnerGuard's pacer, the checks, the "
        "Table Storage client.",
        "",
        f"- **Big tenant** ({sizes.big_tenant_users:,} users, Graph's limits off so that the figure is "
        "PartnerGuard's own speed): `Scanner.scan` end to end, then the first "
        f"{sizes.model_sample_pages} pages of `users` and of `userRegistrationDetails`, as the bytes "
        "Graph sent, are turned into users, registration rows and a full evaluation of every check two "
        "ways: PartnerGuard's (`json.loads` and two small types; the median of 11 passes) and "
        "msgraph-sdk's generated models (one pass) "
        "(kiota's `JsonParseNodeFactory`, `UserCollectionResponse`, "
        "`UserRegistrationDetailsCollectionResponse`). The models get only a sample of the pages: at "
        "their speed the whole tenant would take longer than the rest of the benchmark.",
        f"- **One tenant at Graph's limits**: {sizes.limited_tenant_users:,} users with Entra ID P1, "
        f"{sizes.latency_s * 1000:g} ms added to every request, a steady-state scan: the previous scan "
        f"left its sign-in watermarks {sizes.signin_hours - 2:g} h ago, so {sizes.signin_hours:g} h of "
        f"sign-ins are read (the 2 h overlap included) at {sizes.interactive_per_user_hour:g} interactive "
        f"and {sizes.non_interactive_per_user_hour:g} non-interactive sign-ins per user and hour. Another "
        f"app reads the tenant's Conditional Access policies {sizes.neighbour_rate_per_s:g} times a second "
        "on average (random instants), spending the budget PartnerGuard shares with it.",
        f"- **Many tenants**: {sizes.tenants} tenants of {sizes.users_per_tenant:,} users, the same "
        f"latency and sign-in volume, scanned by `Scanner.scan_many` with {sizes.scan_concurrency} scans "
        "at once in one process.",
        f"- **Storage**: `ScanStore.complete_run` with {sizes.findings:,} findings (run findings and "
        "lifecycle rows: two entities each, in entity-group transactions of up to 100); then "
        f"{sizes.one_by_one_findings:,} findings through the same code with every transaction sent as "
        "single-entity requests (one by one), and the same number batched, for a like-for-like rate; "
        "each on fresh tables. Azurite is the only Table Storage here, and its inserts get slower "
        "with every row a table already holds, so 100,000 findings (200,000 rows in one partition) "
        "would take it hours: the case is sized to what the emulator can hold, and the emulator's "
        "own per-entity work, which batching cannot save, weighs on both rates.",
        "- **Startup**: `import function_app` in a fresh interpreter: the time of the import and the "
        "peak RSS of the process.",
        "",
        *_virtual_section(results),
        "",
        "### The lower bound",
        "",
        "The simulator counts every request Graph would count (`$batch` sub-requests one by one) and "
        "the units Graph's limits charge (resource units for directory reads). The bound uses the "
        "simulator's own table of limits (`testbed/simulator/throttling.py`, from Microsoft's "
        "throttling page), never the client's pacing table:",
        "",
        "```",
        "bound = latency + max over limits, scopes of floor((n - 1) / L) * W",
        "```",
        "",
        "where a limit admits L units per W seconds within its scope (a tenant, or the whole app "
        "across tenants) and n is the number of units Graph admitted in that scope during the scan "
        "(requests answered 429 cost nothing). The first L units may arrive together and every further L "
        "need another window; the first request arrives one latency after the start. Sign-in, "
        "processing and storage are not in the bound, so it is a true lower bound. The limits:",
        "",
        "| class | scope | units | per |",
        "|---|---|---|---|",
        *(
            f"| {limit.api_class.value} | {limit.scope.value}"
            + (
                f" ({limit.min_users}–{limit.max_users if limit.max_users is not None else '∞'} users)"
                if limit.min_users or limit.max_users is not None
                else ""
            )
            + f" | {limit.requests:,} | {limit.window_s:g} s |"
            for limit in GRAPH_LIMITS
        ),
        "",
        "## Raw figures",
        "",
        "```json",
        json.dumps(results.raw, indent=1, sort_keys=True, default=str),
        "```",
        "",
    ]
    return "\n".join(lines)


def _virtual_section(results: BenchResults) -> list[str]:
    """How issue 16's cases are measured: virtual time, the generated sign-in log, the phases."""
    sizes = results.sizes
    first = results.raw.get("first_scan", {})
    return [
        "### Virtual time",
        "",
        "The cases of issue 16 (production reads, `ReadPlan()`, against today's full reads, "
        "`ReadPlan.full_reads()`, the baseline: the same code, the same run) would take hours of real "
        "time at Graph's limits: a first read of a 100,000-user tenant's week of sign-ins is ~22,000 "
        "pages at 5 requests per 10 s. They run on one virtual clock (`testbed/bench/virtual_time.py`): "
        "the case's asyncio event loop reads real monotonic time plus an offset, and when every task "
        "waits for a timer - none ready to run, no Graph request in flight (the pacer's count of "
        "requests sent and not yet answered, body included), no worker thread running (storage, "
        "sign-in) - it moves the offset to the earliest timer instead of sleeping. So PartnerGuard's "
        "pacer, its retry back-offs and the collection's deadline (host.json's 30-minute function "
        "timeout) run unchanged on virtual seconds, concurrent waits overlap as in real time (a "
        "discrete-event simulation, never a sum of sleeps), and CPU work, the simulator's answers "
        "and Azurite still take the real time they take: virtual time is never less than real time. "
        "The simulator stays in a process of its own (its CPU and memory are not PartnerGuard's: "
        "peak RSS and CPU time are the scanning process's); its throttling windows read the same "
        "clock, the offset being shared through a small memory-mapped file "
        "(`testbed/simulator/shared_clock.py`).",
        "",
        "**Sign-ins** are generated on demand (`testbed/simulator/sign_in_log.py`), never held: "
        f"{sizes.interactive_per_user_hour:g} interactive and {sizes.non_interactive_per_user_hour:g} "
        "non-interactive sign-ins per enabled user and hour, one-minute buckets whose counts follow "
        "from the rates exactly and whose rows come from a generator seeded by (seed, population, "
        "minute). A compliant tenant signs in with MFA through modern clients only; the non-compliant "
        "one has 2 % legacy sign-ins (Exchange ActiveSync with MFA, IMAP4, POP3, authenticated SMTP "
        "without, from 1 % of the users), 3 % single-factor sign-ins through modern clients (2 % of "
        "the users), 0.5 % failed legacy attempts (never findings), and 5 % of its users not MFA "
        "capable. Queries are answered newest first, `$filter`, `$top` and `$skiptoken` through the "
        "simulator's one filter pipeline, minute by minute; the generated log answers every query "
        "exactly as the same rows listed do (tests/test_simulator_sign_in_log.py). Ground truth (the "
        "oracle of `testbed/simulator/ground_truth.py`) is computed over the same generated rows.",
        "",
        "**Steady state** is reached, not assumed: the log holds "
        f"{steady_log_hours(sizes):g} h of sign-ins before the measured scan; a warm-up scan "
        "(full reads) leaves watermarks, aggregates and the registration roster, then a scan every 15 "
        "minutes: the baseline's, a production scan (which switches the sign-in streams from full to "
        "filtered reads where filtering is cheaper), and the measured production scan. Each scan "
        "re-reads the 2 h overlap. The stored aggregates hold only the log's hours, not a week's, which "
        "changes storage work, not Graph's. The compliant tenant's once-a-day scan (its roster a day "
        "old, so the whole registration report is read) is a last phase. Requests are attributed to "
        "phases by when the simulator answered them.",
        "",
        f"**First scan**: a non-compliant tenant whose log holds {sizes.first_scan_log_hours:g} h (the "
        "week less an hour, so that the minutes between executions cannot move a sign-in out of the "
        "window), 5 % of its users not MFA capable, 2 % legacy sign-ins from 50 accounts and 1 % "
        "single-factor ones from 100 (the same shares from fewer subjects than the steady-state "
        "tenant: the resumable read writes every aggregate a page touched after each page, and "
        "spread over 1 % and 2 % of the users that is about a million rows for Azurite, longer than "
        "this whole benchmark); each execution is one `Scanner.scan` bounded by the collection's deadline, and the "
        "next runs when the previous one says its sign-in read continues, as the scan worker's "
        "continuation message would. The production reads run to completion and their findings "
        "are compared with the ground truth of one complete read at the last execution's moment. The "
        f"baseline's full read is run for {sizes.first_scan_baseline_executions} execution(s) only "
        "(generating and parsing ~22 million sign-ins would take longer than the whole bench) and the "
        "executions it needs are derived from its measured sign-in pages per execution and the "
        "window's sign-ins" + (f" ({first.get('baseline_executions_derived')} executions)." if first else "."),
        "",
        f"**Fleet**: {sizes.fleet_tenants:,} tenants of {sizes.fleet_users:,} users (one in ten "
        "non-compliant), the baseline's round and the production round 15 minutes apart, "
        f"{sizes.scan_concurrency} scans at once in one process. The log holds the "
        f"{sizes.overlap_hours + 0.5:g} h the two rounds read, so the baseline's round (the first "
        "over the log) reads the same 2.25 h as its steady state would, and the production round "
        "follows it as a steady-state scan (15 minutes later, from the state the baseline left: "
        "for 1,000 users the production reads keep full sign-in streams, one page of registration "
        "rows either way). The round time is compared "
        "with the cross-tenant bound (the lower bound below) and the 15-minute target. CPU per scan is "
        "reported because the CPU may bind before Graph's limits do.",
    ]


def summary(results: BenchResults) -> str:
    """The results table as plain text, for the terminal."""
    width = max(len(metric.name) for metric in results.metrics)
    rows = [
        f"{metric.name.ljust(width)}  {_value(metric):>14}  {metric.target:>10}  {_verdict(metric).strip('*')}"
        for metric in results.metrics
    ]
    return "\n".join(rows)

"""docs/performance.md from a benchmark run: the figures, the targets, the machine, the method."""

from __future__ import annotations

import json

from testbed.bench.runner import BenchResults, Metric
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
        "| measure | result | target | |",
        "|---|---|---|---|",
    ]
    for metric in results.metrics:
        lines.append(f"| {_cell(metric.name)} | {_value(metric)} | {metric.target} | {_verdict(metric)} |")
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
        "The load averages show whether other work shared the machine during the run; every figure "
        "above is wall time on it, simulator and Azurite included.",
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


def summary(results: BenchResults) -> str:
    """The results table as plain text, for the terminal."""
    width = max(len(metric.name) for metric in results.metrics)
    rows = [
        f"{metric.name.ljust(width)}  {_value(metric):>14}  {metric.target:>10}  {_verdict(metric).strip('*')}"
        for metric in results.metrics
    ]
    return "\n".join(rows)

"""`python -m partnerguard` — the command line of SPEC §3 (a contract).

stdout carries only the document for machine formats; logs and progress go to stderr. Exit
codes: 3 a run failed, 1 a check failed (or not assessed with --strict), 0 otherwise, 2 usage or
configuration error; `--all` takes the worst over the tenants; `demo` exits 0 when it completes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from partnerguard.evaluate import failed_report
from partnerguard.logs import configure_logging, redact, register_secret
from partnerguard.model import Report, Status, TenantInfo
from partnerguard.render.json_document import render_json
from partnerguard.render.table import render_reports
from partnerguard.settings import ConfigError, Settings, is_guid
from partnerguard.text import safe_text

if TYPE_CHECKING:
    # Storage is imported where it is used, so that `--help` and usage errors stay fast.
    from partnerguard.render.history import TenantHistory
    from partnerguard.storage import ScanStore
    from partnerguard.storage.accepted_risks import ExceptionRecord, ExceptionStore

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_RUN_FAILED = 3
FORMATS = ("table", "json")
# scan and report: the machine formats json, csv and sarif, and the HTML report for people.
REPORT_FORMATS = ("table", "json", "html", "csv", "sarif")
# --output-dir: every file format of one run, side by side under one base name (as Maester and
# Prowler write a run's outputs into one folder); the table is for terminals, not files.
OUTPUT_DIR_FORMATS = ("json", "html", "csv", "sarif")

log = logging.getLogger("partnerguard")


class UsageError(Exception):
    """A usage error found after parsing (e.g. an output file that exists): one line, exit 2."""


def tenant_id(value: str) -> str:
    if not is_guid(value):
        raise argparse.ArgumentTypeError(f"a tenant id must be a GUID, got {value!r}")
    return value.lower()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m partnerguard",
        description="Checks Microsoft partner tenants for the partner security requirements.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    scan = commands.add_parser("scan", help="collect, evaluate, persist and alert, synchronously")
    target = scan.add_mutually_exclusive_group(required=True)
    target.add_argument("--tenant", type=tenant_id, help="the tenant id (GUID) to scan")
    target.add_argument("--all", action="store_true", help="scan every tenant in PARTNERGUARD_TENANTS")
    _output_options(scan)
    scan.add_argument("--no-alerts", action="store_true", help="do not deliver alerts for this scan")
    scan.add_argument("--strict", action="store_true", help="exit 1 when a check is not assessed")

    report = commands.add_parser("report", help="show the latest stored report, without calling Graph")
    report.add_argument("--tenant", type=tenant_id, required=True, help="the tenant id (GUID)")
    _output_options(report)
    report.add_argument("--strict", action="store_true", help="exit 1 when a check is not assessed")

    _exception_commands(commands)

    doctor = commands.add_parser(
        "doctor",
        help="can PartnerGuard see everything it must: consent, permissions, licence, GDAP, per tenant",
    )
    doctor.add_argument("--tenant", type=tenant_id, help="only this monitored tenant (GUID)")
    doctor.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")

    commands.add_parser("demo", help="scan the bundled simulated tenants on local parts; no Azure needed")

    config = commands.add_parser("config", help="settings as code: check a settings file (PARTNERGUARD_CONFIG)")
    config_actions = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    validate = config_actions.add_parser(
        "validate", help="check a settings file; one line per mistake with its line, exit 2 if any"
    )
    validate.add_argument("file", type=Path, metavar="FILE", help="the YAML settings file")
    return parser


_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def expiry_date(value: str) -> date:
    try:
        if _DATE_RE.fullmatch(value):
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {value!r}")


def _exception_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    exceptions = commands.add_parser(
        "exceptions", help="accepted risks: add, list, remove, export or import exceptions"
    )
    actions = exceptions.add_subparsers(dest="exceptions_command", required=True, metavar="ACTION")

    add = actions.add_parser("add", help="accept one finding's risk until a date; prints the exception id")
    add.add_argument("--tenant", type=tenant_id, required=True, help="the tenant id (GUID)")
    add.add_argument("--check", required=True, help="the check id, e.g. mfa.registration")
    add.add_argument("--subject", required=True, help="the finding's subject_id, exactly as reported")
    add.add_argument("--reason", required=True, help="why the risk is accepted")
    add.add_argument("--accepted-by", required=True, help="who accepted it (UPN or email)")
    add.add_argument(
        "--expires",
        type=expiry_date,
        required=True,
        help="the day (UTC) it stops covering, YYYY-MM-DD: tomorrow at the earliest, at most 365 days ahead",
    )

    listing = actions.add_parser("list", help="list exceptions (the valid ones unless --include-expired)")
    listing.add_argument("--tenant", type=tenant_id, help="only this tenant's exceptions")
    listing.add_argument("--include-expired", action="store_true", help="also list expired and removed exceptions")
    listing.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")

    remove = actions.add_parser("remove", help="end an exception now (it stays in the audit trail)")
    remove.add_argument("--id", required=True, help="the exception id")
    remove.add_argument("--by", required=True, help="who removes it (UPN or email)")
    remove.add_argument("--reason", required=True, help="why it is removed")

    export = actions.add_parser("export", help="write the valid exceptions as a YAML file that import reads")
    export.add_argument("--tenant", type=tenant_id, help="only this tenant's exceptions")
    export.add_argument("--output", type=Path, help="write to this file instead of stdout")

    importing = actions.add_parser(
        "import",
        help="create or update the exceptions a YAML file names (idempotent; others are left alone)",
    )
    importing.add_argument("file", type=Path, metavar="FILE", help="a file in the format export writes")
    importing.add_argument("--by", required=True, help="who imports it (UPN or email); recorded in the audit trail")


def _output_options(parser: argparse.ArgumentParser) -> None:
    # --format defaults to None so that `--output-dir` can tell an explicit --format from none;
    # main() sets the documented default, table, afterwards.
    parser.add_argument("--format", choices=REPORT_FORMATS, help="output format (default: table)")
    parser.add_argument("--output", type=Path, help="write the output to this file instead of stdout")
    parser.add_argument(
        "--output-dir",
        type=Path,
        metavar="DIR",
        help="write json, html, csv and sarif into DIR as partnerguard-<UTC time>.<ext> (created if "
        "missing; never overwrites); not with --format or --output",
    )


def check_output_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """--output-dir excludes --format and --output. argparse's exclusive groups cannot say "A
    excludes B and C while B and C combine", so this checks after parsing, with argparse's own
    error (usage on stderr, exit 2)."""
    if not hasattr(args, "output_dir"):
        return
    if args.output_dir is not None:
        for name, value in (("--format", args.format), ("--output", args.output)):
            if value is not None:
                parser.error(f"argument --output-dir: not allowed with argument {name}")
    elif args.format is None:
        args.format = "table"


def plan_output_dir(directory: Path, now: datetime) -> dict[str, Path]:
    """The file of each format under one base name, `partnerguard-<yyyymmddThhmmssZ>`, DIR created
    if missing. Checked before the scan runs, so a name already taken costs no scan; the files
    are still opened exclusively when written (write_output_dir)."""
    base = f"partnerguard-{now.astimezone(UTC):%Y%m%dT%H%M%SZ}"
    paths = {fmt: directory / f"{base}.{fmt}" for fmt in OUTPUT_DIR_FORMATS}
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot use --output-dir {directory}: {error.strerror or error}") from error
    taken = [str(path) for path in paths.values() if path.exists()]
    if taken:
        raise UsageError(f"not overwriting {', '.join(taken)}; choose another --output-dir or move the file")
    return paths


def write_output_dir(paths: dict[str, Path], reports: Sequence[Report], many: bool, store: ScanStore | None) -> None:
    """Each format to its planned file, opened exclusively ("x"): a file that appeared since the
    plan is never overwritten. Each path written goes to stderr; stdout stays empty."""
    for fmt, path in paths.items():
        text = render(reports, fmt, many=many, store=store)
        try:
            with path.open("x", encoding="utf-8", newline="") as file:
                file.write(text)
        except FileExistsError as error:
            raise UsageError(f"not overwriting {path}, which appeared during the run") from error
        print(f"wrote {path}", file=sys.stderr)


def exit_code(report: Report, strict: bool) -> int:
    statuses = {check.status for check in report.checks}
    if report.status == "failed":
        return EXIT_RUN_FAILED
    if Status.FAIL in statuses or (strict and Status.NOT_ASSESSED in statuses):
        return EXIT_FINDINGS
    return EXIT_OK


def render(reports: Sequence[Report], fmt: str, many: bool, store: ScanStore | None = None) -> str:
    """The reports in `fmt`; html, csv and sarif add each tenant's stored history from `store`."""
    if fmt == "json":
        return render_json(reports, many=many)
    if fmt in ("html", "csv", "sarif"):
        from partnerguard.render.csv_export import render_csv
        from partnerguard.render.html_report import render_html_reports
        from partnerguard.render.sarif import render_sarif

        histories = _histories(store, reports)
        if fmt == "html":
            return render_html_reports(reports, histories, datetime.now(UTC))
        return render_csv(reports, histories) if fmt == "csv" else render_sarif(reports, histories)
    return render_reports(reports)


def _histories(store: ScanStore | None, reports: Sequence[Report]) -> dict[str, TenantHistory]:
    """Each tenant's runs and finding dates. They only add to the document: when storage cannot
    give them (the very failure a failed scan reports), the document goes out without them."""
    from partnerguard.render.history import load_history

    histories: dict[str, TenantHistory] = {}
    if store is None:
        return histories
    for report in reports:
        try:
            histories[report.tenant.id] = load_history(store, report.tenant.id)
        except Exception as error:
            log.warning(
                "no stored history for tenant %s (%s); rendering the report without it",
                report.tenant.id,
                type(error).__name__,
            )
    return histories


def emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        output.write_text(text, encoding="utf-8")
        print(f"wrote {output}", file=sys.stderr)


def command_scan(args: argparse.Namespace, settings: Settings) -> int:
    from partnerguard.clock import utc_now
    from partnerguard.pipeline import Scanner
    from partnerguard.storage import ScanStore

    settings.require_graph()
    tenants: Sequence[str]
    if args.all:
        if not settings.tenants:
            raise ConfigError("PARTNERGUARD_TENANTS", "not set; --all scans the tenants it lists")
        tenants = settings.tenants
    else:
        tenants = [args.tenant]
    store = ScanStore.from_settings(settings.storage)
    store.ensure_tables()
    started = utc_now()
    planned = plan_output_dir(args.output_dir, started) if args.output_dir is not None else None
    scanner = Scanner(settings, store)
    # The scan guard the Functions workers take: never two scans of one tenant on shared storage.
    from partnerguard.host_config import host_config
    from partnerguard.scan_requests import guarded_scan
    from partnerguard.storage.scan_guard import ScanGuard

    guard = ScanGuard(store.service, store.prefix)
    guard.ensure_tables()
    scan = guarded_scan(scanner, guard, host_config().guard_ttl, utc_now)
    if args.all:
        from partnerguard.render.progress import progress_for, scan_with_progress

        # stderr only: stdout may be carrying a machine-readable document.
        progress = progress_for(sys.stderr, len(tenants), verbose=args.verbose)
        results = asyncio.run(scan_with_progress(scan, tenants, progress))
    else:
        results = [asyncio.run(scan(tenant)) for tenant in tenants]
    reports: list[Report] = []
    for result in results:
        if result.sign_in_read_continues and result.sign_in_read is not None:
            reached = result.sign_in_read.read_back_to
            print(
                f"tenant {result.tenant_id}: the sign-in log read stopped at its time budget "
                f"(read back to {reached.isoformat(timespec='seconds') if reached else 'its start'}); "
                "it continues with the next scan of this tenant",
                file=sys.stderr,
            )
        if result.report is not None:
            reports.append(result.report)
            continue
        # A scan that failed before any check ran still answers with a complete report, every
        # check `error`, so scripts see the failure in the document and not only in the exit code.
        reason = safe_text(redact(result.error or "unknown error"), 300)
        print(f"scan of tenant {result.tenant_id} failed (run {result.run_id}): {reason}", file=sys.stderr)
        tenant = TenantInfo(result.tenant_id, result.tenant_id, settings.role_of(result.tenant_id))
        code = result.error_code or "unknown"
        reports.append(failed_report(tenant, result.run_id, started, utc_now(), code))
    if planned is not None:
        write_output_dir(planned, reports, many=bool(args.all), store=store)
    else:
        emit(render(reports, args.format, many=bool(args.all), store=store), args.output)
    worst = max(exit_code(report, args.strict) for report in reports)
    if args.no_alerts:
        return worst
    return max(worst, deliver_alerts(settings, store, [(r.tenant_id, r.run_id) for r in results if r.report]))


def deliver_alerts(settings: Settings, store: ScanStore, runs: Sequence[tuple[str, str]]) -> int:
    """Deliver what the runs owe (partnerguard/alerts/inline.py); 3 when an alert failed for good."""
    from partnerguard.alerts.inline import deliver_for_runs
    from partnerguard.alerts.routing import CHANNEL_NAMES

    outcome = deliver_for_runs(settings, store, runs)
    for delivery in outcome.sent:
        if delivery.channel == "email":
            print(f"alert email sent ({delivery.target or outcome.transport})", file=sys.stderr)
        else:
            print(f"alert sent to {CHANNEL_NAMES[delivery.channel]}", file=sys.stderr)
    for failure in outcome.failed:
        print(f"alert delivery failed: {safe_text(redact(failure), 300)}", file=sys.stderr)
    for waiting in outcome.deferred:
        print(f"alert still owed, sent with the next scan: {safe_text(redact(waiting), 300)}", file=sys.stderr)
    return EXIT_RUN_FAILED if outcome.failed else EXIT_OK


def command_report(args: argparse.Namespace, settings: Settings) -> int:
    from partnerguard.storage import ScanStore

    store = ScanStore.from_settings(settings.storage)
    store.ensure_tables()
    report = store.latest_report(args.tenant)
    newest = store.list_runs(args.tenant, top=1)
    failed_since = newest[0] if newest and newest[0].status == "failed" and not newest[0].has_report else None
    if report is None and failed_since is None:
        print(f"no stored run for tenant {args.tenant}", file=sys.stderr)
        return EXIT_USAGE
    if failed_since is not None:
        # The tenant's monitoring is failing now: say so, and exit as for a failed run, even
        # though an older completed report exists to show.
        code = failed_since.error_code or "unknown"
        shown = f"; showing the last completed run {report.run_id}" if report else ""
        print(
            f"the newest run {failed_since.run_id} of tenant {args.tenant} failed ({safe_text(code)}){shown}",
            file=sys.stderr,
        )
    if report is not None and args.output_dir is not None:
        from partnerguard.clock import utc_now

        write_output_dir(plan_output_dir(args.output_dir, utc_now()), [report], many=False, store=store)
    elif report is not None:
        emit(render([report], args.format, many=False, store=store), args.output)
    return EXIT_RUN_FAILED if failed_since is not None else exit_code(report, args.strict) if report else EXIT_USAGE


def command_exceptions(args: argparse.Namespace, settings: Settings) -> int:
    """`exceptions add|list|remove`: 0 done, 2 a usage or validation error (one line on stderr)."""
    from checks import CHECK_IDS
    from partnerguard.storage import ScanStore
    from partnerguard.storage.accepted_risks import ExceptionError, ExceptionStore, utc_day
    from partnerguard.storage.exceptions_file import render_exceptions_file

    store = ExceptionStore.from_settings(settings.storage, check_ids=CHECK_IDS)
    try:
        store.ensure_tables()
        if args.exceptions_command == "import":
            return _import_exceptions(store, args.file, args.by)
        if args.exceptions_command == "export":
            emit(render_exceptions_file(store.list(args.tenant)), args.output)
        elif args.exceptions_command == "add":
            record = store.add(args.tenant, args.check, args.subject, args.reason, args.accepted_by, args.expires)
            print(record.id)
            _note_unmatched_exception(ScanStore(store.service), record.tenant_id, record.check_id, record.subject_id)
        elif args.exceptions_command == "remove":
            record = store.remove(args.id, args.by, args.reason)
            print(f"removed exception {record.id} ({record.check_id} in tenant {record.tenant_id})", file=sys.stderr)
        else:
            records = store.list(args.tenant, include_expired=args.include_expired)
            today = utc_day(store.clock())
            if args.format == "json":
                emit(render_exceptions_json(records, today), None)
            else:
                emit(render_exceptions_table(records, today), None)
    except ExceptionError as error:
        # An exceptions file's mistakes are several lines, one per mistake, each made inert.
        for line in str(error).splitlines():
            print(f"error: {safe_text(line, 1000)}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        store.close()
    return EXIT_OK


def _import_exceptions(store: ExceptionStore, file: Path, by: str) -> int:
    """`exceptions import FILE`: the whole file is checked first (every mistake, one line each
    with its line number, exit 2, nothing written); then it is applied (exception_import.py). An
    entry whose expiry has come is skipped with a `note:` line, not an error."""
    from partnerguard.storage.accepted_risks import utc_day, validate_upn
    from partnerguard.storage.exception_import import import_exceptions
    from partnerguard.storage.exceptions_file import read_exceptions_file

    validate_upn(by, "--by")
    parsed = read_exceptions_file(file, store.check_ids, utc_day(store.clock()))
    result = import_exceptions(store, parsed, by)
    for skipped in result.skipped_expired:
        print(f"note: {safe_text(skipped.notice(str(file)), 1000)}", file=sys.stderr)
    print(f"imported {safe_text(file)} (sha256 {parsed.sha256}): {result.summary()}", file=sys.stderr)
    return EXIT_OK


def command_config(args: argparse.Namespace) -> int:
    """`config validate FILE`: 0 and one OK line (stdout) for a valid file; 2 and one line per
    mistake (stderr), each naming the file, line:column and key. Reads no other setting. Warnings
    (stderr, `warning:`) say what the file leaves to app settings; they never change the exit code."""
    from partnerguard.config_validation import validate_settings_file

    validation = validate_settings_file(args.file)
    stream = sys.stdout if validation.ok else sys.stderr
    for line in validation.lines():
        print(safe_text(line, 1000), file=stream)
    for line in validation.warning_lines():
        print(safe_text(line, 1000), file=sys.stderr)
    return EXIT_OK if validation.ok else EXIT_USAGE


def _note_unmatched_exception(scans: ScanStore, tenant: str, check_id: str, subject_id: str) -> None:
    """Tell the person (stderr) when the exception names no finding PartnerGuard has reported:
    a typo in a subject id would otherwise go unnoticed until the finding alerts."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        finding = scans.get_finding(tenant, check_id, subject_id)
    except ResourceNotFoundError:
        finding = None  # no scan has created the findings table yet
    if finding is None:
        print(
            f"note: no scan has reported {check_id} for this subject yet; the exception applies if it appears",
            file=sys.stderr,
        )
    elif finding.state == "resolved":
        print("note: this finding is resolved; the exception applies if it comes back", file=sys.stderr)


def render_exceptions_json(records: Sequence[ExceptionRecord], today: date) -> str:
    from partnerguard.storage.accepted_risks import EXCEPTIONS_SCHEMA

    document = {"schema": EXCEPTIONS_SCHEMA, "exceptions": [r.to_document(today) for r in records]}
    # 7-bit clean like the report document: control and bidi characters arrive as \\u escapes.
    return json.dumps(document, indent=2, ensure_ascii=True) + "\n"


def render_exceptions_table(records: Sequence[ExceptionRecord], today: date) -> str:
    if not records:
        return "no exceptions\n"
    lines: list[str] = []
    for record in records:
        status = record.status_on(today)
        lines.append(
            f"{record.id}  {status:<7}  expires {record.expires.isoformat()}  tenant {record.tenant_id}  "
            f"{record.check_id}  subject {safe_text(record.subject_id, 120)}"
        )
        lines.append(
            f"    accepted by {safe_text(record.accepted_by, 120)} on {record.created_at:%Y-%m-%d}: "
            f"{safe_text(record.reason, 300)}"
        )
        if record.removed_at is not None:
            lines.append(
                f"    removed by {safe_text(record.removed_by or '', 120)} on {record.removed_at:%Y-%m-%d}: "
                f"{safe_text(record.removed_reason or '', 300)}"
            )
    return "\n".join(lines) + "\n"


def command_doctor(args: argparse.Namespace, settings: Settings) -> int:
    """`doctor`: 0 nothing missing, 1 a gap (consent, permission, licence, GDAP), 2 usage or
    configuration error. The facts go to the tenant registry for GET /api/tenants when storage
    is reachable; without it doctor still answers (a note on stderr)."""
    from partnerguard.clock import utc_now
    from partnerguard.doctor.diagnosis import doctor_document
    from partnerguard.doctor.run import NotMonitored, run_doctor
    from partnerguard.render.doctor_table import render_doctor_table
    from partnerguard.storage.store import table_service_client
    from partnerguard.storage.tenant_registry import TenantRegistry

    settings.require_graph()
    if not settings.tenants and not settings.discover_customers:
        raise ConfigError(
            "PARTNERGUARD_TENANTS", "not set (and PARTNERGUARD_DISCOVER_CUSTOMERS is off): nothing to check"
        )
    registry: TenantRegistry | None = None
    try:
        registry = TenantRegistry(table_service_client(settings.storage))
        registry.ensure_tables()
    except Exception as error:
        log.debug("tenant registry unavailable", exc_info=True)
        print(
            f"note: storage unreachable ({type(error).__name__}); doctor's findings are not recorded",
            file=sys.stderr,
        )
        if registry is not None:
            registry.close()
        registry = None
    try:
        run = asyncio.run(run_doctor(settings, registry, utc_now(), args.tenant))
    except NotMonitored:
        print(
            f"tenant {args.tenant} is not monitored (PARTNERGUARD_TENANTS, or a customer discovered through GDAP)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    finally:
        if registry is not None:
            registry.close()
    if run.not_recorded and registry is not None:
        print(f"note: doctor's findings are not recorded ({run.not_recorded})", file=sys.stderr)
    if args.format == "json":
        # 7-bit clean like the report document: control and bidi characters arrive as \\u escapes.
        emit(json.dumps(doctor_document(run.diagnoses), indent=2, ensure_ascii=True) + "\n", None)
    else:
        emit(render_doctor_table(run.diagnoses), None)
    return EXIT_OK if run.healthy else EXIT_FINDINGS


def command_demo(args: argparse.Namespace) -> int:
    # The demo drives the test bench (tenant simulator, Azurite), which lives beside the product
    # in a checkout and is never deployed: imported here, only when the demo runs.
    try:
        from testbed.demo import run_demo
    except ModuleNotFoundError as missing:
        if missing.name is None or not missing.name.startswith(("testbed", "trustme", "jwt", "cryptography")):
            raise
        print(
            "The demo needs PartnerGuard's test bench (testbed/ and requirements-dev.txt): run `make demo` "
            "from a checkout of the repository.",
            file=sys.stderr,
        )
        return 2
    return run_demo()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_output_options(parser, args)
    configure_logging(verbose=args.verbose or args.command == "demo")
    try:
        if args.command == "demo":
            return command_demo(args)
        if args.command == "config":
            # Checks the file it is given, not the environment: runs where the app settings are not.
            return command_config(args)
        settings = Settings.from_env()
        for secret in settings.secret_values():
            register_secret(secret)
        if args.command == "scan":
            return command_scan(args, settings)
        if args.command == "exceptions":
            return command_exceptions(args, settings)
        if args.command == "doctor":
            return command_doctor(args, settings)
        return command_report(args, settings)
    except ConfigError as error:
        print(f"configuration error: {safe_text(redact(str(error)))}", file=sys.stderr)
        return EXIT_USAGE
    except UsageError as error:
        print(f"error: {safe_text(redact(str(error)))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        # Storage unreachable, a bug: the run did not complete, which scripts must not read as
        # "findings" (exit 1). The traceback goes to the (redacting) log, one line to the user.
        log.exception("partnerguard %s failed", args.command)
        print(f"{args.command} failed: {type(error).__name__}: {safe_text(redact(str(error)), 300)}", file=sys.stderr)
        return EXIT_RUN_FAILED


if __name__ == "__main__":
    raise SystemExit(main())

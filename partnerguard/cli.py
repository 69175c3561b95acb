"""`python -m partnerguard` — the command line of SPEC §3 (a contract).

stdout carries only the document for machine formats; logs and progress go to stderr. Exit
codes: 3 a run failed, 1 a check failed (or not assessed with --strict), 0 otherwise, 2 usage or
configuration error; `--all` takes the worst over the tenants; `demo` exits 0 when it completes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from checks.base import Status
from partnerguard.logs import configure_logging, register_secret
from partnerguard.render.json_document import render_json
from partnerguard.render.table import render_reports
from partnerguard.report import Report
from partnerguard.settings import ConfigError, Settings, is_guid

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_RUN_FAILED = 3
FORMATS = ("table", "json")

log = logging.getLogger("partnerguard")


class UsageError(Exception):
    pass


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

    commands.add_parser("demo", help="scan the bundled simulated tenants on local parts; no Azure needed")
    return parser


def _output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    parser.add_argument("--output", type=Path, help="write the output to this file instead of stdout")


def exit_code(report: Report, strict: bool) -> int:
    statuses = {check.status for check in report.checks}
    if report.status == "failed":
        return EXIT_RUN_FAILED
    if Status.FAIL in statuses or (strict and Status.NOT_ASSESSED in statuses):
        return EXIT_FINDINGS
    return EXIT_OK


def render(reports: Sequence[Report], fmt: str, many: bool) -> str:
    if fmt == "json":
        return render_json(reports, many=many)
    return render_reports(reports)


def emit(text: str, output: Path | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        output.write_text(text, encoding="utf-8")
        print(f"wrote {output}", file=sys.stderr)


def command_scan(args: argparse.Namespace, settings: Settings) -> int:
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
    results = asyncio.run(Scanner(settings, store).scan_many(tenants))
    reports = [r.report for r in results if r.report is not None]
    for result in results:
        if result.report is None:
            print(f"scan of tenant {result.tenant_id} failed (run {result.run_id}): {result.error}", file=sys.stderr)
    if reports:
        emit(render(reports, args.format, many=bool(args.all)), args.output)
    codes = [exit_code(r.report, args.strict) if r.report else EXIT_RUN_FAILED for r in results]
    return max(codes)


def command_report(args: argparse.Namespace, settings: Settings) -> int:
    from partnerguard.storage import ScanStore

    store = ScanStore.from_settings(settings.storage)
    store.ensure_tables()
    report = store.latest_report(args.tenant)
    if report is None:
        print(f"no stored run for tenant {args.tenant}", file=sys.stderr)
        return EXIT_USAGE
    emit(render([report], args.format, many=False), args.output)
    return exit_code(report, args.strict)


def command_demo(args: argparse.Namespace) -> int:
    from partnerguard.demo import run_demo

    return run_demo()


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(verbose=args.verbose or args.command == "demo")
    try:
        if args.command == "demo":
            return command_demo(args)
        settings = Settings.from_env()
        for secret in settings.secret_values():
            register_secret(secret)
        if args.command == "scan":
            return command_scan(args, settings)
        return command_report(args, settings)
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())

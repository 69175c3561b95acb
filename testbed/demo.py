"""`python -m partnerguard demo` (and `make demo`): the whole pipeline on local parts.

Starts Azurite when it is not running (and leaves it running for the follow-up commands), starts
the tenant simulator with the bundled scenarios, scans every simulated tenant with the real
sign-in, Graph transport and Table Storage clients, prints the partner tenant's report and the
commands to try next. Needs no Azure account and ignores any Azure settings in the environment.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from partnerguard.render.table import render_report
from partnerguard.settings import DEVELOPMENT_STORAGE, Settings

AZURITE_DIR = Path(".azurite")
OUTBOX_DIR = Path("outbox")
# Who the demo's alert emails are addressed to (a reserved example domain: nothing is sent).
DEMO_RECIPIENTS = "secops@contoso.example"


def _python_command() -> str:
    executable = Path(sys.executable)
    try:
        return f"{executable.relative_to(Path.cwd())} -m partnerguard"
    except ValueError:
        return "python -m partnerguard"


def run_demo() -> int:
    from partnerguard.alerts.inline import deliver_for_runs
    from partnerguard.pipeline import Scanner
    from partnerguard.storage import ScanStore
    from testbed.azurite import ensure_local_azurite
    from testbed.simulator import TenantSimulator, bundled_scenarios

    print("Starting Azurite (local Azure Storage) if it is not running…", file=sys.stderr)
    ensure_local_azurite(AZURITE_DIR)
    scenarios = bundled_scenarios()
    with TenantSimulator(scenarios) as simulator:
        environment = dict(simulator.environment())
        tenant_ids = [scenario.tenant_id for scenario in scenarios]
        environment["PARTNERGUARD_TENANTS"] = ",".join(tenant_ids)
        # The demo's storage is always the local emulator, whatever the shell has configured.
        environment["PARTNERGUARD_STORAGE"] = DEVELOPMENT_STORAGE
        # Alerts go to .eml files: the same delivery as with ACS, into a folder to open.
        environment["ALERT_RECIPIENTS"] = DEMO_RECIPIENTS
        environment["EMAIL_OUTBOX_DIR"] = str(OUTBOX_DIR.resolve())
        settings = Settings.from_env(environment)
        print(
            f"Tenant simulator on {simulator.base_url}; scanning {len(tenant_ids)} simulated tenants…",
            file=sys.stderr,
        )
        store = ScanStore.from_settings(settings.storage)
        store.ensure_tables()
        results = asyncio.run(Scanner(settings, store).scan_many(tenant_ids))
        alerts = deliver_for_runs(settings, store, [(r.tenant_id, r.run_id) for r in results if r.report])

    partner_id = settings.tenant_id
    failed = [r for r in results if r.report is None]
    for result in results:
        if result.report is not None and result.tenant_id == partner_id:
            sys.stdout.write(render_report(result.report))
    print("\nOther simulated tenants:")
    for result in results:
        if result.tenant_id == partner_id:
            continue
        if result.report is None:
            print(f"  {result.tenant_id}: scan failed — {result.error}")
            continue
        summary = result.report.summary
        print(
            f"  {result.report.tenant.name} ({result.tenant_id}, {result.report.tenant.role}): "
            f"{result.report.status}; pass {summary['pass']}, fail {summary['fail']}, "
            f"not assessed {summary['not_assessed']}, error {summary['error']}"
        )
    print("\nAlert emails (digests of what changed, one per tenant):")
    for delivery in alerts.sent:
        print(f"  wrote {delivery.target}")
    if not alerts.sent:
        print(f"  none this time: nothing changed since the last scan (earlier emails are in {OUTBOX_DIR}/)")
    for failure in alerts.failed:
        print(f"  failed: {failure}")
    for waiting in alerts.deferred:
        print(f"  still owed: {waiting}")
    command = _python_command()
    print(
        "\nResults are stored in Azurite (left running; `make stop` stops it). Try next:\n"
        f"  {command} report --tenant {partner_id}                 # the same run, read back from storage\n"
        f"  {command} report --tenant {partner_id} --format json   # the partnerguard.report/v1 document\n"
        f"  {command} scan --help\n"
    )
    if os.environ.get("AZURE_TENANT_ID"):
        print("(The demo ignored the AZURE_* settings of this shell; `scan` uses them.)", file=sys.stderr)
    return 3 if failed or alerts.failed else 0

"""`python -m partnerguard demo` (and `make demo`): the whole pipeline on local parts.

Starts Azurite when it is not running (and leaves it running for the follow-up commands), starts
the tenant simulator with the bundled scenarios, scans every simulated tenant with the real
sign-in, Graph transport and Table Storage clients, prints the partner tenant's report and the
commands to try next. Needs no Azure account and ignores any Azure settings in the environment.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from partnerguard.render.table import render_report
from partnerguard.settings import DEVELOPMENT_STORAGE, Settings

if TYPE_CHECKING:
    from testbed.teams_fake import TeamsWorkflowFake
    from testbed.webhook_fake import SignedWebhookFake

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


def _received(teams: TeamsWorkflowFake, webhook: SignedWebhookFake) -> list[str]:
    """What the Teams and webhook stand-ins took, one line each (they refuse what Teams or a
    signature check would refuse, so everything listed passed that)."""
    lines = [f"Teams    card accepted: {(post.texts() or ['(no text)'])[0]}" for post in teams.posts]
    for delivery in webhook.deliveries:
        tenant = delivery.document.get("tenant") or {}
        name = tenant.get("name") if isinstance(tenant, dict) else None
        lines.append(
            f"webhook  signed {delivery.kind} accepted for {name or 'the monitor'} "
            f"(Idempotency-Key {delivery.idempotency_key}{', a repeat' if delivery.repeat else ''})"
        )
    return lines


def _tampered_call_refused(webhook: SignedWebhookFake, ca_file: Path) -> str:
    """Send the stand-in a copy of a call it took, signed as the original but one byte changed:
    what a receiver verifying signatures must do with it."""
    import httpx

    from notifiers.webhook_payload import signed_headers

    original = webhook.deliveries[0]
    headers = signed_headers(
        webhook.secret,
        int(time.time()),
        original.body,
        operation_id=original.idempotency_key,
        kind=original.document["kind"],
    )
    tampered = original.body.replace(b'"kind"', b'"Kind"', 1)
    context = ssl.create_default_context(cafile=str(ca_file))
    with httpx.Client(verify=context) as client:
        answer = client.post(webhook.url, content=tampered, headers=headers)
    return (
        f"refused by the stand-in ({answer.status_code})"
        if answer.status_code == 401
        else (f"ACCEPTED ({answer.status_code}): the stand-in failed to check the signature")
    )


def run_demo() -> int:
    from partnerguard.alerts.inline import deliver_for_runs
    from partnerguard.pipeline import Scanner
    from partnerguard.storage import ScanStore
    from testbed.azurite import ensure_local_azurite
    from testbed.loopback_https import combined_ca
    from testbed.simulator import TenantSimulator, bundled_scenarios
    from testbed.teams_fake import TeamsWorkflowFake
    from testbed.webhook_fake import SignedWebhookFake

    print("Starting Azurite (local Azure Storage) if it is not running…", file=sys.stderr)
    ensure_local_azurite(AZURITE_DIR)
    scenarios = bundled_scenarios()
    with (
        TenantSimulator(scenarios) as simulator,
        TeamsWorkflowFake() as teams,
        SignedWebhookFake() as webhook,
        tempfile.TemporaryDirectory(prefix="partnerguard-demo-") as workdir,
    ):
        environment = dict(simulator.environment())
        tenant_ids = [scenario.tenant_id for scenario in scenarios]
        environment["PARTNERGUARD_TENANTS"] = ",".join(tenant_ids)
        # The demo's storage is always the local emulator, whatever the shell has configured.
        environment["PARTNERGUARD_STORAGE"] = DEVELOPMENT_STORAGE
        # Alerts go to .eml files (the same delivery as with ACS, into a folder to open), to a
        # Teams Workflows stand-in that validates each card against the Adaptive Card schema, and
        # to a webhook stand-in that verifies each call's signature.
        environment["ALERT_RECIPIENTS"] = DEMO_RECIPIENTS
        environment["EMAIL_OUTBOX_DIR"] = str(OUTBOX_DIR.resolve())
        environment["ALERT_TEAMS_WEBHOOK_URL"] = teams.url
        environment["ALERT_WEBHOOK_URL"] = webhook.url
        environment["ALERT_WEBHOOK_SECRET"] = webhook.secret
        environment["PARTNERGUARD_CA_BUNDLE"] = str(
            combined_ca(Path(workdir) / "loopback-cas.pem", simulator.ca_bundle, teams.ca_bundle, webhook.ca_bundle)
        )
        settings = Settings.from_env(environment)
        print(
            f"Tenant simulator on {simulator.base_url}; scanning {len(tenant_ids)} simulated tenants…",
            file=sys.stderr,
        )
        store = ScanStore.from_settings(settings.storage)
        store.ensure_tables()
        results = asyncio.run(Scanner(settings, store).scan_many(tenant_ids))
        alerts = deliver_for_runs(settings, store, [(r.tenant_id, r.run_id) for r in results if r.report])
        received = _received(teams, webhook)
        tampered = _tampered_call_refused(webhook, Path(settings.ca_bundle or "")) if webhook.deliveries else None

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
    print("\nAlerts (a digest of what changed per tenant, to each channel once):")
    for delivery in alerts.sent:
        if delivery.channel == "email":
            print(f"  email    wrote {delivery.target}")
    for line in received:
        print(f"  {line}")
    if not alerts.sent:
        print(f"  none this time: nothing changed since the last scan (earlier emails are in {OUTBOX_DIR}/)")
    if tampered is not None:
        print(f"  webhook  a copy with one byte changed, same signature: {tampered}")
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
    tampered_accepted = tampered is not None and not tampered.startswith("refused")
    return 3 if failed or alerts.failed or tampered_accepted else 0

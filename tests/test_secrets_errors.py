"""Secrets inside errors (issue 15, case 7): what an exception's text carries reaches a log line's
traceback, a run's stored `error_message` and the HTTP API's scan status — redacted, every time.

- 7.1: `log.exception` attaches a traceback; the Functions host's handler formats it itself, so
  the `RedactingFilter` on that handler must mask the traceback, not only the message;
- 7.2: with a SAS connection string, azure-core errors can carry the signature: a gateway in
  front of storage answers 502 with a page that echoes the request URL, raw and percent-encoded
  (as a "return to" link does), and azure-core puts that page in the error's text;
- 7.3: the scan worker's last attempt stores the error in the run (`_give_up`), which the HTTP
  API and the dashboard serve.

Everything runs for real: Azurite (reached with an account SAS), the scan worker's job
(`process_scan_message`) on its last delivery, a loopback gateway.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, quote, unquote

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.queue import AccountSasPermissions, ResourceTypes, generate_account_sas

from partnerguard import scan_jobs
from partnerguard.logs import REDACTED, RedactingFilter, redact, register_secret
from partnerguard.model import TenantInfo
from partnerguard.queues.names import SCAN_QUEUE
from partnerguard.scan_requests import ScanQueued, request_scan
from testbed.azurite import ACCOUNT_KEY, ACCOUNT_NAME, AzuriteProcess
from tests.functions_index import FunctionsEnv, functions_env
from tests.reliability import record

pytestmark = pytest.mark.azurite

TENANT = "e4e4e4e4-0000-4000-8000-000000000004"


def forms(secret: str) -> list[str]:
    """The secret as given, percent-encoded once and twice (a URL inside a URL)."""
    once = quote(secret, safe="")
    return [secret, once, quote(once, safe="")]


def decodings(text: str) -> list[str]:
    """`text` as written, and percent-decoded up to three times (an encoded URL inside a page,
    parts of it encoded once and parts twice), HTML entities resolved."""
    found = [html.unescape(text)]
    for _ in range(3):
        found.append(unquote(found[-1]))
    return found


def leaked(text: str, secrets: list[str]) -> list[str]:
    """The secrets that can be read back out of `text`, however they were encoded there."""
    return [secret for secret in secrets if any(secret in decoded for decoded in decodings(text))]


class HostLikeHandler(logging.Handler):
    """What the Functions worker's handler does: its own formatting, traceback included, after
    the filters on it (here, `RedactingFilter`, as `install_log_redaction` puts it there)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.addFilter(RedactingFilter())
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def host_logs() -> Iterator[HostLikeHandler]:
    handler = HostLikeHandler()
    root = logging.getLogger()
    level, handlers = root.level, root.handlers[:]
    # The host's handler alone (an earlier command line test may have left one on a closed stream).
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG)
    yield handler
    root.handlers[:] = handlers
    root.setLevel(level)


# -- 7.1 ------------------------------------------------------------------------------------------


def test_case_7_1_a_traceback_through_the_redacting_filter_holds_no_secret(host_logs: HostLikeHandler) -> None:
    secret = f"pg-secret-{uuid.uuid4().hex}"
    register_secret(secret)
    log = logging.getLogger("partnerguard.test_secrets_errors")
    try:
        raise ConnectionError(f"the token endpoint refused client_id=x&client_assertion={secret}")
    except ConnectionError:
        log.exception("sign-in failed")
    # A second record whose traceback was already rendered by an earlier handler (`exc_text`).
    try:
        raise RuntimeError(f"request failed: {secret}")
    except RuntimeError:
        record = log.makeRecord(log.name, logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
        record.exc_text = logging.Formatter().formatException(record.exc_info)  # type: ignore[arg-type]
        log.handle(record)

    text = "\n".join(host_logs.lines)
    assert "ConnectionError" in text and "RuntimeError" in text, "the tracebacks are kept"
    assert leaked(text, [secret]) == []


# -- 7.2 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "signature", ["ONBWmBiEY70lPVzGCzN2ZY621M8b6O4IoUlYtOL/kFU=", "v2DGe31ydBLU5QTu2+QxoM5wxCgohi8R6EQY"]
)
def test_case_7_2_a_sas_signature_is_masked_however_a_url_carries_it(signature: str) -> None:
    """Any SAS, registered or not (another account's, a SAS the app was never configured with):
    raw in a query, percent-encoded in a URL inside a page, or encoded twice."""
    url = f"https://acct.table.core.windows.net/t()?sv=2026-10-06&ss=t&sig={quote(signature, safe='/')}&se=2030"
    once = quote(url, safe="")
    text = f"GET {url} failed; <a href='/login?return={once}'>retry</a> logged as {quote(once, safe='')}"

    masked = redact(text)

    assert leaked(masked, [signature]) == []
    assert masked.count(REDACTED) == 3


# -- 7.2 and 7.3: the scan worker's last attempt ---------------------------------------------------


class Gateway(BaseHTTPRequestHandler):
    """A gateway in front of storage that fails every request with a page echoing its URL."""

    def _fail(self) -> None:
        url = f"http://{self.headers.get('Host')}{self.path}"
        # Short, and the signature early: whatever cuts the error's text keeps it.
        page = (
            f"<html><a href='/retry?r={quote(url, safe='')}'>502 Bad Gateway</a> {html.escape(self.path)}</html>"
        ).encode()
        self.send_response(502)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _fail

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def gateway() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{ACCOUNT_NAME}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def account_sas() -> str:
    """An account SAS for Azurite's tables and queues, as a partner may configure storage."""
    return generate_account_sas(
        ACCOUNT_NAME,
        ACCOUNT_KEY,
        ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(
            read=True, write=True, delete=True, list=True, add=True, create=True, update=True, process=True
        ),
        datetime.now(UTC) + timedelta(hours=2),
        services="qt",
    )


def queue_scan(env: FunctionsEnv) -> str:
    services = env.services
    outcome = request_scan(
        services.store,
        services.guard,
        services.scan_queue(),
        TenantInfo(TENANT, TENANT, "partner"),
        "api",
        env.clock(),
        services.host.guard_ttl,
    )
    assert isinstance(outcome, ScanQueued)
    return outcome.run_id


def last_attempt(env: FunctionsEnv) -> None:
    """The scan message on its last delivery: the failure is recorded on the run, then raised."""
    (message,) = env.receive(SCAN_QUEUE)
    with pytest.raises(Exception):  # noqa: B017 - whatever failed is re-raised for the host
        asyncio.run(
            scan_jobs.process_scan_message(
                env.services, message.content, message_id=message.id, dequeue_count=env.services.host.max_dequeue_count
            )
        )


def stored_text(env: FunctionsEnv) -> str:
    rows = env.services.store.runs.query_entities("PartitionKey eq @pk", parameters={"pk": TENANT})
    return json.dumps([dict(row) for row in rows], default=str)


def test_case_7_2_a_sas_signature_in_an_azure_core_error_is_redacted_everywhere(
    azurite: AzuriteProcess, table_prefix: str, gateway: str, host_logs: HostLikeHandler
) -> None:
    sas = account_sas()
    (signature,) = parse_qs(sas)["sig"]
    storage = (
        f"TableEndpoint=http://127.0.0.1:{azurite.table_port}/{ACCOUNT_NAME};"
        f"QueueEndpoint=http://127.0.0.1:{azurite.queue_port}/{ACCOUNT_NAME};SharedAccessSignature={sas}"
    )
    behind_gateway = f"TableEndpoint={gateway};SharedAccessSignature={sas}"
    environment = {"PARTNERGUARD_TENANTS": TENANT, "AZURE_TENANT_ID": TENANT}
    for env in functions_env(storage, table_prefix, environment):

        async def collect(settings: Any, tenant_id: str, started: datetime) -> Any:
            # The scan reads a table that sits behind the failing gateway, with the same SAS.
            client = TableServiceClient.from_connection_string(behind_gateway, retry_total=0)
            table = client.get_table_client(f"{table_prefix}signins")
            return await asyncio.to_thread(table.get_entity, TENANT, "watermark")

        env.services.snapshot_source = collect
        run_id = queue_scan(env)
        last_attempt(env)

        run = env.services.store.get_run(TENANT, run_id)
        assert run is not None and run.status == "failed"
        served = json.dumps(run.to_document())  # what GET /api/tenants/{id}/scans/{run} answers
        assert "502" in served or "Bad Gateway" in served, served
        found = {
            "HTTP API": leaked(served, [signature]),
            "stored rows": leaked(stored_text(env), [signature]),
            "logs": leaked("\n".join(host_logs.lines), [signature]),
        }
        record(
            "secrets",
            "an azure-core error carrying a SAS signature (raw and percent-encoded, a gateway's page) "
            "on the scan worker's last attempt",
            "no form of the signature in any log line, traceback, stored row or HTTP API answer",
            tried=3 * len(forms(signature)),  # three places, three encodings
        )
        assert found == {"HTTP API": [], "stored rows": [], "logs": []}


def test_case_7_3_the_error_a_run_gave_up_on_is_stored_redacted(
    azurite: AzuriteProcess, table_prefix: str, host_logs: HostLikeHandler, tmp_path: Path
) -> None:
    secret = f"pg-client-secret-{uuid.uuid4().hex}"
    token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJ0aWQiOiJ4In0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    environment = {
        "PARTNERGUARD_TENANTS": TENANT,
        "AZURE_TENANT_ID": TENANT,
        "AZURE_CLIENT_ID": str(uuid.uuid4()),
        "AZURE_CLIENT_SECRET": secret,
    }
    for env in functions_env(azurite.connection_string, table_prefix, environment):

        async def collect(settings: Any, tenant_id: str, started: datetime) -> Any:
            # A transient failure whose text carries the client secret and a token, as a
            # library's error may: retried, and on the last attempt recorded on the run.
            raise ConnectionError(f"{'x' * 440} the service refused {secret} with Authorization: Bearer {token}")

        env.services.snapshot_source = collect
        run_id = queue_scan(env)
        last_attempt(env)

        run = env.services.store.get_run(TENANT, run_id)
        assert run is not None and run.status == "failed" and run.error is not None
        assert run.error["message"].startswith("gave up after")
        served = json.dumps(run.to_document())
        found = leaked(served, [secret, token]) + leaked(stored_text(env), [secret, token])
        # Cut to its length only after redaction: a secret cut in two would not be recognised.
        found += [part for part in (secret[:12], token[:24]) if part in served]
        record(
            "secrets",
            "a client secret and a token in the error a scan gave up on (cut to fit the run's error)",
            "neither, whole or cut, in the stored run or its HTTP API answer",
            tried=2,
        )
        assert found == []


@pytest.mark.parametrize(("failure", "cut"), [("deferred", 300), ("failed", 500)])
def test_case_7_3_an_alert_worker_log_line_cut_to_fit_holds_no_part_of_a_secret(
    azurite: AzuriteProcess,
    table_prefix: str,
    host_logs: HostLikeHandler,
    tmp_path: Path,
    failure: str,
    cut: int,
) -> None:
    # The alert worker cuts the delivery error for its log line (300 characters when it defers
    # the alert, 500 when it poisons it): redacted before the cut, or a secret split by the cut
    # is no longer recognised and its first part is logged.
    from partnerguard.alert_jobs import process_alert_message
    from partnerguard.alerts.delivery import AlertDelivery, AlertFailed, AlertUnavailable
    from partnerguard.alerts.messages import AlertMessage
    from partnerguard.alerts.policy import AlertRef
    from tests.delivery_harness import RECIPIENT, owe

    secret = f"pg-acs-key-{uuid.uuid4().hex}"
    register_secret(secret)
    environment = {
        "PARTNERGUARD_TENANTS": TENANT,
        "ALERT_RECIPIENTS": RECIPIENT,
        "EMAIL_OUTBOX_DIR": str(tmp_path / "outbox"),
    }
    prefix = "delivery failed for good: " if failure == "failed" else ""
    # The secret straddles the cut.
    text = "x" * (cut - len(prefix) - 20) + f" {secret} rest"
    error = AlertFailed(text) if failure == "failed" else AlertUnavailable(text)

    class Refusing:
        def deliver(self, ref: AlertRef) -> Any:
            raise error

        def give_up(self, ref: AlertRef, reason: str) -> None:
            pass

    refusing = cast(AlertDelivery, Refusing())
    for env in functions_env(azurite.connection_string, table_prefix, environment):
        (alert,) = owe(env.services.settings, env.services.alerts, 1, env.clock())
        env.services.delivery = lambda: refusing  # type: ignore[method-assign]
        body = AlertMessage(AlertRef.of(alert), 0).to_json()
        outcome = asyncio.run(process_alert_message(env.services, body, message_id="m-1"))

        assert outcome.action == failure
        logged = "\n".join(host_logs.lines)
        assert text[:40] in logged
        assert secret[:12] not in logged

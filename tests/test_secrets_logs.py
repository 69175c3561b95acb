"""Secrets never leave: no log line, no output of the command line, no stored row and no HTTP API
answer holds a token, a secret or a connection string.

The app runs for real with every kind of secret it can be given: a client secret and, in another
run, a certificate whose private key is password-protected; an ACS connection string (its access
key signs every request to the ACS fake); a storage connection string with its account key; and
the access tokens the simulator issued for the scans. Every logger (azure.*, msal, urllib3,
httpx, ...) is read at DEBUG, and each value is looked for as given and in the encodings it may
travel in (URL encoding, base64, HTTP Basic). Two layers are checked:

- what the app emits: stdout and stderr of the command line, every record through the app's
  formatter (SafeFormatter, the command line) and filter (RedactingFilter, the Functions host's
  handler), the HTTP API's bodies and headers, and every entity stored in Table Storage;
- what the code logs before any redaction (each record's message and traceback), for
  PartnerGuard's own loggers: redaction is the second line of defence, not the first.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

import azure.functions as func
import pytest
from azure.data.tables import TableServiceClient
from azure.functions.queue import QueueMessage
from cryptography.hazmat.primitives import serialization

from partnerguard import cli
from partnerguard.graph import client as graph_client
from partnerguard.logs import RedactingFilter, SafeFormatter, configure_logging
from partnerguard.queues.names import ALERT_QUEUE, SCAN_QUEUE
from testbed.acs_fake import AcsEmailFake
from testbed.azurite import AzuriteProcess
from testbed.simulator import TenantSimulator, generate_tenant
from tests.alerts_harness import acs_environment
from tests.cli_harness import run_cli
from tests.functions_index import FUNCTIONS, FunctionsEnv, functions_env
from tests.graph_sim import fast_pacer
from tests.reliability import record

pytestmark = [pytest.mark.azurite, pytest.mark.simulator]

PARTNER = "e1e1e1e1-0000-4000-8000-000000000001"
CUSTOMER = "e2e2e2e2-0000-4000-8000-000000000002"
UNCONSENTED = "e3e3e3e3-0000-4000-8000-000000000003"  # its sign-in fails: an error path, logged
CERTIFICATE_PASSWORD = "pg-test-cert-pass-7Qx9#Lm2"
OWN_LOGGERS = ("partnerguard", "checks", "notifiers")


@dataclass(frozen=True)
class Secret:
    kind: str  # "client secret", "ACS access key", ...
    value: str


def encodings(kind: str, value: str) -> list[Secret]:
    """`value` as given and as it may travel: URL-encoded (query strings, form bodies) and
    base64 (headers). Forms shorter than 8 characters would match by chance and are left out."""
    forms = {value, quote(value, safe=""), quote_plus(value), base64.b64encode(value.encode()).decode()}
    return [Secret(kind, form) for form in sorted(forms) if len(form) >= 8]


def connection_string_secrets(kind: str, connection_string: str, key_name: str) -> list[Secret]:
    [key] = re.findall(rf"(?i){key_name}=([^;]+)", connection_string)
    return [*encodings(f"{kind} connection string", connection_string), *encodings(f"{kind} key", key)]


def issued_tokens(sim: TenantSimulator, before: set[str]) -> list[Secret]:
    """The access tokens the simulator issued since `before` (its token endpoint keeps them to
    validate Graph calls), and each one's signature alone, which a cut log line could still hold."""
    tokens = sorted(set(sim.authority._tokens) - before)  # the simulator has no accessor for them
    assert tokens, "the run signed in"
    pairs = [
        (kind, value)
        for token in tokens
        for kind, value in (("token", token), ("token signature", token.rsplit(".", 1)[1]))
    ]
    return [Secret(kind, value) for kind, value in pairs]


def tokens_so_far(sim: TenantSimulator) -> set[str]:
    return set(sim.authority._tokens)


@dataclass
class Captured:
    """Every log record of every logger, at DEBUG: raw, and as the app's formatter and the
    Functions filter emit it."""

    raw: list[tuple[str, str]] = field(default_factory=list)  # (logger, message + traceback)
    formatted: list[str] = field(default_factory=list)


class CaptureHandler(logging.Handler):
    def __init__(self, captured: Captured) -> None:
        super().__init__(logging.DEBUG)
        self.captured = captured
        self.formatter_under_test = SafeFormatter("%(levelname)s %(name)s: %(message)s")
        self.plain = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        if record.exc_info:
            message += "\n" + self.plain.formatException(record.exc_info)
        self.captured.raw.append((record.name, message))
        self.captured.formatted.append(self.formatter_under_test.format(record))
        filtered = logging.makeLogRecord(record.__dict__)
        RedactingFilter().filter(filtered)
        self.captured.formatted.append(filtered.getMessage())


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[Captured]:
    """Every logger at DEBUG into a capture, also after the command line configures logging."""
    captured = Captured()
    handler = CaptureHandler(captured)
    levels = {name: logging.getLogger(name or None).level for name in ["", *logging.root.manager.loggerDict]}

    def everything_at_debug() -> None:
        root = logging.getLogger()
        if handler not in root.handlers:
            root.addHandler(handler)
        root.setLevel(logging.DEBUG)
        for name in list(logging.root.manager.loggerDict):
            logging.getLogger(name).setLevel(logging.NOTSET)

    def configure_then_capture(verbose: bool = False) -> None:
        configure_logging(verbose)
        everything_at_debug()

    monkeypatch.setattr(cli, "configure_logging", configure_then_capture)
    everything_at_debug()
    yield captured
    logging.getLogger().removeHandler(handler)
    for name, level in levels.items():
        logging.getLogger(name or None).setLevel(level)


def leaks(secrets: Iterable[Secret], texts: Iterable[str]) -> list[str]:
    """Which secrets (kind, and where) appear in any of `texts`."""
    corpus = list(texts)
    return sorted(
        {
            f"{secret.kind} in: {text[max(0, text.find(secret.value) - 80) :][:200]!r}"
            for secret in secrets
            for text in corpus
            if secret.value in text
        }
    )


def stored_text(connection_string: str, prefix: str = "") -> list[str]:
    """Every value of every entity in the tables whose names start with `prefix`."""
    service = TableServiceClient.from_connection_string(connection_string)
    try:
        return [
            str(value)
            for table in service.list_tables()
            if table.name.startswith(prefix)
            for entity in service.get_table_client(table.name).list_entities()
            for value in entity.values()
        ]
    finally:
        service.close()


def assert_nothing_leaks(secrets: list[Secret], captured: Captured, *outputs: str) -> None:
    assert captured.raw, "the capture saw the run's logs"
    emitted = [*captured.formatted, *outputs]
    assert not leaks(secrets, emitted), leaks(secrets, emitted)[:5]
    own = [message for name, message in captured.raw if name.split(".")[0] in OWN_LOGGERS]
    assert not leaks(secrets, own), leaks(secrets, own)[:5]


@pytest.fixture(scope="module")
def simulator() -> Iterator[TenantSimulator]:
    """Small tenants (the secrets are the subject, not the scan), one without consent."""
    scenarios = [
        generate_tenant(PARTNER, 20, seed=81, role="partner", incapable=2),
        generate_tenant(CUSTOMER, 20, seed=82, incapable=1),
        generate_tenant(UNCONSENTED, 10, seed=83),
    ]
    scenarios[2].consented = False
    with TenantSimulator(scenarios, enforce_limits=False) as sim:
        yield sim


@pytest.fixture(scope="module")
def acs() -> Iterator[AcsEmailFake]:
    with AcsEmailFake() as fake:
        yield fake


@pytest.fixture(autouse=True)
def fast_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(graph_client, "PROCESS_PACER", fast_pacer())


def secrets_of(sim: TenantSimulator, acs: AcsEmailFake, storage: str, tokens_before: set[str]) -> list[Secret]:
    return [
        *encodings("client secret", sim.client_secret),
        *encodings("client secret (HTTP Basic)", f"{sim.client_id}:{sim.client_secret}"),
        *connection_string_secrets("ACS", acs.connection_string, "accesskey"),
        *connection_string_secrets("storage", storage, "AccountKey"),
        *issued_tokens(sim, tokens_before),
    ]


# -- the command line ---------------------------------------------------------------------------------


def test_the_command_line_leaks_no_secret_token_or_connection_string(
    simulator: TenantSimulator,
    acs: AcsEmailFake,
    cli_env: dict[str, str],
    cli_storage: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    captured: Captured,
) -> None:
    for name, value in acs_environment(simulator, acs, tmp_path).items():
        monkeypatch.setenv(name, value)
    before = tokens_so_far(simulator)
    code, out, err = run_cli(capsys, "-v", "scan", "--all", "--format", "json")
    assert code == 3, err[-2000:]  # findings, and the unconsented tenant's run failed
    assert acs.sent, "an alert went through ACS, signed with the access key"
    secrets = secrets_of(simulator, acs, cli_storage, before)
    assert_nothing_leaks(secrets, captured, out, err, *stored_text(cli_storage))
    record(
        "secrets",
        "command line scan --all at DEBUG: client secret, ACS connection string and key, storage key, issued tokens",
        "none in stdout, stderr, any log record or any stored row",
        tried=len({secret.value for secret in secrets}),
    )


def _password_protected_copy(certificate: Path, target: Path) -> Path:
    """The simulator's certificate with its private key encrypted under CERTIFICATE_PASSWORD."""
    pem = certificate.read_bytes()
    key = serialization.load_pem_private_key(pem, password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(CERTIFICATE_PASSWORD.encode()),
    )
    certificates = pem[pem.index(b"-----BEGIN CERTIFICATE-----") :]
    target.write_bytes(encrypted + certificates)
    return target


def _private_key_secrets(certificate: Path) -> list[Secret]:
    """The private key's PEM body lines, as a log of the file or the key object could show them."""
    pem = certificate.read_text()
    body = pem[pem.index("-----BEGIN PRIVATE KEY-----") : pem.index("-----END PRIVATE KEY-----")]
    return [Secret("private key", line) for line in body.splitlines()[1:] if len(line) >= 32]


def test_a_password_protected_certificate_leaves_no_password_or_key_behind(
    simulator: TenantSimulator,
    cli_env: dict[str, str],
    cli_storage: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    captured: Captured,
) -> None:
    certificate = _password_protected_copy(simulator.certificate_path, tmp_path / "app.pem")
    monkeypatch.delenv("AZURE_CLIENT_SECRET")
    monkeypatch.setenv("AZURE_CLIENT_CERTIFICATE_PATH", str(certificate))
    monkeypatch.setenv("AZURE_CLIENT_CERTIFICATE_PASSWORD", CERTIFICATE_PASSWORD)
    before = tokens_so_far(simulator)
    code, out, err = run_cli(capsys, "-v", "scan", "--tenant", PARTNER, "--no-alerts")
    assert code == 1, err[-2000:]  # signed in with the certificate; findings
    secrets = [
        *encodings("certificate password", CERTIFICATE_PASSWORD),
        *_private_key_secrets(simulator.certificate_path),
        *issued_tokens(simulator, before),
    ]
    assert_nothing_leaks(secrets, captured, out, err)
    record(
        "secrets",
        "command line scan at DEBUG with a password-protected certificate: password, private key, issued tokens",
        "none in stdout, stderr or any log record",
        tried=len({secret.value for secret in secrets}),
    )


# -- the Functions app ----------------------------------------------------------------------------------


@pytest.fixture
def functions(
    azurite: AzuriteProcess, simulator: TenantSimulator, acs: AcsEmailFake, tmp_path: Path
) -> Iterator[FunctionsEnv]:
    environment = {**acs_environment(simulator, acs, tmp_path), "PARTNERGUARD_TENANTS": f"{PARTNER},{UNCONSENTED}"}
    yield from functions_env(azurite.connection_string, "sec" + uuid.uuid4().hex[:10], environment)


def _http(
    name: str, route_params: dict[str, str] | None = None, params: dict[str, str] | None = None
) -> func.HttpResponse:
    function = FUNCTIONS[name]
    trigger = function.get_trigger()
    [method] = [str(getattr(m, "value", m)).upper() for m in trigger.methods]
    request = func.HttpRequest(
        method, "http://localhost/api/" + trigger.route, body=b"", params=params or {}, route_params=route_params or {}
    )
    response = function.get_user_function()(request)
    assert isinstance(response, func.HttpResponse)
    assert response.status_code < 500, response.get_body()[:500]
    return response


def _drain(env: FunctionsEnv, queue: str, worker: str) -> int:
    handled = 0
    for message in env.receive(queue):
        host_message = QueueMessage(id=message.id, body=message.content, dequeue_count=1)  # type: ignore[no-untyped-call]
        asyncio.run(FUNCTIONS[worker].get_user_function()(host_message))
        handled += 1
    return handled


def test_the_functions_app_and_its_http_api_leak_no_secret(
    simulator: TenantSimulator, acs: AcsEmailFake, azurite: AzuriteProcess, functions: FunctionsEnv, captured: Captured
) -> None:
    functions.services.scan_queue()
    functions.receive(SCAN_QUEUE)
    before = tokens_so_far(simulator)
    runs = {}
    for tenant in (PARTNER, UNCONSENTED):
        accepted = _http("startScan", {"tenantId": tenant})
        assert accepted.status_code == 202
        runs[tenant] = accepted.get_body().decode().split('"run_id":"', 1)[1].split('"', 1)[0]
    assert _drain(functions, SCAN_QUEUE, "scan_worker") == 2
    functions.services.alert_queue()
    assert _drain(functions, ALERT_QUEUE, "alert_worker") >= 1
    answers = [
        *(_http("getScan", {"tenantId": tenant, "runId": run}) for tenant, run in runs.items()),
        *(_http("listFindings", {"tenantId": tenant}, {"state": "all", "top": "1000"}) for tenant in runs),
        _http("listTenants"),
        _http("dashboard"),
        _http("health"),
    ]
    assert acs.sent
    failed = functions.services.store.get_run(UNCONSENTED, runs[UNCONSENTED])
    assert failed is not None and failed.status == "failed"  # its error is served by getScan

    secrets = secrets_of(simulator, acs, azurite.connection_string, before)
    served = [answer.get_body().decode("utf-8") for answer in answers]
    served += [f"{name}: {value}" for answer in answers for name, value in answer.headers.items()]
    assert not leaks(secrets, served), leaks(secrets, served)[:5]
    record(
        "secrets",
        "HTTP API: every route's body and headers after real scans (one failed sign-in) and an ACS alert",
        "no secret, key, token or connection string served",
        tried=len({secret.value for secret in secrets}),
    )
    assert_nothing_leaks(secrets, captured, *stored_text(azurite.connection_string, functions.services.store.prefix))
    record(
        "secrets",
        "Functions workers at DEBUG (scan, alert) and the HTTP API: client secret, ACS and storage keys, tokens",
        "none in any log record (through RedactingFilter) or any stored row",
        tried=len({secret.value for secret in secrets}),
    )

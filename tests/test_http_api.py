"""The HTTP API of SPEC §4 as the host would run it: the indexed functions called with
azure.functions request objects, over Azurite and the tenant simulator, with every response
checked against docs/openapi.yaml (tests/openapi_validator.py).

One module-wide world: the simulated tenants plus synthetic monitored tenants (so each test that
queues scans has tenants of its own), and one real scan of the partner tenant queued through the
API and run by the scan worker from the message it left on the queue.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import azure.functions as func
import pytest
from azure.functions.queue import QueueMessage

from partnerguard.api import handlers
from partnerguard.queues.names import SCAN_QUEUE
from partnerguard.queues.scan_message import parse_scan_message
from testbed.azurite import AzuriteProcess
from testbed.simulator import TenantSimulator, bundled_scenarios
from tests.functions_index import FUNCTIONS, Clock, FunctionsEnv, functions_env
from tests.openapi_validator import validate_response

PARTNER = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
FABRIKAM = "c0ffee00-1b2c-4d3e-8f90-a1b2c3d4e5f6"
NOT_MONITORED = "11111111-2222-4333-8444-555555555555"
# Monitored but never in the simulator: tests that only queue scans use one each.
SPARE = [f"aaaaaaaa-0000-4000-8000-{n:012d}" for n in range(1, 13)]


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]
    mimetype: str
    body: Any  # the parsed JSON, or the HTML text


def call(
    name: str,
    method: str,
    route_params: Mapping[str, str] | None = None,
    *,
    params: Mapping[str, str] | None = None,
    body: bytes = b"",
    headers: Mapping[str, str] | None = None,
) -> Answer:
    """Invoke one indexed HTTP function and check its answer against the OpenAPI document."""
    function = FUNCTIONS[name]
    route = function.get_trigger().route
    url = "/api/" + route
    for key, value in (route_params or {}).items():
        url = url.replace("{" + key + "}", value)
    request = func.HttpRequest(
        method,
        url,
        body=body,
        headers=dict(headers or {}),
        params=dict(params or {}),
        route_params=dict(route_params or {}),
    )
    response = function.get_user_function()(request)
    assert isinstance(response, func.HttpResponse)
    parsed = validate_response(
        "/api/" + route, method, response.status_code, response.mimetype, response.headers, response.get_body()
    )
    return Answer(response.status_code, dict(response.headers), response.mimetype, parsed)


def post_scan(tenant_id: str, body: bytes = b"", content_type: str | None = None) -> Answer:
    headers = {"Content-Type": content_type} if content_type else {}
    return call("startScan", "POST", {"tenantId": tenant_id}, body=body, headers=headers)


def run_worker(env: FunctionsEnv) -> list[dict[str, Any]]:
    """Run the scan worker on every message of the scan queue, as the host would; the messages."""
    seen = []
    for message in env.receive(SCAN_QUEUE):
        seen.append(json.loads(message.content))
        # azure.functions.queue's QueueMessage is the one the host hands over (with dequeue_count).
        queue_message = QueueMessage(id=message.id, body=message.content, dequeue_count=1)  # type: ignore[no-untyped-call]
        asyncio.run(FUNCTIONS["scan_worker"].get_user_function()(queue_message))
    return seen


@pytest.fixture(scope="module")
def simulator() -> Iterator[TenantSimulator]:
    with TenantSimulator(bundled_scenarios()) as sim:
        yield sim


@pytest.fixture(scope="module")
def world(azurite: AzuriteProcess, simulator: TenantSimulator) -> Iterator[FunctionsEnv]:
    environment = {
        **simulator.environment(),
        "PARTNERGUARD_TENANTS": ",".join([*(s.tenant_id for s in bundled_scenarios()), *SPARE]),
    }
    prefix = "http" + uuid.uuid4().hex[:10]
    yield from functions_env(azurite.connection_string, prefix, environment, clock=Clock())


@pytest.fixture(scope="module")
def scanned(world: FunctionsEnv) -> dict[str, Any]:
    """The partner tenant scanned end to end through the API: POST, worker, done."""
    world.services.scan_queue()
    world.receive(SCAN_QUEUE)  # module fixtures run before `env` empties the queue
    accepted = post_scan(PARTNER)
    assert accepted.status == 202
    messages = run_worker(world)
    assert [m["run_id"] for m in messages] == [accepted.body["run_id"]]
    return accepted.body  # type: ignore[no-any-return]


@pytest.fixture
def env(world: FunctionsEnv) -> FunctionsEnv:
    world.services.scan_queue()  # created on first use
    world.receive(SCAN_QUEUE)  # each test starts with an empty scan queue
    return world


# -- bindings ---------------------------------------------------------------------------------

SPEC_ROUTES = {
    # function name (= operationId) -> (route, methods, auth level), SPEC §4
    "startScan": ("tenants/{tenantId}/scans", ["POST"], "FUNCTION"),
    "getScan": ("tenants/{tenantId}/scans/{runId}", ["GET"], "FUNCTION"),
    "listFindings": ("tenants/{tenantId}/findings", ["GET"], "FUNCTION"),
    "listTenants": ("tenants", ["GET"], "FUNCTION"),
    "dashboard": ("dashboard", ["GET"], "FUNCTION"),
    "health": ("health", ["GET"], "ANONYMOUS"),
}


def test_http_bindings_are_exactly_spec_section_4() -> None:
    http = {}
    for name, function in FUNCTIONS.items():
        document = json.loads(function.get_function_json())
        trigger = next((b for b in document["bindings"] if b["type"] == "httpTrigger"), None)
        if trigger is not None:
            http[name] = (trigger["route"], trigger["methods"], trigger["authLevel"].upper())
    assert http == SPEC_ROUTES


# -- POST /api/tenants/{tenantId}/scans --------------------------------------------------------


def test_post_queues_one_scan_with_a_message_and_a_queued_run(env: FunctionsEnv) -> None:
    tenant = SPARE[0]
    answer = post_scan(tenant.upper())  # GUIDs in any case; answers use the lower-case form
    assert answer.status == 202
    run_id = answer.body["run_id"]
    assert answer.body == {"run_id": run_id, "status": "queued", "status_url": f"/api/tenants/{tenant}/scans/{run_id}"}
    assert answer.headers["Location"] == answer.body["status_url"]

    [message] = env.receive(SCAN_QUEUE)
    parsed = parse_scan_message(message.content)
    assert (parsed.tenant_id, parsed.run_id, parsed.trigger) == (tenant, run_id, "api")
    run = env.services.store.get_run(tenant, run_id)
    assert run is not None and run.status == "queued"

    status = call("getScan", "GET", {"tenantId": tenant, "runId": run_id})
    assert status.status == 200
    assert status.body["status"] == "queued" and status.body["report"] is None
    assert status.body["queued_at"] is not None and status.body["started"] is None


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"{}", "application/json"),
        (b"  { }\n", "application/json; charset=utf-8"),
        (b"", None),
        (b"\r\n", "text/plain"),
    ],
)
def test_post_accepts_no_body_or_exactly_the_empty_object(
    env: FunctionsEnv, body: bytes, content_type: str | None
) -> None:
    tenant = SPARE[1]
    answer = post_scan(tenant, body, content_type)
    assert answer.status == 202
    env.services.guard.release(tenant, answer.body["run_id"])  # the next case queues again


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (b'{"force": true}', "application/json", "invalid_body"),
        (b"[]", "application/json", "invalid_body"),
        (b"null", "application/json", "invalid_body"),
        (b'""', "application/json", "invalid_body"),
        (b"{", "application/json", "invalid_json"),
        (b'{"a":1,}', "application/json", "invalid_json"),
        (b"\xff\xfe{}", "application/json", "invalid_json"),
        (b"{}", "text/plain", "invalid_content_type"),
        (b"{}", None, "invalid_content_type"),
        (b"{}", "application/x-www-form-urlencoded", "invalid_content_type"),
        (b"{" + b" " * 2048 + b"}", "application/json", "invalid_body"),
        (b'{"x": "' + b"A" * 1_000_000 + b'"}', "application/json", "invalid_body"),
    ],
)
def test_post_rejects_any_other_body(env: FunctionsEnv, body: bytes, content_type: str | None, code: str) -> None:
    answer = post_scan(SPARE[2], body, content_type)
    assert answer.status == 400
    assert answer.body["error"]["code"] == code
    assert env.receive(SCAN_QUEUE) == []  # nothing was queued
    assert env.services.store.list_runs(SPARE[2]) == []


BAD_GUIDS = [
    "not-a-guid",
    "7a3f9c2e4b1d4e8a9f6c2d5b8e1a0c73",  # no dashes
    "{7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73}",
    "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73\n",  # `$` would let this one through
    "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c7g",
    "../../admin",
    "",
    "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73' or '1'='1",
]


@pytest.mark.parametrize("tenant_id", BAD_GUIDS)
def test_every_route_answers_400_for_a_tenant_id_that_is_not_a_guid(env: FunctionsEnv, tenant_id: str) -> None:
    for answer in (
        post_scan(tenant_id),
        call("getScan", "GET", {"tenantId": tenant_id, "runId": "abc"}),
        call("listFindings", "GET", {"tenantId": tenant_id}),
    ):
        assert answer.status == 400
        assert answer.body["error"]["code"] == "invalid_tenant_id"
        # Hostile input is never echoed back.
        assert tenant_id.strip() == "" or tenant_id not in json.dumps(answer.body)


def test_post_for_a_tenant_that_is_not_monitored_is_404(env: FunctionsEnv) -> None:
    answer = post_scan(NOT_MONITORED)
    assert answer.status == 404
    assert answer.body["error"]["code"] == "tenant_not_found"
    assert env.receive(SCAN_QUEUE) == []


def test_second_post_while_queued_is_429_naming_the_queued_run(env: FunctionsEnv) -> None:
    tenant = SPARE[3]
    first = post_scan(tenant)
    assert first.status == 202
    again = post_scan(tenant)
    assert again.status == 429
    assert again.body["run_id"] == first.body["run_id"]
    assert again.body["status"] == "queued"
    assert again.body["status_url"] == first.body["status_url"]
    assert again.body["error"]["code"] == "scan_in_progress"
    assert 1 <= int(again.headers["Retry-After"]) <= handlers.RETRY_AFTER_SECONDS
    assert len(env.receive(SCAN_QUEUE)) == 1  # one message, from the first POST only
    assert [r.run_id for r in env.services.store.list_runs(tenant)] == [first.body["run_id"]]


def test_concurrent_posts_queue_exactly_one_scan(env: FunctionsEnv) -> None:
    tenant = SPARE[4]
    callers = 8
    barrier = threading.Barrier(callers)
    answers: list[Answer] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            barrier.wait()
            answers.append(post_scan(tenant))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=one) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    accepted = [a for a in answers if a.status == 202]
    refused = [a for a in answers if a.status == 429]
    assert len(accepted) == 1 and len(refused) == callers - 1
    run_id = accepted[0].body["run_id"]
    assert {a.body["run_id"] for a in refused} == {run_id}
    assert [parse_scan_message(m.content).run_id for m in env.receive(SCAN_QUEUE)] == [run_id]
    assert [r.run_id for r in env.services.store.list_runs(tenant)] == [run_id]


def test_a_guard_left_by_a_finished_run_does_not_block_the_next_scan(env: FunctionsEnv) -> None:
    """A worker that completed its run but died before releasing the guard: the next POST frees
    the stale guard instead of answering 429 until the guard expires."""
    tenant = SPARE[5]
    first = post_scan(tenant)
    run_id = first.body["run_id"]
    env.services.store.fail_run(tenant, run_id, "test", "finished without releasing the guard", env.clock())
    holder = env.services.guard.holder(tenant, env.clock())
    assert holder is not None and holder.run_id == run_id
    second = post_scan(tenant)
    assert second.status == 202
    assert second.body["run_id"] != run_id


def test_an_expired_guard_does_not_block(env: FunctionsEnv) -> None:
    tenant = SPARE[6]
    first = post_scan(tenant)
    assert post_scan(tenant).status == 429
    env.clock.advance(env.services.host.guard_ttl + timedelta(seconds=1))
    try:
        second = post_scan(tenant)
    finally:
        env.clock.advance(-(env.services.host.guard_ttl + timedelta(seconds=1)))
    assert second.status == 202 and second.body["run_id"] != first.body["run_id"]


def test_a_queue_failure_answers_500_marks_the_run_failed_and_frees_the_tenant(
    env: FunctionsEnv, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    tenant = SPARE[7]
    queue = env.services.scan_queue()

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("queue endpoint https://secret.example/?sig=abc unreachable")

    monkeypatch.setattr(queue, "send_message", refuse)
    with caplog.at_level(logging.ERROR):
        answer = post_scan(tenant)
    assert answer.status == 500
    assert answer.body["error"]["code"] == "internal_error"
    text = json.dumps(answer.body)
    assert "secret" not in text and "ConnectionError" not in text and "Traceback" not in text
    correlation_id = answer.body["error"]["message"].rsplit(" ", 1)[-1]
    assert any(correlation_id in record.getMessage() for record in caplog.records)
    [run] = env.services.store.list_runs(tenant)
    assert run.status == "failed" and run.error_code == "enqueue_failed"
    assert env.services.guard.holder(tenant, env.clock()) is None
    monkeypatch.undo()
    assert post_scan(tenant).status == 202  # nothing blocks the tenant


# -- GET /api/tenants/{tenantId}/scans/{runId} ---------------------------------------------------


def test_a_scan_queued_through_the_api_completes_and_reports(env: FunctionsEnv, scanned: dict[str, Any]) -> None:
    answer = call("getScan", "GET", {"tenantId": PARTNER, "runId": scanned["run_id"]})
    assert answer.status == 200
    document = answer.body
    assert document["run_id"] == scanned["run_id"] and document["tenant_id"] == PARTNER
    assert document["status"] == "succeeded"
    assert document["error"] is None
    assert document["report"]["run_id"] == scanned["run_id"]
    assert document["report"]["tenant"] == {"id": PARTNER, "name": "Contoso Partner Services", "role": "partner"}
    stored = env.services.store.get_report(PARTNER, scanned["run_id"])
    assert stored is not None and document["report"] == stored.to_document()
    # The guard is free again: a new scan can be queued.
    again = post_scan(PARTNER)
    assert again.status == 202
    env.services.guard.release(PARTNER, again.body["run_id"])
    env.services.store.fail_run(PARTNER, again.body["run_id"], "test", "not run", env.clock())


@pytest.mark.parametrize(
    "run_id", ["", "a" * 65, "run_1", "run/1", "..", "abc\n", "abc def", "r%2F1", "ünïcode", "a;drop"]
)
def test_get_scan_answers_400_for_a_bad_run_id(env: FunctionsEnv, run_id: str) -> None:
    answer = call("getScan", "GET", {"tenantId": PARTNER, "runId": run_id})
    assert answer.status == 400
    assert answer.body["error"]["code"] == "invalid_run_id"


def test_get_scan_answers_404_for_an_unknown_run_or_tenant(env: FunctionsEnv, scanned: dict[str, Any]) -> None:
    unknown_run = call("getScan", "GET", {"tenantId": PARTNER, "runId": "0000000000000-abcdef0123"})
    assert unknown_run.status == 404 and unknown_run.body["error"]["code"] == "run_not_found"
    # A run of another tenant is not found under this one.
    elsewhere = call("getScan", "GET", {"tenantId": FABRIKAM, "runId": scanned["run_id"]})
    assert elsewhere.status == 404 and elsewhere.body["error"]["code"] == "run_not_found"
    unknown_tenant = call("getScan", "GET", {"tenantId": NOT_MONITORED, "runId": scanned["run_id"]})
    assert unknown_tenant.status == 404 and unknown_tenant.body["error"]["code"] == "tenant_not_found"


def test_a_failed_run_reports_its_error_and_no_report(env: FunctionsEnv) -> None:
    tenant = SPARE[8]
    run_id = post_scan(tenant).body["run_id"]
    env.services.store.fail_run(tenant, run_id, "consent_missing", "AADSTS65001: no consent", env.clock())
    env.services.store.set_alert_status(tenant, run_id, "sent")
    answer = call("getScan", "GET", {"tenantId": tenant, "runId": run_id})
    assert answer.body["status"] == "failed"
    assert answer.body["error"] == {"code": "consent_missing", "message": "AADSTS65001: no consent"}
    assert answer.body["alert"] == {"status": "sent", "error": None}
    assert answer.body["report"] is None


# -- GET /api/tenants/{tenantId}/findings ----------------------------------------------------------


def _all_pages(tenant: str, **params: str) -> tuple[list[dict[str, Any]], int]:
    findings: list[dict[str, Any]] = []
    pages = 0
    query = dict(params)
    while True:
        answer = call("listFindings", "GET", {"tenantId": tenant}, params=query)
        assert answer.status == 200
        assert answer.body["tenant_id"] == tenant
        findings += answer.body["findings"]
        pages += 1
        assert pages < 500
        if answer.body["next"] is None:
            return findings, pages
        query = {**params, "continuation": answer.body["next"]}


def test_findings_are_served_with_their_lifecycle(env: FunctionsEnv, scanned: dict[str, Any]) -> None:
    answer = call("listFindings", "GET", {"tenantId": PARTNER})
    assert answer.status == 200
    report = env.services.store.get_report(PARTNER, scanned["run_id"])
    assert report is not None
    expected = {(c.id, f.finding.subject_id) for c in report.checks for f in c.findings}
    everything, _ = _all_pages(PARTNER, top="1000")
    assert {(f["check_id"], f["subject_id"]) for f in everything} == expected
    assert {f["state"] for f in everything} <= {"new", "open", "excepted"}
    assert all(f["first_seen"] and f["last_seen"] and f["resolved_at"] is None for f in everything)


def test_findings_page_through_signed_continuations_without_loss_or_repeat(
    env: FunctionsEnv, scanned: dict[str, Any]
) -> None:
    everything, _ = _all_pages(PARTNER, top="1000", state="all")
    paged, pages = _all_pages(PARTNER, top="3", state="all")
    assert pages > 2
    keys = [(f["check_id"], f["subject_id"]) for f in paged]
    assert len(keys) == len(set(keys))
    assert sorted(keys) == sorted((f["check_id"], f["subject_id"]) for f in everything)


def test_findings_filter_by_check(env: FunctionsEnv, scanned: dict[str, Any]) -> None:
    findings, _ = _all_pages(PARTNER, check="mfa.registration", top="2")
    assert findings and {f["check_id"] for f in findings} == {"mfa.registration"}
    resolved = call("listFindings", "GET", {"tenantId": PARTNER}, params={"state": "resolved"})
    assert resolved.status == 200 and resolved.body == {"tenant_id": PARTNER, "findings": [], "next": None}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"state": "open"}, "invalid_state"),
        ({"state": ""}, "invalid_state"),
        ({"check": "mfa"}, "invalid_check"),
        ({"check": "mfa.registration' or 1 eq 1"}, "invalid_check"),
        ({"top": "0"}, "invalid_top"),
        ({"top": "1001"}, "invalid_top"),
        ({"top": "-1"}, "invalid_top"),
        ({"top": "1.5"}, "invalid_top"),
        ({"top": "ten"}, "invalid_top"),
        ({"top": "10\n"}, "invalid_top"),
        ({"top": "٣"}, "invalid_top"),  # an Arabic-Indic digit: int() would take it
        ({"top": ""}, "invalid_top"),
        ({"skip": "10"}, "invalid_parameter"),
        ({"$filter": "PartitionKey ne ''"}, "invalid_parameter"),
        ({"continuation": ""}, "invalid_continuation"),
        ({"continuation": "x" * 3000}, "invalid_continuation"),
        ({"continuation": "garbage"}, "invalid_continuation"),
    ],
)
def test_findings_validate_every_parameter(env: FunctionsEnv, params: dict[str, str], code: str) -> None:
    answer = call("listFindings", "GET", {"tenantId": PARTNER}, params=params)
    assert answer.status == 400
    assert answer.body["error"]["code"] == code


def test_the_function_key_in_the_query_is_not_an_unknown_parameter(env: FunctionsEnv) -> None:
    answer = call("listFindings", "GET", {"tenantId": PARTNER}, params={"code": "the-function-key"})
    assert answer.status == 200


def test_continuation_tokens_are_tamper_evident_and_bound_to_their_query(
    env: FunctionsEnv, scanned: dict[str, Any]
) -> None:
    first = call("listFindings", "GET", {"tenantId": PARTNER}, params={"top": "2", "state": "all"})
    token = first.body["next"]
    assert token
    ok = call("listFindings", "GET", {"tenantId": PARTNER}, params={"state": "all", "continuation": token})
    assert ok.status == 200

    payload, mac = token.split(".")
    flipped = payload[:-1] + ("A" if payload[-1] != "A" else "B")
    forged = [
        f"{flipped}.{mac}",  # payload changed, old MAC
        f"{payload}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",  # MAC changed
        payload,  # MAC dropped
        # The store's own (unsigned) token format, as a caller could build it by hand.
        env.services.store.list_findings(PARTNER, state="all", top=2).next or "",
    ]
    for bad in forged:
        answer = call("listFindings", "GET", {"tenantId": PARTNER}, params={"state": "all", "continuation": bad})
        assert answer.status == 400, bad
        assert answer.body["error"]["code"] == "invalid_continuation"
    # A genuine token, used for another query or another tenant.
    for tenant, params in (
        (PARTNER, {"state": "active"}),
        (PARTNER, {"state": "all", "check": "mfa.registration"}),
        (FABRIKAM, {"state": "all"}),
    ):
        answer = call("listFindings", "GET", {"tenantId": tenant}, params={**params, "continuation": token})
        assert answer.status == 400 and answer.body["error"]["code"] == "invalid_continuation"


def test_findings_of_a_tenant_that_is_not_monitored_are_404(env: FunctionsEnv) -> None:
    answer = call("listFindings", "GET", {"tenantId": NOT_MONITORED})
    assert answer.status == 404 and answer.body["error"]["code"] == "tenant_not_found"


# -- GET /api/tenants and the dashboard -------------------------------------------------------------


def test_tenants_lists_every_monitored_tenant_with_consent_and_last_run(
    env: FunctionsEnv, scanned: dict[str, Any]
) -> None:
    env.services.registry.set_consent(FABRIKAM, "missing", "AADSTS65001: the app is not consented", env.clock())
    answer = call("listTenants", "GET")
    assert answer.status == 200
    tenants = {t["id"]: t for t in answer.body["tenants"]}
    assert list(tenants) == [*(s.tenant_id for s in bundled_scenarios()), *SPARE]
    partner = tenants[PARTNER]
    assert partner["name"] == "Contoso Partner Services" and partner["role"] == "partner"
    assert partner["consent"] == "ok"
    # The partner's newest run may be one a later test queued; its newest success is the scan.
    assert partner["last_successful_run_age_hours"] is not None
    assert 0 <= partner["last_successful_run_age_hours"] < 1
    assert tenants[FABRIKAM]["consent"] == "missing"
    assert tenants[FABRIKAM]["role"] == "customer"
    never = tenants[SPARE[9]]
    assert never == {
        "id": SPARE[9],
        "name": SPARE[9],
        "role": "customer",
        "consent": "ok",
        "last_run": None,
        "last_successful_run_age_hours": None,
        "doctor": None,
    }


def test_tenants_carry_doctors_judgement_of_what_the_last_scan_found(
    env: FunctionsEnv, scanned: dict[str, Any]
) -> None:
    partner = next(t for t in call("listTenants", "GET").body["tenants"] if t["id"] == PARTNER)
    doctor = partner["doctor"]  # recorded by the scan worker: its sign-in and subscribedSkus
    assert doctor["sign_in"] == "ok" and doctor["cloud"] == "public" and doctor["checked_at"]
    assert doctor["permissions"]["missing"] == [] and "AuditLog.Read.All" in doctor["permissions"]["granted"]
    assert doctor["licences"] == {"entra_id_p1": True}
    assert doctor["gdap"] == "not-applicable"
    assert doctor["blinded_checks"] == [] and doctor["fixes"] == []


def test_tenants_carry_recorded_gaps_with_their_fixes(env: FunctionsEnv) -> None:
    from partnerguard.doctor.facts import AccessFacts

    tenant = SPARE[11]
    no_consent = AccessFacts("no-consent", "public", detail="AADSTS7000229: no service principal")
    env.services.registry.record_access(tenant, no_consent.to_document(), env.clock())
    env.services.registry.record_gdap({tenant: "none"}, env.clock())
    doctor = next(t for t in call("listTenants", "GET").body["tenants"] if t["id"] == tenant)["doctor"]
    assert doctor["sign_in"] == "no-consent" and doctor["gdap"] == "none"
    assert {b["reason_code"] for b in doctor["blinded_checks"]} == {"consent"}
    assert any(f"/{tenant}/adminconsent?client_id=" in fix for fix in doctor["fixes"])
    assert any("no active GDAP relationship" in fix for fix in doctor["fixes"])  # read from the partner


def test_tenants_last_run_is_the_newest_run(env: FunctionsEnv, scanned: dict[str, Any]) -> None:
    partner = next(t for t in call("listTenants", "GET").body["tenants"] if t["id"] == PARTNER)
    newest = env.services.store.list_runs(PARTNER, top=1)[0]
    assert partner["last_run"]["run_id"] == newest.run_id
    assert partner["last_run"]["status"] == newest.status


HOSTILE_NAME = '<script>alert("x")</script><img src=x onerror=alert(1)>\u202egnp.exe'


def test_dashboard_is_the_html_report_that_runs_only_its_own_script_and_escapes_tenant_text(
    env: FunctionsEnv, scanned: dict[str, Any]
) -> None:
    import re

    from partnerguard.render.html_report import SCRIPT, SCRIPT_HASH

    env.services.registry.record_scan(FABRIKAM, HOSTILE_NAME, "customer", scanned["run_id"], "succeeded", env.clock())
    env.services.registry.set_consent(FABRIKAM, "missing", "<b>AADSTS65001</b>", env.clock())
    answer = call("dashboard", "GET")
    assert answer.status == 200 and answer.mimetype == "text/html"
    page = answer.body
    csp = answer.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    # One script, the constant filter script, allowed by its hash; tenant markup is text.
    assert f"script-src '{SCRIPT_HASH}'" in csp
    assert re.findall(r"<script>(.*?)</script>", page, re.DOTALL) == [SCRIPT] and page.count("<script") == 1
    assert answer.headers["X-Content-Type-Options"] == "nosniff"
    assert "<img" not in page
    assert "&lt;script&gt;" in page
    # The partner's latest report: MFA coverage, the compliance chart, its findings (a hostile
    # display name of the scenario among them, escaped).
    assert "MFA coverage" in page and "Compliance over the stored runs" in page
    assert 'class="finding"' in page and "&lt;script&gt;alert(1)&lt;/script&gt; Ops" in page
    assert "\u202e" not in page and "\\u202e" in page  # the bidi override is shown, not obeyed
    assert "&lt;b&gt;AADSTS65001&lt;/b&gt;" in page
    # Each monitored tenant is on the page, with its consent and its last run.
    for scenario in bundled_scenarios():
        assert scenario.tenant_id in page
    assert "Contoso Partner Services" in page
    assert "missing" in page and "succeeded" in page


def test_dashboard_style_and_script_are_allowed_by_their_hashes_only(env: FunctionsEnv) -> None:
    import base64
    import hashlib
    import re

    answer = call("dashboard", "GET")
    styles = re.findall(r"<style>(.*?)</style>", answer.body, re.DOTALL)
    assert len(styles) == 1
    digest = base64.b64encode(hashlib.sha256(styles[0].encode("utf-8")).digest()).decode("ascii")
    assert f"style-src 'sha256-{digest}'" in answer.headers["Content-Security-Policy"]
    assert "style=" not in answer.body  # inline style attributes would be blocked
    scripts = re.findall(r"<script>(.*?)</script>", answer.body, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode("utf-8")).digest()).decode("ascii")
    assert f"script-src 'sha256-{digest}'" in answer.headers["Content-Security-Policy"]


# -- unexpected errors ----------------------------------------------------------------------------


def test_an_unexpected_error_is_a_generic_500_with_a_logged_correlation_id(
    env: FunctionsEnv, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(self: Any, tenant_id: str, run_id: str) -> None:
        raise RuntimeError("AccountKey=c2VjcmV0 at /home/site/wwwroot/partnerguard/storage/store.py line 1")

    monkeypatch.setattr(type(env.services.store), "get_run", explode)
    with caplog.at_level(logging.ERROR):
        answer = call("getScan", "GET", {"tenantId": PARTNER, "runId": "0000000000000-abcdef0123"})
    assert answer.status == 500
    assert answer.mimetype == "application/json"
    assert set(answer.body) == {"error"} and answer.body["error"]["code"] == "internal_error"
    body = json.dumps(answer.body)
    for leak in ("AccountKey", "c2VjcmV0", "store.py", "RuntimeError", "Traceback"):
        assert leak not in body
    correlation_id = answer.body["error"]["message"].rsplit(" ", 1)[-1]
    assert len(correlation_id) == 32
    logged = [r for r in caplog.records if correlation_id in r.getMessage()]
    assert logged and logged[0].exc_info is not None


def test_queued_run_of_a_tenant_takes_its_registry_name(env: FunctionsEnv, scanned: dict[str, Any]) -> None:
    """A POST names the run after what the registry learnt, not after the id."""
    tenant = SPARE[10]
    env.services.registry.record_scan(tenant, "Spare Nine Ltd", "customer", scanned["run_id"], "failed", env.clock())
    run_id = post_scan(tenant).body["run_id"]
    run = env.services.store.get_run(tenant, run_id)
    assert run is not None and run.tenant_name == "Spare Nine Ltd"
    assert env.services.store.list_runs(tenant)[0].run_id == run_id

"""The generated sign-in log (testbed/simulator/sign_in_log.py): deterministic, at the rates it
is given, and answering every query exactly as the same rows listed in a scenario do, through
the simulator's real HTTP pipeline (filter, order, paging)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import httpx

from testbed.simulator import TenantSimulator, generate_tenant
from testbed.simulator.ground_truth import LEGACY_AUTH_SIGN_INS, SINGLE_FACTOR_SIGN_INS
from testbed.simulator.scenario import JsonObject
from testbed.simulator.sign_in_log import (
    BUCKET_SECONDS,
    COMPLIANT,
    NON_COMPLIANT,
    LazySignInLog,
    Population,
    SignInProfile,
    sign_in_subjects,
    time_bounds,
)
from tests.simulator_http import client

GENERATED = "5a5a5a5a-0000-4000-8000-0000000000a1"
LISTED = "5a5a5a5a-0000-4000-8000-0000000000a2"
END = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
START = END - timedelta(hours=3)


def _log(tenant_id: str = GENERATED, profile: SignInProfile = NON_COMPLIANT, users: int = 60) -> LazySignInLog:
    scenario = generate_tenant(tenant_id, users, seed=4)
    return LazySignInLog(scenario.users, tenant_id, START, END, profile, seed=9)


def _materialized(log: LazySignInLog) -> list[dict[str, object]]:
    """Every row of the log, newest minute first: the listed twin of the generated log."""
    rows: list[dict[str, object]] = []
    for bucket in range(log.end_bucket - 1, log.first_bucket - 1, -1):
        rows.extend(dict(row) for row in log.bucket_rows(bucket, log.populations))
    return rows


def test_the_log_is_deterministic_and_follows_its_rates() -> None:
    first, second = _log(), _log()
    assert _materialized(first) == _materialized(second)
    rows = _materialized(first)
    enabled = sum(1 for user in generate_tenant(GENERATED, 60, seed=4).users if user["accountEnabled"])
    kinds = Counter(str(row["signInEventTypes"][0]) for row in rows)  # type: ignore[index]
    # Exact totals: floor differences of the rate per minute, never a random draw.
    assert kinds["interactiveUser"] == first.count(START, END, "interactiveUser")
    assert abs(kinds["interactiveUser"] - enabled * 3 * 0.12) <= len(first.populations)
    assert abs(kinds["nonInteractiveUser"] - enabled * 3 * 1.2) <= len(first.populations)
    assert all(
        START.strftime("%Y-%m-%dT%H:%M:%SZ") <= str(row["createdDateTime"]) < "2026-11-26T12:00:00Z" for row in rows
    )
    legacy = [row for row in rows if row["clientAppUsed"] not in ("Browser", "Mobile Apps and Desktop clients")]
    assert 0.01 < len(legacy) / len(rows) < 0.04  # 2 % legacy, 0.5 % failed attempts
    # A compliant tenant: modern clients and MFA only.
    compliant = _materialized(_log(profile=COMPLIANT))
    assert {row["authenticationRequirement"] for row in compliant} == {"multiFactorAuthentication"}
    assert {row["clientAppUsed"] for row in compliant} == {"Browser", "Mobile Apps and Desktop clients"}


def test_time_bounds_are_read_only_from_plain_conjunctions() -> None:
    assert time_bounds("createdDateTime ge 2026-11-26T10:00:00Z and createdDateTime le 2026-11-26T11:00:00Z") == (
        datetime(2026, 11, 26, 10, tzinfo=UTC),
        datetime(2026, 11, 26, 11, tzinfo=UTC),
    )
    assert time_bounds("createdDateTime gt 2026-11-26T10:00:00Z") == (
        datetime(2026, 11, 26, 10, 0, 1, tzinfo=UTC),
        None,
    )
    assert time_bounds("createdDateTime ge 2026-11-26T10:00:00Z or clientAppUsed eq 'IMAP4'") is None
    # A word inside a string literal is not an operator.
    assert time_bounds("clientAppUsed eq 'or not' and createdDateTime le 2026-11-26T11:00:00Z") == (
        None,
        datetime(2026, 11, 26, 11, tzinfo=UTC),
    )


def _pages(http: httpx.Client, query: str, top: int) -> tuple[list[str], int]:
    url: str | None = f"/beta/auditLogs/signIns?$top={top}&$filter={quote(query)}"
    ids: list[str] = []
    pages = 0
    while url:
        answer = http.get(url)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        ids.extend(row["id"] for row in body["value"])
        pages += 1
        url = body.get("@odata.nextLink")
    return ids, pages


def test_every_query_is_answered_as_the_same_rows_listed_answer_it() -> None:
    log = _log()
    listed = generate_tenant(LISTED, 60, seed=4)
    listed.sign_ins = _materialized(log)
    generated = generate_tenant(GENERATED, 60, seed=4)
    since, until = "2026-11-26T09:30:00Z", "2026-11-26T11:40:30Z"
    times = f"createdDateTime ge {since} and createdDateTime le {until}"
    queries = [
        # A full stream, a filtered single-factor stream, a filtered legacy stream (PartnerGuard's).
        f"{times} and signInEventTypes/any(t: t eq 'nonInteractiveUser')",
        f"{times} and signInEventTypes/any(t: t eq 'nonInteractiveUser') and status/errorCode eq 0 "
        "and authenticationRequirement eq 'singleFactorAuthentication'",
        f"{times} and signInEventTypes/any(t: t eq 'nonInteractiveUser') and status/errorCode eq 0 "
        "and clientAppUsed eq 'Exchange ActiveSync' and authenticationRequirement eq 'multiFactorAuthentication'",
        # No event type: interactive only, as Graph answers.
        times,
        # A range inside one minute, and one that names a user (no pruning: row by row).
        "createdDateTime ge 2026-11-26T10:15:10Z and createdDateTime le 2026-11-26T10:15:40Z",
        f"{times} and userId eq '{listed.users[5]['id']}' and signInEventTypes/any(t: t eq 'nonInteractiveUser')",
        # Not a conjunction: every minute of the log, row by row.
        "clientAppUsed eq 'IMAP4' or clientAppUsed eq 'POP3'",
        # Nothing matches.
        f"{times} and clientAppUsed eq 'Autodiscover'",
    ]
    with (
        TenantSimulator([generated, listed], enforce_limits=False, sign_in_logs={GENERATED: log}) as sim,
        client(sim, GENERATED) as lazy,
        client(sim, LISTED) as materialized,
    ):
        for query in queries:
            for top in (7, 1000):
                expected, _ = _pages(materialized, query, top)
                answered, pages = _pages(lazy, query, top)
                assert answered == expected, (query, top)
                # No empty page at the end: the last page is the last one with rows.
                assert pages == max(1, -(-len(expected) // top)), (query, top)
        assert len(_pages(lazy, queries[1], 1000)[0]) > 0
        assert len(_pages(lazy, queries[2], 1000)[0]) > 0


def test_a_filtered_query_of_a_week_generates_only_what_it_returns() -> None:
    """100 users, a week: the single-factor stream is found without generating the ~20,000
    ordinary sign-ins, which is what makes a 100,000-user week answerable at all."""
    scenario = generate_tenant(GENERATED, 100, seed=4)
    log = LazySignInLog(scenario.users, GENERATED, END - timedelta(days=7), END, NON_COMPLIANT, seed=9)
    generated: list[int] = []
    original = log._generate

    def counting(population: Population, bucket: int) -> list[JsonObject]:
        rows = original(population, bucket)
        generated.append(len(rows))
        return rows

    log._generate = counting  # type: ignore[method-assign]
    with (
        TenantSimulator([scenario], enforce_limits=False, sign_in_logs={GENERATED: log}) as sim,
        client(sim, GENERATED) as http,
    ):
        query = (
            "createdDateTime ge 2026-11-19T12:00:00Z and createdDateTime le 2026-11-26T12:00:00Z and "
            "signInEventTypes/any(t: t eq 'nonInteractiveUser') and status/errorCode eq 0 and "
            "authenticationRequirement eq 'singleFactorAuthentication'"
        )
        ids, _ = _pages(http, query, 1000)
    total = log.count(END - timedelta(days=7), END)
    assert total > 15_000
    assert len(ids) > 100
    assert sum(generated) < 3 * len(ids)


def test_ground_truth_reads_the_generated_rows() -> None:
    log = _log()
    rows = _materialized(log)
    legacy = {
        f"{row['userId']}|{str(row['clientAppUsed']).lower()}"
        for row in rows
        if row["clientAppUsed"] not in ("Browser", "Mobile Apps and Desktop clients")
        and row["status"]["errorCode"] == 0  # type: ignore[index]
    }
    assert sign_in_subjects(log, LEGACY_AUTH_SIGN_INS, END, 168) == legacy
    single = sign_in_subjects(log, SINGLE_FACTOR_SIGN_INS, END, 168)
    assert single and all(subject.count("|") == 1 for subject in single)
    # The window counts: an hour's window sees fewer subjects than three hours'.
    assert sign_in_subjects(log, LEGACY_AUTH_SIGN_INS, END, 1) < legacy
    assert BUCKET_SECONDS == 60

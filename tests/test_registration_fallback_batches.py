"""The mfa.registration fallback when a whole `$batch` POST fails: those users are unreadable,
the other batches carry on, and only a failed sign-in stops the scan (fake Graph client)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from partnerguard.graph.client import BatchResult
from partnerguard.graph.errors import (
    ConsentMissing,
    GraphError,
    PermissionDenied,
    Throttled,
    TransientGraphError,
)
from partnerguard.graph.pacing import ApiClass
from partnerguard.graph.requests import GraphRequest
from partnerguard.model import Unavailable
from partnerguard.registration_fallback import FallbackOutcome, read_user_methods, run_fallback

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
TENANT = "1f1f1f1f-1111-4222-8333-444444444444"
FIDO2 = "#microsoft.graph.fido2AuthenticationMethod"
USERS = [f"00000000-0000-4000-8000-{i:012d}" for i in range(12)]  # three batches of 5, 5, 2


class FakePacer:
    def max_cost(self, api_class: ApiClass) -> int:
        return 5


class FakeClient:
    """Answers each `batch` call from `script`: an exception to raise, or None to answer every
    sub-request with one FIDO2 method. `policy` is the authentication methods policy."""

    def __init__(self, script: Sequence[BaseException | None]) -> None:
        self.script = list(script)
        self.pacer = FakePacer()
        self.batches: list[list[str]] = []

    async def batch(self, requests: Sequence[GraphRequest]) -> list[BatchResult]:
        self.batches.append([request.relative_url.split("/")[2] for request in requests])
        outcome = self.script.pop(0) if self.script else None
        if outcome is not None:
            raise outcome
        return [BatchResult(request, 200, {"value": [{"@odata.type": FIDO2}]}, None) for request in requests]

    async def collection_from_batch(self, result: BatchResult) -> list[dict[str, Any]]:
        return list(result.body["value"])

    async def get_object(self, request: GraphRequest) -> dict[str, Any]:
        return {"authenticationMethodConfigurations": [{"id": "Fido2", "state": "enabled"}]}


def read(client: FakeClient) -> Any:
    return asyncio.run(
        read_user_methods(
            client,  # type: ignore[arg-type]
            TENANT,
            USERS,
            NOW,
            admin_user_ids=frozenset(),
            cache=None,
            deadline=float("inf"),
        )
    )


@pytest.mark.parametrize(
    "failure",
    [
        Throttled("TooManyRequests", "throttled after retries", 429, "$batch"),
        TransientGraphError("HTTP503", "HTTP 503", 503, "$batch"),
        GraphError("InvalidJson", "not JSON", 200, "$batch"),
    ],
)
def test_a_failed_batch_leaves_its_users_unreadable_and_the_rest_are_read(failure: GraphError) -> None:
    client = FakeClient([None, failure, None])
    reads = read(client)
    assert len(client.batches) == 3  # the batch after the failed one was still sent
    failed_batch = set(client.batches[1])
    assert reads.unreadable_user_ids == failed_batch
    assert reads.unassessed_user_ids == frozenset()  # none of them is a time-budget casualty
    assert set(reads.methods) == set(USERS) - failed_batch
    assert all(methods == (FIDO2,) for methods in reads.methods.values())


def test_a_failed_sign_in_still_stops_the_scan() -> None:
    client = FakeClient([None, ConsentMissing("AADSTS65001", "no consent")])
    with pytest.raises(ConsentMissing):
        read(client)


def test_a_permission_refused_for_the_batch_names_the_permission() -> None:
    denied = PermissionDenied("Authorization_RequestDenied", "denied", "UserAuthenticationMethod.Read.All")
    reads = read(FakeClient([denied]))
    assert isinstance(reads, Unavailable)
    assert reads.reason_code == "permission:UserAuthenticationMethod.Read.All"


def test_run_fallback_reports_unreadable_users_apart() -> None:
    client = FakeClient([TransientGraphError("HTTP500", "HTTP 500", 500, "$batch")])
    outcome = asyncio.run(
        run_fallback(
            client,  # type: ignore[arg-type]
            TENANT,
            USERS,
            NOW,
            admin_user_ids=frozenset(),
            cache=None,
            deadline=float("inf"),
        )
    )
    assert isinstance(outcome, FallbackOutcome)
    assert outcome.unreadable_user_ids == frozenset(USERS[:5])
    assert outcome.unassessed_user_ids == frozenset()
    assert isinstance(outcome.user_auth_methods, dict) and set(outcome.user_auth_methods) == set(USERS[5:])

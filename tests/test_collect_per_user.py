"""read_per_user_mfa_states: whom it reads, and what a failed sub-request costs (fake client)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from partnerguard.collect import read_per_user_mfa_states
from partnerguard.graph.client import BatchResult
from partnerguard.graph.errors import (
    GraphError,
    GraphRequestError,
    LicenceRequired,
    PermissionDenied,
    Throttled,
    TransientGraphError,
)
from partnerguard.graph.requests import GraphRequest
from partnerguard.model import Unavailable, User

TENANT = "1f1f1f1f-1111-4222-8333-444444444444"
ALICE = User("alice", "Alice", "alice@contoso.example", True, "Member")
BOB = User("bob", "Bob", "bob@contoso.example", True, "Member")
GUEST = User("guest", "Guest", "guest_fabrikam.example#EXT#@contoso.example", True, "Guest")
GONE = User("gone", "Gone", "gone@contoso.example", False, "Member")


class FakeClient:
    """Answers each sub-request by user id from `answers`: a state, an error, or a raw body."""

    tenant_id = TENANT

    def __init__(self, answers: Mapping[str, str | GraphError | object]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def batch(self, requests: Sequence[GraphRequest]) -> list[BatchResult]:
        results = []
        for request in requests:
            user_id = request.relative_url.split("/")[2]
            self.asked.append(user_id)
            answer = self.answers.get(user_id, "disabled")
            if isinstance(answer, GraphError):
                results.append(BatchResult(request, answer.status or 0, None, answer))
            elif isinstance(answer, str):
                results.append(BatchResult(request, 200, {"perUserMfaState": answer}, None))
            else:
                results.append(BatchResult(request, 200, answer, None))
        return results


def read(client: FakeClient, users: Sequence[User]) -> Any:
    return asyncio.run(read_per_user_mfa_states(client, users))  # type: ignore[arg-type]


def test_every_enabled_user_is_read_guests_included() -> None:
    client = FakeClient({ALICE.id: "enforced", GUEST.id: "enabled"})
    states = read(client, [ALICE, GUEST, GONE])
    assert client.asked == [ALICE.id, GUEST.id]
    assert states == {ALICE.id: "enforced", GUEST.id: "enabled"}


@pytest.mark.parametrize(
    "failure",
    [
        GraphRequestError("Request_ResourceNotFound", "gone", 404, "authenticationRequirements"),
        Throttled("TooManyRequests", "throttled after retries", 429, "authenticationRequirements"),
        TransientGraphError("HTTP500", "HTTP 500", 500, "authenticationRequirements"),
        {"unexpected": "shape"},
        ["not", "an", "object"],
    ],
)
def test_one_failed_sub_request_leaves_only_that_user_out(failure: object) -> None:
    states = read(FakeClient({ALICE.id: "enforced", BOB.id: failure}), [ALICE, BOB, GUEST])
    assert states == {ALICE.id: "enforced", GUEST.id: "disabled"}


@pytest.mark.parametrize(
    ("failure", "reason_code"),
    [
        (
            PermissionDenied("Authorization_RequestDenied", "denied", "Policy.Read.All", "authenticationRequirements"),
            "permission:Policy.Read.All",
        ),
        (LicenceRequired("no P1", "authenticationRequirements"), "licence:AAD_PREMIUM"),
    ],
)
def test_a_refusal_that_concerns_everyone_makes_the_map_unavailable(failure: GraphError, reason_code: str) -> None:
    states = read(FakeClient({BOB.id: failure}), [ALICE, BOB, GUEST])
    assert isinstance(states, Unavailable)
    assert states.reason_code == reason_code

"""The findings route's continuation tokens (partnerguard/api/tokens.py), without storage.

SPEC §4 promises a 400 for any token the app did not issue. Before issue 15 a token whose MAC
part held a non-ASCII character (`AAAA.é`) made `hmac.compare_digest` raise TypeError: a 500.
"""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from partnerguard.api.tokens import ContinuationSigner, InvalidToken

TENANT = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
SIGNER = ContinuationSigner(hashlib.sha256(b"test key").digest())


def test_a_token_round_trips_for_its_own_query_only() -> None:
    token = SIGNER.wrap("store-token", TENANT, "active", None)
    assert SIGNER.unwrap(token, TENANT, "active", None) == "store-token"
    with pytest.raises(InvalidToken):
        SIGNER.unwrap(token, TENANT, "all", None)


@pytest.mark.parametrize(
    "token",
    [
        "AAAA.é",  # the case of issue 15 (6)
        "AAAA.\u00e9\u00e9\u00e9",
        "AAAA.\U0001f600",
        "AAAA.\ud800",  # a lone surrogate, as a query string can decode to
        "é.AAAA",
        "AAAA.AAAA\u0000",
    ],
)
def test_a_mac_or_payload_outside_base64url_is_refused_not_raised(token: str) -> None:
    with pytest.raises(InvalidToken):
        SIGNER.unwrap(token, TENANT, "active", None)


@settings(derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=st.text(max_size=64), mac=st.text(max_size=64))
def test_any_text_on_either_side_of_the_dot_is_invalid_token_and_nothing_else(payload: str, mac: str) -> None:
    with pytest.raises(InvalidToken):
        SIGNER.unwrap(f"{payload}.{mac}", TENANT, "active", None)

"""Graph and sign-in failures map to typed errors, and those to the checks' Unavailable."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ClientAuthenticationError

from partnerguard.graph.errors import (
    MAX_MESSAGE_CHARS,
    ConsentMissing,
    GraphRequestError,
    LicenceRequired,
    PermissionDenied,
    SignInFailed,
    Throttled,
    TransientGraphError,
    error_from_response,
    error_from_sign_in,
)
from partnerguard.model import Status


def body(code: str, message: str = "details") -> dict[str, object]:
    return {"error": {"code": code, "message": message, "innerError": {"request-id": "r"}}}


def test_licence_error_is_not_assessed_with_licence_code() -> None:
    error = error_from_response(403, body("Authentication_RequestFromNonPremiumTenantOrB2CTenant"), "AuditLog.Read.All")
    assert isinstance(error, LicenceRequired)
    unavailable = error.unavailable()
    assert unavailable.reason_code == "licence:AAD_PREMIUM"
    assert unavailable.status is Status.NOT_ASSESSED


def test_permission_error_names_the_requests_permission() -> None:
    error = error_from_response(
        403, body("Authorization_RequestDenied", "Insufficient privileges"), "AuditLog.Read.All"
    )
    assert isinstance(error, PermissionDenied)
    assert error.permission == "AuditLog.Read.All"
    assert error.unavailable().reason_code == "permission:AuditLog.Read.All"
    assert "AuditLog.Read.All" in error.unavailable().reason


def test_no_directory_read_access_asks_for_directory_read_all() -> None:
    error = error_from_response(403, body("Authentication_ApplicationHasNoDirectoryReadAccess"), "AuditLog.Read.All")
    assert isinstance(error, PermissionDenied)
    assert error.unavailable().reason_code == "permission:Directory.Read.All"


@pytest.mark.parametrize(
    ("status", "payload", "kind", "code"),
    [
        (429, body("TooManyRequests"), Throttled, "TooManyRequests"),
        (429, None, Throttled, "TooManyRequests"),
        (503, body("serviceNotAvailable"), TransientGraphError, "serviceNotAvailable"),
        (504, "not json", TransientGraphError, "HTTP504"),
        (400, body("Request_UnsupportedQuery"), GraphRequestError, "Request_UnsupportedQuery"),
        (403, body("Forbidden"), GraphRequestError, "Forbidden"),
        (404, None, GraphRequestError, "HTTP404"),
    ],
)
def test_other_failures_are_errors(status: int, payload: object, kind: type, code: str) -> None:
    error = error_from_response(status, payload, "User.Read.All", "users")
    assert type(error) is kind
    unavailable = error.unavailable()
    assert unavailable.reason_code == f"error:{code}"
    assert unavailable.status is Status.ERROR


def test_messages_are_one_short_line() -> None:
    error = error_from_response(400, body("BadRequest", "x" * 5000 + "\nsecond line"), "User.Read.All")
    assert len(error.message) <= MAX_MESSAGE_CHARS
    assert "\n" not in error.message


@pytest.mark.parametrize("code", ["65001", "7000229", "700016", "500011"])
def test_consent_codes_mean_consent_missing(code: str) -> None:
    failure = ClientAuthenticationError(
        message=f"ClientSecretCredential.get_token failed: AADSTS{code}: The app is not consented. Trace ID: x"
    )
    error = error_from_sign_in(failure)
    assert isinstance(error, ConsentMissing)
    assert error.code == f"AADSTS{code}"
    assert error.message.startswith(f"AADSTS{code}:")
    assert error.unavailable().reason_code == f"error:AADSTS{code}"


def test_other_sign_in_failures() -> None:
    bad_secret = error_from_sign_in(ClientAuthenticationError(message="AADSTS7000215: Invalid client secret provided."))
    assert type(bad_secret) is SignInFailed
    assert bad_secret.code == "AADSTS7000215"
    no_code = error_from_sign_in(ClientAuthenticationError(message="connection refused"))
    assert type(no_code) is SignInFailed
    assert no_code.code == "SignInFailed"

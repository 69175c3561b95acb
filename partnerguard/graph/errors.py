"""Typed outcomes of a Graph read that did not return data, and how checks see them.

Graph's error body is `{"error": {"code": ..., "message": ...}}`; the codes that matter are
documented at https://learn.microsoft.com/graph/errors and in SPEC §6. Sign-in failures surface
from azure-identity as `ClientAuthenticationError` whose message carries an `AADSTS<n>` code
(https://learn.microsoft.com/entra/identity-platform/reference-error-codes).

No error here ever holds a request's headers, so no token can reach a log or a report through
one. Messages are cut short: they end up in reports that people read.
"""

from __future__ import annotations

import re
from typing import Any

from azure.core.exceptions import ClientAuthenticationError

from partnerguard.model import Unavailable

MAX_MESSAGE_CHARS = 300

LICENCE_ERROR_CODE = "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
PERMISSION_ERROR_CODE = "Authorization_RequestDenied"
# Sign-in and audit-report APIs answer this when the app cannot read the directory to check the
# tenant's licence: it needs Directory.Read.All besides the API's own permission (SPEC §6).
NO_DIRECTORY_READ_CODE = "Authentication_ApplicationHasNoDirectoryReadAccess"

# AADSTS codes that mean the app is not (or no longer) consented to in the tenant.
CONSENT_AADSTS_CODES = frozenset(
    {
        "65001",  # the admin has not consented to the app's permissions
        "7000229",  # the app has no service principal in the tenant (never consented)
        "700016",  # the app is not found in the tenant's directory
        "500011",  # the resource principal (Graph) is not found in the tenant
    }
)
_AADSTS = re.compile(r"AADSTS(\d+)")


def _short(message: str) -> str:
    first_line = message.strip().splitlines()[0] if message.strip() else ""
    return first_line if len(first_line) <= MAX_MESSAGE_CHARS else first_line[: MAX_MESSAGE_CHARS - 1] + "…"


class GraphError(Exception):
    """A Graph read that did not return data. `unavailable()` is how a check sees it."""

    def __init__(self, code: str, message: str, status: int | None = None, request_name: str | None = None) -> None:
        self.code = code
        self.message = _short(message)
        self.status = status
        self.request_name = request_name
        super().__init__(f"{request_name or 'Graph request'}: {self.code}: {self.message}")

    def unavailable(self) -> Unavailable:
        return Unavailable(
            reason=f"Microsoft Graph answered {self.code}: {self.message}", reason_code=f"error:{self.code}"
        )


class LicenceRequired(GraphError):
    """403 Authentication_RequestFromNonPremiumTenantOrB2CTenant: the tenant lacks Entra ID P1."""

    def __init__(self, message: str, request_name: str | None = None, licence: str = "AAD_PREMIUM") -> None:
        super().__init__(LICENCE_ERROR_CODE, message, 403, request_name)
        self.licence = licence

    def unavailable(self) -> Unavailable:
        return Unavailable(
            reason="the tenant has no Microsoft Entra ID P1 licence, which this data requires",
            reason_code=f"licence:{self.licence}",
        )


class PermissionDenied(GraphError):
    """403 Authorization_RequestDenied (or no directory read access): a permission is missing."""

    def __init__(self, code: str, message: str, permission: str, request_name: str | None = None) -> None:
        super().__init__(code, message, 403, request_name)
        self.permission = permission

    def unavailable(self) -> Unavailable:
        return Unavailable(
            reason=f"PartnerGuard's app lacks the Graph application permission {self.permission} "
            "(grant it and consent again)",
            reason_code=f"permission:{self.permission}",
        )


class Throttled(GraphError):
    """429 still answered after the retries."""


class TransientGraphError(GraphError):
    """5xx, a timeout or a reset connection, still failing after the retries."""


class GraphRequestError(GraphError):
    """Any other failure: a 4xx we do not map, a malformed body, a paging loop."""


class SignInFailed(GraphError):
    """The token endpoint refused to sign the app in to the tenant."""

    def unavailable(self) -> Unavailable:
        return Unavailable(
            reason=f"PartnerGuard could not sign in to the tenant: {self.message}",
            reason_code=f"error:{self.code}",
        )


class ConsentMissing(SignInFailed):
    """The app is not consented to in the tenant (AADSTS65001, 7000229, 700016, 500011)."""

    def unavailable(self) -> Unavailable:
        return Unavailable(
            reason=f"PartnerGuard's app is not consented to in this tenant ({self.code}); "
            "an administrator of the tenant must grant admin consent",
            reason_code=f"error:{self.code}",
        )


def _error_body(body: Any) -> tuple[str | None, str]:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        code = error.get("code")
        message = error.get("message")
        return (code if isinstance(code, str) else None, message if isinstance(message, str) else "")
    return None, ""


def error_from_response(status: int, body: Any, permission: str, request_name: str | None = None) -> GraphError:
    """Map a failed Graph response (status and parsed JSON body, or None) to its typed error."""
    code, message = _error_body(body)
    if status == 403 and code == LICENCE_ERROR_CODE:
        return LicenceRequired(message, request_name)
    if status == 403 and code == PERMISSION_ERROR_CODE:
        return PermissionDenied(code, message, permission, request_name)
    if code == NO_DIRECTORY_READ_CODE:
        return PermissionDenied(code, message, "Directory.Read.All", request_name)
    if status == 429:
        return Throttled(code or "TooManyRequests", message or "throttled after retries", status, request_name)
    if status >= 500:
        return TransientGraphError(code or f"HTTP{status}", message or f"HTTP {status}", status, request_name)
    return GraphRequestError(code or f"HTTP{status}", message or f"HTTP {status}", status, request_name)


def error_from_sign_in(error: ClientAuthenticationError, request_name: str | None = None) -> SignInFailed:
    """Map azure-identity's sign-in failure to ConsentMissing or SignInFailed."""
    text = str(error.message or error)
    match = _AADSTS.search(text)
    if match is None:
        return SignInFailed("SignInFailed", text, None, request_name)
    code = f"AADSTS{match.group(1)}"
    # The message starts with azure-identity's own preamble; the AADSTS sentence is what helps.
    message = text[match.start() :]
    if match.group(1) in CONSENT_AADSTS_CODES:
        return ConsentMissing(code, message, None, request_name)
    return SignInFailed(code, message, None, request_name)

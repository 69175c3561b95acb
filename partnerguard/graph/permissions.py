"""Graph application permissions: what the app's token holds, and what serves what PartnerGuard needs.

An app-only access token for Microsoft Graph lists the application permissions consented for the
app in that tenant in its `roles` claim
(https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference). `doctor`
reads that claim to tell which permissions are missing before any check is blinded by one.

A permission PartnerGuard needs counts as present when the token holds it, or holds one that
Microsoft documents as higher privileged for the same calls: the request table
(`partnerguard.graph.requests`, one row per call, each citing its reference page) keeps each call's
documented higher-privileged permissions and the checks that read it. So a call is served when the
token holds the call's permission or one of those (Directory.Read.All serves `GET /organization`
and `GET /subscribedSkus`, whose permission is Organization.Read.All), and a check is blinded by a
permission only through a call of its own that the token does not serve: without AuditLog.Read.All
but with UserAuthenticationMethod.Read.All, the registration report (mfa.registration) is served
and the sign-in log (the sign-in checks) is not.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable

from partnerguard.graph.requests import ENDPOINTS, Endpoint

# Required besides a call's own permission, never as one: Microsoft's licence check on the sign-in
# and report APIs reads the directory (SPEC §6, https://learn.microsoft.com/graph/known-issues).
# No page names anything higher that would do instead.
DIRECTORY_READ = "Directory.Read.All"


def serving_role(call: Endpoint, roles: Iterable[str]) -> str | None:
    """Which role of the token serves `call`: its own permission, else a documented higher-privileged
    one (alphabetically first, so the answer is stable); None when none does."""
    held = set(roles)
    if call.permission in held:
        return call.permission
    found = sorted(set(call.higher_privileged) & held)
    return found[0] if found else None


def calls_of(check_id: str) -> tuple[Endpoint, ...]:
    """The Graph calls whose data the check reads (the request table's `read_by`), without those
    whose refusal another call makes up for (`refusal_read_instead_by`): they blind nothing."""
    return tuple(
        endpoint for endpoint in ENDPOINTS if check_id in endpoint.read_by and not endpoint.refusal_read_instead_by
    )


class UnreadableToken(ValueError):
    """The access token is not a JWT whose payload carries a `roles` list of strings."""


def token_roles(access_token: str) -> frozenset[str]:
    """The application permissions in an access token's `roles` claim.

    The signature is not checked, on purpose: this is our own token, just issued to us over TLS
    by the authority we trust, and we only read which permissions it carries to tell people what
    is missing. Nothing is authorised on the strength of this reading (Graph checks the token).
    The token itself is never logged, stored or put in an error message.
    """
    parts = access_token.split(".")
    if len(parts) != 3:
        raise UnreadableToken("the access token is not a JWT")
    payload = parts[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        raise UnreadableToken("the access token's payload is not base64url JSON") from None
    roles = claims.get("roles", []) if isinstance(claims, dict) else None
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise UnreadableToken("the access token's roles claim is not a list of permission names")
    return frozenset(roles)

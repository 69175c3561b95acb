"""Builders for the sign-in collection tests: beta signIn objects as Graph returns them.

The fold's unit tests and the collector's end-to-end tests build the same sign-ins, so the
builder lives here rather than in either test module. (The check tests build theirs from
readable user names: `tests.snapshot_builders.sign_in`.)
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from partnerguard.sign_in_collection import INTERACTIVE

USER = "3f98e277-4cbd-47ad-9c90-a9587403e430"
OTHER_USER = "ae97ba94-d0ed-482f-8f6d-05584ef8aa38"
APP = "4765445b-32c6-49b0-83e6-1d93765276ca"


def graph_time(moment: datetime) -> str:
    """Graph's createdDateTime: UTC with seven fractional digits."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def sign_in(
    created: datetime,
    *,
    user_id: str = USER,
    upn: str = "isaiah.langer@contoso.example",
    name: str = "Isaiah Langer",
    app_id: str = APP,
    app_name: str = "OfficeHome",
    client_app: str = "Browser",
    requirement: str = "multiFactorAuthentication",
    protocol: str = "none",
    error_code: int = 0,
    event_type: str = INTERACTIVE,
    event_types: list[str] | None = None,
) -> dict[str, Any]:
    """One beta signIn object (the fields the rules read, as Graph names them)."""
    types = event_types if event_types is not None else [event_type]
    return {
        "id": str(uuid.uuid4()),
        "createdDateTime": graph_time(created),
        "userId": user_id,
        "userPrincipalName": upn,
        "userDisplayName": name,
        "appId": app_id,
        "appDisplayName": app_name,
        "clientAppUsed": client_app,
        "authenticationRequirement": requirement,
        "authenticationProtocol": protocol,
        "isInteractive": INTERACTIVE in types,
        "signInEventTypes": types,
        "status": {"errorCode": error_code, "failureReason": None, "additionalDetails": None},
    }


def legacy(created: datetime, **fields: Any) -> dict[str, Any]:
    """A successful single-factor sign-in through a legacy client (IMAP4 unless told)."""
    return sign_in(created, **{"client_app": "IMAP4", "requirement": "singleFactorAuthentication", **fields})

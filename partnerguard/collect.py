"""Gather one tenant's `TenantSnapshot` from Microsoft Graph, before any check runs.

Independent reads run concurrently. Each field gets its data or an `Unavailable` saying why it
could not be read (licence, permission, error): one failed read never sinks the others, and no
check can pass over data nobody saw. The one failure that stops the whole collection is not
being able to sign in to the tenant at all (`SignInFailed`, or `ConsentMissing` when the app is
not consented to there): it is raised, so the caller can report the tenant's consent state.

The per-user MFA state (beta, one request per user, batched) is read only when neither security
defaults nor a single Conditional Access policy covers every user; that decision belongs to
`checks.mfa_enforcement.covers_all_users`, so the collector and the check can never disagree.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar

from checks.base import Unavailable
from checks.mfa_enforcement import covers_all_users
from partnerguard.graph.client import GraphClient
from partnerguard.graph.errors import GraphError, SignInFailed
from partnerguard.graph.requests import (
    CONDITIONAL_ACCESS_POLICIES,
    ORGANIZATION,
    PER_USER_MFA_STATE,
    SECURITY_DEFAULTS,
    USER_REGISTRATION_DETAILS,
    USERS,
)
from partnerguard.settings import Settings
from partnerguard.snapshot import JsonObject, RegistrationDetail, TenantSnapshot, User

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_TENANT_NAME_CHARS = 256
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _clean_name(value: Any, fallback: str) -> str:
    """The organization's display name is tenant-controlled: keep it printable and short."""
    if not isinstance(value, str):
        return fallback
    cleaned = _CONTROL_CHARACTERS.sub(" ", value).strip()[:MAX_TENANT_NAME_CHARS]
    return cleaned or fallback


async def _read(what: str, tenant_id: str, read: Awaitable[T]) -> T | Unavailable:
    """The data, or the reason it could not be read. Only a failed sign-in propagates."""
    try:
        return await read
    except SignInFailed:
        raise
    except GraphError as error:
        log.warning("tenant %s: could not read %s: %s", tenant_id, what, error)
        return error.unavailable()
    except Exception as error:
        # A malformed answer or a bug: the checks that needed this become `error`, visibly,
        # while every other field is still collected.
        log.exception("tenant %s: unexpected failure reading %s", tenant_id, what)
        return Unavailable(
            reason=f"unexpected failure reading {what}: {type(error).__name__}", reason_code="error:internal"
        )


async def read_tenant_name(client: GraphClient, tenant_id: str) -> str:
    """The organization's display name; the tenant id when it cannot be read (never fails a scan)."""
    try:
        organizations = await client.collect(ORGANIZATION.request())
    except SignInFailed:
        raise
    except GraphError as error:
        log.warning("tenant %s: organization name unavailable: %s", tenant_id, error)
        return tenant_id
    return _clean_name(organizations[0].get("displayName") if organizations else None, tenant_id)


async def read_users(client: GraphClient) -> list[User]:
    return [User.from_graph(item) for item in await client.collect(USERS.request())]


async def read_registration_details(client: GraphClient) -> list[RegistrationDetail]:
    return [RegistrationDetail.from_graph(item) for item in await client.collect(USER_REGISTRATION_DETAILS.request())]


async def read_conditional_access_policies(client: GraphClient) -> Sequence[JsonObject]:
    return await client.collect(CONDITIONAL_ACCESS_POLICIES.request())


async def read_security_defaults(client: GraphClient) -> bool:
    policy = await client.get_object(SECURITY_DEFAULTS.request())
    enabled = policy.get("isEnabled")
    if not isinstance(enabled, bool):
        raise ValueError("identitySecurityDefaultsEnforcementPolicy without a boolean isEnabled")
    return enabled


async def read_per_user_mfa_states(client: GraphClient, users: Sequence[User]) -> dict[str, str] | Unavailable:
    """perUserMfaState of each enabled user, by user id, through `$batch`.

    A user deleted since the user list was read (404) is skipped. Any other sub-request that
    fails for good makes the whole map unavailable: a partial map would report users as
    uncovered whose state was simply not read.
    """
    enabled = [user for user in users if user.account_enabled]
    results = await client.batch([PER_USER_MFA_STATE.request(user_id=user.id) for user in enabled])
    states: dict[str, str] = {}
    for user, result in zip(enabled, results, strict=True):
        if result.error is not None:
            if result.status == 404:
                continue
            log.warning("tenant %s: per-user MFA state unavailable: %s", client.tenant_id, result.error)
            return result.error.unavailable()
        state = result.body.get("perUserMfaState") if isinstance(result.body, dict) else None
        if not isinstance(state, str):
            return Unavailable(
                reason="a per-user MFA state answer without perUserMfaState",
                reason_code="error:UnexpectedResponse",
            )
        states[user.id] = state
    return states


def per_user_mfa_needed(
    policies: Sequence[JsonObject] | Unavailable, security_defaults_enabled: bool | Unavailable
) -> bool:
    """Whether coverage depends on per-user MFA. Data we could not read covers nobody, so the
    answer errs towards reading more: without P1 there is no Conditional Access to count."""
    known_policies = policies if not isinstance(policies, Unavailable) else ()
    defaults_on = security_defaults_enabled is True
    return not covers_all_users(known_policies, defaults_on)


async def collect_snapshot(client: GraphClient, settings: Settings, tenant_id: str, now: datetime) -> TenantSnapshot:
    # Read the name first, alone: it signs in, so a tenant without consent fails once, fast,
    # instead of once per concurrent read.
    tenant_name = await read_tenant_name(client, tenant_id)
    # The registration report is paced hardest (5 requests per 10 s): let it run while the
    # per-user MFA decision, and the reads it may lead to, go ahead without waiting for it.
    registration_task = asyncio.create_task(
        _read("userRegistrationDetails", tenant_id, read_registration_details(client))
    )
    try:
        users, policies, security_defaults = await asyncio.gather(
            _read("users", tenant_id, read_users(client)),
            _read("Conditional Access policies", tenant_id, read_conditional_access_policies(client)),
            _read("security defaults", tenant_id, read_security_defaults(client)),
        )
        per_user_mfa_states: dict[str, str] | Unavailable | None = None
        if per_user_mfa_needed(policies, security_defaults):
            if isinstance(users, Unavailable):
                per_user_mfa_states = users
            else:
                per_user_mfa_states = await _read(
                    "per-user MFA states", tenant_id, read_per_user_mfa_states(client, users)
                )
        registration_details = await registration_task
    finally:
        # On a failed sign-in (or cancellation) the report read must not outlive the scan.
        registration_task.cancel()
    role: Literal["partner", "customer"] = "partner" if settings.role_of(tenant_id) == "partner" else "customer"
    return TenantSnapshot(
        tenant_id=tenant_id,
        tenant_name=tenant_name,
        role=role,
        collected_at=now,
        cloud=settings.cloud.name,
        users=users,
        registration_details=registration_details,
        conditional_access_policies=policies,
        security_defaults_enabled=security_defaults,
        per_user_mfa_states=per_user_mfa_states,
    )

"""Gather one tenant's `TenantSnapshot` from Microsoft Graph, before any check runs.

Independent reads run concurrently. Each field gets its data or an `Unavailable` saying why it
could not be read (licence, permission, error): one failed read never sinks the others, and no
check can pass over data nobody saw. The one failure that stops the whole collection is not
being able to sign in to the tenant at all (`SignInFailed`, or `ConsentMissing` when the app is
not consented to there): it is raised, so the caller can report the tenant's consent state.

The per-user MFA state (beta, one request per user, batched) is read only when neither security
defaults nor a single Conditional Access policy covers every user; that decision belongs to
`checks.mfa_enforcement.covers_all_users`, and whose states are read to
`checks.mfa_enforcement.must_be_challenged` (every enabled user, guests included), so the
collector and the check can never disagree. When it is not needed the field is set to None
explicitly; a user whose own read failed is simply absent from the map.

Licences come first: when `subscribedSkus` shows no Entra ID P1 service plan, the expensive,
paced P1-only APIs (the registration report, sign-ins) are not called at all; their fields say
`licence:AAD_PREMIUM`. The Conditional Access policies are always read (one request): without
P1 Graph's own licence 403 says so. When subscribedSkus shows P1 and an API still answers the
licence 403, the 403 wins.

Only what the enabled checks need is read, and only for whom they need it: Conditional Access
exclusions are resolved for the candidate policies' excluded groups and roles
(`checks.support.conditional_access.exclusion_targets`), GDAP relationships in the partner tenant of the
public cloud, and the mfa.registration fallback (`partnerguard.registration_fallback`) for the users the
registration report lacks (all of them without P1). The registration report itself is read whole
at most once a day, and only its not-capable rows in between (`partnerguard.registration_read`).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Collection, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from checks.mfa_enforcement import covers_all_users, must_be_challenged
from checks.mfa_phishing_resistant_admins import judged_user_ids
from checks.mfa_registration import in_scope
from checks.support.conditional_access import exclusion_targets
from checks.support.graph_json import NAME_LIMIT
from partnerguard.graph.client import GraphClient
from partnerguard.graph.errors import GraphError, LicenceRequired, PermissionDenied, SignInFailed
from partnerguard.graph.requests import (
    APPLICATIONS,
    AUTHENTICATION_STRENGTH_POLICY,
    CONDITIONAL_ACCESS_POLICIES,
    CONDITIONAL_ACCESS_POLICIES_BETA,
    DELEGATED_ADMIN_RELATIONSHIPS,
    GROUP,
    GROUP_TRANSITIVE_MEMBERS,
    ORGANIZATION,
    PER_USER_MFA_STATE,
    ROLE_ASSIGNMENTS_OF_ROLE,
    ROLE_ASSIGNMENTS_TENANT_WIDE,
    SECURITY_DEFAULTS,
    SERVICE_PRINCIPALS,
    SUBSCRIBED_SKUS,
    USERS,
)
from partnerguard.model import (
    NOT_COLLECTED,
    JsonObject,
    RegistrationDetail,
    SignInAggregate,
    SignInReadState,
    TenantSnapshot,
    Unavailable,
    User,
)
from partnerguard.read_plan import DEFAULT_READ_PLAN, ReadPlan
from partnerguard.registration_fallback import FallbackOutcome, read_methods_policy, run_fallback
from partnerguard.registration_read import RegistrationRead, read_registration
from partnerguard.settings import Settings
from partnerguard.storage.method_cache import MethodCache

if TYPE_CHECKING:
    from partnerguard.sign_in_collection import SignInCollection
    from partnerguard.storage.registration_roster import RegistrationRoster
    from partnerguard.storage.sign_in_aggregates import SignInStore

log = logging.getLogger(__name__)

T = TypeVar("T")

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _clean_name(value: Any, fallback: str) -> str:
    """The organization's display name is tenant-controlled: keep it printable and short."""
    if not isinstance(value, str):
        return fallback
    cleaned = _CONTROL_CHARACTERS.sub(" ", value).strip()[:NAME_LIMIT]
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
    # Page by page: each page's raw JSON is dropped once its users are built, so a 100,000-user
    # tenant never holds 100,000 raw dicts (several times the size of the objects kept).
    users: list[User] = []
    async for page in client.pages(USERS.request()):
        users.extend(User.from_graph(item) for item in page)
    return users


@dataclass(frozen=True)
class ConditionalAccessRead:
    """The policies as the checks read them, which API version served them, and the
    authentication strengths whose requirement could not be filled in (strength id -> why)."""

    policies: Sequence[JsonObject]
    api_version: str
    unread_strengths: Mapping[str, Unavailable]


async def read_conditional_access_policies(client: GraphClient) -> ConditionalAccessRead:
    """The policies from beta, else v1.0 (SPEC §1), with every referenced authentication
    strength's requirement filled in.

    Beta is the only version with the device conditions `includeDevices`, `excludeDevices` and
    `deviceStates`. When beta fails the policies are read from v1.0 and the checks say so. Not
    for every failure: a failed sign-in, a missing permission (both rows need Policy.Read.All)
    or a missing licence (P1 for both) is what v1.0 would answer too, so that answer stands and
    costs no second request. Anything else - beta answering 5xx or a 4xx of its own after the
    retries, throttled after the retries, a malformed page - is beta's problem, and v1.0 may well
    answer.
    """
    try:
        policies = await client.collect(CONDITIONAL_ACCESS_POLICIES_BETA.request())
        api_version = CONDITIONAL_ACCESS_POLICIES_BETA.api_version.value
    except (SignInFailed, PermissionDenied, LicenceRequired):
        raise
    except GraphError as error:
        log.warning(
            "tenant %s: Conditional Access policies unreadable on beta (%s); reading v1.0, which "
            "cannot show device conditions",
            client.tenant_id,
            error,
        )
        policies = await client.collect(CONDITIONAL_ACCESS_POLICIES.request())
        api_version = CONDITIONAL_ACCESS_POLICIES.api_version.value
    filled, unread = await fill_authentication_strengths(client, policies)
    return ConditionalAccessRead(filled, api_version, unread)


async def fill_authentication_strengths(
    client: GraphClient, policies: Sequence[JsonObject]
) -> tuple[list[JsonObject], dict[str, Unavailable]]:
    """The policies with `requirementsSatisfied` filled into each grant's authentication strength
    that Graph gave as a reference only (an id without it), read once per strength from
    GET /policies/authenticationStrengthPolicies/{id}; and the strengths that could not be read.

    The checks stay pure: they judge `requirementsSatisfied` (SPEC §1: a strength counts as MFA
    when it is `mfa`) and treat a strength still without it as unknown, never as MFA.
    """
    referenced = sorted(
        {
            strength_id
            for policy in policies
            if (strength := _strength_of(policy)) is not None
            and not isinstance(strength.get("requirementsSatisfied"), str)
            and isinstance(strength_id := strength.get("id"), str)
            and strength_id
        }
    )
    if not referenced:
        return list(policies), {}

    async def read(strength_id: str) -> JsonObject | Unavailable:
        try:
            found = await client.get_object(AUTHENTICATION_STRENGTH_POLICY.request(strength_id=strength_id))
        except SignInFailed:
            raise
        except GraphError as error:
            log.warning("tenant %s: authentication strength %s unreadable: %s", client.tenant_id, strength_id, error)
            return error.unavailable()
        if not isinstance(found.get("requirementsSatisfied"), str):
            return Unavailable(
                "Microsoft Graph returned the authentication strength without requirementsSatisfied",
                "error:UnexpectedResponse",
            )
        return found

    answers = dict(
        zip(referenced, await asyncio.gather(*(read(strength_id) for strength_id in referenced)), strict=True)
    )
    unread = {strength_id: answer for strength_id, answer in answers.items() if isinstance(answer, Unavailable)}
    filled: list[JsonObject] = []
    for policy in policies:
        strength = _strength_of(policy)
        answer = answers.get(str(strength.get("id"))) if strength is not None else None
        if strength is None or not isinstance(answer, Mapping):
            filled.append(policy)
            continue
        completed = {
            **strength,
            "requirementsSatisfied": answer["requirementsSatisfied"],
            "displayName": strength.get("displayName") or answer.get("displayName"),
            # Which methods it allows: mfa.phishing-resistant-admins' evidence names the policies
            # whose strength allows only phishing-resistant ones.
            "allowedCombinations": strength.get("allowedCombinations") or answer.get("allowedCombinations") or [],
        }
        grant = policy["grantControls"]
        filled.append({**policy, "grantControls": {**grant, "authenticationStrength": completed}})
    return filled, unread


def _strength_of(policy: JsonObject) -> JsonObject | None:
    grant = policy.get("grantControls")
    strength = grant.get("authenticationStrength") if isinstance(grant, Mapping) else None
    return strength if isinstance(strength, Mapping) and strength else None


async def read_security_defaults(client: GraphClient) -> bool:
    policy = await client.get_object(SECURITY_DEFAULTS.request())
    enabled = policy.get("isEnabled")
    if not isinstance(enabled, bool):
        raise ValueError("identitySecurityDefaultsEnforcementPolicy without a boolean isEnabled")
    return enabled


async def read_per_user_mfa_states(client: GraphClient, users: Sequence[User]) -> dict[str, str] | Unavailable:
    """perUserMfaState of every user mfa.enforcement judges, by user id, through `$batch`.

    A user whose sub-request fails for good (deleted since the user list was read, throttled,
    5xx, a malformed answer) is left out: the check counts absent users as unread, so a partial
    map never reports anyone as uncovered, and the users that were read still are. A missing
    permission or licence concerns every user, so it makes the whole map unavailable.
    """
    judged = [user for user in users if must_be_challenged(user)]
    results = await client.batch([PER_USER_MFA_STATE.request(user_id=user.id) for user in judged])
    states: dict[str, str] = {}
    unread = 0
    for user, result in zip(judged, results, strict=True):
        if isinstance(result.error, PermissionDenied | LicenceRequired):
            log.warning("tenant %s: per-user MFA states unavailable: %s", client.tenant_id, result.error)
            return result.error.unavailable()
        state = result.body.get("perUserMfaState") if result.error is None and isinstance(result.body, dict) else None
        if not isinstance(state, str):
            if result.status != 404:
                unread += 1
            continue
        states[user.id] = state
    if unread:
        log.warning("tenant %s: per-user MFA state of %d user(s) could not be read", client.tenant_id, unread)
    return states


def per_user_mfa_needed(
    policies: Sequence[JsonObject] | Unavailable, security_defaults_enabled: bool | Unavailable
) -> bool:
    """Whether coverage depends on per-user MFA. Data we could not read covers nobody, so the
    answer errs towards reading more: without P1 there is no Conditional Access to count."""
    known_policies = policies if not isinstance(policies, Unavailable) else ()
    defaults_on = security_defaults_enabled is True
    return not covers_all_users(known_policies, defaults_on)


# -- licences -----------------------------------------------------------------------------------

# Service plans that carry Microsoft Entra ID P1 (P2 includes P1), by their servicePlanName in
# https://learn.microsoft.com/entra/identity/users/licensing-service-plan-reference
# (AAD_PREMIUM 41781fb2-bc02-4b7c-bd55-b576c07bb09d, AAD_PREMIUM_P2 eec0eb4f-6444-4f95-aba0-50c24d67f998).
ENTRA_P1_SERVICE_PLANS = frozenset({"AAD_PREMIUM", "AAD_PREMIUM_P2"})
# subscribedSku.capabilityStatus values under which the subscription still works ("Warning" is
# the grace period after expiry); servicePlanInfo.provisioningStatus of a plan in use.
USABLE_SKU_STATES = frozenset({"enabled", "warning"})
PROVISIONED = "success"


@dataclass(frozen=True)
class Licences:
    """What `GET /subscribedSkus` says: usable SKUs' part numbers and provisioned plans."""

    names: frozenset[str]  # skuPartNumbers and servicePlanNames, for the snapshot
    entra_premium: bool  # some provisioned service plan carries Entra ID P1

    @classmethod
    def from_skus(cls, skus: Iterable[JsonObject]) -> Licences:
        names: set[str] = set()
        plans: set[str] = set()
        for sku in skus:
            if str(sku.get("capabilityStatus", "")).lower() not in USABLE_SKU_STATES:
                continue
            part_number = sku.get("skuPartNumber")
            if isinstance(part_number, str):
                names.add(part_number)
            for plan in sku.get("servicePlans") or ():
                if not isinstance(plan, dict) or str(plan.get("provisioningStatus", "")).lower() != PROVISIONED:
                    continue
                plan_name = plan.get("servicePlanName")
                if isinstance(plan_name, str):
                    plans.add(plan_name)
        # P1 is decided by service plans only: a SKU named AAD_PREMIUM whose plan is disabled
        # does not license the premium APIs.
        return cls(frozenset(names | plans), bool(plans & ENTRA_P1_SERVICE_PLANS))


async def read_licences(client: GraphClient) -> Licences:
    return Licences.from_skus(await client.collect(SUBSCRIBED_SKUS.request()))


def licence_missing(what: str) -> Unavailable:
    """The field of a P1-only API that was not called because subscribedSkus shows no P1."""
    return LicenceRequired(f"subscribedSkus lists no Entra ID P1 service plan; {what} not read").unavailable()


# -- applications and GDAP ----------------------------------------------------------------------


async def read_applications(client: GraphClient) -> Sequence[JsonObject]:
    return await client.collect(APPLICATIONS.request())


async def read_service_principals(client: GraphClient) -> Sequence[JsonObject]:
    return await client.collect(SERVICE_PRINCIPALS.request())


async def read_delegated_admin_relationships(client: GraphClient) -> Sequence[JsonObject]:
    return await client.collect(DELEGATED_ADMIN_RELATIONSHIPS.request())


GDAP_CLOUD_UNAVAILABLE = Unavailable(
    "GDAP (delegatedAdminRelationships) is available in Microsoft's public cloud only.", "cloud"
)


# -- directory: groups, roles, names ------------------------------------------------------------


def _is_user(item: JsonObject) -> bool:
    return str(item.get("@odata.type", "")).lower() == "#microsoft.graph.user"


def _name(item: JsonObject) -> str | None:
    value = item.get("displayName")
    if not isinstance(value, str):
        return None
    return _clean_name(value, "") or None


@dataclass
class GroupMembers:
    """Transitive user members of groups, the names seen on the way, and ids that are no group."""

    members: dict[str, frozenset[str]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    not_groups: set[str] = field(default_factory=set)


async def read_group_members(client: GraphClient, group_ids: Iterable[str]) -> GroupMembers:
    """`GET /groups/{id}/transitiveMembers` of each group in `$batch`; users kept, nested groups
    named. An id that is not a group (404) is noted; any other failure raises."""
    ids = sorted(set(group_ids))
    resolved = GroupMembers()
    results = await client.batch([GROUP_TRANSITIVE_MEMBERS.request(group_id=group_id) for group_id in ids])
    for group_id, result in zip(ids, results, strict=True):
        if result.error is not None:
            if result.status == 404:
                resolved.not_groups.add(group_id)
                continue
            raise result.error
        items = await client.collection_from_batch(result)
        users: set[str] = set()
        for item in items:
            member_id = item.get("id")
            if not isinstance(member_id, str):
                continue
            if _is_user(item):
                users.add(member_id)
            name = _name(item)
            if name:
                resolved.names[member_id] = name
        resolved.members[group_id] = frozenset(users)
    return resolved


async def read_group_names(client: GraphClient, group_ids: Iterable[str]) -> dict[str, str]:
    """Display names of groups (`$batch` of `GET /groups/{id}?$select=id,displayName`).

    Names only make findings readable: a group that cannot be read stays unnamed, and nothing
    else depends on it.
    """
    ids = sorted(set(group_ids))
    names: dict[str, str] = {}
    results = await client.batch([GROUP.request(group_id=group_id) for group_id in ids])
    for group_id, result in zip(ids, results, strict=True):
        name = _name(result.body) if result.ok and isinstance(result.body, dict) else None
        if name:
            names[group_id] = name
        elif result.error is not None:
            log.info("tenant %s: a group's name is unavailable: %s", client.tenant_id, result.error.code)
    return names


def _principal_ids(assignments: Iterable[JsonObject]) -> frozenset[str]:
    return frozenset(
        assignment["principalId"] for assignment in assignments if isinstance(assignment.get("principalId"), str)
    )


async def read_role_principals(client: GraphClient, role_ids: Iterable[str]) -> dict[str, frozenset[str]]:
    """Principals with an active assignment of each role, any scope (`$batch`, one filter each)."""
    ids = sorted(set(role_ids))
    results = await client.batch([ROLE_ASSIGNMENTS_OF_ROLE.request(role_id=role_id) for role_id in ids])
    principals: dict[str, frozenset[str]] = {}
    for role_id, result in zip(ids, results, strict=True):
        if result.error is not None:
            raise result.error
        principals[role_id] = _principal_ids(await client.collection_from_batch(result))
    return principals


def _known_ids(data: Sequence[User] | Sequence[JsonObject] | Unavailable) -> set[str]:
    if isinstance(data, Unavailable):
        return set()
    return {item.id if isinstance(item, User) else str(item.get("id")) for item in data}


def _possible_groups(
    principal_ids: Iterable[str],
    users: Sequence[User] | Unavailable,
    service_principals: Sequence[JsonObject] | Unavailable,
) -> set[str]:
    """Role principals that may be role-assignable groups: neither a known user nor a known
    service principal. Reading their members answers 404 for anything that is not a group."""
    known = _known_ids(users) | _known_ids(service_principals)
    return {principal for principal in principal_ids if principal not in known}


def _user_names(users: Sequence[User] | Unavailable) -> dict[str, str]:
    if isinstance(users, Unavailable):
        return {}
    return {user.id: _clean_name(user.display_name or user.user_principal_name, user.id) for user in users}


def _service_principal_names(service_principals: Sequence[JsonObject] | Unavailable) -> dict[str, str]:
    if isinstance(service_principals, Unavailable):
        return {}
    names: dict[str, str] = {}
    for item in service_principals:
        name = _name(item)
        if isinstance(item.get("id"), str) and name:
            names[item["id"]] = name
    return names


@dataclass(frozen=True)
class ResolvedExclusions:
    group_members: Mapping[str, frozenset[str]] | Unavailable | None = None
    role_members: Mapping[str, frozenset[str]] | Unavailable | None = None
    principal_names: Mapping[str, str] = field(default_factory=dict)


async def resolve_exclusions(
    client: GraphClient,
    tenant_id: str,
    policies: Sequence[JsonObject] | Unavailable,
    users: Sequence[User] | Unavailable,
    service_principals: Sequence[JsonObject] | Unavailable,
) -> ResolvedExclusions:
    """Who the candidate policies exclude: each excluded group's transitive user members, each
    excluded role's principals (role-assignable groups expanded to their users), and the name of
    every principal involved. Only the excluded groups and roles are read, in `$batch`."""
    if isinstance(policies, Unavailable):
        return ResolvedExclusions()  # no policies, no exclusions to name; the checks say why
    targets = exclusion_targets(policies)
    if not (targets.group_ids or targets.role_template_ids or targets.user_ids):
        return ResolvedExclusions({}, {}, {})
    role_principals = await _read(
        "excluded roles' assignments", tenant_id, read_role_principals(client, targets.role_template_ids)
    )
    assigned = frozenset().union(*role_principals.values()) if isinstance(role_principals, dict) else frozenset()
    role_groups = _possible_groups(assigned, users, service_principals)
    groups = await _read(
        "excluded groups' members", tenant_id, read_group_members(client, targets.group_ids | role_groups)
    )
    try:
        group_names = await read_group_names(client, (targets.group_ids | role_groups) - _not_groups(groups))
    except GraphError as error:
        if isinstance(error, SignInFailed):
            raise
        log.info("tenant %s: groups' names unavailable: %s", tenant_id, error.code)
        group_names = {}

    role_members: dict[str, frozenset[str]] | Unavailable
    if isinstance(role_principals, Unavailable):
        role_members = role_principals
    else:
        expanded = groups.members if isinstance(groups, GroupMembers) else {}
        role_members = {
            role_id: principals.union(*(expanded.get(principal, frozenset()) for principal in principals))
            for role_id, principals in role_principals.items()
        }
    group_members: dict[str, frozenset[str]] | Unavailable
    if isinstance(groups, Unavailable):
        group_members = groups
    else:
        group_members = {
            group_id: groups.members[group_id] for group_id in targets.group_ids if group_id in groups.members
        }

    involved = set(targets.user_ids) | set(targets.group_ids) | set(assigned)
    for members in (group_members, role_members):
        if isinstance(members, dict):
            involved.update(*members.values())
    known_names = {
        **_service_principal_names(service_principals),
        **(groups.names if isinstance(groups, GroupMembers) else {}),
        **group_names,
        **_user_names(users),
    }
    names = {object_id: known_names[object_id] for object_id in involved if object_id in known_names}
    return ResolvedExclusions(group_members, role_members, names)


def _not_groups(groups: GroupMembers | Unavailable) -> set[str]:
    return groups.not_groups if isinstance(groups, GroupMembers) else set()


async def read_admin_roles(
    client: GraphClient,
    users: Sequence[User] | Unavailable,
    service_principals: Sequence[JsonObject] | Unavailable,
) -> dict[str, frozenset[str]]:
    """Users holding an active directory role assigned at the tenant scope, directly or through a
    role-assignable group, each with the roleDefinitionIds held: the fallback's notion of an admin
    (SPEC §1), and whom mfa.phishing-resistant-admins judges. Roles scoped to an administrative
    unit are not counted (an admin of a slice, not of the tenant). Read every scan: one request,
    plus one per role-assignable group holding a role."""
    roles_by_principal: dict[str, set[str]] = {}
    for assignment in await client.collect(ROLE_ASSIGNMENTS_TENANT_WIDE.request()):
        principal, role = assignment.get("principalId"), assignment.get("roleDefinitionId")
        if isinstance(principal, str) and isinstance(role, str):
            roles_by_principal.setdefault(principal, set()).add(role)
    user_ids = _known_ids(users)
    groups = _possible_groups(roles_by_principal, users, service_principals)
    expanded = await read_group_members(client, groups) if groups else GroupMembers()
    admins: dict[str, set[str]] = {
        principal: set(roles)
        for principal, roles in roles_by_principal.items()
        if (principal in user_ids or isinstance(users, Unavailable)) and principal not in expanded.members
    }
    for group_id, members in expanded.members.items():
        for member in members:
            admins.setdefault(member, set()).update(roles_by_principal[group_id])
    return {user_id: frozenset(roles) for user_id, roles in admins.items()}


async def _admin_roles_once_listed(
    client: GraphClient,
    users: Awaitable[Sequence[User] | Unavailable],
    service_principals: Awaitable[Sequence[JsonObject] | Unavailable],
) -> dict[str, frozenset[str]]:
    return await read_admin_roles(client, await users, await service_principals)


async def admins_to_read_fresh(
    admin_roles: Awaitable[Mapping[str, frozenset[str]] | Unavailable],
    users: Awaitable[Sequence[User] | Unavailable],
    emergency_access_accounts: Sequence[str],
) -> set[str]:
    """Whose registration rows a filtered read takes fresh, and whose methods the fallback reads
    whatever their scope and bypassing its cache: the holders of role assignments and the
    tenant's emergency-access accounts (`mfa_phishing_resistant_admins.judged_user_ids`)."""
    roles, listed = await admin_roles, await users
    return judged_user_ids(
        () if isinstance(listed, Unavailable) else listed,
        {} if isinstance(roles, Unavailable) else roles,
        emergency_access_accounts,
    )


# -- the mfa.registration fallback --------------------------------------------------------------

# The share of an invocation's time limit the fallback may spend reading users' methods. The
# rest of the scan (the other reads run meanwhile; sign-ins, evaluation and storage follow) needs
# far less: the fallback is the one read that can take hours (5 users per 10 s per tenant).
FALLBACK_SHARE_OF_TIMEOUT = 0.5
# Without a host (the command line), the budget of the default host.json: 30 minutes x 0.5.
DEFAULT_FALLBACK_BUDGET_S = 900.0


def fallback_budget_seconds(function_timeout_s: float) -> float:
    """How long the fallback may read, from the time an invocation may run. With host.json's 30
    minutes, 15: 450 users per scan at the reports limit, and since read methods are cached a day
    and the schedule scans 4 times a day, a tenant without P1 of up to ~1,800 users is fully
    assessed in steady state (docs/scaling.md)."""
    return max(0.0, function_timeout_s * FALLBACK_SHARE_OF_TIMEOUT)


def fallback_user_ids(
    users: Sequence[User] | Unavailable,
    registration_details: Sequence[RegistrationDetail] | Unavailable,
    include_guests: bool,
    admins: Collection[str] = (),
) -> list[str]:
    """Users the fallback must judge: users in mfa.registration's scope (`in_scope`), and the
    enabled `admins` (role holders and emergency-access accounts, whom
    mfa.phishing-resistant-admins judges whatever their scope: a guest admin too), that the
    report lacks; all of them when the report is unlicensed. Empty when the report covers
    everyone, or when users or the report failed for another reason (the check reports that
    reason; more reads would not help)."""
    if isinstance(users, Unavailable):
        return []
    judged = [
        user.id for user in users if in_scope(user, include_guests) or (user.account_enabled and user.id in admins)
    ]
    if isinstance(registration_details, Unavailable):
        return judged if registration_details.reason_code.startswith("licence:") else []
    reported = {row.id for row in registration_details}
    return [user_id for user_id in judged if user_id not in reported]


# -- sign-ins -----------------------------------------------------------------------------------


# The share of an invocation's time limit the sign-in read may take, counted from the start of the
# collection. A read that needs longer (the first read of a large tenant: ~22 million sign-ins
# for 100,000 users, a week in full mode) stops starting pages there and continues in the next
# execution (partnerguard/sign_in_collection.py); the rest of the limit is left to evaluate,
# store and alert.
SIGN_IN_SHARE_OF_TIMEOUT = 0.6
# Without a host (the command line), the budget of the default host.json: 30 minutes x 0.6.
DEFAULT_SIGN_IN_BUDGET_S = 1080.0


def sign_in_budget_seconds(function_timeout_s: float) -> float:
    """How long the sign-in read may start pages, from the time an invocation may run."""
    return max(0.0, function_timeout_s * SIGN_IN_SHARE_OF_TIMEOUT)


async def read_sign_ins(
    client: GraphClient,
    store: SignInStore,
    tenant_id: str,
    now: datetime,
    lookback: timedelta,
    *,
    users: Awaitable[Sequence[User] | Unavailable],
    read_plan: ReadPlan,
    deadline: float,
    clock: Callable[[], float],
) -> SignInCollection:
    # Imported here: the sign-in collector is a separate module with its own storage.
    from partnerguard.sign_in_collection import collect_sign_ins

    # The user count sizes the first estimate of the full read's cost (sign_in_streams.py).
    listed = await users
    return await collect_sign_ins(
        client,
        store,
        tenant_id,
        now,
        lookback,
        plan=read_plan.sign_in_filters,
        user_count=None if isinstance(listed, Unavailable) else len(listed),
        deadline=deadline,
        clock=clock,
    )


# -- the collection -----------------------------------------------------------------------------


class _Tasks:
    """Concurrent reads of one collection; whatever is still running when it ends is cancelled
    (a failed sign-in must not leave reads running after the scan)."""

    def __init__(self) -> None:
        self._tasks: list[asyncio.Task[Any]] = []

    def start(self, read: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.create_task(read)
        self._tasks.append(task)
        return task

    def cancel_all(self) -> None:
        for task in self._tasks:
            task.cancel()


async def _unavailable(reason: Unavailable) -> Unavailable:
    return reason


def _sign_in_aggregates(read: SignInCollection | Unavailable | None) -> Sequence[SignInAggregate] | Unavailable:
    if read is None:
        return NOT_COLLECTED
    return read if isinstance(read, Unavailable) else read.aggregates


def _sign_in_read(read: SignInCollection | Unavailable | None) -> SignInReadState | None:
    return read.read if read is not None and not isinstance(read, Unavailable) else None


async def collect_snapshot(
    client: GraphClient,
    settings: Settings,
    tenant_id: str,
    now: datetime,
    *,
    sign_ins: SignInStore | None = None,
    method_cache: MethodCache | None = None,
    registration_roster: RegistrationRoster | None = None,
    read_plan: ReadPlan = DEFAULT_READ_PLAN,
    fallback_budget_s: float = DEFAULT_FALLBACK_BUDGET_S,
    sign_in_budget_s: float = DEFAULT_SIGN_IN_BUDGET_S,
    clock: Callable[[], float] = time.monotonic,
) -> TenantSnapshot:
    """Everything the checks read about the tenant. `fallback_budget_s` bounds, from the start of
    the collection, how long the mfa.registration fallback keeps reading users' methods (the
    pipeline derives it from the host's function timeout: `fallback_budget_seconds`)."""
    deadline = clock() + fallback_budget_s
    # `sign_in_budget_s` likewise bounds when the sign-in read stops starting pages.
    sign_in_deadline = clock() + sign_in_budget_s
    # Read the name first, alone: it signs in, so a tenant without consent fails once, fast,
    # instead of once per concurrent read.
    tenant_name = await read_tenant_name(client, tenant_id)
    # The permissions in the token that sign-in gave (no request: the token is cached), for doctor.
    app_roles = await _read("the token's roles", tenant_id, client.token_roles())
    role: Literal["partner", "customer"] = "partner" if settings.role_of(tenant_id) == "partner" else "customer"
    tasks = _Tasks()
    try:
        licences_task = tasks.start(_read("subscribedSkus", tenant_id, read_licences(client)))
        users_task = tasks.start(_read("users", tenant_id, read_users(client)))
        defaults_task = tasks.start(_read("security defaults", tenant_id, read_security_defaults(client)))
        applications_task = tasks.start(_read("applications", tenant_id, read_applications(client)))
        service_principals_task = tasks.start(_read("service principals", tenant_id, read_service_principals(client)))
        # Every scan: who the admins are and which roles they hold (mfa.phishing-resistant-admins;
        # the fallback's admins; whose registration rows are read fresh), and the methods policy
        # (a method counts only when it enables it). One directory request each.
        admin_roles_task = tasks.start(
            _read(
                "directory role assignments",
                tenant_id,
                _admin_roles_once_listed(client, users_task, service_principals_task),
            )
        )
        methods_policy_task = tasks.start(read_methods_policy(client, tenant_id))
        gdap_task: asyncio.Task[Sequence[JsonObject] | Unavailable] | None = None
        if role == "partner":
            gdap_task = tasks.start(
                _read("GDAP relationships", tenant_id, read_delegated_admin_relationships(client))
                if settings.cloud.gdap_available
                else _unavailable(GDAP_CLOUD_UNAVAILABLE)
            )

        licences = await licences_task
        # Unknown (subscribedSkus unreadable) counts as licensed: the APIs' own 403s then decide.
        premium = isinstance(licences, Unavailable) or licences.entra_premium

        def premium_read(what: str, read: Callable[[], Awaitable[T]]) -> asyncio.Task[T | Unavailable]:
            if premium:
                return tasks.start(_read(what, tenant_id, read()))
            return tasks.start(_unavailable(licence_missing(what)))

        # The registration report and sign-ins are paced hardest (5 requests per 10 s): they run
        # while everything else goes ahead. The policies are one request: always asked, so
        # Graph's own answer (the licence 403 without P1) decides, not our reading of the SKUs.
        # Whole, or only its not-capable rows between daily full reads (registration_read.py).
        # A task, not a coroutine: a filtered read awaits it after its page, and so does the fallback.
        admins_task = tasks.start(
            admins_to_read_fresh(admin_roles_task, users_task, settings.emergency_access_accounts)
        )
        registration_task = premium_read(
            "userRegistrationDetails",
            lambda: read_registration(
                client,
                tenant_id,
                now,
                users_task,
                include_guests=settings.include_guests,
                roster=registration_roster,
                read_plan=read_plan,
                admin_ids=admins_task,
            ),
        )
        policies_task = tasks.start(
            _read("Conditional Access policies", tenant_id, read_conditional_access_policies(client))
        )
        sign_ins_task: asyncio.Task[SignInCollection | Unavailable] | None = None
        if sign_ins is not None:
            lookback = timedelta(hours=settings.signin_lookback_hours)
            sign_ins_task = premium_read(
                "sign-ins",
                lambda: read_sign_ins(
                    client,
                    sign_ins,
                    tenant_id,
                    now,
                    lookback,
                    users=users_task,
                    read_plan=read_plan,
                    deadline=sign_in_deadline,
                    clock=clock,
                ),
            )

        users, conditional_access, security_defaults = await asyncio.gather(users_task, policies_task, defaults_task)
        policies = (
            conditional_access.policies if isinstance(conditional_access, ConditionalAccessRead) else conditional_access
        )
        service_principals = await service_principals_task
        exclusions_task = tasks.start(
            _read("exclusions", tenant_id, resolve_exclusions(client, tenant_id, policies, users, service_principals))
        )
        per_user_mfa_states: dict[str, str] | Unavailable | None = None  # None: not needed
        if per_user_mfa_needed(policies, security_defaults):
            if isinstance(users, Unavailable):
                per_user_mfa_states = users
            else:
                per_user_mfa_states = await _read(
                    "per-user MFA states", tenant_id, read_per_user_mfa_states(client, users)
                )
        registration = await registration_task
        registration_details = registration.details if isinstance(registration, RegistrationRead) else registration

        fallback: FallbackOutcome | None = None
        admin_user_ids: frozenset[str] | Unavailable | None = None
        admin_roles = await admin_roles_task
        methods_policy = await methods_policy_task
        # Role holders and emergency-access accounts: read whatever their scope, and fresh, not
        # from the method cache (README: admins' methods are read every scan; they are few).
        judged_admins = frozenset(await admins_task)
        to_judge = fallback_user_ids(users, registration_details, settings.include_guests, judged_admins)
        if to_judge:
            admin_user_ids = admin_roles if isinstance(admin_roles, Unavailable) else frozenset(admin_roles)
            fallback_result = await _read(
                "mfa.registration fallback",
                tenant_id,
                run_fallback(
                    client,
                    tenant_id,
                    to_judge,
                    now,
                    admin_user_ids=admin_user_ids,
                    cache=method_cache,
                    deadline=deadline,
                    clock=clock,
                    policy=methods_policy,
                    fresh_user_ids=judged_admins,
                ),
            )
            fallback = (
                FallbackOutcome(fallback_result, fallback_result, frozenset())
                if isinstance(fallback_result, Unavailable)
                else fallback_result
            )
        exclusions = await exclusions_task
        if isinstance(exclusions, Unavailable):
            exclusions = ResolvedExclusions(exclusions, exclusions, {})
        return TenantSnapshot(
            tenant_id=tenant_id,
            tenant_name=tenant_name,
            role=role,
            collected_at=now,
            cloud=settings.cloud.name,
            users=users,
            registration_details=registration_details,
            registration_read=registration.info if isinstance(registration, RegistrationRead) else None,
            conditional_access_policies=policies,
            conditional_access_api_version=(
                conditional_access.api_version if isinstance(conditional_access, ConditionalAccessRead) else None
            ),
            unread_authentication_strengths=(
                conditional_access.unread_strengths if isinstance(conditional_access, ConditionalAccessRead) else {}
            ),
            security_defaults_enabled=security_defaults,
            per_user_mfa_states=per_user_mfa_states,
            user_auth_methods=fallback.user_auth_methods if fallback else None,
            enabled_auth_method_ids=fallback.enabled_auth_method_ids if fallback else methods_policy,
            unassessed_user_ids=fallback.unassessed_user_ids if fallback else frozenset(),
            unreadable_user_ids=fallback.unreadable_user_ids if fallback else frozenset(),
            admin_user_ids=admin_user_ids,
            admin_roles=admin_roles,
            licences=licences.names if isinstance(licences, Licences) else licences,
            entra_id_p1=licences.entra_premium if isinstance(licences, Licences) else licences,
            app_roles=app_roles,
            group_members=exclusions.group_members,
            role_members=exclusions.role_members,
            principal_names=exclusions.principal_names,
            sign_in_aggregates=_sign_in_aggregates(await sign_ins_task if sign_ins_task else None),
            sign_in_read=_sign_in_read(await sign_ins_task if sign_ins_task else None),
            applications=await applications_task,
            service_principals=service_principals,
            delegated_admin_relationships=await gdap_task if gdap_task else NOT_COLLECTED,
        )
    finally:
        tasks.cancel_all()

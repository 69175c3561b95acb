"""The simulated Microsoft Graph: one table of endpoints, and the request pipeline that serves
each tenant's data in Graph's documented shapes, status codes and error bodies.

Each endpoint is a row: the path it matches, the API versions that have it, the
least-privileged application permission it needs, its throttling class, whether it needs
Microsoft Entra ID P1, and where its data comes from in the tenant scenario. The query options
each endpoint accepts live in `query_options.py`, the limits in `throttling.py`.

Pipeline per request (and per `$batch` sub-request): bearer token -> route -> throttle ->
permission -> licence -> query options -> data -> filter/search/order/count -> page -> select.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from testbed.simulator.entra_id import GRAPH_APP_ID, EntraAuthority, IssuedToken
from testbed.simulator.odata_filter import Filter, resolve
from testbed.simulator.query_options import QUERY_OPTIONS, ParsedQuery, QueryError, parse_query
from testbed.simulator.recording import Fault, RequestRecord
from testbed.simulator.scenario import APP_PERMISSIONS, JsonObject, TenantScenario
from testbed.simulator.sign_in_log import LazySignInLog
from testbed.simulator.throttling import ApiClass, Throttle, resource_units

GRAPH_CONTENT_TYPE = (
    "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"
)
BATCH_LIMIT = 20  # https://learn.microsoft.com/graph/json-batching
# Collection queries whose selected rows are kept for their later pages (least recently used go).
CURSOR_CACHE_SIZE = 256
VERSIONS = frozenset({"v1.0", "beta"})

Source = Callable[[TenantScenario, "re.Match[str]"], Any]


@dataclass(frozen=True)
class Endpoint:
    name: str  # the row's key in query_options.QUERY_OPTIONS
    pattern: re.Pattern[str]
    versions: frozenset[str]
    permission: str
    # What the reference page lists as higher privileged for the Application type (and serves the
    # call as well). Kept apart from the client's table (partnerguard/graph/requests.py) so each
    # side catches the other; Application.ReadWrite.OwnedBy is left out (it only sees owned apps).
    higher_privileged: frozenset[str]
    api_class: ApiClass
    premium: bool
    kind: Literal["collection", "object"]
    source: Source  # the data; None answers 404
    context: str  # @odata.context after "$metadata#"; may use {user} / {group}
    # The data as v1.0 shows it, when v1.0 lacks properties beta has (sources hold beta's shape).
    v1_shape: Callable[[Any], Any] | None = None


@dataclass
class GraphResponse:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    tenant_id: str | None = None
    api_class: ApiClass | None = None


def _registration_rows(tenant: TenantScenario, _: re.Match[str]) -> list[JsonObject]:
    # Graph's report "doesn't work for disabled users": it omits them.
    enabled = {user["id"] for user in tenant.users if user.get("accountEnabled", True)}
    return [row for row in tenant.user_registration_details if row["id"] in enabled]


def _registration_row(tenant: TenantScenario, match: re.Match[str]) -> JsonObject | None:
    """One user's row; None (404) for a user the report lacks: unknown, disabled, or not yet in
    the report (it lags behind new users)."""
    wanted = match["user"].lower()
    return next((row for row in _registration_rows(tenant, match) if str(row["id"]).lower() == wanted), None)


def _per_user_mfa(tenant: TenantScenario, match: re.Match[str]) -> JsonObject | None:
    user = tenant.user(match["user"])
    if user is None:
        return None
    return {"perUserMfaState": tenant.per_user_mfa_states.get(user["id"], "disabled")}


def _user_methods(tenant: TenantScenario, match: re.Match[str]) -> list[JsonObject] | None:
    user = tenant.user(match["user"])
    if user is None:
        return None
    return tenant.authentication_methods.get(user["id"], [])


# Types Graph serves on beta only. "Listing users' authentication methods only returns methods
# supported on this API version" (https://learn.microsoft.com/graph/api/resources/authenticationmethod):
# v1.0 has no hardwareOathAuthenticationMethod, nor its policy configuration
# (https://learn.microsoft.com/graph/api/resources/hardwareoathauthenticationmethod?view=graph-rest-beta).
BETA_ONLY_TYPES = frozenset(
    {
        "#microsoft.graph.hardwareOathAuthenticationMethod",
        "#microsoft.graph.hardwareOathAuthenticationMethodConfiguration",
    }
)


def for_version(version: str, data: Any) -> Any:
    """The data as `version` shows it: on v1.0, beta-only typed items are absent (collections, and
    the authentication-methods policy's configurations)."""
    if version == "beta":
        return data

    def visible(item: Any) -> bool:
        return not (isinstance(item, Mapping) and item.get("@odata.type") in BETA_ONLY_TYPES)

    if isinstance(data, list):
        return [item for item in data if visible(item)]
    if isinstance(data, Mapping) and isinstance(data.get("authenticationMethodConfigurations"), list):
        return {
            **data,
            "authenticationMethodConfigurations": [
                item for item in data["authenticationMethodConfigurations"] if visible(item)
            ],
        }
    return data


def conditional_access_policies_v1(policies: Sequence[JsonObject]) -> list[JsonObject]:
    """The policies as v1.0 shows them: without beta's device conditions. v1.0's
    conditionalAccessConditionSet has no `deviceStates`, and its conditionalAccessDevices only
    `deviceFilter` (https://learn.microsoft.com/graph/api/resources/conditionalaccessdevices);
    beta's adds `includeDevices`, `excludeDevices` and the deprecated device states
    (https://learn.microsoft.com/graph/api/resources/conditionalaccessdevices?view=graph-rest-beta)."""
    shaped: list[JsonObject] = []
    for policy in policies:
        conditions = policy.get("conditions")
        if not isinstance(conditions, Mapping):
            shaped.append(policy)
            continue
        v1_conditions = {key: value for key, value in conditions.items() if key != "deviceStates"}
        devices = conditions.get("devices")
        if isinstance(devices, Mapping):
            v1_conditions["devices"] = {"deviceFilter": devices.get("deviceFilter")}
        shaped.append({**policy, "conditions": v1_conditions})
    return shaped


def _group_members(tenant: TenantScenario, match: re.Match[str]) -> list[JsonObject] | None:
    return tenant.group_transitive_members.get(match["group"].lower())


def _group(tenant: TenantScenario, match: re.Match[str]) -> JsonObject | None:
    wanted = match["group"].lower()
    return next((group for group in tenant.groups if str(group.get("id", "")).lower() == wanted), None)


def _sign_ins(tenant: TenantScenario, _: re.Match[str]) -> list[JsonObject]:
    return list(tenant.sign_ins)


_OLDEST = datetime.min.replace(tzinfo=UTC)


def _created(row: Mapping[str, Any]) -> datetime:
    value = row.get("createdDateTime")
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return _OLDEST
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def select_sign_ins(rows: Iterable[JsonObject], row_filter: Filter | None) -> list[JsonObject]:
    """THE sign-in query, as Graph answers `GET /auditLogs/signIns`: interactive sign-ins only
    unless the filter names signInEventTypes (the resource page's note), then the `$filter`, then
    newest first by createdDateTime as an instant (signin-list: "listed in descending order
    based on createdDateTime").
    Paging is `GraphService._page`, the same for every collection. One function, so a lazily
    generated log (the benchmark's huge tenants) can serve the same query."""
    selected: Iterable[JsonObject] = rows
    if not any(clause.path == "signInEventTypes" for clause in (row_filter.clauses if row_filter else ())):
        selected = (
            row for row in selected if "interactiveUser" in (row.get("signInEventTypes") or ["interactiveUser"])
        )
    if row_filter is not None:
        selected = (row for row in selected if row_filter(row))
    return sorted(selected, key=_created, reverse=True)


def _row(
    name: str,
    path: str,
    permission: str,
    api_class: ApiClass,
    source: Source,
    context: str,
    *,
    kind: Literal["collection", "object"] = "collection",
    premium: bool = False,
    versions: frozenset[str] = VERSIONS,
    higher: tuple[str, ...] = (),
    v1_shape: Callable[[Any], Any] | None = None,
) -> Endpoint:
    return Endpoint(
        name,
        re.compile(f"^{path}$", re.IGNORECASE),
        versions,
        permission,
        frozenset(higher),
        api_class,
        premium,
        kind,
        source,
        context,
        v1_shape,
    )


_GUIDISH = r"(?P<{0}>[^/]+)"

ENDPOINTS: tuple[Endpoint, ...] = (
    _row(
        "organization",
        "/organization",
        "Organization.Read.All",
        ApiClass.DIRECTORY,
        lambda t, _: [t.organization] if t.organization else [],
        "organization",
        higher=("Directory.Read.All", "Directory.ReadWrite.All"),
    ),
    _row(
        "users",
        "/users",
        "User.Read.All",
        ApiClass.DIRECTORY,
        lambda t, _: t.users,
        "users",
        higher=("User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),
    ),
    _row(
        "userRegistrationDetails",
        "/reports/authenticationMethods/userRegistrationDetails",
        "AuditLog.Read.All",
        ApiClass.IDENTITY_REPORTS,
        _registration_rows,
        "reports/authenticationMethods/userRegistrationDetails",
        premium=True,
        higher=("UserAuthenticationMethod.Read.All",),
    ),
    _row(
        "userRegistrationDetail",
        "/reports/authenticationMethods/userRegistrationDetails/" + _GUIDISH.format("user"),
        # https://learn.microsoft.com/graph/api/userregistrationdetails-get: AuditLog.Read.All,
        # nothing higher privileged listed.
        "AuditLog.Read.All",
        ApiClass.IDENTITY_REPORTS,
        _registration_row,
        "reports/authenticationMethods/userRegistrationDetails/$entity",
        kind="object",
        premium=True,
    ),
    _row(
        "conditionalAccessPolicies",
        "/identity/conditionalAccess/policies",
        "Policy.Read.All",
        ApiClass.CONDITIONAL_ACCESS,
        lambda t, _: t.conditional_access_policies,
        "identity/conditionalAccess/policies",
        premium=True,
        v1_shape=conditional_access_policies_v1,
    ),
    _row(
        "authenticationStrengthPolicy",
        "/policies/authenticationStrengthPolicies/" + _GUIDISH.format("strength"),
        # authenticationstrengthpolicy-get, Application: least privileged
        # Policy.Read.AuthenticationMethod; higher privileged as listed there.
        "Policy.Read.AuthenticationMethod",
        ApiClass.DIRECTORY,
        lambda t, match: t.authentication_strength(match["strength"]),
        "policies/authenticationStrengthPolicies/$entity",
        kind="object",
        higher=("Policy.Read.All", "Policy.ReadWrite.AuthenticationMethod", "Policy.ReadWrite.ConditionalAccess"),
    ),
    _row(
        "identitySecurityDefaultsEnforcementPolicy",
        "/policies/identitySecurityDefaultsEnforcementPolicy",
        "Policy.Read.All",
        ApiClass.DIRECTORY,
        lambda t, _: t.security_defaults or None,
        "policies/identitySecurityDefaultsEnforcementPolicy/$entity",
        kind="object",
    ),
    _row(
        "authenticationRequirements",
        "/users/" + _GUIDISH.format("user") + "/authentication/requirements",
        # beta authentication-get, "Permissions to read per-user MFA state / acting on others".
        "Policy.Read.All",
        ApiClass.DIRECTORY,
        _per_user_mfa,
        "users('{user}')/authentication/requirements",
        kind="object",
        versions=frozenset({"beta"}),
        higher=("Policy.ReadWrite.AuthenticationMethod",),
    ),
    _row(
        "authenticationMethods",
        "/users/" + _GUIDISH.format("user") + "/authentication/methods",
        "UserAuthenticationMethod.Read.All",
        ApiClass.IDENTITY_REPORTS,
        _user_methods,
        "users('{user}')/authentication/methods",
        higher=("UserAuthenticationMethod.ReadWrite.All",),
    ),
    _row(
        "authenticationMethodsPolicy",
        "/policies/authenticationMethodsPolicy",
        "Policy.Read.AuthenticationMethod",
        ApiClass.DIRECTORY,
        lambda t, _: t.authentication_methods_policy or None,
        "policies/authenticationMethodsPolicy/$entity",
        kind="object",
        higher=("Policy.ReadWrite.AuthenticationMethod", "Policy.Read.All"),
    ),
    _row(
        "subscribedSkus",
        "/subscribedSkus",
        "Organization.Read.All",
        ApiClass.DIRECTORY,
        lambda t, _: t.subscribed_skus,
        "subscribedSkus",
        higher=("Directory.Read.All", "Directory.ReadWrite.All", "Organization.ReadWrite.All"),
    ),
    _row(
        "roleAssignments",
        "/roleManagement/directory/roleAssignments",
        "RoleManagement.Read.Directory",
        ApiClass.DIRECTORY,
        lambda t, _: t.role_assignments,
        "roleManagement/directory/roleAssignments",
        higher=("Directory.Read.All", "Directory.ReadWrite.All", "RoleManagement.ReadWrite.Directory"),
    ),
    _row(
        "groupTransitiveMembers",
        "/groups/" + _GUIDISH.format("group") + "/transitiveMembers",
        "GroupMember.Read.All",
        ApiClass.DIRECTORY,
        _group_members,
        "directoryObjects",
        higher=("Directory.Read.All", "Group.Read.All", "Group.ReadWrite.All", "GroupMember.ReadWrite.All"),
    ),
    _row(
        "group",
        "/groups/" + _GUIDISH.format("group"),
        "GroupMember.Read.All",
        ApiClass.DIRECTORY,
        _group,
        "groups/$entity",
        kind="object",
        higher=("Directory.Read.All", "Directory.ReadWrite.All", "Group.Read.All", "Group.ReadWrite.All"),
    ),
    _row(
        "applications",
        "/applications",
        "Application.Read.All",
        ApiClass.DIRECTORY,
        lambda t, _: t.applications,
        "applications",
        higher=("Application.ReadWrite.All", "Directory.Read.All"),
    ),
    _row(
        "servicePrincipals",
        "/servicePrincipals",
        "Application.Read.All",
        ApiClass.DIRECTORY,
        lambda t, _: t.service_principals,
        "servicePrincipals",
        higher=("Application.ReadWrite.All", "Directory.Read.All"),
    ),
    _row(
        "signIns",
        "/auditLogs/signIns",
        "AuditLog.Read.All",
        ApiClass.IDENTITY_REPORTS,
        _sign_ins,
        "auditLogs/signIns",
        premium=True,
    ),
    _row(
        "delegatedAdminRelationships",
        "/tenantRelationships/delegatedAdminRelationships",
        "DelegatedAdminRelationship.Read.All",
        ApiClass.DIRECTORY,
        lambda t, _: t.delegated_admin_relationships,
        "tenantRelationships/delegatedAdminRelationships",
    ),
)

# Every endpoint has its query-option row, and only those; admin consent grants every
# permission an endpoint needs.
assert {endpoint.name for endpoint in ENDPOINTS} == set(QUERY_OPTIONS)
assert {endpoint.permission for endpoint in ENDPOINTS} <= APP_PERMISSIONS


def graph_error(
    status: int,
    code: str,
    message: str,
    client_request_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> GraphResponse:
    """Graph's error body: {"error": {"code", "message", "innerError": {"date", "request-id",
    "client-request-id"}}}."""
    request_id = str(uuid.uuid4())
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id,
                "client-request-id": client_request_id or request_id,
            },
        }
    }
    return GraphResponse(status, body, dict(headers or {}))


class GraphService:
    """Answers Graph requests for the tenants of one simulator."""

    def __init__(
        self,
        tenants: Mapping[str, TenantScenario],
        authority: EntraAuthority,
        throttle: Throttle | None,
        base_url: Callable[[], str],
        record: Callable[[RequestRecord], None],
        take_fault: Callable[[str], Fault | None],
        sign_in_logs: Mapping[str, LazySignInLog] | None = None,
    ) -> None:
        self._tenants = tenants
        self._authority = authority
        self._throttle = throttle
        self._base_url = base_url
        self._record = record
        self._take_fault = take_fault
        # Tenants whose sign-ins are generated on demand (the benchmark's big logs) instead of
        # listed in their scenario.
        self._sign_in_logs = dict(sign_in_logs or {})
        self._paging_key = secrets.token_bytes(32)
        # The rows behind each collection query's cursor, for its later pages.
        self._cursors: OrderedDict[tuple[Any, ...], list[JsonObject]] = OrderedDict()
        self._cursor_lock = threading.Lock()

    # -- entry points ------------------------------------------------------------------------

    def handle(
        self, method: str, version: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> GraphResponse:
        """One HTTP request under /v1.0 or /beta (`headers` keys lower-cased)."""
        client_request_id = headers.get("client-request-id")
        identity = self._authority.authenticate(headers.get("authorization"))
        if isinstance(identity, str):
            return graph_error(
                401,
                "InvalidAuthenticationToken",
                identity,
                client_request_id,
                {
                    "WWW-Authenticate": f'Bearer realm="", '
                    f'authorization_uri="{self._base_url()}/common/oauth2/authorize", '
                    f'client_id="{GRAPH_APP_ID}"',
                },
            )
        if path.rstrip("/").lower() == "/$batch":
            if method != "POST":
                return graph_error(405, "BadRequest", "The $batch endpoint accepts POST only.", client_request_id)
            response = self._batch(version, headers, body, identity)
            response.tenant_id = identity.tenant_id
            return response
        return self._serve(method, version, path, query, headers, identity)

    def _serve(
        self,
        method: str,
        version: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        identity: IssuedToken,
    ) -> GraphResponse:
        client_request_id = headers.get("client-request-id")
        tenant = self._tenants[identity.tenant_id]
        endpoint, match = self._route(version, path)
        if endpoint is None or match is None:
            segment = path.strip("/").split("/")[0] if path.strip("/") else ""
            response = graph_error(
                400, "BadRequest", f"Resource not found for the segment '{segment}'.", client_request_id
            )
            response.tenant_id = tenant.tenant_id
            return response
        response = self._serve_endpoint(endpoint, match, method, version, path, query, headers, identity, tenant)
        response.tenant_id = tenant.tenant_id
        response.api_class = endpoint.api_class
        return response

    def _route(self, version: str, path: str) -> tuple[Endpoint | None, re.Match[str] | None]:
        normalised = "/" + path.strip("/")
        for endpoint in ENDPOINTS:
            match = endpoint.pattern.match(normalised)
            if match and version in endpoint.versions:
                return endpoint, match
        return None, None

    def _serve_endpoint(
        self,
        endpoint: Endpoint,
        match: re.Match[str],
        method: str,
        version: str,
        path: str,
        query: str,
        headers: Mapping[str, str],
        identity: IssuedToken,
        tenant: TenantScenario,
    ) -> GraphResponse:
        client_request_id = headers.get("client-request-id")
        if method != "GET":
            return graph_error(
                405,
                "Request_BadRequest",
                "Specified HTTP method is not allowed for the request target.",
                client_request_id,
            )
        if self._throttle is not None:
            directory = endpoint.api_class is ApiClass.DIRECTORY
            rejection = self._throttle.admit(
                endpoint.api_class,
                tenant.tenant_id,
                identity.app_id,
                cost=resource_units(path, query) if directory else 1,
                tenant_users=len(tenant.users),
            )
            if rejection is not None:
                extra = {"Retry-After": str(rejection.retry_after_s)} if rejection.limit.retry_after else {}
                if directory:
                    # Documented for the identity and access limits only.
                    extra["x-ms-throttle-scope"] = rejection.scope_header(identity.app_id, tenant.tenant_id)
                return graph_error(
                    429,
                    "TooManyRequests",
                    "Too many requests. Application is over its request quota for "
                    f"{rejection.limit.api_class.value} ({rejection.limit.requests} requests per "
                    f"{rejection.limit.window_s:g} s, {rejection.limit.scope.value}).",
                    client_request_id,
                    extra,
                )
        if not tenant.roles & {endpoint.permission, *endpoint.higher_privileged}:
            return graph_error(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation.",
                client_request_id,
            )
        if endpoint.premium and not tenant.has_entra_premium:
            return graph_error(
                403,
                "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                "Neither tenant is B2C or tenant doesn't have premium license",
                client_request_id,
            )
        try:
            parsed = parse_query(
                endpoint.name,
                parse_qsl(query, keep_blank_values=True),
                headers,
                endpoint.kind == "collection",
            )
        except QueryError as error:
            return graph_error(error.status, error.code, error.message, client_request_id)
        sign_in_log = self._sign_in_logs.get(tenant.tenant_id) if endpoint.name == "signIns" else None
        if sign_in_log is not None:
            return self._generated_page(endpoint, version, path, match, sign_in_log, parsed, client_request_id)
        cursor_key = (tenant.tenant_id, endpoint.name, version, path.lower(), parsed.carried)
        if endpoint.kind == "collection" and parsed.skiptoken is not None:
            with self._cursor_lock:
                remembered = self._cursors.get(cursor_key)
                if remembered is not None:
                    self._cursors.move_to_end(cursor_key)
            if remembered is not None:
                # A later page of a collection served moments ago: the rows it selected, not a
                # fresh pass of the filter over the whole tenant (Graph's cursors do the same).
                context = self._context(endpoint, version, match, parsed)
                return self._page(endpoint, version, path, remembered, parsed, context, client_request_id)
        data = endpoint.source(tenant, match)
        if data is not None:
            data = for_version(version, data)
            if version != "beta" and endpoint.v1_shape is not None:
                data = endpoint.v1_shape(data)
        if data is None:
            subject = next((value for value in match.groupdict().values() if value), path)
            return graph_error(
                404,
                "Request_ResourceNotFound",
                f"Resource '{subject}' does not exist or one of its queried reference-property "
                "objects are not present.",
                client_request_id,
            )
        context = self._context(endpoint, version, match, parsed)
        if endpoint.kind == "object":
            body = {"@odata.context": context, **self._project(endpoint.name, data, parsed.select)}
            return GraphResponse(200, body, self._headers(client_request_id))
        rows = self._select_rows(endpoint, data, parsed)
        with self._cursor_lock:
            self._cursors[cursor_key] = rows
            while len(self._cursors) > CURSOR_CACHE_SIZE:
                self._cursors.popitem(last=False)
        return self._page(endpoint, version, path, rows, parsed, context, client_request_id)

    # -- collections -------------------------------------------------------------------------

    def _select_rows(self, endpoint: Endpoint, items: Sequence[JsonObject], parsed: ParsedQuery) -> list[JsonObject]:
        """The rows of a collection the query selects, in order: filter, search, orderby."""
        if endpoint.name == "signIns":
            rows = select_sign_ins(items, parsed.filter)
        else:
            rows = list(items)
            if parsed.filter is not None:
                rows = [row for row in rows if parsed.filter(row)]
        for prop, text in parsed.search:
            rows = [row for row in rows if text in str(resolve(row, prop) or "").lower()]
        for prop, descending in reversed(parsed.orderby):
            present = [row for row in rows if resolve(row, prop) is not None]
            missing = [row for row in rows if resolve(row, prop) is None]
            present.sort(key=functools.partial(_order_key, prop), reverse=descending)
            rows = present + missing
        return rows

    def _page(
        self,
        endpoint: Endpoint,
        version: str,
        path: str,
        rows: Sequence[JsonObject],
        parsed: ParsedQuery,
        context: str,
        client_request_id: str | None,
    ) -> GraphResponse:
        """One page of the selected rows, with its nextLink."""
        row_spec = QUERY_OPTIONS[endpoint.name]
        page_size = parsed.top or row_spec.default_page_size or len(rows) or 1
        offset = parsed.skip
        if parsed.skiptoken is not None:
            decoded = self._decode_skiptoken(parsed.skiptoken, endpoint.name)
            if decoded is None:
                return graph_error(
                    400,
                    "Request_BadRequest" if row_spec.directory_object else "BadRequest",
                    "Invalid $skiptoken.",
                    client_request_id,
                )
            offset = decoded
        page = rows[offset : offset + page_size]
        body: dict[str, Any] = {"@odata.context": context}
        if parsed.count:
            body["@odata.count"] = len(rows)
        if offset + page_size < len(rows):
            carried = [
                *parsed.carried,
                ("$skiptoken", self._encode_skiptoken(offset + page_size, endpoint.name)),
            ]
            # Graph writes `$` and `,` literally in its links; spaces and quotes are escaped.
            query = urlencode(carried, safe="$,()/:", quote_via=quote)
            body["@odata.nextLink"] = f"{self._base_url()}/{version}/{path.strip('/')}?{query}"
        body["value"] = [self._project(endpoint.name, row, parsed.select) for row in page]
        return GraphResponse(200, body, self._headers(client_request_id))

    def _generated_page(
        self,
        endpoint: Endpoint,
        version: str,
        path: str,
        match: re.Match[str],
        sign_in_log: LazySignInLog,
        parsed: ParsedQuery,
        client_request_id: str | None,
    ) -> GraphResponse:
        """One page of a generated sign-in log: each minute's rows go through `_select_rows`,
        the same filter and order as a listed log; the skiptoken carries the log's position."""
        if parsed.orderby and parsed.orderby != (("createdDateTime", True),):
            return graph_error(400, "BadRequest", "The generated log pages newest first only.", client_request_id)
        position: int | None = None
        if parsed.skiptoken is not None:
            position = self._decode_skiptoken(parsed.skiptoken, endpoint.name)
            if position is None:
                return graph_error(400, "BadRequest", "Invalid $skiptoken.", client_request_id)
        top = parsed.top or QUERY_OPTIONS[endpoint.name].default_page_size or 1000
        rows, after = sign_in_log.page(
            lambda bucket: self._select_rows(endpoint, bucket, parsed), parsed.filter, position, top
        )
        body: dict[str, Any] = {"@odata.context": self._context(endpoint, version, match, parsed)}
        if after is not None:
            carried = [*parsed.carried, ("$skiptoken", self._encode_skiptoken(after, endpoint.name))]
            query = urlencode(carried, safe="$,()/:", quote_via=quote)
            body["@odata.nextLink"] = f"{self._base_url()}/{version}/{path.strip('/')}?{query}"
        body["value"] = [self._project(endpoint.name, row, parsed.select) for row in rows]
        return GraphResponse(200, body, self._headers(client_request_id))

    def _project(self, endpoint: str, item: Mapping[str, Any], select: Sequence[str] | None) -> JsonObject:
        """$select: the selected properties plus `id` and annotations; else the endpoint's default set."""
        chosen = select if select is not None else QUERY_OPTIONS[endpoint].default_properties
        if chosen is None:
            return dict(item)
        wanted = {name.lower() for name in chosen} | {"id"}
        return {key: value for key, value in item.items() if key.lower() in wanted or key.startswith("@odata.")}

    def _context(self, endpoint: Endpoint, version: str, match: re.Match[str], parsed: ParsedQuery) -> str:
        fragment = endpoint.context.format(**{k: v for k, v in match.groupdict().items() if v})
        if parsed.select and endpoint.kind == "collection":
            fragment += "(" + ",".join(parsed.select) + ")"
        return f"{self._base_url()}/{version}/$metadata#{fragment}"

    def _encode_skiptoken(self, offset: int, endpoint: str) -> str:
        payload = json.dumps({"o": offset, "n": secrets.token_hex(4)}).encode()
        signature = hmac.new(self._paging_key, payload + endpoint.encode(), hashlib.sha256).digest()[:12]
        return base64.urlsafe_b64encode(payload + signature).decode().rstrip("=")

    def _decode_skiptoken(self, token: str, endpoint: str) -> int | None:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError):
            return None
        payload, signature = raw[:-12], raw[-12:]
        expected = hmac.new(self._paging_key, payload + endpoint.encode(), hashlib.sha256).digest()[:12]
        if len(raw) <= 12 or not hmac.compare_digest(signature, expected):
            return None
        offset = json.loads(payload).get("o")
        return offset if isinstance(offset, int) and offset >= 0 else None

    @staticmethod
    def _headers(client_request_id: str | None) -> dict[str, str]:
        request_id = str(uuid.uuid4())
        return {
            "Content-Type": GRAPH_CONTENT_TYPE,
            "OData-Version": "4.0",
            "request-id": request_id,
            "client-request-id": client_request_id or request_id,
        }

    # -- $batch ------------------------------------------------------------------------------

    def _batch(self, version: str, headers: Mapping[str, str], body: bytes, identity: IssuedToken) -> GraphResponse:
        client_request_id = headers.get("client-request-id")
        try:
            payload = json.loads(body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return graph_error(400, "BadRequest", "Invalid batch payload format.", client_request_id)
        requests = payload.get("requests") if isinstance(payload, dict) else None
        if not isinstance(requests, list) or not requests:
            return graph_error(400, "BadRequest", "Invalid batch payload format.", client_request_id)
        if len(requests) > BATCH_LIMIT:
            return graph_error(
                400,
                "BadRequest",
                f"Invalid batch payload format: a batch holds at most {BATCH_LIMIT} requests.",
                client_request_id,
            )
        ids = [item.get("id") if isinstance(item, dict) else None for item in requests]
        if any(not isinstance(item_id, str) or not item_id for item_id in ids):
            return graph_error(
                400,
                "BadRequest",
                "Invalid batch payload format: every request needs an id.",
                client_request_id,
            )
        if len(set(ids)) != len(ids):
            return graph_error(400, "BadRequest", "Batch request contains duplicate Id.", client_request_id)
        responses = [self._batch_item(version, item, headers, identity) for item in requests]
        return GraphResponse(200, {"responses": responses}, self._headers(client_request_id))

    def _batch_item(
        self, version: str, item: Mapping[str, Any], outer_headers: Mapping[str, str], identity: IssuedToken
    ) -> JsonObject:
        item_id = str(item["id"])
        method = str(item.get("method", "")).upper()
        url = item.get("url")
        sub_headers = {str(k).lower(): str(v) for k, v in (item.get("headers") or {}).items()}
        sub_headers.setdefault("client-request-id", outer_headers.get("client-request-id", ""))
        if not method or not isinstance(url, str) or not url:
            response = graph_error(400, "BadRequest", "Invalid batch request: method and url are required.")
            return self._batch_response(item_id, response)
        parts = urlsplit(url)
        if parts.scheme or parts.netloc:
            # Graph resolves sub-request URLs against the batch's version root, so an absolute
            # URL's first segment is "https:" (msgraph-sdk-python #1015).
            segment = url.strip("/").split("/")[0]
            response = graph_error(400, "BadRequest", f"Resource not found for the segment '{segment}'.")
            self._record(RequestRecord(method, url, "", 400, identity.tenant_id, None, time.time(), in_batch=True))
            return self._batch_response(item_id, response)
        path = "/" + parts.path.lstrip("/")
        full_path = f"/{version}{path}"
        fault = self._take_fault(full_path)
        if fault is not None and not fault.resets_connection:
            response = fault_response(fault)
        else:
            response = self._serve(method, version, path, parts.query, {**outer_headers, **sub_headers}, identity)
        self._record(
            RequestRecord(
                method,
                full_path,
                parts.query,
                response.status,
                identity.tenant_id,
                response.api_class.value if response.api_class else None,
                time.time(),
                in_batch=True,
            )
        )
        return self._batch_response(item_id, response)

    @staticmethod
    def _batch_response(item_id: str, response: GraphResponse) -> JsonObject:
        headers = {"Content-Type": "application/json"}
        headers.update(
            {k: v for k, v in response.headers.items() if k.lower() in ("retry-after", "x-ms-throttle-scope")}
        )
        return {"id": item_id, "status": response.status, "headers": headers, "body": response.body}


def fault_response(fault: Fault) -> GraphResponse:
    """What an injected fault answers: its raw body if it has one, else Graph's error body."""
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
    if fault.body is not None:
        text = fault.body.decode("utf-8", "replace") if isinstance(fault.body, bytes) else fault.body
        return GraphResponse(fault.status, text, headers)
    codes = {429: "TooManyRequests", 503: "ServiceUnavailable", 504: "GatewayTimeout"}
    return graph_error(fault.status, codes.get(fault.status, "UnknownError"), "Injected fault.", headers=headers)


def _order_key(path: str, row: JsonObject) -> Any:
    return _sort_key(resolve(row, path))


def _sort_key(value: Any) -> Any:
    if isinstance(value, str):
        return (0, value.lower())
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (1, value)
    return (2, json.dumps(value, sort_keys=True))

"""The one table of Graph requests PartnerGuard makes.

Each row names the API version, the path, the query options, the least-privileged application
permission (reported when Graph answers 403 `Authorization_RequestDenied`), the throttling class
(for pacing), and the Microsoft page that documents the query options it uses. A row uses only
options that page documents for that endpoint, and `$top` only at the documented maximum.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import quote

from partnerguard.graph.pacing import ApiClass


class ApiVersion(StrEnum):
    V1 = "v1.0"
    BETA = "beta"


_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class GraphRequest:
    """One concrete request: a row of the table with its path parameters filled in."""

    name: str
    api_version: ApiVersion
    relative_url: str  # "/users?$select=...": relative to https://<graph>/<version>
    api_class: ApiClass
    permission: str


@dataclass(frozen=True)
class Endpoint:
    name: str
    api_version: ApiVersion
    path: str  # may hold {placeholders}, filled (URL-quoted) by request()
    api_class: ApiClass
    permission: str
    doc: str
    select: tuple[str, ...] = ()
    top: int | None = None
    filter: str | None = None

    def query_string(self) -> str:
        parts: list[str] = []
        if self.select:
            parts.append("$select=" + ",".join(self.select))
        if self.filter:
            parts.append("$filter=" + quote(self.filter, safe="'(),:"))
        if self.top is not None:
            parts.append(f"$top={self.top}")
        return "&".join(parts)

    def request(self, **path_parameters: str) -> GraphRequest:
        expected = set(_PLACEHOLDER.findall(self.path))
        if set(path_parameters) != expected:
            raise ValueError(f"{self.name} needs path parameters {sorted(expected)}, got {sorted(path_parameters)}")
        # Ids come from Graph but are quoted anyway: a value must never change the path's shape.
        path = _PLACEHOLDER.sub(lambda match: quote(path_parameters[match.group(1)], safe=""), self.path)
        query = self.query_string()
        return GraphRequest(
            name=self.name,
            api_version=self.api_version,
            relative_url=f"{path}?{query}" if query else path,
            api_class=self.api_class,
            permission=self.permission,
        )


ORGANIZATION = Endpoint(
    name="organization",
    api_version=ApiVersion.V1,
    path="/organization",
    api_class=ApiClass.DIRECTORY,
    permission="Organization.Read.All",
    # Documents $select.
    doc="https://learn.microsoft.com/graph/api/organization-list",
    select=("id", "displayName"),
)

USERS = Endpoint(
    name="users",
    api_version=ApiVersion.V1,
    path="/users",
    api_class=ApiClass.DIRECTORY,
    permission="User.Read.All",
    # Documents $select and $top (1 to 999) among others.
    doc="https://learn.microsoft.com/graph/api/user-list",
    select=("id", "displayName", "userPrincipalName", "accountEnabled", "userType"),
    top=999,
)

USER_REGISTRATION_DETAILS = Endpoint(
    name="userRegistrationDetails",
    api_version=ApiVersion.V1,
    path="/reports/authenticationMethods/userRegistrationDetails",
    api_class=ApiClass.REPORTS,
    permission="AuditLog.Read.All",
    # Documents $filter and $orderby only: no $select, no $top. Entra ID P1 required.
    doc="https://learn.microsoft.com/graph/api/authenticationmethodsroot-list-userregistrationdetails",
)

CONDITIONAL_ACCESS_POLICIES = Endpoint(
    name="conditionalAccessPolicies",
    api_version=ApiVersion.V1,
    path="/identity/conditionalAccess/policies",
    api_class=ApiClass.CONDITIONAL_ACCESS,
    permission="Policy.Read.All",
    # Documents $skip, $top, $count, $filter, $orderby, $select; the checks read whole
    # policies, so none is used. Entra ID P1 required.
    doc="https://learn.microsoft.com/graph/api/conditionalaccessroot-list-policies",
)

SECURITY_DEFAULTS = Endpoint(
    name="identitySecurityDefaultsEnforcementPolicy",
    api_version=ApiVersion.V1,
    path="/policies/identitySecurityDefaultsEnforcementPolicy",
    api_class=ApiClass.DIRECTORY,
    permission="Policy.Read.All",
    # Documents $select.
    doc="https://learn.microsoft.com/graph/api/identitysecuritydefaultsenforcementpolicy-get",
    select=("id", "isEnabled"),
)

PER_USER_MFA_STATE = Endpoint(
    name="authenticationRequirements",
    api_version=ApiVersion.BETA,
    path="/users/{user_id}/authentication/requirements",
    api_class=ApiClass.DIRECTORY,
    permission="Policy.Read.All",
    # "Get authentication method states" (beta): no query options documented. Returns a
    # strongAuthenticationRequirements object: {"perUserMfaState": "disabled|enabled|enforced"}.
    doc="https://learn.microsoft.com/graph/api/authentication-get?view=graph-rest-beta",
)

ENDPOINTS: tuple[Endpoint, ...] = (
    ORGANIZATION,
    USERS,
    USER_REGISTRATION_DETAILS,
    CONDITIONAL_ACCESS_POLICIES,
    SECURITY_DEFAULTS,
    PER_USER_MFA_STATE,
)

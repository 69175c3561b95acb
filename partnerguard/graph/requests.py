"""The one table of Graph requests PartnerGuard makes.

Each row names the API version, the path, the query options, the least-privileged application
permission (reported when Graph answers 403 `Authorization_RequestDenied`), the higher-privileged
application permissions the same page lists as serving the call too (`doctor` counts them,
`partnerguard.graph.permissions`), the throttling class (for pacing), and the Microsoft page that
documents the query options and permissions it uses. A row uses only options that page documents
for that endpoint, and `$top` only at the documented maximum.

`higher_privileged` holds only what the page's "Higher privileged permissions" column lists for
the Application permission type, and only entries we could confirm there: leaving one out makes
`doctor` report the least-privileged permission missing (the safe direction), listing a wrong one
would hide a gap. `Application.ReadWrite.OwnedBy`, which the applications and servicePrincipals
pages list, is left out on purpose: it returns only the apps the caller owns, so a scan with it
would pass over every other app's secrets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
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
    # Application permissions the doc page lists as higher privileged for this call (see above).
    higher_privileged: tuple[str, ...] = ()
    # The ids of the checks whose data this call reads (none: every scan's own reads, the name
    # and the licence). `doctor` derives from it which checks a permission the token lacks
    # blinds; tests/test_graph_permissions.py holds it to each check's METADATA.permissions.
    read_by: tuple[str, ...] = ()
    # A call that only saves requests: when Graph refuses it, the collector reads the same facts
    # through the named call instead, so a permission it lacks blinds no check (`doctor`).
    refusal_read_instead_by: str = ""
    select: tuple[str, ...] = ()
    top: int | None = None
    # May hold {placeholders} inside string literals ('{role_id}'), filled OData-escaped.
    filter: str | None = None

    def query_string(self, filter_parameters: dict[str, str] | None = None) -> str:
        parts: list[str] = []
        if self.select:
            parts.append("$select=" + ",".join(self.select))
        if self.filter:
            # A value is an OData string literal: a quote inside it is doubled, so it can never
            # end the literal and add a clause of its own.
            filled = _PLACEHOLDER.sub(
                lambda match: (filter_parameters or {})[match.group(1)].replace("'", "''"), self.filter
            )
            parts.append("$filter=" + quote(filled, safe="'(),:"))
        if self.top is not None:
            parts.append(f"$top={self.top}")
        return "&".join(parts)

    def placeholders(self) -> set[str]:
        return set(_PLACEHOLDER.findall(self.path)) | set(_PLACEHOLDER.findall(self.filter or ""))

    def request(self, **parameters: str) -> GraphRequest:
        expected = self.placeholders()
        if set(parameters) != expected:
            raise ValueError(f"{self.name} needs parameters {sorted(expected)}, got {sorted(parameters)}")
        # Ids come from Graph but are quoted anyway: a value must never change the path's shape.
        path = _PLACEHOLDER.sub(lambda match: quote(parameters[match.group(1)], safe=""), self.path)
        query = self.query_string(parameters)
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
    higher_privileged=("Directory.Read.All", "Directory.ReadWrite.All"),
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
    higher_privileged=("User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),
    select=("id", "displayName", "userPrincipalName", "accountEnabled", "userType"),
    top=999,
    read_by=("mfa.registration", "mfa.enforcement", "mfa.phishing-resistant-admins"),
)

USER_REGISTRATION_DETAILS = Endpoint(
    name="userRegistrationDetails",
    api_version=ApiVersion.V1,
    path="/reports/authenticationMethods/userRegistrationDetails",
    api_class=ApiClass.REPORTS,
    permission="AuditLog.Read.All",
    # Documents $filter and $orderby only: no $select, no $top. Entra ID P1 required.
    doc="https://learn.microsoft.com/graph/api/authenticationmethodsroot-list-userregistrationdetails",
    higher_privileged=("UserAuthenticationMethod.Read.All",),
    read_by=("mfa.registration", "mfa.phishing-resistant-admins"),
)

# Between full reads of the report (partnerguard/registration_read.py): only the rows that can
# become an mfa.registration finding. The resource page documents `isMfaCapable` as "Supports
# $filter (eq)" on v1.0 and beta alike
# (https://learn.microsoft.com/graph/api/resources/userregistrationdetails); the list page
# documents $filter. `isAdmin` and `userType` document no $filter, so they are never asked for.
USER_REGISTRATION_DETAILS_NOT_CAPABLE = Endpoint(
    name="userRegistrationDetails",
    api_version=ApiVersion.V1,
    path="/reports/authenticationMethods/userRegistrationDetails",
    api_class=ApiClass.REPORTS,
    permission="AuditLog.Read.All",
    doc="https://learn.microsoft.com/graph/api/authenticationmethodsroot-list-userregistrationdetails",
    higher_privileged=("UserAuthenticationMethod.Read.All",),
    read_by=("mfa.registration", "mfa.phishing-resistant-admins"),
    filter="isMfaCapable eq false",
)

# One user's row, for users created since the last full read, and for admins and emergency-access
# accounts every scan (their roster rows may be a day old). "This method does not support the
# OData query parameters". The page's example wraps the object in `value`; the reader accepts
# both that and the bare object.
USER_REGISTRATION_DETAIL = Endpoint(
    name="userRegistrationDetail",
    api_version=ApiVersion.V1,
    path="/reports/authenticationMethods/userRegistrationDetails/{user_id}",
    api_class=ApiClass.REPORTS,
    permission="AuditLog.Read.All",
    # The page lists AuditLog.Read.All alone for the Application type: no higher privileged.
    doc="https://learn.microsoft.com/graph/api/userregistrationdetails-get",
    read_by=("mfa.registration", "mfa.phishing-resistant-admins"),
    # A refused or failed read leaves the user to the mfa.registration fallback
    # (`partnerguard.registration_read.read_rows_by_id`), which reads the user's methods.
    refusal_read_instead_by="authenticationMethods",
)

# Conditional Access policies are read from beta (SPEC §1, as Maester and ScubaGear do): only
# beta's conditionalAccessConditionSet carries the device conditions `includeDevices`,
# `excludeDevices` and `deviceStates` (resources/conditionalaccessdevices?view=graph-rest-beta,
# resources/conditionalaccessdevicestates?view=graph-rest-beta); v1.0's devices has deviceFilter
# only. `partnerguard.collect.read_conditional_access_policies` falls back to the v1.0 row.
CONDITIONAL_ACCESS_POLICIES_BETA = Endpoint(
    name="conditionalAccessPolicies",
    api_version=ApiVersion.BETA,
    path="/identity/conditionalAccess/policies",
    api_class=ApiClass.CONDITIONAL_ACCESS,
    permission="Policy.Read.All",
    # Documents $skip, $top, $count, $filter, $orderBy, $select; the checks read whole policies,
    # so none is used. Application: Policy.Read.All. Entra ID P1 required.
    doc="https://learn.microsoft.com/graph/api/conditionalaccessroot-list-policies?view=graph-rest-beta",
    read_by=("mfa.enforcement", "legacy-auth.blocked"),
)

CONDITIONAL_ACCESS_POLICIES = Endpoint(
    name="conditionalAccessPolicies",
    api_version=ApiVersion.V1,
    path="/identity/conditionalAccess/policies",
    api_class=ApiClass.CONDITIONAL_ACCESS,
    permission="Policy.Read.All",
    # The fallback when beta fails. Documents $skip, $top, $count, $filter, $orderby, $select;
    # the checks read whole policies, so none is used. Entra ID P1 required.
    doc="https://learn.microsoft.com/graph/api/conditionalaccessroot-list-policies",
    # No higher-privileged permission confirmed on the page: Policy.Read.All only.
    read_by=("mfa.enforcement", "legacy-auth.blocked"),
)

# A grant's authentication strength counts as MFA when its requirementsSatisfied is `mfa` (SPEC
# §1); when a policy only references the strength, the collector reads it here. "This method does
# not support OData query parameters." Application: least privileged
# Policy.Read.AuthenticationMethod (already granted for the authentication-methods policy);
# higher privileged Policy.Read.All, Policy.ReadWrite.AuthenticationMethod,
# Policy.ReadWrite.ConditionalAccess. Same class as the other /policies reads.
AUTHENTICATION_STRENGTH_POLICY = Endpoint(
    name="authenticationStrengthPolicy",
    api_version=ApiVersion.V1,
    path="/policies/authenticationStrengthPolicies/{strength_id}",
    api_class=ApiClass.DIRECTORY,
    permission="Policy.Read.AuthenticationMethod",
    doc="https://learn.microsoft.com/graph/api/authenticationstrengthpolicy-get",
    higher_privileged=(
        "Policy.Read.All",
        "Policy.ReadWrite.AuthenticationMethod",
        "Policy.ReadWrite.ConditionalAccess",
    ),
    read_by=("mfa.enforcement",),
)

SECURITY_DEFAULTS = Endpoint(
    name="identitySecurityDefaultsEnforcementPolicy",
    api_version=ApiVersion.V1,
    path="/policies/identitySecurityDefaultsEnforcementPolicy",
    api_class=ApiClass.DIRECTORY,
    permission="Policy.Read.All",
    # Documents $select.
    doc="https://learn.microsoft.com/graph/api/identitysecuritydefaultsenforcementpolicy-get",
    # No higher-privileged permission confirmed on the page: Policy.Read.All only.
    select=("id", "isEnabled"),
    read_by=("mfa.enforcement", "legacy-auth.blocked"),
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
    higher_privileged=("Policy.ReadWrite.AuthenticationMethod",),
    read_by=("mfa.enforcement",),
)

SUBSCRIBED_SKUS = Endpoint(
    name="subscribedSkus",
    api_version=ApiVersion.V1,
    path="/subscribedSkus",
    api_class=ApiClass.DIRECTORY,
    permission="Organization.Read.All",
    # Documents $select only (no paging options: a tenant holds few SKUs).
    doc="https://learn.microsoft.com/graph/api/subscribedsku-list",
    higher_privileged=("Directory.Read.All", "Directory.ReadWrite.All", "Organization.ReadWrite.All"),
    select=("id", "skuId", "skuPartNumber", "capabilityStatus", "servicePlans"),
)

APPLICATIONS = Endpoint(
    name="applications",
    api_version=ApiVersion.V1,
    path="/applications",
    api_class=ApiClass.DIRECTORY,
    permission="Application.Read.All",
    # Documents $select and $top (1 to 999) among others.
    doc="https://learn.microsoft.com/graph/api/application-list",
    higher_privileged=("Application.ReadWrite.All", "Directory.Read.All"),
    select=("id", "appId", "displayName", "passwordCredentials", "keyCredentials"),
    top=999,
    read_by=("apps.client-secrets", "apps.credential-expiry"),
)

SERVICE_PRINCIPALS = Endpoint(
    name="servicePrincipals",
    api_version=ApiVersion.V1,
    path="/servicePrincipals",
    api_class=ApiClass.DIRECTORY,
    permission="Application.Read.All",
    # Documents $select and $top (1 to 999) among others.
    doc="https://learn.microsoft.com/graph/api/serviceprincipal-list",
    higher_privileged=("Application.ReadWrite.All", "Directory.Read.All"),
    select=("id", "appId", "displayName", "servicePrincipalType", "passwordCredentials", "keyCredentials"),
    top=999,
    read_by=("apps.client-secrets", "apps.credential-expiry"),
)

DELEGATED_ADMIN_RELATIONSHIPS = Endpoint(
    name="delegatedAdminRelationships",
    api_version=ApiVersion.V1,
    path="/tenantRelationships/delegatedAdminRelationships",
    api_class=ApiClass.DIRECTORY,
    permission="DelegatedAdminRelationship.Read.All",
    # Documents $select, $filter, $top (up to 300), $orderby, $count. The checks read whole
    # relationships (status, end, auto-extend, roles, customer), so no $select. Public cloud only.
    doc="https://learn.microsoft.com/graph/api/tenantrelationship-list-delegatedadminrelationships",
    # No higher-privileged permission confirmed on the page.
    top=300,
    read_by=("gdap.privileged-roles", "gdap.expiring"),
)

ROLE_ASSIGNMENTS_OF_ROLE = Endpoint(
    name="roleAssignments",
    api_version=ApiVersion.V1,
    path="/roleManagement/directory/roleAssignments",
    api_class=ApiClass.DIRECTORY,
    permission="RoleManagement.Read.Directory",
    # Documents $filter, $expand, $select; roleDefinitionId supports eq (resource page), and
    # a built-in role's definition id equals its template id. Active assignments only
    # (eligible ones are roleEligibilitySchedules).
    doc="https://learn.microsoft.com/graph/api/rbacapplication-list-roleassignments",
    higher_privileged=("Directory.Read.All", "Directory.ReadWrite.All", "RoleManagement.ReadWrite.Directory"),
    filter="roleDefinitionId eq '{role_id}'",
    read_by=("mfa.enforcement", "legacy-auth.blocked"),
)

ROLE_ASSIGNMENTS_TENANT_WIDE = Endpoint(
    name="roleAssignments",
    api_version=ApiVersion.V1,
    path="/roleManagement/directory/roleAssignments",
    api_class=ApiClass.DIRECTORY,
    permission="RoleManagement.Read.Directory",
    # Every active assignment at the tenant scope, every scan (who the admins are, which roles
    # they hold: mfa.phishing-resistant-admins): directoryScopeId supports eq (resource
    # page https://learn.microsoft.com/graph/api/resources/unifiedroleassignment).
    doc="https://learn.microsoft.com/graph/api/rbacapplication-list-roleassignments",
    higher_privileged=("Directory.Read.All", "Directory.ReadWrite.All", "RoleManagement.ReadWrite.Directory"),
    filter="directoryScopeId eq '/'",
    read_by=("mfa.registration", "mfa.phishing-resistant-admins"),
)

GROUP_TRANSITIVE_MEMBERS = Endpoint(
    name="groupTransitiveMembers",
    api_version=ApiVersion.V1,
    path="/groups/{group_id}/transitiveMembers",
    api_class=ApiClass.DIRECTORY,
    permission="GroupMember.Read.All",
    # Documents $select and $top (up to 999). Members of every type come back, each with its
    # @odata.type; the collector keeps users (and notes nested groups' names).
    doc="https://learn.microsoft.com/graph/api/group-list-transitivemembers",
    # The page's least privileged is GroupMember.ReadBasic.All; PartnerGuard asks GroupMember.Read.All
    # because GET /groups/{id} (below) needs it, so only the permissions above both are listed.
    higher_privileged=(
        "Directory.Read.All",
        "Group.Read.All",
        "Group.ReadWrite.All",
        "GroupMember.ReadWrite.All",
    ),
    select=("id", "displayName"),
    top=999,
    read_by=("mfa.enforcement", "legacy-auth.blocked"),
)

GROUP = Endpoint(
    name="group",
    api_version=ApiVersion.V1,
    path="/groups/{group_id}",
    api_class=ApiClass.DIRECTORY,
    permission="GroupMember.Read.All",
    # Documents $select. Only the display name, to name an excluded group in a finding.
    doc="https://learn.microsoft.com/graph/api/group-get",
    higher_privileged=("Group.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All", "Group.Read.All"),
    select=("id", "displayName"),
    read_by=("mfa.enforcement", "legacy-auth.blocked"),
)

# The mfa.registration fallback reads beta: "listing users' authentication methods only returns
# methods supported on this API version" (resources/authenticationmethod), and v1.0 has neither
# hardwareOathAuthenticationMethod nor platformCredentialAuthenticationMethod, nor the HardwareOath
# policy configuration. On v1.0 a user whose only strong method is a hardware token or a platform
# credential would be reported as not MFA capable.
USER_AUTHENTICATION_METHODS = Endpoint(
    name="authenticationMethods",
    api_version=ApiVersion.BETA,
    path="/users/{user_id}/authentication/methods",
    # Microsoft's throttling page puts the authentication methods API in the identity and
    # access reports class: 5 requests per 10 s per tenant.
    api_class=ApiClass.REPORTS,
    permission="UserAuthenticationMethod.Read.All",
    # No query options documented.
    doc="https://learn.microsoft.com/graph/api/authentication-list-methods?view=graph-rest-beta",
    higher_privileged=("UserAuthenticationMethod.ReadWrite.All",),
    read_by=("mfa.registration", "mfa.phishing-resistant-admins"),
)

AUTHENTICATION_METHODS_POLICY = Endpoint(
    name="authenticationMethodsPolicy",
    api_version=ApiVersion.BETA,
    path="/policies/authenticationMethodsPolicy",
    api_class=ApiClass.DIRECTORY,
    permission="Policy.Read.AuthenticationMethod",
    # No query options documented.
    doc="https://learn.microsoft.com/graph/api/authenticationmethodspolicy-get?view=graph-rest-beta",
    higher_privileged=("Policy.ReadWrite.AuthenticationMethod", "Policy.Read.All"),
    read_by=("mfa.registration", "mfa.phishing-resistant-admins"),
)

# One event type's sign-ins within a range: what every sign-in query asks, full or filtered.
_SIGN_IN_RANGE = (
    "createdDateTime ge {since} and createdDateTime le {until} and signInEventTypes/any(t: t eq '{event_type}')"
)

SIGN_INS = Endpoint(
    name="signIns",
    api_version=ApiVersion.BETA,
    path="/auditLogs/signIns",
    api_class=ApiClass.REPORTS,
    permission="AuditLog.Read.All",
    # Documents $top (page size up to 1,000, newest first), $skiptoken and $filter; createdDateTime
    # supports eq, le and ge. Without a signInEventTypes filter only interactive sign-ins come
    # back, so PartnerGuard reads one stream per event type (`any` over signInEventTypes,
    # resource page https://learn.microsoft.com/graph/api/resources/signin?view=graph-rest-beta).
    # {since} and {until} are ISO 8601 UTC instants (not string literals) that
    # `partnerguard.sign_in_collection` formats itself; {event_type} is one of its event-type constants.
    # Entra ID P1 required; the beta shape carries signInEventTypes and authenticationProtocol.
    doc="https://learn.microsoft.com/graph/api/signin-list?view=graph-rest-beta",
    # None higher privileged: AuditLog.Read.All, and Directory.Read.All besides it for Microsoft's
    # licence check (SPEC §6), are both required.
    filter=_SIGN_IN_RANGE,
    top=1000,
    read_by=("legacy-auth.sign-ins", "sign-ins.single-factor", "sam.password-grant"),
)

# The filtered sign-in streams (partnerguard/sign_in_streams.py): only successful sign-ins that can
# become a finding. The beta signIn resource page documents `$filter` on `status/errorCode` (eq),
# `authenticationRequirement` (eq, startsWith), `clientAppUsed` (eq) and `createdDateTime` (eq, le,
# ge) (https://learn.microsoft.com/graph/api/resources/signin?view=graph-rest-beta; `status`:
# "Supports $filter (eq) on errorCode property"; signInEventTypes: eq and ne, inside `any`).
# `authenticationProtocol` documents no $filter: ROPC sign-ins are found by the single-factor query
# (ROPC cannot do MFA: https://learn.microsoft.com/entra/identity-platform/v2-oauth-ropc).
SIGN_INS_SINGLE_FACTOR = replace(
    SIGN_INS,
    filter=_SIGN_IN_RANGE + " and status/errorCode eq 0 and authenticationRequirement eq 'singleFactorAuthentication'",
)

# Multi-factor sign-ins through one documented legacy client ({client_app}, OData-escaped):
# disjoint from the single-factor query above.
SIGN_INS_LEGACY_MULTI_FACTOR = replace(
    SIGN_INS,
    filter=_SIGN_IN_RANGE + " and status/errorCode eq 0 and clientAppUsed eq '{client_app}' "
    "and authenticationRequirement eq 'multiFactorAuthentication'",
    read_by=("legacy-auth.sign-ins",),
)

ENDPOINTS: tuple[Endpoint, ...] = (
    ORGANIZATION,
    USERS,
    USER_REGISTRATION_DETAILS,
    USER_REGISTRATION_DETAILS_NOT_CAPABLE,
    USER_REGISTRATION_DETAIL,
    CONDITIONAL_ACCESS_POLICIES_BETA,
    CONDITIONAL_ACCESS_POLICIES,
    AUTHENTICATION_STRENGTH_POLICY,
    SECURITY_DEFAULTS,
    PER_USER_MFA_STATE,
    SUBSCRIBED_SKUS,
    APPLICATIONS,
    SERVICE_PRINCIPALS,
    DELEGATED_ADMIN_RELATIONSHIPS,
    ROLE_ASSIGNMENTS_OF_ROLE,
    ROLE_ASSIGNMENTS_TENANT_WIDE,
    GROUP_TRANSITIVE_MEMBERS,
    GROUP,
    USER_AUTHENTICATION_METHODS,
    AUTHENTICATION_METHODS_POLICY,
    SIGN_INS,
    SIGN_INS_SINGLE_FACTOR,
    SIGN_INS_LEGACY_MULTI_FACTOR,
)

"""THE table of OData query options the simulator accepts, per endpoint, as Microsoft documents them.

Every row cites the API reference page it was read from. Graph answers an option an endpoint
does not document with 400; the simulator does the same, so a client that sends `$select` to
userRegistrationDetails or `$top` to Conditional Access policies fails here as it would in
production. `$skiptoken` is accepted on every paged collection: it is the paging cursor Graph
puts in `@odata.nextLink` itself, not an option a caller chooses.

Paging: `default_page_size` is the page Graph returns without `$top`; `max_top` the largest
`$top` it accepts. Where the reference page does not state a default, the row's `page_note`
says what the value is based on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from testbed.simulator.odata_filter import Filter, FilterError, parse_filter

_EQ = frozenset({"eq"})
_EQ_NE = frozenset({"eq", "ne"})
_STRING = frozenset({"eq", "ne", "startswith", "endswith"})
_RANGE = frozenset({"eq", "ne", "ge", "le", "gt", "lt"})
_SIGNIN_RANGE = frozenset({"eq", "ge", "le"})
_EQ_STARTSWITH = frozenset({"eq", "startswith"})

# Directory objects need "advanced query capabilities" (ConsistencyLevel: eventual + $count=true)
# for these operators: https://learn.microsoft.com/graph/aad-advanced-queries
ADVANCED_QUERY_OPERATORS = frozenset({"ne", "not", "endswith"})
_PAGING_NOTE = "https://learn.microsoft.com/graph/paging: directory objects default to 100 per page, $top up to 999"


@dataclass(frozen=True)
class EndpointQueryOptions:
    endpoint: str
    doc: str
    options: frozenset[str]
    # Paged collections only; None for single objects.
    default_page_size: int | None = None
    max_top: int | None = None
    page_note: str = ""
    # Property path -> operators Microsoft documents for $filter on it; None: any property.
    filterable: Mapping[str, frozenset[str]] | None = None
    # The endpoint answers 400 without a $filter (roleAssignments on the directory provider).
    filter_required: bool = False
    # Directory-object endpoint: errors use the Request_* codes, and $count / $search and the
    # advanced operators need `ConsistencyLevel: eventual`.
    directory_object: bool = False
    # What Graph returns when the request has no $select (None: every property).
    default_properties: tuple[str, ...] | None = None
    # `eq` / `ne` / `startswith` on strings compare exactly (see odata_filter.parse_filter).
    case_sensitive_strings: bool = False


QUERY_OPTIONS: dict[str, EndpointQueryOptions] = {
    row.endpoint: row
    for row in (
        EndpointQueryOptions(
            "organization",
            "https://learn.microsoft.com/graph/api/organization-list",
            frozenset({"$select"}),
            default_page_size=100,
            page_note="a tenant has one organization object; paging never applies",
        ),
        EndpointQueryOptions(
            "users",
            "https://learn.microsoft.com/graph/api/user-list",
            frozenset({"$count", "$expand", "$filter", "$orderby", "$search", "$select", "$top"}),
            default_page_size=100,
            max_top=999,
            page_note=_PAGING_NOTE,
            filterable={
                "id": _EQ,
                "accountEnabled": _EQ_NE,
                "userType": _EQ_NE,
                "userPrincipalName": _STRING,
                "displayName": _STRING,
                "mail": _STRING,
                "createdDateTime": _RANGE,
                "onPremisesSyncEnabled": _EQ_NE,
            },
            directory_object=True,
            default_properties=(
                "businessPhones",
                "displayName",
                "givenName",
                "id",
                "jobTitle",
                "mail",
                "mobilePhone",
                "officeLocation",
                "preferredLanguage",
                "surname",
                "userPrincipalName",
            ),
        ),
        EndpointQueryOptions(
            "userRegistrationDetails",
            "https://learn.microsoft.com/graph/api/authenticationmethodsroot-list-userregistrationdetails",
            frozenset({"$filter", "$orderby"}),
            default_page_size=1000,
            page_note=(
                "the reference page states no page size and documents no $top; 1000 follows the "
                "identity-and-access report family's documented page (signin-list: 'The maximum and "
                "default page size is 1,000 objects')"
            ),
            # Exactly the "Supports $filter" notes of the resource page, v1.0
            # (https://learn.microsoft.com/graph/api/resources/userregistrationdetails) and beta
            # (https://learn.microsoft.com/graph/api/resources/userregistrationdetails?view=graph-rest-beta),
            # which agree on every entry but the last. `isAdmin`, `userType`, `id`,
            # `lastUpdatedDateTime` and beta's `defaultMfaMethod` document no $filter: Graph's 400.
            filterable={
                "isMfaCapable": _EQ,  # "Supports $filter (eq)"
                "isMfaRegistered": _EQ,  # "Supports $filter (eq)"
                "isPasswordlessCapable": _EQ,  # "Supports $filter (eq)"
                "isSsprCapable": _EQ,  # "Supports $filter (eq)"
                "isSsprEnabled": _EQ,  # "Supports $filter (eq)"
                "isSsprRegistered": _EQ,  # "Supports $filter (eq)"
                "isSystemPreferredAuthenticationMethodEnabled": _EQ,  # "Supports $filter (eq)"
                "methodsRegistered": frozenset({"any"}),  # "Supports $filter (any with eq)"
                "systemPreferredAuthenticationMethods": frozenset({"any"}),  # "(any with eq)"
                "userDisplayName": _EQ_STARTSWITH,  # "Supports $filter (eq, startsWith) and $orderby"
                "userPrincipalName": _EQ_STARTSWITH,  # "Supports $filter (eq, startsWith) and $orderby"
                # v1.0 only, and as written there: "Supports $filter (any with eq)".
                "userPreferredMethodForSecondaryAuthentication": frozenset({"any"}),
            },
        ),
        EndpointQueryOptions(
            "userRegistrationDetail",
            # GET .../userRegistrationDetails/{userId}: "This method does not support the OData
            # query parameters to help customize the response."
            "https://learn.microsoft.com/graph/api/userregistrationdetails-get",
            frozenset(),
        ),
        EndpointQueryOptions(
            "conditionalAccessPolicies",
            # v1.0 and beta (...?view=graph-rest-beta) document the same options.
            "https://learn.microsoft.com/graph/api/conditionalaccessroot-list-policies",
            frozenset({"$skip", "$top", "$count", "$filter", "$orderby", "$select"}),
            default_page_size=100,
            max_top=100,
            page_note="not stated on the reference page; tenants hold at most a few hundred policies",
        ),
        EndpointQueryOptions(
            "authenticationStrengthPolicy",
            # "This method does not support OData query parameters."
            "https://learn.microsoft.com/graph/api/authenticationstrengthpolicy-get",
            frozenset(),
        ),
        EndpointQueryOptions(
            "identitySecurityDefaultsEnforcementPolicy",
            "https://learn.microsoft.com/graph/api/identitysecuritydefaultsenforcementpolicy-get",
            frozenset({"$select"}),
        ),
        EndpointQueryOptions(
            "authenticationRequirements",
            "https://learn.microsoft.com/graph/api/authentication-get?view=graph-rest-beta "
            "(resource: https://learn.microsoft.com/graph/api/resources/strongauthenticationrequirements?view=graph-rest-beta)",
            frozenset(),
        ),
        EndpointQueryOptions(
            "authenticationMethods",
            "https://learn.microsoft.com/graph/api/authentication-list-methods",
            frozenset(),
            default_page_size=100,
            page_note="a user has a handful of methods; Graph returns them in one page",
        ),
        EndpointQueryOptions(
            "authenticationMethodsPolicy",
            "https://learn.microsoft.com/graph/api/authenticationmethodspolicy-get",
            frozenset(),
        ),
        EndpointQueryOptions(
            "subscribedSkus",
            "https://learn.microsoft.com/graph/api/subscribedsku-list",
            frozenset({"$select"}),
            default_page_size=100,
            page_note="not stated; a tenant holds few SKUs",
        ),
        EndpointQueryOptions(
            "roleAssignments",
            "https://learn.microsoft.com/graph/api/rbacapplication-list-roleassignments",
            # "This method supports the $filter, $expand, and $select OData query parameters".
            frozenset({"$filter", "$expand", "$select"}),
            default_page_size=100,
            page_note="not stated on the reference page",
            filterable={"principalId": _EQ, "roleDefinitionId": _EQ, "directoryScopeId": _EQ},
            filter_required=True,
        ),
        EndpointQueryOptions(
            "groupTransitiveMembers",
            "https://learn.microsoft.com/graph/api/group-list-transitivemembers",
            frozenset({"$count", "$expand", "$filter", "$search", "$select", "$top"}),
            default_page_size=100,
            max_top=999,
            page_note=_PAGING_NOTE,
            filterable=None,
            directory_object=True,
        ),
        EndpointQueryOptions(
            "group",
            # "You can use $select to get specific group properties".
            "https://learn.microsoft.com/graph/api/group-get",
            frozenset({"$select"}),
            directory_object=True,
        ),
        EndpointQueryOptions(
            "applications",
            "https://learn.microsoft.com/graph/api/application-list",
            frozenset({"$count", "$expand", "$filter", "$orderby", "$search", "$select", "$top"}),
            default_page_size=100,
            max_top=999,
            page_note=_PAGING_NOTE,
            filterable={"appId": _EQ, "displayName": _STRING, "id": _EQ, "signInAudience": _EQ_NE},
            directory_object=True,
        ),
        EndpointQueryOptions(
            "servicePrincipals",
            "https://learn.microsoft.com/graph/api/serviceprincipal-list",
            frozenset({"$count", "$expand", "$filter", "$orderby", "$search", "$select", "$top"}),
            default_page_size=100,
            max_top=999,
            page_note=_PAGING_NOTE,
            filterable={
                "appId": _EQ,
                "displayName": _STRING,
                "id": _EQ,
                "servicePrincipalType": _EQ_NE,
                "appOwnerOrganizationId": _EQ,
            },
            directory_object=True,
        ),
        EndpointQueryOptions(
            "signIns",
            # Options: "$top, $skiptoken, and $filter". Filterable properties and operators: the
            # "Supports $filter" notes of the beta signIn resource,
            # https://learn.microsoft.com/graph/api/resources/signin?view=graph-rest-beta
            # (createdDateTime: eq, le, ge; signInEventTypes through the any() lambda the
            # resource's own note uses: signInEventTypes/any(t: t eq 'nonInteractiveUser')).
            "https://learn.microsoft.com/graph/api/signin-list?view=graph-rest-beta",
            frozenset({"$top", "$filter"}),
            default_page_size=1000,
            max_top=1000,
            page_note="signin-list: 'The maximum and default page size is 1,000 objects'",
            filterable={
                "id": _EQ,
                "userId": _EQ,
                "appId": _EQ,
                "createdDateTime": _SIGNIN_RANGE,
                "userDisplayName": _EQ_STARTSWITH,
                "userPrincipalName": _EQ_STARTSWITH,
                "appDisplayName": _EQ_STARTSWITH,
                "ipAddress": _EQ_STARTSWITH,
                "userAgent": _EQ_STARTSWITH,
                "servicePrincipalId": _EQ_STARTSWITH,
                "servicePrincipalName": _EQ_STARTSWITH,
                # status: "Supports $filter (eq) on errorCode property".
                "status/errorCode": _EQ,
                # clientAppUsed: "Supports $filter (eq)" - only eq, so PartnerGuard asks for each
                # documented legacy value in turn (partnerguard/sign_in_streams.py).
                "clientAppUsed": _EQ,
                "conditionalAccessStatus": _EQ,
                "conditionalAccessAudiences": _EQ,
                "correlationId": _EQ,
                "originalRequestId": _EQ,
                "resourceId": _EQ,
                "resourceDisplayName": _EQ,
                "tokenIssuerName": _EQ,
                "riskDetail": _EQ,
                "riskLevelAggregated": _EQ,
                "riskLevelDuringSignIn": _EQ,
                "riskState": _EQ,
                "riskEventTypes_v2": _EQ_STARTSWITH,
                # authenticationRequirement: "Supports $filter (eq, startsWith)".
                "authenticationRequirement": _EQ_STARTSWITH,
                "deviceDetail/browser": _EQ_STARTSWITH,
                "deviceDetail/operatingSystem": _EQ_STARTSWITH,
                "location/city": _EQ_STARTSWITH,
                "location/state": _EQ_STARTSWITH,
                "location/countryOrRegion": _EQ_STARTSWITH,
                # signInEventTypes: "Supports $filter (eq, ne)", through any() as the resource's
                # note shows. authenticationProtocol documents no $filter: not listed, so refused.
                "signInEventTypes": frozenset({"any"}),
            },
            # Microsoft documents no case-insensitive comparison for the sign-in log, so the
            # simulator assumes the stricter: a client that finds what it needs here with exact
            # spellings finds it whichever way Graph compares.
            case_sensitive_strings=True,
        ),
        EndpointQueryOptions(
            "delegatedAdminRelationships",
            "https://learn.microsoft.com/graph/api/tenantrelationship-list-delegatedadminrelationships",
            frozenset({"$select", "$filter", "$top", "$orderby", "$count"}),
            default_page_size=300,
            max_top=300,
            page_note="reference page: '$top supports up to 300 objects'",
            filterable=None,
        ),
    )
}


class QueryError(Exception):
    """A query Graph rejects: HTTP status, Graph error code, message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ParsedQuery:
    select: tuple[str, ...] | None = None
    top: int | None = None
    skip: int = 0
    filter: Filter | None = None
    orderby: tuple[tuple[str, bool], ...] = ()
    count: bool = False
    search: tuple[tuple[str, str], ...] = ()
    skiptoken: str | None = None
    # The options to carry into @odata.nextLink (everything but $skiptoken), in request order.
    carried: tuple[tuple[str, str], ...] = field(default_factory=tuple)


def _bad_request(row: EndpointQueryOptions, message: str) -> QueryError:
    return QueryError(400, "Request_BadRequest" if row.directory_object else "BadRequest", message)


def _unsupported(row: EndpointQueryOptions, message: str) -> QueryError:
    return QueryError(400, "Request_UnsupportedQuery" if row.directory_object else "BadRequest", message)


def parse_query(
    endpoint: str, params: Sequence[tuple[str, str]], headers: Mapping[str, str], collection: bool
) -> ParsedQuery:
    """Validate the request's OData options against the endpoint's documented set."""
    row = QUERY_OPTIONS[endpoint]
    eventual = headers.get("consistencylevel", "").lower() == "eventual"
    values: dict[str, str] = {}
    carried: list[tuple[str, str]] = []
    for raw_name, value in params:
        if not raw_name.startswith("$"):
            continue  # Graph ignores parameters that are not OData system query options
        name = raw_name.lower()
        allowed = name in row.options or (name == "$skiptoken" and collection)
        if not allowed:
            raise _bad_request(row, f"Query option '{raw_name}' is not supported by this resource.")
        if name in values:
            raise _bad_request(row, f"Query option '{raw_name}' was specified more than once.")
        values[name] = value
        if name != "$skiptoken":
            carried.append((raw_name, value))

    if "$expand" in values:
        # Documented by Graph, but the simulator does not model relationships: fail loudly
        # rather than answer without the expansion.
        raise QueryError(501, "NotImplemented", "The simulator does not implement $expand.")

    select = None
    if "$select" in values:
        select = tuple(part.strip() for part in values["$select"].split(",") if part.strip())
        if not select:
            raise _bad_request(row, "Invalid $select: no properties.")

    top = None
    if "$top" in values:
        try:
            top = int(values["$top"])
        except ValueError:
            raise _bad_request(row, f"Invalid value '{values['$top']}' for query option '$top'.") from None
        limit = row.max_top or row.default_page_size or 0
        if top < 1 or top > limit:
            raise _bad_request(row, f"Invalid page size specified: '{top}'. Must be between 1 and {limit} inclusive.")

    skip = 0
    if "$skip" in values:
        try:
            skip = int(values["$skip"])
        except ValueError:
            raise _bad_request(row, f"Invalid value '{values['$skip']}' for query option '$skip'.") from None
        if skip < 0:
            raise _bad_request(row, "Invalid value for query option '$skip'.")

    count = False
    if "$count" in values:
        if values["$count"].lower() not in ("true", "false"):
            raise _bad_request(row, "Invalid value for query option '$count'.")
        count = values["$count"].lower() == "true"
        if count and row.directory_object and not eventual:
            raise _unsupported(row, "$count is supported only with the ConsistencyLevel header set to eventual.")

    search: list[tuple[str, str]] = []
    if "$search" in values:
        if row.directory_object and not eventual:
            raise _unsupported(row, "$search is supported only with the ConsistencyLevel header set to eventual.")
        for term in values["$search"].split(" AND "):
            term = term.strip().strip('"')
            prop, sep, text = term.partition(":")
            if not sep or not prop or not text:
                raise _bad_request(row, 'Invalid $search: use "property:value".')
            search.append((prop, text.lower()))

    parsed_filter = None
    if "$filter" in values:
        try:
            parsed_filter = parse_filter(values["$filter"], case_sensitive=row.case_sensitive_strings)
        except FilterError as error:
            raise _bad_request(row, str(error)) from None
        for clause in parsed_filter.clauses:
            if clause.operator in ADVANCED_QUERY_OPERATORS and row.directory_object and not (eventual and count):
                raise _unsupported(
                    row,
                    f"Operator '{clause.operator}' needs advanced query capabilities: "
                    "ConsistencyLevel: eventual and $count=true.",
                )
            if row.filterable is None or clause.path == "*":
                continue
            operators = row.filterable.get(clause.path)
            if operators is None or clause.operator not in operators:
                raise _unsupported(
                    row,
                    f"Unsupported or invalid query filter clause specified for property '{clause.path}' "
                    f"with operator '{clause.operator}'.",
                )
    elif row.filter_required:
        raise _bad_request(row, "This request requires a $filter on one of: " + ", ".join(row.filterable or {}))

    orderby: list[tuple[str, bool]] = []
    if "$orderby" in values:
        for part in values["$orderby"].split(","):
            words = part.split()
            if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
                raise _bad_request(row, f"Invalid $orderby clause '{part.strip()}'.")
            orderby.append((words[0], len(words) == 2 and words[1].lower() == "desc"))

    return ParsedQuery(
        select=select,
        top=top,
        skip=skip,
        filter=parsed_filter,
        orderby=tuple(orderby),
        count=count,
        search=tuple(search),
        skiptoken=values.get("$skiptoken"),
        carried=tuple(carried),
    )

"""The request table uses only the query options Microsoft documents for each endpoint.

The simulator keeps its own table of documented options (written from the same reference pages,
independently); a request ours would send that Graph would reject fails here.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from partnerguard.graph.pacing import ApiClass
from partnerguard.graph.requests import (
    APPLICATIONS,
    DELEGATED_ADMIN_RELATIONSHIPS,
    ENDPOINTS,
    GROUP_TRANSITIVE_MEMBERS,
    PER_USER_MFA_STATE,
    ROLE_ASSIGNMENTS_OF_ROLE,
    ROLE_ASSIGNMENTS_TENANT_WIDE,
    SERVICE_PRINCIPALS,
    USER_AUTHENTICATION_METHODS,
    USER_REGISTRATION_DETAILS,
    USERS,
    ApiVersion,
    Endpoint,
)
from testbed.simulator.query_options import QUERY_OPTIONS, parse_query

SAMPLE_VALUES = {
    "since": "2026-11-19T12:00:00Z",
    "until": "2026-11-26T12:00:00Z",
    "event_type": "nonInteractiveUser",
}
SAMPLE_ID = "0b6f0c4e-0000-4000-8000-000000000001"


def sample_parameters(endpoint: Endpoint) -> dict[str, str]:
    return {name: SAMPLE_VALUES.get(name, SAMPLE_ID) for name in endpoint.placeholders()}


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda endpoint: f"{endpoint.name}:{endpoint.filter or ''}")
def test_only_documented_options_are_sent(endpoint: Endpoint) -> None:
    assert endpoint.doc.startswith("https://learn.microsoft.com/")
    documented = QUERY_OPTIONS[endpoint.name]
    request = endpoint.request(**sample_parameters(endpoint))
    pairs = parse_qsl(urlsplit(request.relative_url).query)
    options = dict(pairs)
    assert set(options) <= documented.options, endpoint.doc
    if "$top" in options:
        assert documented.max_top is not None
        assert int(options["$top"]) == documented.max_top  # the documented maximum
    # The simulator's own reading of the reference page accepts the whole query: options,
    # filter properties and operators.
    parse_query(endpoint.name, pairs, {}, collection=documented.default_page_size is not None)


def test_filter_values_stay_inside_their_string_literal() -> None:
    request = ROLE_ASSIGNMENTS_OF_ROLE.request(role_id="x' or principalId eq 'y")
    query = dict(parse_qsl(urlsplit(request.relative_url).query))
    assert query["$filter"] == "roleDefinitionId eq 'x'' or principalId eq ''y'"
    parsed = parse_query("roleAssignments", list(query.items()), {}, collection=True)
    assert parsed.filter is not None
    assert [clause.path for clause in parsed.filter.clauses] == ["roleDefinitionId"]


def test_filter_parameters_are_required() -> None:
    with pytest.raises(ValueError, match="role_id"):
        ROLE_ASSIGNMENTS_OF_ROLE.request()
    assert ROLE_ASSIGNMENTS_TENANT_WIDE.request().relative_url == (
        "/roleManagement/directory/roleAssignments?$filter=directoryScopeId%20eq%20'%2F'"
    )


def test_collection_rows_of_the_catalogue() -> None:
    assert APPLICATIONS.request().relative_url == (
        "/applications?$select=id,appId,displayName,passwordCredentials,keyCredentials&$top=999"
    )
    assert "servicePrincipalType" in SERVICE_PRINCIPALS.select
    assert DELEGATED_ADMIN_RELATIONSHIPS.request().relative_url == (
        "/tenantRelationships/delegatedAdminRelationships?$top=300"
    )
    assert USER_AUTHENTICATION_METHODS.api_class is ApiClass.REPORTS  # paced 5 per 10 s
    assert GROUP_TRANSITIVE_MEMBERS.request(group_id="g/1").relative_url == (
        "/groups/g%2F1/transitiveMembers?$select=id,displayName&$top=999"
    )


def test_table_rows() -> None:
    assert USERS.request().relative_url == (
        "/users?$select=id,displayName,userPrincipalName,accountEnabled,userType&$top=999"
    )
    assert USER_REGISTRATION_DETAILS.request().relative_url == "/reports/authenticationMethods/userRegistrationDetails"
    assert USER_REGISTRATION_DETAILS.api_class is ApiClass.REPORTS
    assert PER_USER_MFA_STATE.api_version is ApiVersion.BETA


def test_path_parameters_are_quoted_and_required() -> None:
    request = PER_USER_MFA_STATE.request(user_id="a/b?c")
    assert request.relative_url == "/users/a%2Fb%3Fc/authentication/requirements"
    with pytest.raises(ValueError, match="user_id"):
        PER_USER_MFA_STATE.request()
    with pytest.raises(ValueError):
        USERS.request(user_id="x")

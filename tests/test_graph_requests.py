"""The request table uses only the query options Microsoft documents for each endpoint.

The simulator keeps its own table of documented options (written from the same reference pages,
independently); a request ours would send that Graph would reject fails here.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from partnerguard.graph.pacing import ApiClass
from partnerguard.graph.requests import (
    ENDPOINTS,
    PER_USER_MFA_STATE,
    USER_REGISTRATION_DETAILS,
    USERS,
    ApiVersion,
    Endpoint,
)
from partnerguard.simulator.query_options import QUERY_OPTIONS


def sample_parameters(endpoint: Endpoint) -> dict[str, str]:
    return {"user_id": "0b6f0c4e-0000-4000-8000-000000000001"} if "{user_id}" in endpoint.path else {}


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda endpoint: endpoint.name)
def test_only_documented_options_are_sent(endpoint: Endpoint) -> None:
    documented = QUERY_OPTIONS[endpoint.name]
    request = endpoint.request(**sample_parameters(endpoint))
    options = dict(parse_qsl(urlsplit(request.relative_url).query))
    assert set(options) <= documented.options, endpoint.doc
    if "$top" in options:
        assert documented.max_top is not None
        assert int(options["$top"]) == documented.max_top  # the documented maximum
    assert endpoint.doc.startswith("https://learn.microsoft.com/")


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

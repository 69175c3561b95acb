"""partnerguard/graph/permissions.py: the token's roles, which role serves which Graph call, and
the tables behind them — the request table against the check catalogue, and against the tenant
simulator's own table of the same Microsoft pages (kept apart so each side catches the other)."""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from checks import ALL_CHECKS, CHECK_IDS
from partnerguard.graph.permissions import DIRECTORY_READ, UnreadableToken, calls_of, serving_role, token_roles
from partnerguard.graph.requests import ENDPOINTS, ORGANIZATION, SUBSCRIBED_SKUS, USER_REGISTRATION_DETAILS, USERS
from testbed.simulator import TenantSimulator, bundled_scenarios
from testbed.simulator import graph_api as simulated_graph
from testbed.simulator.scenario import APP_PERMISSIONS

ROOT = Path(__file__).resolve().parents[1]


def _b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def jwt(claims: dict[str, Any]) -> str:
    return f"{_b64({'alg': 'RS256', 'typ': 'JWT'})}.{_b64(claims)}.c2lnbmF0dXJl"


# -- the token ------------------------------------------------------------------------------------


def test_roles_are_read_from_the_token_payload() -> None:
    assert token_roles(jwt({"roles": ["User.Read.All", "Directory.Read.All"]})) == {
        "User.Read.All",
        "Directory.Read.All",
    }
    # Entra omits the claim when nothing is consented.
    assert token_roles(jwt({"appid": "x"})) == frozenset()


@pytest.mark.parametrize(
    "token",
    [
        "opaque-token",
        "a.b",
        "eyJhbGciOiJSUzI1NiJ9.%%%.c2ln",
        jwt({"roles": "User.Read.All"}),
        jwt({"roles": ["User.Read.All", 7]}),
        f"{_b64({'alg': 'none'})}.{base64.urlsafe_b64encode(b'[1, 2]').decode()}.c2ln",
    ],
)
def test_a_token_that_is_not_a_jwt_with_a_roles_list_is_refused(token: str) -> None:
    with pytest.raises(UnreadableToken) as refused:
        token_roles(token)
    assert token not in str(refused.value)  # never echoed


def test_the_simulators_tokens_carry_the_tenants_roles() -> None:
    scenarios = bundled_scenarios()
    with TenantSimulator(scenarios) as sim:
        fabrikam = next(s for s in scenarios if s.display_name == "Fabrikam")
        fabrikam.granted_permissions = {"User.Read.All"}
        issued: dict[str, frozenset[str]] = {}
        for scenario in scenarios:
            response = sim.authority.token(
                scenario.tenant_id,
                {
                    "grant_type": "client_credentials",
                    "client_id": sim.client_id,
                    "client_secret": sim.client_secret,
                    "scope": f"{sim.base_url}/.default",
                },
                None,
            )
            issued[scenario.tenant_id] = token_roles(response.body["access_token"])
    for scenario in scenarios:
        assert issued[scenario.tenant_id] == scenario.roles
    assert issued[fabrikam.tenant_id] == {"User.Read.All"}
    assert {s.tenant_id for s in scenarios if issued[s.tenant_id] == APP_PERMISSIONS} == {
        s.tenant_id for s in scenarios if s.granted_permissions is None
    }


def test_the_simulated_app_declares_what_setup_identity_declares() -> None:
    spec = importlib.util.spec_from_file_location("setup_identity_for_permissions", ROOT / "scripts/setup_identity.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    assert set(module.GRAPH_PERMISSIONS) == APP_PERMISSIONS


# -- which role serves a call ---------------------------------------------------------------------


def test_a_call_is_served_by_its_permission_or_a_documented_higher_one() -> None:
    assert serving_role(USERS, {"User.Read.All", "Directory.Read.All"}) == "User.Read.All"
    assert serving_role(USERS, {"Directory.Read.All"}) == "Directory.Read.All"
    assert serving_role(ORGANIZATION, {"Directory.Read.All"}) == "Directory.Read.All"  # SPEC §3's example
    assert serving_role(SUBSCRIBED_SKUS, {"Organization.ReadWrite.All", "Directory.Read.All"}) == "Directory.Read.All"
    assert serving_role(USER_REGISTRATION_DETAILS, {"UserAuthenticationMethod.Read.All"}) is not None
    assert serving_role(USERS, {"Group.Read.All", "Mail.Read"}) is None
    assert serving_role(USERS, set()) is None


def test_owned_by_never_counts_it_sees_only_the_apps_it_owns() -> None:
    for endpoint in ENDPOINTS:
        assert "Application.ReadWrite.OwnedBy" not in endpoint.higher_privileged, endpoint.name
    for row in simulated_graph.ENDPOINTS:
        assert "Application.ReadWrite.OwnedBy" not in row.higher_privileged, row.name


# -- the tables -----------------------------------------------------------------------------------


@pytest.mark.parametrize("check", ALL_CHECKS, ids=CHECK_IDS)
def test_the_calls_a_check_reads_carry_exactly_its_permissions(check: Any) -> None:
    calls = calls_of(check.METADATA.id)
    assert calls, f"{check.METADATA.id} reads no call of the request table"
    by_call = {endpoint.permission for endpoint in calls}
    # Directory.Read.All is the one permission no call carries: Microsoft's licence check on the
    # sign-in and report APIs requires it besides their own.
    assert by_call | ({DIRECTORY_READ} & set(check.METADATA.permissions)) == set(check.METADATA.permissions)


def test_every_call_is_read_by_known_checks_or_by_every_scan() -> None:
    for endpoint in ENDPOINTS:
        assert set(endpoint.read_by) <= set(CHECK_IDS), endpoint.name
        assert (endpoint.read_by == ()) is (endpoint in (ORGANIZATION, SUBSCRIBED_SKUS)), endpoint.name


def test_the_client_and_the_simulator_agree_on_higher_privileged_permissions() -> None:
    simulated = {endpoint.name: endpoint for endpoint in simulated_graph.ENDPOINTS}
    for endpoint in ENDPOINTS:
        twin = simulated[endpoint.name]
        assert twin.permission == endpoint.permission, endpoint.name
        assert twin.higher_privileged == set(endpoint.higher_privileged), endpoint.name
        assert endpoint.permission not in endpoint.higher_privileged


def test_a_call_whose_refusal_is_made_up_for_names_a_call_the_same_check_reads() -> None:
    by_name = {endpoint.name: endpoint for endpoint in ENDPOINTS}
    for endpoint in ENDPOINTS:
        if endpoint.refusal_read_instead_by:
            instead = by_name[endpoint.refusal_read_instead_by]
            assert set(endpoint.read_by) <= set(instead.read_by), endpoint.name
            assert instead in calls_of(endpoint.read_by[0]), endpoint.name
            assert endpoint not in calls_of(endpoint.read_by[0]), endpoint.name

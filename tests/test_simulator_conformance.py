"""The simulator's responses are Graph's schema field for field.

Every kind of response it serves is parsed through msgraph-sdk's generated v1.0 models with
kiota's JsonParseNodeFactory; a property the model does not know lands in `additional_data`, so
asserting that nothing but `@odata.*` annotations lands there (recursively, through nested
models and collections) proves the fixtures use Graph's property names and nesting.

Beta-only shapes: msgraph_beta is not installed. Sign-ins are parsed with the v1.0 `signIn`
model, and only the properties the beta signIn resource adds may be unknown to it
(BETA_ONLY_SIGN_IN_PROPERTIES); `strongAuthenticationRequirements` has no v1.0 model at all, so
its one documented property is checked directly. Entra's token responses are not Graph
resources: they are checked against the documented OAuth/AADSTS field set.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from kiota_abstractions.serialization import Parsable
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
from msgraph.generated.models.application_collection_response import ApplicationCollectionResponse
from msgraph.generated.models.authentication_method_collection_response import (
    AuthenticationMethodCollectionResponse,
)
from msgraph.generated.models.authentication_methods_policy import AuthenticationMethodsPolicy
from msgraph.generated.models.conditional_access_policy_collection_response import (
    ConditionalAccessPolicyCollectionResponse,
)
from msgraph.generated.models.delegated_admin_relationship_collection_response import (
    DelegatedAdminRelationshipCollectionResponse,
)
from msgraph.generated.models.directory_object_collection_response import DirectoryObjectCollectionResponse
from msgraph.generated.models.group import Group
from msgraph.generated.models.identity_security_defaults_enforcement_policy import (
    IdentitySecurityDefaultsEnforcementPolicy,
)
from msgraph.generated.models.o_data_errors.o_data_error import ODataError
from msgraph.generated.models.organization_collection_response import OrganizationCollectionResponse
from msgraph.generated.models.service_principal_collection_response import ServicePrincipalCollectionResponse
from msgraph.generated.models.sign_in_collection_response import SignInCollectionResponse
from msgraph.generated.models.subscribed_sku_collection_response import SubscribedSkuCollectionResponse
from msgraph.generated.models.unified_role_assignment_collection_response import (
    UnifiedRoleAssignmentCollectionResponse,
)
from msgraph.generated.models.user_collection_response import UserCollectionResponse
from msgraph.generated.models.user_registration_details_collection_response import (
    UserRegistrationDetailsCollectionResponse,
)

from testbed.simulator import TenantSimulator, bundled_scenarios
from tests.simulator_http import CONTOSO, tls
from tests.simulator_http import client as graph_client

pytestmark = pytest.mark.simulator

LITWARE = "9d4c2b1a-8e7f-4a6b-9c5d-3e2f1a0b9c8d"
HARDWARE_OATH = "#microsoft.graph.hardwareOathAuthenticationMethod"
# Properties of the beta signIn resource that the v1.0 model lacks
# (https://learn.microsoft.com/graph/api/resources/signin?view=graph-rest-beta).
BETA_ONLY_SIGN_IN_PROPERTIES = frozenset(
    {
        "authenticationRequirement",
        "authenticationProtocol",
        "signInEventTypes",
        "userType",
        "tokenIssuerType",
        "incomingTokenType",
        "clientCredentialType",
    }
)
# https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow#error-response
TOKEN_ERROR_FIELDS = frozenset(
    {
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
        "error_uri",
    }
)
TOKEN_SUCCESS_FIELDS = frozenset({"token_type", "expires_in", "ext_expires_in", "access_token"})


@pytest.fixture(scope="module")
def sim() -> Iterator[TenantSimulator]:
    with TenantSimulator(bundled_scenarios(), enforce_limits=False) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def graph(sim: TenantSimulator) -> Iterator[httpx.Client]:
    with graph_client(sim, CONTOSO) as client:
        yield client


def unknown_properties(value: Any, path: str = "$") -> Iterator[str]:
    """Every additional_data key, anywhere in the parsed model tree, that is not an annotation."""
    if isinstance(value, list):
        for index, item in enumerate(value):
            yield from unknown_properties(item, f"{path}[{index}]")
        return
    if not isinstance(value, Parsable):
        return
    for key in getattr(value, "additional_data", None) or {}:
        if "@odata." not in key:
            yield f"{path}.{key}"
    for name, child in vars(value).items():
        if name != "additional_data":
            yield from unknown_properties(child, f"{path}.{name}")


def parse(body: bytes, model: Any) -> Any:
    """The body as the msgraph model class `model` (kiota's factory protocol is the class itself)."""
    node = JsonParseNodeFactory().get_root_parse_node("application/json", body)
    parsed = node.get_object_value(model)
    assert parsed is not None
    return parsed


CASES: list[tuple[str, type[Parsable]]] = [
    ("/v1.0/organization", OrganizationCollectionResponse),
    (
        "/v1.0/users?$select=id,displayName,userPrincipalName,accountEnabled,userType,mail,createdDateTime,"
        "givenName,surname,jobTitle,businessPhones,mobilePhone,officeLocation,preferredLanguage,usageLocation",
        UserCollectionResponse,
    ),
    ("/v1.0/users", UserCollectionResponse),
    ("/v1.0/reports/authenticationMethods/userRegistrationDetails", UserRegistrationDetailsCollectionResponse),
    ("/v1.0/identity/conditionalAccess/policies", ConditionalAccessPolicyCollectionResponse),
    ("/v1.0/policies/identitySecurityDefaultsEnforcementPolicy", IdentitySecurityDefaultsEnforcementPolicy),
    ("/v1.0/policies/authenticationMethodsPolicy", AuthenticationMethodsPolicy),
    ("/v1.0/subscribedSkus", SubscribedSkuCollectionResponse),
    (
        "/v1.0/roleManagement/directory/roleAssignments?$filter=roleDefinitionId eq "
        "'62e90394-69f5-4237-9190-012177145e10'",
        UnifiedRoleAssignmentCollectionResponse,
    ),
    ("/v1.0/applications", ApplicationCollectionResponse),
    ("/v1.0/servicePrincipals", ServicePrincipalCollectionResponse),
    ("/v1.0/tenantRelationships/delegatedAdminRelationships", DelegatedAdminRelationshipCollectionResponse),
]


@pytest.mark.parametrize(("url", "factory"), CASES, ids=[case[0].split("?")[0] for case in CASES])
def test_collection_and_object_responses_match_graph_models(
    graph: httpx.Client, url: str, factory: type[Parsable]
) -> None:
    response = graph.get(url)
    assert response.status_code == 200, response.text
    parsed = parse(response.content, factory)
    assert list(unknown_properties(parsed)) == []
    if "value" in response.json():
        assert response.json()["value"], f"{url} served no rows: the check would prove nothing"


def test_every_users_authentication_methods_match_graph_models(sim: TenantSimulator) -> None:
    kinds: set[str] = set()
    for tenant in sim.tenants:
        client = graph_client(sim, tenant.tenant_id)
        for user in tenant.users:
            response = client.get(f"/v1.0/users/{user['id']}/authentication/methods")
            assert response.status_code == 200
            parsed = parse(response.content, AuthenticationMethodCollectionResponse)
            assert list(unknown_properties(parsed)) == []
            kinds.update(type(method).__name__ for method in parsed.value or [])
        client.close()
    # The discriminator picked a derived model for each method kind the fixtures use.
    assert {
        "PasswordAuthenticationMethod",
        "MicrosoftAuthenticatorAuthenticationMethod",
        "PhoneAuthenticationMethod",
        "Fido2AuthenticationMethod",
        "SoftwareOathAuthenticationMethod",
        "WindowsHelloForBusinessAuthenticationMethod",
        "PlatformCredentialAuthenticationMethod",
        "TemporaryAccessPassAuthenticationMethod",
        "EmailAuthenticationMethod",
    } <= kinds


def test_beta_only_method_shapes_are_served_on_beta_only(sim: TenantSimulator) -> None:
    """hardwareOathAuthenticationMethod (and its policy configuration) exist on beta only: the
    v1.0 list omits them, as Graph's does ("only the methods supported on this API version")."""
    litware = sim.tenant(LITWARE)
    client = graph_client(sim, LITWARE)
    holder = next(
        user_id
        for user_id, methods in litware.authentication_methods.items()
        if any(m["@odata.type"] == HARDWARE_OATH for m in methods)
    )
    v1 = client.get(f"/v1.0/users/{holder}/authentication/methods").json()["value"]
    beta = client.get(f"/beta/users/{holder}/authentication/methods").json()["value"]
    assert HARDWARE_OATH not in {m["@odata.type"] for m in v1}
    hardware = [m for m in beta if m["@odata.type"] == HARDWARE_OATH]
    # beta hardwareOathAuthenticationMethod: createdDateTime and id only (resource page).
    assert len(hardware) == 1 and set(hardware[0]) == {"@odata.type", "id", "createdDateTime"}
    v1_policy = client.get("/v1.0/policies/authenticationMethodsPolicy")
    parsed = parse(v1_policy.content, AuthenticationMethodsPolicy)
    assert list(unknown_properties(parsed)) == []
    v1_ids = {c["id"] for c in v1_policy.json()["authenticationMethodConfigurations"]}
    beta_ids = {
        c["id"]
        for c in client.get("/beta/policies/authenticationMethodsPolicy").json()["authenticationMethodConfigurations"]
    }
    assert "HardwareOath" not in v1_ids and beta_ids - v1_ids == {"HardwareOath"}
    assert {"X509Certificate", "Voice"} <= v1_ids
    client.close()


def test_users_with_authorization_info_match_graph_models(sim: TenantSimulator) -> None:
    client = graph_client(sim, LITWARE)
    response = client.get("/v1.0/users", params={"$select": "id,displayName,authorizationInfo"})
    parsed = parse(response.content, UserCollectionResponse)
    assert list(unknown_properties(parsed)) == []
    bound = [u for u in parsed.value or [] if u.authorization_info and u.authorization_info.certificate_user_ids]
    assert len(bound) == 1
    client.close()


def test_group_transitive_members_and_groups_match_graph_models(graph: httpx.Client, sim: TenantSimulator) -> None:
    kinds: set[str] = set()
    for group_id in sim.tenant(CONTOSO).group_transitive_members:
        response = graph.get(f"/v1.0/groups/{group_id}/transitiveMembers")
        parsed = parse(response.content, DirectoryObjectCollectionResponse)
        assert list(unknown_properties(parsed)) == []
        kinds.update(type(m).__name__ for m in parsed.value or [])
        group = graph.get(f"/v1.0/groups/{group_id}")
        assert group.status_code == 200, group.text
        assert list(unknown_properties(parse(group.content, Group))) == []
    assert kinds == {"User", "Group"}  # a nested group is listed with its members


def test_beta_sign_ins_match_v1_model_plus_documented_beta_properties(graph: httpx.Client) -> None:
    for event_type in ("interactiveUser", "nonInteractiveUser"):
        response = graph.get(
            "/beta/auditLogs/signIns", params={"$filter": f"signInEventTypes/any(t: t eq '{event_type}')"}
        )
        assert response.status_code == 200, response.text
        parsed = parse(response.content, SignInCollectionResponse)
        unknown = {path.rsplit(".", 1)[1] for path in unknown_properties(parsed)}
        assert unknown <= BETA_ONLY_SIGN_IN_PROPERTIES
        assert response.json()["value"]


def test_beta_per_user_mfa_state_has_the_documented_shape(graph: httpx.Client, sim: TenantSimulator) -> None:
    for user in sim.tenant(CONTOSO).users:
        body = graph.get(f"/beta/users/{user['id']}/authentication/requirements").json()
        assert set(body) == {"@odata.context", "perUserMfaState"}
        assert body["perUserMfaState"] in {"disabled", "enabled", "enforced"}


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/v1.0/users?$skip=5", 400),
        ("/v1.0/nothingHere", 400),
        ("/v1.0/users/00000000-0000-0000-0000-000000000000/authentication/methods", 404),
    ],
)
def test_graph_error_bodies_match_the_odata_error_model(graph: httpx.Client, url: str, status: int) -> None:
    response = graph.get(url)
    assert response.status_code == status
    parsed = parse(response.content, ODataError)
    assert list(unknown_properties(parsed)) == []
    assert parsed.error.code and parsed.error.message
    assert parsed.error.inner_error.request_id


def test_unauthenticated_error_matches_the_odata_error_model(sim: TenantSimulator) -> None:
    response = httpx.get(f"{sim.base_url}/v1.0/users", verify=tls(sim))
    assert response.status_code == 401
    parsed = parse(response.content, ODataError)
    assert list(unknown_properties(parsed)) == []
    assert parsed.error.code == "InvalidAuthenticationToken"


def test_licence_error_matches_the_odata_error_model(sim: TenantSimulator) -> None:
    northwind = next(t for t in sim.tenants if not t.has_entra_premium)
    token = httpx.post(
        f"{sim.base_url}/{northwind.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": sim.client_id,
            "client_secret": sim.client_secret,
            "scope": f"{sim.base_url}/.default",
        },
        verify=tls(sim),
    ).json()["access_token"]
    response = httpx.get(
        f"{sim.base_url}/v1.0/identity/conditionalAccess/policies",
        verify=tls(sim),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 403
    parsed = parse(response.content, ODataError)
    assert list(unknown_properties(parsed)) == []


def test_batch_response_has_the_documented_envelope(graph: httpx.Client) -> None:
    response = graph.post(
        "/v1.0/$batch",
        json={
            "requests": [
                {"id": "1", "method": "GET", "url": "/organization"},
                {"id": "2", "method": "GET", "url": "/users?$skip=1"},
            ]
        },
    )
    assert response.status_code == 200
    responses = response.json()["responses"]
    assert all(set(item) == {"id", "status", "headers", "body"} for item in responses)
    by_id = {item["id"]: item for item in responses}
    org = parse(json.dumps(by_id["1"]["body"]).encode(), OrganizationCollectionResponse)
    assert list(unknown_properties(org)) == []
    error = parse(json.dumps(by_id["2"]["body"]).encode(), ODataError)
    assert list(unknown_properties(error)) == []


def test_token_responses_use_the_documented_fields(sim: TenantSimulator) -> None:
    url = f"{sim.base_url}/{CONTOSO}/oauth2/v2.0/token"
    form = {"grant_type": "client_credentials", "client_id": sim.client_id, "scope": f"{sim.base_url}/.default"}
    success = httpx.post(url, data={**form, "client_secret": sim.client_secret}, verify=tls(sim)).json()
    assert set(success) == TOKEN_SUCCESS_FIELDS
    failure = httpx.post(url, data={**form, "client_secret": "wrong"}, verify=tls(sim)).json()
    assert set(failure) == TOKEN_ERROR_FIELDS
    assert failure["error_description"].startswith(f"AADSTS{failure['error_codes'][0]}: ")

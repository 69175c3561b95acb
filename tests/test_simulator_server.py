"""The tenant simulator over real loopback HTTPS: sign-in, paging, query options, licences,
throttling, $batch, faults, and clean shutdown."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import (
    CertificateCredential,
    ClientAssertionCredential,
    ClientSecretCredential,
    ManagedIdentityCredential,
)

from testbed.simulator import ApiClass, Scope, TenantSimulator, ThrottleLimit, bundled_scenarios, generate_tenant
from tests.simulator_http import CONTOSO, client, tls, token_response

pytestmark = pytest.mark.simulator

FABRIKAM = "c0ffee00-1b2c-4d3e-8f90-a1b2c3d4e5f6"
NORTHWIND = "5e1d2c3b-4a59-4687-9a0b-1c2d3e4f5a6b"
BIG = "b16b16b1-0000-4000-8000-000000000250"
REPORTS = "/v1.0/reports/authenticationMethods/userRegistrationDetails"


@pytest.fixture(scope="module")
def sim() -> Iterator[TenantSimulator]:
    scenarios = [*bundled_scenarios(), generate_tenant(BIG, users=250, seed=3, display_name="Big")]
    with TenantSimulator(scenarios) as simulator:
        yield simulator


@pytest.fixture(autouse=True)
def fresh_limits(sim: TenantSimulator) -> None:
    sim.reset_throttling()
    sim.faults.clear()


# -- sign-in -------------------------------------------------------------------------------


def test_client_secret_credential_signs_in_and_users_are_read_over_http11(sim: TenantSimulator) -> None:
    credential = ClientSecretCredential(
        CONTOSO,
        sim.client_id,
        sim.client_secret,
        authority=sim.base_url,
        disable_instance_discovery=True,
        connection_verify=str(sim.ca_bundle),
    )
    token = credential.get_token(f"{sim.base_url}/.default").token
    with httpx.Client(verify=tls(sim), http2=True) as http:
        response = http.get(f"{sim.base_url}/v1.0/users", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.http_version == "HTTP/1.1"  # ALPN fell back from h2
    names = {user["displayName"] for user in response.json()["value"]}
    assert "Adele Vance" in names and len(names) == len(sim.tenant(CONTOSO).users)


def test_certificate_credential_signs_in(sim: TenantSimulator) -> None:
    credential = CertificateCredential(
        FABRIKAM,
        sim.client_id,
        certificate_path=str(sim.certificate_path),
        authority=sim.base_url,
        disable_instance_discovery=True,
        connection_verify=str(sim.ca_bundle),
    )
    token = credential.get_token(f"{sim.base_url}/.default").token
    response = httpx.get(
        f"{sim.base_url}/v1.0/organization", verify=tls(sim), headers={"Authorization": f"Bearer {token}"}
    )
    assert response.json()["value"][0]["id"] == FABRIKAM  # the token is bound to the tenant it was asked for


def test_managed_identity_federated_credential_chain(sim: TenantSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in sim.managed_identity_environment().items():
        monkeypatch.setenv(name, value)
    identity = ManagedIdentityCredential(client_id=sim.managed_identity_client_id)
    credential = ClientAssertionCredential(
        FABRIKAM,
        sim.client_id,
        lambda: identity.get_token("api://AzureADTokenExchange/.default").token,
        authority=sim.base_url,
        disable_instance_discovery=True,
        connection_verify=str(sim.ca_bundle),
    )
    token = credential.get_token(f"{sim.base_url}/.default").token
    response = httpx.get(
        f"{sim.base_url}/v1.0/organization", verify=tls(sim), headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    assert any(r.path == "/msi/token" and r.status == 200 for r in sim.requests)


def test_managed_identity_endpoint_rejects_a_wrong_header_or_identity(sim: TenantSimulator) -> None:
    endpoint = sim.managed_identity_environment()["IDENTITY_ENDPOINT"]
    params = {
        "api-version": "2019-08-01",
        "resource": "api://AzureADTokenExchange",
        "client_id": sim.managed_identity_client_id,
    }
    assert httpx.get(endpoint, params=params, headers={"X-IDENTITY-HEADER": "nope"}).status_code == 401
    header = {"X-IDENTITY-HEADER": sim.managed_identity_environment()["IDENTITY_HEADER"]}
    other = {**params, "client_id": "11111111-1111-4111-8111-111111111111"}
    assert httpx.get(endpoint, params=other, headers=header).status_code == 400
    assert httpx.get(endpoint, params=params, headers=header).json()["token_type"] == "Bearer"


def test_a_forged_federated_assertion_is_refused(sim: TenantSimulator) -> None:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(
        {"aud": "api://AzureADTokenExchange", "iss": "x", "sub": "y", "exp": time.time() + 60}, key, algorithm="RS256"
    )
    response = token_response(
        sim,
        CONTOSO,
        client_secret="",
        client_assertion_type="urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        client_assertion=forged,
    )
    assert response.status_code in (400, 401)
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("tenant", "form", "status", "error", "code"),
    [
        (CONTOSO, {"client_secret": "not-the-secret"}, 401, "invalid_client", 7000215),
        ("0badc0de-0000-4000-8000-000000000000", {}, 400, "invalid_request", 90002),
        (CONTOSO, {"client_id": "11111111-1111-4111-8111-111111111111"}, 400, "unauthorized_client", 700016),
        (CONTOSO, {"scope": "https://graph.microsoft.com/.default"}, 400, "invalid_scope", 500011),
        (CONTOSO, {"scope": "User.Read"}, 400, "invalid_scope", 1002012),
        (CONTOSO, {"grant_type": "password"}, 400, "unsupported_grant_type", 70003),
    ],
)
def test_token_endpoint_errors(
    sim: TenantSimulator, tenant: str, form: dict[str, str], status: int, error: str, code: int
) -> None:
    response = token_response(sim, tenant, **form)
    assert response.status_code == status
    body = response.json()
    assert (body["error"], body["error_codes"]) == (error, [code])
    assert body["error_description"].startswith(f"AADSTS{code}:")


def test_tenant_without_consent_answers_missing_service_principal(sim: TenantSimulator) -> None:
    tenant = sim.tenant(FABRIKAM)
    tenant.consented = False
    try:
        response = token_response(sim, FABRIKAM)
        credential = ClientSecretCredential(
            FABRIKAM,
            sim.client_id,
            sim.client_secret,
            authority=sim.base_url,
            disable_instance_discovery=True,
            connection_verify=str(sim.ca_bundle),
        )
        with pytest.raises(ClientAuthenticationError, match="AADSTS7000229"):
            credential.get_token(f"{sim.base_url}/.default")
    finally:
        tenant.consented = True
    assert response.json()["error_codes"] == [7000229]


def test_graph_rejects_missing_unknown_and_expired_tokens() -> None:
    with TenantSimulator(bundled_scenarios()) as sim:
        missing = httpx.get(f"{sim.base_url}/v1.0/users", verify=tls(sim))
        assert missing.status_code == 401
        assert missing.json()["error"]["code"] == "InvalidAuthenticationToken"
        assert missing.headers["WWW-Authenticate"].startswith("Bearer ")
        garbage = httpx.get(f"{sim.base_url}/v1.0/users", verify=tls(sim), headers={"Authorization": "Bearer abc"})
        assert garbage.status_code == 401
        with client(sim) as http:
            assert http.get("/v1.0/organization").status_code == 200
            sim.expire_tokens()
            expired = http.get("/v1.0/organization")
        assert expired.status_code == 401
        assert "expired" in expired.json()["error"]["message"]


def test_openid_configuration_points_at_the_simulator(sim: TenantSimulator) -> None:
    body = httpx.get(f"{sim.base_url}/{CONTOSO}/v2.0/.well-known/openid-configuration", verify=tls(sim)).json()
    assert body["token_endpoint"] == f"{sim.base_url}/{CONTOSO}/oauth2/v2.0/token"
    unknown = httpx.get(f"{sim.base_url}/nobody.example/v2.0/.well-known/openid-configuration", verify=tls(sim))
    assert unknown.status_code == 400


# -- paging, $select, query options ------------------------------------------------------


def test_users_page_by_100_by_default_with_absolute_next_links(sim: TenantSimulator) -> None:
    with client(sim, BIG) as http:
        url: str | None = "/v1.0/users?$select=id,accountEnabled"
        pages: list[int] = []
        seen: list[str] = []
        while url:
            body = http.get(url).json()
            pages.append(len(body["value"]))
            seen.extend(user["id"] for user in body["value"])
            url = body.get("@odata.nextLink")
            if url:
                assert url.startswith(f"{sim.base_url}/v1.0/users?")
                assert "$skiptoken=" in url and "$select=id,accountEnabled" in url
    assert pages == [100, 100, 50]
    assert seen == [user["id"] for user in sim.tenant(BIG).users]


def test_top_bounds_and_tampered_skiptoken(sim: TenantSimulator) -> None:
    with client(sim, BIG) as http:
        assert len(http.get("/v1.0/users?$top=999").json()["value"]) == 250
        assert http.get("/v1.0/users?$top=1000").status_code == 400
        link = http.get("/v1.0/users?$top=10").json()["@odata.nextLink"]
        assert http.get(link).status_code == 200
        tampered = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
        assert http.get(tampered).status_code == 400


def test_select_returns_selected_properties_and_id_and_default_set_otherwise(sim: TenantSimulator) -> None:
    with client(sim) as http:
        selected = http.get("/v1.0/users?$select=displayName").json()["value"][0]
        default = http.get("/v1.0/users").json()["value"][0]
    assert set(selected) == {"id", "displayName"}
    assert "accountEnabled" not in default and "userPrincipalName" in default  # Graph's default property set


@pytest.mark.parametrize(
    "url",
    [
        REPORTS + "?$select=id",
        REPORTS + "?$top=10",
        "/v1.0/identity/conditionalAccess/policies?$search=x",
        "/v1.0/policies/authenticationMethodsPolicy?$select=id",
        "/v1.0/users?$skip=10",
        "/v1.0/roleManagement/directory/roleAssignments",  # the directory provider requires $filter
        "/v1.0/users?$filter=accountEnabled ne false",  # `ne` needs ConsistencyLevel + $count
        "/v1.0/users?$filter=jobTitle eq 'CEO'",  # not a filterable property in the table
        "/beta/auditLogs/signIns?$filter=createdDateTime gt 2024-01-01T00:00:00Z",  # only ge/le/eq documented
        "/beta/auditLogs/signIns?$filter=createdDateTime lt 2024-01-01T00:00:00Z",
        "/beta/auditLogs/signIns?$filter=startswith(clientAppUsed,'IMAP')",  # clientAppUsed: eq only
        "/beta/auditLogs/signIns?$select=id",  # $top, $skiptoken and $filter only
        "/v1.0/groups/88daf401-6b40-43ef-a54b-0c4e010c4759?$top=1",
    ],
)
def test_undocumented_query_options_answer_400(sim: TenantSimulator, url: str) -> None:
    with client(sim) as http:
        response = http.get(url)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] in ("BadRequest", "Request_BadRequest", "Request_UnsupportedQuery")


def test_filters_partnerguard_uses(sim: TenantSimulator) -> None:
    contoso = sim.tenant(CONTOSO)
    with client(sim) as http:
        enabled = http.get("/v1.0/users", params={"$filter": "accountEnabled eq true", "$select": "id"}).json()
        capable = http.get(REPORTS, params={"$filter": "isMfaCapable eq false"}).json()
        advanced = http.get(
            "/v1.0/users",
            params={"$filter": "accountEnabled ne false", "$count": "true"},
            headers={"ConsistencyLevel": "eventual"},
        ).json()
        admins = http.get(
            "/v1.0/roleManagement/directory/roleAssignments",
            params={"$filter": "roleDefinitionId eq '62e90394-69f5-4237-9190-012177145e10'"},
        ).json()
    assert len(enabled["value"]) == sum(1 for u in contoso.users if u["accountEnabled"])
    assert advanced["@odata.count"] == len(enabled["value"])
    reported_incapable = {row["id"] for row in capable["value"]}
    assert all(not row["isMfaCapable"] for row in capable["value"]) and reported_incapable
    assert len(admins["value"]) == 3


def test_sign_ins_are_interactive_unless_the_event_type_is_filtered(sim: TenantSimulator) -> None:
    with client(sim) as http:
        default = http.get("/beta/auditLogs/signIns").json()["value"]
        time.sleep(1.1)  # identity reports allow 5 per 10 s; stay far from it
        window = "createdDateTime ge " + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 7 * 86400))
        recent = http.get("/beta/auditLogs/signIns", params={"$filter": window}).json()["value"]
        non_interactive = http.get(
            "/beta/auditLogs/signIns",
            params={"$filter": f"({window}) and signInEventTypes/any(t: t eq 'nonInteractiveUser')"},
        ).json()["value"]
    contoso = sim.tenant(CONTOSO)
    interactive = [row for row in contoso.sign_ins if row["signInEventTypes"] == ["interactiveUser"]]
    old = [row for row in interactive if row["createdDateTime"] < window.split()[-1]]
    assert default and all("interactiveUser" in row["signInEventTypes"] for row in default)
    assert len(default) == len(interactive) and old  # a few sign-ins are older than a week
    assert len(recent) == len(default) - len(old)
    assert {row["id"] for row in non_interactive} == {
        row["id"] for row in contoso.sign_ins if row["signInEventTypes"] == ["nonInteractiveUser"]
    }
    times = [row["createdDateTime"] for row in default]
    assert times == sorted(times, reverse=True)  # most recent first, as Graph returns them


def test_sign_in_streams_as_partnerguard_reads_them(sim: TenantSimulator) -> None:
    """The collector's form: a createdDateTime range (ge/le, documented) and one event type per
    stream; `or` inside the lambda works too. Service-principal sign-ins are in neither stream."""
    contoso = sim.tenant(CONTOSO)
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 60))
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 168 * 3600))
    streams: dict[str, set[str]] = {}
    with client(sim) as http:
        for event_type in ("interactiveUser", "nonInteractiveUser"):
            response = http.get(
                "/beta/auditLogs/signIns",
                params={
                    "$filter": f"createdDateTime ge {since} and createdDateTime le {until} "
                    f"and signInEventTypes/any(t: t eq '{event_type}')",
                    "$top": "1000",
                },
            )
            assert response.status_code == 200, response.text
            streams[event_type] = {row["id"] for row in response.json()["value"]}
        both = http.get(
            "/beta/auditLogs/signIns",
            params={"$filter": "signInEventTypes/any(t: t eq 'interactiveUser' or t eq 'nonInteractiveUser')"},
        ).json()["value"]
        time.sleep(2.1)  # identity reports: 5 requests per 10 s
        ops = http.get("/beta/auditLogs/signIns", params={"$filter": "authenticationRequirement eq 'single'"})
        prefix = http.get(
            "/beta/auditLogs/signIns", params={"$filter": "startswith(authenticationRequirement,'single')"}
        )
    cutoff = since
    for event_type, ids in streams.items():
        expected = {
            row["id"]
            for row in contoso.sign_ins
            if row["signInEventTypes"] == [event_type] and row["createdDateTime"] >= cutoff
        }
        assert ids == expected and ids
    principal = {row["id"] for row in contoso.sign_ins if row["signInEventTypes"] == ["servicePrincipal"]}
    assert principal and not principal & (streams["interactiveUser"] | streams["nonInteractiveUser"])
    assert {row["id"] for row in both} == {
        row["id"] for row in contoso.sign_ins if row["signInEventTypes"] != ["servicePrincipal"]
    }
    assert ops.status_code == 200 and ops.json()["value"] == []
    assert prefix.status_code == 200 and prefix.json()["value"]  # authenticationRequirement: eq, startsWith


def test_directory_reads_for_exclusions_and_credentials(sim: TenantSimulator) -> None:
    contoso = sim.tenant(CONTOSO)
    group_id = "88daf401-6b40-43ef-a54b-0c4e010c4759"
    with client(sim) as http:
        group = http.get(f"/v1.0/groups/{group_id}", params={"$select": "id,displayName"})
        missing = http.get("/v1.0/groups/00000000-0000-4000-8000-000000000000")
        members = http.get(
            f"/v1.0/groups/{group_id}/transitiveMembers", params={"$select": "id,displayName", "$top": "999"}
        )
        tenant_wide = http.get(
            "/v1.0/roleManagement/directory/roleAssignments",
            params={"$filter": "directoryScopeId eq '/'", "$select": "id,principalId,roleDefinitionId"},
        )
        principals = http.get(
            "/v1.0/servicePrincipals",
            params={
                "$select": "id,appId,displayName,servicePrincipalType,passwordCredentials,keyCredentials",
                "$top": "999",
            },
        )
    assert group.json() == {
        "@odata.context": f"{sim.base_url}/v1.0/$metadata#groups/$entity",
        "id": group_id,
        "displayName": "MFA Exclusions",
    }
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "Request_ResourceNotFound"
    kinds = {row["@odata.type"] for row in members.json()["value"]}
    assert kinds == {"#microsoft.graph.user", "#microsoft.graph.group"}  # nested group listed, with its members
    assert all(set(row) == {"@odata.type", "id", "displayName"} for row in members.json()["value"])
    assert len(tenant_wide.json()["value"]) == len(contoso.role_assignments)
    rows = principals.json()["value"]
    assert len(rows) == len(contoso.service_principals)
    assert {row["servicePrincipalType"] for row in rows} == {"Application", "ManagedIdentity"}


def test_unlicensed_security_defaults_tenant_reads(sim: TenantSimulator) -> None:
    """Litware: no P1, security defaults on. Sign-ins and the report answer the licence 403;
    the per-user methods and the methods policy answer, so the fallback can assess everyone."""
    litware = next(t for t in sim.tenants if t.display_name == "Litware")
    user = litware.users[0]["id"]
    with client(sim, litware.tenant_id) as http:
        sign_ins = http.get(
            "/beta/auditLogs/signIns", params={"$filter": "signInEventTypes/any(t: t eq 'nonInteractiveUser')"}
        )
        report = http.get(REPORTS)
        defaults = http.get("/v1.0/policies/identitySecurityDefaultsEnforcementPolicy")
        skus = http.get("/v1.0/subscribedSkus", params={"$select": "skuPartNumber,servicePlans"})
        batch = http.post(
            "/v1.0/$batch",
            json={"requests": [{"id": "1", "method": "GET", "url": f"/users/{user}/authentication/methods"}]},
        )
    for response in (sign_ins, report):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
    assert defaults.json()["isEnabled"] is True
    plans = {p["servicePlanName"] for sku in skus.json()["value"] for p in sku["servicePlans"]}
    assert not plans & {"AAD_PREMIUM", "AAD_PREMIUM_P2"}
    assert batch.json()["responses"][0]["status"] == 200


def test_per_user_mfa_state_is_beta_only(sim: TenantSimulator) -> None:
    adele = next(u for u in sim.tenant(CONTOSO).users if u["displayName"] == "Adele Vance")
    with client(sim) as http:
        beta = http.get(f"/beta/users/{adele['id']}/authentication/requirements")
        v1 = http.get(f"/v1.0/users/{adele['id']}/authentication/requirements")
    assert beta.json()["perUserMfaState"] == "enforced"
    assert beta.json()["@odata.context"].endswith(f"/beta/$metadata#users('{adele['id']}')/authentication/requirements")
    assert v1.status_code == 400


# -- licences and permissions ------------------------------------------------------------


def test_tenant_without_p1_gets_licence_errors_but_security_defaults(sim: TenantSimulator) -> None:
    with client(sim, NORTHWIND) as http:
        report = http.get(REPORTS)
        policies = http.get("/v1.0/identity/conditionalAccess/policies")
        defaults = http.get("/v1.0/policies/identitySecurityDefaultsEnforcementPolicy")
        user = sim.tenant(NORTHWIND).users[0]["id"]
        methods = http.get(f"/v1.0/users/{user}/authentication/methods")
    for response in (report, policies):
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "Authentication_RequestFromNonPremiumTenantOrB2CTenant"
    assert defaults.status_code == 200 and defaults.json()["isEnabled"] is False
    assert methods.status_code == 200  # the fallback needs no licence


def test_missing_permission_answers_authorization_request_denied(sim: TenantSimulator) -> None:
    tenant = sim.tenant(FABRIKAM)
    tenant.granted_permissions = {"User.Read.All"}
    try:
        with client(sim, FABRIKAM) as http:
            assert http.get("/v1.0/users").status_code == 200
            denied = http.get("/v1.0/applications")
    finally:
        tenant.granted_permissions = None
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "Authorization_RequestDenied"


def test_registration_report_omits_disabled_users(sim: TenantSimulator) -> None:
    contoso = sim.tenant(CONTOSO)
    disabled = {u["id"] for u in contoso.users if not u["accountEnabled"]}
    assert disabled
    with client(sim) as http:
        rows = {row["id"] for row in http.get(REPORTS).json()["value"]}
    assert rows and not rows & disabled


def test_live_state_changes_show_in_the_next_request(sim: TenantSimulator) -> None:
    contoso = sim.tenant(CONTOSO)
    row = next(r for r in contoso.user_registration_details if not r["isMfaCapable"])
    with client(sim) as http:
        before = {r["id"] for r in http.get(REPORTS, params={"$filter": "isMfaCapable eq false"}).json()["value"]}
        row["isMfaCapable"] = True
        try:
            after = {r["id"] for r in http.get(REPORTS, params={"$filter": "isMfaCapable eq false"}).json()["value"]}
        finally:
            row["isMfaCapable"] = False
    assert before - after == {row["id"]}


# -- throttling --------------------------------------------------------------------------


def test_identity_reports_allow_five_per_ten_seconds_then_429_with_retry_after(sim: TenantSimulator) -> None:
    with client(sim) as http:
        statuses = [http.get(REPORTS).status_code for _ in range(6)]
        throttled = http.get(REPORTS)
        other_tenant = client(sim, FABRIKAM).get(REPORTS)  # the limit is per app per tenant
    assert statuses == [200] * 5 + [429]
    assert throttled.json()["error"]["code"] == "TooManyRequests"
    assert 1 <= int(throttled.headers["Retry-After"]) <= 10
    assert other_tenant.status_code == 200
    records = [r for r in sim.requests if r.path == REPORTS and r.tenant_id == CONTOSO][-7:]
    assert [r.api_class for r in records] == ["identity-reports"] * 7


def test_conditional_access_allows_one_per_second_and_429_has_no_retry_after(sim: TenantSimulator) -> None:
    with client(sim) as http:
        first = http.get("/v1.0/identity/conditionalAccess/policies")
        second = http.get("/v1.0/identity/conditionalAccess/policies")
        time.sleep(1.05)
        third = http.get("/v1.0/identity/conditionalAccess/policies")
    assert (first.status_code, second.status_code, third.status_code) == (200, 429, 200)
    assert "Retry-After" not in second.headers


def test_limits_can_be_overridden_or_switched_off() -> None:
    tight = [ThrottleLimit(ApiClass.DIRECTORY, Scope.APP_PER_TENANT, 2, 0.5, retry_after=True)]
    with TenantSimulator(bundled_scenarios(), limits=tight) as sim, client(sim) as http:
        assert [http.get("/v1.0/organization").status_code for _ in range(3)] == [200, 200, 429]
        time.sleep(0.55)
        assert http.get("/v1.0/organization").status_code == 200
    with TenantSimulator(bundled_scenarios(), enforce_limits=False) as sim, client(sim) as http:
        assert {http.get(REPORTS).status_code for _ in range(12)} == {200}


# -- $batch ------------------------------------------------------------------------------


def batch(http: httpx.Client, requests: list[dict[str, Any]], version: str = "v1.0") -> httpx.Response:
    return http.post(f"/{version}/$batch", json={"requests": requests})


def test_batch_counts_sub_requests_one_by_one_and_does_not_retry(sim: TenantSimulator) -> None:
    users = [u["id"] for u in sim.tenant(CONTOSO).users[:7]]
    with client(sim) as http:
        response = batch(
            http,
            [
                {"id": str(i), "method": "GET", "url": f"/users/{user}/authentication/methods"}
                for i, user in enumerate(users)
            ],
        )
    assert response.status_code == 200
    statuses = [item["status"] for item in response.json()["responses"]]
    assert statuses == [200] * 5 + [429] * 2
    throttled = response.json()["responses"][-1]
    assert int(throttled["headers"]["Retry-After"]) >= 1
    assert throttled["body"]["error"]["code"] == "TooManyRequests"
    inner = [r for r in sim.requests if r.in_batch][-7:]
    assert [r.status for r in inner] == statuses
    assert inner[0].path == f"/v1.0/users/{users[0]}/authentication/methods"


def test_batch_rejects_absolute_urls_too_many_requests_and_duplicate_ids(sim: TenantSimulator) -> None:
    with client(sim) as http:
        absolute = batch(
            http,
            [
                {"id": "1", "method": "GET", "url": f"{sim.base_url}/v1.0/organization"},
                {"id": "2", "method": "GET", "url": "organization"},
            ],
        )
        too_many = batch(http, [{"id": str(i), "method": "GET", "url": "/organization"} for i in range(21)])
        duplicate = batch(http, [{"id": "1", "method": "GET", "url": "/organization"}] * 2)
        malformed = http.post("/v1.0/$batch", content=b"{not json", headers={"Content-Type": "application/json"})
    results = {item["id"]: item for item in absolute.json()["responses"]}
    assert results["1"]["status"] == 400
    assert results["1"]["body"]["error"]["message"] == "Resource not found for the segment 'https:'."
    assert results["2"]["status"] == 200
    assert too_many.status_code == duplicate.status_code == malformed.status_code == 400


def test_beta_batch_serves_per_user_mfa_states(sim: TenantSimulator) -> None:
    contoso = sim.tenant(CONTOSO)
    with client(sim) as http:
        response = batch(
            http,
            [
                {"id": user["id"], "method": "GET", "url": f"/users/{user['id']}/authentication/requirements"}
                for user in contoso.users[:20]
            ],
            version="beta",
        )
    states = {item["id"]: item["body"]["perUserMfaState"] for item in response.json()["responses"]}
    assert states == {u["id"]: contoso.per_user_mfa_states.get(u["id"], "disabled") for u in contoso.users[:20]}


# -- faults and latency ------------------------------------------------------------------


def test_injected_status_retry_after_and_raw_body(sim: TenantSimulator) -> None:
    sim.inject_fault(r"/organization$", status=503, times=1, retry_after=7)
    sim.inject_fault(r"/subscribedSkus$", status=200, body='{"value": [{"id": ')
    with client(sim) as http:
        unavailable = http.get("/v1.0/organization")
        recovered = http.get("/v1.0/organization")
        truncated = http.get("/v1.0/subscribedSkus")
    assert (unavailable.status_code, unavailable.headers["Retry-After"]) == (503, "7")
    assert recovered.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        truncated.json()


def test_injected_reset_drops_the_connection(sim: TenantSimulator) -> None:
    sim.inject_fault(r"/v1.0/users$", body="reset")
    with client(sim) as http:
        with pytest.raises(httpx.TransportError):
            http.get("/v1.0/users")
        assert http.get("/v1.0/users").status_code == 200


def test_fault_in_a_batch_sub_request(sim: TenantSimulator) -> None:
    sim.inject_fault(r"^/v1.0/organization$", status=504)
    with client(sim) as http:
        response = batch(http, [{"id": "1", "method": "GET", "url": "/organization"}])
    assert response.json()["responses"][0]["status"] == 504


def test_latency_is_added_to_every_request() -> None:
    with TenantSimulator(bundled_scenarios(), latency_s=0.2) as sim:
        started = time.perf_counter()
        httpx.get(f"{sim.base_url}/v1.0/organization", verify=tls(sim))
        assert time.perf_counter() - started >= 0.2


# -- lifecycle ---------------------------------------------------------------------------


def test_stop_leaves_no_threads_even_with_open_keep_alive_connections() -> None:
    before = set(threading.enumerate())
    sim = TenantSimulator(bundled_scenarios()).start()
    http = client(sim)
    http.get("/v1.0/organization")  # keeps a connection (and its server thread) open
    started = time.perf_counter()
    sim.stop()
    http.close()
    assert time.perf_counter() - started < 3
    assert set(threading.enumerate()) - before == set()
    assert not sim.ca_bundle.exists()


def test_environment_names_the_partner_tenant_and_trusted_ca(sim: TenantSimulator) -> None:
    env = sim.environment()
    assert env["AZURE_TENANT_ID"] == CONTOSO
    assert env["GRAPH_ENDPOINT"] == env["AZURE_AUTHORITY_HOST"] == sim.base_url
    assert env["PARTNERGUARD_CA_BUNDLE"] == str(sim.ca_bundle) and sim.ca_bundle.read_text().startswith("-----BEGIN")
    assert (env["AZURE_CLIENT_ID"], env["AZURE_CLIENT_SECRET"]) == (sim.client_id, sim.client_secret)


def test_msgraph_core_transport_with_kiota_auth_reads_the_simulator(sim: TenantSimulator) -> None:
    """The production stack (azure-identity aio + kiota auth provider + msgraph-core middleware on
    httpx with http2=True) talks to the simulator as to Graph."""
    import asyncio

    from azure.identity.aio import ClientSecretCredential as AsyncClientSecretCredential
    from kiota_abstractions.method import Method
    from kiota_abstractions.request_information import RequestInformation
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )
    from msgraph_core import BaseGraphRequestAdapter, GraphClientFactory

    async def read_users() -> Any:
        credential = AsyncClientSecretCredential(
            CONTOSO,
            sim.client_id,
            sim.client_secret,
            authority=sim.base_url,
            disable_instance_discovery=True,
            connection_verify=str(sim.ca_bundle),
        )
        auth = AzureIdentityAuthenticationProvider(
            credential, scopes=[f"{sim.base_url}/.default"], allowed_hosts=["127.0.0.1"]
        )
        http = GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(verify=tls(sim), http2=True))
        adapter = BaseGraphRequestAdapter(auth, http_client=http)
        try:
            request = RequestInformation(Method.GET, f"{sim.base_url}/v1.0/users?$top=5")
            return await adapter.send_primitive_async(request, "bytes", {})
        finally:
            await http.aclose()
            await credential.close()

    body = json.loads(asyncio.run(read_users()))
    assert len(body["value"]) == 5 and body["@odata.nextLink"].startswith(f"{sim.base_url}/v1.0/users?")

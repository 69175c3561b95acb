"""Scenario files, synthetic tenants, the $filter parser and the throttle, without a server."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from testbed.simulator import ScenarioError, bundled_scenarios, generate_tenant, load_scenario
from testbed.simulator.odata_filter import FilterError, parse_filter
from testbed.simulator.query_options import QUERY_OPTIONS, QueryError, parse_query
from testbed.simulator.scenario import bundled_scenario_paths, resolve_relative_times
from testbed.simulator.throttling import GRAPH_LIMITS, ApiClass, Scope, Throttle, ThrottleLimit

CONTOSO = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
FABRIKAM = "c0ffee00-1b2c-4d3e-8f90-a1b2c3d4e5f6"
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"


def by_id() -> dict[str, object]:
    return {s.tenant_id: s for s in bundled_scenarios()}


# -- bundled scenarios -------------------------------------------------------------------


def test_bundled_scenarios_partner_first_with_the_fixed_ids() -> None:
    scenarios = bundled_scenarios()
    assert len(scenarios) >= 3
    assert scenarios[0].tenant_id == CONTOSO and scenarios[0].role == "partner"
    assert FABRIKAM in {s.tenant_id for s in scenarios}
    assert any(not s.has_entra_premium and not s.security_defaults["isEnabled"] for s in scenarios)


def test_contoso_is_full_of_the_catalogued_problems() -> None:
    contoso = next(s for s in bundled_scenarios() if s.tenant_id == CONTOSO)
    users = {u["id"]: u for u in contoso.users}
    assert 20 <= len(users) <= 30 and contoso.has_entra_premium and not contoso.security_defaults["isEnabled"]
    incapable = contoso.mfa_incapable_user_ids()
    admins = {a["principalId"] for a in contoso.role_assignments if a["roleDefinitionId"] == GLOBAL_ADMIN}
    assert incapable & admins, "an admin is not MFA capable"
    assert any(users[i]["userPrincipalName"].startswith("svc-") for i in incapable), "a service account too"
    assert any(not u["accountEnabled"] for u in users.values())
    assert any(u["userType"] == "Guest" for u in users.values())
    assert any("<script>" in u["displayName"] for u in users.values())
    assert len(set(contoso.per_user_mfa_states.values())) == 3
    policies = contoso.conditional_access_policies
    conditions = [p["conditions"] for p in policies]
    assert any(p["state"] == "enabledForReportingButNotEnforced" for p in policies)
    assert any(c["users"]["excludeGroups"] and c["users"]["excludeUsers"] for c in conditions)
    assert any(c["locations"] for c in conditions)
    assert any(
        set(p["grantControls"]["builtInControls"]) == {"mfa", "compliantDevice"}
        and p["grantControls"]["operator"] == "OR"
        for p in policies
    )
    assert any(c["clientAppTypes"] == ["browser", "mobileAppsAndDesktopClients"] for c in conditions)
    assert any(c["signInRiskLevels"] for c in conditions)
    assert any(
        "block" in p["grantControls"]["builtInControls"] and p["conditions"]["users"]["excludeUsers"] for p in policies
    )
    assert any("<" in p["displayName"] for p in policies)


def test_fabrikam_is_clean() -> None:
    fabrikam = next(s for s in bundled_scenarios() if s.tenant_id == FABRIKAM)
    assert fabrikam.mfa_incapable_user_ids(include_guests=True) == set()
    enabled = [p for p in fabrikam.conditional_access_policies if p["state"] == "enabled"]
    mfa = [p for p in enabled if p["grantControls"]["builtInControls"] == ["mfa"]]
    assert len(mfa) == 1
    users = mfa[0]["conditions"]["users"]
    assert users["includeUsers"] == ["All"] and not any(users[k] for k in users if k.startswith("exclude"))
    assert mfa[0]["conditions"]["clientAppTypes"] == ["all"]
    assert mfa[0]["conditions"]["applications"]["includeApplications"] == ["All"]


def test_relative_times_resolve_at_load(tmp_path: Path) -> None:
    now = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    resolved = resolve_relative_times({"a": ["{{now-26h}}", "{{now+2d}}", "{{now}}", "{{later}}"]}, now)
    assert resolved == {"a": ["2025-02-28T10:00:00Z", "2025-03-03T12:00:00Z", "2025-03-01T12:00:00Z", "{{later}}"]}
    contoso = load_scenario(next(p for p in bundled_scenario_paths() if p.name == "contoso-partner.json"))
    newest = max(datetime.fromisoformat(s["createdDateTime"].replace("Z", "+00:00")) for s in contoso.sign_ins)
    assert datetime.now(UTC) - newest < timedelta(hours=3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tenantId": "contoso"}, "tenantId must be a GUID"),
        ({"role": "reseller"}, "role must be"),
        ({"usres": []}, "unknown keys"),
        ({"users": {}}, "users must be a JSON array"),
        ({"perUserMfaStates": {"nobody": "enforced"}}, "unknown user"),
        (
            {
                "licences": ["AAD_PREMIUM"],
                "subscribedSkus": [
                    {
                        "capabilityStatus": "Enabled",
                        "servicePlans": [{"servicePlanName": "EXCHANGE_S_STANDARD", "provisioningStatus": "Success"}],
                    }
                ],
            },
            "licences and subscribedSkus disagree",
        ),
    ],
)
def test_malformed_scenarios_fail_with_the_file_and_problem(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    data = {"tenantId": FABRIKAM, "displayName": "X", "role": "customer", **change}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ScenarioError, match=message) as error:
        load_scenario(path)
    assert str(path) in str(error.value)


# -- synthetic tenants -------------------------------------------------------------------


def test_generate_ten_thousand_users_with_exact_populations() -> None:
    tenant = generate_tenant(
        "a0000000-0000-4000-8000-000000010000",
        users=10_000,
        seed=1,
        incapable=137,
        unregistered=11,
        disabled=90,
        guests=200,
        admins=5,
    )
    assert len(tenant.users) == 10_000
    assert len(tenant.mfa_incapable_user_ids()) == 137 + 11
    assert len(tenant.mfa_incapable_user_ids(include_guests=True)) == 137 + 11 + 200
    assert sum(1 for u in tenant.users if not u["accountEnabled"]) == 90
    assert len(tenant.user_registration_details) == 10_000 - 90 - 11
    assert len(tenant.role_assignments) == 5
    assert len({u["id"] for u in tenant.users}) == 10_000


def test_generate_is_deterministic_per_seed() -> None:
    first = generate_tenant("a0000000-0000-4000-8000-000000000001", users=300, seed=7)
    again = generate_tenant("a0000000-0000-4000-8000-000000000001", users=300, seed=7)
    other = generate_tenant("a0000000-0000-4000-8000-000000000001", users=300, seed=8)
    assert first.users == again.users and first.mfa_incapable_user_ids() == again.mfa_incapable_user_ids()
    assert first.mfa_incapable_user_ids() != other.mfa_incapable_user_ids()


def test_generate_rejects_impossible_populations() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        generate_tenant("a0000000-0000-4000-8000-000000000002", users=10, incapable=8, guests=5)


# -- $filter parser and query table ------------------------------------------------------


def test_filter_parser_evaluates_graph_forms() -> None:
    row = {
        "accountEnabled": True,
        "userType": "Member",
        "userPrincipalName": "svc-backup@contoso.com",
        "createdDateTime": "2025-01-02T03:04:05Z",
        "status": {"errorCode": 0},
        "signInEventTypes": ["nonInteractiveUser"],
        "displayName": "O'Brien",
    }
    assert parse_filter("accountEnabled eq true and userType eq 'member'")(row)
    assert parse_filter("startswith(userPrincipalName,'SVC-')")(row)
    assert parse_filter("createdDateTime ge 2025-01-01T00:00:00Z and createdDateTime le 2025-01-03")(row)
    assert parse_filter("status/errorCode eq 0 or accountEnabled eq false")(row)
    assert parse_filter("signInEventTypes/any(t: t eq 'nonInteractiveUser')")(row)
    assert not parse_filter("not (accountEnabled eq true)")(row)
    assert parse_filter("displayName eq 'o''brien'")(row)
    assert [c.path for c in parse_filter("a eq 1 and (b eq 2 or startswith(c,'x'))").clauses] == ["a", "b", "c"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "accountEnabled",
        "accountEnabled eq",
        "a eq 1 and",
        "(a eq 1",
        "a like 'x'",
        "startswith(a)",
        "x/any(t: u eq 1)",
    ],
)
def test_filter_parser_rejects_malformed_filters(text: str) -> None:
    with pytest.raises(FilterError):
        parse_filter(text)


@given(st.text(max_size=40))
def test_filter_parser_never_crashes_on_arbitrary_text(text: str) -> None:
    with contextlib.suppress(FilterError):
        parse_filter(text)


def test_every_query_row_cites_microsoft_docs_and_pages_sensibly() -> None:
    for row in QUERY_OPTIONS.values():
        assert row.doc.startswith("https://learn.microsoft.com/graph/api/")
        assert all(option.startswith("$") for option in row.options)
        if row.max_top is not None:
            assert row.default_page_size is not None and row.default_page_size <= row.max_top
    assert QUERY_OPTIONS["userRegistrationDetails"].options == {"$filter", "$orderby"}
    assert (QUERY_OPTIONS["signIns"].max_top, QUERY_OPTIONS["delegatedAdminRelationships"].max_top) == (1000, 300)


def test_query_option_names_are_case_insensitive_and_not_repeatable() -> None:
    parsed = parse_query("users", [("$SELECT", "id"), ("$Top", "5")], {}, collection=True)
    assert (parsed.select, parsed.top) == (("id",), 5)
    with pytest.raises(QueryError):
        parse_query("users", [("$top", "5"), ("$top", "6")], {}, collection=True)
    with pytest.raises(QueryError) as error:
        parse_query("users", [("$expand", "manager")], {}, collection=True)
    assert error.value.status == 501  # documented by Graph, not implemented by the simulator: say so


# -- throttle ------------------------------------------------------------------------------


def test_throttle_table_cites_the_throttling_page() -> None:
    reports = [lim for lim in GRAPH_LIMITS if lim.api_class is ApiClass.IDENTITY_REPORTS]
    assert {(lim.scope, lim.requests, lim.window_s) for lim in reports} == {
        (Scope.APP_PER_TENANT, 5, 10.0),
        (Scope.APP_ACROSS_TENANTS, 122, 10.0),
    }
    ca = next(lim for lim in GRAPH_LIMITS if lim.api_class is ApiClass.CONDITIONAL_ACCESS)
    assert (ca.scope, ca.requests, ca.window_s, ca.retry_after) == (Scope.TENANT_ALL_APPS, 1, 1.0, False)
    assert all(lim.doc == "https://learn.microsoft.com/graph/throttling-limits" for lim in GRAPH_LIMITS)


def test_throttle_windows_slide_and_scopes_separate() -> None:
    now = [100.0]
    throttle = Throttle(GRAPH_LIMITS, clock=lambda: now[0])
    reports = ApiClass.IDENTITY_REPORTS
    assert all(throttle.admit(reports, "t1", "app") is None for _ in range(5))
    rejection = throttle.admit(reports, "t1", "app")
    assert rejection is not None and rejection.retry_after_s == 10
    assert throttle.admit(reports, "t2", "app") is None  # another tenant has its own window
    now[0] += 6
    assert throttle.admit(reports, "t1", "app") is not None
    assert throttle.admit(reports, "t1", "app").retry_after_s == 4  # type: ignore[union-attr]
    now[0] += 4.01
    assert throttle.admit(reports, "t1", "app") is None


def test_throttle_across_tenants_and_all_apps() -> None:
    now = [0.0]
    limits = [
        ThrottleLimit(ApiClass.IDENTITY_REPORTS, Scope.APP_ACROSS_TENANTS, 3, 10.0, True),
        ThrottleLimit(ApiClass.CONDITIONAL_ACCESS, Scope.TENANT_ALL_APPS, 1, 1.0, False),
    ]
    throttle = Throttle(limits, clock=lambda: now[0])
    assert [throttle.admit(ApiClass.IDENTITY_REPORTS, f"t{i}", "app") is None for i in range(4)] == [
        True,
        True,
        True,
        False,
    ]
    assert throttle.admit(ApiClass.IDENTITY_REPORTS, "t9", "other-app") is None
    assert throttle.admit(ApiClass.CONDITIONAL_ACCESS, "t1", "a") is None
    assert throttle.admit(ApiClass.CONDITIONAL_ACCESS, "t1", "b") is not None  # all apps together

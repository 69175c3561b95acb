"""Conditional Access from beta, over the network: the SPEC §1 "Edge cases, decided" end to end.

Each tenant below is served by the simulator over HTTPS and read by the real collector
(`collect_snapshot`, msgraph transport); the two Conditional Access checks then judge the snapshot,
and their verdicts are compared with the simulator's ground truth
(`testbed.simulator.ground_truth.expected_conditional_access_outcome`), which shares no code with
`checks/`. The beta-to-v1.0 fallback is driven by a fault the simulator injects on beta only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from checks import legacy_auth_blocked, mfa_enforcement
from partnerguard.collect import collect_snapshot
from partnerguard.graph.client import GraphClient
from partnerguard.graph.requests import CONDITIONAL_ACCESS_POLICIES, CONDITIONAL_ACCESS_POLICIES_BETA
from partnerguard.model import CheckOutcome, Status, TenantSnapshot, Unavailable
from partnerguard.pipeline import check_context
from testbed.simulator import TenantScenario, TenantSimulator, generate_tenant
from testbed.simulator.generate import make_mfa_policy
from testbed.simulator.ground_truth import LEGACY_AUTH_BLOCKED, MFA_ENFORCEMENT
from tests.graph_sim import run, secret_settings

pytestmark = pytest.mark.simulator

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

DEVICES = "1a000000-0000-4000-8000-000000000001"
FLOWS = "1a000000-0000-4000-8000-000000000002"
BUILT_IN_STRENGTH = "1a000000-0000-4000-8000-000000000003"
WEAK_STRENGTH = "1a000000-0000-4000-8000-000000000004"
UNREADABLE_STRENGTH = "1a000000-0000-4000-8000-000000000005"
MFA_OR_DUO = "1a000000-0000-4000-8000-000000000006"
NO_P1_ENFORCED = "1a000000-0000-4000-8000-000000000007"
NO_P1_PARTLY = "1a000000-0000-4000-8000-000000000008"
NON_MFA_CANDIDATES = "1a000000-0000-4000-8000-000000000009"

POLICY = "2b000000-0000-4000-8000-000000000001"
BLOCK = "2b000000-0000-4000-8000-000000000002"
OTHER = "2b000000-0000-4000-8000-000000000003"
MFA_BUILT_IN_STRENGTH_ID = "00000000-0000-0000-0000-000000000002"
WEAK_STRENGTH_ID = "3c000000-0000-4000-8000-000000000001"

BETA_POLICIES = r"^/beta/identity/conditionalAccess/policies"


def tenant(tenant_id: str, *policies: dict[str, Any], **options: Any) -> TenantScenario:
    scenario = generate_tenant(tenant_id, 8, seed=11, mfa_policy=False, admins=1, **options)
    scenario.conditional_access_policies = list(policies)
    return scenario


def mfa_policy(policy_id: str = POLICY, **overrides: Any) -> dict[str, Any]:
    return make_mfa_policy(policy_id, "Require MFA for all users", **overrides)


def with_conditions(**changes: Any) -> dict[str, Any]:
    policy = mfa_policy()
    return {**policy, "conditions": {**policy["conditions"], **changes}}


def with_grant(policy_id: str = POLICY, **changes: Any) -> dict[str, Any]:
    policy = mfa_policy(policy_id)
    return {**policy, "grantControls": {**policy["grantControls"], **changes}}


def legacy_block() -> dict[str, Any]:
    policy = mfa_policy(BLOCK)
    return {
        **policy,
        "displayName": "Block legacy authentication",
        "conditions": {**policy["conditions"], "clientAppTypes": ["exchangeActiveSync", "other"]},
        "grantControls": {**policy["grantControls"], "builtInControls": ["block"]},
    }


def every_user_enforced(scenario: TenantScenario) -> TenantScenario:
    scenario.per_user_mfa_states = {user["id"]: "enforced" for user in scenario.users}
    return scenario


def build_tenants() -> list[TenantScenario]:
    weak = tenant(WEAK_STRENGTH, with_grant(builtInControls=[], authenticationStrength={"id": WEAK_STRENGTH_ID}))
    weak.authentication_strength_policies = [
        {
            "id": WEAK_STRENGTH_ID,
            "displayName": "Single-factor federation",
            "policyType": "custom",
            "requirementsSatisfied": "none",
            "allowedCombinations": ["federatedSingleFactor"],
        }
    ]
    partly = tenant(NO_P1_PARTLY, licences=())
    partly.per_user_mfa_states = {user["id"]: "enforced" for user in partly.users[1:]}
    partly.per_user_mfa_states[partly.users[0]["id"]] = "enabled"
    return [
        # Beta-only device conditions (conditionalAccessDevices?view=graph-rest-beta).
        tenant(
            DEVICES,
            with_conditions(devices={"includeDevices": ["All"], "excludeDevices": ["Compliant"], "deviceFilter": None}),
            legacy_block(),
        ),
        tenant(FLOWS, with_conditions(authenticationFlows={"transferMethods": "deviceCodeFlow"})),
        # A grant referencing a strength by id only: Graph's reference, filled in by the collector.
        tenant(
            BUILT_IN_STRENGTH, with_grant(builtInControls=[], authenticationStrength={"id": MFA_BUILT_IN_STRENGTH_ID})
        ),
        weak,
        tenant(UNREADABLE_STRENGTH, with_grant(builtInControls=[], authenticationStrength={"id": WEAK_STRENGTH_ID})),
        tenant(MFA_OR_DUO, with_grant(operator="OR", customAuthenticationFactors=["DuoSecurity"])),
        every_user_enforced(tenant(NO_P1_ENFORCED, licences=())),
        partly,
        # Candidates without MFA (SPEC §1): a compliant-device grant for All users, report-only.
        tenant(
            NON_MFA_CANDIDATES,
            {**with_grant(OTHER, builtInControls=["compliantDevice"]), "state": "enabledForReportingButNotEnforced"},
        ),
    ]


@pytest.fixture(scope="module")
def sim() -> Iterator[TenantSimulator]:
    with TenantSimulator(build_tenants()) as simulator:
        yield simulator


@pytest.fixture(autouse=True)
def clean_faults(sim: TenantSimulator) -> Iterator[None]:
    sim.faults.clear()
    sim.clear_requests()
    yield
    sim.faults.clear()


def collect(sim: TenantSimulator, tenant_id: str) -> TenantSnapshot:
    settings = secret_settings(sim)

    async def go() -> TenantSnapshot:
        async with GraphClient(settings, tenant_id, retry_delay_seconds=0.01) as client:
            return await collect_snapshot(client, settings, tenant_id, NOW, fallback_budget_s=0.0)

    return run(go())


def judged(sim: TenantSimulator, tenant_id: str) -> dict[str, CheckOutcome]:
    snapshot = collect(sim, tenant_id)
    context = check_context(secret_settings(sim), NOW)
    return {
        MFA_ENFORCEMENT: mfa_enforcement.execute(snapshot, context),
        LEGACY_AUTH_BLOCKED: legacy_auth_blocked.execute(snapshot, context),
    }


def verdict(outcome: CheckOutcome) -> tuple[str, set[str]]:
    return outcome.status.value, {finding.subject_id for finding in outcome.findings}


def assert_ground_truth(sim: TenantSimulator, tenant_id: str) -> dict[str, CheckOutcome]:
    outcomes = judged(sim, tenant_id)
    for check_id, outcome in outcomes.items():
        assert verdict(outcome) == sim.tenant(tenant_id).expected_conditional_access_outcome(check_id), check_id
    return outcomes


def policies_read(sim: TenantSimulator) -> list[str]:
    return [
        f"{record.path} {record.status}"
        for record in sim.requests
        if record.path.endswith("/identity/conditionalAccess/policies")
    ]


# -- beta, and what v1.0 cannot show ----------------------------------------------------------


def test_the_simulator_serves_device_conditions_on_beta_only(sim: TenantSimulator) -> None:
    settings = secret_settings(sim)

    async def both() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with GraphClient(settings, DEVICES, retry_delay_seconds=0.01) as client:
            beta = await client.collect(CONDITIONAL_ACCESS_POLICIES_BETA.request())
            v1 = await client.collect(CONDITIONAL_ACCESS_POLICIES.request())
            return beta, v1

    beta, v1 = run(both())
    beta_devices = next(p for p in beta if p["id"] == POLICY)["conditions"]["devices"]
    v1_conditions = next(p for p in v1 if p["id"] == POLICY)["conditions"]
    assert beta_devices["excludeDevices"] == ["Compliant"]
    assert "deviceStates" in next(p for p in beta if p["id"] == POLICY)["conditions"]
    assert v1_conditions["devices"] == {"deviceFilter": None}
    assert "deviceStates" not in v1_conditions


def test_policies_are_read_from_beta_and_a_device_condition_is_device_filter(sim: TenantSimulator) -> None:
    outcomes = assert_ground_truth(sim, DEVICES)
    enforcement = outcomes[MFA_ENFORCEMENT]
    assert enforcement.status is Status.FAIL
    assert f"{POLICY}|device-filter" in verdict(enforcement)[1]
    for outcome in outcomes.values():
        assert outcome.evidence["conditionalAccessApiVersion"] == "beta"
    assert policies_read(sim) == ["/beta/identity/conditionalAccess/policies 200"]


def test_when_beta_fails_v1_is_read_and_the_evidence_says_so(sim: TenantSimulator) -> None:
    # Beta answers 500 to every attempt (the client's retries included); v1.0 is untouched.
    sim.inject_fault(BETA_POLICIES, status=500, times=50)
    outcomes = judged(sim, DEVICES)
    reads = policies_read(sim)
    assert reads[-1] == "/v1.0/identity/conditionalAccess/policies 200"
    assert set(reads[:-1]) == {"/beta/identity/conditionalAccess/policies 500"}
    for outcome in outcomes.values():
        assert outcome.evidence["conditionalAccessApiVersion"] == "v1.0"
    # v1.0 cannot show excludeDevices: the policy looks complete there. This is why beta is read
    # first, and why the evidence names the version.
    assert outcomes[MFA_ENFORCEMENT].status is Status.PASS
    assert outcomes[LEGACY_AUTH_BLOCKED].status is Status.PASS


def test_a_refusal_v1_would_repeat_is_not_retried_on_v1(sim: TenantSimulator) -> None:
    sim.inject_fault(BETA_POLICIES, status=403, times=1, body='{"error": {"code": "Authorization_RequestDenied"}}')
    snapshot = collect(sim, DEVICES)
    policies = snapshot.conditional_access_policies
    assert isinstance(policies, Unavailable)
    assert policies.reason_code == "permission:Policy.Read.All"
    assert snapshot.conditional_access_api_version is None
    assert policies_read(sim) == ["/beta/identity/conditionalAccess/policies 403"]


# -- the other decisions, each against the ground truth ----------------------------------------


def test_authentication_flows_are_the_auth_flows_gap(sim: TenantSimulator) -> None:
    outcomes = assert_ground_truth(sim, FLOWS)
    assert f"{POLICY}|auth-flows" in verdict(outcomes[MFA_ENFORCEMENT])[1]
    assert f"{POLICY}|client-app-subset" not in verdict(outcomes[MFA_ENFORCEMENT])[1]


def test_a_referenced_built_in_strength_is_read_and_counts_as_mfa(sim: TenantSimulator) -> None:
    outcomes = assert_ground_truth(sim, BUILT_IN_STRENGTH)
    assert outcomes[MFA_ENFORCEMENT].status is Status.PASS
    strength_reads = [r.path for r in sim.requests if "/policies/authenticationStrengthPolicies/" in r.path]
    assert strength_reads == [f"/v1.0/policies/authenticationStrengthPolicies/{MFA_BUILT_IN_STRENGTH_ID}"]


def test_a_referenced_strength_without_mfa_is_no_mfa_control(sim: TenantSimulator) -> None:
    outcomes = assert_ground_truth(sim, WEAK_STRENGTH)
    assert outcomes[MFA_ENFORCEMENT].status is Status.FAIL
    assert f"{POLICY}|no-mfa-control" in verdict(outcomes[MFA_ENFORCEMENT])[1]


def test_a_strength_that_cannot_be_read_is_not_assessed_never_mfa(sim: TenantSimulator) -> None:
    # The tenant has no such strength: Graph answers 404. Unknown is neither MFA nor a finding.
    outcome = judged(sim, UNREADABLE_STRENGTH)[MFA_ENFORCEMENT]
    assert outcome.status is Status.NOT_ASSESSED
    assert "requirementsSatisfied" in (outcome.reason or "")
    assert "Request_ResourceNotFound" in (outcome.reason or "")
    assert outcome.evidence["unreadAuthenticationStrengthIds"] == [WEAK_STRENGTH_ID]


def test_mfa_or_a_custom_control_is_not_assessed(sim: TenantSimulator) -> None:
    outcome = assert_ground_truth(sim, MFA_OR_DUO)[MFA_ENFORCEMENT]
    assert outcome.status is Status.NOT_ASSESSED
    assert "verify the amr claim" in (outcome.reason or "")


def test_without_p1_per_user_enforced_for_everyone_passes(sim: TenantSimulator) -> None:
    outcomes = assert_ground_truth(sim, NO_P1_ENFORCED)
    assert outcomes[MFA_ENFORCEMENT].status is Status.PASS
    assert outcomes[LEGACY_AUTH_BLOCKED].status is Status.FAIL


def test_without_p1_one_user_not_enforced_fails_with_tenant_and_user_findings(sim: TenantSimulator) -> None:
    outcome = assert_ground_truth(sim, NO_P1_PARTLY)[MFA_ENFORCEMENT]
    first_user = sim.tenant(NO_P1_PARTLY).users[0]["id"]
    assert verdict(outcome) == ("fail", {NO_P1_PARTLY, first_user})


def test_a_report_only_grant_without_mfa_is_a_candidate(sim: TenantSimulator) -> None:
    outcome = assert_ground_truth(sim, NON_MFA_CANDIDATES)[MFA_ENFORCEMENT]
    subjects = verdict(outcome)[1]
    assert {f"{OTHER}|report-only", f"{OTHER}|no-mfa-control"} <= subjects
    assert NON_MFA_CANDIDATES not in subjects  # a candidate exists: no tenant-level finding

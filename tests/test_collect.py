"""collect_snapshot against the tenant simulator: every field data or a reason, never a guess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import partnerguard.collect as collect_module
from checks import mfa_enforcement, mfa_registration
from partnerguard.collect import collect_snapshot
from partnerguard.graph.client import GraphClient
from partnerguard.graph.errors import ConsentMissing
from partnerguard.model import NOT_COLLECTED, Status, TenantSnapshot, Unavailable
from partnerguard.pipeline import check_context
from testbed.simulator import TenantSimulator, generate_tenant
from tests.graph_sim import (
    COVERED,
    DEFAULTS_ON,
    NO_AUDIT_LOG,
    NOT_CONSENTED,
    PARTNER,
    UNLICENSED,
    run,
    secret_settings,
)

pytestmark = pytest.mark.simulator

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sim() -> Iterator[TenantSimulator]:
    no_audit = generate_tenant(NO_AUDIT_LOG, 40, seed=3, mfa_policy=True)
    no_audit.granted_permissions = {"User.Read.All", "Organization.Read.All", "Policy.Read.All"}
    not_consented = generate_tenant(NOT_CONSENTED, 10, seed=4)
    not_consented.consented = False
    partner = generate_tenant(
        PARTNER, 300, seed=1, role="partner", display_name="Contoso\x07 Partner", mfa_policy=False
    )
    enabled = [user["id"] for user in partner.users if user.get("accountEnabled", True)]
    partner.per_user_mfa_states = {enabled[0]: "enforced", enabled[1]: "enabled"}
    tenants = [
        partner,
        generate_tenant(COVERED, 120, seed=5, mfa_policy=True),
        generate_tenant(DEFAULTS_ON, 80, seed=6, mfa_policy=False, security_defaults=True, licences=()),
        generate_tenant(UNLICENSED, 60, seed=2, licences=(), mfa_policy=False),
        no_audit,
        not_consented,
    ]
    with TenantSimulator(tenants, enforce_limits=True) as simulator:
        yield simulator


@pytest.fixture(autouse=True)
def clean_faults(sim: TenantSimulator) -> Iterator[None]:
    sim.faults.clear()
    yield
    sim.faults.clear()


def collect(sim: TenantSimulator, tenant_id: str) -> TenantSnapshot:
    settings = secret_settings(sim)

    async def go() -> TenantSnapshot:
        async with GraphClient(settings, tenant_id, retry_delay_seconds=0.05) as client:
            # No time for the mfa.registration fallback: under Graph's real pacing (these tests
            # enforce it) it reads 5 users per 10 s. tests/test_registration_fallback.py covers it.
            return await collect_snapshot(client, settings, tenant_id, NOW, fallback_budget_s=0.0)

    return run(go())


def listed(value: object) -> list[object]:
    assert not isinstance(value, Unavailable), value
    assert isinstance(value, list | tuple)
    return list(value)


def requirement_reads(sim: TenantSimulator) -> int:
    return sum(1 for record in sim.requests if record.path.endswith("/authentication/requirements"))


def test_partner_tenant_is_collected_with_per_user_mfa(sim: TenantSimulator) -> None:
    tenant = sim.tenant(PARTNER)
    snapshot = collect(sim, PARTNER)
    assert snapshot.tenant_id == PARTNER
    assert snapshot.role == "partner"
    assert snapshot.tenant_name == "Contoso  Partner"  # control character neutralised
    assert snapshot.collected_at == NOW
    assert snapshot.cloud == "public"
    users = listed(snapshot.users)
    assert len(users) == 300
    assert {user.id for user in snapshot.users} == {user["id"] for user in tenant.users}  # type: ignore[union-attr]
    assert len(listed(snapshot.registration_details)) == len(tenant.user_registration_details)
    assert listed(snapshot.conditional_access_policies) == []
    assert snapshot.security_defaults_enabled is False
    # No policy and no security defaults: coverage hangs on per-user MFA, read for every enabled user.
    states = snapshot.per_user_mfa_states
    assert isinstance(states, dict)
    enabled = [user["id"] for user in tenant.users if user.get("accountEnabled", True)]
    assert set(states) == set(enabled)
    assert states[enabled[0]] == "enforced"
    assert states[enabled[1]] == "enabled"
    assert sum(1 for state in states.values() if state == "disabled") == len(enabled) - 2


def test_per_user_mfa_is_not_read_when_a_policy_covers_everyone(sim: TenantSimulator) -> None:
    sim.clear_requests()
    snapshot = collect(sim, COVERED)
    assert snapshot.role == "customer"
    assert len(listed(snapshot.conditional_access_policies)) == 1
    assert snapshot.per_user_mfa_states is None
    assert requirement_reads(sim) == 0


def test_per_user_mfa_is_not_read_under_security_defaults(sim: TenantSimulator) -> None:
    sim.clear_requests()
    snapshot = collect(sim, DEFAULTS_ON)
    assert snapshot.security_defaults_enabled is True
    assert snapshot.per_user_mfa_states is None
    assert requirement_reads(sim) == 0


# The expensive, paced P1-only APIs, skipped when subscribedSkus shows no P1.
PACED_P1_PATHS = (
    "/v1.0/reports/authenticationMethods/userRegistrationDetails",
    "/beta/auditLogs/signIns",
)
# Beta first (SPEC §1); without P1 its licence 403 stands: v1.0 would answer the same.
CONDITIONAL_ACCESS_PATH = "/beta/identity/conditionalAccess/policies"


def test_without_p1_the_premium_reads_are_licence_unavailable(sim: TenantSimulator) -> None:
    sim.clear_requests()
    snapshot = collect(sim, UNLICENSED)
    # subscribedSkus shows no P1: the paced P1-only APIs are not even called...
    assert not [r for r in sim.requests if r.tenant_id == UNLICENSED and r.path in PACED_P1_PATHS]
    # ...but the Conditional Access policies are (one request), and Graph's licence 403 decides.
    policy_reads = [r for r in sim.requests if r.tenant_id == UNLICENSED and r.path == CONDITIONAL_ACCESS_PATH]
    assert [r.status for r in policy_reads] == [403]
    assert isinstance(snapshot.licences, frozenset) and "AAD_PREMIUM" not in snapshot.licences
    # The fallback started (policy and admins read) but had no time for any user.
    assert isinstance(snapshot.enabled_auth_method_ids, frozenset)
    assert snapshot.unassessed_user_ids == {
        u["id"] for u in sim.tenant(UNLICENSED).users if u.get("accountEnabled", True) and u["userType"] == "Member"
    }
    for field in (snapshot.registration_details, snapshot.conditional_access_policies):
        assert isinstance(field, Unavailable)
        assert field.reason_code == "licence:AAD_PREMIUM"
    assert len(listed(snapshot.users)) == 60
    assert snapshot.security_defaults_enabled is False
    # No Conditional Access without P1: coverage falls to per-user MFA.
    assert isinstance(snapshot.per_user_mfa_states, dict)
    assert len(snapshot.per_user_mfa_states) == sum(
        1 for u in sim.tenant(UNLICENSED).users if u.get("accountEnabled", True)
    )


def test_a_missing_permission_spoils_only_its_own_field(sim: TenantSimulator) -> None:
    snapshot = collect(sim, NO_AUDIT_LOG)
    assert isinstance(snapshot.registration_details, Unavailable)
    assert snapshot.registration_details.reason_code == "permission:AuditLog.Read.All"
    assert len(listed(snapshot.users)) == 40
    assert len(listed(snapshot.conditional_access_policies)) == 1


def test_a_tenant_without_consent_raises_consent_missing(sim: TenantSimulator) -> None:
    sim.clear_requests()
    with pytest.raises(ConsentMissing):
        collect(sim, NOT_CONSENTED)
    assert not [r for r in sim.requests if r.path.startswith("/v1.0/")]  # failed once, at sign-in


def test_the_name_falls_back_to_the_tenant_id(sim: TenantSimulator) -> None:
    sim.inject_fault(r"^/v1\.0/organization$", status=500, times=1)
    snapshot = collect(sim, COVERED)
    assert snapshot.tenant_name == COVERED
    assert len(listed(snapshot.users)) == 120


def test_a_failed_read_does_not_sink_the_others(sim: TenantSimulator) -> None:
    sim.inject_fault(r"^/v1\.0/users$", status=500, times=1)
    sim.inject_fault(r"^/v1\.0/policies/identitySecurityDefaultsEnforcementPolicy$", status=400, times=1)
    snapshot = collect(sim, COVERED)
    assert isinstance(snapshot.users, Unavailable)
    assert snapshot.users.reason_code.startswith("error:")
    assert isinstance(snapshot.security_defaults_enabled, Unavailable)
    assert len(listed(snapshot.registration_details)) == len(sim.tenant(COVERED).user_registration_details)
    assert len(listed(snapshot.conditional_access_policies)) == 1


def test_a_per_user_read_failing_for_good_leaves_only_that_user_unread(sim: TenantSimulator) -> None:
    sim.inject_fault(r"/authentication/requirements$", status=500, times=1)
    snapshot = collect(sim, UNLICENSED)
    states = snapshot.per_user_mfa_states
    assert isinstance(states, dict)
    enabled = {u["id"] for u in sim.tenant(UNLICENSED).users if u.get("accountEnabled", True)}
    assert set(states) < enabled
    assert len(enabled - set(states)) == 1
    assert len(listed(snapshot.users)) == 60
    # The check still lists every user it knows is uncovered, and counts the one it could not read:
    # a user known to be uncovered makes it fail.
    outcome = mfa_enforcement.execute(snapshot, check_context(secret_settings(sim), NOW))
    assert outcome.status is Status.FAIL
    # Without P1 no policy was read, so the evidence names no API version.
    assert outcome.evidence == {"unassessed_users": 1}
    uncovered = {user_id for user_id, state in states.items() if state != "enforced"}
    assert uncovered and uncovered <= {finding.subject_id for finding in outcome.findings}


def test_an_unexpected_fallback_failure_is_unavailable_not_a_crashed_scan(
    sim: TenantSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken_fallback(*args: object, **kwargs: object) -> object:
        raise RuntimeError("a bug in the fallback")

    monkeypatch.setattr(collect_module, "run_fallback", broken_fallback)
    snapshot = collect(sim, UNLICENSED)
    for field in (snapshot.user_auth_methods, snapshot.enabled_auth_method_ids):
        assert isinstance(field, Unavailable)
        assert field.reason_code == "error:internal"
    assert len(listed(snapshot.users)) == 60  # everything else was still collected
    outcome = mfa_registration.execute(snapshot, check_context(secret_settings(sim), NOW))
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.reason_code == "licence:AAD_PREMIUM"
    assert "fallback failed too" in (outcome.reason or "")


def test_per_user_states_are_explicitly_not_needed_not_left_uncollected(sim: TenantSimulator) -> None:
    # The snapshot's default is NOT_COLLECTED; the collector must say None ("not needed") itself.
    assert TenantSnapshot(PARTNER, "x", "partner", NOW).per_user_mfa_states is NOT_COLLECTED
    assert collect(sim, COVERED).per_user_mfa_states is None


BIG_TENANT_SCRIPT = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from datetime import UTC, datetime
    from partnerguard.collect import collect_snapshot
    from partnerguard.graph.client import GraphClient
    from partnerguard.settings import Settings
    from testbed.simulator import TenantSimulator, generate_tenant

    TENANT = "5e5e5e5e-1111-4222-8333-444444444444"
    scenario = generate_tenant(TENANT, 10_000, seed=7, role="partner")
    with TenantSimulator([scenario], enforce_limits=True) as sim:
        settings = Settings.from_env(sim.environment())

        async def main():
            async with GraphClient(settings, TENANT) as client:
                return await collect_snapshot(client, settings, TENANT, datetime.now(UTC))

        started = time.monotonic()
        snapshot = asyncio.run(main())
        print(json.dumps({
            "seconds": time.monotonic() - started,
            "users": len(snapshot.users),
            "unique_users": len({user.id for user in snapshot.users}),
            "expected_users": len(scenario.users),
            "registration": len(snapshot.registration_details),
            "expected_registration": len(scenario.user_registration_details),
            "policies": len(snapshot.conditional_access_policies),
            "per_user": snapshot.per_user_mfa_states,
            "throttled": sum(1 for r in sim.requests if r.status == 429),
            "sdk_modules": sorted(m for m in sys.modules if m == "msgraph" or m.startswith("msgraph.")),
        }))
    """
)


def test_a_10000_user_tenant_is_collected_completely_without_sdk_models() -> None:
    # A fresh interpreter: other tests (the conformance test) may import msgraph's models.
    result = subprocess.run(
        [sys.executable, "-c", BIG_TENANT_SCRIPT],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["users"] == figures["unique_users"] == figures["expected_users"] == 10_000
    assert figures["registration"] == figures["expected_registration"] == 9_900
    assert figures["policies"] == 1
    assert figures["per_user"] is None  # the policy covers everyone: no per-user reads
    assert figures["throttled"] == 0  # paced below Graph's limits
    assert figures["sdk_modules"] == []

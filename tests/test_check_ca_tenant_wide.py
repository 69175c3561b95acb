"""The start both Conditional Access checks share (`tenant_wide_outcome`) and their tenant finding."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from checks import legacy_auth_blocked, mfa_enforcement
from checks.support.conditional_access import JsonObject, policy_id, tenant_finding, tenant_wide_outcome
from partnerguard.model import CheckOutcome, Severity, Status, SubjectType, Unavailable
from tests.snapshot_builders import (
    LICENCE_MISSING,
    PERMISSION_MISSING,
    TENANT_ID,
    ca_policy,
    context,
    guid,
    snapshot,
)

NOTE = "Covered by security defaults."


def start(policies: object, security_defaults: object) -> CheckOutcome | Sequence[JsonObject]:
    return tenant_wide_outcome(
        snapshot(conditional_access_policies=policies, security_defaults_enabled=security_defaults),
        security_defaults_note=NOTE,
        settles=lambda policy: policy_id(policy) == guid("settling"),
        settling_evidence_key="settlingPolicyIds",
    )


def test_security_defaults_settle_it_whatever_the_policies():
    outcome = start(PERMISSION_MISSING, True)
    assert isinstance(outcome, CheckOutcome)
    assert outcome.status is Status.PASS
    assert outcome.note == NOTE


def test_policies_unreadable_except_for_the_licence_stop_the_check():
    outcome = start(PERMISSION_MISSING, False)
    assert isinstance(outcome, CheckOutcome)
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.reason_code == "permission:Policy.Read.All"


def test_without_p1_there_are_no_policies_to_explain():
    assert start(LICENCE_MISSING, False) == ()


def test_a_settling_policy_passes_and_is_named_even_with_defaults_unreadable():
    unreadable = Unavailable("denied", "permission:Policy.Read.All")
    outcome = start([ca_policy("other"), ca_policy("settling")], unreadable)
    assert isinstance(outcome, CheckOutcome)
    assert outcome.status is Status.PASS
    assert outcome.evidence == {"settlingPolicyIds": [guid("settling")]}


def test_no_settling_policy_and_defaults_unreadable_is_the_defaults_reason():
    unreadable = Unavailable("Graph answered 500.", "error:500")
    outcome = start([ca_policy("other")], unreadable)
    assert isinstance(outcome, CheckOutcome)
    assert outcome.status is Status.ERROR
    assert outcome.reason_code == "error:500"


def test_otherwise_the_readable_policies_come_back():
    policies = [ca_policy("other")]
    assert start(policies, False) == policies


@pytest.mark.parametrize("policies", [[], LICENCE_MISSING])
def test_tenant_finding_says_why_nothing_applies(policies):
    finding = tenant_finding(
        snapshot(conditional_access_policies=policies, tenant_name="T" * 1000),
        Severity.HIGH,
        no_candidate="no policy does X",
        consequence="nothing does X",
    )
    assert finding.subject_id == TENANT_ID
    assert finding.subject_type is SubjectType.TENANT
    assert len(finding.subject_name) == 256
    assert finding.severity is Severity.HIGH
    assert finding.evidence["securityDefaultsEnabled"] is False
    if policies == []:
        assert finding.detail == "Security defaults are off and no policy does X, so nothing does X."
        assert finding.evidence["conditionalAccessPolicyCount"] == 0
    else:
        assert "Conditional Access cannot be used" in finding.detail
        assert finding.evidence["conditionalAccess"] == "licence:AAD_PREMIUM"


DEFAULTS_UNREADABLE = Unavailable("denied", "permission:Policy.Read.All")


@pytest.mark.parametrize("check", [mfa_enforcement, legacy_auth_blocked])
@pytest.mark.parametrize(
    ("policies", "security_defaults"),
    [(PERMISSION_MISSING, False), (PERMISSION_MISSING, True), ([], DEFAULTS_UNREADABLE)],
)
def test_both_checks_start_the_same_way(check, policies, security_defaults):
    tenant = snapshot(conditional_access_policies=policies, security_defaults_enabled=security_defaults)
    shared = tenant_wide_outcome(
        tenant,
        security_defaults_note=check.SECURITY_DEFAULTS_NOTE,
        settles=lambda _policy: False,
        settling_evidence_key="unused",
    )
    assert isinstance(shared, CheckOutcome)
    assert check.execute(tenant, context()) == shared

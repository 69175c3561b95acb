"""legacy-auth.blocked: one enabled policy blocks legacy clients for everyone, always (SPEC §1)."""

from __future__ import annotations

from typing import Any

import pytest

from checks import legacy_auth_blocked
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

LEGACY_TYPES = ["exchangeActiveSync", "other"]


def block_policy(name: str, **overrides: Any) -> dict[str, Any]:
    """Microsoft's template: block Exchange ActiveSync and other clients, All users, All resources."""
    policy = ca_policy(
        name,
        conditions={"clientAppTypes": LEGACY_TYPES},
        grantControls={"operator": "OR", "builtInControls": ["block"]},
    )
    return ca_policy(name, **{**policy, **overrides}) if overrides else policy


def with_conditions(name: str, **conditions: Any) -> dict[str, Any]:
    policy = block_policy(name)
    return ca_policy(name, **{**policy, "conditions": {**policy["conditions"], **conditions}})


def run(policies, *, security_defaults: bool | Unavailable = False, **fields) -> CheckOutcome:
    return legacy_auth_blocked.execute(
        snapshot(conditional_access_policies=policies, security_defaults_enabled=security_defaults, **fields),
        context(),
    )


def gaps_of(outcome: CheckOutcome, name: str) -> set[str]:
    prefix = guid(name) + "|"
    return {f.subject_id.removeprefix(prefix) for f in outcome.findings if f.subject_id.startswith(prefix)}


def test_security_defaults_pass():
    outcome = run([], security_defaults=True)
    assert outcome.status is Status.PASS
    assert outcome.note and "security defaults" in outcome.note


def test_the_template_policy_passes():
    outcome = run([block_policy("block legacy")])
    assert outcome.status is Status.PASS
    assert outcome.evidence["blockingPolicyIds"] == [guid("block legacy")]


def test_superset_of_client_types_still_blocks_legacy():
    policy = with_conditions("block more", clientAppTypes=["exchangeActiveSync", "other", "browser"])
    assert run([policy]).status is Status.PASS


def test_one_complete_block_passes_beside_leaky_ones():
    leaky = with_conditions("leaky", locations={"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]})
    assert run([leaky, block_policy("good")]).status is Status.PASS


def test_no_policy_and_defaults_off_fails_with_one_tenant_finding():
    outcome = run([ca_policy("mfa for all")])
    assert outcome.status is Status.FAIL
    (finding,) = outcome.findings
    assert finding.subject_id == TENANT_ID
    assert finding.subject_type is SubjectType.TENANT
    assert finding.severity is Severity.HIGH
    assert finding.evidence == {"securityDefaultsEnabled": False, "conditionalAccessPolicyCount": 1}


@pytest.mark.parametrize(
    ("policy", "gap"),
    [
        (block_policy("p", state="enabledForReportingButNotEnforced"), "report-only"),
        (block_policy("p", state="disabled"), "disabled"),
        (with_conditions("p", users={"includeUsers": [], "includeGroups": [guid("g")]}), "not-all-users"),
        (with_conditions("p", applications={"includeApplications": ["Office365"]}), "not-all-apps"),
        (with_conditions("p", clientAppTypes=["exchangeActiveSync"]), "client-app-subset"),
        (with_conditions("p", clientAppTypes=["other"]), "client-app-subset"),
        (with_conditions("p", clientAppTypes=["easSupported", "other"]), "client-app-subset"),
        (with_conditions("p", users={"excludeUsers": [guid("svc")]}), "excluded-users"),
        (with_conditions("p", users={"excludeGroups": [guid("g")]}), "excluded-groups"),
        (with_conditions("p", users={"excludeRoles": ["62e90394-69f5-4237-9190-012177145e10"]}), "excluded-roles"),
        (with_conditions("p", users={"excludeUsers": ["GuestsOrExternalUsers"]}), "excluded-guests"),
        (with_conditions("p", applications={"excludeApplications": [guid("app")]}), "excluded-apps"),
        (
            with_conditions("p", locations={"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}),
            "locations",
        ),
        (with_conditions("p", platforms={"includePlatforms": ["android", "iOS"], "excludePlatforms": []}), "platforms"),
        (with_conditions("p", devices={"deviceFilter": {"mode": "exclude", "rule": "x"}}), "device-filter"),
        (with_conditions("p", devices={"includeDevices": ["All"], "excludeDevices": ["Compliant"]}), "device-filter"),
        (
            with_conditions("p", deviceStates={"includeStates": ["All"], "excludeStates": ["DomainJoined"]}),
            "device-filter",
        ),
        (with_conditions("p", signInRiskLevels=["high"]), "risk"),
        (with_conditions("p", authenticationFlows={"transferMethods": "deviceCodeFlow"}), "auth-flows"),
    ],
)
def test_each_gap_fails_with_one_finding_per_gap(policy, gap):
    outcome = run([policy])
    assert outcome.status is Status.FAIL
    assert gaps_of(outcome, "p") == {gap}
    (finding,) = outcome.findings
    assert finding.subject_id == f"{guid('p')}|{gap}"
    assert finding.subject_type is SubjectType.POLICY
    assert finding.severity is Severity.HIGH
    assert finding.evidence["gap"] == gap


def test_a_policy_with_several_gaps_reports_each():
    policy = with_conditions(
        "leaky",
        users={"excludeUsers": [guid("svc")], "excludeGroups": [guid("g")]},
        locations={"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]},
    )
    policy["state"] = "enabledForReportingButNotEnforced"
    assert gaps_of(run([policy]), "leaky") == {"report-only", "excluded-users", "excluded-groups", "locations"}


def test_policies_not_about_legacy_clients_are_not_candidates():
    # An MFA baseline on all client apps is mfa.enforcement's business, not a failed legacy block.
    outcome = run([ca_policy("mfa", state="disabled")])
    assert [f.subject_id for f in outcome.findings] == [TENANT_ID]


@pytest.mark.parametrize(
    "grant",
    [{"operator": "OR", "builtInControls": ["mfa"]}, {"operator": "OR", "builtInControls": ["compliantDevice"]}],
)
def test_a_policy_naming_legacy_clients_that_does_not_block_is_no_candidate(grant):
    # SPEC §1: a legacy-block candidate's grant is block. One that grants access blocks nothing:
    # the tenant finding says so (before, it was `<policyId>|no-block-control`).
    outcome = run([block_policy("p", grantControls=grant)])
    assert outcome.status is Status.FAIL
    assert [f.subject_id for f in outcome.findings] == [TENANT_ID]


def test_a_block_of_all_client_apps_is_a_candidate_and_its_gaps_are_findings():
    # SPEC §1: client app types "all" make a block a legacy-block candidate too.
    policy = ca_policy(
        "geo-block",
        grantControls={"builtInControls": ["block"]},
        conditions={"locations": {"includeLocations": [guid("blocked-countries")], "excludeLocations": []}},
    )
    outcome = run([policy])
    assert outcome.status is Status.FAIL
    assert [f.subject_id for f in outcome.findings] == [f"{guid('geo-block')}|locations"]


def test_a_block_of_active_sync_on_supported_platforms_only_is_no_candidate():
    # easSupported is not one of the SPEC's exchangeActiveSync, other or all.
    outcome = run([with_conditions("eas", clientAppTypes=["easSupported"])])
    assert [f.subject_id for f in outcome.findings] == [TENANT_ID]


def test_the_evidence_says_which_api_version_was_read():
    for version in ("beta", "v1.0"):
        outcome = run([block_policy("good")], conditional_access_api_version=version)
        assert outcome.evidence["conditionalAccessApiVersion"] == version
        failed = run([], conditional_access_api_version=version)
        assert failed.evidence["conditionalAccessApiVersion"] == version


def test_block_of_all_client_apps_for_everyone_blocks_legacy_too():
    policy = ca_policy("lockdown", grantControls={"builtInControls": ["block"]})
    assert run([policy]).status is Status.PASS


def test_without_p1_and_defaults_off_fails():
    outcome = run(LICENCE_MISSING)
    assert outcome.status is Status.FAIL
    (finding,) = outcome.findings
    assert finding.subject_id == TENANT_ID
    assert finding.evidence["conditionalAccess"] == "licence:AAD_PREMIUM"


def test_without_p1_but_security_defaults_on_passes():
    assert run(LICENCE_MISSING, security_defaults=True).status is Status.PASS


def test_unreadable_policies_are_not_assessed():
    outcome = run(PERMISSION_MISSING)
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.reason_code == "permission:Policy.Read.All"


def test_unreadable_security_defaults_matter_only_without_a_blocking_policy():
    unknown = Unavailable("could not read security defaults", "permission:Policy.Read.All")
    assert run([block_policy("good")], security_defaults=unknown).status is Status.PASS
    outcome = run([], security_defaults=unknown)
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.reason_code == "permission:Policy.Read.All"


def test_findings_are_sorted_and_unique():
    policies = [
        with_conditions("b", users={"excludeUsers": [guid("svc")]}),
        block_policy("a", state="disabled"),
    ]
    ids = [f.subject_id for f in run(policies).findings]
    assert ids == sorted(ids)
    assert len(ids) == len(set(ids))

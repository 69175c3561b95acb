"""Conditional Access exclusions: whom to resolve (exclusion_targets) and findings that name them."""

from __future__ import annotations

from typing import Any

from checks import CheckModule, legacy_auth_blocked, mfa_enforcement
from checks.support.conditional_access import EVIDENCE_LIST_LIMIT, ExclusionTargets, exclusion_targets
from partnerguard.model import Finding, Unavailable
from tests.snapshot_builders import ca_policy, context, guid, snapshot

GLOBAL_ADMINISTRATOR = "62e90394-69f5-4237-9190-012177145e10"


def excluding(name: str, **users: list[str]) -> dict[str, Any]:
    return ca_policy(name, conditions={"users": users})


def legacy_block(name: str, **users: list[str]) -> dict[str, Any]:
    return ca_policy(
        name,
        conditions={"clientAppTypes": ["exchangeActiveSync", "other"], "users": users},
        grantControls={"builtInControls": ["block"]},
    )


def gap_finding(check: CheckModule, policy: dict[str, Any], gap: str, **fields: Any) -> Finding:
    outcome = check.execute(
        snapshot(conditional_access_policies=[policy], security_defaults_enabled=False, **fields), context()
    )
    (finding,) = [f for f in outcome.findings if f.subject_id == f"{policy['id']}|{gap}"]
    return finding


# -- exclusion_targets ------------------------------------------------------------------------


def test_targets_of_mfa_and_legacy_candidates():
    policies = [
        excluding("mfa", excludeUsers=[guid("u1"), "GuestsOrExternalUsers"], excludeGroups=[guid("g1")]),
        legacy_block("legacy", excludeRoles=[GLOBAL_ADMINISTRATOR], excludeUsers=[guid("u2")]),
    ]
    assert exclusion_targets(policies) == ExclusionTargets(
        group_ids=frozenset({guid("g1")}),
        role_template_ids=frozenset({GLOBAL_ADMINISTRATOR}),
        user_ids=frozenset({guid("u1"), guid("u2")}),
    )


def test_non_candidates_exclusions_are_not_resolved():
    session_only = ca_policy(
        "session",
        grantControls=None,
        conditions={"users": {"excludeGroups": [guid("huge")]}},
    )
    narrow = ca_policy(
        "narrow",
        conditions={
            "users": {"includeUsers": [], "includeGroups": [guid("finance")], "excludeGroups": [guid("g")]},
            "applications": {"includeApplications": [guid("payroll")]},
        },
    )
    assert exclusion_targets([session_only, narrow]) == ExclusionTargets(frozenset(), frozenset(), frozenset())


def test_a_candidate_without_mfa_has_its_exclusions_resolved():
    # SPEC §1: a grant control for All users makes a candidate, MFA or not (no-mfa-control).
    compliant_device = ca_policy(
        "device",
        grantControls={"builtInControls": ["compliantDevice"]},
        conditions={"users": {"excludeGroups": [guid("g")]}},
    )
    assert exclusion_targets([compliant_device]).group_ids == {guid("g")}


def test_report_only_and_disabled_candidates_still_count():
    policy = excluding("p", excludeUsers=[guid("u")])
    policy["state"] = "disabled"
    assert exclusion_targets([policy]).user_ids == {guid("u")}


# -- named findings ---------------------------------------------------------------------------


def test_excluded_users_are_named():
    policy = excluding("p", excludeUsers=[guid("breakglass"), guid("svc")])
    names = {guid("breakglass"): "Break Glass", guid("svc"): "Scanner Service"}
    for check in (mfa_enforcement, legacy_auth_blocked):
        target = (
            policy
            if check is mfa_enforcement
            else legacy_block("p", excludeUsers=policy["conditions"]["users"]["excludeUsers"])
        )
        finding = gap_finding(check, target, "excluded-users", principal_names=names)
        assert finding.evidence["excludedUsers"] == [
            {"id": guid("breakglass"), "name": "Break Glass"},
            {"id": guid("svc"), "name": "Scanner Service"},
        ]
        assert finding.evidence["excludedCount"] == 2
        assert "2 user(s)" in finding.detail


def test_excluded_groups_name_their_transitive_members():
    policy = excluding("p", excludeGroups=[guid("g-admins"), guid("g-svc")])
    members = {
        guid("g-admins"): frozenset({guid("ann"), guid("bo")}),
        guid("g-svc"): frozenset({guid("bo"), guid("svc")}),
    }
    names = {guid("g-admins"): "Admins", guid("ann"): "Ann", guid("bo"): "Bo", guid("svc"): "Svc"}
    finding = gap_finding(mfa_enforcement, policy, "excluded-groups", group_members=members, principal_names=names)
    assert "3 transitive member user(s)" in finding.detail
    assert finding.evidence["excludedMemberCount"] == 3
    assert finding.evidence["excludedMembers"] == [
        {"id": guid("ann"), "name": "Ann"},
        {"id": guid("bo"), "name": "Bo"},
        {"id": guid("svc"), "name": "Svc"},
    ]
    assert finding.evidence["excludedGroups"] == [
        {"id": guid("g-admins"), "name": "Admins", "memberCount": 2},
        {"id": guid("g-svc"), "name": None, "memberCount": 2},
    ]
    assert "unresolvedIds" not in finding.evidence


def test_excluded_roles_name_their_holders():
    policy = legacy_block("p", excludeRoles=[GLOBAL_ADMINISTRATOR])
    finding = gap_finding(
        legacy_auth_blocked,
        policy,
        "excluded-roles",
        role_members={GLOBAL_ADMINISTRATOR: frozenset({guid("ga")})},
        principal_names={GLOBAL_ADMINISTRATOR: "Global Administrator", guid("ga"): "Grace Admin"},
    )
    assert "1 principal(s) holding those roles" in finding.detail
    assert finding.evidence["excludedRoles"] == [
        {"id": GLOBAL_ADMINISTRATOR, "name": "Global Administrator", "memberCount": 1}
    ]
    assert finding.evidence["excludedMembers"] == [{"id": guid("ga"), "name": "Grace Admin"}]


def test_member_list_is_capped_with_the_full_count():
    many = frozenset(guid(f"m{i}") for i in range(EVIDENCE_LIST_LIMIT + 25))
    policy = excluding("p", excludeGroups=[guid("big")])
    finding = gap_finding(mfa_enforcement, policy, "excluded-groups", group_members={guid("big"): many})
    assert finding.evidence["excludedMemberCount"] == EVIDENCE_LIST_LIMIT + 25
    assert len(finding.evidence["excludedMembers"]) == EVIDENCE_LIST_LIMIT
    assert f"{EVIDENCE_LIST_LIMIT + 25} transitive member user(s)" in finding.detail


def test_unresolved_members_fall_back_to_ids_with_the_reason():
    policy = excluding("p", excludeGroups=[guid("g")])
    missing = Unavailable("The app lacks GroupMember.Read.All.", "permission:GroupMember.Read.All")
    for group_members in (None, missing):
        finding = gap_finding(mfa_enforcement, policy, "excluded-groups", group_members=group_members)
        assert finding.evidence["excludedGroupIds"] == [guid("g")]
        assert "excludedMembers" not in finding.evidence
        assert finding.evidence["unresolvedIds"] == [guid("g")]
        assert "every member's sign-ins" in finding.detail
    finding = gap_finding(mfa_enforcement, policy, "excluded-groups", group_members=missing)
    assert finding.evidence["unresolvedReason"] == missing.reason


def test_partly_resolved_groups_say_there_may_be_more():
    policy = excluding("p", excludeGroups=[guid("known"), guid("deleted")])
    finding = gap_finding(
        mfa_enforcement, policy, "excluded-groups", group_members={guid("known"): frozenset({guid("u")})}
    )
    assert "possibly more" in finding.detail
    assert finding.evidence["unresolvedIds"] == [guid("deleted")]


def test_names_do_not_change_which_gaps_exist():
    policy = excluding("p", excludeUsers=[guid("u")], excludeGroups=[guid("g")])
    bare = mfa_enforcement.execute(
        snapshot(conditional_access_policies=[policy], security_defaults_enabled=False), context()
    )
    named = mfa_enforcement.execute(
        snapshot(
            conditional_access_policies=[policy],
            security_defaults_enabled=False,
            group_members={guid("g"): frozenset({guid("x")})},
            principal_names={guid("u"): "U"},
        ),
        context(),
    )
    assert [f.subject_id for f in bare.findings] == [f.subject_id for f in named.findings]


def test_hostile_names_are_bounded():
    policy = excluding("p", excludeUsers=[guid("u")])
    finding = gap_finding(mfa_enforcement, policy, "excluded-users", principal_names={guid("u"): "n" * 5000})
    assert len(finding.evidence["excludedUsers"][0]["name"]) == 256

"""mfa.enforcement: every sign-in of every enabled user requires MFA (SPEC §1)."""

from __future__ import annotations

import pytest

from checks import mfa_enforcement
from checks.support.conditional_access import EVIDENCE_LIST_LIMIT
from partnerguard.model import CheckOutcome, Finding, Severity, Status, SubjectType, Unavailable
from tests.snapshot_builders import (
    LICENCE_MISSING,
    MFA_STRENGTH,
    PERMISSION_MISSING,
    TENANT_ID,
    ca_policy,
    context,
    guid,
    snapshot,
    user,
)

# Whenever no policy covers everyone, coverage hangs on per-user MFA and the collector reads it
# for every enabled user: by default one user, whose per-user MFA is off.
UNCOVERED = user("uncovered")


def run(policies, *, security_defaults=False, include_guests=False, **fields) -> CheckOutcome:
    fields.setdefault("users", [UNCOVERED])
    fields.setdefault("per_user_mfa_states", {UNCOVERED.id: "disabled"})
    return mfa_enforcement.execute(
        snapshot(conditional_access_policies=policies, security_defaults_enabled=security_defaults, **fields),
        context(include_guests=include_guests),
    )


def subject_ids(outcome: CheckOutcome) -> list[str]:
    """The findings' subject ids, without the default uncovered user's."""
    return [finding.subject_id for finding in outcome.findings if finding.subject_id != UNCOVERED.id]


def non_user_findings(outcome: CheckOutcome) -> list[Finding]:
    return [finding for finding in outcome.findings if finding.subject_id != UNCOVERED.id]


def gaps_of(outcome: CheckOutcome, policy_name: str) -> set[str]:
    prefix = guid(policy_name) + "|"
    return {f.subject_id.removeprefix(prefix) for f in outcome.findings if f.subject_id.startswith(prefix)}


# -- passing configurations -------------------------------------------------------------------


def test_one_complete_policy_passes():
    outcome = run([ca_policy("baseline")])
    assert outcome.status is Status.PASS
    assert outcome.findings == ()
    assert outcome.evidence["coveringPolicyIds"] == [guid("baseline")]


def test_authentication_strength_counts_as_mfa():
    policy = ca_policy("strength", grantControls={"builtInControls": [], "authenticationStrength": MFA_STRENGTH})
    assert run([policy]).status is Status.PASS


def test_strength_that_grants_no_mfa_claim_does_not_count():
    weak = dict(MFA_STRENGTH, requirementsSatisfied="none", policyType="custom")
    policy = ca_policy("weak", grantControls={"builtInControls": [], "authenticationStrength": weak})
    outcome = run([policy])
    assert outcome.status is Status.FAIL
    assert gaps_of(outcome, "weak") == {"no-mfa-control"}
    # SPEC §1: the policy has a grant control for All users, so it is a candidate (named with
    # no-mfa-control) and there is no tenant-level finding.
    assert TENANT_ID not in subject_ids(outcome)


def test_and_with_another_control_is_fine():
    policy = ca_policy("and", grantControls={"operator": "AND", "builtInControls": ["mfa", "compliantDevice"]})
    assert run([policy]).status is Status.PASS


def test_all_four_client_app_types_equal_all():
    policy = ca_policy(
        "four",
        conditions={"clientAppTypes": ["browser", "mobileAppsAndDesktopClients", "exchangeActiveSync", "other"]},
    )
    assert run([policy]).status is Status.PASS


def test_security_defaults_on_passes_with_note():
    outcome = run([], security_defaults=True)
    assert outcome.status is Status.PASS
    assert outcome.note and "100 %" in outcome.note and "risk" in outcome.note


def test_security_defaults_on_passes_even_when_policies_unreadable():
    assert run(PERMISSION_MISSING, security_defaults=True).status is Status.PASS


def test_a_covering_policy_makes_other_policies_gaps_irrelevant():
    outcome = run([ca_policy("baseline"), ca_policy("pilot", state="enabledForReportingButNotEnforced")])
    assert outcome.status is Status.PASS
    assert outcome.findings == ()


# -- one finding per gap ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "gap"),
    [
        ({"state": "enabledForReportingButNotEnforced"}, "report-only"),
        ({"state": "disabled"}, "disabled"),
        (
            {"conditions": {"users": {"includeUsers": [], "includeGroups": [guid("g-admins")]}}},
            "not-all-users",
        ),
        ({"conditions": {"applications": {"includeApplications": ["Office365"]}}}, "not-all-apps"),
        (
            {
                "conditions": {
                    "applications": {
                        "includeApplications": [],
                        "includeUserActions": ["urn:user:registersecurityinfo"],
                    }
                }
            },
            "not-all-apps",
        ),
        (
            {
                "conditions": {
                    "applications": {
                        "applicationFilter": {"mode": "exclude", "rule": 'CustomSecurityAttribute.x -eq "y"'}
                    }
                }
            },
            "not-all-apps",
        ),
        ({"conditions": {"clientAppTypes": ["browser", "mobileAppsAndDesktopClients"]}}, "client-app-subset"),
        ({"conditions": {"authenticationFlows": {"transferMethods": "deviceCodeFlow"}}}, "auth-flows"),
        (
            {"conditions": {"authenticationFlows": {"transferMethods": "deviceCodeFlow,authenticationTransfer"}}},
            "auth-flows",
        ),
        (
            {"grantControls": {"operator": "OR", "builtInControls": ["mfa", "compliantDevice"]}},
            "or-alternative",
        ),
        (
            {"grantControls": {"operator": "OR", "builtInControls": ["mfa"], "termsOfUse": [guid("tou")]}},
            "or-alternative",
        ),
        ({"conditions": {"users": {"excludeUsers": [guid("breakglass")]}}}, "excluded-users"),
        ({"conditions": {"users": {"excludeGroups": [guid("g-svc")]}}}, "excluded-groups"),
        (
            {"conditions": {"users": {"excludeRoles": ["62e90394-69f5-4237-9190-012177145e10"]}}},
            "excluded-roles",
        ),
        (
            {
                "conditions": {
                    "users": {
                        "excludeGuestsOrExternalUsers": {
                            "guestOrExternalUserTypes": "b2bCollaborationGuest,serviceProvider",
                            "externalTenants": {
                                "@odata.type": "#microsoft.graph.conditionalAccessAllExternalTenants",
                                "membershipKind": "all",
                            },
                        }
                    }
                }
            },
            "excluded-guests",
        ),
        ({"conditions": {"users": {"excludeUsers": ["GuestsOrExternalUsers"]}}}, "excluded-guests"),
        (
            {"conditions": {"applications": {"excludeApplications": ["00000002-0000-0ff1-ce00-000000000000"]}}},
            "excluded-apps",
        ),
        (
            {"conditions": {"locations": {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}}},
            "locations",
        ),
        (
            {"conditions": {"locations": {"includeLocations": [guid("office-ips")], "excludeLocations": []}}},
            "locations",
        ),
        (
            {"conditions": {"platforms": {"includePlatforms": ["android", "iOS"], "excludePlatforms": []}}},
            "platforms",
        ),
        (
            {"conditions": {"platforms": {"includePlatforms": ["all"], "excludePlatforms": ["windows"]}}},
            "platforms",
        ),
        (
            {
                "conditions": {
                    "devices": {"deviceFilter": {"mode": "exclude", "rule": 'device.trustType -eq "ServerAD"'}}
                }
            },
            "device-filter",
        ),
        ({"conditions": {"signInRiskLevels": ["high", "medium"]}}, "risk"),
        ({"conditions": {"userRiskLevels": ["high"]}}, "risk"),
        ({"conditions": {"servicePrincipalRiskLevels": ["high"]}}, "risk"),
        ({"conditions": {"insiderRiskLevels": "elevated"}}, "risk"),
    ],
)
def test_each_gap_yields_one_finding(overrides, gap):
    outcome = run([ca_policy("candidate", **overrides)])
    assert outcome.status is Status.FAIL
    assert gaps_of(outcome, "candidate") == {gap}
    finding = next(f for f in outcome.findings if f.subject_id == f"{guid('candidate')}|{gap}")
    assert finding.subject_type is SubjectType.POLICY
    assert finding.subject_name == "candidate"
    assert finding.severity is Severity.CRITICAL
    assert finding.evidence["policyId"] == guid("candidate")
    assert finding.evidence["gap"] == gap
    assert finding.detail
    # A candidate exists, so there is no tenant-level finding.
    assert TENANT_ID not in subject_ids(outcome)


def test_neutral_conditions_are_not_gaps():
    # "All" locations without exclusions and "all" platforms narrow nothing.
    policy = ca_policy(
        "neutral",
        conditions={
            "locations": {"includeLocations": ["All"], "excludeLocations": []},
            "platforms": {"includePlatforms": ["all"], "excludePlatforms": []},
            "authenticationFlows": {"transferMethods": "none"},
        },
    )
    assert run([policy]).status is Status.PASS


def test_several_gaps_give_several_findings_sorted():
    policy = ca_policy(
        "leaky",
        state="enabledForReportingButNotEnforced",
        conditions={
            "users": {"excludeUsers": [guid("svc")], "excludeGroups": [guid("grp")]},
            "locations": {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]},
        },
    )
    outcome = run([policy])
    assert gaps_of(outcome, "leaky") == {"report-only", "excluded-users", "excluded-groups", "locations"}
    assert subject_ids(outcome) == sorted(subject_ids(outcome))


def test_exclusion_evidence_names_excluded_ids_and_caps_them():
    many = [guid(f"u{i}") for i in range(EVIDENCE_LIST_LIMIT + 10)]
    outcome = run([ca_policy("p", conditions={"users": {"excludeUsers": many}})])
    (finding,) = non_user_findings(outcome)
    assert finding.evidence["excludedUserIds"] == many[:EVIDENCE_LIST_LIMIT]
    assert finding.evidence["excludedCount"] == len(many)
    assert str(len(many)) in finding.detail


def test_union_of_narrower_policies_does_not_count():
    members = ca_policy("members", conditions={"users": {"includeUsers": [], "includeGroups": [guid("all-staff")]}})
    admins = ca_policy(
        "admins",
        conditions={"users": {"includeUsers": [], "includeRoles": ["62e90394-69f5-4237-9190-012177145e10"]}},
    )
    office = ca_policy("office", conditions={"applications": {"includeApplications": ["Office365"]}})
    others = ca_policy("others", conditions={"applications": {"excludeApplications": ["Office365"]}})
    outcome = run([members, admins, office, others])
    assert outcome.status is Status.FAIL
    assert gaps_of(outcome, "office") == {"not-all-apps"}
    assert gaps_of(outcome, "others") == {"excluded-apps"}
    # Each is a candidate (All users or All apps) and each misses someone or something.
    assert gaps_of(outcome, "members") == {"not-all-users"}
    assert gaps_of(outcome, "admins") == {"not-all-users"}


def test_policies_that_are_not_candidates_are_ignored():
    # Requires MFA, but neither for All users nor for All apps: not meant as a baseline.
    narrow = ca_policy(
        "narrow",
        conditions={
            "users": {"includeUsers": [], "includeGroups": [guid("finance")]},
            "applications": {"includeApplications": [guid("payroll-app")]},
        },
    )
    block = ca_policy(
        "block-legacy",
        grantControls={"builtInControls": ["block"]},
        conditions={"clientAppTypes": ["exchangeActiveSync", "other"]},
    )
    outcome = run([narrow, block])
    assert outcome.status is Status.FAIL
    assert subject_ids(outcome) == [TENANT_ID]


def test_candidate_without_mfa_is_no_mfa_control_but_session_only_policy_is_not():
    compliant_only = ca_policy("devices", grantControls={"builtInControls": ["compliantDevice"]})
    session_only = ca_policy(
        "sif",
        grantControls=None,
        sessionControls={"signInFrequency": {"value": 12, "type": "hours", "isEnabled": True}},
    )
    outcome = run([compliant_only, session_only])
    assert gaps_of(outcome, "devices") == {"no-mfa-control"}
    assert gaps_of(outcome, "sif") == set()
    # The compliant-device policy is a candidate (a grant control, All users): no tenant finding.
    assert TENANT_ID not in subject_ids(outcome)


# -- tenant-level and licence -----------------------------------------------------------------


def test_no_candidate_gives_one_tenant_finding():
    outcome = run([])
    assert outcome.status is Status.FAIL
    (finding,) = non_user_findings(outcome)
    assert finding.subject_id == TENANT_ID
    assert finding.subject_type is SubjectType.TENANT
    assert finding.subject_name == "Contoso Partner"
    assert finding.severity is Severity.CRITICAL
    assert finding.evidence["securityDefaultsEnabled"] is False


def test_licence_less_tenant_with_security_defaults_off_fails():
    outcome = run(LICENCE_MISSING)
    assert outcome.status is Status.FAIL
    (finding,) = non_user_findings(outcome)
    assert finding.subject_id == TENANT_ID
    assert finding.evidence["conditionalAccess"] == "licence:AAD_PREMIUM"
    assert "Conditional Access cannot be used" in finding.detail


def test_policies_unreadable_for_permission_is_not_assessed():
    outcome = run(PERMISSION_MISSING)
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.reason_code == "permission:Policy.Read.All"


def test_security_defaults_unreadable_without_covering_policy_is_not_assessed():
    unreadable = Unavailable("denied", "permission:Policy.Read.All")
    assert run([], security_defaults=unreadable).status is Status.NOT_ASSESSED
    # A covering policy settles it without security defaults.
    assert run([ca_policy("baseline")], security_defaults=unreadable).status is Status.PASS


# -- custom controls --------------------------------------------------------------------------


def test_custom_control_candidate_is_not_assessed_never_fail():
    duo = ca_policy("duo", grantControls={"builtInControls": [], "customAuthenticationFactors": ["DuoSecurity"]})
    outcome = run([duo])
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.reason_code is None
    assert "verify the amr claim" in (outcome.reason or "")
    assert outcome.evidence["customControlPolicyIds"] == [guid("duo")]


DUO_GRANT = {"builtInControls": [], "customAuthenticationFactors": ["DuoSecurity"]}


@pytest.mark.parametrize(
    ("overrides", "gap"),
    [
        ({"state": "disabled"}, "disabled"),
        ({"state": "enabledForReportingButNotEnforced"}, "report-only"),
        ({"conditions": {"users": {"excludeUsers": [guid("break-glass")]}}}, "excluded-users"),
        ({"conditions": {"users": {"excludeGroups": [guid("no-duo")]}}}, "excluded-groups"),
        ({"conditions": {"applications": {"includeApplications": ["Office365"]}}}, "not-all-apps"),
        ({"conditions": {"clientAppTypes": ["browser"]}}, "client-app-subset"),
        ({"conditions": {"locations": {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}}}, "locations"),
        ({"grantControls": {"operator": "OR", "builtInControls": ["compliantDevice"]}}, "or-alternative"),
    ],
)
def test_custom_control_policy_with_a_gap_covers_nobody_so_the_check_fails(overrides, gap):
    grant = {**DUO_GRANT, **overrides.get("grantControls", {})}
    duo = ca_policy("duo", **{**overrides, "grantControls": grant})
    outcome = run([duo])
    assert outcome.status is Status.FAIL
    assert gap in gaps_of(outcome, "duo")
    assert UNCOVERED.id in {finding.subject_id for finding in outcome.findings}
    assert "customControlPolicyIds" not in outcome.evidence


def test_a_gapless_custom_control_beside_a_gappy_one_is_still_not_assessed():
    gappy = ca_policy("duo-pilot", state="disabled", grantControls=DUO_GRANT)
    complete = ca_policy("duo", grantControls=DUO_GRANT)
    outcome = run([gappy, complete])
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.evidence["customControlPolicyIds"] == [guid("duo")]
    assert gaps_of(outcome, "duo-pilot") == {"disabled"}


def test_custom_control_keeps_other_candidates_findings():
    duo = ca_policy("duo", grantControls={"builtInControls": [], "customAuthenticationFactors": ["DuoSecurity"]})
    pilot = ca_policy("pilot", state="enabledForReportingButNotEnforced")
    outcome = run([duo, pilot])
    assert outcome.status is Status.NOT_ASSESSED
    assert gaps_of(outcome, "pilot") == {"report-only"}


# -- per-user MFA -----------------------------------------------------------------------------


def test_per_user_states_enforced_for_everyone_pass():
    alice, bob = user("alice"), user("bob")
    outcome = run([], users=[alice, bob], per_user_mfa_states={alice.id: "enforced", bob.id: "enforced"})
    assert outcome.status is Status.PASS
    assert outcome.note and "per-user" in outcome.note


def test_per_user_enabled_and_disabled_users_are_uncovered():
    alice, bob, carol = user("alice"), user("bob"), user("carol")
    outcome = run(
        [],
        users=[alice, bob, carol],
        per_user_mfa_states={alice.id: "enforced", bob.id: "enabled", carol.id: "disabled"},
    )
    assert outcome.status is Status.FAIL
    assert set(subject_ids(outcome)) == {bob.id, carol.id, TENANT_ID}
    by_id = {f.subject_id: f for f in outcome.findings}
    assert by_id[bob.id].subject_type is SubjectType.USER
    assert by_id[bob.id].evidence["perUserMfaState"] == "enabled"
    assert "registration" in by_id[bob.id].detail
    assert by_id[carol.id].evidence["perUserMfaState"] == "disabled"


@pytest.mark.parametrize("include_guests", [False, True])
def test_per_user_judges_every_enabled_user_guests_included(include_guests):
    # SPEC §1: every enabled user is covered; INCLUDE_GUESTS narrows mfa.registration only.
    alice, gone, guest = user("alice"), user("gone", enabled=False), user("visitor", guest=True)
    states = {alice.id: "enforced", gone.id: "disabled", guest.id: "disabled"}
    outcome = run([], users=[alice, gone, guest], per_user_mfa_states=states, include_guests=include_guests)
    assert outcome.status is Status.FAIL
    assert guest.id in subject_ids(outcome)
    assert gone.id not in subject_ids(outcome)
    assert alice.id not in subject_ids(outcome)


def test_a_guest_whose_state_was_not_read_leaves_the_check_not_assessed():
    alice, guest = user("alice"), user("visitor", guest=True)
    outcome = run([], users=[alice, guest], per_user_mfa_states={alice.id: "enforced"})
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.evidence == {"unassessed_users": 1}


def test_must_be_challenged_is_every_enabled_user():
    assert mfa_enforcement.must_be_challenged(user("alice"))
    assert mfa_enforcement.must_be_challenged(user("visitor", guest=True))
    assert not mfa_enforcement.must_be_challenged(user("gone", enabled=False))


def test_per_user_findings_come_with_policy_findings():
    alice = user("alice")
    outcome = run(
        [ca_policy("pilot", state="enabledForReportingButNotEnforced")],
        users=[alice],
        per_user_mfa_states={alice.id: "disabled"},
    )
    assert set(subject_ids(outcome)) == {f"{guid('pilot')}|report-only", alice.id}


def test_per_user_states_unavailable_is_not_assessed_with_policy_findings():
    outcome = run(
        [ca_policy("pilot", state="disabled")],
        users=[user("alice")],
        per_user_mfa_states=Unavailable("throttled", "error:429"),
    )
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.reason_code == "error:429"
    assert subject_ids(outcome) == [f"{guid('pilot')}|disabled"]


def test_per_user_state_missing_for_a_user_is_not_assessed_with_count():
    alice, bob = user("alice"), user("bob")
    outcome = run([], users=[alice, bob], per_user_mfa_states={alice.id: "enforced"})
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.evidence == {"unassessed_users": 1}


def test_a_user_known_uncovered_fails_even_when_another_was_not_read():
    # Alice's finding stands whatever Bob's state is: a failure, with the unread count.
    alice, bob = user("alice"), user("bob")
    outcome = run([], users=[alice, bob], per_user_mfa_states={alice.id: "disabled"})
    assert outcome.status is Status.FAIL
    assert outcome.evidence == {"unassessed_users": 1}
    assert alice.id in subject_ids(outcome)


def test_per_user_states_left_uncollected_never_fail():
    # A collector that forgot the field leaves the snapshot's default, NOT_COLLECTED.
    outcome = mfa_enforcement.execute(
        snapshot(
            conditional_access_policies=[ca_policy("pilot", state="disabled")],
            security_defaults_enabled=False,
            users=[UNCOVERED],
        ),
        context(),
    )
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.reason_code == "error:not-collected"
    assert subject_ids(outcome) == [f"{guid('pilot')}|disabled"]


def test_per_user_states_marked_not_needed_when_needed_never_fail():
    # None means "not needed"; nobody is covered here, so it was needed: never fail on it.
    outcome = run([ca_policy("pilot", state="disabled")], per_user_mfa_states=None)
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.reason_code == "error:not-collected"
    assert "per-user MFA states" in (outcome.reason or "")


# -- pure helpers the collector uses ----------------------------------------------------------


def test_covers_all_users():
    assert mfa_enforcement.covers_all_users([], security_defaults_enabled=True)
    assert mfa_enforcement.covers_all_users([ca_policy("baseline")], security_defaults_enabled=False)
    assert not mfa_enforcement.covers_all_users([], security_defaults_enabled=False)
    assert not mfa_enforcement.covers_all_users(
        [ca_policy("pilot", state="enabledForReportingButNotEnforced")], security_defaults_enabled=False
    )
    duo = ca_policy("duo", grantControls={"builtInControls": [], "customAuthenticationFactors": ["Duo"]})
    assert not mfa_enforcement.covers_all_users([duo], security_defaults_enabled=False)


def test_judge_policy_gives_spec_gap_names():
    policy = ca_policy("p", state="disabled", conditions={"users": {"excludeRoles": [guid("role")]}})
    assert [gap.gap.value for gap in mfa_enforcement.judge_policy(policy)] == ["disabled", "excluded-roles"]
    assert mfa_enforcement.judge_policy(ca_policy("ok")) == []


def test_malformed_policy_json_never_counts_as_covering():
    garbage = {
        "id": guid("garbage"),
        "displayName": None,
        "state": "enabled",
        "conditions": "nope",
        "grantControls": {"builtInControls": "mfa"},
    }
    outcome = run([garbage])
    # Unreadable conditions target nobody: not a candidate, so no MFA policy exists at all.
    assert outcome.status is Status.FAIL
    assert subject_ids(outcome) == [TENANT_ID]


# -- SPEC §1 "Edge cases, decided" --------------------------------------------------------------

# Beta's device conditions (conditionalAccessDevices, conditionalAccessDeviceStates).
DEVICE_CONDITIONS = [
    {"devices": {"deviceFilter": {"mode": "include", "rule": "device.isCompliant -eq True"}}},
    {"devices": {"includeDevices": ["All"], "excludeDevices": ["Compliant"]}},
    {"devices": {"includeDevices": ["All"], "excludeDevices": ["Compliant", "DomainJoined"]}},
    {"devices": {"includeDeviceStates": ["All"], "excludeDeviceStates": ["DomainJoined"]}},
    {"deviceStates": {"includeStates": ["All"], "excludeStates": ["Compliant"]}},
    {"deviceStates": {"includeStates": ["Compliant"], "excludeStates": []}},
    {"devices": {"includeDevices": ["Compliant"], "excludeDevices": []}},
]


@pytest.mark.parametrize("condition", DEVICE_CONDITIONS)
def test_any_device_condition_is_the_device_filter_gap(condition):
    outcome = run([ca_policy("devices", conditions=condition)])
    assert outcome.status is Status.FAIL
    assert gaps_of(outcome, "devices") == {"device-filter"}


@pytest.mark.parametrize(
    "condition",
    [
        {"devices": {"includeDevices": ["All"], "excludeDevices": [], "deviceFilter": None}},
        {"deviceStates": {"includeStates": ["All"], "excludeStates": []}},
        {"devices": None, "deviceStates": None},
    ],
)
def test_all_devices_with_nothing_excluded_is_no_device_condition(condition):
    assert run([ca_policy("all devices", conditions=condition)]).status is Status.PASS


def test_auth_flows_and_client_app_subset_are_separate_gaps():
    both = ca_policy(
        "flows",
        conditions={
            "clientAppTypes": ["browser"],
            "authenticationFlows": {"transferMethods": "deviceCodeFlow"},
        },
    )
    outcome = run([both])
    assert gaps_of(outcome, "flows") == {"client-app-subset", "auth-flows"}
    flows = next(f for f in outcome.findings if f.subject_id == f"{guid('flows')}|auth-flows")
    assert flows.evidence["authenticationFlows"] == ["deviceCodeFlow"]
    # "none" is the flagged enum's empty member: no condition.
    assert run([ca_policy("none", conditions={"authenticationFlows": {"transferMethods": "none"}})]).status is (
        Status.PASS
    )


REFERENCED_STRENGTH = {"id": guid("custom-strength")}


def test_a_referenced_strength_filled_in_as_mfa_counts():
    filled = dict(REFERENCED_STRENGTH, requirementsSatisfied="mfa")
    policy = ca_policy("strength", grantControls={"builtInControls": [], "authenticationStrength": filled})
    assert run([policy]).status is Status.PASS


def test_a_referenced_strength_filled_in_as_none_is_no_mfa_control():
    filled = dict(REFERENCED_STRENGTH, requirementsSatisfied="none")
    policy = ca_policy("strength", grantControls={"builtInControls": [], "authenticationStrength": filled})
    outcome = run([policy])
    assert outcome.status is Status.FAIL
    assert gaps_of(outcome, "strength") == {"no-mfa-control"}


def test_a_strength_whose_requirement_is_unknown_is_never_taken_as_mfa():
    # Before SPEC §1's decision a strength without requirementsSatisfied passed as MFA.
    policy = ca_policy("strength", grantControls={"builtInControls": [], "authenticationStrength": REFERENCED_STRENGTH})
    why = Unavailable("PartnerGuard's app lacks Policy.Read.AuthenticationMethod", "permission:x")
    outcome = run([policy], unread_authentication_strengths={REFERENCED_STRENGTH["id"]: why})
    assert outcome.status is Status.NOT_ASSESSED
    assert "requirementsSatisfied" in (outcome.reason or "") and why.reason in (outcome.reason or "")
    assert outcome.evidence["unreadAuthenticationStrengthIds"] == [REFERENCED_STRENGTH["id"]]
    assert not mfa_enforcement.covers_all_users([policy], security_defaults_enabled=False)


def test_an_unknown_strength_on_a_policy_with_a_gap_fails_on_the_gap():
    policy = ca_policy(
        "strength",
        state="enabledForReportingButNotEnforced",
        grantControls={"builtInControls": [], "authenticationStrength": REFERENCED_STRENGTH},
    )
    outcome = run([policy])
    assert outcome.status is Status.FAIL
    assert gaps_of(outcome, "strength") == {"report-only"}


def test_mfa_or_a_custom_control_is_treated_like_the_custom_control_alone():
    either = ca_policy(
        "mfa-or-duo",
        grantControls={"operator": "OR", "builtInControls": ["mfa"], "customAuthenticationFactors": ["Duo"]},
    )
    outcome = run([either])
    assert outcome.status is Status.NOT_ASSESSED
    assert "verify the amr claim" in (outcome.reason or "")
    assert gaps_of(outcome, "mfa-or-duo") == set()


def test_mfa_and_a_custom_control_requires_mfa():
    # The custom control is not the only MFA control: Microsoft's MFA is required as well.
    both = ca_policy(
        "mfa-and-duo",
        grantControls={"operator": "AND", "builtInControls": ["mfa"], "customAuthenticationFactors": ["Duo"]},
    )
    assert run([both]).status is Status.PASS


def test_a_custom_control_or_a_weaker_control_is_an_or_alternative():
    weak = ca_policy(
        "duo-or-device",
        grantControls={"operator": "OR", "builtInControls": ["compliantDevice"], "customAuthenticationFactors": ["D"]},
    )
    outcome = run([weak])
    assert outcome.status is Status.FAIL
    assert gaps_of(outcome, "duo-or-device") == {"or-alternative"}


@pytest.mark.parametrize("state", ["enabled", "enabledForReportingButNotEnforced", "disabled"])
def test_every_state_of_a_grant_policy_for_all_users_or_all_resources_is_a_candidate(state):
    # SPEC §1: enabled, report-only or off; All users OR All resources; any grant control.
    terms_only = ca_policy(
        "terms",
        state=state,
        grantControls={"builtInControls": [], "termsOfUse": [guid("tou")]},
        conditions={"applications": {"includeApplications": ["Office365"]}},
    )
    outcome = run([terms_only])
    assert "no-mfa-control" in gaps_of(outcome, "terms")
    assert "not-all-apps" in gaps_of(outcome, "terms")
    assert TENANT_ID not in subject_ids(outcome)


def test_a_block_is_no_mfa_candidate():
    block_all = ca_policy("block", grantControls={"builtInControls": ["block"]}, state="disabled")
    outcome = run([block_all])
    assert gaps_of(outcome, "block") == set()
    assert subject_ids(outcome) == [TENANT_ID]


def test_without_p1_every_user_enforced_per_user_passes():
    alice, bob = user("alice"), user("bob")
    outcome = run(LICENCE_MISSING, users=[alice, bob], per_user_mfa_states={alice.id: "enforced", bob.id: "Enforced"})
    assert outcome.status is Status.PASS
    assert outcome.evidence["perUserEnforcedUsers"] == 2


def test_without_p1_one_user_not_enforced_fails_with_tenant_and_user_findings():
    alice, bob = user("alice"), user("bob")
    outcome = run(LICENCE_MISSING, users=[alice, bob], per_user_mfa_states={alice.id: "enforced", bob.id: "enabled"})
    assert outcome.status is Status.FAIL
    assert sorted(f.subject_id for f in outcome.findings) == sorted([TENANT_ID, bob.id])


def test_the_evidence_says_which_api_version_was_read():
    for version in ("beta", "v1.0"):
        assert run([ca_policy("baseline")], conditional_access_api_version=version).evidence == {
            "coveringPolicyIds": [guid("baseline")],
            "conditionalAccessApiVersion": version,
        }
        failed = run([], conditional_access_api_version=version)
        assert failed.status is Status.FAIL
        assert failed.evidence["conditionalAccessApiVersion"] == version
    # Not read (security defaults answer alone in this snapshot): no claim about a version.
    assert "conditionalAccessApiVersion" not in run([], security_defaults=True).evidence


def test_built_in_controls_are_read_case_insensitively():
    # Older Graph pages spell them "Mfa" and "Block".
    assert run([ca_policy("capitalised", grantControls={"builtInControls": ["Mfa"]})]).status is Status.PASS
    block = ca_policy("block", grantControls={"builtInControls": ["Block"]})
    assert subject_ids(run([block])) == [TENANT_ID]

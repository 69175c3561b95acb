"""mfa.phishing-resistant-admins (SPEC §1) as a pure function over snapshots built in code."""

from __future__ import annotations

from typing import Any

from checks import mfa_phishing_resistant_admins as check
from checks.support.directory_roles import BUILT_IN_ROLE_NAMES
from partnerguard.evaluate import run_check
from partnerguard.model import CheckOutcome, Status, Unavailable
from tests.snapshot_builders import (
    LICENCE_MISSING,
    PERMISSION_MISSING,
    ca_policy,
    context,
    registration,
    snapshot,
    user,
)

GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
EXCHANGE_ADMIN = "29232cdf-9323-42fd-ade2-1d097af3e4de"
POLICY = frozenset({"MicrosoftAuthenticator", "Fido2", "Sms"})  # as the methods policy names them
PHISHING_RESISTANT_STRENGTH = {
    "id": "00000000-0000-0000-0000-000000000004",
    "displayName": "Phishing-resistant MFA",
    "policyType": "builtIn",
    "requirementsSatisfied": "mfa",
    "allowedCombinations": ["windowsHelloForBusiness", "fido2", "x509CertificateMultiFactor"],
}

ADA = user("ada", display_name="Ada Admin")  # Global Administrator
BOB = user("bob", display_name="Bob Builder")  # a user with no role
GLASS = user("glass", display_name="Break Glass")  # emergency-access account


def run(emergency: tuple[str, ...] = (), **fields: Any) -> CheckOutcome:
    values: dict[str, Any] = {
        "users": [ADA, BOB, GLASS],
        "admin_roles": {ADA.id: frozenset({GLOBAL_ADMIN})},
        "enabled_auth_method_ids": POLICY,
        "conditional_access_policies": [],
        "registration_details": [
            registration(ADA, capable=True, admin=True, methods=["microsoftAuthenticatorPush"]),
            registration(BOB, capable=True, methods=["mobilePhone"]),
            registration(GLASS, capable=True, methods=["mobilePhone"]),
        ],
    }
    values.update(fields)
    return run_check(check, snapshot(**values), context(emergency_access_accounts=emergency))


def rows(**methods: list[str]) -> list[Any]:
    people = {"ada": ADA, "bob": BOB, "glass": GLASS}
    return [
        registration(people[name], capable=True, admin=name == "ada", methods=registered)
        for name, registered in methods.items()
    ]


def subjects(outcome: CheckOutcome) -> set[str]:
    return {finding.subject_id for finding in outcome.findings}


def test_an_admin_with_only_authenticator_fails_naming_the_admin_and_the_role() -> None:
    outcome = run()
    assert outcome.status is Status.FAIL
    (finding,) = outcome.findings
    assert finding.subject_id == ADA.id
    assert finding.subject_type == "user"
    assert finding.severity == "high"
    assert "Ada Admin" in finding.detail and ADA.user_principal_name in finding.detail
    assert "Global Administrator" in finding.detail
    assert finding.evidence["roles"] == ["Global Administrator"]
    assert finding.evidence["methodsRegistered"] == ["microsoftAuthenticatorPush"]
    assert finding.evidence["emergencyAccess"] is False


def test_admins_with_fido2_windows_hello_passkey_or_platform_credential_pass() -> None:
    for methods in (
        ["fido2", "mobilePhone"],
        ["windowsHelloForBusiness"],
        ["passKeyDeviceBound"],
        ["macOsSecureEnclaveKey"],
    ):
        outcome = run(registration_details=rows(ada=methods, bob=["email"]))
        assert outcome.status is Status.PASS, methods
    assert run(registration_details=rows(ada=["fido2"])).evidence["admins"] == 1


def test_fido2_switched_off_in_the_methods_policy_does_not_count() -> None:
    outcome = run(
        registration_details=rows(ada=["fido2"]), enabled_auth_method_ids=frozenset({"MicrosoftAuthenticator"})
    )
    assert outcome.status is Status.FAIL
    (finding,) = outcome.findings
    assert finding.evidence["phishingResistantSwitchedOff"] == ["fido2"]
    assert "switched off" in finding.detail


def test_windows_hello_counts_without_any_policy_configuration() -> None:
    outcome = run(registration_details=rows(ada=["windowsHelloForBusiness"]), enabled_auth_method_ids=frozenset())
    assert outcome.status is Status.PASS


def test_an_emergency_account_named_by_upn_is_resolved_and_judged_though_it_holds_no_role() -> None:
    upn = GLASS.user_principal_name.upper()  # the setting is lower-cased; compare case-insensitively anyway
    outcome = run(emergency=(upn.lower(),), registration_details=rows(ada=["fido2"], glass=["mobilePhone"]))
    assert outcome.status is Status.FAIL
    (finding,) = outcome.findings
    assert finding.subject_id == GLASS.id
    assert "emergency-access account" in finding.detail
    assert finding.evidence["emergencyAccess"] is True and finding.evidence["isAdmin"] is False
    # By object id too; and one with a security key passes.
    assert subjects(run(emergency=(GLASS.id,), registration_details=rows(ada=["fido2"]))) == set()
    assert run(emergency=(GLASS.id,), registration_details=rows(ada=["fido2"], glass=["fido2"])).status is Status.PASS


def test_an_emergency_account_of_another_tenant_is_neither_judged_nor_named() -> None:
    outcome = run(emergency=("someone@fabrikam.example",), registration_details=rows(ada=["fido2"]))
    assert outcome.status is Status.PASS
    assert "fabrikam" not in str(outcome)


def test_the_report_isadmin_counts_as_admin_without_a_role_assignment() -> None:
    outcome = run(admin_roles={}, registration_details=rows(ada=["mobilePhone"]))
    (finding,) = outcome.findings
    assert finding.subject_id == ADA.id
    assert "administrator role (per the registration report)" in finding.detail


def test_a_role_holder_whose_report_row_says_no_admin_is_still_judged() -> None:
    # The report lags behind new assignments; the role assignment is the fresher fact.
    outcome = run(admin_roles={BOB.id: frozenset({EXCHANGE_ADMIN})}, registration_details=rows(bob=["mobilePhone"]))
    assert subjects(outcome) == {BOB.id}
    assert outcome.findings[0].evidence["roles"] == ["Exchange Administrator"]


def test_disabled_admins_are_not_judged() -> None:
    disabled = user("ada", display_name="Ada Admin", enabled=False)
    assert run(users=[disabled, BOB, GLASS]).status is Status.PASS


def test_conditional_access_evidence_names_a_policy_demanding_phishing_resistance_for_the_role() -> None:
    by_role = ca_policy(
        "Admins phishing-resistant",
        conditions={"users": {"includeUsers": [], "includeRoles": [GLOBAL_ADMIN]}},
        grantControls={"builtInControls": [], "authenticationStrength": PHISHING_RESISTANT_STRENGTH},
    )
    plain_mfa = ca_policy("Everyone MFA")
    (finding,) = run(conditional_access_policies=[by_role, plain_mfa]).findings
    assert finding.evidence["conditionalAccessRequiresPhishingResistant"] is True
    assert finding.evidence["conditionalAccessPolicies"] == ["Admins phishing-resistant"]
    assert "cannot sign in where that policy applies" in finding.detail


def test_conditional_access_evidence_is_false_for_plain_mfa_other_roles_exclusions_or_report_only() -> None:
    strength = {"builtInControls": [], "authenticationStrength": PHISHING_RESISTANT_STRENGTH}
    other_role = ca_policy(
        "Exchange admins",
        conditions={"users": {"includeUsers": [], "includeRoles": [EXCHANGE_ADMIN]}},
        grantControls=strength,
    )
    excluded = ca_policy("All but Ada", conditions={"users": {"excludeUsers": [ADA.id]}}, grantControls=strength)
    report_only = ca_policy("Pilot", state="enabledForReportingButNotEnforced", grantControls=strength)
    custom_weak = ca_policy(
        "Custom",
        grantControls={
            "builtInControls": [],
            "authenticationStrength": {"id": "x", "allowedCombinations": ["fido2", "sms"]},
        },
    )
    (finding,) = run(
        conditional_access_policies=[ca_policy("MFA"), other_role, excluded, report_only, custom_weak]
    ).findings
    assert finding.evidence["conditionalAccessRequiresPhishingResistant"] is False
    assert finding.evidence["conditionalAccessPolicies"] == []


def test_a_custom_strength_of_phishing_resistant_combinations_only_counts_as_demanding_it() -> None:
    custom = ca_policy(
        "Custom strong",
        grantControls={
            "builtInControls": [],
            "authenticationStrength": {"id": "c", "allowedCombinations": ["fido2", "windowsHelloForBusiness"]},
        },
    )
    (finding,) = run(conditional_access_policies=[custom]).findings
    assert finding.evidence["conditionalAccessPolicies"] == ["Custom strong"]


BREAK_GLASS_GROUP = "0b0b0b0b-0000-4000-8000-00000000b6a5"


def demanded(policy: dict[str, Any], **fields: Any) -> list[str]:
    """The policies the evidence says demand phishing resistance of Ada (the one finding)."""
    (finding,) = run(conditional_access_policies=[policy], **fields).findings
    policies: list[str] = finding.evidence["conditionalAccessPolicies"]
    assert finding.evidence["conditionalAccessRequiresPhishingResistant"] is bool(policies)
    return policies


def test_an_excluded_group_the_admin_is_in_or_may_be_in_takes_the_policy_out_of_the_evidence() -> None:
    # "All users but the break-glass group": the evidence never claims a policy the admin is out of.
    policy = ca_policy(
        "PR for all",
        conditions={"users": {"includeUsers": ["All"], "excludeGroups": [BREAK_GLASS_GROUP]}},
        grantControls={"builtInControls": [], "authenticationStrength": PHISHING_RESISTANT_STRENGTH},
    )
    assert demanded(policy, group_members={BREAK_GLASS_GROUP: frozenset({ADA.id})}) == []
    # Members unknown (not resolved, or unreadable): possibly excluded, so not claimed either.
    assert demanded(policy, group_members={}) == []
    assert demanded(policy, group_members=PERMISSION_MISSING) == []
    # A group the admin is not in leaves the policy demanding it.
    assert demanded(policy, group_members={BREAK_GLASS_GROUP: frozenset({BOB.id})}) == ["PR for all"]


def test_a_policy_excluding_guests_does_not_demand_it_of_a_guest_admin() -> None:
    guest = user("gus", guest=True, display_name="Gus Guest")
    policy = ca_policy(
        "PR for admins",
        conditions={
            "users": {
                "includeUsers": [],
                "includeRoles": [GLOBAL_ADMIN],
                "excludeGuestsOrExternalUsers": {"guestOrExternalUserTypes": "b2bCollaborationGuest"},
            }
        },
        grantControls={"builtInControls": [], "authenticationStrength": PHISHING_RESISTANT_STRENGTH},
    )
    values: dict[str, Any] = {
        "users": [guest],
        "admin_roles": {guest.id: frozenset({GLOBAL_ADMIN})},
        "registration_details": [registration(guest, capable=True, methods=["mobilePhone"])],
    }
    (finding,) = run(conditional_access_policies=[policy], **values).findings
    assert finding.evidence["conditionalAccessPolicies"] == []
    legacy = ca_policy(
        "PR legacy token",
        conditions={"users": {"includeUsers": ["All"], "excludeUsers": ["GuestsOrExternalUsers"]}},
        grantControls={"builtInControls": [], "authenticationStrength": PHISHING_RESISTANT_STRENGTH},
    )
    (finding,) = run(conditional_access_policies=[legacy], **values).findings
    assert finding.evidence["conditionalAccessPolicies"] == []
    # A member admin is still under both.
    assert demanded(policy) == ["PR for admins"] and demanded(legacy) == ["PR legacy token"]


def test_a_strength_offered_or_another_control_is_not_demanded() -> None:
    def grant(operator: str, built_in: list[str]) -> dict[str, Any]:
        return ca_policy(
            f"{operator} {built_in}",
            grantControls={
                "operator": operator,
                "builtInControls": built_in,
                "authenticationStrength": PHISHING_RESISTANT_STRENGTH,
            },
        )

    # Strength OR a compliant device: a phishable sign-in from a compliant device gets through.
    assert demanded(grant("OR", ["compliantDevice"])) == []
    assert demanded(grant("OR", [])) == ["OR []"]  # the only control, whatever the operator
    assert demanded(grant("AND", ["compliantDevice"])) == ["AND ['compliantDevice']"]


def test_unreadable_policies_leave_the_evidence_unknown_never_the_verdict() -> None:
    outcome = run(conditional_access_policies=PERMISSION_MISSING)
    assert outcome.status is Status.FAIL
    assert outcome.findings[0].evidence["conditionalAccessRequiresPhishingResistant"] is None


def test_fallback_methods_are_judged_when_the_report_is_unlicensed() -> None:
    fido2 = "#microsoft.graph.fido2AuthenticationMethod"
    authenticator = "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod"
    outcome = run(
        registration_details=LICENCE_MISSING,
        user_auth_methods={ADA.id: (authenticator,), BOB.id: (), GLASS.id: (fido2,)},
        emergency=(GLASS.id,),
    )
    assert subjects(outcome) == {ADA.id}
    assert outcome.findings[0].evidence["source"] == "authenticationMethods"
    whfb = "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod"
    passing = run(registration_details=LICENCE_MISSING, user_auth_methods={ADA.id: (whfb,)})
    assert passing.status is Status.PASS


def test_not_assessed_without_report_or_fallback() -> None:
    outcome = run(registration_details=LICENCE_MISSING)
    assert (outcome.status, outcome.reason_code) == (Status.NOT_ASSESSED, "licence:AAD_PREMIUM")
    failed = Unavailable("throttled for good", "error:TooManyRequests")
    both = run(registration_details=LICENCE_MISSING, user_auth_methods=failed)
    assert both.status is Status.NOT_ASSESSED and "failed too" in (both.reason or "")


def test_not_assessed_when_role_assignments_are_unreadable() -> None:
    denied = Unavailable("denied", "permission:RoleManagement.Read.Directory")
    outcome = run(admin_roles=denied)
    assert (outcome.status, outcome.reason_code) == (Status.NOT_ASSESSED, "permission:RoleManagement.Read.Directory")
    assert "who the admins are" in (outcome.reason or "")


def test_not_assessed_for_an_admin_neither_source_has() -> None:
    outcome = run(registration_details=rows(bob=["mobilePhone"]))  # Ada's row missing, no fallback
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.evidence["unassessed_users"] == 1


def test_an_unread_methods_policy_leaves_a_fido2_admin_unjudged_but_still_fails_one_without_any() -> None:
    unread = Unavailable("denied", "permission:Policy.Read.AuthenticationMethod")
    undecided = run(registration_details=rows(ada=["fido2"]), enabled_auth_method_ids=unread)
    assert (undecided.status, undecided.reason_code) == (
        Status.NOT_ASSESSED,
        "permission:Policy.Read.AuthenticationMethod",
    )
    failing = run(registration_details=rows(ada=["mobilePhone"]), enabled_auth_method_ids=unread)
    assert failing.status is Status.FAIL
    hello = run(registration_details=rows(ada=["windowsHelloForBusiness"]), enabled_auth_method_ids=unread)
    assert hello.status is Status.PASS


def test_every_role_in_the_name_table_is_a_guid_lower_cased() -> None:
    for role_id in BUILT_IN_ROLE_NAMES:
        assert role_id == role_id.lower() and len(role_id) == 36

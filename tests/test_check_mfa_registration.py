"""mfa.registration: every enabled user is MFA capable (SPEC §1)."""

from __future__ import annotations

import pytest

from checks import mfa_registration
from partnerguard.model import CheckOutcome, DataUnavailable, Severity, Status, SubjectType, Unavailable
from tests.snapshot_builders import LICENCE_MISSING, context, registration, snapshot, user

AUTHENTICATOR = "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod"
PHONE = "#microsoft.graph.phoneAuthenticationMethod"
FIDO2 = "#microsoft.graph.fido2AuthenticationMethod"
HELLO = "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod"
PASSWORD = "#microsoft.graph.passwordAuthenticationMethod"
EMAIL = "#microsoft.graph.emailAuthenticationMethod"
TAP = "#microsoft.graph.temporaryAccessPassAuthenticationMethod"
ALL_ENABLED = frozenset(
    {
        "Fido2",
        "MicrosoftAuthenticator",
        "Sms",
        "Voice",
        "SoftwareOath",
        "HardwareOath",
        "X509Certificate",
        "TemporaryAccessPass",
        "Email",
    }
)


def run(**fields) -> CheckOutcome:
    include_guests = fields.pop("include_guests", False)
    return mfa_registration.execute(snapshot(**fields), context(include_guests=include_guests))


def subject_ids(outcome: CheckOutcome) -> list[str]:
    return [finding.subject_id for finding in outcome.findings]


def test_all_capable_passes():
    alice, bob = user("alice"), user("bob")
    outcome = run(
        users=[alice, bob],
        registration_details=[registration(alice, capable=True), registration(bob, capable=True)],
    )
    assert outcome.status is Status.PASS
    assert outcome.findings == ()


def test_incapable_member_fails_high_with_user_subject_and_evidence():
    alice = user("alice", display_name="Alice Example")
    outcome = run(users=[alice], registration_details=[registration(alice, capable=False, methods=["email"])])
    assert outcome.status is Status.FAIL
    (finding,) = outcome.findings
    assert finding.subject_id == alice.id
    assert finding.subject_type is SubjectType.USER
    assert finding.subject_name == "Alice Example"
    assert finding.severity is Severity.HIGH
    assert finding.evidence["userPrincipalName"] == "alice@contoso.example"
    assert finding.evidence["methodsRegistered"] == ["email"]
    assert finding.evidence["isAdmin"] is False
    assert "do not count for MFA" in finding.detail


def test_registered_but_disallowed_method_is_explained():
    alice = user("alice")
    outcome = run(
        users=[alice],
        registration_details=[registration(alice, capable=False, registered=True, methods=["mobilePhone"])],
    )
    (finding,) = outcome.findings
    assert "policy does not allow it" in finding.detail


def test_admin_is_critical():
    admin = user("admin")
    outcome = run(users=[admin], registration_details=[registration(admin, capable=False, admin=True)])
    (finding,) = outcome.findings
    assert finding.severity is Severity.CRITICAL
    assert finding.evidence["isAdmin"] is True
    assert "administrator" in finding.detail


def test_disabled_accounts_are_ignored():
    gone = user("gone", enabled=False)
    outcome = run(users=[gone], registration_details=[registration(gone, capable=False)])
    assert outcome.status is Status.PASS


def test_disabled_account_missing_from_report_is_not_unassessed():
    # The report omits disabled users: that must not make the check not_assessed.
    outcome = run(users=[user("gone", enabled=False)], registration_details=[])
    assert outcome.status is Status.PASS


@pytest.mark.parametrize(("include_guests", "expected"), [(False, Status.PASS), (True, Status.FAIL)])
def test_guests_only_with_include_guests(include_guests, expected):
    guest = user("visitor", guest=True)
    outcome = run(
        users=[guest],
        registration_details=[registration(guest, capable=False)],
        include_guests=include_guests,
    )
    assert outcome.status is expected
    if expected is Status.FAIL:
        assert subject_ids(outcome) == [guest.id]


def test_service_accounts_are_reported_like_any_user():
    svc = user("svc-backup", display_name="Backup service account")
    outcome = run(users=[svc], registration_details=[registration(svc, capable=False)])
    assert subject_ids(outcome) == [svc.id]


def test_users_missing_from_report_without_fallback_are_not_assessed_with_count():
    alice, bob, carol = user("alice"), user("bob"), user("carol")
    outcome = run(users=[alice, bob, carol], registration_details=[registration(alice, capable=False)])
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.evidence == {
        "unassessed_users": 2, "not_reached_users": 0, "unreadable_users": 0,
        "in_scope_users": 3, "assessed_users": 1, "mfa_capable_users": 0,
    }
    # The findings it could make are still reported.
    assert subject_ids(outcome) == [alice.id]
    assert "2 enabled user(s)" in (outcome.reason or "")


def test_users_missing_from_report_are_judged_through_fallback():
    alice, bob = user("alice"), user("bob")
    outcome = run(
        users=[alice, bob],
        registration_details=[registration(alice, capable=True)],
        user_auth_methods={bob.id: [PASSWORD, EMAIL]},
        enabled_auth_method_ids=ALL_ENABLED,
        admin_user_ids=frozenset(),
    )
    assert outcome.status is Status.FAIL
    (finding,) = outcome.findings
    assert finding.subject_id == bob.id
    assert finding.evidence["source"] == "authenticationMethods"
    assert finding.evidence["methodsRegistered"] == ["password", "email"]


def test_unlicensed_report_uses_fallback_for_everyone_with_note():
    alice, bob, admin = user("alice"), user("bob"), user("admin")
    outcome = run(
        users=[alice, bob, admin],
        registration_details=LICENCE_MISSING,
        user_auth_methods={
            alice.id: [PASSWORD, AUTHENTICATOR],
            bob.id: [PASSWORD, TAP],
            admin.id: [PASSWORD],
        },
        enabled_auth_method_ids=ALL_ENABLED,
        admin_user_ids=frozenset({admin.id}),
    )
    assert outcome.status is Status.FAIL
    assert sorted(subject_ids(outcome)) == sorted([bob.id, admin.id])
    severities = {finding.subject_id: finding.severity for finding in outcome.findings}
    assert severities[admin.id] is Severity.CRITICAL
    assert severities[bob.id] is Severity.HIGH
    assert outcome.note and "registration report could not be read" in outcome.note


def test_fallback_counts_methods_only_when_enabled_in_policy():
    alice = user("alice")
    common = {"users": [alice], "registration_details": LICENCE_MISSING, "admin_user_ids": frozenset()}
    off = run(
        **common,
        user_auth_methods={alice.id: [PASSWORD, FIDO2]},
        enabled_auth_method_ids=frozenset({"MicrosoftAuthenticator"}),
    )
    on = run(
        **common,
        user_auth_methods={alice.id: [PASSWORD, FIDO2]},
        enabled_auth_method_ids=frozenset({"Fido2"}),
    )
    assert off.status is Status.FAIL
    assert "switched off" in off.findings[0].detail
    assert on.status is Status.PASS


def test_phone_qualifies_through_sms_or_voice():
    alice = user("alice")
    common = {
        "users": [alice],
        "registration_details": LICENCE_MISSING,
        "user_auth_methods": {alice.id: [PHONE]},
    }
    assert run(**common, enabled_auth_method_ids=frozenset({"Voice"})).status is Status.PASS
    assert run(**common, enabled_auth_method_ids=frozenset({"Sms"})).status is Status.PASS
    assert run(**common, enabled_auth_method_ids=frozenset({"Email"})).status is Status.FAIL


def test_windows_hello_is_not_governed_by_the_methods_policy():
    alice = user("alice")
    outcome = run(
        users=[alice],
        registration_details=LICENCE_MISSING,
        user_auth_methods={alice.id: [PASSWORD, HELLO]},
        enabled_auth_method_ids=frozenset(),
    )
    assert outcome.status is Status.PASS


def test_unknown_admin_roles_leave_is_admin_unknown():
    alice = user("alice")
    outcome = run(
        users=[alice],
        registration_details=LICENCE_MISSING,
        user_auth_methods={alice.id: [PASSWORD]},
        enabled_auth_method_ids=ALL_ENABLED,
        admin_user_ids=Unavailable("no role permission", "permission:RoleManagement.Read.Directory"),
    )
    (finding,) = outcome.findings
    assert finding.evidence["isAdmin"] is None
    assert finding.severity is Severity.HIGH


def test_fallback_admin_ids_raise_report_severity_too():
    admin = user("admin")
    outcome = run(
        users=[admin],
        registration_details=[registration(admin, capable=False, admin=False)],
        user_auth_methods={},
        enabled_auth_method_ids=ALL_ENABLED,
        admin_user_ids=frozenset({admin.id}),
    )
    assert outcome.findings[0].severity is Severity.CRITICAL


def test_time_budget_exhaustion_is_not_assessed():
    alice, bob = user("alice"), user("bob")
    outcome = run(
        users=[alice, bob],
        registration_details=LICENCE_MISSING,
        user_auth_methods={alice.id: [PASSWORD]},
        enabled_auth_method_ids=ALL_ENABLED,
        unassessed_user_ids=frozenset({bob.id}),
    )
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.evidence == {
        "unassessed_users": 1, "not_reached_users": 1, "unreadable_users": 0,
        "in_scope_users": 2, "assessed_users": 1, "mfa_capable_users": 0,
    }
    assert subject_ids(outcome) == [alice.id]
    assert "time budget" in (outcome.reason or "")
    assert "failed" not in (outcome.reason or "")


def test_failed_reads_are_counted_and_worded_apart_from_the_time_budget():
    alice, bob, carol, dave = user("alice"), user("bob"), user("carol"), user("dave")
    outcome = run(
        users=[alice, bob, carol, dave],
        registration_details=LICENCE_MISSING,
        # carol's methods are even in the map: a read that failed is never judged from stale data.
        user_auth_methods={alice.id: [PASSWORD], carol.id: [AUTHENTICATOR]},
        enabled_auth_method_ids=ALL_ENABLED,
        unassessed_user_ids=frozenset({bob.id}),
        unreadable_user_ids=frozenset({carol.id, dave.id}),
    )
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.evidence == {
        "unassessed_users": 3, "not_reached_users": 1, "unreadable_users": 2,
        "in_scope_users": 4, "assessed_users": 1, "mfa_capable_users": 0,
    }
    assert subject_ids(outcome) == [alice.id]
    reason = outcome.reason or ""
    assert "3 enabled user(s)" in reason
    assert "1 were not reached because the scan's time budget ran out" in reason
    assert "2 could not be judged because reading their authentication methods failed" in reason


def test_only_failed_reads_do_not_blame_the_time_budget():
    alice, bob = user("alice"), user("bob")
    outcome = run(
        users=[alice, bob],
        registration_details=LICENCE_MISSING,
        user_auth_methods={alice.id: [AUTHENTICATOR]},
        enabled_auth_method_ids=ALL_ENABLED,
        unreadable_user_ids=frozenset({bob.id}),
    )
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.evidence == {
        "unassessed_users": 1, "not_reached_users": 0, "unreadable_users": 1,
        "in_scope_users": 2, "assessed_users": 1, "mfa_capable_users": 1,
    }
    assert "time budget" not in (outcome.reason or "")
    assert "failed" in (outcome.reason or "")


def test_in_scope_is_enabled_users_and_guests_only_when_included():
    assert mfa_registration.in_scope(user("alice"), include_guests=False)
    assert not mfa_registration.in_scope(user("gone", enabled=False), include_guests=True)
    assert not mfa_registration.in_scope(user("visitor", guest=True), include_guests=False)
    assert mfa_registration.in_scope(user("visitor", guest=True), include_guests=True)


def test_report_unavailable_without_fallback_returns_its_unavailable():
    outcome = run(users=[user("alice")], registration_details=LICENCE_MISSING)
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.reason_code == "licence:AAD_PREMIUM"
    assert outcome.findings == ()


def test_report_error_without_fallback_is_error():
    failure = Unavailable("Graph answered 500.", "error:500")
    outcome = run(users=[user("alice")], registration_details=failure)
    assert outcome.status is Status.ERROR


def test_failed_fallback_keeps_report_code_and_adds_reason():
    outcome = run(
        users=[user("alice")],
        registration_details=LICENCE_MISSING,
        user_auth_methods=Unavailable(
            "Missing UserAuthenticationMethod.Read.All.", "permission:UserAuthenticationMethod.Read.All"
        ),
        enabled_auth_method_ids=ALL_ENABLED,
    )
    assert outcome.reason_code == "licence:AAD_PREMIUM"
    assert "UserAuthenticationMethod.Read.All" in (outcome.reason or "")


def test_failed_fallback_for_missing_users_gives_its_code():
    alice, bob = user("alice"), user("bob")
    outcome = run(
        users=[alice, bob],
        registration_details=[registration(alice, capable=True)],
        user_auth_methods=Unavailable("denied", "permission:UserAuthenticationMethod.Read.All"),
    )
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.reason_code == "permission:UserAuthenticationMethod.Read.All"
    assert outcome.evidence == {
        "unassessed_users": 1, "not_reached_users": 0, "unreadable_users": 0,
        "in_scope_users": 2, "assessed_users": 1, "mfa_capable_users": 1,
    }


def test_users_unavailable_stops_the_check():
    with pytest.raises(DataUnavailable):
        run(users=Unavailable("denied", "permission:User.Read.All"), registration_details=[])


def test_findings_are_sorted_by_subject_id():
    people = [user(name) for name in ("zoe", "adam", "mia", "li")]
    outcome = run(users=people, registration_details=[registration(p, capable=False) for p in people])
    assert subject_ids(outcome) == sorted(p.id for p in people)


def test_subject_name_is_capped_and_detail_never_quotes_it():
    hostile = "\x1b[31mEvil\u202e" + "x" * 1000
    alice = user("alice", display_name=hostile)
    (finding,) = run(users=[alice], registration_details=[registration(alice, capable=False)]).findings
    assert len(finding.subject_name) <= 256
    assert "Evil" not in finding.detail


def test_assessed_outcomes_carry_the_coverage_figures():
    """The HTML report's MFA coverage is capable / assessed users, from the check's evidence."""
    alice, bob, carol = user("alice"), user("bob"), user("carol")
    disabled = user("dave", enabled=False)
    details = [registration(alice, capable=False), registration(bob, capable=True), registration(carol, capable=True)]
    failing = run(users=[alice, bob, carol, disabled], registration_details=details)
    assert failing.status is Status.FAIL
    assert failing.evidence == {"in_scope_users": 3, "assessed_users": 3, "mfa_capable_users": 2}
    passing = run(users=[bob, carol], registration_details=details[1:])
    assert passing.status is Status.PASS
    assert passing.evidence == {"in_scope_users": 2, "assessed_users": 2, "mfa_capable_users": 2}

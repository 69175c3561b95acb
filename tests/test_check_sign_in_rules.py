"""The sign-in rules the collector runs on every sign-in it reads (checks.sign_in_matches)."""

from __future__ import annotations

import pytest

from checks import SIGN_IN_RULE_IDS, legacy_auth_sign_ins, sam_password_grant, sign_in_matches, sign_ins_single_factor
from checks.support.sign_in_evidence import SignInMatch
from tests.snapshot_builders import APPS, sign_in, user

LEGACY = "legacy-auth.sign-ins"
SINGLE_FACTOR = "sign-ins.single-factor"
ROPC = "sam.password-grant"


def rules(item) -> list[str]:
    return [match.rule for match in sign_in_matches(item)]


def test_rule_ids_are_the_three_sign_in_checks_in_catalogue_order():
    assert SIGN_IN_RULE_IDS == (LEGACY, SINGLE_FACTOR, ROPC)


def test_a_modern_mfa_sign_in_matches_nothing():
    assert sign_in_matches(sign_in("alice")) == []


@pytest.mark.parametrize(
    "client_app",
    [
        "IMAP4",
        "POP3",
        "Authenticated SMTP",
        "Exchange ActiveSync",
        "Other clients",
        "Exchange Web Services",
        "MAPI Over HTTP",
        "Offline Address Book",
        "Outlook Anywhere (RPC over HTTP)",
        "Autodiscover",
    ],
)
def test_each_legacy_client_matches(client_app):
    (match,) = sign_in_matches(sign_in("alice", client_app=client_app))
    assert match.rule == LEGACY
    assert match.subject_id == f"{user('alice').id}|{client_app.lower()}"
    assert match.client_app_used == client_app


@pytest.mark.parametrize(
    "client_app",
    [
        "Browser",
        "browser",
        "BROWSER",
        "Mobile Apps and Desktop clients",
        "mobile apps and desktop CLIENTS",
        " Browser ",
    ],
)
def test_modern_clients_compare_case_insensitively(client_app):
    assert rules(sign_in("alice", client_app=client_app)) == []


@pytest.mark.parametrize("client_app", ["", "   ", None])
def test_empty_or_missing_client_app_is_not_legacy(client_app):
    assert rules(sign_in("alice", client_app=client_app)) == []


def test_legacy_subject_id_lower_cases_the_client_app_only():
    (match,) = sign_in_matches(sign_in("alice", client_app="IMAP4"))
    (other_casing,) = sign_in_matches(sign_in("alice", client_app="imap4"))
    assert match.subject_id == other_casing.subject_id == f"{user('alice').id}|imap4"


@pytest.mark.parametrize("interactive", [True, False])
def test_single_factor_interactive_and_non_interactive(interactive):
    (match,) = sign_in_matches(sign_in("bob", requirement="singleFactorAuthentication", interactive=interactive))
    assert match.rule == SINGLE_FACTOR
    assert match.subject_id == f"{user('bob').id}|{APPS['outlook'][0]}"
    assert match.app_display_name == "Microsoft Office"


def test_multi_factor_requirement_is_not_single_factor():
    assert rules(sign_in("bob", requirement="multiFactorAuthentication")) == []


def test_password_grant_is_keyed_app_first():
    (match,) = sign_in_matches(sign_in("svc", app="script", protocol="ropc", requirement="multiFactorAuthentication"))
    assert match.rule == ROPC
    assert match.subject_id == f"{APPS['script'][0]}|{user('svc').id}"


def test_one_sign_in_can_match_every_rule():
    item = sign_in(
        "svc", app="script", client_app="Other clients", requirement="singleFactorAuthentication", protocol="ropc"
    )
    found = sign_in_matches(item)
    assert [match.rule for match in found] == [LEGACY, SINGLE_FACTOR, ROPC]
    assert all(isinstance(match, SignInMatch) for match in found)
    assert {match.user_principal_name for match in found} == {"svc@contoso.example"}


@pytest.mark.parametrize("error_code", [50126, 50074, 53003, 500121])
def test_failed_sign_ins_match_nothing(error_code):
    item = sign_in(
        "eve", client_app="IMAP4", requirement="singleFactorAuthentication", protocol="ropc", error_code=error_code
    )
    assert sign_in_matches(item) == []


@pytest.mark.parametrize("status", [None, {}, {"errorCode": None}, {"errorCode": "0"}, {"errorCode": False}, "success"])
def test_unreadable_status_is_not_success(status):
    item = sign_in("eve", client_app="IMAP4")
    item["status"] = status
    assert sign_in_matches(item) == []


def test_service_principal_and_managed_identity_sign_ins_are_not_user_sign_ins():
    for event_type in ("servicePrincipal", "managedIdentity"):
        item = sign_in("svc", requirement="singleFactorAuthentication", signInEventTypes=[event_type])
        assert sign_in_matches(item) == []
    no_user = sign_in("svc", requirement="singleFactorAuthentication")
    no_user["userId"] = ""
    assert sign_in_matches(no_user) == []


def test_guests_sign_ins_count():
    (match,) = sign_in_matches(sign_in("guest", guest=True, requirement="singleFactorAuthentication"))
    assert match.user_id == user("guest", guest=True).id


def test_missing_app_id_still_gives_a_complete_subject_id():
    item = sign_in("bob", requirement="singleFactorAuthentication")
    item["appId"] = None
    (match,) = sign_in_matches(item)
    assert match.subject_id == f"{user('bob').id}|unknown-app"


def test_hostile_names_are_bounded_and_mistyped_fields_tolerated():
    item = sign_in("bob", requirement="singleFactorAuthentication")
    item["userDisplayName"] = "\x1b[31m" + "x" * 5000
    item["appDisplayName"] = {"not": "a string"}
    (match,) = sign_in_matches(item)
    assert len(match.user_display_name) == 256
    assert match.app_display_name == ""


def test_each_check_module_owns_its_rule():
    item = sign_in("svc", app="script", client_app="POP3", requirement="singleFactorAuthentication", protocol="ropc")
    legacy = legacy_auth_sign_ins.classify_sign_in(item)
    single = sign_ins_single_factor.classify_sign_in(item)
    ropc = sam_password_grant.classify_sign_in(item)
    assert legacy is not None and legacy.rule == legacy_auth_sign_ins.METADATA.id
    assert single is not None and single.rule == sign_ins_single_factor.METADATA.id
    assert ropc is not None and ropc.rule == sam_password_grant.METADATA.id

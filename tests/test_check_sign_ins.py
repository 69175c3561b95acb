"""The three sign-in checks over stored aggregates: the window, one finding per subject, evidence."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from checks import CheckModule, legacy_auth_sign_ins, sam_password_grant, sign_ins_single_factor
from partnerguard.evaluate import run_check
from partnerguard.model import CheckOutcome, Severity, Status, SubjectType, Unavailable
from tests.snapshot_builders import (
    APPS,
    LICENCE_MISSING,
    NOW,
    aggregates_of,
    context,
    sign_in,
    snapshot,
    user,
)

SIGN_IN_CHECKS = (legacy_auth_sign_ins, sign_ins_single_factor, sam_password_grant)
HOURS = 168
EDGE = NOW - timedelta(hours=HOURS)


def run(check: CheckModule, aggregates, **context_fields) -> CheckOutcome:
    return check.execute(snapshot(sign_in_aggregates=aggregates), context(**context_fields))


def subjects(outcome: CheckOutcome) -> list[str]:
    return [finding.subject_id for finding in outcome.findings]


# One sign-in of each kind; each rule must see only its own aggregates.
LEGACY_SIGN_IN = sign_in("alice", client_app="IMAP4")
SINGLE_FACTOR_SIGN_IN = sign_in("bob", requirement="singleFactorAuthentication", interactive=False)
ROPC_SIGN_IN = sign_in("svc", app="script", protocol="ropc")
EVERY_KIND = aggregates_of(LEGACY_SIGN_IN, SINGLE_FACTOR_SIGN_IN, ROPC_SIGN_IN)


@pytest.mark.parametrize("check", SIGN_IN_CHECKS, ids=lambda c: c.METADATA.id)
def test_findings_resolve_as_no_longer_observed(check):
    assert check.METADATA.evidence_window is True


@pytest.mark.parametrize("check", SIGN_IN_CHECKS, ids=lambda c: c.METADATA.id)
def test_no_aggregates_passes_and_names_the_window(check):
    outcome = run(check, [])
    assert outcome.status is Status.PASS
    assert outcome.evidence == {"lookbackHours": HOURS, "windowStart": EDGE.isoformat()}


def test_each_check_reports_only_its_own_rule():
    assert subjects(run(legacy_auth_sign_ins, EVERY_KIND)) == [f"{user('alice').id}|imap4"]
    assert subjects(run(sign_ins_single_factor, EVERY_KIND)) == [f"{user('bob').id}|{APPS['outlook'][0]}"]
    assert subjects(run(sam_password_grant, EVERY_KIND)) == [f"{APPS['script'][0]}|{user('svc').id}"]


@pytest.mark.parametrize(
    ("check", "item"),
    [
        (legacy_auth_sign_ins, LEGACY_SIGN_IN),
        (sign_ins_single_factor, SINGLE_FACTOR_SIGN_IN),
        (sam_password_grant, ROPC_SIGN_IN),
    ],
    ids=["legacy", "single-factor", "ropc"],
)
def test_window_edge_is_inclusive_and_one_second_outside_is_not(check, item):
    at_edge = aggregates_of(item, last_seen=EDGE, first_seen=EDGE - timedelta(days=3))
    outside = aggregates_of(item, last_seen=EDGE - timedelta(seconds=1))
    assert run(check, at_edge).status is Status.FAIL
    assert run(check, outside).status is Status.PASS
    assert run(check, outside).findings == ()


def test_lookback_setting_moves_the_window():
    old = aggregates_of(LEGACY_SIGN_IN, last_seen=NOW - timedelta(hours=30))
    assert run(legacy_auth_sign_ins, old, signin_lookback_hours=24).status is Status.PASS
    assert run(legacy_auth_sign_ins, old, signin_lookback_hours=48).status is Status.FAIL


def test_a_sign_in_later_than_now_still_counts():
    skewed = aggregates_of(LEGACY_SIGN_IN, last_seen=NOW + timedelta(minutes=5))
    assert run(legacy_auth_sign_ins, skewed).status is Status.FAIL


def test_legacy_finding_carries_the_evidence():
    aggregates = [
        replace(aggregate, count=7, event_types=("interactiveUser", "nonInteractiveUser"))
        for aggregate in aggregates_of(LEGACY_SIGN_IN, first_seen=NOW - timedelta(days=20), last_seen=NOW)
    ]
    (finding,) = run(legacy_auth_sign_ins, aggregates).findings
    assert finding.subject_type is SubjectType.USER
    assert finding.subject_name == "Alice"
    assert finding.severity is Severity.HIGH
    assert "7 successful sign-in(s)" in finding.detail and "IMAP4" in finding.detail
    assert finding.evidence == {
        "userId": user("alice").id,
        "userPrincipalName": "alice@contoso.example",
        "appId": APPS["outlook"][0],
        "appDisplayName": "Microsoft Office",
        "clientAppUsed": "IMAP4",
        "firstSeen": (NOW - timedelta(days=20)).isoformat(),
        "lastSeen": NOW.isoformat(),
        "signInCount": 7,
        "eventTypes": ["interactiveUser", "nonInteractiveUser"],
    }


def test_password_grant_finding_is_about_the_application():
    (finding,) = run(sam_password_grant, EVERY_KIND).findings
    assert finding.subject_type is SubjectType.APPLICATION
    assert finding.subject_name == "Nightly export script"
    assert "svc@contoso.example" in finding.detail


def test_single_factor_finding_names_user_and_app():
    (finding,) = run(sign_ins_single_factor, EVERY_KIND).findings
    assert finding.subject_type is SubjectType.USER
    assert finding.subject_name == "Bob"
    assert "Microsoft Office" in finding.detail


def test_one_finding_per_subject_across_apps_and_clients():
    aggregates = aggregates_of(
        sign_in("alice", client_app="IMAP4"),
        sign_in("alice", client_app="POP3"),
        sign_in("carol", client_app="imap4"),
    )
    outcome = run(legacy_auth_sign_ins, aggregates)
    assert subjects(outcome) == sorted(
        [f"{user('alice').id}|imap4", f"{user('alice').id}|pop3", f"{user('carol').id}|imap4"]
    )


def test_duplicate_aggregates_of_one_subject_merge_into_one_finding():
    (first,) = aggregates_of(LEGACY_SIGN_IN, first_seen=NOW - timedelta(days=2), last_seen=NOW - timedelta(days=1))
    second = replace(
        first, first_seen=NOW - timedelta(days=1), last_seen=NOW, count=3, event_types=("nonInteractiveUser",)
    )
    (finding,) = run(legacy_auth_sign_ins, [first, second]).findings
    assert finding.evidence["signInCount"] == 4
    assert finding.evidence["firstSeen"] == (NOW - timedelta(days=2)).isoformat()
    assert finding.evidence["lastSeen"] == NOW.isoformat()
    assert finding.evidence["eventTypes"] == ["interactiveUser", "nonInteractiveUser"]


def test_disabled_users_and_guests_are_reported():
    # Sign-in evidence is evidence: the account's state today does not undo a sign-in.
    disabled = sign_in("departed", requirement="singleFactorAuthentication")
    guest = sign_in("visitor", guest=True, requirement="singleFactorAuthentication")
    outcome = sign_ins_single_factor.execute(
        snapshot(
            sign_in_aggregates=aggregates_of(disabled, guest),
            users=[user("departed", enabled=False), user("visitor", guest=True)],
        ),
        context(include_guests=False),
    )
    assert {finding.evidence["userId"] for finding in outcome.findings} == {
        user("departed").id,
        user("visitor", guest=True).id,
    }


def test_failed_sign_ins_never_reach_an_aggregate():
    failed = sign_in(
        "eve", client_app="IMAP4", requirement="singleFactorAuthentication", protocol="ropc", error_code=50126
    )
    assert aggregates_of(failed) == []


@pytest.mark.parametrize("check", SIGN_IN_CHECKS, ids=lambda c: c.METADATA.id)
def test_unlicensed_tenant_is_not_assessed_with_the_licence_named(check):
    outcome = run_check(check, snapshot(sign_in_aggregates=LICENCE_MISSING), context())
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.reason_code == "licence:AAD_PREMIUM"
    assert outcome.reason == LICENCE_MISSING.reason


@pytest.mark.parametrize("check", SIGN_IN_CHECKS, ids=lambda c: c.METADATA.id)
def test_missing_permission_and_errors_never_pass(check):
    permission = Unavailable("The app lacks AuditLog.Read.All.", "permission:AuditLog.Read.All")
    assert run_check(check, snapshot(sign_in_aggregates=permission), context()).status is Status.NOT_ASSESSED
    # Not collected at all (the snapshot's default): an error, visibly.
    assert run_check(check, snapshot(), context()).status is Status.ERROR

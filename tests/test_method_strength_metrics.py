"""The report's method-strength metrics (SPEC §2 `metrics`): what they count, from which source,
when they are left out, how they travel in the document and in storage, and how the HTML report
shows them. The end-to-end comparison with the simulator's ground truth is in
tests/test_method_strength_scan.py."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from azure.data.tables import UpdateMode

from checks import mfa_phishing_resistant_admins as phishing_resistant_admins
from checks.support.method_strength import relies_on_phone_only, report_method_names
from partnerguard.evaluate import run_check
from partnerguard.method_strength_metrics import method_strength_metrics
from partnerguard.model import RegistrationReadInfo, Report, ReportMetrics, Status, TenantInfo, Unavailable
from partnerguard.render.html_report import render_html_reports
from partnerguard.render.json_document import render_json
from partnerguard.storage import ScanStore
from partnerguard.storage.keys import tenant_key
from tests.method_strength_harness import StrengthFigure, strength_figures
from tests.report_builders import report as built_report
from tests.snapshot_builders import LICENCE_MISSING, NOW, context, registration, snapshot, user

G = "#microsoft.graph."
POLICY = frozenset({"MicrosoftAuthenticator", "Fido2", "Sms"})
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"

alice, bob, carol, dave = user("alice"), user("bob"), user("carol"), user("dave")
disabled, guest = user("disabled", enabled=False), user("guest", guest=True)


def counts(metrics: ReportMetrics | None) -> dict[str, Any]:
    assert metrics is not None
    document = metrics.to_document()
    document.pop("as_of")
    return document


def test_report_rows_counted_for_the_users_mfa_registration_judges() -> None:
    rows = [
        registration(alice, capable=True, admin=True, methods=["fido2", "microsoftAuthenticatorPush"]),
        registration(bob, capable=True, methods=["mobilePhone", "email"]),
        registration(carol, capable=True, methods=["windowsHelloForBusiness"]),
        registration(dave, capable=False, methods=["email"]),
        # Out of scope: a disabled account, and a guest without INCLUDE_GUESTS.
        registration(disabled, capable=True, admin=True, methods=["fido2"]),
        registration(guest, capable=False, methods=["mobilePhone"]),
    ]
    # Carol holds a role the report does not flag: an admin as mfa.registration counts admins.
    tenant = snapshot(
        users=[alice, bob, carol, dave, disabled, guest],
        registration_details=rows,
        enabled_auth_method_ids=POLICY,
        admin_roles={carol.id: frozenset({GLOBAL_ADMIN})},
    )
    assert counts(method_strength_metrics(tenant, include_guests=False)) == {
        "users_in_scope": 4,
        "mfa_capable": 3,
        "phishing_resistant": 2,
        "phone_only": 1,
        "admins": 2,
        "admins_mfa_capable": 2,
        "admins_phishing_resistant": 2,
        "admins_phone_only": 0,
    }
    with_guests = counts(method_strength_metrics(tenant, include_guests=True))
    assert (with_guests["users_in_scope"], with_guests["phone_only"], with_guests["mfa_capable"]) == (5, 2, 3)


def test_a_security_key_the_methods_policy_switches_off_is_not_phishing_resistant() -> None:
    rows = [registration(alice, capable=True, admin=True, methods=["fido2", "mobilePhone"])]
    off = snapshot(users=[alice], registration_details=rows, enabled_auth_method_ids=frozenset({"Sms"}), admin_roles={})
    on = replace(off, enabled_auth_method_ids=POLICY)
    assert counts(method_strength_metrics(off, False))["admins_phishing_resistant"] == 0
    assert counts(method_strength_metrics(on, False))["admins_phishing_resistant"] == 1


def test_no_metrics_when_the_methods_policy_is_unread_even_if_the_report_has_everyone() -> None:
    # Every user has a report row, so nothing else is missing; but whether Ada's key counts is
    # the policy's to say: the check leaves her unjudged, and a figure counting the key on
    # registration alone would call her phishing-resistant.
    rows = [
        registration(alice, capable=True, admin=True, methods=["fido2SecurityKey"]),
        registration(bob, capable=True, methods=["mobilePhone"]),
    ]
    denied = Unavailable("denied", "permission:Policy.Read.AuthenticationMethod")
    tenant = snapshot(
        users=[alice, bob],
        registration_details=rows,
        enabled_auth_method_ids=denied,
        admin_roles={alice.id: frozenset({GLOBAL_ADMIN})},
    )
    assert run_check(phishing_resistant_admins, tenant, context()).status is Status.NOT_ASSESSED
    assert method_strength_metrics(tenant, False) is None
    assert method_strength_metrics(replace(tenant, enabled_auth_method_ids=None), False) is None  # not collected
    readable = counts(method_strength_metrics(replace(tenant, enabled_auth_method_ids=POLICY), False))
    assert readable["admins_phishing_resistant"] == 1


def test_admins_are_whom_the_phishing_resistant_check_judges() -> None:
    # A P1 tenant: every user has a report row, so the fallback does not run and
    # `admin_user_ids` stays unset; Alice holds Global Administrator but her row's isAdmin lags.
    rows = [
        registration(alice, capable=True, admin=False, methods=["microsoftAuthenticatorPush"]),
        registration(bob, capable=True, methods=["mobilePhone"]),
        registration(carol, capable=True, admin=True, methods=["mobilePhone"]),
    ]
    tenant = snapshot(
        users=[alice, bob, carol],
        registration_details=rows,
        enabled_auth_method_ids=POLICY,
        admin_roles={alice.id: frozenset({GLOBAL_ADMIN})},
        admin_user_ids=None,
    )
    check = run_check(phishing_resistant_admins, tenant, context())
    metrics = counts(method_strength_metrics(tenant, False))
    assert check.evidence["admins"] == metrics["admins"] == 2
    assert {finding.subject_id for finding in check.findings} == {alice.id, carol.id}
    assert (metrics["admins_phishing_resistant"], metrics["admins_phone_only"]) == (0, 1)
    # Without the role assignments nobody knows who the admins are: no figures, as the check
    # is not assessed.
    denied = Unavailable("denied", "permission:RoleManagement.Read.Directory")
    assert method_strength_metrics(replace(tenant, admin_roles=denied), False) is None
    assert method_strength_metrics(replace(tenant, admin_roles=None), False) is None


def test_a_fallback_users_methods_carry_the_reports_names_in_the_check_and_the_metrics() -> None:
    # Without P1, Alice (an admin) has a phone and a password: the check's evidence names her
    # methods as a report row would, and both the check's vocabulary and the metrics call her
    # reliant on a phone alone.
    phone_and_password = (G + "phoneAuthenticationMethod", G + "passwordAuthenticationMethod")
    tenant = snapshot(
        users=[alice],
        registration_details=LICENCE_MISSING,
        user_auth_methods={alice.id: phone_and_password},
        enabled_auth_method_ids=POLICY,
        admin_roles={alice.id: frozenset({GLOBAL_ADMIN})},
        admin_user_ids=frozenset({alice.id}),
    )
    (finding,) = run_check(phishing_resistant_admins, tenant, context()).findings
    assert finding.evidence["methodsRegistered"] == ["mobilePhone"]
    assert relies_on_phone_only(finding.evidence["methodsRegistered"])
    assert counts(method_strength_metrics(tenant, False))["admins_phone_only"] == 1
    # A switched-off key is named as the report names it, too.
    key = (G + "fido2AuthenticationMethod",)
    off = replace(tenant, user_auth_methods={alice.id: key}, enabled_auth_method_ids=frozenset({"Sms"}))
    (finding,) = run_check(phishing_resistant_admins, off, context()).findings
    assert finding.evidence["phishingResistantSwitchedOff"] == ["fido2SecurityKey"]


def test_as_of_is_the_roster_read_the_rows_come_from() -> None:
    roster_read = NOW - timedelta(hours=20)
    tenant = snapshot(
        users=[alice],
        registration_details=[registration(alice, capable=True)],
        registration_read=RegistrationReadInfo("filtered", roster_read),
        enabled_auth_method_ids=POLICY,
        admin_roles={},
    )
    metrics = method_strength_metrics(tenant, False)
    assert metrics is not None and metrics.as_of == roster_read
    full = replace(tenant, registration_read=RegistrationReadInfo("full", NOW))
    assert method_strength_metrics(full, False) == replace(metrics, as_of=NOW)


def test_unlicensed_tenant_counted_from_each_users_methods() -> None:
    methods = {
        alice.id: (G + "passwordAuthenticationMethod", G + "fido2AuthenticationMethod"),
        bob.id: (G + "passwordAuthenticationMethod", G + "phoneAuthenticationMethod", G + "emailAuthenticationMethod"),
        carol.id: (G + "platformCredentialAuthenticationMethod",),
        dave.id: (G + "passwordAuthenticationMethod", G + "temporaryAccessPassAuthenticationMethod"),
    }
    tenant = snapshot(
        users=[alice, bob, carol, dave, disabled],
        registration_details=LICENCE_MISSING,
        user_auth_methods=methods,
        enabled_auth_method_ids=POLICY,
        admin_roles={alice.id: frozenset({GLOBAL_ADMIN}), bob.id: frozenset({GLOBAL_ADMIN})},
    )
    metrics = method_strength_metrics(tenant, False)
    assert counts(metrics) == {
        "users_in_scope": 4,
        "mfa_capable": 3,
        "phishing_resistant": 2,
        "phone_only": 1,
        "admins": 2,
        "admins_mfa_capable": 2,
        "admins_phishing_resistant": 1,
        "admins_phone_only": 1,
    }
    # No report row: the methods were read (or taken from the day's cache) by this scan.
    assert metrics is not None and metrics.as_of == NOW
    # With Fido2 switched off, Alice's key neither makes her capable nor phishing-resistant.
    off = counts(method_strength_metrics(replace(tenant, enabled_auth_method_ids=frozenset({"Sms"})), False))
    assert (off["mfa_capable"], off["phishing_resistant"]) == (2, 1)


def test_report_names_of_the_fallbacks_methods() -> None:
    assert report_method_names(
        [G + "fido2AuthenticationMethod", "microsoft.graph.windowsHelloForBusinessAuthenticationMethod"]
    ) == ("fido2SecurityKey", "windowsHelloForBusiness")
    # The password and unknown types have no name in the report: they count for nothing.
    assert report_method_names([G + "passwordAuthenticationMethod", G + "somethingNewAuthenticationMethod"]) == ()


@pytest.mark.parametrize(
    "gap",
    ["users unreadable", "budget ran out", "methods unreadable", "not read", "roles unreadable", "policy unreadable"],
)
def test_no_metrics_when_some_user_in_scope_cannot_be_judged(gap: str) -> None:
    methods = {bob.id: (G + "microsoftAuthenticatorAuthenticationMethod",)}
    tenant = snapshot(
        users=[alice, bob],
        registration_details=[registration(alice, capable=True)],  # bob is not in the report
        user_auth_methods=methods,
        enabled_auth_method_ids=POLICY,
        admin_roles={},
    )
    assert method_strength_metrics(tenant, False) is not None
    broken = {
        "users unreadable": replace(tenant, users=LICENCE_MISSING),
        "budget ran out": replace(tenant, unassessed_user_ids=frozenset({bob.id})),
        "methods unreadable": replace(tenant, unreadable_user_ids=frozenset({bob.id})),
        "not read": replace(tenant, user_auth_methods={}),
        "roles unreadable": replace(tenant, admin_roles=LICENCE_MISSING),
        "policy unreadable": replace(tenant, enabled_auth_method_ids=LICENCE_MISSING),
    }[gap]
    assert method_strength_metrics(broken, False) is None


METRICS = ReportMetrics(
    users_in_scope=3000,
    mfa_capable=2999,
    phishing_resistant=1,
    phone_only=0,
    admins=4,
    admins_mfa_capable=4,
    admins_phishing_resistant=3,
    admins_phone_only=0,
    as_of=NOW - timedelta(hours=3, microseconds=1),
)


def test_the_document_carries_metrics_only_when_known_and_reads_them_back() -> None:
    plain = built_report()
    assert "metrics" not in plain.to_document()
    with_metrics = replace(plain, metrics=METRICS)
    document = json.loads(render_json([with_metrics], many=False))
    assert document["metrics"] == {
        "users_in_scope": 3000,
        "mfa_capable": 2999,
        "phishing_resistant": 1,
        "phone_only": 0,
        "admins": 4,
        "admins_mfa_capable": 4,
        "admins_phishing_resistant": 3,
        "admins_phone_only": 0,
        "as_of": "2025-06-01T08:59:59Z",
    }
    # The document's times are whole seconds (SPEC §2).
    assert Report.from_document(document).metrics == replace(METRICS, as_of=METRICS.as_of.replace(microsecond=0))
    # A hand-edited document with incoherent figures renders without them rather than with nonsense.
    for bad in ({**document["metrics"], "mfa_capable": 3001}, {**document["metrics"], "admins": True}, "many"):
        assert Report.from_document({**document, "metrics": bad}).metrics is None


def figure(report: Report) -> StrengthFigure:
    figures = strength_figures(render_html_reports([report], None, NOW))
    assert list(figures) == [report.tenant.id]
    return figures[report.tenant.id]


def test_the_html_report_shows_three_figures_for_users_and_admins_with_counts_and_shares() -> None:
    page = figure(replace(built_report(), metrics=METRICS))
    assert page.headers == ["Registered methods", "All users (3000)", "Admins (4)"]
    assert page.rows == {
        # 2,999 of 3,000 never reads as 100 %, and 1 of 3,000 never as 0.0 %.
        "mfa_capable": [(2999, 3000, "99.9 % 2999 of 3000"), (4, 4, "100 % 4 of 4")],
        "phishing_resistant": [(1, 3000, "0.1 % 1 of 3000"), (3, 4, "75.0 % 3 of 4")],
        "phone_only": [(0, 3000, "0 % 0 of 3000"), (0, 4, "0 % 0 of 4")],
    }
    assert any("as of 2025-06-01 08:59 UTC" in note for note in page.notes)


def test_a_report_without_metrics_says_so_and_a_tenant_without_admins_reads_none() -> None:
    page = figure(built_report())
    assert page.rows == {}
    assert any(note.startswith("Not recorded for this run") for note in page.notes)
    no_admins = replace(METRICS, admins=0, admins_mfa_capable=0, admins_phishing_resistant=0)
    page = figure(replace(built_report(), metrics=no_admins))
    assert page.rows["mfa_capable"][1] == (0, 0, "none in scope")


def _complete(store: ScanStore, run_id: str | None, metrics: ReportMetrics | None) -> Report:
    tenant = TenantInfo(built_report().tenant.id, "Contoso", "partner")
    run = store.start_run(tenant, NOW, run_id)
    return store.complete_run(tenant, run, NOW, NOW + timedelta(minutes=1), [], metrics=metrics)


def test_storage_keeps_the_metrics_with_the_run(scan_store: ScanStore) -> None:
    report = _complete(scan_store, None, METRICS)
    assert report.metrics == METRICS
    stored = scan_store.get_report(report.tenant.id, report.run_id)
    assert stored is not None and stored.metrics == METRICS
    latest = scan_store.latest_report(report.tenant.id)
    assert latest is not None and latest.metrics == METRICS
    # The same run repeated (a redelivered message) without metrics does not keep the old figures.
    _complete(scan_store, report.run_id, None)
    again = scan_store.get_report(report.tenant.id, report.run_id)
    assert again is not None and again.metrics is None


def test_a_run_stored_before_metrics_existed_still_reads_and_renders(scan_store: ScanStore) -> None:
    report = _complete(scan_store, None, METRICS)
    # What an older version wrote: the run row without the property at all.
    row = dict(scan_store.runs.get_entity(partition_key=tenant_key(report.tenant.id), row_key=report.run_id))
    row.pop("metrics")
    scan_store.runs.upsert_entity(row, mode=UpdateMode.REPLACE)
    stored = scan_store.get_report(report.tenant.id, report.run_id)
    assert stored is not None and stored.metrics is None
    assert "Not recorded for this run" in render_html_reports([stored], None, NOW)


def test_a_damaged_stored_metrics_property_reads_as_no_metrics(
    scan_store: ScanStore, caplog: pytest.LogCaptureFixture
) -> None:
    report = _complete(scan_store, None, METRICS)
    row = dict(scan_store.runs.get_entity(partition_key=tenant_key(report.tenant.id), row_key=report.run_id))
    row["metrics"] = row["metrics"][:40]  # cut short: not JSON any more
    scan_store.runs.upsert_entity(row, mode=UpdateMode.REPLACE)
    with caplog.at_level(logging.WARNING, logger="partnerguard.storage.store"):
        stored = scan_store.get_report(report.tenant.id, report.run_id)
    assert stored is not None and stored.metrics is None
    assert [check.id for check in stored.checks] == [check.id for check in report.checks]
    assert f"run {report.run_id} of tenant {report.tenant.id}: stored metrics are not JSON" in caplog.text
    latest = scan_store.latest_report(report.tenant.id)
    assert latest is not None and latest.metrics is None

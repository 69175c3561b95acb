"""partnerguard/doctor/diagnosis.py's judgement, as pure functions over access facts: which checks each gap
blinds (from the catalogue's metadata), which it only degrades, the fixes, national clouds, and
the facts' round trip through the tenant registry's document. The command line against the
simulator is tests/test_doctor_cli.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from checks import ALL_CHECKS
from partnerguard.doctor.diagnosis import ConsentLink, access, diagnose, needs_entra_id_p1
from partnerguard.doctor.facts import ENTRA_ID_P1_CODE, AccessFacts, gdap_of
from partnerguard.graph.errors import ConsentMissing, SignInFailed
from partnerguard.model import CheckMetadata, TenantInfo
from partnerguard.settings import Settings
from testbed.simulator.scenario import APP_PERMISSIONS

PARTNER = TenantInfo("7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73", "Contoso", "partner")
CUSTOMER = TenantInfo("c0ffee00-1b2c-4d3e-8f90-a1b2c3d4e5f6", "Fabrikam", "customer")
NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
LINK = ConsentLink("https://login.microsoftonline.com", "5a6b7c8d-0000-4000-8000-000000000001")
ALL = frozenset(APP_PERMISSIONS)
GDAP_CHECKS = {c.METADATA.id for c in ALL_CHECKS if c.METADATA.partner_only}
SIGN_IN_CHECKS = ["legacy-auth.sign-ins", "sign-ins.single-factor", "sam.password-grant"]
PHISHING_RESISTANT = "mfa.phishing-resistant-admins"


def facts(**changes: object) -> AccessFacts:
    return replace(AccessFacts(sign_in="ok", cloud="public", roles=ALL, entra_id_p1=True), **changes)  # type: ignore[arg-type]


def blinded(diagnosis: object) -> set[tuple[str, str]]:
    return {(b.check, b.reason_code) for b in diagnosis.blinded}  # type: ignore[attr-defined]


def test_a_complete_tenant_is_healthy() -> None:
    for tenant, gdap in ((PARTNER, "not-applicable"), (CUSTOMER, "active")):
        diagnosis = diagnose(tenant, facts(), gdap, LINK, NOW)
        assert diagnosis.healthy
        assert diagnosis.missing == () and diagnosis.blinded == () and diagnosis.fixes == ()
    # A customer needs no GDAP permission: the checks that read GDAP are the partner's.
    customer = diagnose(CUSTOMER, facts(), "active", LINK, NOW)
    assert "DelegatedAdminRelationship.Read.All" not in customer.granted
    assert "DelegatedAdminRelationship.Read.All" in diagnose(PARTNER, facts(), "not-applicable", LINK, NOW).granted


DIRECTORY_READ_BLINDS = {
    (check, "permission:Directory.Read.All") for check in ["mfa.registration", PHISHING_RESISTANT, *SIGN_IN_CHECKS]
}


@pytest.mark.parametrize(
    ("removed", "blinds"),
    [
        ({"Policy.Read.All"}, {"mfa.enforcement", "legacy-auth.blocked"}),
        ({"UserAuthenticationMethod.Read.All"}, {"mfa.registration", PHISHING_RESISTANT}),
        ({"DelegatedAdminRelationship.Read.All"}, GDAP_CHECKS),
        # Directory.Read.All alone: no call carries it; Microsoft's licence check on the report and
        # sign-in APIs needs it.
        ({"Directory.Read.All"}, set()),
        # Directory.Read.All serves these calls too: only without both is the permission missing.
        ({"Application.Read.All", "Directory.Read.All"}, {"apps.client-secrets", "apps.credential-expiry"}),
        ({"GroupMember.Read.All", "Directory.Read.All"}, {"mfa.enforcement", "legacy-auth.blocked"}),
        (
            {"RoleManagement.Read.Directory", "Directory.Read.All"},
            {"mfa.registration", "mfa.enforcement", "legacy-auth.blocked", PHISHING_RESISTANT},
        ),
        # Policy.Read.All serves the authentication methods policy and authentication strengths
        # (mfa.enforcement reads a strength a policy only references).
        (
            {"Policy.Read.AuthenticationMethod", "Policy.Read.All"},
            {"mfa.registration", "mfa.enforcement", PHISHING_RESISTANT},
        ),
    ],
)
def test_each_missing_permission_blinds_the_checks_that_need_it(removed: set[str], blinds: set[str]) -> None:
    diagnosis = diagnose(PARTNER, facts(roles=ALL - removed), "not-applicable", LINK, NOW)
    assert set(diagnosis.missing) == removed
    [permission] = removed - {"Directory.Read.All", "Policy.Read.All"} or removed
    expected = {(check, f"permission:{permission}") for check in blinds}
    if "Directory.Read.All" in removed:
        expected |= DIRECTORY_READ_BLINDS
    if "Policy.Read.All" in removed:
        expected |= {(check, "permission:Policy.Read.All") for check in ("mfa.enforcement", "legacy-auth.blocked")}
    assert blinded(diagnosis) == expected
    assert not diagnosis.healthy
    assert len(diagnosis.fixes) == len(removed)
    fix = next(f for f in diagnosis.fixes if f"permission {permission} " in f)
    assert all(check in fix for check in blinds)
    assert LINK.for_tenant(PARTNER.id) in fix


def test_a_higher_privileged_permission_serves_the_calls_it_is_documented_for() -> None:
    for needed in ("Application.Read.All", "GroupMember.Read.All", "RoleManagement.Read.Directory"):
        diagnosis = diagnose(PARTNER, facts(roles=ALL - {needed}), "not-applicable", LINK, NOW)
        assert diagnosis.healthy and diagnosis.missing == () and diagnosis.blinded == ()
        assert diagnosis.satisfied_by == {needed: "Directory.Read.All"} and needed in diagnosis.granted


def test_a_permission_is_missing_only_where_no_documented_higher_one_serves_its_calls() -> None:
    # Directory.Read.All serves users, organization and subscribedSkus...
    without = ALL - {"User.Read.All", "Organization.Read.All"}
    judged = access("customer", "public", without)
    assert judged.missing == ()
    assert judged.satisfied_by == {"User.Read.All": "Directory.Read.All", "Organization.Read.All": "Directory.Read.All"}
    # ...but AuditLog.Read.All's sign-in log has no higher permission; the registration report has
    # UserAuthenticationMethod.Read.All, so mfa.registration stays assessed.
    judged = access("customer", "public", ALL - {"AuditLog.Read.All"})
    assert judged.missing == ("AuditLog.Read.All",)
    assert set(judged.lacking) == set(SIGN_IN_CHECKS)
    judged = access("customer", "public", ALL - {"AuditLog.Read.All", "UserAuthenticationMethod.Read.All"})
    assert set(judged.missing) == {"AuditLog.Read.All", "UserAuthenticationMethod.Read.All"}
    assert judged.lacking["mfa.registration"] == ("AuditLog.Read.All", "UserAuthenticationMethod.Read.All")


def test_without_organization_read_no_check_is_blinded_but_the_licence_is_unknown() -> None:
    diagnosis = diagnose(
        CUSTOMER,
        facts(roles=ALL - {"Organization.Read.All", "Directory.Read.All"}, entra_id_p1=None),
        "active",
        LINK,
        NOW,
    )
    assert "Organization.Read.All" in diagnosis.missing
    assert not any(b.reason_code == "permission:Organization.Read.All" for b in diagnosis.blinded)
    fix = next(f for f in diagnosis.fixes if "Organization.Read.All" in f)
    assert "Entra ID P1 detection" in fix


def test_no_p1_blinds_what_needs_it_and_degrades_what_falls_back() -> None:
    diagnosis = diagnose(CUSTOMER, facts(entra_id_p1=False), "active", LINK, NOW)
    assert blinded(diagnosis) == {(check, ENTRA_ID_P1_CODE) for check in SIGN_IN_CHECKS}
    # Both read each user's (admin's) methods instead of the registration report.
    assert [(d.check, d.reason_code) for d in diagnosis.degraded] == [
        ("mfa.registration", "licence:AAD_PREMIUM"),
        (PHISHING_RESISTANT, "licence:AAD_PREMIUM"),
    ]
    for degraded in diagnosis.degraded:
        fallback = next(c for c in ALL_CHECKS if c.METADATA.id == degraded.check).METADATA.licence_fallback
        assert degraded.detail == fallback
    assert not diagnosis.healthy


def test_an_unknown_licence_or_roles_is_not_healthy() -> None:
    assert not diagnose(CUSTOMER, facts(entra_id_p1=None), "active", LINK, NOW).healthy
    unread = diagnose(CUSTOMER, facts(roles=None), "active", LINK, NOW)
    assert not unread.healthy and unread.missing == () and "roles could not be read" in unread.fixes[0]


def test_no_gdap_is_a_gap_with_a_fix_that_blinds_nothing() -> None:
    diagnosis = diagnose(CUSTOMER, facts(), "none", LINK, NOW)
    assert not diagnosis.healthy and diagnosis.blinded == ()
    [fix] = diagnosis.fixes
    assert "GDAP" in fix and "Partner Center" in fix
    # Unknown (the partner's relationships could not be read) is reported, not a gap of this tenant.
    assert diagnose(CUSTOMER, facts(), "unknown", LINK, NOW).healthy


def test_gdap_state_from_the_partners_live_relationships() -> None:
    live = frozenset({CUSTOMER.id})
    assert gdap_of(PARTNER.id, "partner", "public", live) == "not-applicable"
    assert gdap_of(CUSTOMER.id.upper(), "customer", "public", live) == "active"
    assert gdap_of("9d4c2b1a-8e7f-4a6b-9c5d-3e2f1a0b9c8d", "customer", "public", live) == "none"
    assert gdap_of(CUSTOMER.id, "customer", "public", None) == "unknown"
    assert gdap_of(CUSTOMER.id, "customer", "usgov", live) == "unknown"  # no GDAP API there


def test_sign_in_failures_blind_every_applicable_check() -> None:
    no_consent = AccessFacts("no-consent", "public", detail="AADSTS7000229: missing service principal")
    diagnosis = diagnose(CUSTOMER, no_consent, "active", LINK, NOW)
    assert {check for check, _ in blinded(diagnosis)} == {c.METADATA.id for c in ALL_CHECKS} - GDAP_CHECKS
    assert {reason for _, reason in blinded(diagnosis)} == {"consent"}
    [fix] = diagnosis.fixes
    assert f"https://login.microsoftonline.com/{CUSTOMER.id}/adminconsent?client_id={LINK.client_id}" in fix
    failed = AccessFacts("error", "public", detail="AADSTS7000215: invalid secret", error_code="AADSTS7000215")
    diagnosis = diagnose(PARTNER, failed, "not-applicable", LINK, NOW)
    assert {reason for _, reason in blinded(diagnosis)} == {"error:AADSTS7000215"}
    assert len(diagnosis.blinded) == len(ALL_CHECKS)


def test_facts_after_a_sign_in_failure_keep_its_code() -> None:
    from partnerguard.doctor.facts import facts_after_sign_in_failure

    consent = facts_after_sign_in_failure(ConsentMissing("AADSTS65001", "AADSTS65001: no consent\x1b[2J"), "public")
    assert consent.sign_in == "no-consent" and consent.error_code == "AADSTS65001"
    assert consent.detail == "AADSTS65001: no consent\\x1b[2J"  # inert
    other = facts_after_sign_in_failure(SignInFailed("SignInFailed", "connection refused"), "china")
    assert (other.sign_in, other.detail, other.cloud) == ("error", "SignInFailed: connection refused", "china")


def test_national_clouds_blind_gdap_checks_and_link_to_their_own_login_host() -> None:
    settings = Settings.from_env(
        {
            "AZURE_CLOUD": "usgov",
            "AZURE_TENANT_ID": PARTNER.id,
            "AZURE_CLIENT_ID": LINK.client_id or "",
            "AZURE_CLIENT_SECRET": "s" * 20,
        }
    )
    link = ConsentLink.from_settings(settings)
    assert link.for_tenant(CUSTOMER.id).startswith(f"https://login.microsoftonline.us/{CUSTOMER.id}/adminconsent?")
    roles = ALL - {"DelegatedAdminRelationship.Read.All"}
    diagnosis = diagnose(PARTNER, facts(cloud="usgov", roles=roles), "not-applicable", link, NOW)
    # GDAP APIs are public-cloud only: the GDAP checks are blinded by the cloud, whatever is
    # granted, and their permission is not asked for.
    assert blinded(diagnosis) == {(check, "cloud") for check in GDAP_CHECKS}
    assert diagnosis.missing == () and "DelegatedAdminRelationship.Read.All" not in diagnosis.granted
    assert diagnosis.healthy  # nothing a partner could add
    assert diagnosis.to_document()["cloud"] == "usgov"


def test_facts_round_trip_through_the_registry_document() -> None:
    original = facts(roles=frozenset({"User.Read.All"}), entra_id_p1=False, detail="subscribedSkus: x")
    assert AccessFacts.from_document(original.to_document()) == original
    unknown = AccessFacts("error", "china", detail="d", error_code="AADSTS1")
    assert AccessFacts.from_document(unknown.to_document()) == unknown


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"sign_in": "maybe", "cloud": "public"},
        {"sign_in": "ok", "cloud": "mars"},
        {"sign_in": "ok", "cloud": "public", "roles": "User.Read.All"},
        {"sign_in": "ok", "cloud": "public", "roles": [1]},
    ],
)
def test_a_document_this_version_cannot_read_is_no_facts(document: dict[str, object]) -> None:
    assert AccessFacts.from_document(document) is None


def test_every_licence_of_the_catalogue_is_one_doctor_knows() -> None:
    needing = {c.METADATA.id for c in ALL_CHECKS if needs_entra_id_p1(c.METADATA)}
    assert needing == {"mfa.registration", PHISHING_RESISTANT, *SIGN_IN_CHECKS}
    strange = replace(ALL_CHECKS[0].METADATA, licence="Microsoft Purview E5")
    assert isinstance(strange, CheckMetadata)
    with pytest.raises(ValueError, match="does not know the licence"):
        needs_entra_id_p1(strange)

"""The scenario data and its ground truth: every rule of SPEC §1 has its shapes in the bundled
scenarios, and the oracle (`testbed.simulator.ground_truth`) reads them as the rule says.

Expectations are written out by name, from the data files' intent, so a change to the data or
to the oracle that moves a boundary fails here first."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from testbed.simulator import TenantScenario
from testbed.simulator.generate import make_sign_in
from testbed.simulator.ground_truth import (
    LEGACY_AUTH_SIGN_INS,
    PASSWORD_GRANT,
    SINGLE_FACTOR_SIGN_INS,
    is_method_mfa_capable,
)
from testbed.simulator.scenario import bundled_scenario_paths, scenario_from_dict

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CONTOSO = "7a3f9c2e-4b1d-4e8a-9f6c-2d5b8e1a0c73"
LITWARE = "9d4c2b1a-8e7f-4a6b-9c5d-3e2f1a0b9c8d"
EXCHANGE = "00000002-0000-0ff1-ce00-000000000000"
BILLING_APP = "3f1d9a7e-2c4b-4e8f-9a1d-6b5c4e3d2f10"
PSA_APP = "8b2e4c6a-1d3f-4a5b-9c7d-0e1f2a3b4c5d"
OFFICE_PORTAL = "4765445b-32c6-49b0-83e6-1d93765276ca"
GLOBAL_ADMIN = "62e90394-69f5-4237-9190-012177145e10"
PRIVILEGED_ROLE_ADMIN = "e8611ab8-c189-46e8-94e1-60213ab1f814"


def load(tenant_id: str, now: datetime = NOW) -> TenantScenario:
    for path in bundled_scenario_paths():
        data = json.loads(path.read_text(encoding="utf-8"))
        if data["tenantId"] == tenant_id:
            return scenario_from_dict(data, source=path, now=now)
    raise LookupError(tenant_id)


@pytest.fixture(scope="module")
def contoso() -> TenantScenario:
    return load(CONTOSO)


@pytest.fixture(scope="module")
def litware() -> TenantScenario:
    return load(LITWARE)


def uid(tenant: TenantScenario, upn_prefix: str) -> str:
    return str(next(u["id"] for u in tenant.users if u["userPrincipalName"].startswith(upn_prefix + "@")))


def by_name(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(item for item in items if item["displayName"] == name)


# -- mfa.registration: the unlicensed tenant on security defaults ----------------------------


def test_litware_is_unlicensed_on_security_defaults_with_every_method_shape(litware: TenantScenario) -> None:
    assert litware.role == "customer" and not litware.has_entra_premium
    assert litware.security_defaults["isEnabled"] is True
    assert litware.user_registration_details == [] and litware.sign_ins == []
    kinds = {m["@odata.type"].rsplit(".", 1)[1] for ms in litware.authentication_methods.values() for m in ms}
    assert kinds == {
        "passwordAuthenticationMethod",
        "microsoftAuthenticatorAuthenticationMethod",
        "phoneAuthenticationMethod",
        "fido2AuthenticationMethod",
        "windowsHelloForBusinessAuthenticationMethod",
        "softwareOathAuthenticationMethod",
        "hardwareOathAuthenticationMethod",
        "platformCredentialAuthenticationMethod",
        "emailAuthenticationMethod",
        "temporaryAccessPassAuthenticationMethod",
    }
    states = {c["id"]: c["state"] for c in litware.authentication_methods_policy["authenticationMethodConfigurations"]}
    assert states["X509Certificate"] == "disabled" and states["TemporaryAccessPass"] == "enabled"


def test_litware_capability_per_method_shape(litware: TenantScenario) -> None:
    capable = {
        "amy.authenticator",
        "paul.phone",
        "fiona.fido",
        "hank.hello",
        "sofia.softoath",
        "harry.hardoath",
        "pia.platform",
    }
    # Password only (the admin and a service account), email only, TAP only (enabled in the policy
    # but never qualifying), and a certificate whose X509Certificate configuration is disabled.
    incapable = {"admin", "svc-printer", "erin.email", "tom.tap", "carl.certificate"}
    for name in capable:
        assert is_method_mfa_capable(litware, uid(litware, name)), name
    for name in incapable:
        assert not is_method_mfa_capable(litware, uid(litware, name)), name
    expected = {uid(litware, name) for name in incapable}
    assert litware.method_mfa_incapable_user_ids() == expected
    assert litware.expected_mfa_registration_subjects() == expected  # no P1: all through the fallback
    guest = next(u["id"] for u in litware.users if u["userType"] == "Guest")
    assert litware.expected_mfa_registration_subjects(include_guests=True) == expected | {guest}
    disabled = next(u["id"] for u in litware.users if u["accountEnabled"] is False)
    assert disabled not in litware.expected_mfa_registration_subjects(include_guests=True)
    assert uid(litware, "admin") in litware.admin_user_ids()


def test_enabling_a_methods_configuration_changes_capability(litware: TenantScenario) -> None:
    tenant = litware.copy()
    carl = uid(tenant, "carl.certificate")
    for configuration in tenant.authentication_methods_policy["authenticationMethodConfigurations"]:
        if configuration["id"] == "X509Certificate":
            configuration["state"] = "enabled"
        if configuration["id"] == "Fido2":
            configuration["state"] = "disabled"
    assert is_method_mfa_capable(tenant, carl)
    assert not is_method_mfa_capable(tenant, uid(tenant, "fiona.fido"))
    # An office phone takes voice calls only: with Voice disabled, SMS does not help it.
    paul = uid(tenant, "paul.phone")
    tenant.authentication_methods[paul][1]["phoneType"] = "office"
    for configuration in tenant.authentication_methods_policy["authenticationMethodConfigurations"]:
        if configuration["id"] == "Voice":
            configuration["state"] = "disabled"
    assert not is_method_mfa_capable(tenant, paul)


def test_with_p1_the_report_decides_and_the_fallback_covers_users_it_lacks(contoso: TenantScenario) -> None:
    reported = {row["id"] for row in contoso.user_registration_details}
    lacking = {u["id"] for u in contoso.users if u["accountEnabled"] and u["id"] not in reported}
    assert lacking, "the report lags behind some enabled user"
    expected = contoso.expected_mfa_registration_subjects()
    enabled_members = {u["id"] for u in contoso.users if u["accountEnabled"] and u["userType"] == "Member"}
    from_report = {row["id"] for row in contoso.user_registration_details if not row["isMfaCapable"]}
    assert expected & reported == from_report & enabled_members
    assert expected & lacking == {u for u in lacking if not is_method_mfa_capable(contoso, u)}


# -- Conditional Access exclusions ------------------------------------------------------------


def test_exclusions_resolve_nested_groups_roles_and_named_users(contoso: TenantScenario) -> None:
    exclusions = contoso.ca_excluded_principals("a7abe1c2-9e1a-4ef4-b341-e07a83f73f16")
    assert exclusions["users"] == {uid(contoso, "svc-backup")}
    assert exclusions["group_members"] == {
        uid(contoso, "svc-sync"),
        uid(contoso, "lee.gu"),
        uid(contoso, "grady.archie"),
    }
    assert exclusions["roles"] == {PRIVILEGED_ROLE_ADMIN}
    assert exclusions["role_members"] == {uid(contoso, "patti.fernandez")}
    nested = [
        m
        for m in contoso.group_transitive_members["88daf401-6b40-43ef-a54b-0c4e010c4759"]
        if "group" in m["@odata.type"]
    ]
    assert len(nested) == 1 and contoso.group_transitive_members[nested[0]["id"]]
    assert {g["id"] for g in contoso.groups} >= set(contoso.group_transitive_members)
    block = contoso.ca_excluded_principals("66836886-a260-4d0b-bb45-145c1a81682c")
    assert block["role_members"] == {uid(contoso, n) for n in ("adele.vance", "alex.wilber", "break.glass")}


# -- sign-ins ---------------------------------------------------------------------------------


def test_legacy_sign_ins_count_successful_legacy_clients_case_insensitively(contoso: TenantScenario) -> None:
    def subject(name: str, client: str) -> str:
        return f"{uid(contoso, name)}|{client}"

    assert contoso.sign_in_subjects(LEGACY_AUTH_SIGN_INS, NOW) == {
        subject("isaiah.langer", "imap4"),
        subject("nestor.wilke", "pop3"),
        subject("lidia.holloway", "authenticated smtp"),
        subject("johanna.lorenz", "exchange activesync"),  # non-interactive
        subject("pradeep.gupta", "other clients"),  # "Other clients" and "other clients": one subject
        subject("grady.archie", "imap4"),  # "Imap4" and "IMAP4"
        subject("ops", "imap4"),  # 167 h ago: just inside the window
    }
    # Outside: POP3 400 h ago, EAS 169 h ago; failures 50126, 50057, 53003; BROWSER, empty, and
    # "mobile apps and desktop clients" in any case.


def test_single_factor_and_password_grant_subjects(contoso: TenantScenario) -> None:
    single = contoso.sign_in_subjects(SINGLE_FACTOR_SIGN_INS, NOW)
    assert f"{uid(contoso, 'svc-sync')}|{BILLING_APP}" in single  # non-interactive
    ben = next(u["id"] for u in contoso.users if u["userPrincipalName"].startswith("ben.walters"))
    assert f"{ben}|{OFFICE_PORTAL}" in single  # a guest's single-factor sign-in counts
    assert f"{uid(contoso, 'megan.bowen')}|{OFFICE_PORTAL}" not in single  # MFA / 50140
    assert f"{uid(contoso, 'christie.cline')}|1fec8e78-bce4-4aaf-ab1b-5451cc387264" in single
    assert not any(s.startswith(uid(contoso, "joni.sherman")) for s in single)  # failure and outside
    assert len(single) == 15
    assert contoso.sign_in_subjects(PASSWORD_GRANT, NOW) == {
        f"{PSA_APP}|{uid(contoso, 'svc-backup')}",
        f"{BILLING_APP}|{uid(contoso, 'svc-reporting')}",
    }  # not: henrietta (50076), svc-backup 50053, svc-sync 169 h ago


def test_window_edges_move_with_now_and_length(contoso: TenantScenario) -> None:
    ops_imap = f"{uid(contoso, 'ops')}|imap4"
    joni_eas = f"{uid(contoso, 'joni.sherman')}|exchange activesync"
    assert ops_imap in contoso.sign_in_subjects(LEGACY_AUTH_SIGN_INS, NOW)
    assert ops_imap not in contoso.sign_in_subjects(LEGACY_AUTH_SIGN_INS, NOW + timedelta(hours=2))
    assert joni_eas in contoso.sign_in_subjects(LEGACY_AUTH_SIGN_INS, NOW, window_hours=170)
    # Sign-ins after `now` (clock skew) are not in a window that ends at `now`.
    assert contoso.sign_in_subjects(LEGACY_AUTH_SIGN_INS, NOW - timedelta(hours=200)) == set()
    with pytest.raises(ValueError, match="not a sign-in rule"):
        contoso.sign_in_subjects("mfa.registration", NOW)


def test_service_principal_sign_ins_never_count(contoso: TenantScenario) -> None:
    tenant = contoso.copy()
    user = tenant.users[0]
    sign_in = make_sign_in(
        "00000000-0000-4000-8000-000000000001",
        "2025-03-01T11:00:00Z",
        user,
        home_tenant_id=CONTOSO,
        app_id=BILLING_APP,
        app_display_name="Billing",
        client_app_used="IMAP4",
        authentication_protocol="ropc",
        event_type="servicePrincipal",
    )
    tenant.sign_ins = [sign_in]
    assert all(tenant.sign_in_subjects(rule, NOW) == set() for rule in (LEGACY_AUTH_SIGN_INS, PASSWORD_GRANT))
    sign_in["signInEventTypes"] = ["nonInteractiveUser"]
    assert tenant.sign_in_subjects(PASSWORD_GRANT, NOW) == {f"{BILLING_APP}|{user['id']}"}


# -- application credentials ------------------------------------------------------------------


def test_client_secrets_and_their_severity(contoso: TenantScenario) -> None:
    apps, sps = contoso.applications, contoso.service_principals
    secrets = contoso.client_secret_subjects()

    def key(holder: dict[str, Any], name: str) -> str:
        secret = next(c for c in holder["passwordCredentials"] if c["displayName"] == name)
        return f"{holder['id']}:{secret['keyId']}"

    reporting = by_name(apps, "Contoso Reporting API")
    assert secrets[key(reporting, "no end")] == "high"  # endDateTime null
    assert secrets[key(reporting, "exactly 180 days")] == "medium"  # not more than 180 days
    assert secrets[key(reporting, "181 days")] == "high"
    assert secrets[key(by_name(apps, "Legacy PSA Connector"), "forever")] == "high"  # ends in 2299
    assert secrets[key(by_name(apps, "Contoso Billing Sync"), "billing-rotating")] == "medium"
    assert secrets[key(by_name(apps, "Contoso Old Integration"), "expired")] == "high"
    assert secrets[key(by_name(sps, "Contoso Automation"), "sp secret")] == "high"  # on a service principal
    assert secrets[key(by_name(sps, "Contoso Legacy SSO"), "CN=Legacy SSO")] == "high"  # pairs with Verify only
    # SAML signing keys' passwords are not client secrets; a managed identity has none.
    for saml in ("Contoso Expenses (SAML)", "Contoso HR (SAML)"):
        assert not any(s.startswith(by_name(sps, saml)["id"]) for s in secrets)
    assert len(secrets) == 9
    assert (
        contoso.client_secret_subjects(max_lifetime_days=1000)[
            key(by_name(apps, "Contoso Billing Sync"), "billing-2yr")
        ]
        == "medium"
    )


def test_expiring_credentials(contoso: TenantScenario) -> None:
    apps, sps = contoso.applications, contoso.service_principals

    def keys(holder: dict[str, Any], *names: str) -> set[str]:
        credentials = [*holder["passwordCredentials"], *holder["keyCredentials"]]
        return {f"{holder['id']}:{c['keyId']}" for c in credentials if c["displayName"] in names}

    portal = by_name(apps, "Contoso Partner Portal")
    expected = (
        keys(by_name(apps, "Contoso Billing Sync"), "billing-rotating")  # secret, 10 days
        | keys(by_name(apps, "Contoso Old Integration"), "expired", "CN=old-integration", "CN=old-integration-2")
        | keys(portal, "CN=portal-current")  # 29 days; CN=portal-next (31 days) is not
        | keys(by_name(sps, "Contoso HR (SAML)"), "CN=Contoso HR SAML")  # Sign (+ its password) and Verify
    )
    assert len(expected) == 7
    assert contoso.expiring_credential_subjects(NOW) == expected
    assert keys(portal, "CN=portal-next") <= contoso.expiring_credential_subjects(NOW, days=32)
    managed = next(sp for sp in sps if sp["servicePrincipalType"] == "ManagedIdentity")
    assert not any(s.startswith(managed["id"]) for s in contoso.expiring_credential_subjects(NOW, days=365))


# -- GDAP -------------------------------------------------------------------------------------


def test_gdap_relationships_in_every_state(contoso: TenantScenario) -> None:
    relationships = contoso.delegated_admin_relationships
    assert {r["status"] for r in relationships} >= {
        "active",
        "expiring",
        "terminated",
        "terminationRequested",
        "approvalPending",
        "created",
        "activating",
        "expired",
    }
    assert {r["autoExtendDuration"] for r in relationships} == {"PT0S", "P0D", "P180D"}
    assert any(r["@odata.type"].endswith("resellerDelegatedAdminRelationship") for r in relationships)

    def ids(*names: str) -> set[str]:
        return {by_name(relationships, name)["id"] for name in names}

    assert contoso.privileged_gdap_relationship_ids() == ids(
        "Fabrikam full admin",  # active, GA
        "Tailspin via reseller",  # reseller, active, PRA
        "Adventure Works admin (expiring)",  # expiring, GA
        "Best For You Organics security",  # active, PRA, 200 days
        "Consolidated Messenger via reseller",  # reseller, expiring, GA
    )
    assert contoso.expiring_gdap_relationship_ids(NOW) == ids(
        "Fabrikam full admin",  # 20 days, PT0S
        "Adventure Works admin (expiring)",  # 5 days
        "Alpine Ski House helpdesk",  # 10 days, not privileged
        "Consolidated Messenger via reseller",  # 12 days, P0D
    )  # not: Bellows (10 days, P180D), City Power (31 days), Tailspin (90 days), inactive states
    assert ids("City Power & Light readers") <= contoso.expiring_gdap_relationship_ids(NOW, days=32)


def test_not_yet_active_relationships_have_no_dates(contoso: TenantScenario) -> None:
    for relationship in contoso.delegated_admin_relationships:
        if relationship["status"] in ("created", "approvalPending", "activating"):
            assert relationship["activatedDateTime"] is None and relationship["endDateTime"] is None


def test_phishing_resistant_admins_ground_truth(contoso: TenantScenario, litware: TenantScenario) -> None:
    # Contoso (P1, from the report): the Global Administrator with a FIDO2 key passes; the two
    # Global Administrators with Authenticator, a phone or email, and the Privileged Role
    # Administrator with Authenticator, do not.
    failing = {uid(contoso, name) for name in ("adele.vance", "alex.wilber", "patti.fernandez")}
    assert contoso.expected_phishing_resistant_admin_subjects() == failing
    # An emergency-access account is judged though it holds no role, named by UPN or object id,
    # in any case; one of another tenant changes nothing.
    diego = uid(contoso, "diego.siciliani")
    assert contoso.expected_phishing_resistant_admin_subjects(["DIEGO.SICILIANI@contosopartner.onmicrosoft.com"]) == (
        failing | {diego}
    )
    assert contoso.expected_phishing_resistant_admin_subjects([diego]) == failing | {diego}
    assert contoso.expected_phishing_resistant_admin_subjects(["someone@fabrikam.onmicrosoft.com"]) == failing
    # Litware (no P1, from each admin's methods): password only, and Authenticator only.
    assert litware.expected_phishing_resistant_admin_subjects() == {
        uid(litware, "admin"),
        uid(litware, "amy.authenticator"),
    }
    # FIDO2 counts only while the methods policy enables it.
    tenant = contoso.copy()
    for configuration in tenant.authentication_methods_policy["authenticationMethodConfigurations"]:
        if configuration["id"] == "Fido2":
            configuration["state"] = "disabled"
    assert tenant.expected_phishing_resistant_admin_subjects() == failing | {uid(contoso, "break.glass")}

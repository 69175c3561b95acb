"""apps.client-secrets and apps.credential-expiry over applications and service principals (SPEC §1)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from checks import apps_client_secrets, apps_credential_expiry
from partnerguard.evaluate import run_check
from partnerguard.model import CheckOutcome, Severity, Status, SubjectType, Unavailable
from tests.snapshot_builders import (
    NOW,
    PERMISSION_MISSING,
    application,
    context,
    guid,
    key_credential,
    password_credential,
    saml_signing_certificate,
    service_principal,
    snapshot,
)

DAY = timedelta(days=1)


def secrets(applications=(), service_principals=(), **context_fields) -> CheckOutcome:
    return apps_client_secrets.execute(
        snapshot(applications=list(applications), service_principals=list(service_principals)),
        context(**context_fields),
    )


def expiry(applications=(), service_principals=(), **context_fields) -> CheckOutcome:
    return apps_credential_expiry.execute(
        snapshot(applications=list(applications), service_principals=list(service_principals)),
        context(**context_fields),
    )


def ids(outcome: CheckOutcome) -> list[str]:
    return [finding.subject_id for finding in outcome.findings]


# -- apps.client-secrets ----------------------------------------------------------------------


def test_no_credentials_or_only_certificates_pass():
    assert secrets([application("clean")]).status is Status.PASS
    assert secrets([application("cert", certificates=[key_credential("c")])]).status is Status.PASS


def test_each_secret_on_an_application_is_a_finding():
    app = application("crm sync", secrets=[password_credential("one"), password_credential("two")])
    outcome = secrets([app])
    assert outcome.status is Status.FAIL
    assert ids(outcome) == sorted(f"{app['id']}:{guid(f'secret-{name}')}" for name in ("one", "two"))
    finding = outcome.findings[0]
    assert finding.subject_type is SubjectType.APPLICATION
    assert finding.subject_name == "crm sync"


def test_secret_evidence():
    secret = password_credential("one", start=NOW - 10 * DAY, end=NOW + 80 * DAY)
    app = application("crm sync", secrets=[secret])
    (finding,) = secrets([app]).findings
    assert finding.severity is Severity.MEDIUM
    assert finding.evidence == {
        "objectId": app["id"],
        "appId": app["appId"],
        "objectType": "application",
        "credentialType": "secret",
        "keyId": secret["keyId"],
        "displayName": "one",
        "startDateTime": (NOW - 10 * DAY).isoformat(),
        "endDateTime": (NOW + 80 * DAY).isoformat(),
        "hint": "abc",
        "lifetimeDays": 90.0,
        "maxLifetimeDays": 180,
    }


def test_secret_on_a_service_principal_is_a_finding():
    sp = service_principal("backdoor", secrets=[password_credential("added on the SP")])
    (finding,) = secrets(service_principals=[sp]).findings
    assert finding.subject_type is SubjectType.SERVICE_PRINCIPAL
    assert finding.subject_id.startswith(sp["id"] + ":")
    assert finding.evidence["objectType"] == "servicePrincipal"


@pytest.mark.parametrize(
    ("lifetime", "severity"),
    [
        (180 * DAY, Severity.MEDIUM),  # exactly at the maximum: within it
        (180 * DAY + timedelta(seconds=1), Severity.HIGH),
        (179 * DAY, Severity.MEDIUM),
        (730 * DAY, Severity.HIGH),
    ],
)
def test_lifetime_threshold(lifetime, severity):
    start = NOW - 5 * DAY
    app = application("a", secrets=[password_credential("s", start=start, end=start + lifetime)])
    (finding,) = secrets([app]).findings
    assert finding.severity is severity


def test_lifetime_threshold_follows_the_setting():
    app = application("a", secrets=[password_credential("s", start=NOW, end=NOW + 90 * DAY)])
    assert secrets([app], secret_max_lifetime_days=60).findings[0].severity is Severity.HIGH
    assert secrets([app], secret_max_lifetime_days=90).findings[0].severity is Severity.MEDIUM


def test_secret_without_end_is_high():
    app = application("a", secrets=[password_credential("forever", end=None)])
    (finding,) = secrets([app]).findings
    assert finding.severity is Severity.HIGH
    assert finding.evidence["lifetimeDays"] is None
    assert "never expires" in finding.detail


def test_secret_without_start_cannot_be_shown_short_lived():
    app = application("a", secrets=[password_credential("s", start=None, end=NOW + DAY)])
    (finding,) = secrets([app]).findings
    assert finding.severity is Severity.HIGH
    assert finding.evidence["lifetimeDays"] is None


def test_expired_secret_is_still_a_secret():
    app = application("a", secrets=[password_credential("old", start=NOW - 100 * DAY, end=NOW - DAY)])
    assert secrets([app]).status is Status.FAIL


def test_saml_signing_key_password_is_not_a_secret():
    keys, password = saml_signing_certificate("saml")
    sp = service_principal("SAML app", certificates=keys, secrets=[password])
    assert secrets(service_principals=[sp]).status is Status.PASS


def test_password_matching_a_verify_key_is_still_a_secret():
    verify = key_credential("v", usage="Verify")
    disguised = password_credential("disguised", key_id=verify["keyId"])
    sp = service_principal("sp", certificates=[verify], secrets=[disguised])
    assert ids(secrets(service_principals=[sp])) == [f"{sp['id']}:{verify['keyId']}"]


def test_signing_key_pairing_only_exempts_service_principals():
    keys, password = saml_signing_certificate("on an app")
    app = application("app", certificates=keys, secrets=[password])
    assert secrets([app]).status is Status.FAIL


def test_saml_service_principal_with_a_real_secret_too():
    keys, password = saml_signing_certificate("saml")
    real = password_credential("real")
    sp = service_principal("SAML app", certificates=keys, secrets=[password, real])
    assert ids(secrets(service_principals=[sp])) == [f"{sp['id']}:{real['keyId']}"]


def test_unreadable_half_is_not_assessed_but_keeps_the_other_halfs_findings():
    app = application("a", secrets=[password_credential("s")])
    outcome = apps_client_secrets.execute(
        snapshot(applications=[app], service_principals=PERMISSION_MISSING), context()
    )
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.reason_code == PERMISSION_MISSING.reason_code
    assert len(outcome.findings) == 1


def test_errors_outrank_other_reasons_and_nothing_read_never_passes():
    error = Unavailable("boom", "error:internal")
    outcome = apps_client_secrets.execute(
        snapshot(applications=PERMISSION_MISSING, service_principals=error), context()
    )
    assert outcome.status is Status.ERROR
    assert outcome.reason_code == "error:internal"
    assert run_check(apps_client_secrets, snapshot(), context()).status is Status.ERROR


def test_hostile_json_is_tolerated():
    app = application("a", secrets=[password_credential("s")])
    app["passwordCredentials"].append("not an object")
    app["keyCredentials"] = None
    app["displayName"] = "x" * 10_000
    (finding,) = secrets([app, "not an object either"]).findings
    assert len(finding.subject_name) == 256


# -- apps.credential-expiry -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("end", "reported"),
    [
        (NOW + 30 * DAY, True),  # exactly at the threshold: reported
        (NOW + 30 * DAY + timedelta(seconds=1), False),
        (NOW + 29 * DAY, True),
        (NOW - DAY, True),  # expired yesterday
        (NOW, True),
        (None, False),  # never expires: not an expiry finding
    ],
)
def test_expiry_threshold_for_secrets_and_certificates(end, reported):
    app = application(
        "a",
        secrets=[password_credential("s", end=end, start=NOW - 400 * DAY)],
        certificates=[key_credential("c", end=end, start=NOW - 400 * DAY)],
    )
    outcome = expiry([app])
    assert len(outcome.findings) == (2 if reported else 0)
    assert outcome.status is (Status.FAIL if reported else Status.PASS)


def test_expiry_threshold_follows_the_setting():
    app = application("a", certificates=[key_credential("c", end=NOW + 45 * DAY)])
    assert expiry([app]).status is Status.PASS
    assert expiry([app], credential_expiry_days=60).status is Status.FAIL


def test_expired_and_expiring_details():
    app = application(
        "a",
        secrets=[password_credential("gone", end=NOW - DAY)],
        certificates=[key_credential("soon", end=NOW + 10 * DAY)],
    )
    by_type = {f.evidence["credentialType"]: f for f in expiry([app]).findings}
    assert "expired 1 day(s) ago" in by_type["secret"].detail
    assert by_type["secret"].evidence["daysRemaining"] == -1.0
    assert "expires in 10 day(s)" in by_type["certificate"].detail
    assert by_type["certificate"].evidence["daysRemaining"] == 10.0
    assert all(f.severity is Severity.MEDIUM for f in by_type.values())


def test_saml_signing_password_is_represented_by_its_certificate():
    keys, password = saml_signing_certificate("saml", end=NOW + 5 * DAY)
    sp = service_principal("SAML app", certificates=keys, secrets=[password])
    outcome = expiry(service_principals=[sp])
    sign, verify = keys
    # One finding per keyCredential; the private key's password shares the Sign keyId.
    assert ids(outcome) == sorted(f"{sp['id']}:{key['keyId']}" for key in (sign, verify))
    assert {f.evidence["credentialType"] for f in outcome.findings} == {"certificate"}
    assert {f.evidence["usage"] for f in outcome.findings} == {"Sign", "Verify"}
    assert all(f.subject_type is SubjectType.SERVICE_PRINCIPAL for f in outcome.findings)


def test_managed_identities_are_not_assessed_for_credentials():
    azure_managed = service_principal(
        "vm identity",
        certificates=[key_credential("mi", end=NOW + DAY)],
        secrets=[password_credential("odd")],
        service_principal_type="ManagedIdentity",
    )
    assert expiry(service_principals=[azure_managed]).status is Status.PASS
    assert secrets(service_principals=[azure_managed]).status is Status.PASS


def test_certificates_with_different_thumbprints_are_separate():
    app = application(
        "a",
        certificates=[
            key_credential("one", end=NOW + DAY),
            key_credential("two", end=NOW + DAY),
        ],
    )
    assert len(expiry([app]).findings) == 2


def test_a_password_sharing_a_verify_keyid_is_reported_once():
    verify = key_credential("v", usage="Verify", end=NOW + 20 * DAY)
    disguised = password_credential("disguised", key_id=verify["keyId"], end=NOW + 3 * DAY)
    sp = service_principal("sp", certificates=[verify], secrets=[disguised])
    (finding,) = expiry(service_principals=[sp]).findings
    assert finding.evidence["credentialType"] == "secret"  # the more urgent of the two


def test_expiry_on_unreadable_data():
    outcome = apps_credential_expiry.execute(
        snapshot(applications=PERMISSION_MISSING, service_principals=PERMISSION_MISSING), context()
    )
    assert outcome.status is Status.NOT_ASSESSED
    assert outcome.findings == ()

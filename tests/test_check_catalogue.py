"""The check catalogue: SPEC §1's eleven checks, in order, with complete metadata."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import checks
from checks import ALL_CHECKS, CHECK_IDS, UnknownCheckError, get_check
from partnerguard.evaluate import run_check
from partnerguard.model import NOT_COLLECTED, Severity, Status
from tests.snapshot_builders import context, snapshot

SPEC_ORDER = (
    "mfa.registration",
    "mfa.enforcement",
    "legacy-auth.blocked",
    "legacy-auth.sign-ins",
    "sign-ins.single-factor",
    "sam.password-grant",
    "apps.client-secrets",
    "apps.credential-expiry",
    "gdap.privileged-roles",
    "gdap.expiring",
    "mfa.phishing-resistant-admins",
)
SPEC_SEVERITY = {
    "mfa.registration": Severity.HIGH,
    "mfa.enforcement": Severity.CRITICAL,
    "legacy-auth.blocked": Severity.HIGH,
    "legacy-auth.sign-ins": Severity.HIGH,
    "sign-ins.single-factor": Severity.HIGH,
    "sam.password-grant": Severity.HIGH,
    "apps.client-secrets": Severity.MEDIUM,
    "apps.credential-expiry": Severity.MEDIUM,
    "gdap.privileged-roles": Severity.HIGH,
    "gdap.expiring": Severity.MEDIUM,
    "mfa.phishing-resistant-admins": Severity.HIGH,
}
SPEC_PERMISSIONS = {
    "mfa.registration": {"AuditLog.Read.All", "User.Read.All"},
    "mfa.enforcement": {"Policy.Read.All"},
    "legacy-auth.blocked": {"Policy.Read.All"},
    "legacy-auth.sign-ins": {"AuditLog.Read.All"},
    "sign-ins.single-factor": {"AuditLog.Read.All"},
    "sam.password-grant": {"AuditLog.Read.All"},
    "apps.client-secrets": {"Application.Read.All"},
    "apps.credential-expiry": {"Application.Read.All"},
    "gdap.privileged-roles": {"DelegatedAdminRelationship.Read.All"},
    "gdap.expiring": {"DelegatedAdminRelationship.Read.All"},
    "mfa.phishing-resistant-admins": {"AuditLog.Read.All", "RoleManagement.Read.Directory"},
}
MODULE_NAMES = (
    "mfa_registration",
    "mfa_enforcement",
    "legacy_auth_blocked",
    "legacy_auth_sign_ins",
    "sign_ins_single_factor",
    "sam_password_grant",
    "apps_client_secrets",
    "apps_credential_expiry",
    "gdap_privileged_roles",
    "gdap_expiring",
    "mfa_phishing_resistant_admins",
)
SIGN_IN_EVIDENCE = {"legacy-auth.sign-ins", "sign-ins.single-factor", "sam.password-grant"}


def test_eleven_ids_in_spec_order_and_unique():
    assert CHECK_IDS == SPEC_ORDER
    assert len(set(CHECK_IDS)) == len(CHECK_IDS) == 11


def test_module_names_match_the_catalogue():
    assert tuple(getattr(check, "__name__", None) for check in ALL_CHECKS) == tuple(
        f"checks.{name}" for name in MODULE_NAMES
    )


@pytest.mark.parametrize("check", ALL_CHECKS, ids=CHECK_IDS)
def test_metadata_is_complete(check):
    metadata = check.METADATA
    assert metadata.title.strip()
    assert metadata.severity is SPEC_SEVERITY[metadata.id]
    assert metadata.remediation.strip()
    assert "1." in metadata.remediation  # numbered steps an admin can follow
    assert metadata.permissions
    assert SPEC_PERMISSIONS[metadata.id] <= set(metadata.permissions)
    assert metadata.references
    for reference in metadata.references:
        assert reference.title.strip()
        parts = urlsplit(reference.url)
        assert parts.scheme == "https"
        assert parts.netloc in {"learn.microsoft.com", "github.com"}
    assert metadata.partner_only is metadata.id.startswith("gdap.")


@pytest.mark.parametrize("check", ALL_CHECKS, ids=CHECK_IDS)
def test_rationale_quotes_the_partner_requirement_it_serves(check):
    rationale = check.METADATA.rationale
    assert "Microsoft Partner Agreement requires" in rationale
    if check.METADATA.id.startswith(("apps.", "sam.", "gdap.expiring")):
        assert "Secure Application Model" in rationale
    else:
        assert "MFA for every single authentication" in rationale


def test_every_check_cites_a_microsoft_learn_page():
    for check in ALL_CHECKS:
        assert any(ref.url.startswith("https://learn.microsoft.com/") for ref in check.METADATA.references)


@pytest.mark.parametrize("check", ALL_CHECKS, ids=CHECK_IDS)
def test_every_check_is_implemented_and_data_not_collected_is_an_error(check):
    # No check is a placeholder any more: over a snapshot whose fields were never collected,
    # every check stops with the collector's "not collected" error - never pass, never unsupported.
    outcome = run_check(check, snapshot(), context())
    assert outcome.reason_code != "unsupported"
    assert outcome.status is Status.ERROR
    assert outcome.reason_code == NOT_COLLECTED.reason_code


@pytest.mark.parametrize("check", ALL_CHECKS, ids=CHECK_IDS)
def test_only_sign_in_checks_resolve_as_no_longer_observed(check):
    assert check.METADATA.evidence_window is (check.METADATA.id in SIGN_IN_EVIDENCE)


def test_no_placeholder_module_is_left():
    assert not (Path(checks.__file__).parent / "pending.py").exists()


def test_licences_follow_spec():
    licences = {check.METADATA.id: check.METADATA.licence or "" for check in ALL_CHECKS}
    for check_id in (
        "mfa.registration",
        "legacy-auth.sign-ins",
        "sign-ins.single-factor",
        "sam.password-grant",
    ):
        assert "Microsoft Entra ID P1" in licences[check_id]
    for check_id in (
        "apps.client-secrets",
        "apps.credential-expiry",
        "gdap.privileged-roles",
        "gdap.expiring",
    ):
        assert licences[check_id] == ""


def test_permissions_cover_exclusions_and_the_report_licence_check():
    permissions = {check.METADATA.id: set(check.METADATA.permissions) for check in ALL_CHECKS}
    # Conditional Access exclusions are resolved: excluded roles' holders and groups' members.
    for check_id in ("mfa.enforcement", "legacy-auth.blocked"):
        assert {"RoleManagement.Read.Directory", "GroupMember.Read.All"} <= permissions[check_id]
    # Microsoft's licence check on the report and sign-in APIs needs Directory.Read.All (SPEC §6).
    for check_id in ("mfa.registration", "legacy-auth.sign-ins", "sign-ins.single-factor", "sam.password-grant"):
        assert "Directory.Read.All" in permissions[check_id]


def test_get_check():
    assert get_check("mfa.enforcement") is checks.mfa_enforcement
    with pytest.raises(UnknownCheckError):
        get_check("no.such-check")
    with pytest.raises(KeyError):
        get_check("")


def test_model_imports_first_without_cycle():
    # Every check imports partnerguard.model, and the model imports nothing of PartnerGuard's:
    # loading it first and the catalogue second must not meet a half-initialised module.
    result = subprocess.run(
        [sys.executable, "-c", "import partnerguard.model, checks; print(len(checks.ALL_CHECKS))"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "11"

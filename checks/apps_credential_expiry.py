"""apps.credential-expiry: no app secret or certificate has expired or expires soon (SPEC §1).

Fails for each secret or certificate on an application or service principal that has expired
or expires within CREDENTIAL_EXPIRY_DAYS (a credential ending exactly N days from now is
reported). An expiring credential breaks the integration that depends on it, and the usual
emergency fix - a fresh long-lived secret - undoes the Secure Application Model. A credential
without an end date never expires and is apps.client-secrets' business. Each keyCredential is a
certificate of its own (subject `<objectId>:<keyId>`); the password of a SAML signing key shares
its certificate's keyId and is not reported again (`checks.support.app_credentials`).
"""

from __future__ import annotations

from datetime import timedelta
from itertools import chain

from checks.support.app_credentials import Credential, CredentialKind, app_objects
from checks.support.graph_json import days
from checks.support.references import PARTNER_SECURITY_FAQ, SECURE_APP_MODEL, SECURE_APPLICATION_MODEL_REQUIREMENT
from partnerguard.model import CheckContext, CheckMetadata, CheckOutcome, Finding, Reference, Severity, TenantSnapshot

METADATA = CheckMetadata(
    id="apps.credential-expiry",
    title="No application credential has expired or expires soon",
    severity=Severity.MEDIUM,
    rationale=(
        SECURE_APPLICATION_MODEL_REQUIREMENT + " Credentials that expire unnoticed break "
        "integrations, and the rushed fix is typically a new long-lived client secret - the very "
        "thing the Secure Application Model removes. Expired credentials left on an app are clutter "
        "that hides the ones in use."
    ),
    remediation=(
        "1. For each credential listed, open the app in the Entra admin center > App registrations "
        "(or Enterprise applications) > Certificates & secrets and find the credential by its key id. "
        "2. If it is still in use, roll it over before it expires - preferably to a certificate "
        "with automatic renewal in Key Vault, a federated credential or a managed identity - deploy "
        "the new one and confirm sign-ins use it. 3. Delete expired or unused credentials. "
        "4. Rescan; CREDENTIAL_EXPIRY_DAYS sets how early PartnerGuard warns."
    ),
    permissions=("Application.Read.All",),
    licence=None,
    references=(
        PARTNER_SECURITY_FAQ,
        SECURE_APP_MODEL,
        Reference(
            "Microsoft Graph: keyCredential resource type",
            "https://learn.microsoft.com/en-us/graph/api/resources/keycredential",
        ),
        Reference(
            "Microsoft Graph: passwordCredential resource type",
            "https://learn.microsoft.com/en-us/graph/api/resources/passwordcredential",
        ),
    ),
)


def is_due(credential: Credential, context: CheckContext) -> bool:
    """Expired, or ending within the warning period (inclusive)."""
    return credential.end is not None and credential.end <= context.now + timedelta(days=context.credential_expiry_days)


def _finding(credential: Credential, context: CheckContext) -> Finding:
    assert credential.end is not None  # is_due() selected it
    owner = credential.owner
    what = "client secret" if credential.kind is CredentialKind.SECRET else "certificate"
    name = f" '{credential.display_name}'" if credential.display_name else ""
    remaining = credential.end - context.now
    if remaining <= timedelta(0):
        when = f"expired {days(-remaining):g} day(s) ago ({credential.end.date().isoformat()})"
    else:
        when = f"expires in {days(remaining):g} day(s) ({credential.end.date().isoformat()})"
    return Finding(
        subject_id=credential.subject_id,
        subject_type=owner.subject_type,
        subject_name=owner.display_name or owner.app_id or owner.object_id,
        detail=(
            f"The {owner.kind}'s {what}{name} {when}. Roll it over before integrations break (or "
            "delete it if it is no longer used), preferably to a certificate, a federated credential "
            "or a managed identity."
        ),
        severity=METADATA.severity,
        evidence={
            **credential.evidence(),
            "daysRemaining": days(remaining),
            "expiryWarningDays": context.credential_expiry_days,
        },
    )


def execute(snapshot: TenantSnapshot, context: CheckContext) -> CheckOutcome:
    apps = app_objects(snapshot.applications, snapshot.service_principals)
    due = [credential for credential in chain(apps.secrets(), apps.certificates()) if is_due(credential, context)]
    # Soonest first: where two credentials share a subject id, the more urgent one is reported.
    due.sort(key=lambda credential: (credential.end, credential.kind.value))
    return apps.outcome([_finding(credential, context) for credential in due])

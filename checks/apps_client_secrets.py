"""apps.client-secrets: no application or service principal holds a client secret (SPEC §1).

Fails for each password credential on an application or a service principal - PartnerGuard's
own included - except a service principal's password credential whose keyId matches one of its
keyCredentials with usage "Sign" (the private-key half of a SAML signing certificate, not a
secret; see `checks.support.app_credentials`). Medium; high when the secret's lifetime
(endDateTime - startDateTime) exceeds SECRET_MAX_LIFETIME_DAYS or it has no end. A lifetime of
exactly the maximum is within it.
"""

from __future__ import annotations

from datetime import timedelta

from checks.support.app_credentials import Credential, app_objects
from checks.support.graph_json import days
from checks.support.references import (
    PARTNER_SECURITY_FAQ,
    SECURE_APP_MODEL,
    SECURE_APPLICATION_MODEL_REQUIREMENT,
    prowler,
)
from partnerguard.model import CheckContext, CheckMetadata, CheckOutcome, Finding, Reference, Severity, TenantSnapshot

METADATA = CheckMetadata(
    id="apps.client-secrets",
    title="Applications and service principals use no client secrets",
    severity=Severity.MEDIUM,
    rationale=(
        SECURE_APPLICATION_MODEL_REQUIREMENT + " A client secret is a long-lived shared password: "
        "it gets copied into scripts, pipelines and vendors' systems, and anyone holding it acts as "
        "the app without MFA. Certificates, federated credentials and managed identities leave no "
        "shared secret to steal. Secrets living longer than the configured maximum, or forever, "
        "are high severity."
    ),
    remediation=(
        "1. For each credential listed, open the app in the Entra admin center > App registrations "
        "(or Enterprise applications for a service principal) > Certificates & secrets. "
        "2. Replace the secret: a managed identity for code running in Azure, a federated credential "
        "for GitHub Actions, Azure DevOps or another identity provider, or a certificate kept in "
        "Key Vault. 3. Deploy the new credential, confirm sign-ins use it (Sign-in logs > Service "
        "principal sign-ins), then delete the secret. 4. Where a secret cannot be avoided yet, keep "
        "its lifetime within SECRET_MAX_LIFETIME_DAYS and record an exception with an expiry date. "
        "5. Rescan."
    ),
    permissions=("Application.Read.All",),
    licence=None,
    references=(
        PARTNER_SECURITY_FAQ,
        SECURE_APP_MODEL,
        Reference(
            "Microsoft Graph: passwordCredential resource type",
            "https://learn.microsoft.com/en-us/graph/api/resources/passwordcredential",
        ),
        Reference(
            "Microsoft Graph: keyCredential resource type (usage Sign / Verify)",
            "https://learn.microsoft.com/en-us/graph/api/resources/keycredential",
        ),
        prowler("entra_app_registration_no_password_credentials"),
    ),
)


def lifetime(secret: Credential) -> timedelta | None:
    """How long the secret is valid; None when that is unbounded or cannot be shown.

    No end means it never expires. Graph always sets startDateTime; without one, the lifetime
    cannot be shown to be short, so it is judged as long.
    """
    if secret.end is None or secret.start is None:
        return None
    return secret.end - secret.start


def _finding(secret: Credential, context: CheckContext) -> Finding:
    maximum = timedelta(days=context.secret_max_lifetime_days)
    valid_for = lifetime(secret)
    owner = secret.owner
    name = f"'{secret.display_name}'" if secret.display_name else "without a name"
    if secret.end is None:
        severity = Severity.HIGH
        why = "It never expires, so whoever copied it keeps access for good."
    elif valid_for is None:
        severity = Severity.HIGH
        why = "Its start date is unknown, so it cannot be shown to live less than the maximum."
    elif valid_for > maximum:
        severity = Severity.HIGH
        why = (
            f"It is valid for {days(valid_for):g} days, longer than "
            f"the maximum of {context.secret_max_lifetime_days} (SECRET_MAX_LIFETIME_DAYS)."
        )
    else:
        severity = Severity.MEDIUM
        why = f"It is valid for {days(valid_for):g} days."
    return Finding(
        subject_id=secret.subject_id,
        subject_type=owner.subject_type,
        subject_name=owner.display_name or owner.app_id or owner.object_id,
        detail=(
            f"The {owner.kind} holds a client secret {name}: a shared password anyone holding it can "
            f"use to act as the app without MFA. {why} Use a certificate, a federated credential or "
            "a managed identity instead."
        ),
        severity=severity,
        evidence={
            **secret.evidence(),
            "lifetimeDays": None if valid_for is None else days(valid_for),
            "maxLifetimeDays": context.secret_max_lifetime_days,
        },
    )


def execute(snapshot: TenantSnapshot, context: CheckContext) -> CheckOutcome:
    apps = app_objects(snapshot.applications, snapshot.service_principals)
    return apps.outcome([_finding(secret, context) for secret in apps.secrets()])

"""apps.client-secrets: no application or service principal holds a client secret (SPEC §1).

Fails for each password credential on an application or a service principal - PartnerGuard's
own included - except a service principal's password credential whose keyId matches one of its
keyCredentials with usage "Sign" (the private-key half of a SAML signing certificate, not a
secret). Medium; high when the secret's lifetime exceeds SECRET_MAX_LIFETIME_DAYS or it never
expires. Application collection arrives with the next collector version; until then the check
reports that it was not assessed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from checks.base import CheckContext, CheckMetadata, CheckOutcome, Reference, Severity
from checks.pending import not_collected_yet
from checks.requirements import (
    PARTNER_SECURITY_FAQ,
    SECURE_APP_MODEL,
    SECURE_APPLICATION_MODEL_REQUIREMENT,
    prowler,
)

if TYPE_CHECKING:
    from partnerguard.snapshot import TenantSnapshot

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


def execute(snapshot: TenantSnapshot, context: CheckContext) -> CheckOutcome:
    return not_collected_yet()

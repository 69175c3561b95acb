"""apps.credential-expiry: no app secret or certificate has expired or expires soon (SPEC §1).

Fails for each secret or certificate on an application or service principal that has expired
or expires within CREDENTIAL_EXPIRY_DAYS. An expiring credential breaks the integration that
depends on it, and the usual emergency fix - a fresh long-lived secret - undoes the Secure
Application Model. Application collection arrives with the next collector version; until then
the check reports that it was not assessed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from checks.base import CheckContext, CheckMetadata, CheckOutcome, Reference, Severity
from checks.pending import not_collected_yet
from checks.requirements import PARTNER_SECURITY_FAQ, SECURE_APP_MODEL, SECURE_APPLICATION_MODEL_REQUIREMENT

if TYPE_CHECKING:
    from partnerguard.snapshot import TenantSnapshot

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


def execute(snapshot: TenantSnapshot, context: CheckContext) -> CheckOutcome:
    return not_collected_yet()

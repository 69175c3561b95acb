"""gdap.expiring: no GDAP relationship is about to end without auto-extend (SPEC §1).

Partner tenant only. Fails for each active or expiring GDAP relationship ending within
GDAP_EXPIRY_DAYS whose autoExtendDuration is PT0S or P0D (no automatic extension). GDAP
collection arrives with the next collector version; until then the check reports that it was
not assessed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from checks.base import CheckContext, CheckMetadata, CheckOutcome, Reference, Severity
from checks.pending import not_collected_yet
from checks.requirements import PARTNER_SECURITY_FAQ, SECURE_APP_MODEL, SECURE_APPLICATION_MODEL_REQUIREMENT

if TYPE_CHECKING:
    from partnerguard.snapshot import TenantSnapshot

METADATA = CheckMetadata(
    id="gdap.expiring",
    title="No GDAP relationship ends soon without auto-extend",
    severity=Severity.MEDIUM,
    rationale=(
        SECURE_APPLICATION_MODEL_REQUIREMENT + " Integrations and admins reach customer tenants "
        "through GDAP relationships. One that lapses unnoticed cuts that access at once, and the "
        "hurried replacement is where over-broad roles and shortcuts around the Secure Application "
        "Model creep back in."
    ),
    remediation=(
        "1. In Partner Center > Customers > the customer > Admin relationships, open each "
        "relationship listed and check its end date. 2. If the access is still needed, turn on "
        "auto-extend (180 days) where the relationship's roles allow it (not with Global "
        "Administrator), or create a replacement relationship with least-privileged roles and send "
        "the customer the approval link in time. 3. If the access is no longer needed, let it "
        "expire and record an exception so the finding does not alert. 4. Rescan; GDAP_EXPIRY_DAYS "
        "sets how early PartnerGuard warns."
    ),
    permissions=("DelegatedAdminRelationship.Read.All",),
    licence=None,
    references=(
        PARTNER_SECURITY_FAQ,
        SECURE_APP_MODEL,
        Reference(
            "Microsoft Graph: delegatedAdminRelationship resource type (autoExtendDuration)",
            "https://learn.microsoft.com/en-us/graph/api/resources/delegatedadminrelationship",
        ),
    ),
    partner_only=True,
)


def execute(snapshot: TenantSnapshot, context: CheckContext) -> CheckOutcome:
    return not_collected_yet()

"""gdap.privileged-roles: no GDAP relationship grants the two tenant-owning roles (SPEC §1).

Partner tenant only. Fails for each GDAP relationship with status active or expiring -
resellerDelegatedAdminRelationship items included - whose accessDetails.unifiedRoles include
Global Administrator (62e90394-69f5-4237-9190-012177145e10) or Privileged Role Administrator
(e8611ab8-c189-46e8-94e1-60213ab1f814). GDAP collection arrives with the next collector
version; until then the check reports that it was not assessed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from checks.base import CheckContext, CheckMetadata, CheckOutcome, Reference, Severity
from checks.pending import not_collected_yet
from checks.requirements import MFA_REQUIREMENT, PARTNER_SECURITY_FAQ, SECURE_APP_MODEL

if TYPE_CHECKING:
    from partnerguard.snapshot import TenantSnapshot

GLOBAL_ADMINISTRATOR_ROLE_ID = "62e90394-69f5-4237-9190-012177145e10"
PRIVILEGED_ROLE_ADMINISTRATOR_ROLE_ID = "e8611ab8-c189-46e8-94e1-60213ab1f814"

METADATA = CheckMetadata(
    id="gdap.privileged-roles",
    title="No GDAP relationship grants Global or Privileged Role Administrator",
    severity=Severity.HIGH,
    rationale=(
        MFA_REQUIREMENT + " Every partner user's sign-in is a way into the customers it manages, "
        "so what a compromised partner account can do there matters as much as whether it did "
        "MFA. Global Administrator and Privileged Role Administrator own the customer tenant "
        "outright; granular delegated admin privileges exist so partners hold only the "
        "least-privileged roles each task needs."
    ),
    remediation=(
        "1. In Partner Center > Customers > the customer > Admin relationships, open each "
        "relationship listed. 2. Create a new relationship with only the least-privileged roles your "
        "work needs (for example Helpdesk, User or Exchange Administrator), have the customer "
        "approve it, and assign it to security groups. 3. Use Privileged Identity Management or a "
        "separate short relationship when Global Administrator is truly needed for a task. "
        "4. Terminate the over-privileged relationship (or remove the role when it is active). "
        "5. Rescan."
    ),
    permissions=("DelegatedAdminRelationship.Read.All",),
    licence=None,
    references=(
        PARTNER_SECURITY_FAQ,
        SECURE_APP_MODEL,
        Reference(
            "Microsoft Graph: delegatedAdminRelationship resource type",
            "https://learn.microsoft.com/en-us/graph/api/resources/delegatedadminrelationship",
        ),
    ),
    partner_only=True,
)


def execute(snapshot: TenantSnapshot, context: CheckContext) -> CheckOutcome:
    return not_collected_yet()

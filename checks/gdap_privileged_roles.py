"""gdap.privileged-roles: no GDAP relationship grants the two tenant-owning roles (SPEC §1).

Partner tenant only (the engine makes it `scope:partner-only` elsewhere; outside the public
cloud the collector reports the data as unavailable, reason_code `cloud`). Fails for each GDAP
relationship with status active or expiring - resellerDelegatedAdminRelationship items
included - whose accessDetails.unifiedRoles include Global Administrator
(62e90394-69f5-4237-9190-012177145e10) or Privileged Role Administrator
(e8611ab8-c189-46e8-94e1-60213ab1f814).
"""

from __future__ import annotations

from checks.support.gdap_relationships import relationships_in_force
from checks.support.references import MFA_REQUIREMENT, PARTNER_SECURITY_FAQ, SECURE_APP_MODEL
from partnerguard.model import CheckContext, CheckMetadata, CheckOutcome, Reference, Severity, TenantSnapshot, available

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


PRIVILEGED_ROLES = {
    GLOBAL_ADMINISTRATOR_ROLE_ID: "Global Administrator",
    PRIVILEGED_ROLE_ADMINISTRATOR_ROLE_ID: "Privileged Role Administrator",
}


def execute(snapshot: TenantSnapshot, context: CheckContext) -> CheckOutcome:
    findings = []
    for relationship in relationships_in_force(available(snapshot.delegated_admin_relationships)):
        granted = [PRIVILEGED_ROLES[role_id] for role_id in PRIVILEGED_ROLES if role_id in relationship.role_ids]
        if not granted:
            continue
        findings.append(
            relationship.finding(
                f"The GDAP relationship with {relationship.customer_label()} grants "
                + " and ".join(granted)
                + ": any partner user assigned to it owns the customer's tenant. Grant least-privileged "
                "roles instead.",
                METADATA.severity,
                {
                    "privilegedRoles": granted,
                    "roleDefinitionIds": list(relationship.role_ids[:50]),
                    "roleCount": len(relationship.role_ids),
                },
            )
        )
    return CheckOutcome.from_findings(findings)

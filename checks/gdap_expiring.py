"""gdap.expiring: no GDAP relationship is about to end without auto-extend (SPEC §1).

Partner tenant only. Fails for each active or expiring GDAP relationship -
resellerDelegatedAdminRelationship items included - ending within GDAP_EXPIRY_DAYS (inclusive;
an end already passed while Graph still says active counts too) whose autoExtendDuration is
PT0S or P0D, i.e. no automatic extension. A missing or unreadable autoExtendDuration cannot
show an extension and counts as off.
"""

from __future__ import annotations

from datetime import timedelta

from checks.support.gdap_relationships import relationships_in_force
from checks.support.graph_json import days
from checks.support.references import PARTNER_SECURITY_FAQ, SECURE_APP_MODEL, SECURE_APPLICATION_MODEL_REQUIREMENT
from partnerguard.model import CheckContext, CheckMetadata, CheckOutcome, Reference, Severity, TenantSnapshot, available

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
    horizon = context.now + timedelta(days=context.gdap_expiry_days)
    findings = []
    for relationship in relationships_in_force(available(snapshot.delegated_admin_relationships)):
        if relationship.end is None or relationship.end > horizon or relationship.auto_extends:
            continue
        remaining = relationship.end - context.now
        when = (
            f"ended {days(-remaining):g} day(s) ago"
            if remaining <= timedelta(0)
            else f"ends in {days(remaining):g} day(s)"
        )
        findings.append(
            relationship.finding(
                f"The GDAP relationship with {relationship.customer_label()} {when} "
                f"({relationship.end.date().isoformat()}) and does not auto-extend: the access it "
                "grants stops then. Renew it with least-privileged roles, or let it lapse on purpose.",
                METADATA.severity,
                {"daysRemaining": days(remaining), "expiryWarningDays": context.gdap_expiry_days},
            )
        )
    return CheckOutcome.from_findings(findings)

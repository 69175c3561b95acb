"""GDAP relationships as the two gdap checks read them (partner tenant only).

Graph's delegatedAdminRelationship JSON
(https://learn.microsoft.com/en-us/graph/api/resources/delegatedadminrelationship): `id`,
`displayName`, `status`, `customer` {tenantId, displayName}, `accessDetails.unifiedRoles[]`
{roleDefinitionId}, `endDateTime`, `autoExtendDuration`. Items of the derived
`#microsoft.graph.resellerDelegatedAdminRelationship` (indirect resellers) have the same
properties and are judged alike.

Only relationships that grant access now, or until they end, count: status `active` or
`expiring`. Relationships still awaiting approval, or terminated, expired or being terminated,
grant nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from checks.support.graph_json import NAME_LIMIT, duration, iso, objects, text, timestamp
from partnerguard.model import Finding, Severity, SubjectType

JsonObject = Mapping[str, Any]

IN_FORCE_STATUSES = frozenset({"active", "expiring"})
RESELLER_TYPE = "#microsoft.graph.resellerDelegatedAdminRelationship"


@dataclass(frozen=True)
class Relationship:
    id: str
    display_name: str
    status: str
    customer_tenant_id: str
    customer_name: str
    role_ids: tuple[str, ...]
    end: datetime | None
    auto_extend_raw: str | None
    auto_extend: timedelta | None  # None when missing or unreadable
    is_reseller: bool

    @classmethod
    def from_graph(cls, item: JsonObject) -> Relationship:
        customer = item.get("customer")
        customer = customer if isinstance(customer, Mapping) else {}
        access = item.get("accessDetails")
        access = access if isinstance(access, Mapping) else {}
        raw_extend = item.get("autoExtendDuration")
        return cls(
            id=text(item, "id") or "unknown-relationship",
            display_name=text(item, "displayName", NAME_LIMIT),
            status=text(item, "status"),
            customer_tenant_id=text(customer, "tenantId"),
            customer_name=text(customer, "displayName", NAME_LIMIT),
            role_ids=tuple(
                role_id.lower()
                for role in objects(access, "unifiedRoles")
                if (role_id := text(role, "roleDefinitionId"))
            ),
            end=timestamp(item, "endDateTime"),
            auto_extend_raw=raw_extend if isinstance(raw_extend, str) else None,
            auto_extend=duration(raw_extend),
            is_reseller=text(item, "@odata.type").lower() == RESELLER_TYPE.lower(),
        )

    @property
    def in_force(self) -> bool:
        return self.status.lower() in IN_FORCE_STATUSES

    @property
    def auto_extends(self) -> bool:
        """Auto-extend is on only when the duration reads as more than zero (PT0S / P0D are off).

        A missing or unreadable duration cannot show an extension, so it counts as off.
        """
        return self.auto_extend is not None and self.auto_extend > timedelta(0)

    def customer_label(self) -> str:
        return self.customer_name or self.customer_tenant_id or "an unnamed customer"

    def finding(self, detail: str, severity: Severity, evidence: Mapping[str, Any]) -> Finding:
        return Finding(
            subject_id=self.id,
            subject_type=SubjectType.RELATIONSHIP,
            subject_name=self.customer_label(),
            detail=detail,
            severity=severity,
            evidence={
                "relationshipName": self.display_name,
                "customerTenantId": self.customer_tenant_id,
                "customerName": self.customer_name,
                "status": self.status,
                "relationshipType": "reseller" if self.is_reseller else "partner",
                "endDateTime": iso(self.end),
                "autoExtendDuration": self.auto_extend_raw,
                **evidence,
            },
        )


def relationships_in_force(items: Sequence[JsonObject]) -> list[Relationship]:
    """The relationships with status active or expiring, ordered by id."""
    relationships = [Relationship.from_graph(item) for item in items if isinstance(item, Mapping)]
    return sorted((r for r in relationships if r.in_force), key=lambda relationship: relationship.id)

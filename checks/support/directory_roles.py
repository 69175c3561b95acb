"""Names of Microsoft Entra built-in directory roles, by template id, for findings people read.

A role assignment carries only `roleDefinitionId`; for a built-in role that is the role's
template id, the same in every tenant. Names and ids from Microsoft's built-in roles reference
(https://learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference).
Only the roles partners commonly hold are listed: reading every tenant's role definitions would
cost a request per scan to print a name, so any other role (custom ones included) is named by its
id and stays identifiable.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

BUILT_IN_ROLE_NAMES: Mapping[str, str] = {
    "62e90394-69f5-4237-9190-012177145e10": "Global Administrator",
    "e8611ab8-c189-46e8-94e1-60213ab1f814": "Privileged Role Administrator",
    "7be44c8a-adaf-4e2a-84d6-ab2649e08a13": "Privileged Authentication Administrator",
    "194ae4cb-b126-40b2-bd5b-6091b380977d": "Security Administrator",
    "b1be1c3e-b65d-4f19-8427-f6fa0d97feb9": "Conditional Access Administrator",
    "c4e39bd9-1100-46d3-8c65-fb160da0071f": "Authentication Administrator",
    "fe930be7-5e62-47db-91af-98c3a49a38b1": "User Administrator",
    "729827e3-9c14-49f7-bb1b-9608f156bbb8": "Helpdesk Administrator",
    "9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3": "Application Administrator",
    "158c047a-c907-4556-b7ef-446551a6b5f7": "Cloud Application Administrator",
    "8ac3fc64-6eca-42ea-9e69-59f4c7b60eb2": "Hybrid Identity Administrator",
    "29232cdf-9323-42fd-ade2-1d097af3e4de": "Exchange Administrator",
    "f28a1f50-f6e7-4571-818b-6a12f2af6b6c": "SharePoint Administrator",
    "69091246-20e8-4a56-aa4d-066075b2a7a8": "Teams Administrator",
    "3a2c62db-5318-420d-8d74-23affee5d9d5": "Intune Administrator",
    "b0f54661-2d74-4c50-afa3-1ec803f12efe": "Billing Administrator",
    "f2ef992c-3afb-46b9-b7cf-a126ee74c451": "Global Reader",
    "5d6b6bb7-de71-4623-b4af-96380a352509": "Security Reader",
}


def role_name(role_definition_id: str) -> str:
    return BUILT_IN_ROLE_NAMES.get(role_definition_id.lower(), f"role {role_definition_id}")


def role_names(role_definition_ids: Iterable[str]) -> list[str]:
    """Sorted names, so a finding reads the same every scan."""
    return sorted({role_name(role_id) for role_id in role_definition_ids})

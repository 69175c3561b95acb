"""The managed identity that identity-based storage connections use (Tables and Queues alike).

One credential per identity per process: each ManagedIdentityCredential keeps its own HTTP session
and token cache, so building one per client would leak sessions and fetch a token per client.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from partnerguard.settings import StorageSettings

if TYPE_CHECKING:
    from azure.identity import ManagedIdentityCredential


def storage_identity(storage: StorageSettings) -> ManagedIdentityCredential:
    """The user-assigned identity of `__clientId` (or PARTNERGUARD_IDENTITY_CLIENT_ID), else the
    system-assigned one."""
    return _identity(storage.managed_identity_client_id)


@lru_cache(maxsize=4)
def _identity(client_id: str | None) -> ManagedIdentityCredential:
    # Imported here: azure-identity is heavy, and only Azure deployments take this path.
    from azure.identity import ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=client_id) if client_id else ManagedIdentityCredential()

"""Queue clients on the app's storage: the connection string locally, the managed identity in Azure.

Every client writes and reads base64, the Functions host's message encoding.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from partnerguard.queues.names import SCAN_QUEUE, STORAGE_CONNECTION
from partnerguard.settings import StorageSettings

if TYPE_CHECKING:  # the SDK is imported where it is used, so importing this module stays light
    from azure.storage.queue import QueueClient, QueueServiceClient


def queue_service_client(storage: StorageSettings, **client_options: Any) -> QueueServiceClient:
    """The Queue service on the connection string, or on `__queueServiceUri` with the managed
    identity. Take queue clients from `queue_client`, which sets the message encoding."""
    from azure.storage.queue import QueueServiceClient

    from partnerguard.storage.identity import storage_identity

    options: dict[str, Any] = {"connection_timeout": 20, "read_timeout": 60, **client_options}
    if storage.connection_string:
        return QueueServiceClient.from_connection_string(storage.connection_string, **options)
    if storage.queue_service_uri:
        return QueueServiceClient(
            account_url=storage.queue_service_uri, credential=storage_identity(storage), **options
        )
    from partnerguard.settings import ConfigError

    raise ConfigError(STORAGE_CONNECTION, "neither a connection string nor __queueServiceUri is set")


def queue_client(service: QueueServiceClient, name: str, create: bool = True) -> QueueClient:
    """A client of one queue that writes and reads base64 (the host's encoding), created if
    missing (the host does not create a trigger's queue)."""
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.queue import BinaryBase64DecodePolicy, TextBase64EncodePolicy

    # Per queue client: QueueServiceClient.get_queue_client does not pass the service client's
    # encode and decode policies on, so messages would go out as plain text, which the host's
    # base64 decoding refuses. Bytes on the way back: a poisoned body need not be UTF-8.
    client = service.get_queue_client(
        name, message_encode_policy=TextBase64EncodePolicy(), message_decode_policy=BinaryBase64DecodePolicy()
    )
    if create:
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()
    return client


def scan_queue(settings: StorageSettings) -> QueueClient:
    """The scan queue on these storage settings (for callers without the cached services)."""
    return queue_client(queue_service_client(settings), SCAN_QUEUE)

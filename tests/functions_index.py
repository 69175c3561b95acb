"""The Functions app as the host indexes it, once per test session, plus helpers that give the
functions real services (Azurite tables and queues, the tenant simulator) for one test.

azure-functions lets an app be indexed once per process: a second `get_functions()` reports every
function as a duplicate, as the host would. Every test module takes the index from here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.storage.queue import (
    BinaryBase64DecodePolicy,
    BinaryBase64EncodePolicy,
    QueueClient,
    QueueMessage,
    QueueServiceClient,
)

import function_app
from partnerguard import services as services_module
from partnerguard.host_config import HostConfig
from partnerguard.queues.names import ALERT_POISON_QUEUE, ALERT_QUEUE, SCAN_POISON_QUEUE, SCAN_QUEUE
from partnerguard.services import Services, build
from partnerguard.settings import Settings

FUNCTIONS: dict[str, Any] = {str(f.get_function_name()): f for f in function_app.app.get_functions()}


def function(name: str) -> Any:
    """The indexed function `name` (its bindings: get_trigger(), get_function_json())."""
    return FUNCTIONS[name]


def user_function(name: str) -> Any:
    """The Python function behind `name`, to call with azure.functions request objects."""
    return FUNCTIONS[name].get_user_function()


def bindings(name: str) -> list[dict[str, Any]]:
    document: dict[str, Any] = json.loads(FUNCTIONS[name].get_function_json())
    return list(document["bindings"])


class Clock:
    """A settable clock for the services (consent re-probes, guard expiry)."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class FunctionsEnv:
    """Services installed for the functions, and the raw queues to look into."""

    services: Services
    clock: Clock
    queue_service: QueueServiceClient

    def raw_queue(self, name: str) -> QueueClient:
        # Bytes after base64, exactly what the host hands the trigger.
        return self.queue_service.get_queue_client(name, message_decode_policy=BinaryBase64DecodePolicy())

    def send_raw(self, name: str, body: bytes) -> None:
        """Any bytes, base64-encoded as the host expects (a foreign or broken producer)."""
        self.queue_service.get_queue_client(name, message_encode_policy=BinaryBase64EncodePolicy()).send_message(body)

    def receive(self, name: str, limit: int = 32) -> list[QueueMessage]:
        """Every visible message of a queue, removed from it."""
        queue = self.raw_queue(name)
        taken: list[QueueMessage] = []
        while len(taken) < limit:
            batch = list(queue.receive_messages(messages_per_page=32, max_messages=32, visibility_timeout=60))
            if not batch:
                break
            for message in batch:
                queue.delete_message(message)
            taken.extend(batch)
        return taken

    def json_messages(self, name: str) -> list[dict[str, Any]]:
        return [json.loads(message.content) for message in self.receive(name)]


def clear_queues(queue_service: QueueServiceClient) -> None:
    for name in (SCAN_QUEUE, SCAN_POISON_QUEUE, ALERT_QUEUE, ALERT_POISON_QUEUE):
        client = queue_service.get_queue_client(name)
        if any(q.name == name for q in queue_service.list_queues(name_starts_with=name)):
            client.clear_messages()


def functions_env(
    connection_string: str,
    prefix: str,
    environment: Mapping[str, str],
    *,
    clock: Clock | None = None,
    host: HostConfig | None = None,
    **build_options: Any,
) -> Iterator[FunctionsEnv]:
    """Install services on Azurite (tables under `prefix`, the app's fixed queue names emptied
    first) for the functions to use; a generator for use in a fixture."""
    clock = clock or Clock()
    settings = Settings.from_env({**environment, "PARTNERGUARD_STORAGE": connection_string})
    queue_service = QueueServiceClient.from_connection_string(connection_string)
    clear_queues(queue_service)
    services = build(settings, prefix=prefix, clock=clock, host=host, **build_options)
    services_module.install(services)
    try:
        yield FunctionsEnv(services, clock, queue_service)
    finally:
        services_module.reset()
        clear_queues(queue_service)
        queue_service.close()

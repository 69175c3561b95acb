"""What the functions share within one worker process: settings, stores, queue clients, host.json.

Built lazily on the first invocation (so indexing `function_app` touches no network and reads no
settings) and then cached: a Functions worker process serves many invocations, and building
clients, checking tables and queues on every one would cost round trips for nothing. `reset()`
closes and forgets them (tests; a changed environment). Tests may `install()` services of their
own (a table prefix per test, an injected clock).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from partnerguard.clock import Clock, utc_now
from partnerguard.host_config import HostConfig, host_config
from partnerguard.logs import install_log_redaction, register_secret
from partnerguard.queues.names import ALERT_POISON_QUEUE, ALERT_QUEUE, SCAN_POISON_QUEUE, SCAN_QUEUE
from partnerguard.settings import Settings

if TYPE_CHECKING:
    from azure.storage.queue import QueueClient, QueueServiceClient

    from notifiers.alert_transport import AlertTransport
    from notifiers.email_transport import EmailTransport
    from partnerguard.alerts.delivery import AlertDelivery
    from partnerguard.alerts.routing import Destination
    from partnerguard.monitored_tenants import Discover
    from partnerguard.pipeline import Scanner, SnapshotSource
    from partnerguard.storage import ScanStore
    from partnerguard.storage.alert_outbox import AlertStore
    from partnerguard.storage.scan_guard import ScanGuard
    from partnerguard.storage.tenant_registry import TenantRegistry


@dataclass
class Services:
    settings: Settings
    store: ScanStore
    guard: ScanGuard
    registry: TenantRegistry
    alerts: AlertStore
    queues: QueueServiceClient
    host: HostConfig
    clock: Clock = utc_now
    # GDAP customer discovery; None uses the partner tenant's relationships through Graph.
    discover: Discover | None = None
    # Where scans read tenants from; None is Microsoft Graph (tests put failures here).
    snapshot_source: SnapshotSource | None = None
    # Where alert emails go; None builds it from the settings on first use (tests put fakes here).
    transport: EmailTransport | None = None
    # Builds the Teams and webhook channels; None builds them from the settings (tests put
    # stand-ins here).
    channels: Callable[[Destination], AlertTransport] | None = None
    _delivery: AlertDelivery | None = None
    _queue_clients: dict[str, QueueClient] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def queue(self, name: str) -> QueueClient:
        """A client of one queue, created in storage the first time this process uses it."""
        from partnerguard.queues.clients import queue_client

        with self._lock:
            client = self._queue_clients.get(name)
            if client is None:
                client = queue_client(self.queues, name)
                self._queue_clients[name] = client
            return client

    def scan_queue(self) -> QueueClient:
        return self.queue(SCAN_QUEUE)

    def poison_queue(self) -> QueueClient:
        return self.queue(SCAN_POISON_QUEUE)

    def alert_queue(self) -> QueueClient:
        return self.queue(ALERT_QUEUE)

    def alert_poison_queue(self) -> QueueClient:
        return self.queue(ALERT_POISON_QUEUE)

    def delivery(self) -> AlertDelivery | None:
        """Alert delivery on the configured email transport and channels, one per process; None
        when alerts go nowhere."""
        from partnerguard.alerts.delivery import AlertDelivery
        from partnerguard.alerts.transport_from_settings import build_channel, build_transport

        with self._lock:
            if self._delivery is None:
                if self.transport is None:
                    self.transport = build_transport(self.settings)
                if self.transport is None and not self.settings.alerts_configured:
                    return None
                channels = self.channels or partial(build_channel, self.settings)
                self._delivery = AlertDelivery(
                    self.settings, self.store, self.alerts, self.transport, self.clock, channels
                )
            return self._delivery

    def scanner(self) -> Scanner:
        from partnerguard.pipeline import Scanner

        if self.snapshot_source is not None:
            return Scanner(self.settings, self.store, self.snapshot_source, clock=self.clock)
        return Scanner(self.settings, self.store, clock=self.clock)

    def discovery(self) -> Discover:
        if self.discover is not None:
            return self.discover
        from partnerguard.monitored_tenants import discover_gdap_customers

        settings = self.settings
        return lambda: discover_gdap_customers(settings)

    def close(self) -> None:
        for client in self._queue_clients.values():
            client.close()
        self._queue_clients.clear()
        self.queues.close()
        if self._delivery is not None:
            self._delivery.close()
        if self.transport is not None:
            self.transport.close()
        self.alerts.close()
        self.guard.close()
        self.registry.close()
        self.store.close()


def build(
    settings: Settings | None = None,
    *,
    prefix: str = "pg",
    clock: Clock = utc_now,
    host: HostConfig | None = None,
    discover: Discover | None = None,
) -> Services:
    """Services on `settings` (default: the environment), with every table they use ensured."""
    from checks import CHECK_IDS
    from partnerguard.queues.clients import queue_service_client
    from partnerguard.storage import ScanStore
    from partnerguard.storage.accepted_risks import ExceptionStore
    from partnerguard.storage.alert_outbox import AlertStore
    from partnerguard.storage.scan_guard import ScanGuard
    from partnerguard.storage.tenant_registry import TenantRegistry

    settings = settings or Settings.from_env()
    for secret in settings.secret_values():
        register_secret(secret)
    store = ScanStore.from_settings(settings.storage, prefix=prefix)
    guard = ScanGuard(store.service, prefix)
    registry = TenantRegistry(store.service, prefix)
    alerts = AlertStore(store.service, prefix)
    alerts.ensure_tables()
    store.ensure_tables()
    guard.ensure_tables()
    registry.ensure_tables()
    # The scanner reads exceptions from beside the scan tables; a fresh deployment has none yet.
    ExceptionStore(store.service, prefix, check_ids=CHECK_IDS).ensure_tables()
    return Services(
        settings=settings,
        store=store,
        guard=guard,
        registry=registry,
        alerts=alerts,
        queues=queue_service_client(settings.storage),
        host=host or host_config(),
        clock=clock,
        discover=discover,
    )


_services: Services | None = None
_services_lock = threading.Lock()


def get() -> Services:
    """This process's services, built on first use."""
    global _services
    with _services_lock:
        if _services is None:
            install_log_redaction()
            _services = build()
        return _services


def install(services: Services) -> None:
    """Use these services from now on (tests)."""
    global _services
    with _services_lock:
        _services = services


def reset() -> None:
    """Close and forget the cached services; the next `get()` builds them again."""
    global _services
    with _services_lock:
        current, _services = _services, None
    if current is not None:
        current.close()

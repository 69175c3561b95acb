"""The process's `Api`: built on the process's `Services` on first use, rebuilt when they change.

`partnerguard.services` owns the clients (and `reset()` / `install()` for tests); this
only adds what the API alone needs, the continuation-token key, read from the same storage.
"""

from __future__ import annotations

import threading

from partnerguard import services as services_module
from partnerguard.api.handlers import Api
from partnerguard.api.tokens import ContinuationKeyStore, ContinuationSigner
from partnerguard.services import Services

_lock = threading.Lock()
_current: tuple[Services, Api] | None = None


def build(services: Services) -> Api:
    keys = ContinuationKeyStore(services.store.service, services.store.prefix)

    def signer() -> ContinuationSigner:
        return keys.signer()

    return Api(services, signer)


def api() -> Api:
    global _current
    services = services_module.get()
    with _lock:
        if _current is None or _current[0] is not services:
            _current = (services, build(services))
        return _current[1]

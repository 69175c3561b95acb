"""Noisy neighbours: other apps of a tenant that use a budget PartnerGuard shares with them.

Graph's Conditional Access limit is 1 request per second per tenant *for all apps together*
(https://learn.microsoft.com/graph/throttling-limits): a security tool, a backup product or the
admin portal reading policies in the same second makes PartnerGuard's read answer 429 — with no
Retry-After. No client-side pacing can see that traffic; only back-off can cope with it. A
`NoisyNeighbour` is such an app: a thread that spends the tenant's budget of one API class at
random (Poisson) instants, `rate_per_s` on average, through the simulator's own throttle, exactly
as another app's requests would.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from testbed.simulator.throttling import ApiClass, Throttle

# Not the app the simulator issues tokens to: another vendor's multi-tenant app.
NEIGHBOUR_APP_ID = "a11ce000-0000-4000-8000-00000000beef"


@dataclass
class NoisyNeighbour:
    tenant_id: str
    rate_per_s: float
    api_class: ApiClass = ApiClass.CONDITIONAL_ACCESS
    app_id: str = NEIGHBOUR_APP_ID
    # None: fresh randomness each run. Another app's requests are not timed against ours; a fixed
    # seed would replay one schedule that lines up with a scan started the same way every time.
    seed: int | None = None
    admitted: int = 0
    rejected: int = 0
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def start(self, throttle: Throttle) -> None:
        if self.rate_per_s <= 0:
            raise ValueError("a noisy neighbour needs a positive rate")
        if self._thread is not None:
            return
        self._stop.clear()
        rng = random.Random(self.seed)

        def run() -> None:
            # Exponential gaps: a Poisson process of the given mean rate.
            while not self._stop.wait(rng.expovariate(self.rate_per_s)):
                if throttle.admit(self.api_class, self.tenant_id.lower(), self.app_id) is None:
                    self.admitted += 1
                else:
                    self.rejected += 1

        self._thread = threading.Thread(target=run, name=f"noisy-neighbour-{self.tenant_id}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

"""The clock every time-dependent part of PartnerGuard is given, never reads for itself.

Scans, the finding lifecycle, exceptions' expiry, alert leases and deferrals all take a `Clock`,
so tests drive them with a clock they move forward (never a frozen one) and production passes
`utc_now`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """Now, timezone-aware in UTC: every stored and compared moment is UTC."""
    return datetime.now(UTC)

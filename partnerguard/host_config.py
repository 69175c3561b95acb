"""The Functions host settings (host.json) that decide how long a scan may take and how often a
message is retried, read in one place: the scan guard's lifetime and the workers' last-attempt
handling are derived from them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

HOST_JSON = Path(__file__).resolve().parents[1] / "host.json"
# How long past the function timeout a guard stays valid: the host needs a moment to notice a
# timed-out invocation and our own writes after the scan take seconds, not minutes.
GUARD_MARGIN = timedelta(minutes=10)
# The queues extension's documented defaults, used when host.json leaves a value out.
_DEFAULT_MAX_DEQUEUE = 5
_DEFAULT_VISIBILITY = timedelta(0)
# The default function timeout of the Flex Consumption and Premium plans.
_DEFAULT_TIMEOUT = timedelta(minutes=30)
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.\d+)?$")


def parse_timespan(value: str) -> timedelta:
    """A .NET TimeSpan as host.json writes it: `[d.]hh:mm:ss[.fff]`."""
    match = _TIMESPAN.match(value.strip())
    if match is None:
        raise ValueError(f"not a timespan [d.]hh:mm:ss: {value!r}")
    days, hours, minutes, seconds = (int(part) if part else 0 for part in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


@dataclass(frozen=True)
class HostConfig:
    """The host settings the workers depend on, read from host.json in one place."""

    function_timeout: timedelta
    max_dequeue_count: int
    visibility_timeout: timedelta

    @property
    def guard_ttl(self) -> timedelta:
        """How long a scan guard stays valid without being renewed: the longest an invocation
        can run, plus a margin. A crashed worker blocks its tenant at most this long."""
        return self.function_timeout + GUARD_MARGIN

    @classmethod
    def from_document(cls, document: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> HostConfig:
        """Values from host.json, overridden as the host overrides them: by app settings named
        `AzureFunctionsJobHost__<path>` (https://learn.microsoft.com/azure/azure-functions/functions-host-json#override-hostjson-values)."""
        env = os.environ if environ is None else environ
        queues = document.get("extensions", {}).get("queues", {})
        timeout_text = env.get("AzureFunctionsJobHost__functionTimeout") or document.get("functionTimeout")
        dequeue_text = env.get("AzureFunctionsJobHost__extensions__queues__maxDequeueCount") or queues.get(
            "maxDequeueCount"
        )
        visibility_text = env.get("AzureFunctionsJobHost__extensions__queues__visibilityTimeout") or queues.get(
            "visibilityTimeout"
        )
        timeout = _DEFAULT_TIMEOUT
        if timeout_text and str(timeout_text).strip() != "-1":
            timeout = parse_timespan(str(timeout_text))
        elif timeout_text:
            # -1 is "unbounded" on the plans that allow it; a guard must still expire some day.
            timeout = timedelta(hours=2)
        max_dequeue = int(dequeue_text) if dequeue_text is not None else _DEFAULT_MAX_DEQUEUE
        if max_dequeue < 1:
            raise ValueError("maxDequeueCount must be at least 1")
        visibility = parse_timespan(str(visibility_text)) if visibility_text else _DEFAULT_VISIBILITY
        return cls(function_timeout=timeout, max_dequeue_count=max_dequeue, visibility_timeout=visibility)

    @classmethod
    def load(cls, path: Path = HOST_JSON, environ: Mapping[str, str] | None = None) -> HostConfig:
        return cls.from_document(json.loads(path.read_text(encoding="utf-8")), environ)


@lru_cache(maxsize=1)
def host_config() -> HostConfig:
    """host.json of this app, read once per process."""
    return HostConfig.load()

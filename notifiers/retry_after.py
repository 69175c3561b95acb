"""How long a throttled receiver asks to be left alone: the wait of a 429 (or 503) answer.

Every channel that can be throttled (ACS in notifiers/acs.py, the Teams and JSON webhooks in
notifiers/webhook_post.py) hands this wait to the alert worker as `SendThrottled.retry_after`,
so it is read one way for all of them: `Retry-After` in seconds or as an HTTP date (RFC 9110
§10.2.3, https://www.rfc-editor.org/rfc/rfc9110#field.retry-after), and Azure's millisecond
headers (`retry-after-ms`, `x-ms-retry-after-ms`), which are more precise and win. A value that
is none of these is no wait at all (None): the worker's own back-off applies.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime


def retry_after_seconds(headers: Mapping[str, str], now_epoch: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms`, or `Retry-After` in seconds or as an HTTP date."""
    lowered = {key.lower(): value for key, value in headers.items()}
    milliseconds = lowered.get("retry-after-ms") or lowered.get("x-ms-retry-after-ms")
    try:
        if milliseconds is not None:
            seconds = float(milliseconds) / 1000
            # "nan" or "inf" parse as floats, and a NaN wait would break every back-off after.
            return max(seconds, 0.0) if math.isfinite(seconds) else None
        value = lowered.get("retry-after")
        if value is None:
            return None
        if value.strip().replace(".", "", 1).isdigit():
            return max(float(value), 0.0)
        moment = parsedate_to_datetime(value).timestamp()
        return max(moment - (time.time() if now_epoch is None else now_epoch), 0.0)
    except (TypeError, ValueError, OverflowError):
        return None

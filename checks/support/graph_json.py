"""Reading values out of Graph's JSON defensively: strings, timestamps, ISO 8601 durations.

Applications, service principals, sign-ins and GDAP relationships reach the checks as Graph's
own JSON. Much of it is tenant-controlled (names, descriptions), and any of it may be missing,
null or of another type than documented: these readers never raise on a bad value, they
return "" or None and let the check decide what an unreadable value means.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

# Names and other tenant-controlled strings are cut to this length before they reach findings.
NAME_LIMIT = 256

# ISO 8601 duration as Graph writes Edm.Duration (e.g. "P730D", "PT0S", "P180D"): days or
# weeks, then optional time parts. Years and months are not fixed lengths, so they are not read.
_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)


def text(container: Mapping[str, Any], key: str, limit: int | None = None) -> str:
    """A string property, stripped; "" when missing, null or not a string."""
    value = container.get(key)
    if not isinstance(value, str):
        return ""
    value = value.strip()
    return value[:limit] if limit is not None else value


def equals_ignoring_case(container: Mapping[str, Any], key: str, expected: str) -> bool:
    """Whether a string property is `expected`, compared case-insensitively; False when missing."""
    return text(container, key).casefold() == expected.casefold()


def objects(container: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """A collection-of-objects property, without the items that are not objects."""
    value = container.get(key)
    if not isinstance(value, Sequence) or isinstance(value, str):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def timestamp(container: Mapping[str, Any], key: str) -> datetime | None:
    """A DateTimeOffset property as an aware datetime (UTC when Graph gave no offset); None
    when missing or unreadable."""
    raw = text(container, key)
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def duration(value: object) -> timedelta | None:
    """An ISO 8601 duration ("P180D", "PT0S", "P0D"); None when missing or not readable."""
    if not isinstance(value, str):
        return None
    parts = _DURATION.match(value.strip().upper())
    if parts is None or value.strip().upper() in ("P", "PT"):
        return None
    amounts = {name: float(amount) for name, amount in parts.groupdict().items() if amount is not None}
    if not amounts:
        return None
    return timedelta(**amounts)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def days(delta: timedelta) -> float:
    """A timedelta in days, rounded for reading (negative for a negative delta)."""
    return round(delta / timedelta(days=1), 2)

"""Table Storage's size limits, enforced here because Azurite does not enforce them all.

Real Azure rejects a string property over 64 KiB (32 K UTF-16 code units), an entity over 1 MiB
and a transaction over 100 operations or 4 MiB. A scan must never fail on a hostile display
name, so tenant-controlled text is capped *before* it is stored (and before the report is built,
so the report a run returns equals the one read back later), JSON is written ASCII-only (its
length is then its size in UTF-16 units and on the wire), and long JSON is split across several
properties.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from partnerguard.storage.keys import utf16_units

MAX_STRING_UNITS = 32 * 1024  # 64 KiB of UTF-16
MAX_ENTITY_BYTES = 1024 * 1024
MAX_BATCH_OPERATIONS = 100
# The wire size limit is 4 MiB; the estimate below is close, so keep a wide margin for the
# multipart framing and headers of each operation.
MAX_BATCH_BYTES = 3 * 1024 * 1024
OPERATION_OVERHEAD_BYTES = 1024

# Caps on what a finding or check may carry (UTF-16 units / JSON characters).
MAX_EVIDENCE_CHARS = 16 * 1024
MAX_NAME_UNITS = 1024
MAX_DETAIL_UNITS = 4096
MAX_SUBJECT_ID_UNITS = 4096
MAX_TEXT_UNITS = 4096
# JSON longer than this is split across properties `<name>_0`, `<name>_1`, ...
CHUNK_CHARS = 30 * 1024

ELLIPSIS = "…"


def clean_text(value: str) -> str:
    """Replace lone surrogates (which no UTF-8 or UTF-16 encoder accepts) with U+FFFD."""
    return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def cap_text(value: str, max_units: int) -> str:
    """`value` cleaned and, when longer than `max_units` UTF-16 units, cut and marked with `…`."""
    value = clean_text(value)
    if utf16_units(value) <= max_units:
        return value
    used = 0
    end = 0
    for index, char in enumerate(value):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > max_units - 1:
            break
        end = index + 1
    return value[:end] + ELLIPSIS


def to_json(value: Any) -> str:
    """Compact, ASCII-only JSON: its length is its size in characters, UTF-16 units and bytes."""
    return json.dumps(value, ensure_ascii=True, separators=(",", ":"), default=_json_default)


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def cap_json_object(value: Mapping[str, Any], max_chars: int = MAX_EVIDENCE_CHARS) -> dict[str, Any]:
    """`value` as it reads back from JSON, within `max_chars` of JSON.

    Oversized evidence keeps as many of its top-level entries, in order, as fit, and gains
    `"truncated": true`, so readers see that something was left out.
    """
    text = to_json(dict(value))
    if len(text) <= max_chars:
        loaded: dict[str, Any] = json.loads(text)
        return loaded
    kept: dict[str, Any] = {}
    budget = max_chars - len('{"truncated":true}') - 1
    for key, item in value.items():
        if key == "truncated":
            continue
        entry = to_json({key: item})
        size = len(entry) - 1  # '{' and '}' of each entry become one ',' in the whole
        if size > budget:
            continue
        kept[key] = item
        budget -= size
    kept["truncated"] = True
    capped: dict[str, Any] = json.loads(to_json(kept))
    return capped


def split_chunks(name: str, text: str) -> dict[str, Any]:
    """Properties holding `text` (ASCII JSON) in pieces a string property can hold."""
    pieces = [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)] or [""]
    props: dict[str, Any] = {f"{name}_chunks": len(pieces)}
    props.update({f"{name}_{index}": piece for index, piece in enumerate(pieces)})
    return props


def join_chunks(name: str, entity: Mapping[str, Any]) -> str | None:
    count = entity.get(f"{name}_chunks")
    if not isinstance(count, int):
        return None
    return "".join(str(entity[f"{name}_{index}"]) for index in range(count))


def chunk_names(name: str, max_chunks: int) -> list[str]:
    return [f"{name}_chunks", *(f"{name}_{index}" for index in range(max_chunks))]


def _value_bytes(value: Any) -> int:
    if isinstance(value, str):
        return 4 + 2 * utf16_units(value)
    if isinstance(value, bool | int | float):
        return 8
    if isinstance(value, datetime):
        return 8
    if isinstance(value, bytes):
        return 4 + len(value)
    return 4 + 2 * len(str(value))


def entity_bytes(entity: Mapping[str, Any]) -> int:
    """The entity's size as Azure counts it (4 + keys + per property 8 + 2 × name + value)."""
    size = 4
    for name, value in entity.items():
        if name in ("PartitionKey", "RowKey"):
            size += 2 * utf16_units(str(value))
        else:
            size += 8 + 2 * len(name) + _value_bytes(value)
    return size


def wire_bytes(entity: Mapping[str, Any]) -> int:
    """An estimate of the entity's share of a transaction body: its JSON (the SDK sends ASCII
    JSON, like `to_json`), type annotations and the operation's multipart framing."""
    annotations = sum(40 for value in entity.values() if isinstance(value, datetime))
    return len(to_json(dict(entity))) + annotations + OPERATION_OVERHEAD_BYTES


class LimitExceeded(ValueError):
    """Something would be rejected by Azure for its size; raised before anything is written."""


def check_entity(entity: Mapping[str, Any]) -> None:
    for name, value in entity.items():
        if isinstance(value, str) and utf16_units(value) > MAX_STRING_UNITS:
            raise LimitExceeded(f"property {name} holds {utf16_units(value)} UTF-16 units, over 64 KiB")
    if (size := entity_bytes(entity)) > MAX_ENTITY_BYTES:
        raise LimitExceeded(f"entity of {size} bytes is over 1 MiB")

"""Table names, run ids and the escaping that turns finding subject ids into valid RowKeys.

Table Storage keys forbid `/ \\ # ?` and the control characters U+0000–U+001F and U+007F–U+009F,
and hold at most 1 KiB (512 UTF-16 code units). Subject ids are partly tenant-controlled
(`<userId>|<clientAppUsed>`), so they are escaped reversibly: every forbidden character, `%`
itself and any lone surrogate become `%HH` (their UTF-8 bytes, upper-case hex). An escaped id
that is still too long keeps a readable prefix and ends in `%~` + a SHA-256 of the raw id; the
escaping never produces `%~`, so a shortened key cannot collide with an unshortened one. The raw
id is always stored as a property next to the key, so nothing is lost.

Run ids (`^[0-9A-Za-z-]{1,64}$`, SPEC §4) are a 13-digit inverted millisecond timestamp and a
random suffix: RowKeys sort ascending, so a tenant's newest run is the first row of its partition.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime

RUN_ID_RE = re.compile(r"^[0-9A-Za-z-]{1,64}$")
TABLE_PREFIX_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{0,51}$")
TABLE_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]{2,62}$")

# 1 KiB is 512 UTF-16 code units; stay a little under it.
MAX_KEY_UNITS = 480
_MAX_MILLIS = 10**13 - 1  # inverted timestamps stay 13 digits until the year 2286
_DIGEST_CHARS = 40
_SHORTENED_MARK = "%~"
_ESCAPED_RUN = re.compile(r"(?:%[0-9A-F]{2})+")


def table_names(prefix: str) -> tuple[str, str, str]:
    """The runs, findings and runfindings table names for a prefix (alphanumeric, letter first)."""
    if not TABLE_PREFIX_RE.match(prefix):
        raise ValueError(f"table prefix must be 1-52 letters or digits starting with a letter, got {prefix!r}")
    names = (f"{prefix}runs", f"{prefix}findings", f"{prefix}runfindings")
    assert all(TABLE_NAME_RE.match(name) for name in names)
    return names


def is_run_id(value: str) -> bool:
    return bool(RUN_ID_RE.fullmatch(value))


def _millis(moment: datetime) -> int:
    if moment.tzinfo is None:
        raise ValueError("run times must be timezone-aware (UTC)")
    return int(moment.timestamp() * 1000)


def new_run_id(now: datetime) -> str:
    """A run id that sorts before every run id made at an earlier millisecond."""
    inverted = _MAX_MILLIS - _millis(now)
    return f"{inverted:013d}-{secrets.token_hex(5)}"


def run_id_time(run_id: str) -> datetime | None:
    """When a run id made by `new_run_id` was made (millisecond precision); None for other ids."""
    head = run_id.split("-", 1)[0]
    if len(head) != 13 or not head.isdigit():
        return None
    return datetime.fromtimestamp((_MAX_MILLIS - int(head)) / 1000, tz=UTC)


def run_ids_before(moment: datetime) -> str:
    """The smallest RowKey of runs made strictly before `moment` (they sort after it)."""
    return f"{_MAX_MILLIS - _millis(moment) + 1:013d}"


def utf16_units(value: str) -> int:
    """Length as Table Storage counts it: UTF-16 code units (astral characters count twice)."""
    return len(value) + sum(1 for char in value if ord(char) > 0xFFFF)


def _must_escape(char: str, extra: str) -> bool:
    # Besides what Table Storage forbids in keys (`/ \\ # ?` and control characters) and lone
    # surrogates (not encodable as UTF-8), two more are percent-encoded:
    # - `'`: inside an entity-group transaction the key travels in the sub-request URL as an OData
    #   literal (`RowKey='...'`), and an unescaped quote there ended the literal early, silently
    #   storing the entity under another PartitionKey (seen with Azurite; a property-based test
    #   found it);
    # - anything outside printable ASCII, so that a key measures the same in characters, UTF-16
    #   units and bytes, and the 1 KiB limit holds however a layer counts it.
    code = ord(char)
    return code <= 0x1F or code >= 0x7F or char in "/\\#?%'" or char in extra


def escape_key(value: str, extra: str = "") -> str:
    """Reversibly escape a string for use in a key; `extra` names more characters to escape."""
    out: list[str] = []
    for char in value:
        if _must_escape(char, extra):
            out.append("".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass")))
        else:
            out.append(char)
    return "".join(out)


def unescape_key(value: str) -> str:
    """The inverse of `escape_key` (not of a shortened key, whose raw id is stored beside it)."""
    return _ESCAPED_RUN.sub(
        lambda m: bytes.fromhex(m.group(0).replace("%", "")).decode("utf-8", "surrogatepass"), value
    )


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST_CHARS]


def _prefix_within(escaped: str, budget: int) -> str:
    """The longest prefix of `escaped` within `budget` UTF-16 units that does not split a `%HH`."""
    used = 0
    end = 0
    for index, char in enumerate(escaped):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > budget:
            break
        end = index + 1
    prefix = escaped[:end]
    cut = prefix.rfind("%")
    if cut != -1 and len(prefix) - cut < 3:
        prefix = prefix[:cut]
    return prefix


def bounded_key(head: str, raw: str, head_extra: str = "|") -> str:
    """`<escaped head>|<escaped raw>`, shortened with a digest of `raw` when over the key limit."""
    escaped_head = escape_key(head, head_extra)
    escaped = escape_key(raw)
    key = f"{escaped_head}|{escaped}" if head else escaped
    if utf16_units(key) <= MAX_KEY_UNITS:
        return key
    lead = f"{escaped_head}|" if head else ""
    budget = MAX_KEY_UNITS - utf16_units(lead) - len(_SHORTENED_MARK) - _DIGEST_CHARS
    if budget < 0:
        raise ValueError("key head too long")
    return f"{lead}{_prefix_within(escaped, budget)}{_SHORTENED_MARK}{_digest(raw)}"


def tenant_key(tenant_id: str) -> str:
    """The PartitionKey of a tenant (tenant ids are GUIDs; anything else is escaped, not trusted)."""
    return bounded_key("", tenant_id)


def finding_row_key(check_id: str, subject_id: str) -> str:
    """`<check_id>|<escaped subject_id>`: one tenant's finding, stable across runs."""
    return bounded_key(check_id, subject_id)


def run_findings_partition(tenant_id: str, run_id: str) -> str:
    """The PartitionKey of one run's findings: `<tenant key>_<run id>` (run ids have no `_`)."""
    if not is_run_id(run_id):
        raise ValueError(f"not a run id: {run_id!r}")
    return f"{tenant_key(tenant_id)}_{run_id}"


def check_range(check_id: str) -> tuple[str, str]:
    """RowKey bounds [low, high) of one check's findings in a tenant partition."""
    head = escape_key(check_id, "|")
    return f"{head}|", f"{head}}}"  # '}' is the character after '|'

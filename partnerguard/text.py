"""Making tenant-controlled text safe to show outside HTML (terminals, plain text, log lines).

Display names, app names and policy names come from tenants PartnerGuard does not control. On a
terminal, a control character or an ANSI escape in a name could rewrite the screen, and a
right-to-left override could make a name read backwards; in a log line a newline could forge an
entry. `safe_text` makes every such character visible as an escape instead. HTML output escapes
with Jinja2's autoescaping on top of this.
"""

from __future__ import annotations

import re
import unicodedata

# C0 and C1 controls, DEL, and the Unicode bidirectional formatting characters (embeddings,
# overrides, isolates, marks) that reorder how text is displayed, and the Unicode line and
# paragraph separators that some clients treat as line breaks.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\u061c]")


def _escape(match: re.Match[str]) -> str:
    char = match.group(0)
    return f"\\u{ord(char):04x}" if ord(char) > 0xFF else f"\\x{ord(char):02x}"


def safe_text(value: object, limit: int | None = None) -> str:
    """`value` as one line of inert text, optionally cut to `limit` characters (with an ellipsis)."""
    text = _UNSAFE.sub(_escape, unicodedata.normalize("NFC", str(value)))
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)] + "…"
    return text

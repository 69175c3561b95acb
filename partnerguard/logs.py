"""Logging that cannot leak a secret or be forged by tenant data.

Every record passes through `SafeFormatter`: bearer tokens, JWTs, storage account keys, SAS
signatures and client secrets are masked, whatever logger produced them (azure-core and MSAL
included), and control characters from tenant-controlled names are made visible, so a display
name with a newline cannot write a fake log line.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any

from partnerguard.text import safe_text

REDACTED = "***"

_SECRET_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/]+=*"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),  # a JWT
    re.compile(
        r"(?i)((?:AccountKey|SharedAccessKey|accesskey|client_secret|client_assertion|sig|secret)\s*[=:]\s*)[^;&\s\"']+"
    ),
)

_registered_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Mask this exact value wherever it would be logged (settings register theirs at start)."""
    if value and len(value) >= 6:
        _registered_secrets.add(value)


def redact(text: str) -> str:
    for secret in _registered_secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
    return text


class SafeFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        # The message is one line, whatever a tenant put in a name; a traceback appended by
        # format() keeps its line breaks but is redacted and escaped line by line.
        record.message = safe_text(redact(record.message))
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        return "\n".join(safe_text(redact(line)) for line in super().formatException(ei).split("\n"))


def configure_logging(verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    # The SDKs log every HTTP exchange at INFO; their warnings still show.
    for noisy in ("azure", "msal", "httpx", "httpcore", "kiota_http", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

"""Logging that cannot leak a secret or be forged by tenant data.

Every record passes through `SafeFormatter` (the command line) or `RedactingFilter` (the
Functions host's handler, which formats records itself): bearer tokens, JWTs, storage account
keys, SAS signatures (raw or percent-encoded, as a URL inside another URL carries them) and
client secrets are masked, whatever logger produced them (azure-core and MSAL included), in the
message and in the traceback `log.exception` attaches; and control characters from
tenant-controlled names are made visible, so a display name with a newline cannot write a fake
log line. `redact` is also what every error text goes through before it is stored or served
(partnerguard/storage/store.py, partnerguard/storage/alert_outbox.py).
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any
from urllib.parse import parse_qs, quote, quote_plus, unquote

from partnerguard.text import safe_text

REDACTED = "***"

_SECRET_PATTERNS = (
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9\-._~+/]+=*"),
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),  # a JWT
    # A keyword and its value: `name=value` (connection strings, query strings) whatever its
    # length; `name: value` only from 8 characters, since every key, signature, secret and
    # assertion these keywords name is far longer and a shorter word after a colon is prose
    # ("AZURE_CLIENT_SECRET: not set" stays readable instead of becoming "...: *** set").
    re.compile(
        r"(?i)((?:AccountKey|SharedAccessKey|SharedAccessSignature|accesskey|client_secret|client_assertion|sig|secret)"
        r"\s*=\s*)[^;&\s\"']+"
    ),
    re.compile(
        r"(?i)((?:AccountKey|SharedAccessKey|SharedAccessSignature|accesskey|client_secret|client_assertion|sig|secret)"
        r"\s*:\s*)[^;&\s\"']{8,}"
    ),
    # A SAS signature inside a percent-encoded URL (a gateway page's "return to" link, a URL
    # logged as a query parameter): `sig%3D…` or, encoded twice, `sig%253D…`. The signature ends
    # at the next encoded `&`, so the rest of the URL stays readable.
    re.compile(
        r"(?i)((?:(?<![A-Za-z0-9])|(?<=%26)|(?<=%3F)|(?<=%2526)|(?<=%253F))sig%(?:25)?3D)"
        r"(?:(?!%26|%2526)[^;&\s\"'])+"
    ),
)

_registered_secrets: set[str] = set()


def _forms(value: str) -> set[str]:
    """`value` as given and as it travels in URLs (encoded once or twice, or decoded)."""
    once = quote(value, safe="")
    return {value, once, quote_plus(value), quote(once, safe=""), unquote(value)}


def register_secret(value: str | None) -> None:
    """Mask this exact value wherever it would be logged (settings register theirs at start),
    also URL-encoded or decoded; for a SAS token, its signature on its own too."""
    if not value or len(value) < 6:
        return
    for form in _forms(value):
        if len(form) >= 6:
            _registered_secrets.add(form)
    if "sig=" in value.lower():
        for name, values in parse_qs(value.lstrip("?"), keep_blank_values=False).items():
            if name.lower() == "sig":
                for signature in values:
                    register_secret(signature)


def redact(text: str) -> str:
    # Longest first, so that a secret containing another is masked whole.
    for secret in sorted(_registered_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
    return text


def safe_error(error: object, limit: int | None = None) -> str:
    """An error's text for a log line, a stored row or an answer: redacted first, then made
    inert and cut (cut first, a secret split in two would no longer be recognised)."""
    return safe_text(redact(str(error)), limit)


def redacted_lines(text: str) -> str:
    """A multi-line text (a traceback) redacted and made inert line by line."""
    return "\n".join(safe_text(redact(line)) for line in redact(text).split("\n"))


class SafeFormatter(logging.Formatter):
    def formatMessage(self, record: logging.LogRecord) -> str:
        # The message is one line, whatever a tenant put in a name; a traceback appended by
        # format() keeps its line breaks but is redacted and escaped line by line.
        record.message = safe_text(redact(record.message))
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        return redacted_lines(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return redacted_lines(super().formatStack(stack_info))


_PLAIN = logging.Formatter()


class RedactingFilter(logging.Filter):
    """Masks secrets and makes tenant text inert in every record a handler emits.

    The Functions Python worker sends log records to the host through its own handler on the
    root logger, with its own formatting, so the command line's SafeFormatter never sees them; a
    filter on that handler does. It rewrites the message, and folds the traceback (`exc_info`,
    which `log.exception` attaches) and any stack into it, redacted line by line, then drops
    them from the record: a handler that formats `exc_info` itself would otherwise print the
    exception's text, secrets included, untouched."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record
            message = str(record.msg)
        extra: list[str] = []
        if record.exc_info:
            extra.append(record.exc_text or _PLAIN.formatException(record.exc_info))
        elif record.exc_text:
            extra.append(record.exc_text)
        if record.stack_info:
            extra.append(record.stack_info)
        text = safe_text(redact(message))
        if extra:
            text += "\n" + "\n".join(redacted_lines(part) for part in extra)
        record.msg, record.args = text, None
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Put a `RedactingFilter` on every handler of `logger` (the root logger by default)."""
    root = logger or logging.getLogger()
    for handler in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def configure_logging(verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(SafeFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)
    # The SDKs log every HTTP exchange at INFO; their warnings still show.
    for noisy in ("azure", "msal", "httpx", "httpcore", "kiota_http", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

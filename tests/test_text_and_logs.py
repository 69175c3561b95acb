"""Tenant-controlled text is inert on terminals and in logs; secrets never reach a log line."""

from __future__ import annotations

import logging

import pytest

from partnerguard.logs import SafeFormatter, redact, register_secret
from partnerguard.text import safe_text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ops team", "Ops team"),
        ("evil\nINFO forged line", "evil\\x0aINFO forged line"),
        ("\x1b[2Jwiped", "\\x1b[2Jwiped"),
        ("\u202egnp.exe", "\\u202egnp.exe"),
        ("tab\there", "tab\\x09here"),
        ("\x85next", "\\x85next"),
    ],
)
def test_safe_text_makes_controls_and_bidi_visible(raw: str, expected: str) -> None:
    assert safe_text(raw) == expected


def test_safe_text_cuts_long_names() -> None:
    out = safe_text("x" * 10_000, limit=40)
    assert len(out) == 40 and out.endswith("…")


def test_redaction_masks_tokens_keys_and_registered_secrets() -> None:
    register_secret("very-secret-client-value")
    line = (
        "Authorization: Bearer abc.def-ghi and eyJhbGciOiJSUzI1NiJ9.eyJ0aWQiOiJ4In0.c2lnbmF0dXJl "
        "AccountKey=Eby8vdM02xNOcqF==; client_secret=very-secret-client-value&x=1 sig=abcd%2F"
    )
    out = redact(line)
    for leaked in ("abc.def-ghi", "eyJhbGciOiJSUzI1NiJ9", "Eby8vdM02xNOcqF", "very-secret-client-value", "abcd%2F"):
        assert leaked not in out
    assert out.count("***") >= 5


@pytest.mark.parametrize(
    "prose",
    [
        "AZURE_CLIENT_SECRET: not set",
        "ACS_CONNECTION_STRING: no AccessKey: set one or use ACS_ENDPOINT",
        "secret: none",
    ],
)
def test_redaction_leaves_a_short_word_after_a_colon_readable(prose: str) -> None:
    # Over-redaction turned a configuration error into "AZURE_CLIENT_SECRET: *** set".
    assert redact(prose) == prose


def test_redaction_masks_long_values_after_a_colon() -> None:
    assert "QmFzZTY0U2VjcmV0VmFsdWU" not in redact("client_secret: QmFzZTY0U2VjcmV0VmFsdWU")


def test_a_percent_encoded_signature_is_masked_and_the_rest_of_the_url_kept() -> None:
    url = "https://pg.example/cb?return=%2Fq%3Fsv%3D2024%26sig%3DAbCdEfGhIjKlMnOp%252B%26se%3D2026-12-07"
    out = redact(url)
    assert "AbCdEfGhIjKlMnOp" not in out
    assert out.endswith("%26se%3D2026-12-07")


def test_formatter_neutralises_forged_lines_and_secrets() -> None:
    register_secret("hunter2-secret")
    record = logging.LogRecord(
        "x", logging.WARNING, __file__, 1, "user %s used %s", ("a\nFAKE ERROR", "hunter2-secret"), None
    )
    text = SafeFormatter("%(message)s").format(record)
    assert "\n" not in text
    assert "hunter2-secret" not in text


def test_unicode_line_separators_are_inert() -> None:
    assert safe_text("a\u2028b\u2029c") == "a\\u2028b\\u2029c"

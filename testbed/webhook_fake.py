"""A local stand-in for a receiver of PartnerGuard's signed JSON webhook (a PSA's inbound
webhook, a Logic App, an automation), for tests and the demo. Never imported by deployed code.

It checks what a careful receiver checks, with code of its own (not PartnerGuard's), so a mistake
on either side shows:

- the signature: `X-PartnerGuard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 over
  "<t>.<body>">` keyed with the shared secret, compared in constant time; missing, malformed or
  wrong: 401; a timestamp more than `tolerance` (5 minutes) from the fake's own `clock` (unix
  seconds, which a test moves): 401, so a captured call cannot be replayed later;
- the document: JSON, valid against docs/webhook-payload.schema.json (Draft 2020-12, formats
  checked), with `Idempotency-Key` and `X-PartnerGuard-Event` equal to its `idempotency_key` and
  `kind`: 400 otherwise.

It answers 202 to a call it takes and keeps it (`deliveries`), a repeated idempotency key
included, marked as a repeat: a receiver acknowledges a repeat and drops it, and a test sees how
many calls carried the same key. Faults: see `testbed.webhook_receiver`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

from testbed.webhook_receiver import Verdict, WebhookReceiverFake

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "docs" / "webhook-payload.schema.json"
# How far a signature's timestamp may be from the receiver's clock (docs/alerts.md suggests it).
DEFAULT_TOLERANCE_SECONDS = 300
_SIGNATURE = re.compile(r"^t=(?P<t>[0-9]{1,12}),v1=(?P<v1>[0-9a-f]{64})$")


@cache
def payload_validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def payload_problems(document: Any) -> list[str]:
    """Why `document` is not a valid v1 payload; empty when it is."""
    return [
        f"{'/'.join(map(str, error.absolute_path)) or 'document'}: {error.message[:300]}"
        for error in payload_validator().iter_errors(document)
    ]


@dataclass(frozen=True)
class WebhookDelivery:
    """A call the fake took: its key, kind and document (parsed), and whether the key was seen before."""

    idempotency_key: str
    kind: str
    document: Mapping[str, Any]
    signed_at: int
    repeat: bool
    body: bytes = field(repr=False)


class SignedWebhookFake(WebhookReceiverFake):
    """A signed-webhook receiver on loopback HTTPS. Give PartnerGuard `url` and `secret`."""

    unknown_path = "no such hook"

    def __init__(self, *, clock: Callable[[], float] = time.time, tolerance: float = DEFAULT_TOLERANCE_SECONDS) -> None:
        super().__init__("signed-webhook-fake")
        self.secret = secrets.token_urlsafe(32)
        self.clock = clock
        self.tolerance = tolerance
        self._token = secrets.token_urlsafe(16)
        self._deliveries: list[WebhookDelivery] = []

    @property
    def path(self) -> str:
        return f"/hooks/{self._token}"

    @property
    def url(self) -> str:
        return f"{self.base_url}{self.path}"

    @property
    def deliveries(self) -> list[WebhookDelivery]:
        with self._lock:
            return list(self._deliveries)

    def keys(self) -> Counter[str]:
        """How many calls were taken per idempotency key (a repeat counts twice)."""
        return Counter(delivery.idempotency_key for delivery in self.deliveries)

    def _signature_refusal(self, header: str | None, body: bytes) -> tuple[str | None, int]:
        match = _SIGNATURE.match(header or "")
        if match is None:
            return "signature missing or malformed", 0
        signed_at = int(match["t"])
        if abs(self.clock() - signed_at) > self.tolerance:
            return "signature timestamp outside the tolerance", signed_at
        expected = hmac.new(self.secret.encode("utf-8"), match["t"].encode("ascii") + b"." + body, hashlib.sha256)
        if not hmac.compare_digest(expected.hexdigest(), match["v1"]):
            return "signature mismatch", signed_at
        return None, signed_at

    def _verdict(self, target: str, headers: Mapping[str, str], body: bytes) -> Verdict:
        # The signature first: nothing about an unauthenticated body is worth telling its sender.
        refusal, signed_at = self._signature_refusal(headers.get("x-partnerguard-signature"), body)
        if refusal is not None:
            return Verdict(401, refusal)
        if not self._json_type(headers):
            return Verdict(415, "not application/json")
        try:
            document = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return Verdict(400, "not JSON")
        problems = payload_problems(document)
        if problems:
            return Verdict(400, "; ".join(problems[:5]))
        key, kind = document["idempotency_key"], document["kind"]
        if headers.get("idempotency-key") != key:
            return Verdict(400, "Idempotency-Key header differs from the document's idempotency_key")
        if headers.get("x-partnerguard-event") != kind:
            return Verdict(400, "X-PartnerGuard-Event header differs from the document's kind")

        def accept() -> None:
            with self._lock:
                repeat = any(delivery.idempotency_key == key for delivery in self._deliveries)
                self._deliveries.append(WebhookDelivery(key, kind, document, signed_at, repeat, body))

        return Verdict(202, None, accept)

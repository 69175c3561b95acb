"""Opaque, tamper-evident continuation tokens for the findings route.

`ScanStore.list_findings` hands out the Tables SDK's continuation (next PartitionKey/RowKey) as
base64 JSON: readable and forgeable. It cannot leave the tenant's partition (the query's filter
names it), but a caller could still hand it any RowKey, and the API promises a 400 for a token it
did not issue. So the API wraps the store's token: `<payload>.<mac>`, where the payload binds
the store token to the tenant, state and check of the query that produced it, and the mac is an
HMAC-SHA256 under a key only the app knows. A token that fails the MAC, or that belongs to
another tenant or query, is rejected before anything reaches Table Storage.

The key is random (32 bytes) and lives in Table Storage (`<prefix>apikeys`), created by the first
instance that needs it, so every instance of the app accepts the tokens of every other, and a
restart does not break a client that is paging.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import secrets
import threading
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.data.tables import TableServiceClient

TOKEN_VERSION = 1
_KEY_PARTITION = "continuation"
_KEY_ROW = "v1"


class InvalidToken(ValueError):
    """The continuation token was not issued by this app for this query."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    if not text or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in text):
        raise InvalidToken("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("not base64url") from None


class ContinuationSigner:
    """Wraps and unwraps store continuation tokens under an HMAC key."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("the continuation key must be at least 32 bytes")
        self._key = key

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode("ascii"), hashlib.sha256).digest())

    @staticmethod
    def _scope(tenant_id: str, state: str, check_id: str | None) -> list[Any]:
        return [tenant_id, state, check_id]

    def wrap(self, store_token: str, tenant_id: str, state: str, check_id: str | None) -> str:
        body = {"v": TOKEN_VERSION, "q": self._scope(tenant_id, state, check_id), "t": store_token}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode("utf-8"))
        return f"{payload}.{self._mac(payload)}"

    def unwrap(self, token: str, tenant_id: str, state: str, check_id: str | None) -> str:
        """The store's token, if `token` was issued by `wrap` for this very query."""
        payload, dot, mac = token.partition(".")
        if not dot or not payload or not mac:
            raise InvalidToken("malformed")
        # The alphabet checks come first: a payload or MAC of other characters is not ours, and
        # hmac.compare_digest raises TypeError on non-ASCII text instead of answering False.
        _unb64(payload)
        _unb64(mac)
        if not hmac.compare_digest(self._mac(payload).encode("ascii"), mac.encode("ascii")):
            raise InvalidToken("bad signature")
        try:
            body = json.loads(_unb64(payload).decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise InvalidToken("malformed") from None
        if not isinstance(body, dict) or body.get("v") != TOKEN_VERSION or not isinstance(body.get("t"), str):
            raise InvalidToken("malformed")
        if body.get("q") != self._scope(tenant_id, state, check_id):
            raise InvalidToken("issued for another query")
        return str(body["t"])


class ContinuationKeyStore:
    """The shared HMAC key, read (or created once) from `<prefix>apikeys`."""

    def __init__(self, service: TableServiceClient, prefix: str = "pg") -> None:
        self.table_name = f"{prefix}apikeys"
        self.service = service
        self._key: bytes | None = None
        self._lock = threading.Lock()

    def key(self) -> bytes:
        with self._lock:
            if self._key is None:
                self._key = self._load_or_create()
            return self._key

    def signer(self) -> ContinuationSigner:
        return ContinuationSigner(self.key())

    def _load_or_create(self) -> bytes:
        self.service.create_table_if_not_exists(self.table_name)
        table = self.service.get_table_client(self.table_name)
        try:
            try:
                entity = table.get_entity(_KEY_PARTITION, _KEY_ROW)
            except ResourceNotFoundError:
                # If another instance created it first, use theirs.
                with contextlib.suppress(ResourceExistsError):
                    table.create_entity(
                        {"PartitionKey": _KEY_PARTITION, "RowKey": _KEY_ROW, "key": _b64(secrets.token_bytes(32))}
                    )
                entity = table.get_entity(_KEY_PARTITION, _KEY_ROW)
            return _unb64(str(entity["key"]))
        finally:
            table.close()

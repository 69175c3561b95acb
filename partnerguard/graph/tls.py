"""Which certificate authorities PartnerGuard trusts when it talks to Entra ID and Graph.

`PARTNERGUARD_CA_BUNDLE` adds CAs (a TLS-inspecting proxy, a private endpoint, the local
tenant simulator); it never replaces the public roots, so the same deployment can still reach
Microsoft's own hosts. httpx takes an `ssl.SSLContext`, which we extend in memory. azure-identity
goes through `requests`, which only takes a file path, so for it we write one combined PEM file
(the public roots followed by the extra CAs), named after its content so that concurrent scans
share it and a changed bundle gets a new file.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import tempfile
from pathlib import Path

import certifi


def ssl_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """The system's default verification, plus the CAs of `ca_bundle` when given."""
    context = ssl.create_default_context(cafile=certifi.where())
    context.load_default_certs()
    if ca_bundle is not None:
        context.load_verify_locations(cafile=str(ca_bundle))
    return context


def combined_ca_file(ca_bundle: Path | None) -> str | None:
    """A PEM file with certifi's public roots and `ca_bundle`'s CAs, or None when there are no
    extra CAs (azure-identity then verifies against its defaults)."""
    if ca_bundle is None:
        return None
    extra = ca_bundle.read_bytes()
    public_roots = Path(certifi.where()).read_bytes()
    combined = public_roots.rstrip(b"\n") + b"\n" + extra
    digest = hashlib.sha256(combined).hexdigest()[:32]
    target = Path(tempfile.gettempdir()) / f"partnerguard-ca-{digest}.pem"
    if not target.is_file():
        # Write then rename, so a concurrent reader never sees a half-written bundle.
        handle, partial = tempfile.mkstemp(dir=target.parent, prefix="partnerguard-ca-", suffix=".tmp")
        with os.fdopen(handle, "wb") as file:
            file.write(combined)
        Path(partial).replace(target)
    return str(target)

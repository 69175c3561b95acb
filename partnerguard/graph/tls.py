"""Which certificate authorities the Graph client trusts.

`PARTNERGUARD_CA_BUNDLE` adds CAs (a TLS-inspecting proxy, a private endpoint, the local
tenant simulator); it never replaces the public roots, so the same deployment can still reach
Microsoft's own hosts. httpx takes an `ssl.SSLContext`, which we extend in memory. (Sign-in goes
through azure-identity and `requests`, which need a file: see `partnerguard.credentials`.)
"""

from __future__ import annotations

import ssl
from pathlib import Path

import certifi


def ssl_context(ca_bundle: Path | None) -> ssl.SSLContext:
    """The system's default verification, plus the CAs of `ca_bundle` when given."""
    context = ssl.create_default_context(cafile=certifi.where())
    context.load_default_certs()
    if ca_bundle is not None:
        context.load_verify_locations(cafile=str(ca_bundle))
    return context

"""Microsoft Graph access: the client, the table of requests, pacing, and typed errors."""

from partnerguard.graph.client import BatchResult, GraphClient
from partnerguard.graph.errors import (
    ConsentMissing,
    GraphError,
    GraphRequestError,
    LicenceRequired,
    PermissionDenied,
    SignInFailed,
    Throttled,
    TransientGraphError,
)
from partnerguard.graph.requests import ApiVersion, Endpoint, GraphRequest

__all__ = [
    "ApiVersion",
    "BatchResult",
    "ConsentMissing",
    "Endpoint",
    "GraphClient",
    "GraphError",
    "GraphRequest",
    "GraphRequestError",
    "LicenceRequired",
    "PermissionDenied",
    "SignInFailed",
    "Throttled",
    "TransientGraphError",
]

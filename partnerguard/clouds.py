"""The national clouds PartnerGuard can scan, and the hosts each one uses.

One table, so that the Graph root, the login host and the federated-assertion audience of a
cloud can never disagree. Sources:
- Graph national cloud deployments: https://learn.microsoft.com/graph/deployments
- Entra authority hosts: https://learn.microsoft.com/entra/identity-platform/authentication-national-cloud
- Workload identity federation audiences:
  https://learn.microsoft.com/entra/workload-id/workload-identity-federation-create-trust
- GDAP (delegatedAdminRelationships) is documented for the global service only:
  https://learn.microsoft.com/graph/api/resources/delegatedadminrelationship
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Cloud:
    name: str
    graph_endpoint: str
    authority_host: str
    assertion_audience: str
    gdap_available: bool


CLOUDS: dict[str, Cloud] = {
    "public": Cloud(
        name="public",
        graph_endpoint="https://graph.microsoft.com",
        authority_host="https://login.microsoftonline.com",
        assertion_audience="api://AzureADTokenExchange",
        gdap_available=True,
    ),
    "usgov": Cloud(
        name="usgov",
        graph_endpoint="https://graph.microsoft.us",
        authority_host="https://login.microsoftonline.us",
        assertion_audience="api://AzureADTokenExchangeUSGov",
        gdap_available=False,
    ),
    "usgovdod": Cloud(
        name="usgovdod",
        graph_endpoint="https://dod-graph.microsoft.us",
        authority_host="https://login.microsoftonline.us",
        assertion_audience="api://AzureADTokenExchangeUSGov",
        gdap_available=False,
    ),
    "china": Cloud(
        name="china",
        graph_endpoint="https://microsoftgraph.chinacloudapi.cn",
        authority_host="https://login.chinacloudapi.cn",
        assertion_audience="api://AzureADTokenExchangeChina",
        gdap_available=False,
    ),
}

# Authority hosts that Microsoft's instance discovery knows. Any other host (Azure Stack, a
# private endpoint, the local tenant simulator) must be used with instance discovery disabled,
# or MSAL asks login.microsoftonline.com to validate it and fails.
MICROSOFT_AUTHORITY_HOSTS = frozenset(urlsplit(c.authority_host).hostname for c in CLOUDS.values()) | {
    "login.microsoft.com",
    "login.windows.net",
    "login.partner.microsoftonline.cn",
}


def is_microsoft_authority(authority_host: str) -> bool:
    return urlsplit(authority_host).hostname in MICROSOFT_AUTHORITY_HOSTS

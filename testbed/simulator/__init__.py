"""A stand-in for Microsoft Entra ID and Microsoft Graph, for the demo, the tests and benchmarks.

    scenarios = bundled_scenarios()
    with TenantSimulator(scenarios) as sim:
        os.environ.update(sim.environment())   # GRAPH_ENDPOINT, AZURE_AUTHORITY_HOST, ...

See `server.TenantSimulator` for the full surface.
"""

from testbed.simulator.entra_id import TOKEN_EXCHANGE_AUDIENCE, FederatedAssertion, FederatedIdentityCredential
from testbed.simulator.generate import generate_tenant
from testbed.simulator.recording import RequestRecord
from testbed.simulator.scenario import ScenarioError, TenantScenario, bundled_scenarios, load_scenario
from testbed.simulator.server import TenantSimulator
from testbed.simulator.throttling import GRAPH_LIMITS, ApiClass, Scope, ThrottleLimit

__all__ = [
    "GRAPH_LIMITS",
    "TOKEN_EXCHANGE_AUDIENCE",
    "ApiClass",
    "FederatedAssertion",
    "FederatedIdentityCredential",
    "RequestRecord",
    "ScenarioError",
    "Scope",
    "TenantScenario",
    "TenantSimulator",
    "ThrottleLimit",
    "bundled_scenarios",
    "generate_tenant",
    "load_scenario",
]

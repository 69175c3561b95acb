"""A stand-in for Microsoft Entra ID and Microsoft Graph, for the demo, the tests and benchmarks.

    scenarios = bundled_scenarios()
    with TenantSimulator(scenarios) as sim:
        os.environ.update(sim.environment())   # GRAPH_ENDPOINT, AZURE_AUTHORITY_HOST, ...

See `server.TenantSimulator` for the full surface.
"""

from partnerguard.simulator.generate import generate_tenant
from partnerguard.simulator.recording import RequestRecord
from partnerguard.simulator.scenario import ScenarioError, TenantScenario, bundled_scenarios, load_scenario
from partnerguard.simulator.server import TenantSimulator
from partnerguard.simulator.throttling import GRAPH_LIMITS, ApiClass, Scope, ThrottleLimit

__all__ = [
    "GRAPH_LIMITS",
    "ApiClass",
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

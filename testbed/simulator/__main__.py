"""`python -m testbed.simulator`: run the simulator in the foreground and print the
`export` lines a PartnerGuard process needs to scan it. Stop with Ctrl+C."""

from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
import threading

from testbed.simulator.scenario import bundled_scenarios, load_scenario
from testbed.simulator.server import TenantSimulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.simulator", description=__doc__)
    parser.add_argument("scenario", nargs="*", help="scenario JSON files (default: the bundled ones)")
    parser.add_argument("--no-limits", action="store_true", help="do not enforce Graph's throttling limits")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds of delay added to every request")
    args = parser.parse_args(argv)
    scenarios = [load_scenario(path) for path in args.scenario] or bundled_scenarios()
    with TenantSimulator(scenarios, enforce_limits=not args.no_limits, latency_s=args.latency) as sim:
        # The secret is printed on purpose: this is a local test double and the developer
        # needs it in their shell. It is random per run and worthless outside this process.
        for name, value in sim.environment().items():
            print(f"export {name}={shlex.quote(value)}")
        # Commented out: exported in a shell they would also steer other Azure tools' managed
        # identity. Uncomment to drive the federated chain (no secret) instead.
        federated = {
            **sim.managed_identity_environment(),
            "PARTNERGUARD_IDENTITY_CLIENT_ID": sim.managed_identity_client_id,
        }
        for name, value in federated.items():
            print(f"# export {name}={shlex.quote(value)}")
        print(f"# serving {len(scenarios)} tenants at {sim.base_url}; Ctrl+C to stop", file=sys.stderr)
        sys.stdout.flush()
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make bench`: PartnerGuard's scan measured against the bounds Graph's limits impose.

`python -m testbed.bench` starts Azurite and, per case, a tenant simulator in a process of
its own (`testbed.simulator.process`), runs the case in a fresh child process (so that each
peak RSS is that case's alone), and writes `docs/performance.md`:

- `big_tenant` — a 100,000-user tenant scanned end to end (limits off: this measures our code),
  then the same Graph pages parsed and evaluated our way and through msgraph-sdk's models;
- `one_tenant` — one tenant at Graph's real limits, 50 ms latency, a noisy neighbour sharing
  the Conditional Access budget, a steady-state sign-in volume: wall time against the bound;
- `many_tenants` — 200 tenants of 1,000 users: wall time against the cross-tenant bound;
- `storage` — 100,000 findings persisted in batch transactions, and one by one;
- `startup` — `import function_app`: time and RSS.

It lives in the test bench beside the simulator it drives (linted and type-checked with the
rest, `python -m testbed.bench`); nothing in the app imports it. `--small` runs
every case at toy sizes in seconds: the test suite uses it to keep the harness working.
"""

"""The HTTP API of SPEC §4 (a contract), independent of the Functions host.

- `validation.py` — strict checks of route values, query parameters and bodies (400s);
- `responses.py` — JSON answers and the `{"error": {"code", "message"}}` document;
- `tokens.py` — opaque, HMAC-signed continuation tokens for the findings route;
- `handlers.py` — `Api`: one method per route over the process's `Services`;
- `dashboard.py` — the HTML dashboard: the HTML report over every monitored tenant (hash-only CSP);
- `runtime.py` — the process's cached `Api`.

`partnerguard/functions/http_api.py` binds the routes; docs/openapi.yaml describes them.
"""

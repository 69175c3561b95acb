"""`doctor`: can PartnerGuard see everything it must in each monitored tenant, and if not, what to do.

For every monitored tenant (or one) it establishes the **facts** (`AccessFacts`): whether the app
can sign in (consent), which Graph application permissions its token carries (the `roles` claim),
whether Entra ID P1 is present (`subscribedSkus`), the national cloud, and, for a customer,
whether the partner has a live GDAP relationship with it (read once, from the partner tenant). It
reads only what it needs: a token, `organization`, `subscribedSkus` and the partner's
delegatedAdminRelationships.

`diagnose` then judges the facts, purely, against the check catalogue — the one source of truth:
each check's `METADATA.permissions` says which permissions it needs, `METADATA.licence` whether it
needs Entra ID P1 (and `licence_fallback` what it does without), `partner_only` where it applies.
A permission counts as present when the token holds it or a higher-privileged one Microsoft
documents for the same calls (`partnerguard.graph.permissions`). Each gap names the checks it
blinds (`reason_code` as in a report: `permission:<name>`, `licence:AAD_PREMIUM`, `cloud`, or
`consent` / `error:<code>` when sign-in fails) and the exact fix.

The facts are recorded in the tenant registry with when they were established — by `doctor`, and
by every scan the scan worker runs (it signs in and reads subscribedSkus anyway) — so
GET /api/tenants shows the same judgement without calling Graph per request.

The package in three parts, each one job:
- `facts.py`: what a tenant lets PartnerGuard see (`AccessFacts`), as a sign-in or a scan found it;
- `diagnosis.py`: the pure judgement of those facts against the catalogue, and the v1 document;
- `run.py`: reading the facts from Graph for every monitored tenant, and recording them.
"""

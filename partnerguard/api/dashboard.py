"""`GET /api/dashboard`: one HTML page over every monitored tenant.

Tenant names, run ids and error messages come from tenants and storage PartnerGuard does not
control, so the page is rendered by Jinja2 with autoescaping on for every value, and served
with a Content-Security-Policy that allows no script, no plugin, no form, no frame and no
external resource at all: the only thing the page may use is its own stylesheet, allowed by
its SHA-256 hash (not by 'unsafe-inline'), so even markup that slipped past escaping could not
run or load anything.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from partnerguard import __version__
from partnerguard.report import iso
from partnerguard.text import safe_text

TEMPLATES = Path(__file__).resolve().parent / "templates"
# A tenant whose last successful run is older than this is flagged: with the default schedule
# (every 6 hours) it has missed at least three scans in a row.
STALE_AFTER_HOURS = 24.0

STYLE = (
    "body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1b1f24;background:#fff}"
    "h1{font-size:1.5rem;margin:0}.meta,.muted{color:#57606a}"
    "table{border-collapse:collapse;width:100%;margin-top:1rem}caption{text-align:left;color:#57606a;padding:.25rem 0}"
    "th,td{border-bottom:1px solid #d0d7de;padding:.5rem;text-align:left;vertical-align:top}"
    "th{background:#f6f8fa}code{font-size:.85em;word-break:break-all}.name{font-weight:600;word-break:break-word}"
    ".badge{display:inline-block;padding:0 .5rem;border-radius:1rem;font-size:.85em;border:1px solid #d0d7de}"
    ".consent-ok,.run-succeeded{background:#dafbe1}.consent-missing,.consent-failing,.run-failed{background:#ffebe9}"
    ".run-queued,.run-running{background:#fff8c5}.count{margin-right:.5rem}.fail,.err,.error{color:#cf222e}"
    ".stale{color:#cf222e;font-weight:600}"
)
STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode("utf-8")).digest()).decode("ascii")

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; "
    f"style-src 'sha256-{STYLE_HASH}'; "
    "script-src 'none'; object-src 'none'; img-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)

HEADERS: Mapping[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

_environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    # Every value is HTML-escaped, whatever the template's file name.
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_dashboard(tenants: Sequence[Mapping[str, Any]], now: datetime) -> str:
    """The page for the tenants as `GET /api/tenants` lists them."""
    rows = []
    for tenant in tenants:
        age = tenant.get("last_successful_run_age_hours")
        last_run = tenant.get("last_run")
        error = tenant.get("last_run_error")
        consent_error = tenant.get("consent_error")
        rows.append(
            {
                **tenant,
                # Escaping stops markup; safe_text also makes control and bidi-override
                # characters visible, so a name cannot disguise itself as another.
                "name": safe_text(tenant.get("name") or "", limit=200),
                "last_run": last_run,
                "last_run_error": safe_text(error, limit=300) if error else None,
                "consent_error": safe_text(consent_error, limit=300) if consent_error else None,
                "stale": (age is None and last_run is not None) or (age is not None and age > STALE_AFTER_HOURS),
            }
        )
    template = _environment.get_template("dashboard.html")
    return template.render(
        tenants=rows,
        generated=iso(now),
        version=__version__,
        # A constant, marked safe so it is emitted byte for byte and matches the CSP hash.
        style=Markup(STYLE),  # noqa: S704
    )

"""PartnerGuard: proves that Microsoft partner tenants meet the partner security requirements.

The pipeline (collect → evaluate → persist → alert), Microsoft Graph access, storage and the
command line live here; the checks are in the top-level `checks` package, the alert channels in
`notifiers`, and `function_app.py` only wires Azure Functions triggers to this package.
"""

__version__ = "0.1.0"

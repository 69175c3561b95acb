"""GET /api/health — liveness only (SPEC §4): anonymous, and it reveals no data."""

from __future__ import annotations

import json

import azure.functions as func

from partnerguard import __version__

blueprint = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated


@blueprint.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps({"status": "ok", "version": __version__}),
        status_code=200,
        mimetype="application/json",
        headers={"Cache-Control": "no-store"},
    )

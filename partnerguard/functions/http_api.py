"""The HTTP API of SPEC §4 (every route but health): thin bindings onto `partnerguard.api`.

Each function's name is the route's `operationId` in docs/openapi.yaml, so the document and the
app can be compared mechanically (tests/test_openapi.py). Routes carry no type constraints
(`{tenantId:guid}`): with one, the host itself would answer a bad GUID with an empty 404, where
SPEC §4 wants a JSON 400. Every route needs a function key.

Errors are rendered here: an `ApiError` becomes its JSON answer; anything else is logged with a
correlation id and answered 500 with a generic message, so no exception text reaches a caller.
The API and its services are built on first use (storage clients, the check catalogue), keeping
`import function_app` light for the host's indexing.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import azure.functions as func

from partnerguard.api.responses import ApiError, error_response, internal_error

if TYPE_CHECKING:
    from partnerguard.api.handlers import Api

log = logging.getLogger(__name__)

blueprint = func.Blueprint()  # type: ignore[no-untyped-call]  # azure-functions leaves __init__ unannotated

FUNCTION = func.AuthLevel.FUNCTION


def _api() -> Api:
    from partnerguard.api.runtime import api

    return api()


def _answer(req: func.HttpRequest, handler: Callable[[Api, func.HttpRequest], func.HttpResponse]) -> func.HttpResponse:
    try:
        return handler(_api(), req)
    except ApiError as error:
        return error_response(error)
    except Exception:
        correlation_id = uuid.uuid4().hex
        # The traceback goes to the log (through the redacting formatter); the caller only
        # gets the id to quote.
        log.exception("HTTP %s failed; correlation id %s", req.method, correlation_id)
        return internal_error(correlation_id)


@blueprint.function_name("startScan")
@blueprint.route(route="tenants/{tenantId}/scans", methods=["POST"], auth_level=FUNCTION)
def start_scan(req: func.HttpRequest) -> func.HttpResponse:
    return _answer(req, lambda api, r: api.start_scan(r))


@blueprint.function_name("getScan")
@blueprint.route(route="tenants/{tenantId}/scans/{runId}", methods=["GET"], auth_level=FUNCTION)
def get_scan(req: func.HttpRequest) -> func.HttpResponse:
    return _answer(req, lambda api, r: api.get_scan(r))


@blueprint.function_name("listFindings")
@blueprint.route(route="tenants/{tenantId}/findings", methods=["GET"], auth_level=FUNCTION)
def list_findings(req: func.HttpRequest) -> func.HttpResponse:
    return _answer(req, lambda api, r: api.list_findings(r))


@blueprint.function_name("listTenants")
@blueprint.route(route="tenants", methods=["GET"], auth_level=FUNCTION)
def list_tenants(req: func.HttpRequest) -> func.HttpResponse:
    return _answer(req, lambda api, r: api.list_tenants(r))


@blueprint.function_name("dashboard")
@blueprint.route(route="dashboard", methods=["GET"], auth_level=FUNCTION)
def dashboard(req: func.HttpRequest) -> func.HttpResponse:
    return _answer(req, lambda api, r: api.dashboard(r))

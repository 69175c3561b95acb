"""The Azure Functions entry point. It only wires triggers to the `partnerguard` package."""

import azure.functions as func

from partnerguard.functions.alert_worker import blueprint as alert_worker
from partnerguard.functions.health_endpoint import blueprint as health
from partnerguard.functions.http_api import blueprint as http_api
from partnerguard.functions.scan_timer import blueprint as scan_timer
from partnerguard.functions.scan_worker import blueprint as scan_worker

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(alert_worker)
app.register_functions(health)
app.register_functions(http_api)
app.register_functions(scan_timer)
app.register_functions(scan_worker)

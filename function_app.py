"""The Azure Functions entry point. It only wires triggers to the `partnerguard` package."""

import azure.functions as func

from partnerguard.functions.health import blueprint as health

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(health)

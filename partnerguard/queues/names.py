"""The queues' names and the storage connection setting, shared by the bindings and our clients.

Importing this module loads nothing else: `function_app.py` indexes its queue triggers with it.
"""

from __future__ import annotations

SCAN_QUEUE = "partnerguard-scans"
SCAN_POISON_QUEUE = f"{SCAN_QUEUE}-poison"
ALERT_QUEUE = "partnerguard-alerts"
ALERT_POISON_QUEUE = f"{ALERT_QUEUE}-poison"
# The app setting (or `<name>__queueServiceUri` prefix) the queue bindings and our clients use.
STORAGE_CONNECTION = "PARTNERGUARD_STORAGE"

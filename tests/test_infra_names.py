"""The queues and tables infra/ creates are the ones the code uses, found by asking the code: the
queue constants of partnerguard/queues/names.py and the queues the triggers listen on (with their
poison queues), and the tables every store of partnerguard/storage ensures under the prefix the
Functions app uses in production.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from typing import Any

import partnerguard.storage
from checks import CHECK_IDS
from partnerguard import services
from partnerguard.queues import names as queue_names
from tests.functions_index import FUNCTIONS, bindings
from tests.infra_bicep import INFRA, the_resource, variable

STORAGE = INFRA / "modules" / "storage.bicep"


class RecordingTableClient:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def close(self) -> None:
        pass


class RecordingTableService:
    """Stands in for TableServiceClient: records the tables a store creates, refuses anything else
    (so a store that starts doing more at construction shows up here)."""

    url = "https://recording.table.core.windows.net"

    def __init__(self) -> None:
        self.created: set[str] = set()

    def get_table_client(self, table_name: str) -> RecordingTableClient:
        return RecordingTableClient(table_name)

    def create_table_if_not_exists(self, table_name: str) -> None:
        self.created.add(table_name)

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a store called TableServiceClient.{name} while being set up")


def production_prefix() -> str:
    prefix = inspect.signature(services.build).parameters["prefix"].default
    assert isinstance(prefix, str)
    return prefix


def tables_the_code_uses() -> set[str]:
    """Every table any store in partnerguard/storage ensures, under the production prefix."""
    service = RecordingTableService()
    stores = 0
    for module_info in pkgutil.iter_modules(partnerguard.storage.__path__):
        module = importlib.import_module(f"partnerguard.storage.{module_info.name}")
        classes: list[tuple[str, Any]] = inspect.getmembers(module, inspect.isclass)
        for _, cls in classes:
            if cls.__module__ == module.__name__ and callable(getattr(cls, "ensure_tables", None)):
                # Stores that need more than a service and a prefix get it as services.build does.
                extra = {"check_ids": CHECK_IDS} if "check_ids" in inspect.signature(cls).parameters else {}
                store: Any = cls(service, production_prefix(), **extra)
                store.ensure_tables()
                stores += 1
    assert stores >= 5, "the stores of partnerguard/storage were not found"
    return service.created


def queues_the_code_uses() -> set[str]:
    constants = {
        value for name, value in vars(queue_names).items() if name.endswith("_QUEUE") and isinstance(value, str)
    }
    triggered = {b["queueName"] for name in FUNCTIONS for b in bindings(name) if b["type"] == "queueTrigger"}
    assert triggered, "the queue triggers were not found"
    # The host moves a message that keeps failing to <queue>-poison.
    return constants | triggered | {f"{queue}-poison" for queue in triggered}


def test_the_template_creates_exactly_the_queues_the_code_uses() -> None:
    queues = the_resource("Microsoft.Storage/storageAccounts/queueServices/queues")
    assert queues.loop_over == "queueNames" and queues.name == "queueName"
    assert set(variable(STORAGE, "queueNames")) == queues_the_code_uses()


def test_the_template_creates_exactly_the_tables_the_code_uses() -> None:
    tables = the_resource("Microsoft.Storage/storageAccounts/tableServices/tables")
    assert tables.loop_over == "tableNames" and tables.name == "tableName"
    assert set(variable(STORAGE, "tableNames")) == tables_the_code_uses()

"""Shared fixtures. The Azurite emulator runs once per session, on free ports in a temporary
directory; each storage test gets its own tables (a unique prefix), so tests stay isolated."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from azure.data.tables import TableServiceClient

from partnerguard.storage import ScanStore
from testbed.azurite import AzuriteProcess

pytest_plugins = ["tests.cli_harness", "tests.reliability"]


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteProcess]:
    with AzuriteProcess(tmp_path_factory.mktemp("azurite")) as process:
        yield process


@pytest.fixture
def table_prefix() -> str:
    # Table names: letters and digits, starting with a letter, 3-63 characters.
    return "t" + uuid.uuid4().hex[:12]


@pytest.fixture
def scan_store(azurite: AzuriteProcess, table_prefix: str) -> Iterator[ScanStore]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    store = ScanStore(service, prefix=table_prefix)
    store.ensure_tables()
    yield store
    for table in (store.runs, store.findings, store.run_findings):
        service.delete_table(table.table_name)
    store.close()

"""The in-memory Table Storage of the alert simulation (tests/memory_tables.py) answers as Azurite
does: the same operations, run against both, get the same answers — first a script of the
semantics exactly-once delivery leans on (ETag conditions, merge and replace, missing rows,
filters, transactions), then seeded simulation schedules replayed on Azurite, call for call.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.data.tables import TableServiceClient, TransactionOperation, UpdateMode

from testbed.azurite import AzuriteProcess
from tests.alerts_simulation import Simulation, _answer
from tests.memory_tables import MemoryTableService, parse_filter

pytestmark = pytest.mark.azurite

T = datetime(2026, 11, 26, 8, 0, tzinfo=UTC)
IF_MATCH = {"match_condition": MatchConditions.IfNotModified}


def script(table: Any) -> list[tuple[str, Any]]:
    """Every call and what it answered (properties, or the error's type)."""
    answers: list[tuple[str, Any]] = []

    def run(name: str, call: Callable[[], Any]) -> Any:
        try:
            result = call()
        except Exception as error:
            answers.append((name, type(error).__name__))
            return None
        if isinstance(result, Iterator | list):
            result = list(result)
            answers.append((name, _answer(result)))
        elif hasattr(result, "metadata"):
            answers.append((name, _answer(result)))
        else:
            answers.append((name, "ok"))
        return result

    run("create", lambda: table.create_entity({"PartitionKey": "p", "RowKey": "a", "state": "pending", "n": 1}))
    run("create again", lambda: table.create_entity({"PartitionKey": "p", "RowKey": "a"}))
    first = run("get", lambda: table.get_entity("p", "a"))
    run("get missing", lambda: table.get_entity("p", "zz"))
    etag = first.metadata["etag"]
    row = {"PartitionKey": "p", "RowKey": "a", "email": "", "when": T}
    run("merge if match", lambda: table.update_entity(row, mode=UpdateMode.MERGE, etag=etag, **IF_MATCH))
    run("merge on a stale etag", lambda: table.update_entity(row, mode=UpdateMode.MERGE, etag=etag, **IF_MATCH))
    missing = {"PartitionKey": "p", "RowKey": "zz", "state": "x"}
    run("merge a missing row if match", lambda: table.update_entity(missing, etag=etag, **IF_MATCH))
    run("merge a missing row", lambda: table.update_entity(missing, mode=UpdateMode.MERGE))
    run("after merges", lambda: table.get_entity("p", "a"))
    run("replace", lambda: table.update_entity({"PartitionKey": "p", "RowKey": "a", "k": "v"}, mode=UpdateMode.REPLACE))
    run("after replace", lambda: table.get_entity("p", "a"))
    run("upsert merge new", lambda: table.upsert_entity({"PartitionKey": "p", "RowKey": "b", "state": "sent"}))
    run(
        "upsert replace",
        lambda: table.upsert_entity({"PartitionKey": "p", "RowKey": "b", "flag": False}, mode=UpdateMode.REPLACE),
    )
    run("create another partition", lambda: table.create_entity({"PartitionKey": "o", "RowKey": "c", "state": "x"}))
    run(
        "create with a time",
        lambda: table.create_entity({"PartitionKey": "p", "RowKey": "d", "state": "pending", "at": T, "email": ""}),
    )
    queries = {
        "eq string": ("state eq @s", {"s": "pending"}),
        "eq empty string": ("email eq ''", {}),
        "ne skips rows without the property": ("state ne @s", {"s": "zzz"}),
        "datetime lt": ("at lt @t", {"t": T + timedelta(seconds=1)}),
        "datetime ge": ("at ge @t", {"t": T + timedelta(seconds=1)}),
        "bool eq false": ("flag eq false", {}),
        "and / or / parentheses": ("PartitionKey eq 'p' and (state eq 'pending' or k eq 'v')", {}),
        "RowKey range": ("RowKey ge @low and RowKey lt @high", {"low": "b", "high": "d"}),
        "a string compared with a number": ("state eq 1", {}),
    }
    for name, (text, parameters) in queries.items():
        run(f"query {name}", functools.partial(table.query_entities, text, parameters=parameters))
    run("select", lambda: table.query_entities("PartitionKey eq 'p'", select=["RowKey", "state", "absent"]))
    current = table.get_entity("p", "d")
    run("delete on a stale etag", lambda: table.delete_entity(partition_key="p", row_key="d", etag=etag, **IF_MATCH))
    run(
        "delete if match",
        lambda: table.delete_entity(partition_key="p", row_key="d", etag=current.metadata["etag"], **IF_MATCH),
    )
    run("delete missing", lambda: table.delete_entity(partition_key="p", row_key="d"))
    run(
        "transaction failing half-way",
        lambda: table.submit_transaction(
            [
                (TransactionOperation.CREATE, {"PartitionKey": "p", "RowKey": "e"}),
                ("create", {"PartitionKey": "p", "RowKey": "a"}),
            ]
        ),
    )
    run("after the failed transaction", lambda: table.list_entities())
    run(
        "transaction",
        lambda: table.submit_transaction(
            [
                (TransactionOperation.UPSERT, {"PartitionKey": "p", "RowKey": "e", "n": 2}, {"mode": UpdateMode.MERGE}),
                (TransactionOperation.DELETE, {"PartitionKey": "p", "RowKey": "b"}),
            ]
        ),
    )
    run("after the transaction", lambda: table.list_entities())
    return answers


@pytest.fixture
def azurite_tables(azurite: AzuriteProcess) -> Iterator[TableServiceClient]:
    service = TableServiceClient.from_connection_string(azurite.connection_string)
    yield service
    service.close()


def test_the_script_gets_the_same_answers_from_both(azurite_tables: TableServiceClient, table_prefix: str) -> None:
    name = f"{table_prefix}contract"
    azurite_tables.create_table_if_not_exists(name)
    memory = MemoryTableService().get_table_client(name)

    on_azurite = script(azurite_tables.get_table_client(name))
    in_memory = script(memory)

    assert len(on_azurite) == 32
    for (step, azurite_answer), (_, memory_answer) in zip(on_azurite, in_memory, strict=True):
        assert memory_answer == azurite_answer, step
    azurite_tables.delete_table(name)


@pytest.mark.parametrize("seed", [3, 17, 42])
def test_a_simulated_schedule_replayed_on_azurite_sees_the_same_answers(
    azurite_tables: TableServiceClient, table_prefix: str, seed: int
) -> None:
    in_memory: list[Any] = []
    on_azurite: list[Any] = []
    memory_outcome = Simulation(seed, trace=in_memory, prefix=table_prefix).run()
    azurite_outcome = Simulation(seed, table_service=azurite_tables, trace=on_azurite, prefix=table_prefix).run()
    azurite_tables.delete_table(f"{table_prefix}alerts")

    assert len(on_azurite) > 100
    for index, (azurite_call, memory_call) in enumerate(zip(on_azurite, in_memory, strict=True)):
        assert memory_call == azurite_call, f"call {index}"
    assert memory_outcome.fingerprint == azurite_outcome.fingerprint


def test_a_filter_the_stores_do_not_write_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_filter("state eq", {})
    with pytest.raises(ValueError):
        parse_filter("startswith(state, 'p')", {})

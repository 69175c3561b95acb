"""The emulator wrapper: it starts, answers, reports a missing install clearly, and leaves no process."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from azure.data.tables import TableServiceClient
from azure.storage.queue import QueueServiceClient

from testbed.azurite import (
    AzuriteError,
    AzuriteProcess,
    azurite_executable,
    ensure_local_azurite,
    main,
    port_open,
    stop_local_azurite,
)

pytestmark = pytest.mark.azurite


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_the_session_emulator_serves_tables_and_queues(azurite: AzuriteProcess) -> None:
    assert len({azurite.blob_port, azurite.queue_port, azurite.table_port}) == 3
    assert "AccountName=devstoreaccount1" in azurite.connection_string
    assert f"TableEndpoint=http://127.0.0.1:{azurite.table_port}/devstoreaccount1" in azurite.connection_string
    tables = TableServiceClient.from_connection_string(azurite.connection_string)
    tables.create_table_if_not_exists("azuritesmoke")
    tables.delete_table("azuritesmoke")
    queues = QueueServiceClient.from_connection_string(azurite.connection_string)
    queue = queues.create_queue("azurite-smoke")
    queue.send_message("hello")
    assert [m.content for m in queue.receive_messages()] == ["hello"]
    queues.delete_queue("azurite-smoke")


def test_stop_leaves_no_process(tmp_path: Path) -> None:
    process = AzuriteProcess(tmp_path / "data").start()
    pid, port = process.pid, process.table_port
    assert pid is not None and port_open(port)
    process.stop()
    assert gone(pid)  # terminated and reaped: not even a zombie answers kill(0)
    assert not port_open(port)
    process.stop()  # idempotent
    with pytest.raises(AzuriteError, match="not running"):
        _ = process.connection_string


def test_a_taken_port_fails_with_the_log(tmp_path: Path, azurite: AzuriteProcess) -> None:
    clash = AzuriteProcess(tmp_path, table_port=azurite.table_port, startup_timeout=20)
    with pytest.raises(AzuriteError, match=r"exited|did not answer") as error:
        clash.start()
    assert "azurite" in str(error.value).lower()
    assert clash.pid is None


def test_a_missing_install_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(AzuriteError, match="npm ci"):
        azurite_executable(tmp_path)
    with pytest.raises(AzuriteError, match="npm ci"):
        AzuriteProcess(tmp_path, repo_root=tmp_path).start()


def test_the_local_emulator_is_started_once_and_stopped(tmp_path: Path) -> None:
    blob, queue, table = free_ports(3)
    ports = {"blob": blob, "queue": queue, "table": table}
    data_dir = tmp_path / ".azurite"
    try:
        assert ensure_local_azurite(data_dir, ports=ports) is True
        pid = int((data_dir / "azurite.pid").read_text())
        assert (data_dir / "azurite.log").exists()
        assert port_open(table) and port_open(queue)
        assert ensure_local_azurite(data_dir, ports=ports) is False  # already answering
    finally:
        stopped = stop_local_azurite(data_dir)
    assert stopped is True
    assert gone(pid)
    assert not (data_dir / "azurite.pid").exists()
    assert stop_local_azurite(data_dir) is False


def test_stop_ignores_a_stale_pid_file(tmp_path: Path) -> None:
    (tmp_path / "azurite.pid").write_text(f"{os.getpid()}\n")  # a live process that is not Azurite
    assert stop_local_azurite(tmp_path) is False
    assert not (tmp_path / "azurite.pid").exists()


def test_the_command_line_stop(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stop", "--data-dir", str(tmp_path)]) == 0
    assert "no Azurite" in capsys.readouterr().out

"""The Azurite storage emulator, for the demo and the tests.

`AzuriteProcess` runs a private Azurite (by default on free ports, which Azurite picks itself
and prints) and stops it again; the tests use one per session. `ensure_local_azurite` gives the
demo what `UseDevelopmentStorage=true` means — Azurite on 10000-10002 — starting it detached
(it outlives the command, its pid in `.azurite/azurite.pid`) unless something already answers
there; `stop_local_azurite` (`make stop`, `python -m testbed.azurite stop`) ends it.
Azurite comes from `package.json` (`npm ci`), pinned like every other dependency.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
DEFAULT_PORTS = {"blob": 10000, "queue": 10001, "table": 10002}
ACCOUNT_NAME = "devstoreaccount1"
# The emulator's well-known, publicly documented account key; not a secret.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
DEFAULT_DATA_DIR = Path(".azurite")
_LISTENING = re.compile(r"Azurite (Blob|Queue|Table) service is successfully listening at https?://[^\s:]+:(\d+)")


class AzuriteError(RuntimeError):
    pass


def azurite_executable(repo_root: Path = REPO_ROOT) -> Path:
    name = "azurite.cmd" if os.name == "nt" else "azurite"
    path = repo_root / "node_modules" / ".bin" / name
    if not path.exists():
        raise AzuriteError(
            f"Azurite is not installed ({path} is missing). Install it with `npm ci` in {repo_root} "
            "(Node.js 18 or later; the version is pinned in package.json)."
        )
    return path


def connection_string(blob_port: int, queue_port: int, table_port: int, host: str = HOST) -> str:
    """A connection string for Azurite with explicit endpoints (what the SDKs expect for IP hosts)."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://{host}:{blob_port}/{ACCOUNT_NAME};"
        f"QueueEndpoint=http://{host}:{queue_port}/{ACCOUNT_NAME};"
        f"TableEndpoint=http://{host}:{table_port}/{ACCOUNT_NAME};"
    )


def port_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


def _command(location: Path, ports: Mapping[str, int], repo_root: Path) -> list[str]:
    return [
        str(azurite_executable(repo_root)),
        "--skipApiVersionCheck",
        "--disableTelemetry",
        "--silent",
        "--location",
        str(location),
        "--blobHost",
        HOST,
        "--queueHost",
        HOST,
        "--tableHost",
        HOST,
        "--blobPort",
        str(ports["blob"]),
        "--queuePort",
        str(ports["queue"]),
        "--tablePort",
        str(ports["table"]),
    ]


def _detach_options() -> dict[str, object]:
    """Run Azurite in its own session / process group, so signals to ours don't reach it and it
    can be stopped as a group."""
    if os.name == "nt":
        group = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
        return {"creationflags": group | getattr(subprocess, "DETACHED_PROCESS", 0)}
    return {"start_new_session": True}


class AzuriteProcess:
    """A private Azurite. Ports of 0 let Azurite pick free ports; read them after `start()`."""

    def __init__(
        self,
        location: Path,
        *,
        blob_port: int = 0,
        queue_port: int = 0,
        table_port: int = 0,
        startup_timeout: float = 30.0,
        repo_root: Path = REPO_ROOT,
    ) -> None:
        self.location = location
        self.requested = {"blob": blob_port, "queue": queue_port, "table": table_port}
        self.ports: dict[str, int] = {}
        self.startup_timeout = startup_timeout
        self.repo_root = repo_root
        self.log_path = location / "azurite.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def blob_port(self) -> int:
        return self._port("blob")

    @property
    def queue_port(self) -> int:
        return self._port("queue")

    @property
    def table_port(self) -> int:
        return self._port("table")

    def _port(self, service: str) -> int:
        if service not in self.ports:
            raise AzuriteError("Azurite is not running; call start() first")
        return self.ports[service]

    @property
    def connection_string(self) -> str:
        return connection_string(self.blob_port, self.queue_port, self.table_port)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self) -> AzuriteProcess:
        if self._process is not None:
            raise AzuriteError("Azurite is already started")
        command = _command(self.location, self.requested, self.repo_root)
        self.location.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._process = subprocess.Popen(  # noqa: S603 - our own pinned executable, fixed arguments
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=self.location,
            **_detach_options(),  # type: ignore[call-overload]
        )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise AzuriteError(
                    f"Azurite exited with code {self._process.returncode} while starting:\n{_log_tail(self.log_path)}"
                )
            self.ports = self._announced_ports()
            if len(self.ports) == 3 and port_open(self.table_port) and port_open(self.queue_port):
                return
            time.sleep(0.1)
        raise AzuriteError(f"Azurite did not answer within {self.startup_timeout:.0f} s:\n{_log_tail(self.log_path)}")

    def _announced_ports(self) -> dict[str, int]:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return {}
        return {service.lower(): int(port) for service, port in _LISTENING.findall(text)}

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate Azurite (its whole process group), kill it if it lingers, and reap it."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                _signal_group(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    _signal_group(process.pid, getattr(signal, "SIGKILL", signal.SIGTERM))
                    process.wait(timeout)
            else:
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None
        self.ports = {}

    def __enter__(self) -> AzuriteProcess:
        return self.start() if self._process is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _signal_group(pid: int, sig: int) -> None:
    """Signal Azurite's process group (it leads its own session), or only it when it does not."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if os.name != "nt" and os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


# -- the local emulator of the demo --------------------------------------------------------------


def default_ports_answer(ports: Mapping[str, int] = DEFAULT_PORTS) -> bool:
    return port_open(ports["table"]) and port_open(ports["queue"])


def ensure_local_azurite(
    data_dir: Path = DEFAULT_DATA_DIR, timeout: float = 30.0, ports: Mapping[str, int] = DEFAULT_PORTS
) -> bool:
    """Make `UseDevelopmentStorage=true` work: True if Azurite was started, False if it already ran.

    The emulator is started detached (it survives this process), logs to `<data_dir>/azurite.log`
    and leaves its pid in `<data_dir>/azurite.pid` for `stop_local_azurite`. `ports` exists for
    tests; the demo uses the defaults.
    """
    if default_ports_answer(ports):
        return False
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "azurite.log"
    command = _command(data_dir, dict(ports), REPO_ROOT)
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own pinned executable, fixed arguments
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=data_dir,
            **_detach_options(),  # type: ignore[call-overload]
        )
    (data_dir / "azurite.pid").write_text(f"{process.pid}\n", encoding="ascii")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            (data_dir / "azurite.pid").unlink(missing_ok=True)
            raise AzuriteError(
                f"Azurite exited with code {process.returncode} while starting "
                f"(are ports {ports['blob']}-{ports['table']} taken?):\n"
                f"{_log_tail(log_path)}"
            )
        if default_ports_answer(ports):
            # Detached on purpose: it outlives us. Popen must not warn that it still runs.
            process.returncode = 0
            return True
        time.sleep(0.1)
    _signal_group(process.pid, signal.SIGTERM)
    raise AzuriteError(
        f"Azurite did not answer on ports {ports['queue']}/{ports['table']} within {timeout:.0f} s:\n"
        f"{_log_tail(log_path)}"
    )


def _is_azurite(pid: int) -> bool:
    """Whether `pid` still is an Azurite we started (not a process that reused the pid)."""
    proc = Path("/proc")
    if proc.is_dir():
        try:
            args = (proc / str(pid) / "cmdline").read_bytes().split(b"\0")
        except OSError:
            return False
    elif os.name != "nt":  # macOS and other Unixes without /proc
        listing = subprocess.run(  # noqa: S603 - fixed command, a number as argument
            ["ps", "-p", str(pid), "-o", "command="],  # noqa: S607 - ps from PATH, like any shell
            capture_output=True,
            check=False,
        )
        args = listing.stdout.split()
    else:
        return True  # Windows: no cheap way to tell; the pid file is all we have
    launcher = any(b"node_modules" in arg and arg.rstrip(b"/").endswith(b"azurite") for arg in args)
    return launcher and b"--location" in args


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        # Our own child (started by ensure_local_azurite in this process): reap it if it exited.
        done, _ = os.waitpid(pid, os.WNOHANG) if os.name != "nt" else (0, 0)
        if done == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_local_azurite(data_dir: Path = DEFAULT_DATA_DIR, timeout: float = 10.0) -> bool:
    """Stop the Azurite `ensure_local_azurite` started; True if one was running."""
    pid_file = data_dir / "azurite.pid"
    try:
        pid = int(pid_file.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return False
    stopped = False
    if _alive(pid) and _is_azurite(pid):
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(pid):
            _signal_group(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
        stopped = True
    pid_file.unlink(missing_ok=True)
    return stopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testbed.azurite", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            started = ensure_local_azurite(args.data_dir)
            print("Azurite started on 10000-10002" if started else "Azurite already answers on 10000-10002")
        elif args.command == "stop":
            print("Azurite stopped" if stop_local_azurite(args.data_dir) else "no Azurite started by PartnerGuard")
        else:
            running = default_ports_answer()
            print("Azurite answers on 10000-10002" if running else "nothing answers on 10001/10002")
            return 0 if running else 1
    except AzuriteError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`tenantry serve --workers 2` for real: connections spread over both workers (issue 9).

With one listening socket shared by the workers, connections opened together mostly landed on
one of them. Each worker now accepts on its own SO_REUSEPORT socket. Which worker holds a
connection is read from /proc: the server side of each client connection is a socket inode,
and exactly one worker has it among its open files.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.backends import Backend, create_backend

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc (Linux)"),
]

SRC = Path(__file__).resolve().parents[2] / "src"
CONNECTIONS = 20  # all on one of two workers by chance: 2 · 2⁻²⁰


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int

    def workers(self) -> set[int]:
        """The processes accepting on the port (the supervisor only holds the sockets)."""
        listening = {inode for inode, _, _ in _tcp_sockets(self.port, state="0A")}
        return {
            pid for pid in _children(self.process.pid) if _socket_inodes(pid) & listening and _is_worker(pid)
        }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _is_worker(pid: int) -> bool:
    try:
        return b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return False


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return set()
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _tcp_sockets(local_port: int, *, state: str) -> list[tuple[int, int, int]]:
    """(inode, local port, remote port) of the IPv4 sockets on `local_port` in `state`."""
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, st, inode = fields[1], fields[2], fields[3], int(fields[9])
        if st == state and int(local.split(":")[1], 16) == local_port:
            found.append((inode, local_port, int(remote.split(":")[1], 16)))
    return found


def _wait_until_serving(served: Served, workers: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert served.process.poll() is None, "serve exited"
        if len(served.workers()) == workers:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                pass
        time.sleep(0.2)
    pytest.fail("serve did not come up")


@pytest.fixture
def sqlite_file(tmp_path: Path) -> Iterator[Backend]:
    backend = create_backend(tmp_path, "sqlite")
    yield backend
    backend.drop()


@pytest.fixture
def served(sqlite_file: Backend) -> Iterator[Served]:
    port = _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "TENANTRY_DATABASE_URL": sqlite_file.app_url,
        "TENANTRY_RUN_JOBS": "false",
        "TENANTRY_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "tenantry", "serve", "--workers", "2", "--port", str(port)],
        env=env,
        start_new_session=True,
    )
    result = Served(process, port)
    try:
        _wait_until_serving(result, 2)
        yield result
    finally:
        # The whole session (supervisor and workers), whatever state the test left it in.
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _which_worker_serves_each(served: Served, n: int) -> Counter[int]:
    conns = [http.client.HTTPConnection("127.0.0.1", served.port, timeout=30) for _ in range(n)]
    try:
        for conn in conns:
            conn.connect()  # all opened together, before any request
        for conn in conns:
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            assert response.getheader("connection", "").lower() != "close"  # kept alive
        client_ports = {conn.sock.getsockname()[1] for conn in conns}
        server_side = {
            inode for inode, _, remote in _tcp_sockets(served.port, state="01") if remote in client_ports
        }
        assert len(server_side) == n
        owners: Counter[int] = Counter()
        for pid in served.workers():
            owners[pid] = len(_socket_inodes(pid) & server_side)
        assert sum(owners.values()) == n
        return owners
    finally:
        for conn in conns:
            conn.close()


def test_keep_alive_connections_spread_over_both_workers(served: Served) -> None:
    owners = _which_worker_serves_each(served, CONNECTIONS)
    assert len(owners) == 2
    assert all(count >= 2 for count in owners.values()), owners


def test_workers_use_uvloop_and_httptools(served: Served) -> None:
    for pid in served.workers():
        maps = Path(f"/proc/{pid}/maps").read_text()
        assert "uvloop" in maps and "httptools" in maps, pid


def test_a_dead_worker_is_replaced_sighup_replaces_all_sigterm_stops_everything(served: Served) -> None:
    first, second = sorted(served.workers())
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        workers = served.workers()
        if len(workers) == 2 and first not in workers:
            break
        time.sleep(0.2)
    else:
        pytest.fail("the dead worker was not replaced")
    _wait_until_serving(served, 2)
    assert second in workers
    assert len(_which_worker_serves_each(served, CONNECTIONS)) == 2

    served.process.send_signal(signal.SIGHUP)  # replace both, one after the other
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        replaced = served.workers()
        if len(replaced) == 2 and not replaced & workers:
            break
        time.sleep(0.2)
    else:
        pytest.fail("SIGHUP did not replace the workers")
    _wait_until_serving(served, 2)
    workers = replaced

    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=60) == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or _zombie(pid)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except FileNotFoundError:
        return True

"""A local Tenantry cluster: two instances and a worker behind HAProxy, on loopback ports.

    python -m deploy.cluster up     # or `make cluster`
    python -m deploy.cluster down   # or `make cluster-stop`

It uses the PostgreSQL and Redis given by TENANTRY_DATABASE_URL and TENANTRY_REDIS_URL (with
TENANTRY_MIGRATION_DATABASE_URL for the owner, if separate), runs `tenantry init`, then starts
`tenantry serve` twice, `tenantry worker` once and `haproxy` (Debian's package) round-robin over
the instances, health-checked on `/readyz`. State (pids, logs, haproxy.cfg) lives in
`var/cluster/`. Every instance gets the same TENANTRY_SECRET_KEY and TENANTRY_PUBLIC_URL — they
must be equal across instances (tokens signed by one are checked by the other; links in mail
point at the proxy).

The tests and the soak benchmark use the `Cluster` class directly.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = Path(__file__).with_name("haproxy.cfg.tmpl")
STATE = ROOT / "var" / "cluster"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_status(port: int, path: str = "/readyz", timeout: float = 2.0) -> int | None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("GET", path)
        status = conn.getresponse().status
        conn.close()
        return status
    except OSError:
        return None


def rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (a served instance is one process)."""
    total = 0
    for p in [pid, *_children(pid)]:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        kids = [int(p) for p in path.read_text().split()]
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [k for c in kids for k in (c, *_children(c))]


@dataclass
class Process:
    name: str
    argv: list[str]
    port: int | None = None
    popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


@dataclass
class Cluster:
    """Two instances, a worker and HAProxy; `start()` and `stop()` only touch these processes."""

    database_url: str
    redis_url: str | None = None
    migration_database_url: str | None = None
    smtp_url: str | None = None
    state_dir: Path = STATE
    instances: int = 2
    proxy_port: int = 0
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    env: dict[str, str] = field(default_factory=dict)
    worker: bool = True
    processes: dict[str, Process] = field(default_factory=dict)

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    @property
    def instance_ports(self) -> list[int]:
        return [p.port for n, p in sorted(self.processes.items()) if n.startswith("instance") and p.port]

    def environment(self) -> dict[str, str]:
        src = str(ROOT / "src")
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(x for x in (src, os.environ.get("PYTHONPATH")) if x),
            "TENANTRY_DATABASE_URL": self.database_url,
            "TENANTRY_SECRET_KEY": self.secret_key,
            "TENANTRY_PUBLIC_URL": self.public_url,
            "TENANTRY_RUN_JOBS": "false",  # the worker runs the jobs
            "TENANTRY_TRUSTED_PROXIES": "127.0.0.1",
            "TENANTRY_OUTBOX_DIR": str(self.state_dir / "outbox"),
        }
        for key, value in (
            ("TENANTRY_REDIS_URL", self.redis_url),
            ("TENANTRY_MIGRATION_DATABASE_URL", self.migration_database_url),
            ("TENANTRY_SMTP_URL", self.smtp_url),
        ):
            if value:
                env[key] = value
            else:
                env.pop(key, None)
        env.update(self.env)
        return env

    def _tenantry(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "tenantry", *args]

    def init(self) -> None:
        subprocess.run(  # noqa: S603  (our own interpreter and arguments)
            self._tenantry("init"), env=self.environment(), check=True, stdout=subprocess.DEVNULL, timeout=120
        )

    def plan(self) -> None:
        if not self.proxy_port:
            self.proxy_port = free_port()
        for i in range(self.instances):
            name = f"instance{i + 1}"
            port = free_port()
            self.processes[name] = Process(name, self._tenantry("serve", "--port", str(port)), port)
        if self.worker:
            self.processes["worker"] = Process("worker", self._tenantry("worker"))
        haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
        self.processes["proxy"] = Process(
            "proxy", [haproxy, "-f", str(self.haproxy_cfg()), "-db"], self.proxy_port
        )

    def haproxy_cfg(self) -> Path:
        path = self.state_dir / "haproxy.cfg"
        return path

    def _write_haproxy_cfg(self) -> None:
        servers = "\n".join(
            f"    server {p.name} 127.0.0.1:{p.port} check"
            for n, p in sorted(self.processes.items())
            if n.startswith("instance")
        )
        text = TEMPLATE.read_text().format(
            proxy_port=self.proxy_port, servers=servers, errorfile_503=TEMPLATE.with_name("haproxy-503.http")
        )
        self.haproxy_cfg().write_text(text)

    def start(self, *, init: bool = True, timeout: float = 90) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        if not self.processes:
            self.plan()
        self._write_haproxy_cfg()
        if init:
            self.init()
        for name in self.processes:
            self.start_process(name)
        self.wait_ready(timeout)

    def start_process(self, name: str) -> Process:
        proc = self.processes[name]
        log = (self.state_dir / f"{name}.log").open("ab")
        proc.popen = subprocess.Popen(  # noqa: S603  (argv built here, no shell)
            proc.argv,
            env=self.environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own group: stopping it never touches anything else
        )
        log.close()
        return proc

    def wait_ready(self, timeout: float = 90, names: list[str] | None = None) -> None:
        deadline = time.monotonic() + timeout
        for name in names or list(self.processes):
            proc = self.processes[name]
            while True:
                if not proc.alive():
                    raise RuntimeError(f"{name} exited; see {self.state_dir / (name + '.log')}")
                if proc.port is None or http_status(proc.port) == 200:
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{name} not ready; see {self.state_dir / (name + '.log')}")
                time.sleep(0.2)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.processes[name]
        if proc.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            assert proc.popen is not None
            proc.popen.wait(timeout=30)

    def stop_process(self, name: str, timeout: float = 20) -> None:
        proc = self.processes[name]
        if proc.popen is None:
            return
        if proc.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.popen.wait()

    def stop(self) -> None:
        # The proxy first (no new requests), then the instances and the worker.
        for name in ["proxy", *[n for n in self.processes if n != "proxy"]]:
            if name in self.processes:
                self.stop_process(name)

    def memory(self) -> dict[str, int]:
        return {n: rss_kib(p.pid) for n, p in self.processes.items() if p.alive()}

    def save(self) -> None:
        state = {n: {"pid": p.pid, "port": p.port} for n, p in self.processes.items() if p.alive()}
        (self.state_dir / "pids.json").write_text(json.dumps(state, indent=2))


@contextlib.contextmanager
def running(cluster: Cluster) -> Iterator[Cluster]:
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


def _up(args: argparse.Namespace) -> int:
    if (STATE / "pids.json").exists():
        print(f"a cluster seems to run already ({STATE / 'pids.json'}); `make cluster-stop` first")
        return 1
    database_url = os.environ.get("TENANTRY_DATABASE_URL", "postgresql://127.0.0.1:5432/tenantry")
    cluster = Cluster(
        database_url=database_url,
        redis_url=os.environ.get("TENANTRY_REDIS_URL", "redis://127.0.0.1:6379/0"),
        migration_database_url=os.environ.get("TENANTRY_MIGRATION_DATABASE_URL"),
        smtp_url=os.environ.get("TENANTRY_SMTP_URL"),
        proxy_port=args.port,
        secret_key=os.environ.get("TENANTRY_SECRET_KEY") or secrets.token_urlsafe(32),
    )
    try:
        cluster.start()
    except Exception:
        cluster.stop()
        raise
    cluster.save()
    print(f"cluster up: {cluster.public_url} (instances on {cluster.instance_ports}); logs in {STATE}")
    print("stop it with `make cluster-stop` (python -m deploy.cluster down)")
    return 0


def _down(_args: argparse.Namespace) -> int:
    path = STATE / "pids.json"
    if not path.exists():
        print("no cluster running")
        return 0
    state = json.loads(path.read_text())
    order = ["proxy", *[n for n in state if n != "proxy"]]
    for name in order:
        if name not in state:
            continue
        pid = state[name]["pid"]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            time.sleep(0.1)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        print(f"stopped {name} (pid {pid})")
    path.unlink()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.cluster", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start two instances, a worker and HAProxy")
    up.add_argument("--port", type=int, default=8080, help="the proxy's port (default 8080)")
    up.set_defaults(run=_up)
    down = sub.add_parser("down", help="stop what `up` started")
    down.set_defaults(run=_down)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())

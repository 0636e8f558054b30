"""Cluster soak: mixed traffic through HAProxy to two instances and a worker (issue 13, item 6).

For a bounded time (5 minutes; `--quick`: 30 s; TENANTRY_SOAK_SECONDS overrides) a few client
threads send, through the proxy: sign-ins, reads (`GET /me`, a resource list), writes (create
a resource, update the profile), and one thread deletes and restores a tenant of 100
resources over and over. Reported: requests, errors (anything but 2xx other than deliberate
refusals; must be 0), p50/p99 per kind, and every process's resident memory at the start and
the end (growth). "refused" counts the deliberate refusals (two clients updating the shared
profile at once: 409 `concurrent_update`).

Needs PostgreSQL (TENANTRY_BENCH_POSTGRES_URL or TENANTRY_TEST_POSTGRES_URL) and haproxy; Redis
from TENANTRY_TEST_REDIS_URL, else a redis-server of its own on a free port. Prints; never
asserts on time.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import httpx
from deploy.cluster import Cluster, free_port
from rich.console import Console
from rich.table import Table

from bench import Options
from bench._harness import postgres_admin_url, temporary_backend

PASSWORD = "soak-lantern-harbour-quartz-7"
ADMIN = "soak-admin@example.com"
SEED = 100
CLIENTS = 4
RESOURCES = "/api/v1/tenants/soak/resources"


@contextlib.contextmanager
def _redis() -> Iterator[str]:
    url = os.environ.get("TENANTRY_TEST_REDIS_URL")
    if url:
        yield url
        return
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        time.sleep(0.5)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


class Recorder:
    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)
        self.refused: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def call(
        self, kind: str, send: object, ok: tuple[int, ...] = (200, 201, 204), refusals: tuple[int, ...] = ()
    ) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            r: httpx.Response = send()  # type: ignore[operator]
        except httpx.HTTPError as exc:
            with self._lock:
                self.errors[kind].append(type(exc).__name__)
            return None
        elapsed = time.perf_counter() - started
        with self._lock:
            self.times[kind].append(elapsed)
            if r.status_code in refusals:
                self.refused[kind] += 1
            elif r.status_code not in ok:
                self.errors[kind].append(f"{r.status_code} {r.text[:120]}")
        return r


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))] * 1000 if ordered else 0.0


def run(options: Options) -> None:
    console = Console()
    seconds = float(os.environ.get("TENANTRY_SOAK_SECONDS") or (30 if options.quick else 300))
    if not postgres_admin_url():
        console.print(
            "[yellow]skipped: set TENANTRY_TEST_POSTGRES_URL (the soak runs on PostgreSQL)[/yellow]"
        )
        return
    if not (shutil.which("haproxy") or Path("/usr/sbin/haproxy").exists()):
        console.print("[yellow]skipped: haproxy is not installed (apt-get install haproxy)[/yellow]")
        return
    with (
        tempfile.TemporaryDirectory(prefix="tenantry-soak-") as tmp,
        _redis() as redis_url,
        temporary_backend("postgres", Path(tmp)) as backend,
    ):
        cluster = Cluster(
            database_url=backend.app_url,
            migration_database_url=backend.owner_url,
            redis_url=redis_url,
            state_dir=Path(tmp) / "cluster",
            env={
                "TENANTRY_ADMIN_EMAIL": ADMIN,
                "TENANTRY_ADMIN_PASSWORD": PASSWORD,
                "TENANTRY_LOG_LEVEL": "WARNING",
                "TENANTRY_LOGIN_IP_MAX_FAILURES": "1000000",
            },
        )
        try:
            cluster.start()
            _soak(console, cluster, seconds)
        finally:
            cluster.stop()


def _soak(console: Console, cluster: Cluster, seconds: float) -> None:
    base = cluster.public_url
    with httpx.Client(base_url=base, timeout=60) as c:
        token = c.post("/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD}).json()["token"]
        c.headers["Authorization"] = f"Bearer {token}"
        for slug in ("soak", "soak-trash"):
            c.post("/api/v1/tenants", json={"slug": slug, "name": slug}).raise_for_status()
        for i in range(SEED):
            c.post(
                "/api/v1/tenants/soak-trash/resources",
                json={"type": "server", "name": f"seed-{i}", "attributes": {}},
            )
    memory_start = cluster.memory()
    rec = Recorder()
    stop = threading.Event()

    def client_loop(n: int) -> None:
        with httpx.Client(base_url=base, timeout=60) as c:
            c.headers["Authorization"] = f"Bearer {token}"
            i = 0
            while not stop.is_set():
                i += 1
                if i % 20 == 0:
                    rec.call(
                        "login",
                        lambda: c.post("/api/v1/auth/login", json={"email": ADMIN, "password": PASSWORD}),
                    )
                rec.call("read: /me", lambda: c.get("/api/v1/me"))
                rec.call("read: resources", lambda: c.get(RESOURCES, params={"limit": 50}))
                name = f"s{n}-{i}-{secrets.token_hex(2)}"
                if i % 3 == 0:
                    body = {"type": "server", "name": name, "attributes": {}}
                    rec.call("write: create resource", lambda: c.post(RESOURCES, json=body))  # noqa: B023
                if i % 5 == 0:
                    # The clients share one account: two updates at once are a deliberate 409.
                    rec.call(
                        "write: profile",
                        lambda: c.patch("/api/v1/me", json={"first_name": name}),  # noqa: B023
                        refusals=(409,),
                    )

    def trash_loop() -> None:
        with httpx.Client(base_url=base, timeout=120) as c:
            c.headers["Authorization"] = f"Bearer {token}"
            while not stop.is_set():
                rec.call("tenant delete", lambda: c.delete("/api/v1/tenants/soak-trash"))
                rec.call("tenant restore", lambda: c.post("/api/v1/tenants/soak-trash/restore"))
                stop.wait(1.0)

    threads = [threading.Thread(target=client_loop, args=(n,)) for n in range(CLIENTS)]
    threads.append(threading.Thread(target=trash_loop))
    started = time.monotonic()
    for t in threads:
        t.start()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    wall = time.monotonic() - started
    memory_end = cluster.memory()

    table = Table(title=f"cluster soak: {wall:.0f} s through HAProxy, {CLIENTS} clients + delete/restore")
    for col in ("kind", "requests", "errors", "refused", "p50 ms", "p99 ms"):
        table.add_column(col, justify="right" if col != "kind" else "left")
    total = errors = 0
    for kind in sorted(set(rec.times) | set(rec.errors)):
        n, e = len(rec.times[kind]), len(rec.errors[kind])
        total, errors = total + n, errors + e
        p50, p99 = _pct(rec.times[kind], 50), _pct(rec.times[kind], 99)
        table.add_row(kind, str(n), str(e), str(rec.refused[kind]), f"{p50:.1f}", f"{p99:.1f}")
    table.add_row("all", str(total), str(errors), str(sum(rec.refused.values())), "", "")
    console.print(table)
    mem = Table(title="resident memory (MiB)")
    for col in ("process", "start", "end", "growth"):
        mem.add_column(col, justify="right" if col != "process" else "left")
    for name in sorted(memory_start):
        a, b = memory_start[name] / 1024, memory_end.get(name, 0) / 1024
        mem.add_row(name, f"{a:.1f}", f"{b:.1f}", f"{b - a:+.1f} ({(b - a) / a * 100 if a else 0:+.0f}%)")
    console.print(mem)
    rate = total / wall if wall else 0
    verdict = "[green]0 errors[/green]" if errors == 0 else f"[red]{errors} errors[/red]"
    console.print(
        f"{verdict}; {rate:.0f} requests/s; median of all: "
        f"{statistics.median([x for v in rec.times.values() for x in v] or [0]) * 1000:.1f} ms"
    )
    for kind, errs in rec.errors.items():
        for err in errs[:3]:
            console.print(f"  [red]{kind}[/red]: {err}")

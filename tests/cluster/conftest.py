"""A real cluster for the cluster and fault tests, built only from processes the tests start.

Its own PostgreSQL (initdb/pg_ctl in a temporary directory, as the `postgres` OS user when run
as root), its own Redis on a free port, its own SMTP sink, two `tenantry serve` instances, a
`tenantry worker` and HAProxy. Nothing here stops or starts the machine's shared services.

One cluster serves the whole session (starting it costs seconds); each test makes its own
users and tenants. Every test runs under an alarm: a hang fails the test instead of CI.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from deploy.cluster import Cluster, free_port
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from tests.smtp_sink import SmtpSink

TEST_SECONDS = 90
ADMIN_EMAIL = "admin@cluster.example.com"
ADMIN_PASSWORD = "quartz-harbour-lantern-97"


def _pg_bin(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)), None
    )


MISSING = [n for n in ("haproxy", "redis-server") if shutil.which(n) is None] + [
    n for n in ("initdb", "pg_ctl") if _pg_bin(n) is None
]
needs_tools = pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)} on PATH")


@pytest.fixture(autouse=True)
def _bounded() -> Iterator[None]:
    """No cluster test may hang CI: SIGALRM fails it after TEST_SECONDS."""

    def expired(_signum: int, _frame: Any) -> None:
        raise TimeoutError(f"cluster test exceeded {TEST_SECONDS}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(TEST_SECONDS)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class OwnPostgres:
    """A PostgreSQL cluster in a temporary directory, owned by the test."""

    directory: Path
    port: int
    user: str | None  # OS user to run as (PostgreSQL refuses root)

    def _run(self, *argv: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        return subprocess.run([*prefix, *argv], check=check, timeout=timeout, capture_output=True)

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def init(self) -> None:
        self._run(_pg_bin("initdb") or "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.directory}'\nfsync = off\n"
                "full_page_writes = off\nmax_connections = 200\nshared_buffers = 64MB\n"
            )

    def pg_ctl(self, *args: str) -> None:
        self._run(
            _pg_bin("pg_ctl") or "pg_ctl", "-D", str(self.data), "-l", str(self.directory / "log"), *args
        )

    def start(self) -> None:
        self.pg_ctl("-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self.pg_ctl("-w", "-t", "60", "-m", mode, "stop")

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def url(self, user: str = "postgres", database: str = "tenantry") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def engine(self, database: str = "tenantry") -> Engine:
        return create_engine(
            self.url(database=database).replace("postgresql://", "postgresql+psycopg://"),
            isolation_level="AUTOCOMMIT",
            pool_pre_ping=True,
        )

    def execute(self, sql: str, **params: Any) -> list[Any]:
        """Run one statement as the superuser; the rows it returns (none for most writes)."""
        engine = self.engine()
        try:
            with engine.connect() as conn:
                result = conn.execute(text(sql), params)
                return list(result.all()) if result.returns_rows else []
        finally:
            engine.dispose()


@dataclass
class OwnRedis:
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                __import__("socket").create_connection(("127.0.0.1", self.port), 1),
            ):
                return
            time.sleep(0.05)
        raise TimeoutError("redis did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)


@dataclass
class OwnSmtp:
    sink: SmtpSink
    controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.sink.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture(scope="session")
def own_pg() -> Iterator[OwnPostgres]:
    if MISSING:
        pytest.skip(f"needs {', '.join(MISSING)}")
    # Not under pytest's basetemp: pytest makes that 0700 (root only) at every session start,
    # also other sessions', and the `postgres` user must reach its data directory.
    directory = Path(tempfile.mkdtemp(prefix="tenantry-pg-"))
    user = None
    if os.geteuid() == 0:
        user = "postgres"
        try:
            pw = pwd.getpwnam(user)
        except KeyError:
            pytest.skip("running as root without a `postgres` OS user for initdb")
        os.chown(directory, pw.pw_uid, pw.pw_gid)
    pg = OwnPostgres(directory, free_port(), user)
    pg.init()
    pg.start()
    admin = pg.engine("postgres")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE tenantry"))
        conn.execute(text("CREATE ROLE tenantry_app LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE"))
    admin.dispose()
    try:
        yield pg
    finally:
        if pg.running():
            with contextlib.suppress(Exception):
                pg.stop("immediate")
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def own_redis() -> Iterator[OwnRedis]:
    redis = OwnRedis(free_port())
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


@pytest.fixture(scope="session")
def own_smtp() -> Iterator[OwnSmtp]:
    smtp = OwnSmtp(SmtpSink(port=free_port()))
    smtp.start()
    try:
        yield smtp
    finally:
        smtp.stop()


@pytest.fixture(scope="session")
def cluster(
    own_pg: OwnPostgres, own_redis: OwnRedis, own_smtp: OwnSmtp, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    c = Cluster(
        database_url=own_pg.url("tenantry_app"),
        migration_database_url=own_pg.url(),
        redis_url=own_redis.url,
        smtp_url=own_smtp.sink.url,
        state_dir=Path(tmp_path_factory.mktemp("cluster")),
        env={
            "TENANTRY_ADMIN_EMAIL": ADMIN_EMAIL,
            "TENANTRY_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "TENANTRY_ARGON2_MEMORY_KIB": "1024",
            "TENANTRY_ARGON2_TIME_COST": "1",
            "TENANTRY_LOG_LEVEL": "WARNING",
            "TENANTRY_SMTP_TIMEOUT_SECONDS": "2",
            # Every process runs the jobs too (the production default): they must not collide.
            "TENANTRY_RUN_JOBS": "true",
            # Small limits so the tests reach them: no delays before the lock-out.
            "TENANTRY_LOGIN_FREE_FAILURES": "20",
            "TENANTRY_LOGIN_LOCK_AFTER": "6",
            "TENANTRY_LOGIN_IP_MAX_FAILURES": "8",
        },
    )
    try:
        c.start()
        yield c
    finally:
        c.stop()


def client(port: int, token: str | None = None, timeout: float = 30) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=timeout)


def login(port: int, email: str, password: str) -> str:
    with client(port) as c:
        r = c.post("/api/v1/auth/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        return str(r.json()["token"])


@pytest.fixture(scope="session")
def admin_token(cluster: Cluster) -> str:
    return login(cluster.proxy_port, ADMIN_EMAIL, ADMIN_PASSWORD)

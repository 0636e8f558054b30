"""The request path, peer-shaped (issue 9): a real `tenantry serve --workers 2` on loopback.

The load shape used for the peers (OpenStack Keystone and others): 2 server workers, 4 requests
in flight on keep-alive connections (closed loop), 3 x 20 s rounds per scenario (`--quick`:
2 x 2 s), every scenario interleaved with the others round by round. Per scenario: ok/s,
p50, p99, and the server's CPU per request — utime + stime from /proc summed over the master
and its workers, delta over the measured window ÷ requests — plus how requests and CPU split
between the two workers, and each worker's RSS at the end.

Scenarios: the bare endpoint of the same server (`GET /livez`: async, no database, no
dependencies) as the denominator; `GET /api/v1/me` with a session token and with an API key;
`GET /api/v1/tenants/{tenant}` (with its counts); pages of 100 users, tenants, members and
resources (the resource reader sees them through resource-scope grants); create user +
membership without and with a password (two requests, timed as one operation); 4 concurrent
logins, against the argon2 hash alone measured in the same run on every core. The pages run
again against a second database with 100,000 users and resources (`--quick`: 20,000).

Runs on SQLite always, and on PostgreSQL (plus Redis when TENANTRY_BENCH_REDIS_URL or
TENANTRY_TEST_REDIS_URL is set) when TENANTRY_BENCH_POSTGRES_URL or TENANTRY_TEST_POSTGRES_URL
names a database a superuser can reach — as `tenants`: a throw-away database and a plain role
without BYPASSRLS. Prints the ratio table of issue 9 §2; never asserts on time.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import secrets
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from bench import Options
from bench._harness import (
    Load,
    LoadGenerator,
    Result,
    Server,
    background_cpu,
    postgres_admin_url,
    proc_rss_bytes,
    temporary_backend,
)

TENANTS = 100
USERS = 2_000  # each in 1-3 tenants: all in the main tenant, plus 0-2 others
MAIN_RESOURCES = 1_000  # in the main tenant; 5 in every other
LARGE_ROWS = 100_000  # users and main-tenant resources of the second database
LARGE_ROWS_QUICK = 20_000
READER_GRANTS = 200  # resource-scope `viewer` grants of the resource reader, spread over the main tenant
LOGIN_USERS = 100  # the login scenario signs in as these, at random
WORKERS = 2
CONCURRENCY = 4
MAIN, OTHER = "t000", "t001"  # the tenant the reads look at; the one the writes add members to
EMAIL = "user%s@bench.example.com"
SUPERADMIN = "superadmin@bench.example.com"
TENANT_ADMIN = "tenant-admin@bench.example.com"
READER = "reader@bench.example.com"
PASSWORD = "bench-" + secrets.token_urlsafe(24)  # every seeded account's; one hash, reused
NEW_PASSWORD = "bench-new-" + secrets.token_urlsafe(24)
JSON = {"Content-Type": "application/json"}
ROW_TARGET = 1.2  # page p50 at LARGE_ROWS ÷ at ~1,000
TAIL_TARGET = 3.0  # p99 ≤ 3x p50
SPLIT_TARGET = 0.40  # the less busy worker serves at least this share
RSS_TARGET = 150 * 2**20
HASH_SHARE_TARGET = 0.70
LOGIN_CAPACITY_TARGET = 0.80
PG_TARGET = 1.5


@dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    kind: str  # bare | read | page | create | login
    target: float | None  # server CPU per request ÷ the bare endpoint's
    path: str
    who: str  # "" (anonymous) | session | api_key | superadmin | tenant_admin | reader
    method: str = "GET"
    body: str | None = None
    body_choices: int = 0
    then: tuple[str, str] | None = None


_NEW_USER = '{"email": "new-%s@bench.example.com"}'
_NEW_USER_PW = '{"email": "new-%s@bench.example.com", "password": "' + NEW_PASSWORD + '"}'
_JOIN = (f"/api/v1/tenants/{OTHER}/members", '{"user_id": "%s", "role": "member"}')
SCENARIOS = [
    Scenario("bare", "bare: GET /livez (same server)", "bare", None, "/livez", ""),
    Scenario("me_session", "GET /api/v1/me, session token", "read", 1.5, "/api/v1/me", "session"),
    Scenario("me_api_key", "GET /api/v1/me, API key", "read", 1.5, "/api/v1/me", "api_key"),
    Scenario(
        "tenant",
        f"GET /api/v1/tenants/{MAIN} (counts)",
        "read",
        2.5,
        f"/api/v1/tenants/{MAIN}",
        "tenant_admin",
    ),
    Scenario(
        "users", "page: GET /api/v1/users?limit=100", "page", 6.0, "/api/v1/users?limit=100", "superadmin"
    ),
    Scenario(
        "tenants",
        "page: GET /api/v1/tenants?limit=100",
        "page",
        6.0,
        "/api/v1/tenants?limit=100",
        "superadmin",
    ),
    Scenario(
        "members",
        f"page: GET /api/v1/tenants/{MAIN}/members?limit=100",
        "page",
        6.0,
        f"/api/v1/tenants/{MAIN}/members?limit=100",
        "tenant_admin",
    ),
    Scenario(
        "resources",
        f"page: GET /api/v1/tenants/{MAIN}/resources?limit=100 (resource grants)",
        "page",
        6.0,
        f"/api/v1/tenants/{MAIN}/resources?limit=100",
        "reader",
    ),
    Scenario(
        "create",
        "create user + membership, no password (2 requests)",
        "create",
        10.0,
        "/api/v1/users",
        "superadmin",
        "POST",
        _NEW_USER,
        then=_JOIN,
    ),
    Scenario(
        "create_pw",
        "create user + membership, with password (2 requests)",
        "create",
        None,  # judged by the hash's share of its cost
        "/api/v1/users",
        "superadmin",
        "POST",
        _NEW_USER_PW,
        then=_JOIN,
    ),
    Scenario(
        "login",
        f"POST /api/v1/auth/login, {CONCURRENCY} concurrent",
        "login",
        None,  # judged against the hash's capacity
        "/api/v1/auth/login",
        "",
        "POST",
        '{"email": "' + EMAIL + '", "password": "' + PASSWORD + '"}',
        LOGIN_USERS,
    ),
]
LARGE_PAGES = ("users", "members", "resources")  # measured again on the database with LARGE_ROWS


@dataclass(frozen=True)
class Timing:
    warmup: int
    duration: int  # per scenario, split over the rounds
    rounds: int
    hash_seconds: float

    @classmethod
    def for_options(cls, options: Options) -> Timing:
        return cls(1, 4, 2, 1.0) if options.quick else cls(5, 60, 3, 10.0)


@dataclass
class HashCapacity:
    per_second: float  # hashes/s over every core
    cpu_ms: float  # CPU per hash
    processes: int


@dataclass
class BackendResults:
    name: str
    client: str = ""
    large_rows: int = 0
    seed_seconds: float = 0.0
    results: dict[str, Result] = field(default_factory=dict)  # by scenario key; LARGE pages as "<key>@large"
    workers: list[int] = field(default_factory=list)
    rss: dict[int, int | None] = field(default_factory=dict)  # worker pid → bytes, at the end
    hashes: list[HashCapacity] = field(default_factory=list)  # before and after the rounds
    argon2: tuple[int, int] = (0, 0)  # (time cost, memory KiB) the server hashes with
    notes: list[str] = field(default_factory=list)

    @property
    def hash_per_second(self) -> float:
        return statistics.mean(h.per_second for h in self.hashes) if self.hashes else 0.0

    @property
    def hash_cpu_ms(self) -> float:
        return statistics.mean(h.cpu_ms for h in self.hashes) if self.hashes else 0.0


# --------------------------------------------------------------------------- data


def _argon2_params() -> tuple[int, int]:
    """The server's argon2 parameters: the Settings defaults (the bench sets no TENANTRY_ARGON2_*)."""
    from tenantry.config import Settings

    fields = Settings.model_fields
    return int(fields["argon2_time_cost"].default), int(fields["argon2_memory_kib"].default)


def _password_hash(params: tuple[int, int]) -> str:
    from argon2 import PasswordHasher

    from tenantry.security.passwords import normalise

    return PasswordHasher(time_cost=params[0], memory_cost=params[1], parallelism=1).hash(normalise(PASSWORD))


def _seed(owner_url: str, users: int, main_resources: int, password_hash: str) -> dict[str, int]:
    """Core bulk inserts as the owner after the migrations; built-in types through the services."""
    from sqlalchemy import insert, text

    from tenantry.authz import system_principal
    from tenantry.db.engine import make_engine
    from tenantry.db.session import Database
    from tenantry.db.tables import Grant, Membership, Resource, Tenant, User
    from tenantry.db.types import utcnow
    from tenantry.ids import uuid7
    from tenantry.services import resource_types
    from tenantry.services.context import ServiceContext

    db = Database(owner_url)
    try:
        with db.unit_of_work() as session:
            resource_types.ensure_builtin_types(
                ServiceContext(session=session, principal=system_principal("bench"))
            )
    finally:
        db.dispose()

    rnd = random.Random(9)
    now = utcnow()
    tenant_ids = [uuid7() for _ in range(TENANTS)]
    rows: dict[Any, list[dict[str, Any]]] = {t: [] for t in (Tenant, User, Membership, Resource, Grant)}
    rows[Tenant] = [
        {
            "id": tid,
            "slug": f"t{i:03d}",
            "name": f"Tenant {i:03d}",
            "description": "",
            "created_at": now,
            "updated_at": now,
        }
        for i, tid in enumerate(tenant_ids)
    ]
    tenant_resources: list[list[Any]] = []
    for i, tid in enumerate(tenant_ids):
        count = main_resources if i == 0 else 5
        ids = [uuid7() for _ in range(count)]
        tenant_resources.append(ids)
        rows[Resource].extend(
            {
                "tenant_id": tid,
                "id": rid,
                "type": "host",
                "name": f"host-{k:06d}",
                "attributes": {"os": "linux"},
                "created_at": now,
                "updated_at": now,
            }
            for k, rid in enumerate(ids)
        )

    def grant(tid: Any, uid: Any, role: str, rid: Any = None) -> None:
        rows[Grant].append(
            {
                "tenant_id": tid,
                "id": uuid7(),
                "principal_type": "user",
                "principal_id": uid,
                "role_key": role,
                "resource_id": rid,
                "created_at": now,
            }
        )

    def user(email: str, *, superadmin: bool = False) -> Any:
        uid = uuid7()
        rows[User].append(
            {
                "id": uid,
                "email": email,
                "password_hash": password_hash,
                "is_superadmin": superadmin,
                "created_at": now,
                "updated_at": now,
            }
        )
        return uid

    def member(tid: Any, uid: Any) -> None:
        rows[Membership].append(
            {"tenant_id": tid, "id": uuid7(), "user_id": uid, "created_at": now, "updated_at": now}
        )

    user(SUPERADMIN, superadmin=True)
    admin = user(TENANT_ADMIN)
    member(tenant_ids[0], admin)
    grant(tenant_ids[0], admin, "tenant_admin")
    reader = user(READER)
    member(tenant_ids[0], reader)  # no tenant-wide role: sees resources through their grants only
    step = max(1, main_resources // READER_GRANTS)
    for rid in tenant_resources[0][::step][:READER_GRANTS]:
        grant(tenant_ids[0], reader, "viewer", rid)
    for i in range(users):
        uid = user(EMAIL % i)
        for t in [0, *rnd.sample(range(1, TENANTS), rnd.randint(0, 2))]:
            member(tenant_ids[t], uid)
            grant(tenant_ids[t], uid, "member" if rnd.random() < 0.8 else "viewer")
            if rnd.random() < 0.05:  # some resource-scope grants besides the reader's
                for rid in rnd.sample(tenant_resources[t], 2):
                    grant(tenant_ids[t], uid, "viewer", rid)
    engine = make_engine(owner_url)
    try:
        with engine.begin() as conn:
            for table, items in rows.items():
                for i in range(0, len(items), 5000):
                    conn.execute(insert(table.__table__), items[i : i + 5000])
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()
    return {table.__tablename__: len(items) for table, items in rows.items()}


# --------------------------------------------------------------------------- server side


def _multiproc_dir(pid: int) -> str | None:
    """PROMETHEUS_MULTIPROC_DIR as `tenantry serve` handed it to its workers (their environment)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            for item in f.read().split(b"\0"):
                if item.startswith(b"PROMETHEUS_MULTIPROC_DIR="):
                    return item.split(b"=", 1)[1].decode()
    except OSError:
        return None
    return None


def worker_requests(pids: list[int]) -> dict[int, float]:
    """Requests each worker has answered: `tenantry_http_requests_total` in its own metrics file."""
    from prometheus_client.mmap_dict import MmapedDict

    out: dict[int, float] = {}
    for pid in pids:
        directory = _multiproc_dir(pid)
        path = Path(directory or "") / f"counter_{pid}.db"
        if not directory or not path.exists():
            continue
        total = 0.0
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
            if json.loads(key)[1] == "tenantry_http_requests_total":
                total += value
        out[pid] = total
    return out


def _hash_worker(params: tuple[int, int], stored: str, seconds: float, queue: Any) -> None:
    from argon2 import PasswordHasher

    hasher = PasswordHasher(time_cost=params[0], memory_cost=params[1], parallelism=1)
    n, c0, end = 0, time.process_time(), time.monotonic() + seconds
    while time.monotonic() < end:
        hasher.verify(stored, PASSWORD)  # what a login spends: one argon2id computation
        n += 1
    queue.put((n, time.process_time() - c0))


def hash_capacity(params: tuple[int, int], stored: str, seconds: float) -> HashCapacity:
    """argon2id alone, one process per core at once: the most logins the machine can verify."""
    processes = os.cpu_count() or 1
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [
        ctx.Process(target=_hash_worker, args=(params, stored, seconds, queue)) for _ in range(processes)
    ]
    for p in procs:
        p.start()
    parts = [queue.get(timeout=seconds + 60) for _ in procs]
    for p in procs:
        p.join(30)
    count = sum(n for n, _ in parts)
    cpu = sum(c for _, c in parts)
    return HashCapacity(count / seconds, 1000 * cpu / count if count else 0.0, processes)


# --------------------------------------------------------------------------- HTTP setup


def _ok(resp: httpx.Response) -> httpx.Response:
    if resp.status_code >= 300:
        raise RuntimeError(f"{resp.request.method} {resp.request.url}: {resp.status_code} {resp.text[:300]}")
    return resp


def _login(server: Server, email: str) -> dict[str, str]:
    body = {"email": email, "password": PASSWORD}
    token = _ok(httpx.post(server.base_url + "/api/v1/auth/login", json=body, timeout=30)).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def _identities(server: Server) -> dict[str, dict[str, str]]:
    who = {
        "": {},
        "session": _login(server, EMAIL % 0),
        "superadmin": _login(server, SUPERADMIN),
        "tenant_admin": _login(server, TENANT_ADMIN),
        "reader": _login(server, READER),
    }
    created = _ok(
        httpx.post(
            server.base_url + "/api/v1/me/api-keys",
            json={"name": "bench", "scope": "read"},
            headers=who["session"],
            timeout=30,
        )
    ).json()
    who["api_key"] = {"Authorization": f"Bearer {created['token']}"}
    return who


def _check(server: Server, sc: Scenario, headers: dict[str, str]) -> None:
    """One request of each read before timing it: a 200, and a full page of 100 for the pages."""
    if sc.method != "GET":
        return
    body = _ok(httpx.get(server.base_url + sc.path, headers=headers, timeout=60)).json()
    if sc.kind == "page" and len(body["items"]) != 100:
        raise RuntimeError(f"GET {sc.path}: {len(body['items'])} items, expected a page of 100")


def _load(sc: Scenario, headers: dict[str, str], timing: Timing) -> Load:
    return Load(
        sc.path,
        {**headers, **(JSON if sc.body else {})},
        CONCURRENCY,
        timing.warmup,
        timing.duration,
        method=sc.method,
        body=sc.body,
        body_choices=sc.body_choices,
        then=sc.then,
    )


# --------------------------------------------------------------------------- one backend


def _bench_backend(
    name: str, tmp: Path, options: Options, timing: Timing, console: Console
) -> BackendResults:
    large_rows = LARGE_ROWS_QUICK if options.quick else LARGE_ROWS
    res = BackendResults(name, large_rows=large_rows, argon2=_argon2_params())
    noise = background_cpu()
    if noise is not None and noise > 20:
        res.notes.append(
            f"the machine was {noise:.0f}% busy (of one core) before the {name} run started: other processes "
            "compete with the benchmark; req/s and latencies are noisy (CPU per request much less so)"
        )
    work = tmp / name
    work.mkdir()
    stored = _password_hash(res.argon2)
    redis_url = os.environ.get("TENANTRY_BENCH_REDIS_URL") or os.environ.get("TENANTRY_TEST_REDIS_URL")
    with temporary_backend(name, work) as small, temporary_backend(name, work) as large:
        started = time.monotonic()
        counts = _seed(small.owner_url, USERS, MAIN_RESOURCES, stored)
        big = _seed(large.owner_url, large_rows, large_rows, stored)
        res.seed_seconds = time.monotonic() - started
        console.print(
            f"[dim]{name}: seeded {_counts(counts)}; and a second database with {_counts(big)} "
            f"in {res.seed_seconds:.0f} s[/dim]"
        )

        def server(label: str, backend: Any) -> Server:
            env = {
                "TENANTRY_DATABASE_URL": backend.app_url,
                "TENANTRY_LOG_LEVEL": "WARNING",
                "TENANTRY_SECRET_KEY": secrets.token_urlsafe(32),
                "TENANTRY_OUTBOX_DIR": str(work / "outbox"),
                "TENANTRY_ARGON2_TIME_COST": str(res.argon2[0]),
                "TENANTRY_ARGON2_MEMORY_KIB": str(res.argon2[1]),
            }
            if name == "postgres" and redis_url:
                env["TENANTRY_REDIS_URL"] = redis_url
            return Server(f"serve-{name}-{label}", "", env, work, cli_workers=WORKERS)

        if name == "postgres" and not redis_url:
            res.notes.append(
                "no Redis: set TENANTRY_BENCH_REDIS_URL (or TENANTRY_TEST_REDIS_URL) to include it"
            )
        gen = LoadGenerator(options.client, console, work, probe=worker_requests)
        res.client = gen.kind
        with server("small", small) as app, server("large", large) as app_large:
            res.workers = app.workers
            who, who_large = _identities(app), _identities(app_large)
            targets: dict[str, tuple[Server, Load]] = {}
            for sc in SCENARIOS:
                _check(app, sc, who[sc.who])
                targets[sc.key] = (app, _load(sc, who[sc.who], timing))
                if sc.key in LARGE_PAGES:
                    _check(app_large, sc, who_large[sc.who])
                    targets[f"{sc.key}@large"] = (app_large, _load(sc, who_large[sc.who], timing))
            console.print(
                f"[dim]{name}: {len(targets)} scenarios, {timing.rounds} interleaved rounds of "
                f"{max(1, round(timing.duration / timing.rounds))} s each after a {timing.warmup} s warm-up, "
                f"{CONCURRENCY} connections, client {gen.kind}[/dim]"
            )
            res.hashes.append(hash_capacity(res.argon2, stored, timing.hash_seconds))
            res.results = gen.compare(targets, timing.rounds)
            res.hashes.append(hash_capacity(res.argon2, stored, timing.hash_seconds))
            res.rss = {pid: proc_rss_bytes(pid) for pid in res.workers}
            for s in (app, app_large):
                log = s.log_tail(10)
                if log.strip():
                    res.notes.append(f"{s.name} server log (last lines):\n{log}")
    return res


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{v:,} {k}" for k, v in counts.items())


# --------------------------------------------------------------------------- output


def _mark(ok: bool) -> str:
    return "[green]✔ pass[/green]" if ok else "[red]✘ miss[/red]"


def _ms(r: Result) -> float | None:
    us = r.server_us_per_request
    return None if us is None else us / 1000


def _split(values: dict[int, float], workers: list[int]) -> tuple[str, float | None]:
    """'52/48' and the smaller worker's share, over the workers (the master's CPU left out)."""
    shares = [values.get(pid, 0.0) for pid in workers]
    total = sum(shares)
    if not total or len(shares) < 2:
        return "—", None
    pct = [100 * v / total for v in shares]
    return "/".join(f"{p:.0f}" for p in pct), min(pct) / 100


def _print_backend(res: BackendResults, console: Console) -> None:
    bare = _ms(res.results["bare"])
    t = Table(
        title=f"{res.name}: tenantry serve --workers {WORKERS}, {CONCURRENCY} connections, "
        f"client {res.client}",
        title_justify="left",
        caption="rounds interleaved (A B C … A B C …); p50/p99 = median over the rounds; CPU ms/req = server "
        "(master + workers) utime+stime ÷ requests; worker split = requests and CPU of worker 1/worker 2",
        caption_justify="left",
    )
    cols = (
        "scenario",
        "ok/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "server CPU",
        "CPU ms/req",
        "÷ bare",
        "req split",
        "CPU split",
    )
    for col in cols:
        t.add_column(col, justify="left" if col == "scenario" else "right")
    labels = {sc.key: sc.label for sc in SCENARIOS}
    for key, r in res.results.items():
        base, _, large = key.partition("@")
        label = (
            labels[base].split(" (")[0] + f" [bold]@ {res.large_rows:,} rows[/bold]"
            if large
            else labels[base]
        )
        ms = _ms(r)
        ok = r.requests - r.bad_status
        t.add_row(
            label,
            f"{ok / r.seconds:,.1f}" if r.seconds else "—",
            f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}",
            "0" if not (r.errors + r.bad_status) else f"[red]{r.errors + r.bad_status:,}[/red]",
            "—" if r.server_cpu is None else f"{r.server_cpu:.0f}%",
            "—" if ms is None else f"{ms:.2f}",
            "—" if ms is None or not bare else f"{ms / bare:.1f}x",
            _split(r.proc_counts, res.workers)[0] if not large else "—",
            _split(r.proc_cpu, res.workers)[0] if not large else "—",
        )
    console.print(t)
    rss = ", ".join("—" if v is None else f"{v / 2**20:.0f} MB" for v in res.rss.values())
    console.print(
        f"[dim]argon2id t={res.argon2[0]}, m={res.argon2[1]:,} KiB, p=1 alone: "
        f"{res.hash_per_second:.1f} hashes/s on {res.hashes[0].processes if res.hashes else 0} processes "
        f"({res.hash_cpu_ms:.1f} ms CPU each; mean of a "
        f"measurement before and after the rounds). RSS per worker at the end: {rss}. CPU % = of one core "
        f"({os.cpu_count()} cores = {100 * (os.cpu_count() or 1)}%).[/dim]"
    )
    for note in res.notes:
        console.print(f"[yellow]{note}[/yellow]")


def _targets(all_results: list[BackendResults], console: Console) -> None:
    t = Table(
        title="Targets (issue 9 §2): server CPU per request ÷ the bare endpoint's, same run and server",
        title_justify="left",
    )
    for col in ("backend", "measure", "value", "target", "result"):
        t.add_column(col, justify="right" if col in ("value", "target") else "left")
    for res in all_results:
        rs = res.results
        bare = _ms(rs["bare"])
        for sc in SCENARIOS:
            ms = _ms(rs[sc.key])
            if sc.target is not None and ms is not None and bare:
                t.add_row(
                    res.name,
                    f"{sc.label}: {ms:.2f} / {bare:.3f} ms",
                    f"{ms / bare:.1f}x",
                    f"≤ {sc.target:g}x",
                    _mark(ms / bare <= sc.target),
                )
        for key in LARGE_PAGES:
            a, b = rs[f"{key}@large"], rs[key]
            ratio = a.p50_ms / b.p50_ms if b.p50_ms else float("inf")
            t.add_row(
                res.name,
                f"{key} page p50 at {res.large_rows:,} rows ÷ at ~1,000: {a.p50_ms:.2f} / {b.p50_ms:.2f} ms",
                f"{ratio:.2f}x",
                f"≤ {ROW_TARGET}x",
                _mark(ratio <= ROW_TARGET),
            )
        pw, cr = _ms(rs["create_pw"]), _ms(rs["create"])
        if pw and res.hash_cpu_ms:
            share = res.hash_cpu_ms / pw
            t.add_row(
                res.name,
                f"create with password: argon2 {res.hash_cpu_ms:.1f} ms of {pw:.1f} ms CPU"
                + (f" (without password {cr:.1f} ms)" if cr else ""),
                f"{share:.0%}",
                f"≥ {HASH_SHARE_TARGET:.0%}",
                _mark(share >= HASH_SHARE_TARGET),
            )
        login = rs["login"]
        tail = login.p99_ms / login.p50_ms if login.p50_ms else float("inf")
        t.add_row(
            res.name,
            f"logins p99 ÷ p50: {login.p99_ms:.0f} / {login.p50_ms:.0f} ms",
            f"{tail:.1f}x",
            f"≤ {TAIL_TARGET:g}x",
            _mark(tail <= TAIL_TARGET),
        )
        if res.hash_per_second:
            rate = (login.requests - login.bad_status) / login.seconds if login.seconds else 0.0
            share = rate / res.hash_per_second
            t.add_row(
                res.name,
                f"logins/s ÷ argon2 capacity: {rate:.1f} / {res.hash_per_second:.1f} per s",
                f"{share:.0%}",
                f"≥ {LOGIN_CAPACITY_TARGET:.0%}",
                _mark(share >= LOGIN_CAPACITY_TARGET),
            )
        for sc in SCENARIOS:
            if sc.kind in ("read", "page"):
                r = rs[sc.key]
                tail = r.p99_ms / r.p50_ms if r.p50_ms else float("inf")
                t.add_row(
                    res.name,
                    f"{sc.key} p99 ÷ p50: {r.p99_ms:.1f} / {r.p50_ms:.1f} ms",
                    f"{tail:.1f}x",
                    f"≤ {TAIL_TARGET:g}x",
                    _mark(tail <= TAIL_TARGET),
                )
        # The server's busy time over every scenario (CPU, not requests: the bare endpoint's
        # thousands of requests would drown the rest), then the most lopsided scenario.
        cpu: dict[int, float] = {}
        for key, r in rs.items():
            if "@" not in key:
                for pid, v in r.proc_cpu.items():
                    cpu[pid] = cpu.get(pid, 0.0) + v
        text, low = _split(cpu, res.workers)
        t.add_row(
            res.name,
            f"worker split of the server's CPU, all scenarios: {text} %",
            "—" if low is None else f"{low:.0%}",
            f"≥ {SPLIT_TARGET:.0%} each",
            "—" if low is None else _mark(low >= SPLIT_TARGET),
        )
        splits = [(_split(rs[sc.key].proc_counts, res.workers), sc.key) for sc in SCENARIOS]
        known_splits = [(low, text, key) for (text, low), key in splits if low is not None]
        if known_splits:
            low, text, key = min(known_splits)
            t.add_row(
                res.name,
                f"worker split of requests, most lopsided scenario ({key}): {text} %",
                f"{low:.0%}",
                f"≥ {SPLIT_TARGET:.0%} each",
                _mark(low >= SPLIT_TARGET),
            )
        known = [v for v in res.rss.values() if v is not None]
        if known:
            t.add_row(
                res.name,
                "RSS per worker at the end (largest; not after warming 20,000 users' permissions)",
                f"{max(known) / 2**20:.0f} MB",
                f"≤ {RSS_TARGET // 2**20} MB",
                _mark(max(known) <= RSS_TARGET),
            )
    by_name = {res.name: res for res in all_results}
    if "sqlite" in by_name and "postgres" in by_name:
        lite, pg = by_name["sqlite"].results, by_name["postgres"].results
        for sc in SCENARIOS:
            if sc.kind in ("read", "page"):
                a, b = _ms(pg[sc.key]), _ms(lite[sc.key])
                p, q = pg[sc.key].p50_ms, lite[sc.key].p50_ms
                if a and b and q:
                    # The app's CPU misses PostgreSQL's own work and the waits of extra round
                    # trips; the p50 shows them: the larger of the two ratios counts.
                    worse = max(a / b, p / q)
                    t.add_row(
                        "both",
                        f"PostgreSQL ÷ SQLite, {sc.key}: CPU {a:.2f} / {b:.2f} ms = {a / b:.2f}x, "
                        f"p50 {p:.1f} / {q:.1f} ms = {p / q:.2f}x",
                        f"{worse:.2f}x",
                        f"≤ {PG_TARGET}x",
                        _mark(worse <= PG_TARGET),
                    )
    console.print(t)


def run(options: Options) -> None:
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=170)
    timing = Timing.for_options(options)
    names = ["sqlite"] + (["postgres"] if postgres_admin_url() else [])
    if len(names) == 1:
        console.print(
            "[dim]PostgreSQL skipped: set TENANTRY_BENCH_POSTGRES_URL or TENANTRY_TEST_POSTGRES_URL "
            "(e.g. postgresql://root@127.0.0.1:5432/postgres)[/dim]"
        )
    if options.quick:
        console.print(
            f"[dim]--quick: {LARGE_ROWS_QUICK:,} rows instead of {LARGE_ROWS:,} in the second database, "
            f"{timing.rounds} rounds of {timing.duration // timing.rounds} s instead of 3 x 20 s[/dim]"
        )
    results = []
    with tempfile.TemporaryDirectory(prefix="tenantry-bench-") as tmp:
        for name in names:
            started = time.monotonic()
            res = _bench_backend(name, Path(tmp), options, timing, console)
            _print_backend(res, console)
            console.print(f"[dim]{name}: {time.monotonic() - started:.0f} s[/dim]")
            results.append(res)
    _targets(results, console)

"""Tenants through the full stack: uvicorn → FastAPI → services → SQLAlchemy → SQLite/PostgreSQL.

1. `GET /api/v1/tenants/{slug}` as a superadmin (bearer token from `POST /api/v1/auth/login`),
   requests/second against a bare Starlette endpoint returning the same JSON body, served by
   the same uvicorn settings in the same run. Target: app ≥ 50% of bare.
2. `GET /api/v1/tenants?limit=50` latency (p50/p99, one connection) with 100 tenants vs
   10,000 tenants, plus a deep page (cursor near the end). Target: 10,000 ≤ 1.3x of 100.

Diagnostics in the same table: FastAPI with the app's route shape but no database, a bare
Starlette endpoint doing the same SQL by hand (`bench/_bare.py`), and the app with a token last
seen 5 minutes ago (the session-touch path). Compared targets run in alternating rounds.

Runs on SQLite always, and on PostgreSQL when TENANTRY_BENCH_POSTGRES_URL or
TENANTRY_TEST_POSTGRES_URL names a database a superuser can reach: a throw-away database and
a plain application role (no BYPASSRLS, so row-level security applies) are created exactly as
the tests do (`tests.backends.create_backend`) and dropped afterwards. Prints; never asserts
on time.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

from bench import Options
from bench._harness import Load, LoadGenerator, Result, Server, background_cpu
from bench._harness import postgres_admin_url as _postgres_admin_url
from bench._harness import temporary_backend as _backend

TENANTS_SMALL = 100
TENANTS_LARGE = 10_000
MEMBERS_PER_TENANT = 3  # memberships and resources give the list's counts something to count
RESOURCES_PER_TENANT = 5
USERS = 300
SLUG = "tenant-%05d"  # zero-padded: slug order = insertion order, and every body has one size
CONCURRENCY = 8  # connections for the throughput runs; latency runs use one
ADMIN_EMAIL = "bench-admin@example.com"
ADMIN_PASSWORD = "bench-" + secrets.token_urlsafe(24)
PAGE = "/api/v1/tenants?limit=50"
SMALL_PAGE = "first page, 100 tenants"
APP = "app"
SHAPE = "FastAPI, same route shape, no DB"
FLOOR = "bare Starlette + the same SQL by hand"
BARE = "bare Starlette"
AGED = "app, token last seen 5 min ago"
RPS_TARGET = 0.50  # app ≥ 50% of bare
LATENCY_TARGET = 1.3  # 10,000 tenants ≤ 1.3x of 100 tenants


@dataclass(frozen=True)
class Timing:
    rps_warmup: int
    rps_duration: int
    latency_warmup: int
    latency_duration: int
    rounds: int  # measurements of the compared targets alternate in this many rounds

    @classmethod
    def for_options(cls, options: Options) -> Timing:
        return cls(1, 2, 1, 2, 2) if options.quick else cls(3, 8, 2, 6, 3)


@dataclass
class BackendResults:
    name: str
    client: str = ""
    seed_seconds: float = 0.0
    latency: dict[str, Result] = field(default_factory=dict)  # by page: SMALL_PAGE first
    rps: dict[str, Result] = field(default_factory=dict)  # APP, SHAPE, FLOOR, BARE, AGED
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- backends and data


def _seed_users(owner_url: str) -> list[object]:
    """Plain users (Core insert) and one superadmin created through the services."""
    from sqlalchemy import insert

    from tenantry.authz import system_principal
    from tenantry.db.engine import make_engine
    from tenantry.db.session import Database
    from tenantry.db.tables import User
    from tenantry.db.types import utcnow
    from tenantry.ids import uuid7
    from tenantry.services import users
    from tenantry.services.context import ServiceContext

    now = utcnow()
    ids = [uuid7() for _ in range(USERS)]
    engine = make_engine(owner_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(User.__table__),
                [
                    {
                        "id": uid,
                        "email": f"user{i:04d}@bench.example.com",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i, uid in enumerate(ids)
                ],
            )
    finally:
        engine.dispose()
    db = Database(owner_url)
    try:
        with db.unit_of_work() as session:
            ctx = ServiceContext(session=session, principal=system_principal("bench"))
            users.create_user(ctx, email=ADMIN_EMAIL, password=ADMIN_PASSWORD, is_superadmin=True)
    finally:
        db.dispose()
    return ids


def _seed_tenants(owner_url: str, start: int, stop: int, user_ids: list[object]) -> None:
    """Bulk Core inserts as the owner: tenants, their memberships and resources."""
    from sqlalchemy import insert, text

    from tenantry.db.engine import make_engine
    from tenantry.db.tables import Membership, Resource, Tenant
    from tenantry.db.types import utcnow
    from tenantry.ids import uuid7

    now = utcnow()
    tenants, members, resources = [], [], []
    for i in range(start, stop):
        tid = uuid7()
        tenants.append(
            {
                "id": tid,
                "slug": SLUG % i,
                "name": f"Tenant {i:05d}",
                "description": "",
                "created_at": now,
                "updated_at": now,
            }
        )
        members.extend(
            {
                "tenant_id": tid,
                "id": uuid7(),
                "user_id": user_ids[(i + k) % len(user_ids)],
                "created_at": now,
                "updated_at": now,
            }
            for k in range(MEMBERS_PER_TENANT)
        )
        resources.extend(
            {
                "tenant_id": tid,
                "id": uuid7(),
                "type": "project",
                "name": f"project-{k}",
                "attributes": {},
                "created_at": now,
                "updated_at": now,
            }
            for k in range(RESOURCES_PER_TENANT)
        )
    engine = make_engine(owner_url)
    try:
        with engine.begin() as conn:
            for table, rows in (
                (Tenant.__table__, tenants),
                (Membership.__table__, members),
                (Resource.__table__, resources),
            ):
                for i in range(0, len(rows), 5000):
                    conn.execute(insert(table), rows[i : i + 5000])
        if engine.dialect.name == "postgresql":
            # What autovacuum would have done by the time a table holds 10,000 rows.
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("ANALYZE"))
    finally:
        engine.dispose()


def _age_session(owner_url: str, token: str, minutes: int = 5) -> None:
    """Pretend the session was last seen `minutes` ago (the state of any token in real use)."""
    from sqlalchemy import update

    from tenantry.db.engine import make_engine
    from tenantry.db.tables import AuthSession
    from tenantry.db.types import utcnow
    from tenantry.security import tokens

    engine = make_engine(owner_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                update(AuthSession)
                .where(AuthSession.token_hash == tokens.digest(token))
                .values(last_seen_at=utcnow() - timedelta(minutes=minutes))
            )
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- HTTP helpers


def _login(app: Server) -> dict[str, str]:
    r = httpx.post(
        app.base_url + "/api/v1/auth/login",
        json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
        timeout=30,
    )
    if r.status_code != 200:
        raise RuntimeError(f"login failed: {r.status_code} {r.text[:500]}")
    return {"Authorization": f"Bearer {r.json()['token']}"}


def _get_ok(base_url: str, path: str, headers: dict[str, str]) -> httpx.Response:
    r = httpx.get(base_url + path, headers=headers, timeout=30)
    if r.status_code != 200:
        raise RuntimeError(f"GET {path}: {r.status_code} {r.text[:500]}")
    return r


def _check_page(app: Server, path: str, headers: dict[str, str], first_slug: str) -> None:
    items = _get_ok(app.base_url, path, headers).json()["items"]
    if len(items) != 50 or items[0]["slug"] != first_slug:
        raise RuntimeError(f"GET {path}: unexpected page ({len(items)} items, first {items[:1]})")
    if items[0]["member_count"] != MEMBERS_PER_TENANT or items[0]["resource_count"] != RESOURCES_PER_TENANT:
        raise RuntimeError(f"GET {path}: unexpected counts in {items[0]}")


# --------------------------------------------------------------------------- one backend


def _bench_backend(
    name: str, tmp: Path, gen: LoadGenerator, timing: Timing, console: Console
) -> BackendResults:
    from tenantry.services.pagination import encode_cursor

    res = BackendResults(name, client=gen.kind)
    noise = background_cpu()
    if noise is not None and noise > 20:
        res.notes.append(
            f"the machine was {noise:.0f}% busy (of one core) before the {name} run started: "
            "other processes compete with the benchmark; the numbers are noisy"
        )
    lat = {"warmup": timing.latency_warmup, "duration": timing.latency_duration}
    rps = {"warmup": timing.rps_warmup, "duration": timing.rps_duration}
    work = tmp / name
    work.mkdir()
    # Two databases, two app servers: 100 and 10,000 tenants side by side, so that the list
    # latencies can be measured in interleaved rounds rather than minutes apart.
    with _backend(name, work) as small, _backend(name, work) as large:
        started = time.monotonic()
        for backend, count in ((small, TENANTS_SMALL), (large, TENANTS_LARGE)):
            owner_url = backend.owner_url  # type: ignore[attr-defined]
            _seed_tenants(owner_url, 0, count, _seed_users(owner_url))
        res.seed_seconds = time.monotonic() - started
        console.print(
            f"[dim]{name}: seeded {TENANTS_SMALL} and {TENANTS_LARGE:,} tenants (3 memberships and 5 "
            f"resources each) in {res.seed_seconds:.1f} s[/dim]"
        )

        def app_env(backend: object) -> dict[str, str]:
            return {
                "TENANTRY_DATABASE_URL": backend.app_url,  # type: ignore[attr-defined]
                "TENANTRY_LOG_LEVEL": "WARNING",
                "TENANTRY_SECRET_KEY": secrets.token_urlsafe(32),
                "TENANTRY_OUTBOX_DIR": str(work / "outbox"),
            }

        env = app_env(large)
        app_small = Server(f"app-{name}-100", "tenantry.api.app:create_app", app_env(small), work)
        app = Server(f"app-{name}-10000", "tenantry.api.app:create_app", env, work)
        with app_small, app:
            console.print(f"[dim]{name}: measuring {PAGE} (100 vs {TENANTS_LARGE:,} tenants)[/dim]")
            h_small, h_large = _login(app_small), _login(app)
            deep_at = TENANTS_LARGE - 100
            deep = f"{PAGE}&cursor={encode_cursor(SLUG % (deep_at - 1))}"
            _check_page(app_small, PAGE, h_small, SLUG % 0)
            _check_page(app, PAGE, h_large, SLUG % 0)
            _check_page(app, deep, h_large, SLUG % deep_at)
            res.latency = gen.compare(
                {
                    SMALL_PAGE: (app_small, Load(PAGE, h_small, 1, **lat)),
                    "first page, 10,000 tenants": (app, Load(PAGE, h_large, 1, **lat)),
                    f"page at #{deep_at:,} (cursor), 10,000 tenants": (app, Load(deep, h_large, 1, **lat)),
                },
                timing.rounds,
            )
            console.print(f"[dim]{name}: measuring GET /api/v1/tenants/{{slug}} against the baselines[/dim]")
            app_small.stop()
            headers = _login(app)
            path = "/api/v1/tenants/" + SLUG
            body = _get_ok(app.base_url, path % 5000, headers).content
            body_file = work / "bare-body.json"
            body_file.write_bytes(body)
            base_env = {**env, "TENANTRY_BENCH_BARE_BODY": str(body_file)}
            shape = Server(f"fastapi-{name}", "bench._bare:create_fastapi_shape", base_env, work)
            floor = Server(f"sql-floor-{name}", "bench._bare:create_sql_floor", base_env, work)
            bare = Server(f"bare-{name}", "bench._bare:create_app", base_env, work)
            load = Load(path, headers, CONCURRENCY, choices=TENANTS_LARGE, **rps)
            with shape, floor, bare:
                expected = json.loads(body)
                for server in (shape, floor, bare):
                    got = _get_ok(server.base_url, path % 5000, headers).json()
                    if server is floor:  # its own formatting of ids and times; same facts
                        ok = all(got[k] == expected[k] for k in ("slug", "member_count", "resource_count"))
                    else:
                        ok = got == expected
                    if not ok:
                        raise RuntimeError(f"{server.name} does not return the app's body: {got}")
                res.rps = gen.compare(
                    {APP: (app, load), SHAPE: (shape, load), FLOOR: (floor, load), BARE: (bare, load)},
                    timing.rounds,
                )
            # Any token in real use was last seen over a minute ago: that path touches the session.
            headers = _login(app)
            _age_session(large.owner_url, headers["Authorization"].removeprefix("Bearer "))  # type: ignore[attr-defined]
            res.rps[AGED] = gen.run(app.base_url, replace(load, headers=headers), app.pid)
            base = res.rps[BARE]
            if base.server_cpu is not None and base.server_cpu < 75:
                res.notes.append(
                    f"the bare server used only {base.server_cpu:.0f}% of a core: it was not saturated (the "
                    f"client at {_cpu(base.client_cpu)} or other processes at {_cpu(base.other_cpu)} held it "
                    "back), so the app/bare ratio is flattering"
                )
            for server in (app_small, app):
                log = server.log_tail(10)
                if log.strip():
                    res.notes.append(f"{server.name} server log (last lines):\n{log}")
    return res


# --------------------------------------------------------------------------- output


def _ms(v: float) -> str:
    return f"{v:.2f}"


def _us(v: float | None) -> str:
    return "—" if v is None else f"{v:,.0f}"


def _cpu(v: float | None) -> str:
    return "—" if v is None else f"{v:.0f}%"


def _mark(ok: bool) -> str:
    return "[green]✔ pass[/green]" if ok else "[red]✘ miss[/red]"


def _errors(r: Result) -> str:
    n = r.errors + r.bad_status
    return "0" if n == 0 else f"[red]{n}[/red]"


def _print_backend(res: BackendResults, console: Console) -> None:
    note = "rows measured in alternating rounds (A B C A B C …); p50/p99 = median over the rounds"
    t = Table(
        title=f"{res.name}: GET /api/v1/tenants/{{slug}} — {TENANTS_LARGE:,} tenants, "
        f"{CONCURRENCY} connections, client {res.client}",
        title_justify="left",
        caption=note + "; the aged-token row runs after them",
        caption_justify="left",
    )
    for col in (
        "server",
        "req/s",
        "÷ bare",
        "p50 ms",
        "p99 ms",
        "requests",
        "errors",
        "server CPU",
        "CPU µs/req",
        "client CPU",
        "other CPU",
    ):
        t.add_column(col, justify="left" if col == "server" else "right")
    bare = res.rps[BARE].rps
    for label, r in res.rps.items():
        t.add_row(
            label,
            f"{r.rps:,.0f}",
            f"{r.rps / bare:.1%}" if bare else "—",
            _ms(r.p50_ms),
            _ms(r.p99_ms),
            f"{r.requests:,}",
            _errors(r),
            _cpu(r.server_cpu),
            _us(r.server_us_per_request),
            _cpu(r.client_cpu),
            _cpu(r.other_cpu),
        )
    console.print(t)
    t = Table(
        title=f"{res.name}: GET {PAGE} — 1 connection, client {res.client}",
        title_justify="left",
        caption=note,
        caption_justify="left",
    )
    cols = (
        "page",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "req/s",
        "errors",
        "server CPU",
        "CPU µs/req",
        "other CPU",
    )
    for col in cols:
        t.add_column(col, justify="left" if col == "page" else "right")
    for label, r in res.latency.items():
        t.add_row(
            label,
            _ms(r.p50_ms),
            _ms(r.p90_ms),
            _ms(r.p99_ms),
            _ms(r.max_ms),
            f"{r.rps:,.0f}",
            _errors(r),
            _cpu(r.server_cpu),
            _us(r.server_us_per_request),
            _cpu(r.other_cpu),
        )
    console.print(t)
    console.print(
        f"[dim]CPU: % of one core during the measured window ({os.cpu_count()} cores = "
        f"{100 * (os.cpu_count() or 1)}%). CPU µs/req = server CPU per request (steadier than req/s on a "
        "busy machine). other = the machine minus server and client: the database server on PostgreSQL, plus "
        "anything else running (noise).[/dim]"
    )
    for note in res.notes:
        console.print(f"[yellow]{note}[/yellow]")


def _targets(results: list[BackendResults], console: Console) -> None:
    t = Table(title="Targets", title_justify="left")
    for col in ("backend", "measure", "value", "target", "result"):
        t.add_column(col, justify="right" if col in ("value", "target") else "left")
    for res in results:
        app, bare = res.rps[APP], res.rps[BARE]
        ratio = app.rps / bare.rps if bare.rps else 0.0
        t.add_row(
            res.name,
            f"GET tenant req/s: app {app.rps:,.0f} / bare {bare.rps:,.0f}",
            f"{ratio:.1%}",
            f"≥ {RPS_TARGET:.0%}",
            _mark(ratio >= RPS_TARGET),
        )
        a_us, b_us = app.server_us_per_request, bare.server_us_per_request
        if a_us and b_us:
            t.add_row(
                res.name,
                f"  same, by server CPU per request: bare {b_us:,.0f} µs / app {a_us:,.0f} µs",
                f"{b_us / a_us:.1%}",
                f"≥ {RPS_TARGET:.0%}",
                _mark(b_us / a_us >= RPS_TARGET),
            )
        floor = res.rps.get(FLOOR)
        if floor is not None and floor.rps:
            t.add_row(
                res.name,
                f"  for scale: app {app.rps:,.0f} / {FLOOR} {floor.rps:,.0f} req/s",
                f"{app.rps / floor.rps:.1%}",
                "—",
                "[dim]info[/dim]",
            )
        aged = res.rps.get(AGED)
        if aged is not None:
            r2 = aged.rps / bare.rps if bare.rps else 0.0
            bad = aged.errors + aged.bad_status
            t.add_row(
                res.name,
                f"  same, token last seen 5 min ago: {aged.rps:,.0f} req/s"
                + (f" ([red]{bad:,} errors[/red])" if bad else ""),
                f"{r2:.1%}",
                f"≥ {RPS_TARGET:.0%}",
                _mark(r2 >= RPS_TARGET and not bad),
            )
        base = res.latency[SMALL_PAGE]
        for label, r in res.latency.items():
            if r is base:
                continue
            for pct in ("p50", "p99"):
                a, b = getattr(r, f"{pct}_ms"), getattr(base, f"{pct}_ms")
                ratio = a / b if b else float("inf")
                t.add_row(
                    res.name,
                    f"list {pct}: {label} {a:.2f} ms / 100 tenants {b:.2f} ms",
                    f"{ratio:.2f}x",
                    f"≤ {LATENCY_TARGET}x",
                    _mark(ratio <= LATENCY_TARGET),
                )
            a_us, b_us = r.server_us_per_request, base.server_us_per_request
            if a_us and b_us:
                t.add_row(
                    res.name,
                    f"  same page, server CPU per request: {a_us:,.0f} µs / {b_us:,.0f} µs",
                    f"{a_us / b_us:.2f}x",
                    f"≤ {LATENCY_TARGET}x",
                    _mark(a_us / b_us <= LATENCY_TARGET),
                )
    console.print(t)


def run(options: Options) -> None:
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=150)
    os.environ["TENANTRY_ARGON2_MEMORY_KIB"] = "1024"  # hashing the seeded admin's password only
    os.environ["TENANTRY_ARGON2_TIME_COST"] = "1"
    timing = Timing.for_options(options)
    names = ["sqlite"] + (["postgres"] if _postgres_admin_url() else [])
    if len(names) == 1:
        console.print(
            "[dim]PostgreSQL skipped: set TENANTRY_BENCH_POSTGRES_URL or TENANTRY_TEST_POSTGRES_URL "
            "(e.g. postgresql://root@127.0.0.1:5432/postgres)[/dim]"
        )
    results = []
    with tempfile.TemporaryDirectory(prefix="tenantry-bench-") as tmp:
        gen = LoadGenerator(options.client, console, Path(tmp))
        for name in names:
            res = _bench_backend(name, Path(tmp), gen, timing, console)
            _print_backend(res, console)
            results.append(res)
    _targets(results, console)

"""Identity through the full stack (uvicorn → FastAPI → services → SQLite): who am I, and signing in.

1. `GET /api/v1/me` req/s with a session token and with an API key (scope `read`, created with
   `POST /api/v1/me/api-keys`), against a bare Starlette endpoint returning the same JSON body
   (`create_bare_me` below), same client and concurrency, alternating rounds. Target: ≥ 60%.
2. `POST /api/v1/auth/login` req/s at the default argon2 parameters (TENANTRY_ARGON2_* unset),
   round-robin over 50 users so that no per-account throttle applies (the per-address limiter
   counts failures only, and every login here succeeds). Reported, no target.
3. Login storm: `GET /api/v1/me` p99 (session token) while a second load generator hammers
   `/auth/login`, vs the idle p99 of the same load in the same run. Target: ≤ 3x.

SQLite only. Prints; never asserts on time.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import random
import secrets
import subprocess
import tempfile
import time
from array import array
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from bench import Options
from bench._harness import (
    HOST,
    CpuSample,
    Load,
    LoadGenerator,
    Result,
    Server,
    _pct,
    _percentile,
    background_cpu,
    children_cpu_seconds,
    merge,
)

USERS = 50
PASSWORD = "bench-" + secrets.token_urlsafe(24)
EMAIL = "user%02d@bench.example.com"
ME = "/api/v1/me"
LOGIN = "/api/v1/auth/login"
CONCURRENCY = 8  # GET /me throughput
STORM_READERS = 2  # GET /me connections for the idle/storm p99
LOGIN_CONCURRENCY = 4
RPS_TARGET = 0.60
STORM_TARGET = 3.0
SESSION, API_KEY, BARE = "app, session token", "app, API key (read)", "bare Starlette"


def create_bare_me() -> Any:
    """`uvicorn bench.identity:create_bare_me --factory`: the body of a real `GET /api/v1/me`."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    body = json.loads(Path(os.environ["TENANTRY_BENCH_BARE_BODY"]).read_bytes())

    async def me(_request: Request) -> Response:
        return JSONResponse(body)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route(ME, me), Route("/healthz", healthz)])


@dataclass(frozen=True)
class Timing:
    warmup: int
    duration: int
    rounds: int

    @classmethod
    def for_options(cls, options: Options) -> Timing:
        return cls(1, 3, 2) if options.quick else cls(3, 10, 3)


# --------------------------------------------------------------------------- POST load (login)

_WRK_POST = r"""
local bodies = %(bodies)s
local i = %(seed)d
request = function()
  i = i + 1
  return wrk.format("POST", %(path)s, {["Content-Type"] = "application/json"}, bodies[(i %% #bodies) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCHJSON {\"requests\": %%d, \"duration_us\": %%d, \"errors\": %%d, \"bad_status\": %%d, " ..
    "\"p50\": %%d, \"p90\": %%d, \"p99\": %%d, \"max\": %%d}\n",
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def _post_load(
    kind: str, work: Path, server: Server, bodies: list[str], concurrency: int, seconds: int
) -> Result:
    """Closed-loop POSTs of `bodies` round-robin: wrk with a Lua script, or forked Python workers."""
    c0, s0 = children_cpu_seconds(), CpuSample.take(server.pid)
    if kind == "wrk":
        script = work / f"login-{secrets.token_hex(3)}.lua"
        script.write_text(
            _WRK_POST
            % {
                "bodies": "{" + ", ".join(json.dumps(b) for b in bodies) + "}",
                "path": json.dumps(LOGIN),
                "seed": random.randrange(len(bodies)),
            }
        )
        cmd = ["wrk", "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script)]
        out = subprocess.run(
            [*cmd, server.base_url + LOGIN], capture_output=True, text=True, timeout=seconds + 60, check=False
        )
        lines = [ln for ln in out.stdout.splitlines() if ln.startswith("BENCHJSON ")]
        if not lines:
            raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout}\n{out.stderr}")
        r = json.loads(lines[0][len("BENCHJSON ") :])
        stats = {
            "requests": r["requests"],
            "seconds": r["duration_us"] / 1e6,
            "errors": r["errors"],
            "bad_status": r["bad_status"],
            **{k: r[k] / 1000 for k in ("p50", "p90", "p99", "max")},
        }
    else:
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        end = time.time() + seconds
        procs = [
            ctx.Process(target=_post_worker, args=(server.port, bodies, n, end, queue), daemon=True)
            for n in range(concurrency)
        ]
        for p in procs:
            p.start()
        parts = [queue.get(timeout=seconds + 60) for _ in procs]
        for p in procs:
            p.join(30)
        lat = array("d")
        for part in parts:
            lat.frombytes(part["latencies"])
        ordered = sorted(lat)
        stats = {
            "requests": len(ordered),
            "seconds": float(seconds),
            "errors": sum(p["errors"] for p in parts),
            "bad_status": sum(p["bad_status"] for p in parts),
            "p50": _percentile(ordered, 50) * 1000,
            "p90": _percentile(ordered, 90) * 1000,
            "p99": _percentile(ordered, 99) * 1000,
            "max": (ordered[-1] if ordered else 0.0) * 1000,
        }
    c1, s1 = children_cpu_seconds(), CpuSample.take(server.pid)
    wall = s1.wall - s0.wall
    return Result(
        client=kind,
        requests=stats["requests"],
        seconds=stats["seconds"],
        errors=stats["errors"],
        bad_status=stats["bad_status"],
        p50_ms=stats["p50"],
        p90_ms=stats["p90"],
        p99_ms=stats["p99"],
        max_ms=stats["max"],
        server_cpu=_pct(s0.server, s1.server, wall),
        client_cpu=_pct(c0, c1, wall),
        machine_cpu=_pct(s0.machine, s1.machine, wall),
    )


def _post_worker(port: int, bodies: list[str], n: int, end: float, queue: Any) -> None:
    latencies, errors, bad, i = array("d"), 0, 0, n
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    headers = {"Content-Type": "application/json"}
    while time.time() < end:
        i += 1
        t0 = time.perf_counter()
        try:
            conn.request("POST", LOGIN, body=bodies[i % len(bodies)], headers=headers)
            resp = conn.getresponse()
            resp.read()
            latencies.append(time.perf_counter() - t0)
            bad += not 200 <= resp.status < 400
        except (OSError, http.client.HTTPException):
            errors += 1
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=10)
    conn.close()
    queue.put({"latencies": latencies.tobytes(), "errors": errors, "bad_status": bad})


# --------------------------------------------------------------------------- setup


def _seed_users(owner_url: str) -> None:
    from tenantry.authz import system_principal
    from tenantry.db.session import Database
    from tenantry.services import users
    from tenantry.services.context import ServiceContext

    db = Database(owner_url)
    try:
        with db.unit_of_work() as session:
            ctx = ServiceContext(session=session, principal=system_principal("bench"))
            for i in range(USERS):
                users.create_user(ctx, email=EMAIL % i, password=PASSWORD)
    finally:
        db.dispose()


def _ok(resp: httpx.Response) -> httpx.Response:
    if resp.status_code >= 300:
        raise RuntimeError(f"{resp.request.method} {resp.request.url}: {resp.status_code} {resp.text[:300]}")
    return resp


def _login(server: Server, i: int = 0) -> dict[str, str]:
    body = {"email": EMAIL % i, "password": PASSWORD}
    token = _ok(httpx.post(server.base_url + LOGIN, json=body, timeout=30)).json()["token"]
    return {"Authorization": f"Bearer {token}"}


def _storm(
    gen: LoadGenerator, app: Server, me: Load, bodies: list[str], work: Path, rounds: int
) -> dict[str, Any]:
    """Idle and storm runs of the same GET /me load, alternating; logins start 1 s before."""
    idle: list[Result] = []
    storm: list[Result] = []
    logins: list[Result] = []
    for _ in range(rounds):
        idle.append(gen.run(app.base_url, me, app.pid))
        with ThreadPoolExecutor(1) as pool:
            seconds = me.warmup + me.duration + 2
            login = pool.submit(_post_load, gen.kind, work, app, bodies, LOGIN_CONCURRENCY, seconds)
            time.sleep(1)
            storm.append(gen.run(app.base_url, me, app.pid))
            logins.append(login.result())
    return {"idle": merge(idle), "storm": merge(storm), "logins": merge(logins) if logins else None}


def _bench(tmp: Path, gen: LoadGenerator, timing: Timing, console: Console) -> dict[str, Any]:
    from tests.backends import create_backend

    out: dict[str, Any] = {"notes": []}
    noise = background_cpu()
    if noise is not None and noise > 20:
        out["notes"].append(
            f"the machine was {noise:.0f}% busy (of one core) before the run: numbers are noisy"
        )
    work = tmp / "sqlite"
    work.mkdir()
    backend = create_backend(work, "sqlite")
    try:
        started = time.monotonic()
        _seed_users(backend.owner_url)
        console.print(
            f"[dim]sqlite: {USERS} users (default argon2) in {time.monotonic() - started:.1f} s[/dim]"
        )
        env = {
            "TENANTRY_DATABASE_URL": backend.app_url,
            "TENANTRY_LOG_LEVEL": "WARNING",
            "TENANTRY_SECRET_KEY": secrets.token_urlsafe(32),
            "TENANTRY_OUTBOX_DIR": str(work / "outbox"),
        }
        app = Server("app-sqlite", "tenantry.api.app:create_app", env, work)
        with app:
            session = _login(app)
            created = _ok(
                httpx.post(
                    app.base_url + ME + "/api-keys", json={"name": "bench", "scope": "read"}, headers=session
                )
            ).json()
            api_key = {"Authorization": f"Bearer {created['token']}"}
            body = _ok(httpx.get(app.base_url + ME, headers=session)).content
            if _ok(httpx.get(app.base_url + ME, headers=api_key)).json() != json.loads(body):
                raise RuntimeError("GET /me with the API key does not return the session's body")
            body_file = work / "me.json"
            body_file.write_bytes(body)
            bare = Server(
                "bare-me", "bench.identity:create_bare_me", {"TENANTRY_BENCH_BARE_BODY": str(body_file)}, work
            )
            with bare:
                if _ok(httpx.get(bare.base_url + ME)).json() != json.loads(body):
                    raise RuntimeError("the bare endpoint does not return the app's body")
                console.print("[dim]sqlite: GET /api/v1/me against the bare endpoint[/dim]")
                load = Load(ME, session, CONCURRENCY, timing.warmup, timing.duration)
                out["rps"] = gen.compare(
                    {
                        SESSION: (app, load),
                        API_KEY: (app, replace(load, headers=api_key)),
                        BARE: (bare, load),
                    },
                    timing.rounds,
                )
            bodies = [json.dumps({"email": EMAIL % i, "password": PASSWORD}) for i in range(1, USERS)]
            console.print(
                f"[dim]sqlite: POST {LOGIN} ({LOGIN_CONCURRENCY} connections, {USERS - 1} users)[/dim]"
            )
            _post_load(gen.kind, work, app, bodies, LOGIN_CONCURRENCY, timing.warmup)
            out["login"] = _post_load(gen.kind, work, app, bodies, LOGIN_CONCURRENCY, timing.duration)
            console.print("[dim]sqlite: login storm[/dim]")
            me = Load(ME, _login(app), STORM_READERS, timing.warmup, timing.duration)
            out["storm"] = _storm(gen, app, me, bodies, work, timing.rounds)
            log = app.log_tail(10)
            if log.strip():
                out["notes"].append(f"app server log (last lines):\n{log}")
    finally:
        backend.drop()
    return out


# --------------------------------------------------------------------------- output


def _mark(ok: bool) -> str:
    return "[green]✔ pass[/green]" if ok else "[red]✘ miss[/red]"


def _cpu(v: float | None) -> str:
    return "—" if v is None else f"{v:.0f}%"


def _errors(r: Result) -> str:
    n = r.errors + r.bad_status
    return "0" if n == 0 else f"[red]{n}[/red]"


def _print(out: dict[str, Any], client: str, console: Console) -> None:
    cols = (
        "run",
        "req/s",
        "p50 ms",
        "p99 ms",
        "requests",
        "errors",
        "server CPU",
        "CPU µs/req",
        "client CPU",
    )
    t = Table(title=f"sqlite: identity, client {client}", title_justify="left")
    for col in cols:
        t.add_column(col, justify="left" if col == "run" else "right")

    def row(label: str, r: Result) -> None:
        us = r.server_us_per_request
        t.add_row(
            label,
            f"{r.rps:,.1f}" if r.rps < 100 else f"{r.rps:,.0f}",
            f"{r.p50_ms:.2f}",
            f"{r.p99_ms:.2f}",
            f"{r.requests:,}",
            _errors(r),
            _cpu(r.server_cpu),
            "—" if us is None else f"{us:,.0f}",
            _cpu(r.client_cpu),
        )

    for label, r in out["rps"].items():
        row(f"GET /me, {CONCURRENCY} conns: {label}", r)
    row(f"POST /auth/login, {LOGIN_CONCURRENCY} conns, default argon2", out["login"])
    storm = out["storm"]
    row(f"GET /me, {STORM_READERS} conns, idle", storm["idle"])
    row(f"GET /me, {STORM_READERS} conns, during login storm", storm["storm"])
    if storm["logins"] is not None:
        row(f"  the storm: POST /auth/login, {LOGIN_CONCURRENCY} conns", storm["logins"])
    console.print(t)

    t = Table(title="Targets", title_justify="left")
    for col in ("measure", "value", "target", "result"):
        t.add_column(col, justify="right" if col in ("value", "target") else "left")
    bare = out["rps"][BARE]
    for label in (SESSION, API_KEY):
        r = out["rps"][label]
        ratio = r.rps / bare.rps if bare.rps else 0.0
        t.add_row(
            f"GET /me req/s: {label} {r.rps:,.0f} / bare {bare.rps:,.0f}",
            f"{ratio:.1%}",
            f"≥ {RPS_TARGET:.0%}",
            _mark(ratio >= RPS_TARGET and not (r.errors + r.bad_status)),
        )
    login = out["login"]
    t.add_row(
        f"POST /auth/login req/s (default argon2), p50 {login.p50_ms:.0f} ms",
        f"{login.rps:,.1f}",
        "—",
        "[dim]info[/dim]",
    )
    idle, hot = storm["idle"], storm["storm"]
    ratio = hot.p99_ms / idle.p99_ms if idle.p99_ms else float("inf")
    t.add_row(
        f"GET /me p99 during login storm {hot.p99_ms:.2f} ms / idle {idle.p99_ms:.2f} ms",
        f"{ratio:.2f}x",
        f"≤ {STORM_TARGET:.0f}x",
        _mark(ratio <= STORM_TARGET),
    )
    console.print(t)
    console.print(
        "[dim]Throughput rows alternate in rounds (A B C A B C …); idle and storm rows alternate too; "
        "p50/p99 = median over the rounds. CPU: % of one core.[/dim]"
    )
    for note in out["notes"]:
        console.print(f"[yellow]{note}[/yellow]")
    if bare.server_cpu is not None and bare.server_cpu < 75:
        console.print(
            f"[yellow]the bare server used only {_cpu(bare.server_cpu)} of a core: not saturated, "
            "so the app/bare ratios are flattering[/yellow]"
        )


def run(options: Options) -> None:
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=150)
    # Default argon2 parameters: for the seeded hashes (this process) and the server (Server
    # passes only the TENANTRY_* variables given to it). Another bench may have lowered them.
    for var in [k for k in os.environ if k.startswith("TENANTRY_ARGON2_")]:
        del os.environ[var]
    console.print("[dim]PostgreSQL: not measured by this bench (SQLite only)[/dim]")
    timing = Timing.for_options(options)
    with tempfile.TemporaryDirectory(prefix="tenantry-bench-") as tmp:
        gen = LoadGenerator(options.client, console, Path(tmp))
        out = _bench(Path(tmp), gen, timing, console)
    _print(out, gen.kind, console)

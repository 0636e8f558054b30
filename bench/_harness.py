"""Shared benchmark plumbing: uvicorn subprocesses, a closed-loop load generator, CPU accounting.

Load generation uses `wrk` (C, epoll, one thread) when it is installed — the bench tries
`apt-get install wrk` once when it is missing and it runs as root — and otherwise a Python
fallback: one process per connection, each a closed loop over a keep-alive `http.client`
connection. Either way the bare baseline is driven by the same client with the same
concurrency, so the app/bare ratio stays fair; the CPU columns show who was busy.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import multiprocessing
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import time
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

from bench import ROOT

HOST = "127.0.0.1"
_CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


# --------------------------------------------------------------------------- CPU accounting


def proc_cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of one process (all its threads), from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def proc_cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def proc_rss_bytes(pid: int) -> int | None:
    """Resident set size of one process, from /proc/<pid>/status (VmRSS)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def machine_busy_seconds() -> float | None:
    """CPU seconds spent not idle, summed over every core, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:9]]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = values
    return (user + nice + system + irq + softirq + steal) / _CLK_TCK


def children_cpu_seconds() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants (a `tenantry serve --workers N` master and its workers)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc") if os.path.isdir("/proc") else ():
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


# Extra per-process counters sampled around each measured window (e.g. requests served by each
# worker, read from the workers' own files): pid → value.
Probe = Callable[[list[int]], dict[int, float]]


@dataclass
class CpuSample:
    server: float | None  # the server process and all its descendants
    machine: float | None
    wall: float
    procs: dict[int, float] = field(default_factory=dict)  # CPU seconds per process of the tree
    counts: dict[int, float] = field(default_factory=dict)  # the probe's values per process

    @classmethod
    def take(cls, pid: int, probe: Probe | None = None) -> CpuSample:
        pids = process_tree(pid)
        procs = {p: c for p in pids if (c := proc_cpu_seconds(p)) is not None}
        server = sum(procs.values()) if pid in procs else None
        counts = probe(pids) if probe is not None else {}
        return cls(server, machine_busy_seconds(), time.monotonic(), procs, counts)

    def deltas(self, later: CpuSample) -> tuple[dict[int, float], dict[int, float]]:
        """CPU seconds and probe counts per process between this sample and `later`."""
        cpu = {p: later.procs[p] - self.procs.get(p, 0.0) for p in later.procs}
        counts = {p: later.counts[p] - self.counts.get(p, 0.0) for p in later.counts}
        return cpu, counts


def _pct(a: float | None, b: float | None, wall: float) -> float | None:
    if a is None or b is None or wall <= 0:
        return None
    return 100.0 * (b - a) / wall


def background_cpu(seconds: float = 1.0) -> float | None:
    """% of one core busy on the whole machine while this process sleeps: other people's load."""
    a, t0 = machine_busy_seconds(), time.monotonic()
    time.sleep(seconds)
    b = machine_busy_seconds()
    return _pct(a, b, time.monotonic() - t0)


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """`python -m uvicorn APP --factory` on a free port, log level warning, no access log.

    With `cli_workers` set, the real thing instead: `python -m tenantry serve --workers N`
    (`app` is then ignored), ready once every worker runs and `/healthz` answers.
    """

    name: str
    app: str
    env: dict[str, str]
    log_dir: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    cli_workers: int = 0

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    @property
    def workers(self) -> list[int]:
        """The worker processes of a `cli_workers` server (not multiprocessing's helpers)."""
        if self.proc is None:
            return []
        return [p for p in process_tree(self.pid)[1:] if "resource_tracker" not in proc_cmdline(p)]

    def start(self, timeout: float = 60.0) -> Server:
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            self.app,
            "--factory",
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        if self.cli_workers:
            cmd = [sys.executable, "-m", "tenantry", "serve", "--host", HOST, "--port", str(self.port)]
            cmd += ["--workers", str(self.cli_workers)]
        # Only the TENANTRY_* variables given here: a developer's own settings must not leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_")} | self.env
        paths = (str(ROOT), str(ROOT / "src"), env.get("PYTHONPATH", ""))  # this checkout's code
        env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        log = open(self.log_path, "wb")  # noqa: SIM115 (closed with the process)
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"server {self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.base_url + "/healthz", timeout=2).status_code == 200 and (
                    len(self.workers) >= self.cli_workers
                ):
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server {self.name} did not become ready in {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        workers = self.workers
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        for pid in workers:  # the master stops its workers; these are only what it left behind
            with contextlib.suppress(OSError):
                if f"{self.port}" in proc_cmdline(pid) or "multiprocessing" in proc_cmdline(pid):
                    os.kill(pid, 9)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------- load generation


@dataclass(frozen=True)
class Load:
    """What to request: `path` is fixed, or a %-template filled with randrange(choices).

    `body` (for POST and the like) is sent as is, or is a %-template with one `%s` filled with
    str(randrange(body_choices)), or, without body_choices, with a token unique to the request.
    `then` = (path, body template): after each request, POST there with the answer's "id" as
    the `%s` (one operation of two requests, timed as one; the Python client only).
    """

    path: str
    headers: dict[str, str]
    concurrency: int
    warmup: int  # seconds, not measured
    duration: int  # seconds, measured
    choices: int = 0
    method: str = "GET"
    body: str | None = None
    body_choices: int = 0
    then: tuple[str, str] | None = None


@dataclass
class Result:
    client: str
    requests: int
    seconds: float
    errors: int  # socket errors, timeouts
    bad_status: int  # responses outside 2xx/3xx
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    server_cpu: float | None  # % of one core, during the measured window
    client_cpu: float | None
    machine_cpu: float | None  # % of one core, summed over every core (2 cores busy = 200)
    proc_cpu: dict[int, float] = field(default_factory=dict)  # CPU seconds per server process
    proc_counts: dict[int, float] = field(default_factory=dict)  # the probe's count per process

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def server_us_per_request(self) -> float | None:
        """Server CPU per request, in microseconds: robust to a busy machine, unlike req/s."""
        if self.server_cpu is None or not self.requests:
            return None
        return self.server_cpu / 100 * self.seconds / self.requests * 1e6

    @property
    def other_cpu(self) -> float | None:
        """Everything but the server and the client: a database server, or noise from elsewhere."""
        if self.machine_cpu is None or self.server_cpu is None or self.client_cpu is None:
            return None
        return max(0.0, self.machine_cpu - self.server_cpu - self.client_cpu)


_WRK_SCRIPT = r"""
local template = %(template)s
local choices = %(choices)d
local method = %(method)s
local body = %(body)s
local body_choices = %(body_choices)d
local tag = %(tag)s
local counter = 0
%(headers)s
math.randomseed(%(seed)d)
if choices > 0 or body then
  request = function()
    local path = template
    if choices > 0 then path = string.format(template, math.random(0, choices - 1)) end
    local b = nil
    if body then
      counter = counter + 1
      local fill = tag .. "-" .. counter
      if body_choices > 0 then fill = tostring(math.random(0, body_choices - 1)) end
      b = string.format(body, fill)
    end
    return wrk.format(method, path, nil, b)
  end
else
  wrk.path = template
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


def _lua_str(s: str) -> str:
    return json.dumps(s)  # a JSON string literal is a valid Lua string literal for ASCII text


class LoadGenerator:
    def __init__(self, kind: str, console: Console, work_dir: Path, probe: Probe | None = None) -> None:
        self.console = console
        self.work_dir = work_dir
        self.kind = resolve_client(kind, console)
        self.probe = probe  # sampled with the CPU around every measured window

    def run(self, base_url: str, load: Load, server_pid: int) -> Result:
        if self.kind == "wrk" and load.then is None:
            return self._run_wrk(base_url, load, server_pid)
        return self._run_python(base_url, load, server_pid)

    def compare(self, targets: dict[str, tuple[Server, Load]], rounds: int) -> dict[str, Result]:
        """Measure several targets in interleaved rounds (A B C A B C …), each warmed up first.

        Whatever else the machine does then hits every target alike, so their ratio holds up
        better than that of back-to-back runs. Each load's `duration` is split over the rounds.
        """
        for server, load in targets.values():
            if load.warmup:
                self.run(server.base_url, replace(load, duration=load.warmup, warmup=0), server.pid)
        parts: dict[str, list[Result]] = {label: [] for label in targets}
        for _ in range(rounds):
            for label, (server, load) in targets.items():
                seconds = max(1, round(load.duration / rounds))
                parts[label].append(
                    self.run(server.base_url, replace(load, duration=seconds, warmup=0), server.pid)
                )
        return {label: merge(results) for label, results in parts.items()}

    # ---- wrk

    def _wrk_once(self, base_url: str, load: Load, seconds: int) -> dict[str, int]:
        script = self.work_dir / "load.lua"
        headers = "\n".join(f"wrk.headers[{_lua_str(k)}] = {_lua_str(v)}" for k, v in load.headers.items())
        script.write_text(
            _WRK_SCRIPT
            % {
                "template": _lua_str(load.path),
                "choices": load.choices,
                "method": _lua_str(load.method),
                "body": "nil" if load.body is None else _lua_str(load.body),
                "body_choices": load.body_choices,
                "tag": _lua_str(f"w{random.randrange(1 << 30):x}"),
                "headers": headers,
                "seed": random.randrange(1 << 30),
            }
        )
        cmd = [
            "wrk",
            "-t1",
            f"-c{load.concurrency}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            base_url + (load.path if not (load.choices or load.body) else "/"),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60, check=False)
        for line in out.stdout.splitlines():
            if line.startswith("BENCHJSON "):
                return json.loads(line[len("BENCHJSON ") :])
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout}\n{out.stderr}")

    def _run_wrk(self, base_url: str, load: Load, server_pid: int) -> Result:
        if load.warmup:
            self._wrk_once(base_url, load, load.warmup)
        c0, s0 = children_cpu_seconds(), CpuSample.take(server_pid, self.probe)
        r = self._wrk_once(base_url, load, load.duration)
        c1, s1 = children_cpu_seconds(), CpuSample.take(server_pid, self.probe)
        wall = s1.wall - s0.wall
        proc_cpu, proc_counts = s0.deltas(s1)
        return Result(
            client="wrk",
            requests=r["requests"],
            seconds=r["duration_us"] / 1e6,
            errors=r["errors"],
            bad_status=r["bad_status"],
            p50_ms=r["p50"] / 1000,
            p90_ms=r["p90"] / 1000,
            p99_ms=r["p99"] / 1000,
            max_ms=r["max"] / 1000,
            server_cpu=_pct(s0.server, s1.server, wall),
            client_cpu=_pct(c0, c1, wall),
            machine_cpu=_pct(s0.machine, s1.machine, wall),
            proc_cpu=proc_cpu,
            proc_counts=proc_counts,
        )

    # ---- Python fallback

    def _run_python(self, base_url: str, load: Load, server_pid: int) -> Result:
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        start = time.time() + 0.5
        warm_end = start + load.warmup
        end = warm_end + load.duration
        port = int(base_url.rsplit(":", 1)[1])
        procs = [
            ctx.Process(target=_py_worker, args=(port, load, start, warm_end, end, seed, queue), daemon=True)
            for seed in range(load.concurrency)
        ]
        c0 = children_cpu_seconds()
        for p in procs:
            p.start()
        time.sleep(max(0.0, warm_end - time.time()))
        s0 = CpuSample.take(server_pid, self.probe)
        time.sleep(max(0.0, end - time.time()))
        s1 = CpuSample.take(server_pid, self.probe)
        proc_cpu, proc_counts = s0.deltas(s1)
        parts = [queue.get(timeout=load.duration + 60) for _ in procs]
        for p in procs:
            p.join(30)
        c1 = children_cpu_seconds()
        latencies = array("d")
        for part in parts:
            latencies.frombytes(part["latencies"])
        ordered = sorted(latencies)
        wall = s1.wall - s0.wall
        # The workers' CPU covers warm-up too: scale it to the measured window.
        client_cpu = _pct(c0, c1, load.warmup + load.duration + 0.5)
        return Result(
            client="python",
            requests=len(ordered),
            seconds=float(load.duration),
            errors=sum(p["errors"] for p in parts),
            bad_status=sum(p["bad_status"] for p in parts),
            p50_ms=_percentile(ordered, 50) * 1000,
            p90_ms=_percentile(ordered, 90) * 1000,
            p99_ms=_percentile(ordered, 99) * 1000,
            max_ms=(ordered[-1] if ordered else 0.0) * 1000,
            server_cpu=_pct(s0.server, s1.server, wall),
            client_cpu=client_cpu,
            machine_cpu=_pct(s0.machine, s1.machine, wall),
            proc_cpu=proc_cpu,
            proc_counts=proc_counts,
        )


def merge(results: list[Result]) -> Result:
    """Rounds of one target: counts add up, latency percentiles are the rounds' median."""

    def weighted(attr: str) -> float | None:
        values = [getattr(r, attr) for r in results]
        if any(v is None for v in values) or not total:
            return None
        return sum(v * r.seconds for v, r in zip(values, results, strict=True)) / total

    total = sum(r.seconds for r in results)
    return Result(
        client=results[0].client,
        requests=sum(r.requests for r in results),
        seconds=total,
        errors=sum(r.errors for r in results),
        bad_status=sum(r.bad_status for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p90_ms=statistics.median(r.p90_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        max_ms=max(r.max_ms for r in results),
        server_cpu=weighted("server_cpu"),
        client_cpu=weighted("client_cpu"),
        machine_cpu=weighted("machine_cpu"),
        proc_cpu=_add(r.proc_cpu for r in results),
        proc_counts=_add(r.proc_counts for r in results),
    )


def _add(dicts: Iterable[dict[int, float]]) -> dict[int, float]:
    out: dict[int, float] = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out.get(k, 0.0) + v
    return out


def _percentile(ordered: list[float], pct: float) -> float:
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))]


def _py_worker(
    port: int, load: Load, start: float, warm_end: float, end: float, seed: int, queue: multiprocessing.Queue
) -> None:  # type: ignore[type-arg]
    rnd = random.Random(seed)
    latencies = array("d")
    errors = bad = n = 0
    tag = f"p{os.urandom(4).hex()}-{seed}"  # not `random`: forked workers share its state
    time.sleep(max(0.0, start - time.time()))
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    perf = time.perf_counter
    while True:
        path = load.path % rnd.randrange(load.choices) if load.choices else load.path
        body = load.body
        if body is not None and "%s" in body:
            n += 1
            body = body % (str(rnd.randrange(load.body_choices)) if load.body_choices else f"{tag}-{n}")
        t0 = perf()
        try:
            conn.request(load.method, path, body=body, headers=load.headers)
            resp = conn.getresponse()
            data = resp.read()
            status = resp.status
            if load.then is not None and 200 <= status < 300:
                then_path, then_body = load.then
                conn.request("POST", then_path, body=then_body % json.loads(data)["id"], headers=load.headers)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
        except (OSError, http.client.HTTPException, ValueError, KeyError):  # no "id": an error too
            status = 0
            conn.close()
            conn = http.client.HTTPConnection(HOST, port, timeout=10)
        elapsed = perf() - t0
        now = time.time()
        if now >= end:
            break
        if now >= warm_end:
            if status == 0:
                errors += 1
            else:
                latencies.append(elapsed)
                bad += not 200 <= status < 400
    conn.close()
    queue.put({"latencies": latencies.tobytes(), "errors": errors, "bad_status": bad})


# --------------------------------------------------------------------------- choosing the client


def _try_install_wrk(console: Console) -> bool:
    if os.environ.get("TENANTRY_BENCH_NO_INSTALL") or not shutil.which("apt-get"):
        return False
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return False
    console.print(
        "[dim]wrk is not installed: trying `apt-get install -y wrk` "
        "(set TENANTRY_BENCH_NO_INSTALL=1 to skip)[/dim]"
    )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmds in (
        [["apt-get", "install", "-y", "-q", "wrk"]],
        [["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "wrk"]],
    ):
        try:
            ok = all(
                subprocess.run(c, env=env, capture_output=True, timeout=240, check=False).returncode == 0
                for c in cmds
            )
        except (OSError, subprocess.TimeoutExpired):
            ok = False
        if ok and shutil.which("wrk"):
            return True
    return False


def _wrk_works() -> bool:
    try:
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "wrk" in (out.stdout + out.stderr)


_resolved: dict[str, str] = {}


def resolve_client(kind: str, console: Console) -> str:
    """ "wrk" or "python": `auto` means wrk when it is (or can be) installed."""
    if kind == "python":
        return "python"
    if kind not in _resolved:
        available = (shutil.which("wrk") is not None or _try_install_wrk(console)) and _wrk_works()
        if not available and kind == "wrk":
            raise RuntimeError("--client wrk: wrk is not installed and could not be installed")
        if not available:
            console.print(
                "[yellow]wrk unavailable: using the Python load generator (one process per "
                "connection). It cannot saturate the bare baseline, so ratios against it come out "
                "too flattering: install wrk for real numbers.[/yellow]"
            )
        _resolved[kind] = "wrk" if available else "python"
    return _resolved[kind]


@contextlib.contextmanager
def servers(*items: Server) -> Iterator[tuple[Server, ...]]:
    started: list[Server] = []
    try:
        for s in items:
            started.append(s.start())
        yield items
    finally:
        for s in reversed(started):
            s.stop()


def postgres_admin_url() -> str | None:
    return os.environ.get("TENANTRY_BENCH_POSTGRES_URL") or os.environ.get("TENANTRY_TEST_POSTGRES_URL")


@contextlib.contextmanager
def temporary_backend(name: str, tmp: Path) -> Iterator[Any]:
    """A migrated throw-away database (and, on PostgreSQL, a plain app role), dropped after."""
    from tests.backends import create_backend

    saved = os.environ.get("TENANTRY_TEST_POSTGRES_URL")
    if name == "postgres":
        os.environ["TENANTRY_TEST_POSTGRES_URL"] = postgres_admin_url() or ""
    try:
        backend = create_backend(tmp, name)
    finally:
        if saved is None:
            os.environ.pop("TENANTRY_TEST_POSTGRES_URL", None)
        else:
            os.environ["TENANTRY_TEST_POSTGRES_URL"] = saved
    try:
        yield backend
    finally:
        backend.drop()

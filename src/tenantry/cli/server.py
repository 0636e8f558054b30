"""The HTTP server behind `tenantry serve`: uvicorn workers, each accepting on its own socket.

uvicorn's own `--workers` hands one listening socket to every worker, and whichever worker's
event loop gets to `accept()` first takes the connection. Connections opened together then
mostly land on one worker, and keep-alive clients stay there while the other worker idles.
Here every worker accepts on a socket of its own, all bound to the same address with
SO_REUSEPORT: Linux spreads new connections across them by a hash of the connection's
addresses, so the workers share the load.

The supervisor (this process) binds the sockets once, before any worker starts, and keeps them:
a worker that dies is replaced on the same socket, and connections that arrive meanwhile wait
in that socket's queue instead of being refused. It also keeps what uvicorn's supervisor did:
SIGTERM or SIGINT stop every worker gracefully (uvicorn finishes the requests in flight), a
worker that exits is restarted, SIGHUP replaces them one by one, and a worker that cannot start
(the app fails to load) stops the whole server instead of restarting forever.

Every worker builds the app, then freezes the start-up objects for the garbage collector
(`tenantry.runtime.tune_gc`) and serves with uvicorn's defaults for the event loop and HTTP
parser: uvloop and httptools when installed (the `uvicorn[standard]` extra).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn

from tenantry.cli.common import err_console
from tenantry.runtime import tune_gc, tune_malloc

APP = "tenantry.api.app:create_app"
# uvicorn's exit code for "could not start": the app, its lifespan or the socket is broken, and
# a restart would fail the same way.
STARTUP_FAILURE = 3
_spawn = multiprocessing.get_context("spawn")


@dataclass(frozen=True)
class ServeOptions:
    host: str
    port: int
    workers: int


def uvicorn_config(options: ServeOptions) -> uvicorn.Config:
    return uvicorn.Config(
        APP,
        factory=True,
        host=options.host,
        port=options.port,
        log_level="warning",
        access_log=False,
        server_header=False,  # no "server: uvicorn" banner
        # X-Forwarded-For is judged by the app against TENANTRY_TRUSTED_PROXIES (default none);
        # uvicorn's own handling would trust 127.0.0.1 behind our back.
        proxy_headers=False,
        # loop="auto", http="auto" (the defaults): uvloop and httptools when installed.
    )


def run_worker(options: ServeOptions, sock: socket.socket | None) -> None:
    """One worker: build the app, tune the collector, serve (on `sock`, or bind the address)."""
    config = uvicorn_config(options)
    try:
        try:
            config.load()  # imports and builds the app (uvicorn exits on a broken app)
        except SystemExit:
            sys.exit(STARTUP_FAILURE)
        tune_gc()  # after the app is built: its objects are the ones to freeze
        tune_malloc()
        server = uvicorn.Server(config)
        server.run(sockets=[sock] if sock is not None else None)
    except KeyboardInterrupt:  # Ctrl-C before uvicorn took over the signals: just stop
        return
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def listen_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` sockets bound to one address, each its own accept queue (SO_REUSEPORT).

    Without SO_REUSEPORT load balancing (not Linux), one socket shared by all workers.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    balanced = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
    sockets: list[socket.socket] = []
    try:
        for _ in range(count if balanced else 1):
            sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if balanced:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            port = sock.getsockname()[1]  # port 0: the others join the port the first one got
            sock.set_inheritable(True)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets if balanced else sockets * count


class Supervisor:
    """Starts one worker per socket, restarts workers that exit, stops them all on a signal."""

    def __init__(self, options: ServeOptions, sockets: list[socket.socket]) -> None:
        self.options = options
        self.sockets = sockets
        self.workers: list[BaseProcess] = []
        self.stopping = threading.Event()
        self.reload = threading.Event()

    def _start(self, sock: socket.socket) -> BaseProcess:
        process = _spawn.Process(target=run_worker, args=(self.options, sock), name="tenantry-worker")
        process.start()
        return process

    def _on_signal(self, sig: int, _frame: FrameType | None) -> None:
        if sig == signal.SIGHUP:
            self.reload.set()
        else:
            self.stopping.set()

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; the exit status (STARTUP_FAILURE if a worker could not start).

        SIGHUP replaces the workers one after another (new code, settings re-read).
        """
        signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in signals}
        status = 0
        try:
            self.workers = [self._start(sock) for sock in self.sockets]
            while not self.stopping.wait(0.5):
                if self.reload.is_set():
                    self.reload.clear()
                    self._restart_all()
                status = self._replace_exited()
        finally:
            for process in self.workers:
                if process.is_alive() and process.pid is not None:
                    os.kill(process.pid, signal.SIGTERM)  # uvicorn's graceful shutdown
            for process in self.workers:
                process.join()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return status

    def _restart_all(self) -> None:
        # Its socket stays open here meanwhile: connections wait in its queue, none is refused.
        for idx, process in enumerate(self.workers):
            if self.stopping.is_set():
                return
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
            process.join()
            _forget_metrics(process.pid)
            self.workers[idx] = self._start(self.sockets[idx])

    def _replace_exited(self) -> int:
        for idx, process in enumerate(self.workers):
            if process.is_alive():
                continue
            process.join()
            _forget_metrics(process.pid)
            if process.exitcode == STARTUP_FAILURE:
                err_console.print(f"[red]worker {process.pid} could not start; stopping[/red]")
                self.stopping.set()
                return STARTUP_FAILURE
            if self.stopping.is_set():
                return 0
            err_console.print(f"worker {process.pid} exited ({process.exitcode}); starting another")
            self.workers[idx] = self._start(self.sockets[idx])
        return 0


def _forget_metrics(pid: int | None) -> None:
    """A dead worker's live gauges must not count any more (prometheus multiprocess mode)."""
    if pid is None or not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def run_server(options: ServeOptions) -> int:
    """Serve until stopped; returns the exit status."""
    if options.workers == 1:
        try:
            run_worker(options, None)  # in this process, as `uvicorn.run` would
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else 1
        return 0
    try:
        sockets = listen_sockets(options.host, options.port, options.workers)
    except OSError as exc:
        err_console.print(f"[red]cannot listen on {options.host}:{options.port}: {exc.strerror}[/red]")
        return STARTUP_FAILURE
    try:
        return Supervisor(options, sockets).run()
    finally:
        for sock in set(sockets):
            sock.close()

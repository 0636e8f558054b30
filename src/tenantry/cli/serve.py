"""`tenantry serve`."""

from __future__ import annotations

import os
import shutil
import tempfile

import typer
from rich.markup import escape

from tenantry.cli.common import err_console, settings
from tenantry.cli.server import ServeOptions, run_server
from tenantry.config import Settings
from tenantry.db import migrate
from tenantry.db.engine import make_engine


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on"),
    port: int = typer.Option(8000, help="Port to listen on"),
    workers: int = typer.Option(1, min=1, help="Worker processes"),
) -> None:
    """Serve the API and the web console with uvicorn.

    With several workers each accepts on its own socket (SO_REUSEPORT), so connections spread
    over them; see `tenantry.cli.server`.
    """
    require_migrated(settings())  # fail early, naming the bad variable or the missing `init`
    metrics_dir = None
    if workers > 1:
        # Every worker counts its own requests. prometheus_client's multiprocess mode makes them
        # write to files in one directory, which /metrics sums. A fresh directory per start (old
        # files would add a previous run's counts), set before the workers import anything.
        metrics_dir = tempfile.mkdtemp(prefix="tenantry-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        status = run_server(ServeOptions(host=host, port=port, workers=workers))
    finally:
        if metrics_dir is not None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            shutil.rmtree(metrics_dir, ignore_errors=True)
    if status:
        raise typer.Exit(status)


def require_migrated(s: Settings) -> None:
    """Refuse to serve a database that `tenantry init` has not brought to this code's schema.

    Otherwise every request would fail with a 500 about missing tables; better one clear line.
    """
    engine = make_engine(s.database_url)
    try:
        with engine.connect() as conn:
            current = migrate.current_revisions(conn)
    except Exception as exc:  # any driver error: say so instead of starting a server that cannot work
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0:1]
        err_console.print(
            f"[red]database not reachable ({type(exc).__name__}: {escape(''.join(reason))}); "
            "check TENANTRY_DATABASE_URL[/red]",
            soft_wrap=True,
        )
        raise typer.Exit(1) from None
    finally:
        engine.dispose()
    if current != migrate.script_heads():
        where = ", ".join(sorted(current)) or "not initialised"
        err_console.print(
            f"[red]the database is not ready for this version (schema: {where}; "
            f"needs {', '.join(sorted(migrate.script_heads()))}). "
            "Run `tenantry init` (or `tenantry migrate`) first.[/red]",
            soft_wrap=True,
        )
        raise typer.Exit(1)

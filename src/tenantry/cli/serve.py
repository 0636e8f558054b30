"""`tenantry serve`."""

from __future__ import annotations

import os
import shutil
import tempfile

import typer
import uvicorn

from tenantry.cli.common import settings


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on"),
    port: int = typer.Option(8000, help="Port to listen on"),
    workers: int = typer.Option(1, min=1, help="Worker processes"),
) -> None:
    """Serve the API (and, in later releases, the console) with uvicorn."""
    settings()  # fail early, naming the bad variable
    metrics_dir = None
    if workers > 1:
        # Every worker counts its own requests. prometheus_client's multiprocess mode makes them
        # write to files in one directory, which /metrics sums. A fresh directory per start (old
        # files would add a previous run's counts), set before the workers import anything.
        metrics_dir = tempfile.mkdtemp(prefix="tenantry-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(
            "tenantry.api.app:create_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="warning",
            access_log=False,
            server_header=False,  # no "server: uvicorn" banner
            # X-Forwarded-For is judged by the app against TENANTRY_TRUSTED_PROXIES (default none);
            # uvicorn's own handling would trust 127.0.0.1 behind our back.
            proxy_headers=False,
        )
    finally:
        if metrics_dir is not None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
            shutil.rmtree(metrics_dir, ignore_errors=True)

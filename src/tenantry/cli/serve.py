"""`tenantry serve`."""

from __future__ import annotations

import typer
import uvicorn

from tenantry.cli.common import settings


def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on"),
    port: int = typer.Option(8000, help="Port to listen on"),
    workers: int = typer.Option(1, help="Worker processes"),
) -> None:
    """Serve the API (and, in later releases, the console) with uvicorn."""
    settings()  # fail early, naming the bad variable
    uvicorn.run(
        "tenantry.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        # X-Forwarded-For is judged by the app against TENANTRY_TRUSTED_PROXIES (default none);
        # uvicorn's own handling would trust 127.0.0.1 behind our back.
        proxy_headers=False,
    )

"""`tenantry worker`: run background jobs outside the web process."""

from __future__ import annotations

import typer

from tenantry.cli.common import console, settings
from tenantry.db.session import Database
from tenantry.jobs.runner import JobRunner, run_once


def worker(once: bool = typer.Option(False, "--once", help="Run every job once, then exit")) -> None:
    """Deliver mail and run periodic jobs (serve runs them too unless TENANTRY_RUN_JOBS=false)."""
    s = settings()
    db = Database(s.database_url, s)
    try:
        if once:
            console.print(run_once(db, s))
            return
        console.print("worker running; Ctrl-C to stop")
        JobRunner(db, s).loop()
    except KeyboardInterrupt:
        pass
    finally:
        db.dispose()

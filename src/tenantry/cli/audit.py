"""`tenantry audit export`."""

from __future__ import annotations

import json
import sys

import typer
from rich.progress import Progress

from tenantry.cli.common import system_context
from tenantry.services import audit, tenants

app = typer.Typer(no_args_is_help=True, help="Read the audit log.")


@app.command("export")
def export(
    tenant: str = typer.Option(None, help="Only this tenant's events (id or slug)"),
    action: str = typer.Option(None, help="Action, or a prefix ending in *"),
    output: typer.FileTextWrite = typer.Option("-", "--output", "-o", help="File to write (JSON lines)"),
) -> None:
    """Export audit events as JSON lines, oldest first."""
    with system_context("cli audit export") as ctx:
        if tenant:
            ctx.enter(tenants.find_visible(ctx, tenant))
        flt = audit.AuditFilter(action=action)
        with Progress(transient=True, disable=output is sys.stdout or not sys.stderr.isatty()) as progress:
            task = progress.add_task("exporting", total=None)
            for event in audit.export_events(ctx, flt):
                output.write(json.dumps(audit.as_dict(event)) + "\n")
                progress.advance(task)

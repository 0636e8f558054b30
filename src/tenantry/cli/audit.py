"""`tenantry audit export` and `tenantry audit verify`."""

from __future__ import annotations

import json
import sys
import uuid
from contextlib import nullcontext
from typing import Literal

import typer
from rich.progress import Progress

from tenantry.cli.common import console, system_context
from tenantry.services import audit, tenants
from tenantry.services.context import ServiceContext

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
            tenants.enter_tenant(ctx, tenant)
        flt = audit.AuditFilter(action=action)
        with Progress(transient=True, disable=output is sys.stdout or not sys.stderr.isatty()) as progress:
            task = progress.add_task("exporting", total=None)
            for event in audit.export_events(ctx, flt):
                output.write(json.dumps(audit.as_dict(event)) + "\n")
                progress.advance(task)


@app.command("verify")
def verify(
    tenant: str = typer.Option(None, help="Only this tenant's chain (slug, or id: also of a purged tenant)"),
    output: str = typer.Option("text", "--output", "-o", help="text or json"),
) -> None:
    """Walk the audit hash chains and name the first broken link. Exit code 1 when one is broken."""
    fmt: Literal["text", "json"] = "json" if output == "json" else "text"
    if output not in ("text", "json"):
        console.print("[red]--output must be text or json[/red]")
        raise typer.Exit(2)
    with system_context("cli audit verify") as ctx:
        tenant_id = ... if not tenant else _tenant_id(ctx, tenant)
        with console.status("verifying") if fmt == "text" else nullcontext():
            report = audit.verify_chains(ctx, tenant_id=tenant_id)
    if fmt == "json":
        typer.echo(json.dumps(audit.report_as_dict(report)))
    elif report.ok:
        console.print(
            f"[green]intact[/green]: {report.events_checked} events in {report.streams_checked} chain(s)"
        )
    else:
        b = report.first_broken
        assert b is not None
        where = f"tenant {b.tenant_id}" if b.tenant_id else "the global chain"
        console.print(f"[red]broken[/red] in {where} at seq {b.seq}: [bold]{b.reason}[/bold]")
        if b.event_id:
            console.print(f"  event {b.event_id}")
        console.print(f"  checked {report.events_checked} events in {report.streams_checked} chain(s)")
    if not report.ok:
        raise typer.Exit(1)


def _tenant_id(ctx: ServiceContext, ref: str) -> uuid.UUID:
    """An id is taken as it is (the chain outlives a purged tenant); a slug must name a tenant."""
    try:
        return uuid.UUID(ref)
    except ValueError:
        return tenants.find_visible(ctx, ref).id

"""`tenantry trash list|restore|purge`."""

from __future__ import annotations

import uuid

import typer

from tenantry.cli.common import OUTPUT_OPTION, Output, confirm, console, emit, settings, system_context
from tenantry.db.session import Database
from tenantry.jobs.purge import purge_expired
from tenantry.services import trash

app = typer.Typer(no_args_is_help=True, help="The trash: deleted objects until purged.")


@app.command("list")
def list_trash(limit: int = 100, output: Output = OUTPUT_OPTION) -> None:
    with system_context("cli trash list") as ctx:
        page = trash.list_batches(ctx, limit=limit)
        rows = [
            {
                "batch": str(b.id),
                "what": f"{b.root_type}: {b.root_name}",
                "counts": b.counts
                if output is Output.json
                else ", ".join(f"{k} {v}" for k, v in b.counts.items()),
                "deleted_by": b.deleted_by,
                "deleted_at": b.deleted_at.isoformat()
                if output is Output.json
                else b.deleted_at.strftime("%Y-%m-%d %H:%M"),
                "purge_after": b.purge_after.isoformat()
                if output is Output.json
                else b.purge_after.strftime("%Y-%m-%d"),
            }
            for b in page.items
        ]
    emit(rows, ["batch", "what", "counts", "deleted_by", "deleted_at", "purge_after"], output)


@app.command("restore")
def restore(batch: uuid.UUID) -> None:
    with system_context("cli trash restore") as ctx:
        restored = trash.restore_batch(ctx, batch)
    console.print(f"[green]restored[/green] {restored}")


@app.command("purge")
def purge(
    batch: uuid.UUID = typer.Argument(None),
    expired: bool = typer.Option(False, "--expired", help="Purge every batch past its retention date"),
    yes: bool = typer.Option(False, "--yes"),
) -> None:
    if expired:
        s = settings()
        db = Database(s.database_url, s)
        console.print(f"purged {purge_expired(db)} batch(es)")
        db.dispose()
        return
    if batch is None:
        raise typer.BadParameter("give a batch id or --expired")
    confirm("purging is permanent. continue?", yes)
    with system_context("cli trash purge") as ctx:
        purged = trash.purge_batch(ctx, batch, confirm=True)
    console.print(f"[red]purged[/red] {purged}")

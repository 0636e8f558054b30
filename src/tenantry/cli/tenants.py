"""`tenantry tenants list|create|delete|restore`."""

from __future__ import annotations

import typer
from rich.table import Table

from tenantry.cli.common import console, system_context
from tenantry.services import tenants

app = typer.Typer(no_args_is_help=True, help="Manage tenants.")


@app.command("list")
def list_tenants(q: str = typer.Option(None, help="Name or slug contains"), limit: int = 200) -> None:
    with system_context("cli tenants list") as ctx:
        table = Table("slug", "name", "status", "members", "resources", "id")
        cursor = None
        shown = 0
        while shown < limit:
            page = tenants.list_tenants(ctx, limit=min(100, limit - shown), cursor=cursor, q=q)
            for v in page.items:
                t = v.tenant
                table.add_row(t.slug, t.name, t.status, str(v.member_count), str(v.resource_count), str(t.id))
            shown += len(page.items)
            cursor = page.next_cursor
            if not cursor:
                break
    console.print(table)


@app.command("create")
def create(slug: str, name: str, description: str = "") -> None:
    with system_context("cli tenants create") as ctx:
        t = tenants.create_tenant(ctx, slug=slug, name=name, description=description)
    console.print(f"[green]created[/green] {t.slug} ({t.id})")


@app.command("delete")
def delete(tenant: str, yes: bool = typer.Option(False, "--yes", help="Do not ask")) -> None:
    with system_context("cli tenants delete") as ctx:
        t = tenants.find_visible(ctx, tenant)
        impact = tenants.deletion_impact(ctx, t)
        console.print(
            f"deleting [bold]{t.slug}[/bold] moves to the trash: "
            + ", ".join(f"{k}: {v}" for k, v in impact.items())
        )
        if not yes and not typer.confirm("continue?"):
            raise typer.Abort()
        slug = t.slug  # the trash expires loaded objects; read before the session closes
        batch, _ = tenants.delete_tenant(ctx, t)
    console.print(f"[yellow]deleted[/yellow] {slug} (batch {batch})")


@app.command("restore")
def restore(tenant: str) -> None:
    with system_context("cli tenants restore") as ctx:
        slug = tenants.restore_tenant(ctx, tenants.find_deleted(ctx, tenant)).slug
    console.print(f"[green]restored[/green] {slug}")

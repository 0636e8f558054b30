"""`tenantry tenants list|create|rename|suspend|activate|delete|restore`."""

from __future__ import annotations

import typer

from tenantry.cli.common import (
    OUTPUT_OPTION,
    YES_OPTION,
    Output,
    confirm,
    console,
    emit,
    emit_one,
    system_context,
)
from tenantry.services import tenants

app = typer.Typer(no_args_is_help=True, help="Manage tenants.")


@app.command("list")
def list_tenants(
    q: str = typer.Option(None, help="Name or slug contains"),
    limit: int = 200,
    output: Output = OUTPUT_OPTION,
) -> None:
    with system_context("cli tenants list") as ctx:
        rows: list[dict[str, object]] = []
        cursor = None
        while len(rows) < limit:
            page = tenants.list_tenants(ctx, limit=min(100, limit - len(rows)), cursor=cursor, q=q)
            for v in page.items:
                t = v.tenant
                rows.append(
                    {
                        "id": str(t.id),
                        "slug": t.slug,
                        "name": t.name,
                        "status": t.status,
                        "members": v.member_count,
                        "resources": v.resource_count,
                    }
                )
            cursor = page.next_cursor
            if not cursor:
                break
    emit(rows, ["slug", "name", "status", "members", "resources", "id"], output)


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
        confirm("continue?", yes)
        slug = t.slug  # the trash expires loaded objects; read before the session closes
        batch, _ = tenants.delete_tenant(ctx, t)
    console.print(f"[yellow]deleted[/yellow] {slug} (batch {batch})")


@app.command("restore")
def restore(tenant: str) -> None:
    with system_context("cli tenants restore") as ctx:
        slug = tenants.restore_tenant(ctx, tenants.find_deleted(ctx, tenant)).slug
    console.print(f"[green]restored[/green] {slug}")


def _update(tenant: str, changes: dict[str, str], reason: str, output: Output) -> None:
    with system_context(reason) as ctx:
        t = tenants.update_tenant(ctx, tenants.find_visible(ctx, tenant), changes)
        data = {"id": str(t.id), "slug": t.slug, "name": t.name, "status": t.status}
    if output is Output.json:
        emit_one(data, output)
    else:
        console.print(f"{data['slug']}: {data['name']} ({data['status']})")


@app.command("rename")
def rename(tenant: str, name: str, output: Output = OUTPUT_OPTION) -> None:
    """Change the display name (the slug stays)."""
    _update(tenant, {"name": name}, "cli tenants rename", output)


@app.command("suspend")
def suspend(tenant: str, yes: bool = YES_OPTION, output: Output = OUTPUT_OPTION) -> None:
    """Close the tenant to its members until it is activated again."""
    confirm(f"suspend {tenant}?", yes)
    _update(tenant, {"status": "suspended"}, "cli tenants suspend", output)


@app.command("activate")
def activate(tenant: str, output: Output = OUTPUT_OPTION) -> None:
    _update(tenant, {"status": "active"}, "cli tenants activate", output)

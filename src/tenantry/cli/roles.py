"""`tenantry roles list|show|create|delete [--tenant T]`: global roles, or a tenant's."""

from __future__ import annotations

from typing import Any

import typer

from tenantry.cli.common import (
    OUTPUT_OPTION,
    YES_OPTION,
    Output,
    confirm,
    console,
    emit,
    emit_one,
    enter_if_given,
    system_context,
)
from tenantry.services import roles
from tenantry.services.roles import RoleView

app = typer.Typer(no_args_is_help=True, help="Manage roles (global, or a tenant's with --tenant).")

TENANT_OPTION: Any = typer.Option(None, "--tenant", "-t", help="A tenant's roles (default: global)")
COLUMNS = ["key", "name", "scope", "builtin", "permissions", "id"]


def row(r: RoleView) -> dict[str, Any]:
    return {
        "id": str(r.id) if r.id else None,
        "key": r.key,
        "name": r.name,
        "description": r.description,
        "scope": r.scope,
        "builtin": r.builtin,
        "permissions": list(r.permissions),
        "tenant_id": str(r.tenant_id) if r.tenant_id else None,
    }


@app.command("list")
def list_roles(tenant: str = TENANT_OPTION, output: Output = OUTPUT_OPTION) -> None:
    with system_context("cli roles list") as ctx:
        enter_if_given(ctx, tenant)
        rows = [row(r) for r in roles.list_roles(ctx)]
    emit(rows, COLUMNS, output)


@app.command("show")
def show(key: str, tenant: str = TENANT_OPTION, output: Output = OUTPUT_OPTION) -> None:
    with system_context("cli roles show") as ctx:
        enter_if_given(ctx, tenant)
        data = row(roles.get_role(ctx, key))
    emit_one(data, output)


@app.command("create")
def create(
    key: str,
    name: str,
    permission: list[str] = typer.Option(..., "--permission", "-p", help="Repeat for each permission"),
    description: str = "",
    tenant: str = TENANT_OPTION,
    acknowledge_risk: bool = typer.Option(False, "--acknowledge-risk", help="Allow high-risk permissions"),
    output: Output = OUTPUT_OPTION,
) -> None:
    with system_context("cli roles create") as ctx:
        enter_if_given(ctx, tenant)
        view = roles.create_role(
            ctx,
            key=key,
            name=name,
            description=description,
            permissions=permission,
            acknowledge_risk=acknowledge_risk,
        )
        data = row(view)
    if output is Output.json:
        emit_one(data, output)
    else:
        console.print(f"[green]created[/green] role {data['key']} ({data['id']})")


@app.command("delete")
def delete(key: str, tenant: str = TENANT_OPTION, yes: bool = YES_OPTION) -> None:
    confirm(f"delete role {key}?", yes)
    with system_context("cli roles delete") as ctx:
        enter_if_given(ctx, tenant)
        roles.delete_role(ctx, key)
    console.print(f"[yellow]deleted[/yellow] role {key}")

"""`tenantry grants list|add|remove [--tenant T]`: global grants, or a tenant's."""

from __future__ import annotations

import dataclasses
import uuid
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
from tenantry.cli.users import find_user
from tenantry.errors import Invalid
from tenantry.services import grants
from tenantry.services.grants import GrantView

app = typer.Typer(no_args_is_help=True, help="Manage role grants (global, or a tenant's with --tenant).")

TENANT_OPTION: Any = typer.Option(None, "--tenant", "-t", help="A tenant's grants (default: global)")
COLUMNS = ["role", "principal_type", "principal_id", "scope", "resource_id", "id"]


def row(g: GrantView) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in dataclasses.asdict(g).items()}


@app.command("list")
def list_grants(
    tenant: str = TENANT_OPTION,
    user: str = typer.Option(None, "--user", help="Only this user's grants (email or id)"),
    role: str = typer.Option(None, "--role"),
    output: Output = OUTPUT_OPTION,
) -> None:
    with system_context("cli grants list") as ctx:
        enter_if_given(ctx, tenant)
        principal_id = find_user(ctx, user).id if user else None
        rows = [row(g) for g in grants.list_grants(ctx, principal_id=principal_id, role=role)]
    emit(rows, COLUMNS, output)


@app.command("add")
def add(
    role: str,
    user: str = typer.Option(None, "--user", help="Grant to this user (email or id)"),
    group: uuid.UUID = typer.Option(None, "--group", help="Grant to this group (id)"),
    resource: uuid.UUID = typer.Option(None, "--resource", help="Only on this resource (tenant grants)"),
    tenant: str = TENANT_OPTION,
    output: Output = OUTPUT_OPTION,
) -> None:
    with system_context("cli grants add") as ctx:
        enter_if_given(ctx, tenant)
        if (user is None) == (group is None):
            raise Invalid("give exactly one of --user and --group", code="invalid_principal")
        principal_type, principal_id = ("user", find_user(ctx, user).id) if user else ("group", group)
        view = grants.create_grant(
            ctx, principal_type=principal_type, principal_id=principal_id, role=role, resource_id=resource
        )
        data = row(view)
    if output is Output.json:
        emit_one(data, output)
    else:
        console.print(f"[green]granted[/green] {role} ({data['id']})")


@app.command("remove")
def remove(grant: uuid.UUID, tenant: str = TENANT_OPTION, yes: bool = YES_OPTION) -> None:
    confirm(f"remove grant {grant}?", yes)
    with system_context("cli grants remove") as ctx:
        enter_if_given(ctx, tenant)
        grants.delete_grant(ctx, grant)
    console.print(f"[yellow]removed[/yellow] grant {grant}")

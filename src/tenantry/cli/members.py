"""`tenantry members list|add|remove|set-role --tenant T`."""

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
    system_context,
)
from tenantry.cli.users import find_user
from tenantry.services import memberships, tenants
from tenantry.services.memberships import MemberView

app = typer.Typer(no_args_is_help=True, help="Manage a tenant's members.")

TENANT_OPTION: Any = typer.Option(..., "--tenant", "-t", help="Tenant slug or id")
COLUMNS = ["email", "roles", "default", "active", "id"]


def row(v: MemberView) -> dict[str, Any]:
    return {
        "id": str(v.user.id),
        "email": v.user.email,
        "roles": list(v.roles),
        "default": v.is_default,
        "active": v.user.active,
    }


@app.command("list")
def list_members(
    tenant: str = TENANT_OPTION, q: str = typer.Option(None), limit: int = 500, output: Output = OUTPUT_OPTION
) -> None:
    with system_context("cli members list") as ctx:
        tenants.enter_tenant(ctx, tenant)
        rows: list[dict[str, Any]] = []
        cursor = None
        while len(rows) < limit:
            page = memberships.list_members(ctx, limit=min(100, limit - len(rows)), cursor=cursor, q=q)
            rows += [row(v) for v in page.items]
            cursor = page.next_cursor
            if not cursor:
                break
    emit(rows, COLUMNS, output)


@app.command("add")
def add(
    email: str,
    tenant: str = TENANT_OPTION,
    role: str = typer.Option("member", "--role"),
    output: Output = OUTPUT_OPTION,
) -> None:
    """Attach a user (an unknown email creates the account and mails a set-password link)."""
    with system_context("cli members add") as ctx:
        t = tenants.find_visible(ctx, tenant)
        ctx.enter(t)
        added = memberships.add_member(ctx, t, role=role, email=email)
        data = (
            row(added) if isinstance(added, MemberView) else {"invitation_id": str(added.id), "email": email}
        )
    if output is Output.json:
        emit_one(data, output)
    else:
        console.print(f"[green]added[/green] {data['email']} as {role}")


@app.command("remove")
def remove(user: str, tenant: str = TENANT_OPTION, yes: bool = YES_OPTION) -> None:
    confirm(f"remove {user} from {tenant}?", yes)
    with system_context("cli members remove") as ctx:
        tenants.enter_tenant(ctx, tenant)
        u = find_user(ctx, user)
        memberships.remove_member(ctx, u.id)
        email = u.email
    console.print(f"[yellow]removed[/yellow] {email} from {tenant}")


@app.command("set-role")
def set_role(user: str, role: str, tenant: str = TENANT_OPTION, output: Output = OUTPUT_OPTION) -> None:
    with system_context("cli members set-role") as ctx:
        tenants.enter_tenant(ctx, tenant)
        data = row(memberships.change_member_role(ctx, find_user(ctx, user).id, role=role))
    if output is Output.json:
        emit_one(data, output)
    else:
        console.print(f"{data['email']} is now {', '.join(data['roles'])}")

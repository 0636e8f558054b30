"""`tenantry groups list|show|create|delete|add-member|remove-member`: global user groups."""

from __future__ import annotations

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
    system_context,
)
from tenantry.cli.users import find_user
from tenantry.db.tables import Group
from tenantry.errors import NotFound
from tenantry.services import groups
from tenantry.services.context import ServiceContext

app = typer.Typer(no_args_is_help=True, help="Manage user groups.")

COLUMNS = ["name", "description", "id"]


def find_group(ctx: ServiceContext, ref: str) -> Group:
    try:
        return groups.get_group(ctx, uuid.UUID(ref))
    except ValueError:
        found = next((g for g in groups.list_groups(ctx) if g.name == ref), None)
        if found is None:
            raise NotFound("group") from None
        return found


def row(g: Group) -> dict[str, Any]:
    return {"id": str(g.id), "name": g.name, "description": g.description}


@app.command("list")
def list_groups(output: Output = OUTPUT_OPTION) -> None:
    with system_context("cli groups list") as ctx:
        rows = [row(g) for g in groups.list_groups(ctx)]
    emit(rows, COLUMNS, output)


@app.command("show")
def show(group: str = typer.Argument(..., help="Name or id"), output: Output = OUTPUT_OPTION) -> None:
    with system_context("cli groups show") as ctx:
        g = find_group(ctx, group)
        data = row(g)
        data["members"] = [{"id": str(u.id), "email": u.email} for u in groups.list_group_members(ctx, g)]
    if output is Output.table:
        data["members"] = [m["email"] for m in data["members"]]
    emit_one(data, output)


@app.command("create")
def create(name: str, description: str = "", output: Output = OUTPUT_OPTION) -> None:
    with system_context("cli groups create") as ctx:
        data = row(groups.create_group(ctx, name=name, description=description))
    if output is Output.json:
        emit_one(data, output)
    else:
        console.print(f"[green]created[/green] group {data['name']} ({data['id']})")


@app.command("delete")
def delete(group: str, yes: bool = YES_OPTION) -> None:
    confirm(f"delete group {group} and its grants?", yes)
    with system_context("cli groups delete") as ctx:
        groups.delete_group(ctx, find_group(ctx, group))
    console.print(f"[yellow]deleted[/yellow] group {group}")


@app.command("add-member")
def add_member(group: str, user: str) -> None:
    with system_context("cli groups add-member") as ctx:
        groups.add_group_member(ctx, find_group(ctx, group), user_id=find_user(ctx, user).id)
    console.print(f"added {user} to {group}")


@app.command("remove-member")
def remove_member(group: str, user: str, yes: bool = YES_OPTION) -> None:
    confirm(f"remove {user} from group {group}?", yes)
    with system_context("cli groups remove-member") as ctx:
        groups.remove_group_member(ctx, find_group(ctx, group), user_id=find_user(ctx, user).id)
    console.print(f"removed {user} from {group}")

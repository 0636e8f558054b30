"""`tenantry users list|show|create|deactivate|activate|invite`."""

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
from tenantry.db.tables import User
from tenantry.errors import NotFound
from tenantry.services import tenants, users
from tenantry.services.context import ServiceContext

app = typer.Typer(no_args_is_help=True, help="Manage user accounts.")

COLUMNS = ["email", "name", "active", "superadmin", "invited", "id"]


def find_user(ctx: ServiceContext, ref: str) -> User:
    """A user by id or email, read through the service (so the read is authorized)."""
    try:
        user_id = uuid.UUID(ref)
    except ValueError:
        return _by_email(ctx, ref)
    return users.get_user(ctx, user_id)


def _by_email(ctx: ServiceContext, email: str) -> User:
    wanted = email.strip().lower()
    cursor = None
    while True:
        page = users.list_users(ctx, limit=100, cursor=cursor, email=wanted)
        for u in page.items:
            if u.email == wanted:
                return u
        cursor = page.next_cursor
        if not cursor:
            raise NotFound("user")


def row(u: User) -> dict[str, Any]:
    return {
        "id": str(u.id),
        "email": u.email,
        "name": f"{u.first_name} {u.last_name}".strip(),
        "first_name": u.first_name,
        "last_name": u.last_name,
        "active": u.active,
        "superadmin": u.is_superadmin,
        "invited": u.password_hash is None,
    }


@app.command("list")
def list_users(
    email: str = typer.Option(None, help="Email contains"),
    tenant: str = typer.Option(None, "--tenant", help="Only members of this tenant"),
    limit: int = 200,
    output: Output = OUTPUT_OPTION,
) -> None:
    with system_context("cli users list") as ctx:
        tenant_id = tenants.find_visible(ctx, tenant).id if tenant else None
        rows: list[dict[str, Any]] = []
        cursor = None
        while len(rows) < limit:
            page = users.list_users(
                ctx, limit=min(100, limit - len(rows)), cursor=cursor, email=email, tenant_id=tenant_id
            )
            rows += [row(u) for u in page.items]
            cursor = page.next_cursor
            if not cursor:
                break
    emit(rows, COLUMNS, output)


@app.command("show")
def show(user: str = typer.Argument(..., help="Email or id"), output: Output = OUTPUT_OPTION) -> None:
    with system_context("cli users show") as ctx:
        u = find_user(ctx, user)
        data = row(u)
        data["tenants"] = [
            {"slug": t.slug, "id": str(t.id), "roles": roles} for t, roles in users.user_tenants(ctx, u.id)
        ]
    emit_one(data, output)


@app.command("create")
def create(
    email: str,
    first_name: str = typer.Option("", "--first-name"),
    last_name: str = typer.Option("", "--last-name"),
    superadmin: bool = typer.Option(False, "--superadmin"),
    output: Output = OUTPUT_OPTION,
) -> None:
    """Create an account; the user is invited by mail to set a password."""
    with system_context("cli users create") as ctx:
        u = users.create_user(
            ctx, email=email, first_name=first_name, last_name=last_name, is_superadmin=superadmin
        )
        data = row(u)
    if output is Output.json:
        emit_one(data, output)
    else:
        console.print(f"[green]created[/green] {data['email']} ({data['id']}), invitation sent")


def _set_active(user: str, active: bool, output: Output) -> None:
    verb = "activate" if active else "deactivate"
    with system_context(f"cli users {verb}") as ctx:
        u = users.update_user(ctx, find_user(ctx, user), {"active": active})
        data = row(u)
    if output is Output.json:
        emit_one(data, output)
    else:
        console.print(f"{verb}d {data['email']} ({data['id']})")


@app.command("deactivate")
def deactivate(user: str, yes: bool = YES_OPTION, output: Output = OUTPUT_OPTION) -> None:
    """Sign-in and API keys stop working; nothing is deleted."""
    confirm(f"deactivate {user}?", yes)
    _set_active(user, False, output)


@app.command("activate")
def activate(user: str, output: Output = OUTPUT_OPTION) -> None:
    _set_active(user, True, output)


@app.command("invite")
def invite(user: str) -> None:
    """Send a new set-password link (the previous one stops working)."""
    with system_context("cli users invite") as ctx:
        u = find_user(ctx, user)
        users.resend_invitation(ctx, u)
        email = u.email
    console.print(f"invitation sent to {email}")

"""`tenantry api-keys list|revoke --user USER`: a user's API keys (creating one is the user's own act)."""

from __future__ import annotations

import uuid
from typing import Any

import typer

from tenantry.cli.common import OUTPUT_OPTION, YES_OPTION, Output, confirm, console, emit, system_context
from tenantry.cli.users import find_user
from tenantry.services import aliases, api_keys

app = typer.Typer(no_args_is_help=True, help="A user's API keys.")
aliases_app = typer.Typer(no_args_is_help=True, help="A user's aliases.")

USER_OPTION: Any = typer.Option(..., "--user", "-u", help="The owner (email or id)")


@app.command("list")
def list_keys(user: str = USER_OPTION, output: Output = OUTPUT_OPTION) -> None:
    with system_context("cli api-keys list") as ctx:
        rows = [
            {
                "id": str(k.id),
                "name": k.name,
                "prefix": k.prefix,
                "scope": k.scope,
                "tenant_id": str(k.tenant_id) if k.tenant_id else None,
                "expires_at": k.expires_at.isoformat(),
                "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
            }
            for k in api_keys.list_user_keys(ctx, find_user(ctx, user).id)
        ]
    emit(rows, ["name", "prefix", "scope", "expires_at", "id"], output)


@app.command("revoke")
def revoke(key: uuid.UUID, user: str = USER_OPTION, yes: bool = YES_OPTION) -> None:
    confirm(f"revoke API key {key}?", yes)
    with system_context("cli api-keys revoke") as ctx:
        api_keys.revoke_user_key(ctx, find_user(ctx, user).id, key)
    console.print(f"[yellow]revoked[/yellow] API key {key}")


@aliases_app.command("list")
def list_aliases(user: str = USER_OPTION, limit: int = 500, output: Output = OUTPUT_OPTION) -> None:
    """The aliases of a parent user."""
    with system_context("cli aliases list") as ctx:
        parent_id = find_user(ctx, user).id
        rows: list[dict[str, Any]] = []
        cursor = None
        while len(rows) < limit:
            page = aliases.list_user_aliases(ctx, parent_id, limit=min(100, limit - len(rows)), cursor=cursor)
            rows += [
                {
                    "id": str(v.alias.id),
                    "email": v.alias.email,
                    "active": v.alias.active,
                    "role_id": str(v.alias.alias_role_id) if v.alias.alias_role_id else None,
                    "resource_ids": [str(r) for r in v.resource_ids],
                }
                for v in page.items
            ]
            cursor = page.next_cursor
            if not cursor:
                break
    emit(rows, ["email", "active", "resource_ids", "id"], output)

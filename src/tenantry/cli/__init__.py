"""The `tenantry` command: init, serve and admin commands, calling the same services as the API."""

from __future__ import annotations

import typer

from tenantry.cli import (
    api_keys,
    audit,
    grants,
    groups,
    init,
    members,
    resources,
    roles,
    serve,
    settings_cmd,
    tenants,
    trash,
    users,
    worker,
)

# Security: never print local variables in tracebacks; they may hold passwords or tokens.
app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    help="Tenantry: a multi-tenant control plane.",
)
app.command("init")(init.init)
app.command("migrate")(init.migrate)
app.command("serve")(serve.serve)
app.command("worker")(worker.worker)
app.add_typer(tenants.app, name="tenants")
app.add_typer(audit.app, name="audit")
app.add_typer(resources.app, name="resources")
app.add_typer(trash.app, name="trash")
app.add_typer(users.app, name="users")
app.add_typer(members.app, name="members")
app.add_typer(roles.app, name="roles")
app.add_typer(grants.app, name="grants")
app.add_typer(settings_cmd.app, name="settings")
app.add_typer(groups.app, name="groups")
app.add_typer(api_keys.app, name="api-keys")
app.add_typer(api_keys.aliases_app, name="aliases")

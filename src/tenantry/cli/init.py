"""`tenantry init` and `tenantry migrate`."""

from __future__ import annotations

import secrets

from sqlalchemy import select

from tenantry.cli.common import console, settings, system_context
from tenantry.db import migrate as db_migrate
from tenantry.db.tables import Tenant, User
from tenantry.services import memberships, resource_types, tenants, users


def migrate() -> None:
    """Apply database migrations (as the owner URL when TENANTRY_MIGRATION_DATABASE_URL is set)."""
    s = settings()
    db_migrate.upgrade(s.migration_database_url or s.database_url, app_url=s.database_url)
    console.print("[green]database is up to date[/green]")


def init() -> None:
    """Migrate, then create the `default` tenant and the first superadmin. Safe to run again."""
    s = settings()
    db_migrate.upgrade(s.migration_database_url or s.database_url, app_url=s.database_url)
    with system_context("init") as ctx:
        default = ctx.session.scalar(
            select(Tenant).where(Tenant.slug == "default").execution_options(include_deleted=True)
        )
        if default is None:
            default = tenants.create_tenant(ctx, slug="default", name="Default")
            console.print("created tenant [bold]default[/bold]")
        elif default.deleted_at is not None:
            console.print(
                "tenant default is in the trash (restore it with `tenantry trash restore`), skipping"
            )
        else:
            console.print("tenant default exists, skipping")
        made = resource_types.ensure_builtin_types(ctx)
        if made:
            console.print(f"created {made} built-in resource types")
        admin = ctx.session.scalar(
            select(User)
            .where(User.email == s.admin_email.strip().lower())
            .execution_options(include_deleted=True)
        )
        if admin is not None:
            console.print(
                f"superadmin {admin.email} exists{' (in the trash)' if admin.deleted_at else ''}, skipping"
            )
            return
        password = s.admin_password or secrets.token_urlsafe(18)
        admin = users.create_user(
            ctx, email=s.admin_email, password=password, first_name="Admin", is_superadmin=True
        )
        if default.deleted_at is None:
            memberships.add_member(ctx, default, user=admin, role="tenant_admin")
    console.rule("first login")
    console.print(f"  email:    [bold]{admin.email}[/bold]")
    if s.admin_password:
        console.print("  password: (the value of TENANTRY_ADMIN_PASSWORD)")
    else:
        console.print(f"  password: [bold]{password}[/bold]   (shown once; change it after signing in)")
    console.rule()

"""`tenantry init` and `tenantry migrate`."""

from __future__ import annotations

import secrets

from sqlalchemy import select

from tenantry.cli.common import console, settings, system_context
from tenantry.db import migrate as db_migrate
from tenantry.db.tables import Tenant, User
from tenantry.services import memberships, resource_types, tenants, users
from tenantry.services.context import ServiceContext


def migrate() -> None:
    """Apply database migrations (as the owner URL when TENANTRY_MIGRATION_DATABASE_URL is set)."""
    s = settings()
    db_migrate.upgrade(s.migration_database_url or s.database_url, app_url=s.database_url)
    console.print("[green]database is up to date[/green]")


def init() -> None:
    """Migrate, then create the `default` tenant and the first superadmin. Safe to run again.

    The superadmin is created only while there is none at all (also none in the trash): a
    changed TENANTRY_ADMIN_EMAIL must not mint a second, silent superadmin on the next run.
    """
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
        if _report_existing_admins(ctx, s.admin_email.strip().lower()):
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


def _report_existing_admins(ctx: ServiceContext, admin_email: str) -> bool:
    """Print the superadmins that already exist (or the account holding the admin address)."""
    admins = ctx.session.scalars(
        select(User)
        .where(User.is_superadmin.is_(True))
        .order_by(User.created_at, User.email)
        .execution_options(include_deleted=True)
    ).all()
    for admin in admins:
        state = " (in the trash: restore it with `tenantry trash restore`)" if admin.deleted_at else ""
        state = state or ("" if admin.active else " (deactivated)")
        console.print(f"superadmin {admin.email} exists{state}, skipping")
    if admins:
        return True
    holder = ctx.session.scalar(
        select(User).where(User.email == admin_email).execution_options(include_deleted=True)
    )
    if holder is not None:
        console.print(
            f"user {holder.email} exists but is not a superadmin, skipping "
            "(set TENANTRY_ADMIN_EMAIL to a free address to create the first superadmin)"
        )
        return True
    return False

"""PostgreSQL row-level security: the second barrier behind `db/scoping.py`.

Policies compare `tenant_id` with the transaction-local `tenantry.tenant_id` setting; an unset
or empty value matches nothing. Crossing tenants needs `tenantry_cross_tenant_active()`: a proof
in `tenantry.cross_tenant` that only `tenantry_cross_tenant(key)` can produce, with the key the
connection was handed when it was opened (migration 0013, `db/engine.py`); setting the variable
by hand shows nothing. FORCE makes the policies apply to the table owner too; superusers and
BYPASSRLS roles still bypass them, so the application must connect as a plain role.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from tenantry.db.base import Base, TenantOwned

_TENANT_MATCH = "tenant_id = nullif(current_setting('tenantry.tenant_id', true), '')::uuid"
# Before migration 0013 (older revisions still create their policies with it).
_CROSS_LEGACY = "current_setting('tenantry.cross_tenant', true) = 'on'"
# A scalar subquery: evaluated once per statement (an InitPlan), and only when a row is not the
# current tenant's.
_CROSS_SEALED = "(SELECT tenantry_cross_tenant_active())"


def tenant_owned_tables() -> list[str]:
    return sorted(
        m.local_table.name  # type: ignore[attr-defined]
        for m in Base.registry.mappers
        if issubclass(m.class_, TenantOwned)
    )


def enable_statements(table: str, *, sealed: bool = True) -> list[str]:
    cross = _CROSS_SEALED if sealed else _CROSS_LEGACY
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"DROP POLICY IF EXISTS tenant_isolation ON {table}",
        f"CREATE POLICY tenant_isolation ON {table} "
        f"USING ({_TENANT_MATCH} OR {cross}) WITH CHECK ({_TENANT_MATCH} OR {cross})",
    ]


def disable_statements(table: str) -> list[str]:
    return [
        f"DROP POLICY IF EXISTS tenant_isolation ON {table}",
        f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
    ]


def enable(conn: Connection, tables: list[str], *, sealed: bool | None = None) -> None:
    """Force RLS with the tenant policy; `sealed` None: the sealed escape once it exists."""
    if conn.dialect.name != "postgresql":
        return
    if sealed is None:
        sealed = bool(conn.execute(text("SELECT to_regprocedure('tenantry_cross_tenant_active()')")).scalar())
    for table in tables:
        for stmt in enable_statements(table, sealed=sealed):
            conn.execute(text(stmt))


def disable(conn: Connection, tables: list[str]) -> None:
    if conn.dialect.name != "postgresql":
        return
    for table in tables:
        for stmt in disable_statements(table):
            conn.execute(text(stmt))


def role_bypasses_rls(conn: Connection) -> bool:
    """True when the connected role is a superuser or has BYPASSRLS (RLS then protects nothing)."""
    if conn.dialect.name != "postgresql":
        return False
    row = conn.execute(
        text("SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user")
    ).scalar()
    return bool(row)

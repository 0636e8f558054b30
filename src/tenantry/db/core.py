"""Table-level (SQLAlchemy Core) access for the queries that must span tenants or skip ORM loading.

ORM statements are scoped automatically (`db/scoping.py`). Core statements built from these
tables are not: they state their tenant and not-deleted conditions with `live` and
`in_tenant`, the one spelling of those conditions outside the scoping listener. This module
is the only place outside `db/` migrations that reaches for a mapped class's `__table__`.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, FromClause, Table, and_

from tenantry.db.tables import (
    AliasResource,
    AliasRole,
    GlobalGrant,
    Grant,
    Group,
    GroupMember,
    Membership,
    Resource,
    ResourceUniqueValue,
    Role,
    TenantRole,
    User,
)

alias_resources: Table = AliasResource.__table__  # type: ignore[assignment]
alias_roles: Table = AliasRole.__table__  # type: ignore[assignment]
grants: Table = Grant.__table__  # type: ignore[assignment]
global_grants: Table = GlobalGrant.__table__  # type: ignore[assignment]
group_members: Table = GroupMember.__table__  # type: ignore[assignment]
groups: Table = Group.__table__  # type: ignore[assignment]
memberships: Table = Membership.__table__  # type: ignore[assignment]
resources: Table = Resource.__table__  # type: ignore[assignment]
resource_unique_values: Table = ResourceUniqueValue.__table__  # type: ignore[assignment]
roles: Table = Role.__table__  # type: ignore[assignment]
tenant_roles: Table = TenantRole.__table__  # type: ignore[assignment]
users: Table = User.__table__  # type: ignore[assignment]


def live(table: FromClause) -> ColumnElement[bool]:
    """Rows not in the trash."""
    return table.c.deleted_at.is_(None)


def in_tenant(table: FromClause, tenant_id: uuid.UUID | ColumnElement[uuid.UUID]) -> ColumnElement[bool]:
    """Live rows of one tenant: what the scoping listener would have added to an ORM query."""
    return and_(table.c.tenant_id == tenant_id, live(table))

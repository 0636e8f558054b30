"""Which tenants a principal can see, as a decision for one tenant and as a SQL filter."""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, false, select, true
from sqlalchemy.orm import Session

from tenantry.authz.catalog import Perm
from tenantry.authz.engine import alias_facts, caller_limit, check, is_member, mark_decided
from tenantry.authz.principal import Principal
from tenantry.db import core
from tenantry.db.tables import Tenant


def sees_all_tenants(session: Session, principal: Principal) -> bool:
    return check(session, principal, Perm.TENANT_CROSS_VIEW, None) or check(
        session, principal, Perm.TENANT_READ, None
    )


def can_see_tenant(session: Session, principal: Principal, tenant_id: uuid.UUID) -> bool:
    mark_decided("tenant.visible")
    if caller_limit(principal, Perm.TENANT_READ, tenant_id) is not None:
        return False
    if check(session, principal, Perm.TENANT_READ, tenant_id) or sees_all_tenants(session, principal):
        return True
    # A member always sees the tenant itself, even when their only grants are on resources.
    if principal.kind == "alias" and principal.user_id is not None:
        # An alias works in its parent's tenants (with assignments: those holding them).
        af = alias_facts(session, principal.user_id)
        return (
            af is not None
            and (not af.assigned or tenant_id in af.assigned)
            and is_member(session, af.parent_id, tenant_id)
        )
    return principal.user_id is not None and is_member(session, principal.user_id, tenant_id)


def tenant_filter(session: Session, principal: Principal) -> ColumnElement[bool]:
    """SQL condition on `tenants` for list queries: never load-then-filter."""
    mark_decided("tenant.visible")
    if principal.key_tenant_id is not None:
        # A key tied to one tenant lists that tenant, exactly when it could open it.
        visible = can_see_tenant(session, principal, principal.key_tenant_id)
        return Tenant.id == principal.key_tenant_id if visible else false()
    if sees_all_tenants(session, principal):
        return true()
    if principal.user_id is None:
        return Tenant.id.is_(None)
    if principal.kind == "alias":
        af = alias_facts(session, principal.user_id)
        if af is None:
            return false()
        cond = Tenant.id.in_(_member_tenants(af.parent_id))
        return cond & Tenant.id.in_(sorted(af.assigned)) if af.assigned else cond
    return Tenant.id.in_(_member_tenants(principal.user_id))


def _member_tenants(user_id: uuid.UUID):  # type: ignore[no-untyped-def]
    # Core table, not the mapped class: the membership subquery must span tenants, and it
    # is narrowed to one user id (the principal's own, or an alias's parent's) right here.
    m = core.memberships
    return select(m.c.tenant_id).where(m.c.user_id == user_id, core.live(m))

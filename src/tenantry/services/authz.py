"""Explain a decision: which grants allow it, or why not."""

from __future__ import annotations

import uuid

from tenantry.authz import CATALOG, Perm, Principal
from tenantry.authz import engine as authz_engine
from tenantry.db.tables import User
from tenantry.errors import Invalid, NotFound
from tenantry.services.context import ServiceContext


def explain(
    ctx: ServiceContext, *, user_id: uuid.UUID, permission: str, resource_id: uuid.UUID | None = None
) -> authz_engine.Explanation:
    """Only for those who may read grants in the scope asked about (the context's tenant or global)."""
    if ctx.tenant is not None:
        ctx.require(Perm.GRANT_READ)
    else:
        ctx.require(Perm.GRANT_READ, global_scope=True)
    user = ctx.session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        raise NotFound("user")
    # An alias works in its parent's tenants: it is "in" the tenant where its parent is a member.
    works_as = user.parent_id or user.id
    if (
        ctx.tenant is not None
        and not authz_engine.is_member(ctx.session, works_as, ctx.tenant.id)
        and not ctx.principal.is_superadmin
    ):
        raise NotFound("user")  # tenant admins learn nothing about people outside their tenant
    if permission not in CATALOG:
        raise Invalid(f"unknown permission {permission!r}", code="unknown_permission", field="permission")
    if user.parent_id is not None:
        target = Principal(kind="alias", user_id=user.id, label=user.email, ceiling_user_id=user.parent_id)
    else:
        target = Principal(
            kind="user", user_id=user.id, label=user.email, is_superadmin=user.is_superadmin and user.active
        )
    if not user.active:
        return authz_engine.Explanation(False, [], ["the account is deactivated"])
    return authz_engine.explain(ctx.session, target, permission, ctx.tenant_id, resource_id)

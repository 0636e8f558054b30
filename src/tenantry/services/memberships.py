"""Memberships: who works in which tenant, and with which tenant role."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from tenantry.authz import Perm
from tenantry.authz import engine as authz_engine
from tenantry.authz.roles import BUILTIN_ROLES
from tenantry.db import scoping
from tenantry.db.tables import Grant, Membership, Tenant, User
from tenantry.errors import Conflict, Invalid
from tenantry.services import audit
from tenantry.services.context import ServiceContext


def add_member(ctx: ServiceContext, tenant: Tenant, *, user: User, role: str) -> Membership:
    """Make `user` a member of `tenant` with one tenant role (a tenant-scope grant)."""
    ctx.require(Perm.MEMBER_MANAGE, tenant_id=tenant.id)
    if role not in BUILTIN_ROLES or BUILTIN_ROLES[role].global_only:
        raise Invalid(f"unknown tenant role {role!r}", code="unknown_role", field="role")
    with scoping.in_tenant(ctx.session, tenant.id):
        existing = ctx.session.scalar(select(Membership).where(Membership.user_id == user.id))
        if existing is not None:
            raise Conflict("already a member", code="already_member")
        membership = Membership(tenant_id=tenant.id, user_id=user.id)
        ctx.session.add(membership)
        ctx.session.add(Grant(tenant_id=tenant.id, principal_type="user", principal_id=user.id, role_key=role))
        ctx.session.flush()
    if user.default_tenant_id is None:
        user.default_tenant_id = tenant.id
    audit.record(ctx, "member.add", target_type="user", target_id=user.id,
                 after={"email": user.email, "role": role}, tenant_id=tenant.id)
    authz_engine.forget(ctx.session)
    return membership


def member_tenant_ids(ctx: ServiceContext, user_id: uuid.UUID) -> list[uuid.UUID]:
    m = Membership.__table__
    with scoping.cross_tenant(ctx.session):
        return list(ctx.session.scalars(select(m.c.tenant_id).where(m.c.user_id == user_id,
                                                                      m.c.deleted_at.is_(None))))

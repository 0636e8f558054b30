"""Grants: (principal, role, scope) at global, tenant or resource scope.

Nobody grants a role holding permissions they lack at that scope; only superadmins grant
global roles; tenant and resource grants to a user need that user's membership; and a tenant
never loses its last tenant admin except by a superadmin.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select

from tenantry.authz import Perm
from tenantry.authz import cache as authz_cache
from tenantry.authz import engine as authz_engine
from tenantry.authz.roles import BUILTIN_ROLES
from tenantry.db.tables import GlobalGrant, Grant, Group, Resource, Role, User
from tenantry.db.types import utcnow
from tenantry.errors import Conflict, Invalid, NotFound
from tenantry.services import audit, memberships
from tenantry.services.context import ServiceContext

ADMIN_ROLE = memberships.ADMIN_ROLE


@dataclass
class GrantView:
    id: uuid.UUID
    principal_type: str
    principal_id: uuid.UUID
    role: str
    scope: str
    tenant_id: uuid.UUID | None
    resource_id: uuid.UUID | None


def _view(g: Grant | GlobalGrant) -> GrantView:
    if isinstance(g, GlobalGrant):
        return GrantView(g.id, g.principal_type, g.principal_id, g.role_key, "global", None, None)
    return GrantView(
        g.id,
        g.principal_type,
        g.principal_id,
        g.role_key,
        "resource" if g.resource_id else "tenant",
        g.tenant_id,
        g.resource_id,
    )


def list_grants(
    ctx: ServiceContext,
    *,
    principal_id: uuid.UUID | None = None,
    role: str | None = None,
    resource_id: uuid.UUID | None = None,
) -> list[GrantView]:
    if ctx.tenant is None:
        ctx.require(Perm.GRANT_READ, global_scope=True)
        stmt = select(GlobalGrant)
        if principal_id:
            stmt = stmt.where(GlobalGrant.principal_id == principal_id)
        if role:
            stmt = stmt.where(GlobalGrant.role_key == role)
        return [_view(g) for g in ctx.session.scalars(stmt.order_by(GlobalGrant.id))]
    ctx.require(Perm.GRANT_READ)
    tstmt = select(Grant)
    if principal_id:
        tstmt = tstmt.where(Grant.principal_id == principal_id)
    if role:
        tstmt = tstmt.where(Grant.role_key == role)
    if resource_id:
        tstmt = tstmt.where(Grant.resource_id == resource_id)
    return [_view(g) for g in ctx.session.scalars(tstmt.order_by(Grant.id))]


def _check_principal(ctx: ServiceContext, ptype: str, pid: uuid.UUID) -> None:
    if ptype == "user":
        user = ctx.session.get(User, pid)
        if user is None or user.deleted_at is not None:
            raise Invalid("no such user", code="unknown_principal", field="principal.id")
        if user.parent_id is not None:
            # An alias's alias role (under its parent's ceiling) is all it may do: no grants.
            raise Invalid(
                "alias users hold no grants; change their alias role",
                code="alias_not_grantable",
                field="principal.id",
            )
        if ctx.tenant is not None and not authz_engine.is_member(ctx.session, pid, ctx.tenant.id):
            raise Invalid(
                "the user is not a member of this tenant", code="not_a_member", field="principal.id"
            )
    elif ptype == "group":
        if ctx.session.scalar(select(Group.id).where(Group.id == pid)) is None:
            raise Invalid("no such group", code="unknown_principal", field="principal.id")
    else:
        raise Invalid(
            "principal type must be user or group", code="invalid_principal", field="principal.type"
        )


def _check_role(ctx: ServiceContext, role: str, resource_id: uuid.UUID | None) -> None:
    builtin = BUILTIN_ROLES.get(role)
    if builtin is not None:
        if ctx.tenant is not None and builtin.global_only:
            raise Invalid(f"{role} can only be granted globally", code="role_not_allowed_here", field="role")
    elif ctx.tenant is None:
        if ctx.session.scalar(select(Role.id).where(Role.key == role)) is None:
            raise Invalid(f"unknown role {role!r}", code="unknown_role", field="role")
    elif role not in authz_engine.custom_roles(ctx.session, ctx.tenant.id):
        raise Invalid(f"unknown role {role!r}", code="unknown_role", field="role")
    authz_engine.require_grantable(ctx.session, ctx.principal, role, ctx.tenant_id, resource_id)


def create_grant(
    ctx: ServiceContext,
    *,
    principal_type: str,
    principal_id: uuid.UUID,
    role: str,
    resource_id: uuid.UUID | None = None,
    scope_tenant_id: uuid.UUID | None = None,
) -> GrantView:
    """In a tenant context: a tenant (or resource) grant. Without one: a global grant.

    `scope_tenant_id` is the tenant the caller named in the grant's scope, if any: it must be
    the context's tenant (none for a global grant), or the request contradicts itself (422).
    """
    if ctx.tenant is None:
        ctx.require(Perm.GRANT_MANAGE, global_scope=True)
        authz_engine.require_superadmin(ctx.principal, "grant global roles", code="global_grant_denied")
        if resource_id is not None:
            raise Invalid("resource grants belong to a tenant", code="invalid_scope", field="scope")
    else:
        ctx.require(Perm.GRANT_MANAGE)
    if scope_tenant_id is not None and scope_tenant_id != ctx.tenant_id:
        raise Invalid(
            "scope.tenant_id is not the tenant of this request",
            code="scope_mismatch",
            field="scope.tenant_id",
        )
    _check_principal(ctx, principal_type, principal_id)
    if (
        resource_id is not None
        and ctx.session.scalar(select(Resource.id).where(Resource.id == resource_id)) is None
    ):
        # Same answer for another tenant's resource as for none at all.
        raise Invalid("no such resource in this tenant", code="unknown_resource", field="scope.resource_id")
    _check_role(ctx, role, resource_id)
    grant: Grant | GlobalGrant
    if ctx.tenant is None:
        dup = select(GlobalGrant.id).where(
            GlobalGrant.principal_type == principal_type,
            GlobalGrant.principal_id == principal_id,
            GlobalGrant.role_key == role,
        )
        grant = GlobalGrant(principal_type=principal_type, principal_id=principal_id, role_key=role)
    else:
        dup = select(Grant.id).where(
            Grant.principal_type == principal_type,
            Grant.principal_id == principal_id,
            Grant.role_key == role,
            Grant.resource_id.is_(None) if resource_id is None else Grant.resource_id == resource_id,
        )
        grant = Grant(
            tenant_id=ctx.tenant.id,
            principal_type=principal_type,
            principal_id=principal_id,
            role_key=role,
            resource_id=resource_id,
        )
    if ctx.session.scalar(dup) is not None:
        raise Conflict("this grant exists", code="grant_exists")
    ctx.session.add(grant)
    ctx.session.flush()
    view = _view(grant)
    audit.record(
        ctx,
        "grant.create",
        target_type="grant",
        target_id=grant.id,
        after={
            "principal": f"{principal_type}:{principal_id}",
            "role": role,
            "scope": view.scope,
            "resource_id": resource_id,
        },
    )
    authz_cache.bump(ctx.session)
    return view


def delete_grant(ctx: ServiceContext, grant_id: uuid.UUID) -> None:
    grant: Grant | GlobalGrant | None
    if ctx.tenant is None:
        ctx.require(Perm.GRANT_MANAGE, global_scope=True)
        authz_engine.require_superadmin(ctx.principal, "revoke global roles", code="global_grant_denied")
        grant = ctx.session.get(GlobalGrant, grant_id)
    else:
        ctx.require(Perm.GRANT_MANAGE)
        grant = ctx.session.scalar(select(Grant).where(Grant.id == grant_id))
    if grant is None:
        raise NotFound("grant")
    view = _view(grant)
    if isinstance(grant, Grant):
        _check_role(ctx, grant.role_key, grant.resource_id)  # revoking needs the same standing as granting
        if grant.role_key == ADMIN_ROLE and grant.resource_id is None and grant.principal_type == "user":
            memberships.guard_last_admin(ctx, grant.principal_id)
        grant.deleted_at = utcnow()
    else:
        ctx.session.delete(grant)
    ctx.session.flush()
    audit.record(
        ctx,
        "grant.delete",
        target_type="grant",
        target_id=grant_id,
        before={
            "principal": f"{view.principal_type}:{view.principal_id}",
            "role": view.role,
            "scope": view.scope,
            "resource_id": view.resource_id,
        },
    )
    authz_cache.bump(ctx.session)

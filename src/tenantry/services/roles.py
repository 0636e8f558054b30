"""Roles: built-in (immutable), global custom (superadmins) and tenant-owned custom roles."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from tenantry.authz import CATALOG, Perm
from tenantry.authz import cache as authz_cache
from tenantry.authz import engine as authz_engine
from tenantry.authz.catalog import dangerous
from tenantry.authz.roles import BUILTIN_ROLES
from tenantry.db import scoping
from tenantry.db.tables import GlobalGrant, Grant, Role, TenantRole
from tenantry.db.types import utcnow
from tenantry.errors import (
    Conflict,
    Invalid,
    NotFound,
    PermissionDenied,
    PreconditionFailed,
    RiskNotAcknowledged,
)
from tenantry.services import audit
from tenantry.services.context import ServiceContext

KEY_RE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")


@dataclass
class RoleView:
    key: str
    name: str
    description: str
    permissions: list[str]
    builtin: bool
    scope: str  # global | tenant
    tenant_id: uuid.UUID | None = None
    id: uuid.UUID | None = None
    version: int = 1
    warnings: list[str] = field(default_factory=list)


def _builtin_view(key: str) -> RoleView:
    r = BUILTIN_ROLES[key]
    return RoleView(r.key, r.name, r.description, sorted(r.permissions()), True, "global")


def _custom_view(r: Role | TenantRole) -> RoleView:
    tenant_id = r.tenant_id if isinstance(r, TenantRole) else None
    return RoleView(
        r.key,
        r.name,
        r.description,
        sorted(r.permissions),
        False,
        "tenant" if tenant_id else "global",
        tenant_id,
        r.id,
        r.version,
    )


def list_roles(ctx: ServiceContext) -> list[RoleView]:
    """In a tenant: the roles usable there. Globally: built-in and global custom roles."""
    if ctx.tenant is not None:
        ctx.require(Perm.ROLE_READ)
        builtin = [_builtin_view(k) for k, r in BUILTIN_ROLES.items() if not r.global_only]
        own = [_custom_view(r) for r in ctx.session.scalars(select(TenantRole).order_by(TenantRole.key))]
    else:
        ctx.require(Perm.ROLE_READ, global_scope=True)
        builtin = [_builtin_view(k) for k in BUILTIN_ROLES]
        own = []
    glob = [_custom_view(r) for r in ctx.session.scalars(select(Role).order_by(Role.key))]
    return builtin + glob + own


def _find(ctx: ServiceContext, key: str) -> Role | TenantRole | None:
    if ctx.tenant is not None:
        found = ctx.session.scalar(select(TenantRole).where(TenantRole.key == key))
        if found is not None:
            return found
    return ctx.session.scalar(select(Role).where(Role.key == key))


def get_role(ctx: ServiceContext, key: str) -> RoleView:
    if ctx.tenant is not None:
        ctx.require(Perm.ROLE_READ)
    else:
        ctx.require(Perm.ROLE_READ, global_scope=True)
    if key in BUILTIN_ROLES and (ctx.tenant is None or not BUILTIN_ROLES[key].global_only):
        return _builtin_view(key)
    found = _find(ctx, key)
    if found is None:
        raise NotFound("role")
    return _custom_view(found)


def known_permissions(perms: list[str]) -> list[str]:
    """The permissions sorted and de-duplicated, every one from the catalog (422 otherwise).

    Shared by every permission set a client defines (roles, alias roles).
    """
    unknown = sorted(p for p in perms if p not in CATALOG)
    if unknown:
        raise Invalid(
            f"unknown permissions: {', '.join(unknown)}",
            code="unknown_permission",
            field="permissions",
            permissions=unknown,
        )
    return sorted(set(perms))


def require_risk_acknowledged(
    clean: list[str], *, acknowledge_risk: bool, previous: frozenset[str] = frozenset()
) -> list[str]:
    """A set that adds a `dangerous` permission needs `acknowledge_risk: true` (DESIGN §1 Role).

    Returns every dangerous permission of the set, for the answer's warnings.
    """
    risky = dangerous(frozenset(clean) - previous)
    if risky and not acknowledge_risk:
        raise RiskNotAcknowledged(
            f"dangerous permissions need acknowledge_risk: true ({', '.join(risky)})", permissions=risky
        )
    return dangerous(frozenset(clean))


def _validate_permissions(
    ctx: ServiceContext, perms: list[str], *, acknowledge_risk: bool, previous: frozenset[str] = frozenset()
) -> tuple[list[str], list[str]]:
    clean = known_permissions(perms)
    if ctx.tenant is not None:
        global_only = sorted(p for p in clean if "tenant" not in CATALOG[p].scopes)
        if global_only:
            raise Invalid(
                f"not grantable inside a tenant: {', '.join(global_only)}",
                code="permission_not_allowed_here",
                field="permissions",
                permissions=global_only,
            )
    authz_engine.require_held(ctx.session, ctx.principal, set(clean), "these permissions", ctx.tenant_id)
    return clean, require_risk_acknowledged(clean, acknowledge_risk=acknowledge_risk, previous=previous)


def _key_taken(ctx: ServiceContext, key: str) -> bool:
    if key in BUILTIN_ROLES or ctx.session.scalar(select(Role.id).where(Role.key == key)) is not None:
        return True
    if ctx.tenant is not None:
        return ctx.session.scalar(select(TenantRole.id).where(TenantRole.key == key)) is not None
    with scoping.cross_tenant(ctx.session):  # a new global key must not shadow any tenant's role
        return ctx.session.scalar(select(TenantRole.id).where(TenantRole.key == key)) is not None


def create_role(
    ctx: ServiceContext,
    *,
    key: str,
    name: str,
    description: str = "",
    permissions: list[str],
    acknowledge_risk: bool = False,
) -> RoleView:
    if ctx.tenant is not None:
        ctx.require(Perm.ROLE_MANAGE)
    else:
        ctx.require(Perm.ROLE_MANAGE, global_scope=True)
    key = key.strip().lower()
    if not KEY_RE.match(key):
        raise Invalid(
            "key must be 2-64 characters of a-z, 0-9 and _ starting with a letter",
            code="invalid_role_key",
            field="key",
        )
    if not name.strip():
        raise Invalid("name must not be empty", code="invalid_name", field="name")
    clean, risky = _validate_permissions(ctx, permissions, acknowledge_risk=acknowledge_risk)
    if _key_taken(ctx, key):
        raise Conflict(f"role key {key!r} is taken", code="role_key_taken", field="key")
    role: Role | TenantRole
    if ctx.tenant is not None:
        role = TenantRole(
            tenant_id=ctx.tenant.id, key=key, name=name.strip(), description=description, permissions=clean
        )
    else:
        role = Role(key=key, name=name.strip(), description=description, permissions=clean)
    ctx.session.add(role)
    ctx.session.flush()
    audit.record(
        ctx,
        "role.create",
        target_type="role",
        target_id=role.id,
        after={"key": key, "name": role.name, "permissions": clean, "acknowledged_risk": risky},
    )
    authz_cache.bump(ctx.session)
    view = _custom_view(role)
    view.warnings = [f"dangerous permission: {p}" for p in risky]
    return view


def _editable(ctx: ServiceContext, key: str) -> Role | TenantRole:
    # Security: ask first — someone who may not manage roles learns nothing (not even whether
    # a role exists or is built-in) and gets the same 403 whatever the key.
    if ctx.tenant is not None:
        ctx.require(Perm.ROLE_MANAGE)
    else:
        ctx.require(Perm.ROLE_MANAGE, global_scope=True)
    if key in BUILTIN_ROLES:
        raise Conflict("built-in roles cannot be changed", code="builtin_role_immutable")
    role = _find(ctx, key)
    if role is None:
        raise NotFound("role")
    if ctx.tenant is not None and isinstance(role, Role):
        raise PermissionDenied("global roles are managed by superadmins", code="global_role")
    return role


def update_role(
    ctx: ServiceContext,
    key: str,
    changes: dict[str, Any],
    *,
    acknowledge_risk: bool = False,
    if_match: int | None = None,
) -> RoleView:
    """Takes effect on the next request: the permission cache version is bumped."""
    role = _editable(ctx, key)
    if if_match is not None and if_match != role.version:
        raise PreconditionFailed("the role was changed by someone else; reload and retry")
    before = {"name": role.name, "description": role.description, "permissions": list(role.permissions)}
    risky: list[str] = []
    if "permissions" in changes:
        clean, risky = _validate_permissions(
            ctx,
            changes["permissions"],
            acknowledge_risk=acknowledge_risk,
            previous=frozenset(role.permissions),
        )
        role.permissions = clean
    if "name" in changes:
        if not (changes["name"] or "").strip():
            raise Invalid("name must not be empty", code="invalid_name", field="name")
        role.name = changes["name"].strip()
    if "description" in changes:
        role.description = changes["description"] or ""
    ctx.session.flush()
    after = {"name": role.name, "description": role.description, "permissions": list(role.permissions)}
    b, a = audit.diff(before, after)
    if a:
        audit.record(ctx, "role.update", target_type="role", target_id=role.id, before=b, after=a)
        authz_cache.bump(ctx.session)
    view = _custom_view(role)
    view.warnings = [f"dangerous permission: {p}" for p in risky]
    return view


def delete_role(ctx: ServiceContext, key: str) -> None:
    role = _editable(ctx, key)
    grants = select(func.count()).select_from(Grant).where(Grant.role_key == key)
    if ctx.tenant is not None:
        used = ctx.session.scalar(grants) or 0
    else:
        with scoping.cross_tenant(ctx.session):  # a global role may be granted in any tenant
            used = ctx.session.scalar(grants) or 0
        used += (
            ctx.session.scalar(
                select(func.count()).select_from(GlobalGrant).where(GlobalGrant.role_key == key)
            )
            or 0
        )
    if used:
        raise Conflict(
            f"the role is used by {used} grant(s); revoke them first", code="role_in_use", grants=used
        )
    role.deleted_at = utcnow()
    ctx.session.flush()
    audit.record(ctx, "role.delete", target_type="role", target_id=role.id, before={"key": role.key})
    authz_cache.bump(ctx.session)

"""Alias roles: the permission sets a parent user defines for its alias users (DESIGN §1 Alias user).

Owned by the parent (a user), not by a tenant. Managing them needs `alias.manage` wherever the
parent works; saving one never names a permission the parent does not hold itself at that moment
(the engine still caps every decision of an alias by what the parent holds then).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tenantry.authz import CATALOG, Perm
from tenantry.authz import cache as authz_cache
from tenantry.authz import engine as authz
from tenantry.db import scoping
from tenantry.db.tables import AliasRole, Membership, Resource, User
from tenantry.db.types import utcnow
from tenantry.errors import Conflict, Invalid, NotFound, PreconditionFailed
from tenantry.services import audit
from tenantry.services.context import ServiceContext
from tenantry.services.pagination import Page, decode_uuid_cursor, encode_cursor
from tenantry.services.roles import known_permissions, require_risk_acknowledged

# Security: delegation stops at one level. An alias never creates aliases and never steps into
# another account, whatever its parent may do (issue 10).
NOT_FOR_ALIASES = frozenset({Perm.ALIAS_MANAGE.value, Perm.IMPERSONATE.value})


@dataclass
class AliasRoleView:
    role: AliasRole
    warnings: list[str] = field(default_factory=list)


def _scopes(ctx: ServiceContext, user_id: uuid.UUID) -> list[uuid.UUID | None]:
    """Where a user's permissions can come from: global scope and each tenant it is a member of."""
    with scoping.cross_tenant(ctx.session):  # narrowed to this user's own memberships right here
        tenant_ids = sorted(
            set(ctx.session.scalars(select(Membership.tenant_id).where(Membership.user_id == user_id)))
        )
    return [None, *tenant_ids]


def _parent(ctx: ServiceContext) -> uuid.UUID:
    """The caller, once the engine agrees it holds `alias.manage` somewhere (its global grants or
    a tenant it works in): the parent whose alias roles the call works on."""
    authz.require_authenticated(ctx.principal)
    user_id = ctx.principal.user_id
    if user_id is not None:
        for scope in _scopes(ctx, user_id):
            if authz.check(ctx.session, ctx.principal, Perm.ALIAS_MANAGE, scope):
                authz.mark_decided(Perm.ALIAS_MANAGE)
                return user_id
    # Held nowhere: the engine's own refusal (403, with its `authz.denied` trace).
    authz.require(ctx.session, ctx.principal, Perm.ALIAS_MANAGE, None)
    raise AssertionError("unreachable: the engine refused above")  # pragma: no cover


def _not_held(ctx: ServiceContext, user_id: uuid.UUID, perms: list[str]) -> list[str]:
    """Those of `perms` the caller holds nowhere right now, as the engine says: not globally, not
    in a tenant it works in, and not on any resource there (a grant on one server counts)."""
    scopes = _scopes(ctx, user_id)
    held: frozenset[str] = frozenset()
    for scope in scopes:
        held |= authz.effective_permissions(ctx.session, ctx.principal, scope)
    missing = [p for p in perms if p not in held]
    return [p for p in missing if not _held_on_a_resource(ctx, p, scopes)]


def _held_on_a_resource(ctx: ServiceContext, perm: str, scopes: list[uuid.UUID | None]) -> bool:
    if "resource" not in CATALOG[perm].scopes:
        return False
    for tenant_id in scopes:
        if tenant_id is None:
            continue
        with scoping.in_tenant(ctx.session, tenant_id):
            visible = authz.visible_filter(ctx.session, ctx.principal, perm, tenant_id)
            if ctx.session.scalar(select(Resource.id).where(visible).limit(1)) is not None:
                return True
    return False


def _validate(
    ctx: ServiceContext,
    parent_id: uuid.UUID,
    perms: list[str],
    *,
    acknowledge_risk: bool,
    previous: frozenset[str] = frozenset(),
) -> tuple[list[str], list[str]]:
    clean = known_permissions(perms)
    excluded = sorted(p for p in clean if p in NOT_FOR_ALIASES)
    if excluded:
        raise Invalid(
            f"alias users never hold: {', '.join(excluded)}",
            code="permission_not_for_aliases",
            field="permissions",
            permissions=excluded,
        )
    missing = _not_held(ctx, parent_id, clean)
    if missing:
        # The ceiling at save time: an alias role names nothing its parent lacks (issue 10).
        raise Invalid(
            f"you do not hold: {', '.join(missing)}",
            code="permission_not_held",
            field="permissions",
            permissions=missing,
        )
    return clean, require_risk_acknowledged(clean, acknowledge_risk=acknowledge_risk, previous=previous)


def _clean_name(name: str | None) -> str:
    name = (name or "").strip()
    if not name:
        raise Invalid("name must not be empty", code="invalid_name", field="name")
    return name[:100]


def _name_taken(ctx: ServiceContext, owner_id: uuid.UUID, name: str, but: uuid.UUID | None = None) -> bool:
    stmt = select(AliasRole.id).where(AliasRole.owner_id == owner_id, AliasRole.name == name)
    if but is not None:
        stmt = stmt.where(AliasRole.id != but)
    return ctx.session.scalar(stmt) is not None


def _taken(name: str) -> Conflict:
    return Conflict(
        f"you already have an alias role named {name!r}", code="alias_role_name_taken", field="name"
    )


def _flush(ctx: ServiceContext, name: str) -> None:
    try:
        with ctx.session.begin_nested():
            ctx.session.flush()
    except IntegrityError:  # a concurrent request took the name first: the pre-check's answer
        raise _taken(name) from None


def _find(ctx: ServiceContext, owner_id: uuid.UUID, role_id: uuid.UUID) -> AliasRole:
    """One of `owner_id`'s alias roles; anyone else's is answered like one that does not exist."""
    role = ctx.session.scalar(
        select(AliasRole).where(AliasRole.id == role_id, AliasRole.owner_id == owner_id)
    )
    if role is None:
        raise NotFound("alias role")
    return role


def _snapshot(role: AliasRole) -> dict[str, Any]:
    return {"name": role.name, "permissions": list(role.permissions)}


def list_alias_roles(ctx: ServiceContext, *, limit: int, cursor: str | None = None) -> Page[AliasRole]:
    owner_id = _parent(ctx)
    stmt = select(AliasRole).where(AliasRole.owner_id == owner_id)
    if cursor:
        stmt = stmt.where(AliasRole.id > decode_uuid_cursor(cursor, "alias_roles"))
    rows = list(ctx.session.scalars(stmt.order_by(AliasRole.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor("alias_roles", str(rows[-1].id)) if more else None)


def get_alias_role(ctx: ServiceContext, role_id: uuid.UUID) -> AliasRole:
    return _find(ctx, _parent(ctx), role_id)


def create_alias_role(
    ctx: ServiceContext, *, name: str, permissions: list[str], acknowledge_risk: bool = False
) -> AliasRoleView:
    owner_id = _parent(ctx)
    name = _clean_name(name)
    clean, risky = _validate(ctx, owner_id, permissions, acknowledge_risk=acknowledge_risk)
    if _name_taken(ctx, owner_id, name):
        raise _taken(name)
    role = AliasRole(owner_id=owner_id, name=name, permissions=clean)
    ctx.session.add(role)
    _flush(ctx, name)
    audit.record(
        ctx,
        "alias_role.create",
        target_type="alias_role",
        target_id=role.id,
        tenant_id=None,
        after={**_snapshot(role), "acknowledged_risk": risky},
    )
    return AliasRoleView(role, [f"dangerous permission: {p}" for p in risky])


def update_alias_role(
    ctx: ServiceContext,
    role_id: uuid.UUID,
    changes: dict[str, Any],
    *,
    acknowledge_risk: bool = False,
    if_match: int | None = None,
) -> AliasRoleView:
    """Rename and/or replace the permissions. Re-checked against what the parent holds now."""
    owner_id = _parent(ctx)
    role = _find(ctx, owner_id, role_id)
    if if_match is not None and if_match != role.version:
        raise PreconditionFailed("the alias role was changed by someone else; reload and retry")
    before = _snapshot(role)
    risky: list[str] = []
    if "permissions" in changes:
        if changes["permissions"] is None:
            raise Invalid("permissions must be a list", code="invalid_permissions", field="permissions")
        role.permissions, risky = _validate(
            ctx,
            owner_id,
            list(changes["permissions"]),
            acknowledge_risk=acknowledge_risk,
            previous=frozenset(role.permissions),
        )
    if "name" in changes:
        name = _clean_name(changes["name"])
        if _name_taken(ctx, owner_id, name, but=role.id):
            raise _taken(name)
        role.name = name
    b, a = audit.diff(before, _snapshot(role))
    if a:
        _flush(ctx, role.name)
        audit.record(
            ctx,
            "alias_role.update",
            target_type="alias_role",
            target_id=role.id,
            tenant_id=None,
            before=b,
            after=a,
        )
        if "permissions" in a:
            authz_cache.bump(ctx.session)  # aliases holding this role act on it from their next request
    return AliasRoleView(role, [f"dangerous permission: {p}" for p in risky])


def delete_alias_role(ctx: ServiceContext, role_id: uuid.UUID) -> None:
    role = _find(ctx, _parent(ctx), role_id)
    if ctx.session.scalar(select(User.id).where(User.alias_role_id == role.id).limit(1)) is not None:
        raise Conflict("alias users hold this role: give them another one first", code="alias_role_in_use")
    role.deleted_at = utcnow()
    ctx.session.flush()
    audit.record(
        ctx,
        "alias_role.delete",
        target_type="alias_role",
        target_id=role.id,
        tenant_id=None,
        before=_snapshot(role),
    )
    authz_cache.bump(ctx.session)

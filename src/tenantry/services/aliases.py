"""Alias users: sub-accounts a parent user creates under `/me/aliases` (DESIGN §1 Alias user).

An alias is a user row with a parent and an alias role. It signs in with its own email and
password (or accepts an invitation), keeps its own 2FA, API keys and SSH keys, and acts under
its parent's ceiling: the engine gives it its alias role ∩ what the parent holds at that scope,
on its assigned resources if any. Managing aliases needs `alias.manage` (like alias roles); an
alias never holds that permission, so aliases never create aliases. Another user's alias is
answered as one that does not exist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select

from tenantry.authz import Perm
from tenantry.authz import cache as authz_cache
from tenantry.authz import engine as authz
from tenantry.db import core, scoping
from tenantry.db.tables import AliasResource, AliasRole, ApiKey, SshKey, User
from tenantry.errors import Invalid, NotFound
from tenantry.services import api_keys, audit, invitations, sessions, ssh_keys, trash, users
from tenantry.services.alias_roles import _parent as caller_as_parent
from tenantry.services.context import ServiceContext
from tenantry.services.pagination import Page, decode_uuid_cursor, encode_cursor

MAX_ASSIGNED = 500


def _parent(ctx: ServiceContext, *, writes: bool = False) -> uuid.UUID:
    parent_id = caller_as_parent(ctx)
    authz.require_authenticated(ctx.principal, writes=writes)
    return parent_id


def _find(ctx: ServiceContext, parent_id: uuid.UUID, alias_id: uuid.UUID) -> User:
    """One of `parent_id`'s aliases; anyone else's (or any other user) is answered as missing."""
    alias = ctx.session.scalar(select(User).where(User.id == alias_id, User.parent_id == parent_id))
    if alias is None:
        raise NotFound("alias")
    return alias


@dataclass
class AliasView:
    alias: User
    resource_ids: list[uuid.UUID]  # empty: all of the parent's resources


def _assigned(ctx: ServiceContext, alias_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    out: dict[uuid.UUID, list[uuid.UUID]] = {a: [] for a in alias_ids}
    for aid, rid in ctx.session.execute(
        select(AliasResource.alias_id, AliasResource.resource_id)
        .where(AliasResource.alias_id.in_(alias_ids))
        .order_by(AliasResource.resource_id)
    ):
        out[aid].append(rid)
    return out


def _view(ctx: ServiceContext, alias: User) -> AliasView:
    return AliasView(alias, _assigned(ctx, [alias.id])[alias.id])


def _role(ctx: ServiceContext, parent_id: uuid.UUID, role_id: uuid.UUID) -> AliasRole:
    role = ctx.session.scalar(
        select(AliasRole).where(AliasRole.id == role_id, AliasRole.owner_id == parent_id)
    )
    if role is None:
        # Another user's role gets the same answer as one that never existed.
        raise Invalid("no such alias role", code="unknown_alias_role", field="role_id")
    return role


def _resources(ctx: ServiceContext, resource_ids: list[uuid.UUID]) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(tenant, resource) for each id, each one the caller (the parent) may at least read.

    Security: one answer for a resource that does not exist, is in the trash, or lies outside
    what the parent sees — the parent learns nothing about other tenants' resources.
    """
    ids = sorted(set(resource_ids))
    if len(ids) > MAX_ASSIGNED:
        raise Invalid(f"at most {MAX_ASSIGNED} resources", code="too_many_resources", field="resource_ids")
    r = core.resources
    with scoping.cross_tenant(ctx.session):  # narrowed to these ids; each is checked below
        found = {
            rid: (tid, rtype)
            for rid, tid, rtype in ctx.session.execute(
                select(r.c.id, r.c.tenant_id, r.c.type).where(r.c.id.in_(ids), core.live(r))
            )
        }
    out: list[tuple[uuid.UUID, uuid.UUID]] = []
    for rid in ids:
        hit = found.get(rid)
        if hit is None or not authz.check(ctx.session, ctx.principal, f"{hit[1]}.read", hit[0], rid):
            raise Invalid(
                f"no such resource: {rid}",
                code="unknown_resource",
                field="resource_ids",
                resource_id=str(rid),
            )
        out.append((hit[0], rid))
    return out


def _assign(ctx: ServiceContext, alias: User, pairs: list[tuple[uuid.UUID, uuid.UUID]]) -> None:
    ctx.session.execute(delete(AliasResource).where(AliasResource.alias_id == alias.id))
    ctx.session.add_all(AliasResource(alias_id=alias.id, tenant_id=t, resource_id=r) for t, r in pairs)
    ctx.session.flush()


def _snapshot(ctx: ServiceContext, alias: User) -> dict[str, Any]:
    return {
        "email": alias.email,
        "first_name": alias.first_name,
        "last_name": alias.last_name,
        "active": alias.active,
        "role_id": alias.alias_role_id,
        "resource_ids": [str(r) for r in _view(ctx, alias).resource_ids],
    }


def _record(ctx: ServiceContext, action: str, alias: User, **kw: Any) -> None:
    audit.record(ctx, action, target_type="alias", target_id=alias.id, tenant_id=None, **kw)


# --- the parent's aliases -----------------------------------------------------------------------


def list_aliases(ctx: ServiceContext, *, limit: int, cursor: str | None = None) -> Page[AliasView]:
    parent_id = _parent(ctx)
    stmt = select(User).where(User.parent_id == parent_id)
    if cursor:
        stmt = stmt.where(User.id > decode_uuid_cursor(cursor, "aliases"))
    rows = list(ctx.session.scalars(stmt.order_by(User.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    assigned = _assigned(ctx, [a.id for a in rows])
    return Page(
        [AliasView(a, assigned[a.id]) for a in rows],
        encode_cursor("aliases", str(rows[-1].id)) if more else None,
    )


def list_user_aliases(
    ctx: ServiceContext, user_id: uuid.UUID, *, limit: int, cursor: str | None = None
) -> Page[AliasView]:
    """Account administration (the CLI): the aliases of one parent user."""
    ctx.require(Perm.USER_READ, global_scope=True)
    stmt = select(User).where(User.parent_id == user_id)
    if cursor:
        stmt = stmt.where(User.id > decode_uuid_cursor(cursor, "aliases"))
    rows = list(ctx.session.scalars(stmt.order_by(User.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    assigned = _assigned(ctx, [a.id for a in rows])
    return Page(
        [AliasView(a, assigned[a.id]) for a in rows],
        encode_cursor("aliases", str(rows[-1].id)) if more else None,
    )


def get_alias(ctx: ServiceContext, alias_id: uuid.UUID) -> AliasView:
    return _view(ctx, _find(ctx, _parent(ctx), alias_id))


def create_alias(
    ctx: ServiceContext,
    *,
    email: str,
    role_id: uuid.UUID,
    password: str | None = None,
    first_name: str = "",
    last_name: str = "",
    resource_ids: list[uuid.UUID] | None = None,
) -> AliasView:
    """A new alias of the caller. Without a password the alias is invited by mail."""
    parent_id = _parent(ctx, writes=True)
    role = _role(ctx, parent_id, role_id)
    pairs = _resources(ctx, resource_ids) if resource_ids else []
    alias = users.new_user(ctx, email=email, password=password, first_name=first_name, last_name=last_name)
    alias.parent_id, alias.alias_role_id = parent_id, role.id
    ctx.session.flush()
    if pairs:
        _assign(ctx, alias, pairs)
    _record(ctx, "alias.create", alias, after=_snapshot(ctx, alias))
    if password is None:
        invitations.send_invitation(ctx, alias)
    authz_cache.bump(ctx.session)
    return _view(ctx, alias)


_EDITABLE = {"first_name", "last_name", "role_id", "resource_ids", "active"}


def update_alias(ctx: ServiceContext, alias_id: uuid.UUID, changes: dict[str, Any]) -> AliasView:
    """Rename, change the role or the assignments (`resource_ids`: [] or None = all of the
    parent's), disable (`active: false`: sessions and keys stop at once) or enable."""
    parent_id = _parent(ctx, writes=True)
    alias = _find(ctx, parent_id, alias_id)
    unknown = sorted(set(changes) - _EDITABLE)
    if unknown:
        raise Invalid(f"{unknown[0]} cannot be changed", code="field_not_editable", field=unknown[0])
    before = _snapshot(ctx, alias)
    for key in ("first_name", "last_name"):
        if key in changes:
            setattr(alias, key, (changes[key] or "").strip()[:100])
    if "role_id" in changes:
        if changes["role_id"] is None:
            raise Invalid("an alias needs a role", code="unknown_alias_role", field="role_id")
        alias.alias_role_id = _role(ctx, parent_id, changes["role_id"]).id
    if "resource_ids" in changes:
        _assign(ctx, alias, _resources(ctx, changes["resource_ids"]) if changes["resource_ids"] else [])
    if "active" in changes:
        if not isinstance(changes["active"], bool):
            raise Invalid("active must be true or false", code="invalid_active", field="active")
        alias.active = changes["active"]
    ctx.session.flush()
    if before["active"] and not alias.active:
        sessions.revoke_user_sessions(ctx, alias.id)
        api_keys.revoke_all_of_user(ctx, alias.id, reason="owner_deactivated")
    b, a = audit.diff(before, _snapshot(ctx, alias))
    if a:
        action = (
            "alias.disable"
            if a.get("active") is False
            else "alias.enable"
            if a.get("active")
            else "alias.update"
        )
        _record(ctx, action, alias, before=b, after=a)
        authz_cache.bump(ctx.session)  # the alias acts on its new role/assignments from its next request
    return _view(ctx, alias)


def _family(alias_cond: Any) -> list[tuple[type[Any], Any]]:
    """What goes to the trash with the live aliases matching `alias_cond` (a condition on users):
    their API and SSH keys, then the aliases themselves (users.delete_user does the same for a
    parent's aliases, in the parent's batch)."""
    ids = select(User.id).where(alias_cond, User.deleted_at.is_(None)).scalar_subquery()
    return [
        (ApiKey, ApiKey.user_id.in_(ids) & ApiKey.deleted_at.is_(None)),
        (SshKey, SshKey.user_id.in_(ids) & SshKey.deleted_at.is_(None)),
        (User, alias_cond & User.deleted_at.is_(None)),
    ]


def delete_alias(ctx: ServiceContext, alias_id: uuid.UUID) -> uuid.UUID:
    """To the trash with its API and SSH keys; its sessions end at once."""
    parent_id = _parent(ctx, writes=True)
    alias = _find(ctx, parent_id, alias_id)
    before = _snapshot(ctx, alias)
    sessions.revoke_user_sessions(ctx, alias.id)
    batch = trash.move_to_trash(
        ctx,
        trash.Family(_family(User.id == alias.id)),
        root_type="alias",
        root_id=alias.id,
        root_name=alias.email,
        tenant_id=None,
        before=before,
    )
    return batch.id


# --- an alias's SSH keys, managed by its parent -------------------------------------------------


def _alias_for_keys(ctx: ServiceContext, alias_id: uuid.UUID, *, change: bool) -> uuid.UUID:
    parent_id = _parent(ctx)
    if change:
        # Security: SSH keys are credentials: a leaked API key must not plant one (as for /me).
        authz.require_session(ctx.principal, "manage SSH keys")
    return _find(ctx, parent_id, alias_id).id


def list_alias_ssh_keys(
    ctx: ServiceContext, alias_id: uuid.UUID, *, limit: int, cursor: str | None = None
) -> Page[SshKey]:
    return ssh_keys._list(ctx, _alias_for_keys(ctx, alias_id, change=False), limit, cursor)


def add_alias_ssh_key(ctx: ServiceContext, alias_id: uuid.UUID, *, name: str, public_key: str) -> SshKey:
    return ssh_keys._add(ctx, _alias_for_keys(ctx, alias_id, change=True), name, public_key)


def delete_alias_ssh_key(ctx: ServiceContext, alias_id: uuid.UUID, key_id: uuid.UUID) -> None:
    ssh_keys._delete(ctx, _alias_for_keys(ctx, alias_id, change=True), key_id)

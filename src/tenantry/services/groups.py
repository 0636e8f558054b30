"""Global groups of users; a grant to a group reaches every member."""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select

from tenantry.authz import Perm
from tenantry.authz import cache as authz_cache
from tenantry.db.tables import Group, GroupMember, User
from tenantry.db.types import utcnow
from tenantry.errors import Conflict, Invalid, NotFound
from tenantry.services import audit
from tenantry.services.context import ServiceContext


def _name(raw: str) -> str:
    name = raw.strip()
    if not name:
        raise Invalid("name must not be empty", code="invalid_name", field="name")
    return name[:100]


def list_groups(ctx: ServiceContext) -> list[Group]:
    ctx.require(Perm.GROUP_MANAGE, global_scope=True)
    return list(ctx.session.scalars(select(Group).order_by(Group.name)))


def get_group(ctx: ServiceContext, group_id: uuid.UUID) -> Group:
    ctx.require(Perm.GROUP_MANAGE, global_scope=True)
    group = ctx.session.scalar(select(Group).where(Group.id == group_id))
    if group is None:
        raise NotFound("group")
    return group


def _taken(ctx: ServiceContext, name: str, but: uuid.UUID | None = None) -> bool:
    stmt = select(Group.id).where(Group.name == name)
    if but:
        stmt = stmt.where(Group.id != but)
    return ctx.session.scalar(stmt) is not None


def create_group(ctx: ServiceContext, *, name: str, description: str = "") -> Group:
    ctx.require(Perm.GROUP_MANAGE, global_scope=True)
    name = _name(name)
    if _taken(ctx, name):
        raise Conflict("a group with this name exists", code="group_name_taken", field="name")
    group = Group(name=name, description=description)
    ctx.session.add(group)
    ctx.session.flush()
    audit.record(
        ctx, "group.create", target_type="group", target_id=group.id, after={"name": name}, tenant_id=None
    )
    return group


def update_group(ctx: ServiceContext, group: Group, *, name: str | None, description: str | None) -> Group:
    ctx.require(Perm.GROUP_MANAGE, global_scope=True)
    before = {"name": group.name, "description": group.description}
    if name is not None:
        name = _name(name)
        if _taken(ctx, name, but=group.id):
            raise Conflict("a group with this name exists", code="group_name_taken", field="name")
        group.name = name
    if description is not None:
        group.description = description
    ctx.session.flush()
    b, a = audit.diff(before, {"name": group.name, "description": group.description})
    if a:
        audit.record(
            ctx, "group.update", target_type="group", target_id=group.id, before=b, after=a, tenant_id=None
        )
    return group


def delete_group(ctx: ServiceContext, group: Group) -> None:
    """To the trash: its grants stop reaching anyone until it is restored."""
    ctx.require(Perm.GROUP_MANAGE, global_scope=True)
    group.deleted_at = utcnow()
    ctx.session.flush()
    audit.record(
        ctx,
        "group.delete",
        target_type="group",
        target_id=group.id,
        before={"name": group.name},
        tenant_id=None,
    )
    authz_cache.bump(ctx.session)


def list_group_members(ctx: ServiceContext, group: Group) -> list[User]:
    ctx.require(Perm.GROUP_MANAGE, global_scope=True)
    return list(
        ctx.session.scalars(
            select(User)
            .join(GroupMember, GroupMember.user_id == User.id)
            .where(GroupMember.group_id == group.id)
            .order_by(User.email)
        )
    )


def add_group_member(ctx: ServiceContext, group: Group, *, user_id: uuid.UUID) -> User:
    ctx.require(Perm.GROUP_MANAGE, global_scope=True)
    user = ctx.session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        raise NotFound("user")
    exists = ctx.session.scalar(
        select(GroupMember.user_id).where(GroupMember.group_id == group.id, GroupMember.user_id == user_id)
    )
    if exists is not None:
        raise Conflict("already in the group", code="already_member")
    ctx.session.add(GroupMember(group_id=group.id, user_id=user_id))
    ctx.session.flush()
    audit.record(
        ctx,
        "group.member_add",
        target_type="group",
        target_id=group.id,
        after={"user_id": user_id, "email": user.email},
        tenant_id=None,
    )
    authz_cache.bump(ctx.session)
    return user


def remove_group_member(ctx: ServiceContext, group: Group, *, user_id: uuid.UUID) -> None:
    ctx.require(Perm.GROUP_MANAGE, global_scope=True)
    n = ctx.session.execute(
        delete(GroupMember).where(GroupMember.group_id == group.id, GroupMember.user_id == user_id)
    ).rowcount  # type: ignore[attr-defined]
    if not n:
        raise NotFound("group member")
    audit.record(
        ctx,
        "group.member_remove",
        target_type="group",
        target_id=group.id,
        before={"user_id": user_id},
        tenant_id=None,
    )
    authz_cache.bump(ctx.session)

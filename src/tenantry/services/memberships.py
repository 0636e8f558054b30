"""Memberships: who works in which tenant, and with which tenant role.

A member's tenant roles are tenant-scope grants. Nobody hands out a role whose permissions
they do not hold themselves in that tenant, and a tenant keeps at least one tenant admin
unless a superadmin decides otherwise.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import func, select, update

from tenantry.authz import Perm
from tenantry.authz import engine as authz_engine
from tenantry.authz.roles import BUILTIN_ROLES
from tenantry.db import scoping
from tenantry.db.tables import Grant, Membership, Tenant, User
from tenantry.db.types import utcnow
from tenantry.errors import Conflict, Invalid, NotFound
from tenantry.ids import uuid7
from tenantry.services import audit, invitations, tenants, users
from tenantry.services.context import ServiceContext
from tenantry.services.pagination import Page, decode_uuid_cursor, encode_cursor

ADMIN_ROLE = "tenant_admin"


@dataclass
class MemberView:
    user: User
    roles: list[str]
    is_default: bool


def _tenant(ctx: ServiceContext) -> Tenant:
    if ctx.tenant is None:
        raise Invalid("no tenant selected", code="no_tenant")
    return ctx.tenant


def _check_role(ctx: ServiceContext, tenant: Tenant, role: str) -> None:
    builtin = BUILTIN_ROLES.get(role)
    if (builtin is not None and builtin.global_only) or (
        builtin is None and role not in authz_engine.custom_roles(ctx.session, tenant.id)
    ):
        raise Invalid(f"unknown tenant role {role!r}", code="unknown_role", field="role")
    authz_engine.require_grantable(ctx.session, ctx.principal, role, tenant.id)


def _roles_of(ctx: ServiceContext, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
    out: dict[uuid.UUID, list[str]] = {u: [] for u in user_ids}
    rows = ctx.session.execute(
        select(Grant.principal_id, Grant.role_key)
        .where(Grant.principal_type == "user", Grant.principal_id.in_(user_ids), Grant.resource_id.is_(None))
        .order_by(Grant.role_key)
    )
    for uid, role in rows:
        out[uid].append(role)
    return out


def _admin_count(ctx: ServiceContext) -> int:
    return (
        ctx.session.scalar(
            select(func.count(func.distinct(Grant.principal_id))).where(
                Grant.principal_type == "user",
                Grant.role_key == ADMIN_ROLE,
                Grant.resource_id.is_(None),
                # A deactivated admin runs nothing: they do not keep the tenant managed.
                Grant.principal_id.in_(select(User.id).where(User.active.is_(True))),
            )
        )
        or 0
    )


def guard_last_admin(ctx: ServiceContext, user_id: uuid.UUID) -> None:
    """The one rule: a tenant keeps a working tenant admin unless a superadmin decides otherwise."""
    roles = _roles_of(ctx, [user_id])[user_id]
    if ADMIN_ROLE in roles and _admin_count(ctx) <= 1 and not ctx.principal.is_superadmin:
        raise Conflict("a tenant needs at least one tenant admin", code="last_tenant_admin")


def _membership(ctx: ServiceContext, user_id: uuid.UUID) -> Membership:
    m = ctx.session.scalar(select(Membership).where(Membership.user_id == user_id))
    if m is None:
        raise NotFound("member")
    return m


def view(ctx: ServiceContext, user: User) -> MemberView:
    tenant = _tenant(ctx)
    return MemberView(user, _roles_of(ctx, [user.id])[user.id], user.default_tenant_id == tenant.id)


def list_members(
    ctx: ServiceContext, *, limit: int, cursor: str | None = None, q: str | None = None
) -> Page[MemberView]:
    tenant = _tenant(ctx)
    ctx.require(Perm.MEMBER_READ)
    stmt = select(User).join(Membership, Membership.user_id == User.id)
    if q:
        stmt = stmt.where(User.email.contains(q.strip().lower(), autoescape=True))
    if cursor:
        stmt = stmt.where(User.id > decode_uuid_cursor(cursor, "members"))
    rows = list(ctx.session.scalars(stmt.order_by(User.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    roles = _roles_of(ctx, [u.id for u in rows])
    return Page(
        [MemberView(u, roles[u.id], u.default_tenant_id == tenant.id) for u in rows],
        encode_cursor("members", str(rows[-1].id)) if more else None,
    )


def get_member(ctx: ServiceContext, user_id: uuid.UUID) -> MemberView:
    ctx.require(Perm.MEMBER_READ)
    _membership(ctx, user_id)
    user = ctx.session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        raise NotFound("member")
    return view(ctx, user)


def add_member(
    ctx: ServiceContext,
    tenant: Tenant,
    *,
    role: str,
    user: User | None = None,
    user_id: uuid.UUID | None = None,
    email: str | None = None,
) -> MemberView:
    """Add by user object, id, or email. An unknown email creates the user and invites them."""
    with scoping.in_tenant(ctx.session, tenant.id):
        ctx.require(Perm.MEMBER_MANAGE, tenant_id=tenant.id)
        _check_role(ctx, tenant, role)
        invite = False
        if user is None and user_id is not None:
            user = ctx.session.get(User, user_id)
            if user is None or user.deleted_at is not None:
                raise NotFound("user")
        elif user is None and email is not None:
            user = users.find_by_email(ctx, users.normalise_email(email))
            if user is None:
                user = users.new_user(ctx, email=email, password=None)
                invite = True
        if user is None:
            raise Invalid("give user_id or email", code="user_required")
        if ctx.session.scalar(select(Membership.id).where(Membership.user_id == user.id)) is not None:
            raise Conflict("already a member", code="already_member")
        ctx.session.add(Membership(tenant_id=tenant.id, user_id=user.id))
        ctx.session.add(
            Grant(tenant_id=tenant.id, principal_type="user", principal_id=user.id, role_key=role)
        )
        _default_if_unset(ctx, user, tenant.id)
        ctx.session.flush()
        audit.record(
            ctx,
            "member.add",
            target_type="user",
            target_id=user.id,
            after={"email": user.email, "role": role},
            tenant_id=tenant.id,
        )
        if invite:
            invitations.send_invitation(ctx, user, tenant=tenant)
        authz_engine.forget(ctx.session)
        return MemberView(user, [role], user.default_tenant_id == tenant.id)


def _default_if_unset(ctx: ServiceContext, user: User, tenant_id: uuid.UUID) -> None:
    """The first tenant becomes the default, by a conditional UPDATE outside the row's version.

    This is bookkeeping, not an edit of the user: two first memberships of one user at the same
    moment must both succeed (the first to commit wins the default), where a versioned write
    would fail the second with a stale-data error.
    """
    ctx.session.execute(
        update(User)
        .where(User.id == user.id, User.default_tenant_id.is_(None))
        .values(default_tenant_id=tenant_id),
        execution_options={"synchronize_session": False},
    )
    ctx.session.expire(user, ["default_tenant_id"])


def _clear_default(ctx: ServiceContext, user_id: uuid.UUID, tenant_id: uuid.UUID) -> None:
    """Unset the default where it is this tenant; unversioned for the same reason as above."""
    ctx.session.execute(
        update(User)
        .where(User.id == user_id, User.default_tenant_id == tenant_id)
        .values(default_tenant_id=None),
        execution_options={"synchronize_session": False},
    )
    user = ctx.session.get(User, user_id)
    if user is not None:
        ctx.session.expire(user, ["default_tenant_id"])


def change_member_role(ctx: ServiceContext, user_id: uuid.UUID, *, role: str) -> MemberView:
    """Replace the member's tenant-level roles with `role`."""
    tenant = _tenant(ctx)
    ctx.require(Perm.MEMBER_MANAGE)
    _check_role(ctx, tenant, role)
    _membership(ctx, user_id)
    before = _roles_of(ctx, [user_id])[user_id]
    if role != ADMIN_ROLE:
        guard_last_admin(ctx, user_id)
    ctx.session.execute(
        update(Grant)
        .where(Grant.principal_type == "user", Grant.principal_id == user_id, Grant.resource_id.is_(None))
        .values(deleted_at=utcnow(), deletion_batch_id=uuid7()),
        execution_options={"synchronize_session": False},
    )
    ctx.session.add(Grant(tenant_id=tenant.id, principal_type="user", principal_id=user_id, role_key=role))
    ctx.session.flush()
    audit.record(
        ctx,
        "member.role_change",
        target_type="user",
        target_id=user_id,
        before={"roles": before},
        after={"roles": [role]},
    )
    authz_engine.forget(ctx.session)
    user = ctx.session.get(User, user_id)
    assert user is not None
    return view(ctx, user)


def set_default_tenant(ctx: ServiceContext, user_id: uuid.UUID) -> MemberView:
    """An admin makes this tenant the member's default."""
    tenant = _tenant(ctx)
    ctx.require(Perm.MEMBER_MANAGE)
    _membership(ctx, user_id)
    user = ctx.session.get(User, user_id)
    assert user is not None
    before = user.default_tenant_id
    user.default_tenant_id = tenant.id
    ctx.session.flush()
    audit.record(
        ctx,
        "member.set_default",
        target_type="user",
        target_id=user_id,
        before={"default_tenant_id": before},
        after={"default_tenant_id": tenant.id},
    )
    return view(ctx, user)


def remove_member(ctx: ServiceContext, user_id: uuid.UUID) -> uuid.UUID:
    """Membership and the member's grants here go to the trash together."""
    tenant = _tenant(ctx)
    ctx.require(Perm.MEMBER_MANAGE)
    membership = _membership(ctx, user_id)
    guard_last_admin(ctx, user_id)
    batch, now = uuid7(), utcnow()
    ctx.session.execute(
        update(Grant)
        .where(Grant.principal_type == "user", Grant.principal_id == user_id)
        .values(deleted_at=now, deletion_batch_id=batch),
        execution_options={"synchronize_session": False},
    )
    membership.deleted_at, membership.deletion_batch_id = now, batch
    _clear_default(ctx, user_id, tenant.id)  # they pick a new one at next sign-in
    ctx.session.flush()
    audit.record(
        ctx, "member.remove", target_type="user", target_id=user_id, after={"deletion_batch_id": batch}
    )
    authz_engine.forget(ctx.session)
    return batch


def resend_invitation(ctx: ServiceContext, user_id: uuid.UUID) -> None:
    tenant = _tenant(ctx)
    ctx.require(Perm.MEMBER_MANAGE)
    _membership(ctx, user_id)
    user = ctx.session.get(User, user_id)
    if user is None or user.password_hash is not None:
        raise Conflict("this member has already set a password", code="already_accepted")
    if not user.active:
        # Security: accepting an invitation activates the account; a tenant admin must not undo
        # a deactivation that way.
        raise Conflict("this user is deactivated", code="user_inactive")
    invitations.send_invitation(ctx, user, tenant=tenant)


def my_tenants(ctx: ServiceContext) -> list[tuple[tenants.TenantView, list[str], bool]]:
    """The tenant switcher: the caller's tenants with counts, roles and the default flag."""
    me = users.me(ctx)
    rows = users.user_tenants(ctx, me.id)
    if ctx.principal.key_tenant_id is not None:
        # Security: a key restricted to one tenant does not reveal the owner's other tenants.
        rows = [(t, roles) for t, roles in rows if t.id == ctx.principal.key_tenant_id]
    counts = tenants.counts(ctx.session, [t.id for t, _ in rows])
    return [(tenants.TenantView(t, *counts[t.id]), roles, me.default_tenant_id == t.id) for t, roles in rows]


def has_any_tenant(ctx: ServiceContext) -> bool:
    """Whether the caller belongs to any tenant (for the clear `no_tenant` answer)."""
    if ctx.principal.user_id is None:
        return False
    return bool(users.user_tenants(ctx, ctx.principal.user_id))

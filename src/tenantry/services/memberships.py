"""Memberships: who works in which tenant, and with which tenant role.

A member's tenant roles are tenant-scope grants. Nobody hands out a role whose permissions
they do not hold themselves in that tenant, and a tenant keeps at least one tenant admin
unless a superadmin decides otherwise.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, update

from tenantry.authz import Perm, visibility
from tenantry.authz import engine as authz_engine
from tenantry.db import scoping
from tenantry.db.tables import Grant, Membership, MembershipInvitation, Tenant, User
from tenantry.db.types import utcnow
from tenantry.errors import Conflict, Invalid, NotFound
from tenantry.ids import uuid7
from tenantry.mail import outbox
from tenantry.services import audit, invitations, membership_invitations, tenants, users
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
    if not membership_invitations.role_available(ctx, tenant.id, role):
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


def _view(ctx: ServiceContext, user: User) -> MemberView:
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
    # Keyset on the membership's user id (equal to the user's by the join): the tenant's live
    # membership index is already in that order, so a page costs the same at any tenant size.
    if cursor:
        stmt = stmt.where(Membership.user_id > decode_uuid_cursor(cursor, "members"))
    rows = list(ctx.session.scalars(stmt.order_by(Membership.user_id).limit(limit + 1)))
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
    return _view(ctx, user)


def _may_attach_directly(ctx: ServiceContext) -> bool:
    """Whoever administers accounts (superadmins) may attach one at once; everyone else asks it."""
    return ctx.can(Perm.USER_MANAGE, global_scope=True)


def add_member(
    ctx: ServiceContext,
    tenant: Tenant,
    *,
    role: str,
    user: User | None = None,
    user_id: uuid.UUID | None = None,
    email: str | None = None,
) -> MemberView | MembershipInvitation:
    """Add by user object, id, or email.

    Account administrators attach at once (an unknown email creates the user and mails the
    set-password link). Anyone else leaves an invitation the account must accept, and gets the
    same answer whether or not an account exists.
    """
    with scoping.in_tenant(ctx.session, tenant.id):
        ctx.require(Perm.MEMBER_MANAGE, tenant_id=tenant.id)
        _check_role(ctx, tenant, role)
        if user is None and user_id is None and email is None:
            raise Invalid("give user_id or email", code="user_required")
        if not _may_attach_directly(ctx):
            return _invite(ctx, tenant, role=role, user=user, user_id=user_id, email=email)
        invite = False
        if user is None and user_id is not None:
            user = _live_user(ctx, user_id)
        elif user is None and email is not None:
            user = users.find_by_email(ctx, users.normalise_email(email))
            if user is None:
                user = users.new_user(ctx, email=email, password=None)
                invite = True
        assert user is not None
        _refuse_member(ctx, user)
        membership_invitations.join(ctx, tenant, user, role, via="direct")
        if invite:
            invitations.send_invitation(ctx, user, tenant=tenant)
        return MemberView(user, [role], user.default_tenant_id == tenant.id)


def _live_user(ctx: ServiceContext, user_id: uuid.UUID) -> User:
    user = ctx.session.get(User, user_id)
    if user is None or user.deleted_at is not None:
        raise NotFound("user")
    return user


def _refuse_member(ctx: ServiceContext, user: User) -> None:
    # Telling "already a member" reveals nothing: members are listed to the same admins.
    if ctx.session.scalar(select(Membership.id).where(Membership.user_id == user.id)) is not None:
        raise Conflict("already a member", code="already_member")


def _invite(
    ctx: ServiceContext,
    tenant: Tenant,
    *,
    role: str,
    user: User | None,
    user_id: uuid.UUID | None,
    email: str | None,
) -> MembershipInvitation:
    """One invitation row, one mail, one tenant audit event: the same for every address.

    Security: nothing the inviting admin sees (answer, pending list, their audit log) depends
    on whether the address already had an account; the account's own events stay global.
    """
    if user is None and user_id is not None:
        user = _live_user(ctx, user_id)
    elif user is None and email is not None:
        address = users.normalise_email(email)
        # A trashed account keeps its address: invite it like any other (it sees it if restored).
        user = ctx.session.scalar(
            select(User).where(User.email == address).execution_options(include_deleted=True)
        )
        if user is None:
            user = users.new_user(ctx, email=address, password=None)
    assert user is not None
    _refuse_member(ctx, user)
    now = utcnow()
    expires_at = now + timedelta(days=ctx.settings.invitation_days)
    inv = ctx.session.scalar(select(MembershipInvitation).where(MembershipInvitation.user_id == user.id))
    if inv is None:
        inv = MembershipInvitation(tenant_id=tenant.id, id=uuid7(), user_id=user.id, email=user.email)
        ctx.session.add(inv)
    # Asking again renews the invitation (role, inviter, expiry) and sends the mail again.
    inv.role_key = role
    inv.invited_by_id = ctx.principal.user_id
    inv.invited_by = ctx.principal.label
    inv.expires_at = expires_at
    ctx.session.flush()
    if user.deleted_at is None:
        if user.password_hash is None and user.active:
            # No password yet: the account-creating link; setting the password accepts.
            invitations.send_invitation(ctx, user, tenant=tenant, audit_in_tenant=False)
        else:
            outbox.enqueue(
                ctx.session,
                kind="membership_invitation",
                to=user.email,
                language=user.language,
                tenant_id=tenant.id,
                context={
                    "link": f"{ctx.settings.public_url}/login",
                    "inviter": ctx.principal.label or "An administrator",
                    "tenant_name": tenant.name,
                    "role": role,
                    "expires_at": expires_at.strftime("%Y-%m-%d %H:%M UTC"),
                },
            )
    audit.record(
        ctx,
        "member.invite",
        target_type="membership_invitation",
        target_id=inv.id,
        after={"email": inv.email, "role": role, "expires_at": expires_at},
        tenant_id=tenant.id,
    )
    return inv


def list_invitations(
    ctx: ServiceContext, *, limit: int, cursor: str | None = None
) -> Page[MembershipInvitation]:
    """Open and expired invitations of the tenant, for those who manage its members."""
    _tenant(ctx)
    ctx.require(Perm.MEMBER_MANAGE)
    stmt = select(MembershipInvitation)
    if cursor:
        stmt = stmt.where(MembershipInvitation.id > decode_uuid_cursor(cursor, "member_invitations"))
    rows = list(ctx.session.scalars(stmt.order_by(MembershipInvitation.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor("member_invitations", str(rows[-1].id)) if more else None)


def revoke_invitation(ctx: ServiceContext, invitation_id: uuid.UUID) -> None:
    """Withdraw an invitation before it is answered (the account, if any, is left alone)."""
    _tenant(ctx)
    ctx.require(Perm.MEMBER_MANAGE)
    inv = ctx.session.scalar(select(MembershipInvitation).where(MembershipInvitation.id == invitation_id))
    if inv is None:
        raise NotFound("invitation")
    ctx.session.delete(inv)
    ctx.session.flush()
    audit.record(
        ctx,
        "member.invite_revoke",
        target_type="membership_invitation",
        target_id=inv.id,
        before={"email": inv.email, "role": inv.role_key},
    )


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
    return _view(ctx, user)


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
    return _view(ctx, user)


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


@dataclass
class MyTenant:
    """One row of the tenant switcher.

    `access` says why the caller may work there: `member` (belongs to it, with `roles`),
    `superadmin`, or `cross_view` (sees it through a global grant such as `tenant.cross_view`,
    without membership).
    """

    view: tenants.TenantView
    roles: list[str]
    is_default: bool
    access: str


def my_tenants(ctx: ServiceContext) -> list[MyTenant]:
    """The tenant switcher: every tenant the caller may work in, with status, counts and roles.

    The same tenants `GET /tenants` shows them (one visibility filter), in a fixed number of
    statements however many there are: the tenants, the caller's memberships and tenant roles,
    and two grouped counts.
    """
    me = users.me(ctx)
    with scoping.cross_tenant(ctx.session):
        # The visibility filter is the tenant boundary for this one statement (as in list_tenants).
        visible = list(
            ctx.session.scalars(
                select(Tenant)
                .where(visibility.tenant_filter(ctx.session, ctx.principal))
                .order_by(Tenant.slug)
            )
        )
    roles = {t.id: r for t, r in users.user_tenants(ctx, me.id)}
    counts = tenants.counts(ctx.session, [t.id for t in visible])
    return [
        MyTenant(
            view=tenants.TenantView(t, *counts[t.id]),
            roles=roles.get(t.id, []),
            is_default=me.default_tenant_id == t.id,
            access=_access(ctx, member=t.id in roles),
        )
        for t in visible
    ]


def _access(ctx: ServiceContext, *, member: bool) -> str:
    if member:
        return "member"
    return "superadmin" if ctx.principal.is_superadmin else "cross_view"

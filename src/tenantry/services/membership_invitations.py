"""Joining a tenant: the one place a membership is made, and the invitee's side of an invitation.

A tenant admin cannot pull an account into their tenant (DESIGN §1 Membership): they leave an
invitation (`memberships.add_member`), which the account sees under `/me/invitations` and
accepts or declines. A brand-new address gets the account-creating link instead; setting the
password through it is the acceptance (`join_on_signup`). This module sits below `memberships`,
`tenants` and `invitations`, which all call `join`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Select, select, update

from tenantry.authz import Perm
from tenantry.authz import engine as authz_engine
from tenantry.authz.principal import Principal
from tenantry.authz.roles import BUILTIN_ROLES
from tenantry.db import scoping
from tenantry.db.tables import Grant, Membership, MembershipInvitation, Tenant, User
from tenantry.db.types import utcnow
from tenantry.errors import Conflict, NotFound, PermissionDenied
from tenantry.services import audit
from tenantry.services.context import ServiceContext


@dataclass
class MyInvitation:
    invitation: MembershipInvitation
    tenant: Tenant


@dataclass
class Joined:
    tenant: Tenant
    role: str
    is_default: bool


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


def join(ctx: ServiceContext, tenant: Tenant, user: User, role: str, *, via: str) -> None:
    """Membership + tenant role (+ default tenant if none), audited as `member.add`.

    Caller authorizes (the engine decided, or the invitee accepted). Any open invitation of the
    user to this tenant is settled by it.
    """
    with scoping.in_tenant(ctx.session, tenant.id):
        ctx.session.add(Membership(tenant_id=tenant.id, user_id=user.id))
        ctx.session.add(
            Grant(tenant_id=tenant.id, principal_type="user", principal_id=user.id, role_key=role)
        )
        _default_if_unset(ctx, user, tenant.id)
        for inv in ctx.session.scalars(
            select(MembershipInvitation).where(MembershipInvitation.user_id == user.id)
        ):
            ctx.session.delete(inv)
        ctx.session.flush()
        audit.record(
            ctx,
            "member.add",
            target_type="user",
            target_id=user.id,
            after={"email": user.email, "role": role, "via": via},
            tenant_id=tenant.id,
        )
    authz_engine.forget(ctx.session)


def creator_joins(ctx: ServiceContext, tenant: Tenant) -> None:
    """Whoever creates a tenant runs it: its tenant admin, unless they already run every tenant.

    Asked of the engine: a superadmin (or a global grant covering every tenant's members) can
    manage the new tenant already and is not made a member of each tenant they create. Caller
    authorizes (`tenant.create`).
    """
    if ctx.principal.user_id is None or ctx.can(Perm.MEMBER_MANAGE, tenant_id=tenant.id):
        return
    creator = ctx.session.get(User, ctx.principal.user_id)
    if creator is not None:
        join(ctx, tenant, creator, "tenant_admin", via="tenant.create")


def role_available(ctx: ServiceContext, tenant_id: uuid.UUID, role: str) -> bool:
    """Whether `role` can still be held in the tenant (a custom role may have gone since)."""
    builtin = BUILTIN_ROLES.get(role)
    if builtin is not None:
        return not builtin.global_only
    return role in authz_engine.custom_roles(ctx.session, tenant_id)


# --- the invitee's side ----------------------------------------------------------------------------


def _me(ctx: ServiceContext) -> uuid.UUID:
    authz_engine.require_authenticated(ctx.principal)
    if ctx.principal.user_id is None:
        raise PermissionDenied("sign in first")
    return ctx.principal.user_id


def _answerable(ctx: ServiceContext, invitation_id: uuid.UUID) -> MyInvitation:
    """One's own open invitation, answered from a signed-in session.

    Joining a tenant is the account holder's own decision, not something a key does; what a key
    could not even see (another tenant's) is a 404 first.
    """
    mine = _mine(ctx, _me(ctx), invitation_id)
    if ctx.principal.key_id is not None:
        raise PermissionDenied("answer invitations from a signed-in session", code="session_required")
    return mine


def _visible_to(principal: Principal, user_id: uuid.UUID) -> Select[MembershipInvitation, Tenant]:
    stmt = (
        select(MembershipInvitation, Tenant)
        .join(Tenant, Tenant.id == MembershipInvitation.tenant_id)
        .where(MembershipInvitation.user_id == user_id, MembershipInvitation.expires_at > utcnow())
    )
    if principal.key_tenant_id is not None:
        # Security: a key restricted to one tenant does not reveal invitations to others.
        stmt = stmt.where(MembershipInvitation.tenant_id == principal.key_tenant_id)
    return stmt


def list_mine(ctx: ServiceContext) -> list[MyInvitation]:
    """Open (unexpired) invitations to the caller's own account, newest first."""
    user_id = _me(ctx)
    # The caller's own rows across tenants: the explicit escape, narrowed to their user id.
    with scoping.cross_tenant(ctx.session):
        rows = ctx.session.execute(
            _visible_to(ctx.principal, user_id).order_by(MembershipInvitation.id.desc())
        ).all()
    return [MyInvitation(inv, tenant) for inv, tenant in rows]


def _mine(ctx: ServiceContext, user_id: uuid.UUID, invitation_id: uuid.UUID) -> MyInvitation:
    with scoping.cross_tenant(ctx.session):
        row = ctx.session.execute(
            _visible_to(ctx.principal, user_id).where(MembershipInvitation.id == invitation_id)
        ).first()
    if row is None:
        # Someone else's, another tenant's, expired or unknown: all the same answer.
        raise NotFound("invitation")
    return MyInvitation(row[0], row[1])


def accept(ctx: ServiceContext, invitation_id: uuid.UUID) -> Joined:
    """Become a member with the invited role."""
    mine = _answerable(ctx, invitation_id)
    inv, tenant = mine.invitation, mine.tenant
    user_id = inv.user_id
    user = ctx.session.get(User, user_id)
    if user is None:
        raise NotFound("invitation")
    with scoping.in_tenant(ctx.session, tenant.id):
        if ctx.session.scalar(select(Membership.id).where(Membership.user_id == user_id)) is not None:
            raise Conflict("you are already a member of this tenant", code="already_member")
        if not role_available(ctx, tenant.id, inv.role_key):
            raise Conflict(
                "the role you were invited with no longer exists; ask for a new invitation",
                code="role_unavailable",
            )
        audit.record(
            ctx,
            "member.invitation_accept",
            target_type="membership_invitation",
            target_id=inv.id,
            after={"email": inv.email, "role": inv.role_key},
            tenant_id=tenant.id,
        )
        join(ctx, tenant, user, inv.role_key, via="invitation")
    return Joined(tenant, inv.role_key, user.default_tenant_id == tenant.id)


def decline(ctx: ServiceContext, invitation_id: uuid.UUID) -> None:
    """Say no: the invitation is gone and the tenant's audit log says so."""
    mine = _answerable(ctx, invitation_id)
    inv, tenant = mine.invitation, mine.tenant
    with scoping.in_tenant(ctx.session, tenant.id):
        ctx.session.delete(inv)
        ctx.session.flush()
        audit.record(
            ctx,
            "member.invitation_decline",
            target_type="membership_invitation",
            target_id=inv.id,
            after={"email": inv.email, "role": inv.role_key},
            tenant_id=tenant.id,
        )


def join_on_signup(ctx: ServiceContext, user: User, tenant_id: uuid.UUID | None) -> None:
    """Setting the first password through a tenant's invitation link accepts that invitation.

    The caller has just redeemed the single-use link mailed to this address, which is the
    account holder's answer. Other tenants' invitations stay open under `/me/invitations`.
    """
    if tenant_id is None:
        return
    with scoping.in_tenant(ctx.session, tenant_id):
        row = ctx.session.execute(
            select(MembershipInvitation, Tenant)
            .join(Tenant, Tenant.id == MembershipInvitation.tenant_id)
            .where(MembershipInvitation.user_id == user.id, MembershipInvitation.expires_at > utcnow())
        ).first()
        if row is None:
            return  # revoked, expired, or the tenant is gone: the account simply has no tenant yet
        inv, tenant = row
        if not role_available(ctx, tenant_id, inv.role_key):
            return  # it stays listed; accepting it later explains why it cannot be
        if ctx.session.scalar(select(Membership.id).where(Membership.user_id == user.id)) is not None:
            ctx.session.delete(inv)
            return
        audit.record(
            ctx,
            "member.invitation_accept",
            target_type="membership_invitation",
            target_id=inv.id,
            after={"email": inv.email, "role": inv.role_key},
            tenant_id=tenant_id,
        )
        join(ctx, tenant, user, inv.role_key, via="invitation")

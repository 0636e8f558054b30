"""User accounts: global identities administered by superadmins, and one's own profile."""

from __future__ import annotations

import uuid
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import Select, func, select, update

from tenantry.authz import Perm
from tenantry.authz import cache as authz_cache
from tenantry.authz.engine import require_authenticated, require_superadmin
from tenantry.db import core, scoping
from tenantry.db.tables import (
    AliasRole,
    ApiKey,
    DeletionBatch,
    Grant,
    Membership,
    SshKey,
    Tenant,
    User,
    UserToken,
)
from tenantry.db.types import utcnow
from tenantry.errors import Conflict, Invalid, NotFound
from tenantry.ids import uuid7
from tenantry.security.password_policy import check_password
from tenantry.services import api_keys, audit, credentials, invitations, sessions, settings, trash
from tenantry.services.context import ServiceContext
from tenantry.services.pagination import Page, decode_uuid_cursor, encode_cursor

LANGUAGES = ("en", "de")
THEMES = ("light", "dark", "system")
PREFERENCE_KEYS = {"hide_ai": bool, "compact_tables": bool, "show_tips": bool}


def normalise_email(raw: str) -> str:
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise Invalid(str(exc), code="invalid_email", field="email") from None
    return result.normalized.lower()


def find_by_email(ctx: ServiceContext, email: str) -> User | None:
    return ctx.session.scalar(select(User).where(User.email == email.strip().lower()))


def snapshot(u: User) -> dict[str, Any]:
    return {
        "email": u.email,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "active": u.active,
        "is_superadmin": u.is_superadmin,
        "default_tenant_id": u.default_tenant_id,
    }


def _require_free_email(ctx: ServiceContext, email: str) -> None:
    exists = ctx.session.scalar(
        select(User.id).where(User.email == email).execution_options(include_deleted=True)
    )
    if exists is not None:
        raise Conflict("a user with this email exists", code="email_taken", field="email")


def new_user(
    ctx: ServiceContext,
    *,
    email: str,
    password: str | None,
    first_name: str = "",
    last_name: str = "",
    is_superadmin: bool = False,
) -> User:
    """Create the row; callers have authorized (user administration, or adding a member by email)."""
    email = normalise_email(email)
    _require_free_email(ctx, email)
    password_hash = None
    if password is not None:
        # A new account belongs to no tenant yet: the system values apply.
        check_password(
            password,
            email=email,
            has_2fa=False,
            settings=settings.effective(ctx.session, ctx.settings, None).security,
        )
    if password:
        # Made before the first write (no write lock held meanwhile); the address is checked
        # again in the transaction that inserts.
        password_hash = credentials.hash_new_password(ctx, password)
        _require_free_email(ctx, email)
    user = User(
        id=uuid7(),
        email=email,
        first_name=first_name.strip()[:100],
        last_name=last_name.strip()[:100],
        password_hash=password_hash,
        password_changed_at=utcnow() if password else None,
        is_superadmin=is_superadmin,
    )
    ctx.session.add(user)
    ctx.session.flush()
    audit.record(
        ctx, "user.create", target_type="user", target_id=user.id, after=snapshot(user), tenant_id=None
    )
    return user


def create_user(
    ctx: ServiceContext,
    *,
    email: str,
    password: str | None = None,
    first_name: str = "",
    last_name: str = "",
    is_superadmin: bool = False,
) -> User:
    """Superadmin administration. Without a password the user is invited by mail."""
    ctx.require(Perm.USER_MANAGE, global_scope=True)
    user = new_user(
        ctx,
        email=email,
        password=password,
        first_name=first_name,
        last_name=last_name,
        is_superadmin=is_superadmin,
    )
    if password is None:
        invitations.send_invitation(ctx, user)
    else:
        # The password was hashed between two transactions: the permission is confirmed again
        # in the one that writes (a revocation meanwhile wins).
        ctx.require(Perm.USER_MANAGE, global_scope=True)
    return user


def resend_invitation(ctx: ServiceContext, user: User) -> None:
    """A new link; the previous one stops working."""
    ctx.require(Perm.USER_MANAGE, global_scope=True)
    if user.password_hash is not None:
        raise Conflict("this user has already set a password", code="already_accepted")
    invitations.send_invitation(ctx, user)


def _tenant_filter(tenant_id: uuid.UUID) -> Any:
    m = core.memberships
    return User.id.in_(select(m.c.user_id).where(core.in_tenant(m, tenant_id)))


def list_users(
    ctx: ServiceContext,
    *,
    limit: int,
    cursor: str | None = None,
    email: str | None = None,
    active: bool | None = None,
    tenant_id: uuid.UUID | None = None,
    deleted: bool = False,
) -> Page[User]:
    ctx.require(Perm.USER_READ, global_scope=True)
    stmt: Select[User] = select(User)
    if deleted:
        stmt = stmt.where(User.deleted_at.is_not(None)).execution_options(include_deleted=True)
    if email:
        stmt = stmt.where(User.email.contains(email.strip().lower(), autoescape=True))
    if active is not None:
        stmt = stmt.where(User.active.is_(active))
    if tenant_id is not None:
        stmt = stmt.where(_tenant_filter(tenant_id))
    if cursor:
        stmt = stmt.where(User.id > decode_uuid_cursor(cursor, "users"))
    with scoping.cross_tenant(ctx.session):  # the tenant filter reads memberships across tenants
        rows = list(ctx.session.scalars(stmt.order_by(User.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor("users", str(rows[-1].id)) if more else None)


def get_user(ctx: ServiceContext, user_id: uuid.UUID, *, deleted: bool = False) -> User:
    ctx.require(Perm.USER_READ, global_scope=True)
    stmt = select(User).where(User.id == user_id)
    if deleted:
        stmt = stmt.where(User.deleted_at.is_not(None)).execution_options(include_deleted=True)
    user = ctx.session.scalar(stmt)
    if user is None:
        raise NotFound("user")
    return user


def _superadmin_count(ctx: ServiceContext) -> int:
    return (
        ctx.session.scalar(
            select(func.count()).select_from(User).where(User.is_superadmin.is_(True), User.active.is_(True))
        )
        or 0
    )


def update_user(ctx: ServiceContext, user: User, changes: dict[str, Any]) -> User:
    """Names, `active` and `is_superadmin`. Deactivation revokes sessions and keys for good."""
    ctx.require(Perm.USER_MANAGE, global_scope=True)
    allowed = {"first_name", "last_name", "active", "is_superadmin"}
    if set(changes) - allowed:
        raise Invalid("email and other fields cannot be changed here", code="field_not_editable")
    if "is_superadmin" in changes:
        require_superadmin(ctx.principal, "change the superadmin flag")
    removing_admin = user.is_superadmin and (
        changes.get("is_superadmin") is False or changes.get("active") is False
    )
    if user.id == ctx.principal.user_id and removing_admin:
        raise Conflict("you cannot demote or deactivate yourself", code="cannot_modify_self")
    if removing_admin and _superadmin_count(ctx) <= 1:
        raise Conflict("the last superadmin must stay", code="last_superadmin")
    before = snapshot(user)
    for k, v in changes.items():
        setattr(user, k, v.strip()[:100] if isinstance(v, str) else v)
    ctx.session.flush()
    if before["active"] and not user.active:
        sessions.revoke_user_sessions(ctx, user.id)
        api_keys.revoke_all_of_user(ctx, user.id, reason="owner_deactivated")
        # Security: a pending invitation or reset link must not outlive the deactivation
        # (accepting an invitation sets `active` again).
        ctx.session.execute(
            update(UserToken)
            .where(UserToken.user_id == user.id, UserToken.used_at.is_(None))
            .values(used_at=utcnow())
        )
    if before["is_superadmin"] != user.is_superadmin or before["active"] != user.active:
        authz_cache.bump(ctx.session)
    b, a = audit.diff(before, snapshot(user))
    if a:
        action = "user.deactivate" if a.get("active") is False else "user.update"
        audit.record(ctx, action, target_type="user", target_id=user.id, before=b, after=a, tenant_id=None)
    return user


def _family(user: User) -> trash.Family:
    """The user and what is theirs: memberships, their grants, API keys, SSH keys, alias roles,
    and their live alias users with those aliases' keys (restored with the parent's batch)."""
    aliases = (User.parent_id == user.id) & User.deleted_at.is_(None)
    alias_ids = select(User.id).where(aliases).scalar_subquery()
    return trash.Family(
        [
            (ApiKey, ApiKey.user_id.in_(alias_ids) & ApiKey.deleted_at.is_(None)),
            (SshKey, SshKey.user_id.in_(alias_ids) & SshKey.deleted_at.is_(None)),
            (User, aliases),
            (Membership, Membership.user_id == user.id),
            (Grant, (Grant.principal_type == "user") & (Grant.principal_id == user.id)),
            (ApiKey, ApiKey.user_id == user.id),
            (SshKey, SshKey.user_id == user.id),
            (AliasRole, AliasRole.owner_id == user.id),
            (User, User.id == user.id),
        ]
    )


def deletion_impact(ctx: ServiceContext, user: User) -> dict[str, int]:
    ctx.require(Perm.USER_MANAGE, global_scope=True)
    counts = _family(user).counts(ctx)
    aliases = counts.pop("users", 1) - 1  # the user itself, and its alias users
    if aliases:
        counts["aliases"] = aliases
    return counts


def delete_user(ctx: ServiceContext, user: User) -> uuid.UUID:
    """To the trash with memberships, grants and keys; sessions and keys stop at once."""
    ctx.require(Perm.USER_MANAGE, global_scope=True)
    if user.id == ctx.principal.user_id:
        raise Conflict("you cannot delete yourself", code="cannot_modify_self")
    if user.is_superadmin and _superadmin_count(ctx) <= 1:
        raise Conflict("the last superadmin must stay", code="last_superadmin")
    before = snapshot(user)
    sessions.revoke_user_sessions(ctx, user.id)
    batch = trash.move_to_trash(
        ctx,
        _family(user),
        root_type="user",
        root_id=user.id,
        root_name=user.email,
        tenant_id=None,
        before=before,
    )
    return batch.id


def restore_user(ctx: ServiceContext, user: User) -> User:
    """Bring back the user with the memberships, grants and keys deleted with them."""
    ctx.require(Perm.TRASH_RESTORE, global_scope=True)
    batch = ctx.session.get(DeletionBatch, user.deletion_batch_id)
    if batch is None:
        raise NotFound("deletion batch")
    trash.restore_batch(ctx, batch.id)
    ctx.session.refresh(user)
    return user


def user_tenants(ctx: ServiceContext, user_id: uuid.UUID) -> list[tuple[Tenant, list[str]]]:
    """The live tenants a user belongs to, each with the user's tenant-level role keys."""
    if user_id != ctx.principal.user_id:  # one's own, or user administration
        ctx.require(Perm.USER_READ, global_scope=True)
    m, g = core.memberships, core.grants
    with scoping.cross_tenant(ctx.session):
        tenants = list(
            ctx.session.scalars(
                select(Tenant)
                .where(Tenant.id.in_(select(m.c.tenant_id).where(m.c.user_id == user_id, core.live(m))))
                .order_by(Tenant.slug)
            )
        )
        roles: dict[uuid.UUID, list[str]] = {t.id: [] for t in tenants}
        for tid, role in ctx.session.execute(
            select(g.c.tenant_id, g.c.role_key)
            .where(
                g.c.principal_type == "user",
                g.c.principal_id == user_id,
                g.c.resource_id.is_(None),
                core.live(g),
                g.c.tenant_id.in_(list(roles)),
            )
            .order_by(g.c.role_key)
        ):
            roles[tid].append(role)
    return [(t, roles[t.id]) for t in tenants]


# --- one's own profile -------------------------------------------------------------------------


def me(ctx: ServiceContext) -> User:
    require_authenticated(ctx.principal, during_2fa_setup=True)
    user = ctx.session.get(User, ctx.principal.user_id) if ctx.principal.user_id else None
    if user is None:
        raise NotFound("user")
    return user


def update_me(ctx: ServiceContext, changes: dict[str, Any]) -> User:
    require_authenticated(ctx.principal, writes=True)
    user = me(ctx)
    before = snapshot(user) | {
        "language": user.language,
        "theme": user.theme,
        "preferences": user.preferences,
    }
    for key, value in changes.items():
        if key in ("first_name", "last_name"):
            setattr(user, key, (value or "").strip()[:100])
        elif key == "language":
            if value is not None and value not in LANGUAGES:
                raise Invalid("language must be en or de", code="invalid_language", field="language")
            user.language = value
        elif key == "theme":
            if value not in THEMES:
                raise Invalid("theme must be light, dark or system", code="invalid_theme", field="theme")
            user.theme = value
        elif key == "preferences":
            merged = dict(user.preferences or {})
            for pk, pv in (value or {}).items():
                if pk not in PREFERENCE_KEYS or not isinstance(pv, PREFERENCE_KEYS[pk]):
                    raise Invalid(
                        f"unknown or mistyped preference {pk!r}",
                        code="invalid_preference",
                        field=f"preferences.{pk}",
                    )
                merged[pk] = pv
            user.preferences = merged
        elif key == "default_tenant_id":
            if value is not None and value not in {t.id for t, _ in user_tenants(ctx, user.id)}:
                raise NotFound("tenant")
            user.default_tenant_id = value
        else:
            raise Invalid(f"{key} cannot be changed", code="field_not_editable", field=key)
    ctx.session.flush()
    after = snapshot(user) | {"language": user.language, "theme": user.theme, "preferences": user.preferences}
    b, a = audit.diff(before, after)
    if a:
        audit.record(
            ctx, "profile.update", target_type="user", target_id=user.id, before=b, after=a, tenant_id=None
        )
    return user

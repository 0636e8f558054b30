"""The authorization engine: every allow/deny decision is made here.

`effective_permissions` is the one place where global and tenant grants, the superadmin flag,
the API key's scope and tenant restriction are combined. `check`/`require` answer one question;
`require` also records that a decision was made, so a route that never asked fails a test.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from tenantry.authz.catalog import CATALOG, info
from tenantry.authz.principal import Principal
from tenantry.authz.roles import BUILTIN_ROLES
from tenantry.db import scoping
from tenantry.db.tables import GlobalGrant, Grant, Membership
from tenantry.errors import PermissionDenied

# Holds a mutable list per request: thread-pool workers mutate the same list object, so the
# middleware that created it sees every decision (a ContextVar *value* set in a worker would not).
_decisions: ContextVar[list[str] | None] = ContextVar("authz_decisions", default=None)
_CACHE_KEY = "authz_effective"


def start_decision_log() -> list[str]:
    log: list[str] = []
    _decisions.set(log)
    return log


def mark_decided(what: str) -> None:
    log = _decisions.get()
    if log is not None:
        log.append(what)


def role_permissions(role_key: str) -> frozenset[str]:
    role = BUILTIN_ROLES.get(role_key)
    return role.permissions() if role else frozenset()


def is_member(session: Session, user_id: uuid.UUID, tenant_id: uuid.UUID) -> bool:
    with scoping.in_tenant(session, tenant_id):
        return session.scalar(select(Membership.id).where(Membership.user_id == user_id).limit(1)) is not None


def _grant_roles(session: Session, user_id: uuid.UUID, tenant_id: uuid.UUID | None) -> set[str]:
    roles = set(
        session.scalars(
            select(GlobalGrant.role_key).where(
                GlobalGrant.principal_type == "user", GlobalGrant.principal_id == user_id
            )
        )
    )
    if tenant_id is not None and is_member(session, user_id, tenant_id):
        with scoping.in_tenant(session, tenant_id):
            roles |= set(
                session.scalars(
                    select(Grant.role_key).where(
                        Grant.principal_type == "user",
                        Grant.principal_id == user_id,
                        Grant.resource_id.is_(None),
                    )
                )
            )
    return roles


def effective_permissions(
    session: Session, principal: Principal, tenant_id: uuid.UUID | None
) -> frozenset[str]:
    """Permissions `principal` holds in `tenant_id` (None: at global scope)."""
    if not principal.authenticated or (principal.user_id is None and principal.kind != "system"):
        return frozenset()
    cache: dict[tuple[Principal, uuid.UUID | None], frozenset[str]] = session.info.setdefault(_CACHE_KEY, {})
    key = (principal, tenant_id)
    if key in cache:
        return cache[key]
    if principal.kind == "system" or principal.is_superadmin:
        perms = frozenset(CATALOG)
    else:
        assert principal.user_id is not None
        perms = frozenset().union(
            *(role_permissions(r) for r in _grant_roles(session, principal.user_id, tenant_id))
        )
    if principal.key_tenant_id is not None and tenant_id != principal.key_tenant_id:
        # Security: a key restricted to one tenant acts nowhere else, not even globally.
        perms = frozenset()
    if principal.key_scope == "read":
        perms = frozenset(p for p in perms if CATALOG[p].read_only)
    cache[key] = perms
    return perms


def forget(session: Session) -> None:
    """Drop the per-transaction memo after grants change inside the same transaction."""
    session.info.pop(_CACHE_KEY, None)


def check(session: Session, principal: Principal, perm: str, tenant_id: uuid.UUID | None = None) -> bool:
    info(perm)  # an unknown permission is a programming error, not a deny
    return perm in effective_permissions(session, principal, tenant_id)


def require(session: Session, principal: Principal, perm: str, tenant_id: uuid.UUID | None = None) -> None:
    mark_decided(perm)
    if not check(session, principal, perm, tenant_id):
        raise PermissionDenied(f"missing permission {perm}", permission=perm)


def require_authenticated(principal: Principal) -> None:
    """For self-service routes (`/me`, logout): being signed in is the whole requirement."""
    mark_decided("authenticated")
    if not principal.authenticated:
        raise PermissionDenied("sign in first")

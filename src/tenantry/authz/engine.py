"""The authorization engine: every allow/deny decision is made here.

`effective_permissions` is the one place where global → tenant → resource (→ child resource)
coverage, group expansion, custom roles, the superadmin flag, the API key's scope and tenant
restriction and the alias ceiling are combined. `check`/`require` answer one question;
`visible_filter` turns "what may this principal see" into SQL; `explain` says why.
`require` also records that a decision was made, so a route that never asked fails a test.
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, false, literal, or_, select, true
from sqlalchemy.orm import Session

from tenantry.authz import cache
from tenantry.authz.catalog import CATALOG, Perm, info
from tenantry.authz.principal import Principal
from tenantry.authz.roles import BUILTIN_ROLES
from tenantry.db import core, scoping
from tenantry.db.tables import Resource
from tenantry.errors import PermissionDenied, Unauthenticated

# Holds a mutable list per request: thread-pool workers mutate the same list object, so the
# middleware that created it sees every decision (a ContextVar *value* set in a worker would not).
_decisions: ContextVar[list[str] | None] = ContextVar("authz_decisions", default=None)

_g = core.grants
_gg = core.global_grants
_gm = core.group_members
_groups = core.groups
_m = core.memberships
_r = core.resources
_roles = core.roles
_troles = core.tenant_roles


@dataclass(frozen=True)
class Denial:
    """What the engine refused: who asked for which permission(s), in which tenant, on what.

    `tenant_id` is the decision's scope or, for a global-scope question, the tenant the session
    works in (a tenant admin sees in their audit what was refused inside their tenant).
    """

    principal: Principal
    permissions: tuple[str, ...]
    tenant_id: uuid.UUID | None
    resource_id: uuid.UUID | None = None


class AuthzDenied(PermissionDenied):
    """A 403 decided by the engine (not CSRF, not a missing sign-in): it leaves an audit trace."""

    def __init__(self, detail: str, denial: Denial, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.denial = denial


def _refuse(
    session: Session,
    principal: Principal,
    perms: tuple[str, ...],
    tenant_id: uuid.UUID | None,
    resource_id: uuid.UUID | None,
    detail: str,
    **extra: Any,
) -> AuthzDenied:
    scope = tenant_id if tenant_id is not None else scoping.current_tenant(session)
    return AuthzDenied(detail, Denial(principal, perms, scope, resource_id), **extra)


def start_decision_log() -> list[str]:
    log: list[str] = []
    _decisions.set(log)
    return log


def mark_decided(what: str) -> None:
    log = _decisions.get()
    if log is not None:
        log.append(what)


# --- roles ---------------------------------------------------------------------------------------


def custom_roles(session: Session, tenant_id: uuid.UUID | None) -> dict[str, frozenset[str]]:
    """Global custom roles, plus the tenant's own when a tenant is given (cached per version)."""
    key = ("roles", tenant_id)
    hit = cache.get(session, key)
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    out = {
        k: frozenset(p)
        for k, p in session.execute(select(_roles.c.key, _roles.c.permissions).where(core.live(_roles)))
    }
    if tenant_id is not None:
        # Explicit tenant condition: the answer (and what is cached) must not depend on the tenant
        # the asking session happens to be armed for — on PostgreSQL RLS would hide the rows.
        with scoping.cross_tenant(session):
            out |= {
                k: frozenset(p)
                for k, p in session.execute(
                    select(_troles.c.key, _troles.c.permissions).where(core.in_tenant(_troles, tenant_id))
                )
            }
    cache.put(session, key, out)
    return out


def role_permissions(
    role_key: str, session: Session | None = None, tenant_id: uuid.UUID | None = None
) -> frozenset[str]:
    role = BUILTIN_ROLES.get(role_key)
    if role is not None:
        return role.permissions()
    if session is None:
        return frozenset()
    perms = custom_roles(session, tenant_id).get(role_key, frozenset())
    return frozenset(p for p in perms if p in CATALOG)


def roles_with(session: Session, perm: str, tenant_id: uuid.UUID | None) -> list[str]:
    keys = [k for k, r in BUILTIN_ROLES.items() if perm in r.permissions()]
    keys += [k for k, p in custom_roles(session, tenant_id).items() if perm in p]
    return keys


# --- facts about a user ----------------------------------------------------------------------------


def user_groups(session: Session, user_id: uuid.UUID) -> list[uuid.UUID]:
    key = ("g", user_id.int)
    hit = cache.get(session, key)
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    groups = list(
        session.scalars(
            select(_gm.c.group_id)
            .join(_groups, _groups.c.id == _gm.c.group_id)
            .where(_gm.c.user_id == user_id, core.live(_groups))
        )
    )
    cache.put(session, key, groups)
    return groups


def _principal_match(table: Any, user_id: uuid.UUID, groups: list[uuid.UUID]) -> ColumnElement[bool]:
    cond: ColumnElement[bool] = (table.c.principal_type == "user") & (table.c.principal_id == user_id)
    if groups:
        cond = cond | ((table.c.principal_type == "group") & table.c.principal_id.in_(groups))
    return cond


def is_member(session: Session, user_id: uuid.UUID, tenant_id: uuid.UUID) -> bool:
    key = ("m", user_id.int, tenant_id.int)
    hit = cache.get(session, key)
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    # Explicit tenant condition on the Core table: valid whatever tenant the session is armed for.
    with scoping.cross_tenant(session):
        member = (
            session.scalar(
                select(_m.c.id).where(core.in_tenant(_m, tenant_id), _m.c.user_id == user_id).limit(1)
            )
            is not None
        )
    cache.put(session, key, member)
    return member


def ancestors(session: Session, tenant_id: uuid.UUID, resource_id: uuid.UUID) -> list[uuid.UUID]:
    """The resource and its parents, nearest first (a recursive CTE inside one tenant)."""
    base = select(_r.c.id, _r.c.parent_id, literal(0).label("depth")).where(
        core.in_tenant(_r, tenant_id), _r.c.id == resource_id
    )
    cte = base.cte("chain", recursive=True)
    parent = _r.alias("parent")
    cte = cte.union_all(
        select(parent.c.id, parent.c.parent_id, (cte.c.depth + 1).label("depth"))
        .join(cte, parent.c.id == cte.c.parent_id)
        .where(core.in_tenant(parent, tenant_id), cte.c.depth < 64)
    )
    with scoping.cross_tenant(session):  # explicit tenant conditions; see `custom_roles`
        return list(session.scalars(select(cte.c.id).order_by(cte.c.depth)))


@dataclass(frozen=True)
class GrantFact:
    role: str
    scope: str  # global | tenant | resource
    tenant_id: uuid.UUID | None = None
    resource_id: uuid.UUID | None = None
    via_group: uuid.UUID | None = None
    grant_id: uuid.UUID | None = None


@dataclass
class Facts:
    member: bool
    grants: list[GrantFact] = field(default_factory=list)


def gather(
    session: Session, user_id: uuid.UUID, tenant_id: uuid.UUID | None, resource_id: uuid.UUID | None = None
) -> Facts:
    """Every grant that reaches (user, tenant, resource), with where it came from."""
    groups = user_groups(session, user_id)
    facts = Facts(member=False)
    for gid, role, ptype, pid in session.execute(
        select(_gg.c.id, _gg.c.role_key, _gg.c.principal_type, _gg.c.principal_id).where(
            _principal_match(_gg, user_id, groups)
        )
    ):
        facts.grants.append(
            GrantFact(role, "global", via_group=pid if ptype == "group" else None, grant_id=gid)
        )
    if tenant_id is None:
        return facts
    facts.member = is_member(session, user_id, tenant_id)
    if not facts.member:
        return facts  # tenant and resource grants need a membership
    chain = ancestors(session, tenant_id, resource_id) if resource_id is not None else []
    scope_cond: ColumnElement[bool] = _g.c.resource_id.is_(None)
    if chain:
        scope_cond = or_(scope_cond, _g.c.resource_id.in_(chain))
    with scoping.cross_tenant(session):
        rows = session.execute(
            select(_g.c.id, _g.c.role_key, _g.c.principal_type, _g.c.principal_id, _g.c.resource_id).where(
                core.in_tenant(_g, tenant_id),
                scope_cond,
                _principal_match(_g, user_id, groups),
            )
        )
        for gid, role, ptype, pid, rid in rows:
            facts.grants.append(
                GrantFact(
                    role,
                    "resource" if rid else "tenant",
                    tenant_id,
                    rid,
                    pid if ptype == "group" else None,
                    gid,
                )
            )
    return facts


# --- the decision ----------------------------------------------------------------------------------


def _user_permissions(
    session: Session,
    user_id: uuid.UUID,
    is_superadmin: bool,
    tenant_id: uuid.UUID | None,
    resource_id: uuid.UUID | None,
) -> frozenset[str]:
    key = (
        "u",
        user_id.int,
        is_superadmin,
        tenant_id.int if tenant_id else 0,
        resource_id.int if resource_id else 0,
    )
    hit = cache.get(session, key)
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    if is_superadmin:
        perms = frozenset(CATALOG)
    else:
        facts = gather(session, user_id, tenant_id, resource_id)
        perms = frozenset().union(*(role_permissions(g.role, session, tenant_id) for g in facts.grants))
    perms = _intern(perms)
    cache.put(session, key, perms)
    return perms


_INTERNED: dict[frozenset[str], frozenset[str]] = {}


def _intern(perms: frozenset[str]) -> frozenset[str]:
    """Thousands of (user, tenant) pairs share a handful of distinct permission sets: store each once."""
    return _INTERNED.setdefault(perms, perms)


# --- alias users ---------------------------------------------------------------------------------

# Security: delegation stops at one level. An alias never creates aliases and never steps into
# another account, whatever its alias role or its parent says (issue 10).
NOT_FOR_ALIASES = frozenset({"alias.manage", "impersonate"})


@dataclass(frozen=True)
class AliasFacts:
    """What bounds an alias user: its parent, its alias role, its resource assignments."""

    parent_id: uuid.UUID
    parent_superadmin: bool
    role_permissions: frozenset[str]
    # tenant → assigned resources there; empty: every resource of the parent's.
    assigned: dict[uuid.UUID, frozenset[uuid.UUID]]


def alias_facts(session: Session, alias_id: uuid.UUID) -> AliasFacts | None:
    """Cached per authorization version: changing the alias, its role or assignments bumps it."""
    key = ("a", alias_id.int)
    hit = cache.get(session, key)
    if hit is not None:
        return hit or None
    u, parent, ar, res = core.users, core.users.alias("parent"), core.alias_roles, core.alias_resources
    row = session.execute(
        select(u.c.parent_id, parent.c.is_superadmin, ar.c.permissions)
        .join(parent, (parent.c.id == u.c.parent_id) & core.live(parent))
        .outerjoin(ar, (ar.c.id == u.c.alias_role_id) & core.live(ar))
        .where(u.c.id == alias_id, core.live(u))
    ).first()
    facts: AliasFacts | None = None
    if row is not None:
        assigned: dict[uuid.UUID, set[uuid.UUID]] = {}
        for tid, rid in session.execute(
            select(res.c.tenant_id, res.c.resource_id).where(res.c.alias_id == alias_id)
        ):
            assigned.setdefault(tid, set()).add(rid)
        facts = AliasFacts(
            row.parent_id,
            bool(row.is_superadmin),
            frozenset(p for p in (row.permissions or []) if p in CATALOG and p not in NOT_FOR_ALIASES),
            {t: frozenset(r) for t, r in assigned.items()},
        )
    cache.put(session, key, facts or False)
    return facts


def _alias_permissions(
    session: Session, alias_id: uuid.UUID, tenant_id: uuid.UUID | None, resource_id: uuid.UUID | None
) -> frozenset[str]:
    """The ceiling: the alias role ∩ the parent's effective permissions at this very scope,
    restricted to the assigned resources (if any): with assignments, resource permissions hold
    only on those resources (and their children), never tenant-wide, and only in their tenants."""
    af = alias_facts(session, alias_id)
    if af is None:
        return frozenset()
    parent = _user_permissions(session, af.parent_id, af.parent_superadmin, tenant_id, resource_id)
    perms = af.role_permissions & parent
    if af.assigned and tenant_id is not None:
        mine = af.assigned.get(tenant_id)
        if not mine:
            return frozenset()
        if resource_id is None:
            perms = frozenset(p for p in perms if "resource" not in CATALOG[p].scopes)
        elif not mine.intersection(ancestors(session, tenant_id, resource_id)):
            return frozenset()
    return perms


def effective_permissions(
    session: Session, principal: Principal, tenant_id: uuid.UUID | None, resource_id: uuid.UUID | None = None
) -> frozenset[str]:
    """Permissions `principal` holds in `tenant_id` (None: global scope), on `resource_id` if given."""
    # Hot path: a cached decision costs one string-keyed dict lookup (the principal's key is
    # computed once per principal and its hash is cached by Python).
    key = (principal.cache_key, tenant_id.int if tenant_id else 0, resource_id.int if resource_id else 0)
    hit = cache.get(session, key)
    if hit is not None:
        return hit  # type: ignore[no-any-return]
    if principal.kind == "system":
        return frozenset(CATALOG)
    if principal.kind == "anonymous" or principal.user_id is None:
        return frozenset()
    _refuse_unfinished_2fa(principal)
    if principal.kind == "alias":
        # Alias users: never more than the parent holds, checked on every decision.
        perms = _alias_permissions(session, principal.user_id, tenant_id, resource_id)
    else:
        perms = _user_permissions(session, principal.user_id, principal.is_superadmin, tenant_id, resource_id)
    perms = _intern(frozenset(p for p in perms if caller_limit(principal, p, tenant_id) is None))
    cache.put(session, key, perms)
    return perms


@dataclass(frozen=True)
class CallerLimit:
    code: str
    reason: str


_KEY_TENANT = CallerLimit("permission_denied", "the API key is restricted to another tenant")
_KEY_READ = CallerLimit("key_read_only", "this API key may only read")
_IMPERSONATION_READ = CallerLimit("impersonation_read_only", "this impersonation may only read")


def caller_limit(principal: Principal, perm: str, tenant_id: uuid.UUID | None) -> CallerLimit | None:
    """What about how the caller signed in (not its grants) rules `perm` out here, if anything.

    The one place for the API key's rules: a key restricted to one tenant acts nowhere else; a
    `read` key uses only permissions the catalog marks read-only, whatever the HTTP method of
    the route that asks. A read-only impersonation is held to the same rule.
    """
    if principal.key_tenant_id is not None and tenant_id != principal.key_tenant_id:
        return _KEY_TENANT
    if principal.key_scope == "read" and not CATALOG[perm].read_only:
        return _IMPERSONATION_READ if principal.impersonator_id is not None else _KEY_READ
    return None


def _refuse_unfinished_2fa(principal: Principal) -> None:
    """A session that still owes its 2FA set-up gets no decision at all, only this answer."""
    if principal.restricted:
        raise PermissionDenied("set up two-factor authentication first", code="2fa_setup_required")


def forget(session: Session) -> None:
    """Authorization data changed in this transaction: bump the version (see `cache.bump`)."""
    cache.bump(session)


def check(
    session: Session,
    principal: Principal,
    perm: str,
    tenant_id: uuid.UUID | None = None,
    resource_id: uuid.UUID | None = None,
) -> bool:
    if perm not in CATALOG:
        info(perm)  # an unknown permission is a programming error, not a deny
    return perm in effective_permissions(session, principal, tenant_id, resource_id)


def require(
    session: Session,
    principal: Principal,
    perm: str,
    tenant_id: uuid.UUID | None = None,
    resource_id: uuid.UUID | None = None,
) -> None:
    mark_decided(perm)
    if not check(session, principal, perm, tenant_id, resource_id):
        limit = caller_limit(principal, perm, tenant_id)
        detail, code = (
            (limit.reason, limit.code) if limit else (f"missing permission {perm}", "permission_denied")
        )
        raise _refuse(session, principal, (perm,), tenant_id, resource_id, detail, code=code, permission=perm)


def require_held(
    session: Session,
    principal: Principal,
    perms: frozenset[str] | set[str],
    what: str,
    tenant_id: uuid.UUID | None,
    resource_id: uuid.UUID | None = None,
) -> None:
    """No escalation: nobody hands out (as a grant or a role definition) what they lack at that scope."""
    mark_decided("no_escalation")
    missing = sorted(set(perms) - effective_permissions(session, principal, tenant_id, resource_id))
    if missing:
        raise _refuse(
            session,
            principal,
            tuple(missing),
            tenant_id,
            resource_id,
            f"you cannot grant {what}: you lack {', '.join(missing)}",
            code="escalation_denied",
            permissions=missing,
        )


def require_key_scope(
    session: Session, principal: Principal, scope: str, tenant_id: uuid.UUID | None
) -> None:
    """No escalation by key: a key acts as its owner (an alias's keys as the alias, under the
    same ceiling), and an alias mints a `read_write` key only if its ceiling lets it write
    somewhere the key may act (globally, in its parent's tenants, on its assigned resources)."""
    mark_decided("no_escalation")
    if principal.kind != "alias" or scope == "read" or principal.user_id is None:
        return
    af = alias_facts(session, principal.user_id)
    scopes: list[tuple[uuid.UUID | None, uuid.UUID | None]] = []
    if af is not None:
        if tenant_id is None:
            scopes.append((None, None))
            with scoping.cross_tenant(session):  # narrowed to the parent's own memberships
                tenants = session.scalars(
                    select(_m.c.tenant_id).where(_m.c.user_id == af.parent_id, core.live(_m))
                )
                scopes += [(t, None) for t in tenants]
        else:
            scopes.append((tenant_id, None))
        scopes += [(t, r) for t, rids in af.assigned.items() if tenant_id in (None, t) for r in sorted(rids)]
    for t, r in scopes:
        if any(not CATALOG[p].read_only for p in effective_permissions(session, principal, t, r)):
            return
    raise _refuse(
        session,
        principal,
        ("read_write",),
        tenant_id,
        None,
        "your alias role and your parent's permissions allow no writes here: only a read key",
        code="escalation_denied",
    )


def require_grantable(
    session: Session,
    principal: Principal,
    role_key: str,
    tenant_id: uuid.UUID | None,
    resource_id: uuid.UUID | None = None,
) -> None:
    require_held(
        session,
        principal,
        role_permissions(role_key, session, tenant_id),
        f"role {role_key!r}",
        tenant_id,
        resource_id,
    )


def require_authenticated(
    principal: Principal, *, writes: bool = False, during_2fa_setup: bool = False
) -> None:
    """Self-service (one's own profile, sessions, keys): being signed in is the requirement.

    `writes`: the call changes something, so a `read` API key may not make it. A session that
    still owes its 2FA set-up reaches only what `during_2fa_setup` allows (the set-up itself,
    reading one's profile, signing out).
    """
    mark_decided("authenticated")
    if not principal.authenticated:
        raise Unauthenticated("sign in first")
    if not during_2fa_setup:
        _refuse_unfinished_2fa(principal)
    if writes and principal.key_scope == "read":
        limit = _IMPERSONATION_READ if principal.impersonator_id is not None else _KEY_READ
        raise PermissionDenied(limit.reason, code=limit.code)


def require_session(principal: Principal, what: str, *, during_2fa_setup: bool = False) -> None:
    """Account security (password, 2FA, API keys, sessions) from a signed-in session, never a key.

    Security: a leaked API key must not mint more keys, take over the second factor or sign
    its owner out.
    """
    require_authenticated(principal, during_2fa_setup=during_2fa_setup)
    if principal.key_id is not None or principal.user_id is None:
        raise PermissionDenied(f"{what} from a signed-in session", code="session_required")
    if principal.impersonator_id is not None:
        # Security: whoever acts as a user never takes over their account (password, email,
        # second factor, sessions, keys): only the user's own sign-in does that.
        raise PermissionDenied(f"nobody may {what} while impersonating", code="impersonation_restricted")


def require_superadmin(principal: Principal, what: str, *, code: str = "superadmin_required") -> None:
    """Things no grant can hand out (global roles, the superadmin flag): superadmins only."""
    mark_decided("superadmin")
    if not principal.is_superadmin:
        raise PermissionDenied(f"only superadmins {what}", code=code)


# --- impersonation --------------------------------------------------------------------------------


def may_impersonate(
    *,
    impersonator_id: uuid.UUID,
    impersonator_is_superadmin: bool,
    target_id: uuid.UUID,
    target_is_superadmin: bool,
    target_parent_id: uuid.UUID | None = None,
) -> bool:
    """Who may act as whom: a superadmin as any non-superadmin, a parent as its own aliases;
    nobody as a superadmin or as itself.

    Asked when an impersonation starts and again on every request under its token: the token
    dies as soon as the answer turns to no (the impersonator lost the superadmin flag, the
    target gained it).
    """
    if target_id == impersonator_id or target_is_superadmin:
        return False
    return impersonator_is_superadmin or target_parent_id == impersonator_id


def require_impersonation_start(session: Session, principal: Principal, *, enabled: bool) -> None:
    """May this principal start impersonating anyone at all? Asked before the target is looked up,
    so that the answer tells a caller without the right nothing about which accounts exist.
    """
    mark_decided(Perm.IMPERSONATE)
    if not enabled:
        raise PermissionDenied("impersonation is not enabled here", code="impersonation_disabled")
    require_authenticated(principal)
    if principal.impersonator_id is not None:
        raise PermissionDenied("an impersonation cannot start another one", code="impersonation_nested")
    if principal.key_id is not None or principal.user_id is None:
        raise PermissionDenied("impersonate from a signed-in session", code="session_required")
    superadmin = principal.is_superadmin and check(session, principal, Perm.IMPERSONATE, None)
    # A parent may go on to act as its own aliases (`may_impersonate` decides per target); an
    # alias has none, and acting as its own parent would lift its ceiling.
    if not superadmin and principal.kind != "user":
        raise _refuse(
            session,
            principal,
            (Perm.IMPERSONATE,),
            None,
            None,
            "only superadmins and parents of aliases may impersonate",
            code="impersonation_denied",
            permission=Perm.IMPERSONATE,
        )


def require_impersonate(
    session: Session,
    principal: Principal,
    target_id: uuid.UUID,
    *,
    target_is_superadmin: bool,
    target_parent_id: uuid.UUID | None = None,
) -> None:
    """May this principal act as that user (after `require_impersonation_start`)?"""
    mark_decided(Perm.IMPERSONATE)
    assert principal.user_id is not None
    if not may_impersonate(
        impersonator_id=principal.user_id,
        impersonator_is_superadmin=principal.is_superadmin,
        target_id=target_id,
        target_is_superadmin=target_is_superadmin,
        target_parent_id=target_parent_id,
    ):
        raise _refuse(
            session,
            principal,
            (Perm.IMPERSONATE,),
            None,
            None,
            "this user cannot be impersonated (superadmins and oneself never are)",
            code="impersonation_denied",
            permission=Perm.IMPERSONATE,
        )


def require_impersonating(principal: Principal) -> None:
    """Ending an impersonation is for its own token (read-only or not), and only for it."""
    mark_decided("impersonating")
    if not principal.authenticated:
        raise Unauthenticated("sign in first")
    if principal.impersonator_id is None:
        raise PermissionDenied("this token is not an impersonation", code="not_impersonating")


def visible_filter(
    session: Session, principal: Principal, perm: str, tenant_id: uuid.UUID, id_column: Any = None
) -> ColumnElement[bool]:
    """A SQL condition on resources: those `principal` may `perm` in `tenant_id`.

    A tenant-wide (or global) grant makes it `true`; otherwise the resources under any
    resource-scope grant, children included (recursive CTE) — never load-then-filter.
    """
    mark_decided(perm)
    column = id_column if id_column is not None else Resource.id
    if check(session, principal, perm, tenant_id):
        return true()
    if principal.user_id is None or principal.kind == "anonymous":
        return false()
    if caller_limit(principal, perm, tenant_id) is not None:
        return false()
    if principal.kind == "alias":
        return _alias_visible(session, principal.user_id, perm, tenant_id, column)
    return _granted_subtree(session, principal.user_id, perm, tenant_id, column)


def _alias_visible(
    session: Session, alias_id: uuid.UUID, perm: str, tenant_id: uuid.UUID, column: Any
) -> ColumnElement[bool]:
    """The alias's list filter, capped like its decisions: the alias role must name `perm`, the
    parent must see the row, and with assignments the row must lie under an assigned resource."""
    af = alias_facts(session, alias_id)
    if af is None or perm not in af.role_permissions:
        return false()
    mine = af.assigned.get(tenant_id) if af.assigned else None
    if af.assigned and not mine:
        return false()
    cond = _granted_subtree(
        session, af.parent_id, perm, tenant_id, column, True, "ceiling", af.parent_superadmin
    )
    if mine:
        base = select(_r.c.id).where(core.in_tenant(_r, tenant_id), _r.c.id.in_(sorted(mine)))
        cond = cond & _subtree(tenant_id, base, column, f"assigned_{perm.replace('.', '_')}")
    return cond


def _granted_subtree(
    session: Session,
    user_id: uuid.UUID,
    perm: str,
    tenant_id: uuid.UUID,
    column: Any,
    tenant_wide_ok: bool = False,
    name: str = "covered",
    is_superadmin: bool = False,
) -> ColumnElement[bool]:
    if tenant_wide_ok and perm in _user_permissions(session, user_id, is_superadmin, tenant_id, None):
        return true()
    if not is_member(session, user_id, tenant_id):
        return false()
    roles = roles_with(session, perm, tenant_id)
    groups = user_groups(session, user_id)
    granted = select(_g.c.resource_id).where(
        core.in_tenant(_g, tenant_id),
        _g.c.resource_id.is_not(None),
        _g.c.role_key.in_(roles),
        _principal_match(_g, user_id, groups),
    )
    base = select(_r.c.id).where(core.in_tenant(_r, tenant_id), _r.c.id.in_(granted))
    return _subtree(tenant_id, base, column, f"{name}_{perm.replace('.', '_')}")


def _subtree(tenant_id: uuid.UUID, base: Any, column: Any, name: str) -> ColumnElement[bool]:
    """`column` lies in the resources `base` selects or under them (a recursive CTE)."""
    # One statement may hold several of these (one per resource type, alias and ceiling): each
    # CTE needs its own name.
    tree = base.cte(name, recursive=True)
    child = _r.alias("child")
    tree = tree.union_all(
        select(child.c.id).join(tree, child.c.parent_id == tree.c.id).where(core.in_tenant(child, tenant_id))
    )
    covered: ColumnElement[bool] = column.in_(select(tree.c.id))
    return covered


@dataclass(frozen=True)
class AliasHalves:
    """An alias's decision in its two halves: what its alias role allows, what its parent holds."""

    parent_id: uuid.UUID
    role_allows: bool
    parent_holds: bool
    parent_grants: list[GrantFact]
    restricted_to_resources: bool


@dataclass
class Explanation:
    allowed: bool
    grants: list[GrantFact]
    reasons: list[str]
    alias: AliasHalves | None = None


def explain(
    session: Session,
    principal: Principal,
    perm: str,
    tenant_id: uuid.UUID | None,
    resource_id: uuid.UUID | None = None,
) -> Explanation:
    """Which grants allow `perm`, or why it is denied."""
    info(perm)
    allowed = check(session, principal, perm, tenant_id, resource_id)
    reasons: list[str] = []
    if principal.user_id is None:
        return Explanation(False, [], ["not signed in"])
    if principal.kind == "alias":
        return _explain_alias(session, principal, perm, tenant_id, resource_id, allowed)
    if principal.is_superadmin:
        return Explanation(True, [GrantFact("superadmin", "global")], ["superadmin holds every permission"])
    facts = gather(session, principal.user_id, tenant_id, resource_id)
    helping = [g for g in facts.grants if perm in role_permissions(g.role, session, tenant_id)]
    if tenant_id is not None and not facts.member:
        reasons.append("no membership in this tenant (tenant and resource grants need one)")
    if not helping:
        reasons.append(f"no grant of a role containing {perm} reaches this scope")
    limit = caller_limit(principal, perm, tenant_id)
    if helping and limit is not None:
        reasons.append(limit.reason)
    if helping and principal.ceiling_user_id is not None and not allowed:
        reasons.append("the alias ceiling (the parent's permissions) does not include it")
    if allowed:
        reasons = [f"granted by {len(helping)} grant(s)"]
    return Explanation(allowed, helping if allowed else [], reasons)


def _explain_alias(
    session: Session,
    principal: Principal,
    perm: str,
    tenant_id: uuid.UUID | None,
    resource_id: uuid.UUID | None,
    allowed: bool,
) -> Explanation:
    assert principal.user_id is not None
    af = alias_facts(session, principal.user_id)
    if af is None:
        return Explanation(False, [], ["the alias or its parent is gone"])
    role_allows = perm in af.role_permissions
    parent = explain(
        session,
        Principal(kind="user", user_id=af.parent_id, is_superadmin=af.parent_superadmin),
        perm,
        tenant_id,
        resource_id,
    )
    reasons: list[str] = []
    if not role_allows:
        reasons.append(f"the alias role does not include {perm}")
    if not parent.allowed:
        reasons.append("the parent does not hold it here (the alias ceiling)")
        reasons += [f"parent: {r}" for r in parent.reasons]
    if role_allows and parent.allowed and not allowed:
        limit = caller_limit(principal, perm, tenant_id)
        reasons.append(limit.reason if limit else "outside the resources assigned to the alias")
    if allowed:
        reasons = ["the alias role allows it and the parent holds it"]
    halves = AliasHalves(af.parent_id, role_allows, parent.allowed, parent.grants, bool(af.assigned))
    return Explanation(allowed, parent.grants if allowed else [], reasons, halves)

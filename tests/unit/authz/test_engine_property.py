"""The engine against a naive reference model, on random small worlds (Hypothesis).

A world: tenants acme and globex, each with a random resource tree of at most six nodes; three
users (perhaps one superadmin, perhaps acting through an API key); one or two groups (perhaps
deleted); random live or trashed memberships; random grants of built-in roles at global, tenant
and resource scope, to users or groups, perhaps revoked. For every (principal, tenant or none,
resource or none, permission from a sample) `check()` must equal the model below, which knows
only DESIGN §1 and §3 — nothing of the engine's SQL, caches or shortcuts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from tenantry.authz import CATALOG, Principal, engine
from tenantry.authz import cache as authz_cache
from tenantry.authz.roles import BUILTIN_ROLES
from tenantry.db import scoping
from tenantry.db.session import Database
from tenantry.db.tables import (
    GlobalGrant,
    Grant,
    Group,
    GroupMember,
    Membership,
    Resource,
    Role,
    Tenant,
    TenantRole,
    User,
)
from tenantry.db.types import utcnow
from tenantry.ids import uuid7

TENANTS = ("acme", "globex")
USERS = 3
ROLES = sorted(BUILTIN_ROLES)
TENANT_ROLES = sorted(k for k, r in BUILTIN_ROLES.items() if not r.global_only)
PERMS = (
    "tenant.read",
    "tenant.update",
    "tenant.create",
    "user.read",
    "member.manage",
    "grant.read",
    "audit.read",
    "trash.purge",
    "host.read",
    "host.update",
    "host.delete",
)
# Children first, so one DELETE per table empties the world whatever the foreign keys.
WORLD_TABLES = (GlobalGrant, Grant, GroupMember, Group, Membership, TenantRole, Role, Resource, User, Tenant)


# --- the world as data ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GrantSpec:
    principal: tuple[str, int]  # ("user", i) | ("group", j)
    role: str
    tenant: str | None  # None: global
    resource: int | None  # index into that tenant's tree
    revoked: bool


@dataclass(frozen=True)
class WorldSpec:
    trees: dict[str, list[int | None]]  # tenant → parent index per node (parents come first)
    superadmin: int | None
    keys: tuple[str | None, ...]  # per user: None, "read" or a tenant the key is restricted to
    groups: tuple[tuple[frozenset[int], bool], ...]  # (member user indexes, deleted)
    memberships: dict[tuple[int, str], str]  # (user, tenant) → "live" | "trashed"
    grants: tuple[GrantSpec, ...]


def _tree(size: int) -> st.SearchStrategy[list[int | None]]:
    # Parent -1 is "a root"; shrinking goes towards 0, i.e. deep trees under the first node.
    parents = [st.just(-1)] + [st.integers(-1, i - 1) for i in range(1, size)]
    return st.tuples(*parents).map(lambda ps: [None if p < 0 else p for p in ps])


@st.composite
def worlds(draw: Any) -> WorldSpec:
    trees = {t: draw(st.integers(2, 6).flatmap(_tree)) for t in TENANTS}
    n_groups = draw(st.integers(1, 2))
    groups = tuple(
        (frozenset(draw(st.sets(st.integers(0, USERS - 1)))), draw(st.booleans())) for _ in range(n_groups)
    )
    memberships = {
        (u, t): state
        for u in range(USERS)
        for t in TENANTS
        if (state := draw(st.sampled_from(["live", "live", "live", "none", "trashed"]))) != "none"
    }

    @st.composite
    def grant(draw_grant: Any) -> GrantSpec:
        principal = draw_grant(
            st.tuples(st.just("user"), st.integers(0, USERS - 1))
            | st.tuples(st.just("group"), st.integers(0, n_groups - 1))
        )
        scope = draw_grant(st.sampled_from(["resource", "tenant", "global"]))
        tenant = None if scope == "global" else draw_grant(st.sampled_from(TENANTS))
        resource = None
        if tenant is not None and scope == "resource":
            resource = draw_grant(st.integers(0, len(trees[tenant]) - 1))
        # superadmin is a global-only role (the grants service refuses it in a tenant).
        role = draw_grant(st.sampled_from(ROLES if tenant is None else TENANT_ROLES))
        revoked = draw_grant(st.sampled_from([False, False, True]))
        return GrantSpec(principal, role, tenant, resource, revoked)

    return WorldSpec(
        trees=trees,
        superadmin=draw(st.sampled_from([None, None, None, *range(USERS)])),
        keys=tuple(draw(st.sampled_from([None, None, None, None, "read", *TENANTS])) for _ in range(USERS)),
        groups=groups,
        memberships=memberships,
        grants=tuple(draw(st.lists(grant(), min_size=2, max_size=8))),
    )


# --- the reference model -------------------------------------------------------------------------


def _chain(parents: list[int | None], node: int) -> set[int]:
    """The node and its ancestors."""
    out: set[int] = set()
    current: int | None = node
    while current is not None:
        out.add(current)
        current = parents[current]
    return out


def reference(world: WorldSpec, user: int, tenant: str | None, resource: int | None) -> set[str]:
    """DESIGN §1: deny by default; global → tenant → resource → children; grants below global
    need a live membership; group grants reach the live group's members; superadmin is all.
    API keys: `read` keeps read permissions only; a tenant-bound key acts only in that tenant."""
    if world.superadmin == user:
        perms = set(CATALOG)
    else:
        groups = {j for j, (members, deleted) in enumerate(world.groups) if user in members and not deleted}
        member = tenant is not None and world.memberships.get((user, tenant)) == "live"
        chain = (
            _chain(world.trees[tenant], resource) if tenant is not None and resource is not None else set()
        )
        perms = set()
        for g in world.grants:
            kind, index = g.principal
            reaches = (kind == "user" and index == user) or (kind == "group" and index in groups)
            if g.revoked or not reaches:
                continue
            if g.tenant is None:
                covers = True
            elif g.tenant != tenant or not member:
                covers = False
            else:
                covers = g.resource is None or g.resource in chain
            if covers:
                perms |= BUILTIN_ROLES[g.role].permissions()
    key = world.keys[user]
    if key == "read":
        perms = {p for p in perms if CATALOG[p].read_only}
    elif key is not None and key != tenant:
        perms = set()
    return perms


# --- the real thing ------------------------------------------------------------------------------


@dataclass
class Ids:
    tenants: dict[str, uuid.UUID] = field(default_factory=dict)
    users: list[uuid.UUID] = field(default_factory=list)
    groups: list[uuid.UUID] = field(default_factory=list)
    resources: dict[str, list[uuid.UUID]] = field(default_factory=dict)


def build(db: Database, world: WorldSpec) -> Ids:
    """Empty the world's tables, then write `world` in one transaction with a version bump."""
    ids = Ids()
    now = utcnow()
    with db.unit_of_work() as s:
        with scoping.cross_tenant(s):
            for model in WORLD_TABLES:
                s.execute(delete(model), execution_options={"include_deleted": True})
        for slug in TENANTS:
            tenant = Tenant(slug=slug, name=slug)
            s.add(tenant)
            s.flush()
            ids.tenants[slug] = tenant.id
        for u in range(USERS):
            user = User(email=f"user{u}@property.example.com", is_superadmin=world.superadmin == u)
            s.add(user)
            s.flush()
            ids.users.append(user.id)
        for members, deleted in world.groups:
            group = Group(name=f"group-{len(ids.groups)}", deleted_at=now if deleted else None)
            s.add(group)
            s.flush()
            ids.groups.append(group.id)
            s.add_all(GroupMember(group_id=group.id, user_id=ids.users[u]) for u in members)
        for slug, parents in world.trees.items():
            tenant_id = ids.tenants[slug]
            ids.resources[slug] = []
            with scoping.in_tenant(s, tenant_id):
                for i, parent in enumerate(parents):
                    parent_id = ids.resources[slug][parent] if parent is not None else None
                    resource = Resource(tenant_id=tenant_id, type="host", name=f"r{i}", parent_id=parent_id)
                    s.add(resource)
                    s.flush()
                    ids.resources[slug].append(resource.id)
                for (u, t), state in world.memberships.items():
                    if t == slug:
                        deleted_at = now if state == "trashed" else None
                        s.add(Membership(tenant_id=tenant_id, user_id=ids.users[u], deleted_at=deleted_at))
                for g in world.grants:
                    if g.tenant == slug:
                        s.add(
                            Grant(
                                tenant_id=tenant_id,
                                principal_type=g.principal[0],
                                principal_id=_principal_id(ids, g),
                                role_key=g.role,
                                resource_id=ids.resources[slug][g.resource]
                                if g.resource is not None
                                else None,
                                deleted_at=now if g.revoked else None,
                            )
                        )
                s.flush()
        # Global grants have no trash: a revoked one is simply absent.
        s.add_all(
            GlobalGrant(principal_type=g.principal[0], principal_id=_principal_id(ids, g), role_key=g.role)
            for g in world.grants
            if g.tenant is None and not g.revoked
        )
        s.flush()
        authz_cache.bump(s)
    return ids


def _principal_id(ids: Ids, g: GrantSpec) -> uuid.UUID:
    kind, index = g.principal
    return ids.users[index] if kind == "user" else ids.groups[index]


def principal(world: WorldSpec, ids: Ids, user: int) -> Principal:
    key = world.keys[user]
    extra: dict[str, Any] = {}
    if key == "read":
        extra = {"key_id": uuid7(), "key_scope": "read"}
    elif key is not None:
        extra = {"key_id": uuid7(), "key_tenant_id": ids.tenants[key]}
    return Principal(
        kind="user",
        user_id=ids.users[user],
        label=f"user{user}",
        is_superadmin=world.superadmin == user,
        **extra,
    )


def scopes(world: WorldSpec) -> list[tuple[str | None, int | None]]:
    return [(None, None)] + [(t, r) for t in TENANTS for r in [None, *range(len(world.trees[t]))]]


def test_check_equals_the_reference_model_on_random_worlds(clean_db: Database) -> None:
    @settings(
        max_examples=40,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    @given(world=worlds())
    def run(world: WorldSpec) -> None:
        ids = build(clean_db, world)
        mismatches = []
        with clean_db.sessions() as s:
            for tenant, resource in scopes(world):
                # As a request does: the session is armed for the tenant it works in.
                scoping.enter_tenant(s, ids.tenants[tenant] if tenant else None)
                tenant_id = ids.tenants[tenant] if tenant else None
                resource_id = ids.resources[tenant][resource] if tenant and resource is not None else None
                for user in range(USERS):
                    expected = reference(world, user, tenant, resource)
                    who = principal(world, ids, user)
                    for perm in PERMS:
                        got = engine.check(s, who, perm, tenant_id, resource_id)
                        if got != (perm in expected):
                            mismatches.append((f"user{user}", tenant, resource, perm, got))
        assert not mismatches, mismatches

    run()


def test_reference_model_agrees_with_the_design_on_a_hand_made_world() -> None:
    """The model itself is checked on one world whose answers are known by heart."""
    world = WorldSpec(
        trees={"acme": [None, 0, 1], "globex": [None]},
        superadmin=None,
        keys=(None, "read", None),
        groups=((frozenset({2}), False),),
        memberships={(0, "acme"): "live", (1, "acme"): "live", (2, "globex"): "trashed"},
        grants=(
            GrantSpec(("user", 0), "viewer", "acme", 1, False),
            GrantSpec(("user", 1), "member", "acme", None, False),
            GrantSpec(("group", 0), "member", "globex", None, False),
        ),
    )
    assert "host.read" in reference(world, 0, "acme", 2)  # the granted node's child
    assert "host.read" not in reference(world, 0, "acme", 0)  # the parent is not covered
    assert "host.update" not in reference(world, 1, "acme", None)  # read-only key
    assert "host.read" in reference(world, 1, "acme", None)
    assert reference(world, 2, "globex", None) == set()  # trashed membership

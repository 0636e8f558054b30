"""`visible_filter`: "what may this principal see" as one SQL condition on resources (STYLE point 5).

The world: acme and globex with the same tree of hosts; acme members with a resource grant, a
tenant-wide grant, a group grant; a non-member holding a stale grant row. Every test lists
acme's resources with `select(Resource).where(visible_filter(...))` in a session armed for acme,
as a list service does — never load-then-filter.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from sqlalchemy import ColumnElement, event, select, true
from sqlalchemy.orm import Session

from tenantry.authz import Principal
from tenantry.authz import cache as authz_cache
from tenantry.authz.engine import visible_filter
from tenantry.db import scoping
from tenantry.db.session import Database
from tenantry.db.tables import (
    AliasResource,
    AliasRole,
    Grant,
    Group,
    GroupMember,
    Membership,
    Resource,
    Tenant,
    User,
)
from tenantry.ids import uuid7

#   site ─┬─ host ──── service ─── alert
#         └─ host2 ─── service2
#   lone
TREE: dict[str, str | None] = {
    "site": None,
    "host": "site",
    "service": "host",
    "alert": "service",
    "host2": "site",
    "service2": "host2",
    "lone": None,
}

# user → (member of acme?, [(role, scope)]); scope None = acme-wide, else a resource name.
PEOPLE: dict[str, tuple[bool, list[tuple[str, str | None]]]] = {
    "subtree_viewer": (True, [("viewer", "host")]),
    "leaf_member": (True, [("member", "alert")]),
    "tenant_viewer": (True, [("viewer", None)]),
    "grouped": (True, []),  # reaches host2 through the group "ops"
    "outsider": (False, [("viewer", "host")]),  # a grant row, but no membership
    "nobody": (True, []),
}


@dataclass
class World:
    tenants: dict[str, uuid.UUID] = field(default_factory=dict)
    users: dict[str, uuid.UUID] = field(default_factory=dict)
    ids: dict[str, uuid.UUID] = field(default_factory=dict)  # acme's resources by name

    def names(self, ids: set[uuid.UUID]) -> set[str]:
        by_id = {v: k for k, v in self.ids.items()}
        return {by_id.get(i, "?") for i in ids}

    def user(self, name: str, **extra: object) -> Principal:
        return Principal(kind="user", user_id=self.users[name], label=name, **extra)  # type: ignore[arg-type]


def _tree(s: Session, tenant_id: uuid.UUID) -> dict[str, uuid.UUID]:
    ids: dict[str, uuid.UUID] = {}
    with scoping.in_tenant(s, tenant_id):
        for name, parent in TREE.items():
            r = Resource(
                tenant_id=tenant_id, type="host", name=name, parent_id=ids[parent] if parent else None
            )
            s.add(r)
            s.flush()
            ids[name] = r.id
    return ids


@pytest.fixture
def world(clean_db: Database) -> World:
    w = World()
    with clean_db.unit_of_work() as s:
        for slug in ("acme", "globex"):
            t = Tenant(slug=slug, name=slug)
            s.add(t)
            s.flush()
            w.tenants[slug] = t.id
        for name in [*PEOPLE, "alias"]:
            u = User(email=f"{name}@visible.example.com")
            s.add(u)
            s.flush()
            w.users[name] = u.id
        w.ids = _tree(s, w.tenants["acme"])
        _tree(s, w.tenants["globex"])
        ops = Group(name="ops")
        s.add(ops)
        s.flush()
        s.add(GroupMember(group_id=ops.id, user_id=w.users["grouped"]))
        acme = w.tenants["acme"]
        with scoping.in_tenant(s, acme):
            for name, (member, grants) in PEOPLE.items():
                if member:
                    s.add(Membership(tenant_id=acme, user_id=w.users[name]))
                for role, where in grants:
                    s.add(
                        Grant(
                            tenant_id=acme,
                            principal_type="user",
                            principal_id=w.users[name],
                            role_key=role,
                            resource_id=w.ids[where] if where else None,
                        )
                    )
            s.add(
                Grant(
                    tenant_id=acme,
                    principal_type="group",
                    principal_id=ops.id,
                    role_key="viewer",
                    resource_id=w.ids["host2"],
                )
            )
            s.flush()
        # The alias's role reads and updates hosts anywhere; its parent (the ceiling) only reads
        # the host subtree.
        role = AliasRole(
            owner_id=w.users["subtree_viewer"], name="ops", permissions=["host.read", "host.update"]
        )
        s.add(role)
        s.flush()
        alias = s.get(User, w.users["alias"])
        assert alias is not None
        alias.parent_id, alias.alias_role_id = w.users["subtree_viewer"], role.id
        s.flush()
        authz_cache.bump(s)
    return w


def visible(db: Database, world: World, principal: Principal, perm: str, tenant: str = "acme") -> set[str]:
    """List the resources of `tenant` through the filter, as a list service would."""
    tenant_id = world.tenants[tenant]
    with db.sessions() as s:
        scoping.enter_tenant(s, tenant_id)
        cond = visible_filter(s, principal, perm, tenant_id)
        return world.names(set(s.scalars(select(Resource.id).where(cond))))


@pytest.mark.parametrize(
    ("who", "perm", "expected"),
    [
        ("subtree_viewer", "host.read", {"host", "service", "alert"}),  # children, not parent or siblings
        ("subtree_viewer", "host.update", set()),  # the role reads only
        ("leaf_member", "host.update", {"alert"}),  # a leaf does not climb
        ("grouped", "host.read", {"host2", "service2"}),  # through a group grant
        ("tenant_viewer", "host.read", set(TREE)),
        ("outsider", "host.read", set()),  # a grant without membership
        ("nobody", "host.read", set()),  # membership alone
    ],
)
def test_visible_filter_lists_exactly_the_granted_subtree(
    clean_db: Database, world: World, who: str, perm: str, expected: set[str]
) -> None:
    assert visible(clean_db, world, world.user(who), perm) == expected


def test_visible_filter_is_sql_true_for_a_tenant_wide_grant(clean_db: Database, world: World) -> None:
    with clean_db.sessions() as s:
        scoping.enter_tenant(s, world.tenants["acme"])
        cond = visible_filter(s, world.user("tenant_viewer"), "host.read", world.tenants["acme"])
    assert cond.compare(true())


def test_visible_filter_for_a_superadmin_is_true(clean_db: Database, world: World) -> None:
    root = Principal(kind="user", user_id=uuid7(), is_superadmin=True)
    with clean_db.sessions() as s:
        cond = visible_filter(s, root, "host.delete", world.tenants["globex"])
    assert cond.compare(true())


def test_visible_filter_shows_nothing_of_another_tenant(clean_db: Database, world: World) -> None:
    # Same tree in globex; none of the acme grants reach it.
    for who in ("subtree_viewer", "tenant_viewer", "grouped"):
        assert visible(clean_db, world, world.user(who), "host.read", tenant="globex") == set()


def test_visible_filter_for_anonymous_shows_nothing(clean_db: Database, world: World) -> None:
    assert visible(clean_db, world, Principal.nobody(), "host.read") == set()


def test_visible_filter_honours_the_key_scope_and_tenant(clean_db: Database, world: World) -> None:
    read_key = world.user("subtree_viewer", key_id=uuid7(), key_scope="read")
    globex_key = world.user("tenant_viewer", key_id=uuid7(), key_tenant_id=world.tenants["globex"])
    assert visible(clean_db, world, read_key, "host.read") == {"host", "service", "alert"}
    assert (
        visible(clean_db, world, world.user("leaf_member", key_id=uuid7(), key_scope="read"), "host.update")
        == set()
    )
    assert visible(clean_db, world, globex_key, "host.read") == set()


def test_visible_filter_caps_an_alias_at_its_parents_subtree(clean_db: Database, world: World) -> None:
    """DESIGN §1: an alias's permissions = its own ∩ its parent's, enforced in every decision."""
    alias = Principal(
        kind="alias", user_id=world.users["alias"], ceiling_user_id=world.users["subtree_viewer"]
    )
    assert visible(clean_db, world, alias, "host.read") == {"host", "service", "alert"}
    assert visible(clean_db, world, alias, "host.update") == set()  # the parent only reads
    assert visible(clean_db, world, alias, "service.read") == set()  # the alias role lacks it


def test_visible_filter_restricts_an_alias_to_its_assigned_resources(
    clean_db: Database, world: World
) -> None:
    acme = world.tenants["acme"]
    with clean_db.unit_of_work() as s:
        s.add(AliasResource(alias_id=world.users["alias"], tenant_id=acme, resource_id=world.ids["service"]))
        s.add(AliasResource(alias_id=world.users["alias"], tenant_id=acme, resource_id=world.ids["host2"]))
        authz_cache.bump(s)
    alias = Principal(
        kind="alias", user_id=world.users["alias"], ceiling_user_id=world.users["subtree_viewer"]
    )
    # Assigned ∩ the parent's subtree: host2 is assigned but outside what the parent reads.
    assert visible(clean_db, world, alias, "host.read") == {"service", "alert"}


def test_visible_filter_sees_new_children_of_a_granted_resource(clean_db: Database, world: World) -> None:
    acme = world.tenants["acme"]
    with clean_db.unit_of_work() as s, scoping.in_tenant(s, acme):
        child = Resource(tenant_id=acme, type="service", name="late", parent_id=world.ids["alert"])
        s.add(child)
        s.flush()
        world.ids["late"] = child.id
    assert "late" in visible(clean_db, world, world.user("subtree_viewer"), "host.read")


# --- one statement, whatever the size --------------------------------------------------------------


@contextmanager
def statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if "set_config(" not in statement:  # the tenant's settings, written before the first statement
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def _filter_and_list(db: Database, world: World, who: str) -> tuple[int, int, int]:
    """(statements to build the filter, statements to list with it, rows listed)."""
    acme = world.tenants["acme"]
    authz_cache.CACHE.clear()  # build the filter from the database, not from a warm cache
    with db.sessions() as s:
        scoping.enter_tenant(s, acme)
        s.connection()  # begin first: BEGIN / per-transaction settings are not the listing's
        with statements(db) as building:
            cond: ColumnElement[bool] = visible_filter(s, world.user(who), "host.read", acme)
        with statements(db) as listing:
            rows = s.scalars(select(Resource).where(cond).order_by(Resource.name)).all()
        return len(building), len(listing), len(rows)


def test_listing_with_the_filter_is_one_statement(clean_db: Database, world: World) -> None:
    _, listing, rows = _filter_and_list(clean_db, world, "subtree_viewer")
    assert (listing, rows) == (1, 3)


def test_building_the_filter_does_not_load_the_resources(clean_db: Database, world: World) -> None:
    """The filter's cost does not grow with the number of resources (no load-then-filter)."""
    before, _, rows_before = _filter_and_list(clean_db, world, "subtree_viewer")
    acme = world.tenants["acme"]
    with clean_db.unit_of_work() as s, scoping.in_tenant(s, acme):
        s.add_all(
            Resource(tenant_id=acme, type="service", name=f"extra-{i}", parent_id=world.ids["service"])
            for i in range(25)
        )
        s.flush()
        authz_cache.bump(s)
    after, listing, rows_after = _filter_and_list(clean_db, world, "subtree_viewer")
    assert (rows_before, rows_after) == (3, 28)
    assert after == before
    assert listing == 1

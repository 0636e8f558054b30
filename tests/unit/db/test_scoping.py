"""The tenancy choke point in the ORM session (db/scoping.py).

On PostgreSQL every test runs twice: as the application role (ORM scoping + row-level security)
and as the owner/superuser, which bypasses row-level security, so that the ORM layer is proven
on its own and not only because RLS hides the rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    aliased,
    foreign,
    joinedload,
    make_transient_to_detached,
    mapped_column,
    relationship,
    remote,
    selectinload,
)

from tenantry.db import scoping
from tenantry.db.base import SoftDeletable, TenantOwned
from tenantry.db.session import Database
from tenantry.db.tables import Grant, Membership, Resource, Tenant, User
from tenantry.db.types import utcnow
from tenantry.ids import uuid7
from tests.backends import Backend, selected

TENANT_OWNED_MODELS = [Membership, Resource, Grant]


def _roles() -> list[str]:
    return ["app", "owner"] if selected() == "postgres" else ["app"]


@pytest.fixture(params=_roles())
def orm_db(request: pytest.FixtureRequest, backend: Backend, clean_db: Database) -> Iterator[Database]:
    if request.param == "app":
        yield clean_db
        return
    owner = Database(backend.owner_url)
    yield owner
    owner.dispose()


@dataclass
class TenantRows:
    tenant_id: uuid.UUID
    live: dict[type, set[uuid.UUID]] = field(default_factory=dict)
    deleted: dict[type, set[uuid.UUID]] = field(default_factory=dict)
    host: uuid.UUID = field(default_factory=uuid7)


@dataclass
class World:
    a: TenantRows
    b: TenantRows
    user_id: uuid.UUID


def _seed_tenant(
    session: Session, tenant_id: uuid.UUID, user_id: uuid.UUID, gone_user_id: uuid.UUID
) -> TenantRows:
    rows = TenantRows(tenant_id)
    now = utcnow()
    with scoping.in_tenant(session, tenant_id):
        host = Resource(tenant_id=tenant_id, id=rows.host, type="host", name="host")
        session.add(host)
        session.flush()
        service = Resource(tenant_id=tenant_id, type="service", name="service", parent_id=host.id)
        old = Resource(tenant_id=tenant_id, type="host", name="old", deleted_at=now)
        member = Membership(tenant_id=tenant_id, user_id=user_id)
        ex_member = Membership(tenant_id=tenant_id, user_id=gone_user_id, deleted_at=now)
        tenant_grant = Grant(
            tenant_id=tenant_id, principal_type="user", principal_id=user_id, role_key="member"
        )
        host_grant = Grant(
            tenant_id=tenant_id,
            principal_type="user",
            principal_id=user_id,
            role_key="viewer",
            resource_id=host.id,
        )
        old_grant = Grant(
            tenant_id=tenant_id,
            principal_type="user",
            principal_id=user_id,
            role_key="viewer",
            deleted_at=now,
        )
        session.add_all([service, old, member, ex_member, tenant_grant, host_grant, old_grant])
        session.flush()
    rows.live = {
        Resource: {host.id, service.id},
        Membership: {member.id},
        Grant: {tenant_grant.id, host_grant.id},
    }
    rows.deleted = {Resource: {old.id}, Membership: {ex_member.id}, Grant: {old_grant.id}}
    return rows


@pytest.fixture
def world(orm_db: Database) -> World:
    """Two tenants with the same shape of rows: live and soft-deleted, in every tenant-owned table."""
    with orm_db.unit_of_work() as session:
        a, b = Tenant(slug="tenant-a", name="A"), Tenant(slug="tenant-b", name="B")
        user = User(email="member@example.com")
        gone = User(email="gone@example.com")
        session.add_all([a, b, user, gone])
        session.flush()
        rows_a = _seed_tenant(session, a.id, user.id, gone.id)
        rows_b = _seed_tenant(session, b.id, user.id, gone.id)
        return World(rows_a, rows_b, user.id)


def _ids(session: Session, model: type) -> set[uuid.UUID]:
    return {row.id for row in session.scalars(select(model))}


@pytest.mark.parametrize("model", TENANT_OWNED_MODELS, ids=lambda m: m.__tablename__)
def test_select_returns_only_the_session_tenants_live_rows(
    orm_db: Database, world: World, model: type
) -> None:
    with orm_db.unit_of_work() as session:
        scoping.enter_tenant(session, world.a.tenant_id)
        assert _ids(session, model) == world.a.live[model]
        scoping.enter_tenant(session, world.b.tenant_id)
        assert _ids(session, model) == world.b.live[model]


@pytest.mark.parametrize("model", TENANT_OWNED_MODELS, ids=lambda m: m.__tablename__)
def test_column_and_count_selects_are_scoped_too(orm_db: Database, world: World, model: type) -> None:
    with orm_db.unit_of_work() as session:
        scoping.enter_tenant(session, world.a.tenant_id)
        assert set(session.scalars(select(model.id))) == world.a.live[model]
        assert set(session.scalars(select(model.tenant_id).distinct())) == {world.a.tenant_id}
        assert session.scalar(select(func.count()).select_from(model)) == len(world.a.live[model])


@pytest.mark.parametrize("model", TENANT_OWNED_MODELS, ids=lambda m: m.__tablename__)
def test_session_without_tenant_sees_no_tenant_owned_rows(
    orm_db: Database, world: World, model: type
) -> None:
    with orm_db.unit_of_work() as session:
        assert scoping.current_tenant(session) is None
        assert _ids(session, model) == set()
        assert session.scalar(select(func.count()).select_from(model)) == 0
        with scoping.include_deleted(session):
            assert _ids(session, model) == set()


def test_session_without_tenant_still_sees_global_tables(orm_db: Database, world: World) -> None:
    with orm_db.unit_of_work() as session:
        assert set(session.scalars(select(Tenant.slug))) == {"tenant-a", "tenant-b"}
        assert _ids(session, Resource) == set()


def test_get_by_primary_key_of_another_tenants_row_returns_none(orm_db: Database, world: World) -> None:
    with orm_db.unit_of_work() as session:
        scoping.enter_tenant(session, world.a.tenant_id)
        assert session.get(Resource, (world.b.tenant_id, world.b.host)) is None
        assert session.get(Resource, (world.a.tenant_id, world.a.host)) is not None


def _names_by_tenant(db: Database) -> dict[tuple[uuid.UUID, uuid.UUID], str]:
    with db.unit_of_work() as session, scoping.cross_tenant(session), scoping.include_deleted(session):
        return {(r.tenant_id, r.id): r.name for r in session.scalars(select(Resource))}


def test_bulk_update_changes_only_the_current_tenants_live_rows(orm_db: Database, world: World) -> None:
    before = _names_by_tenant(orm_db)
    with orm_db.unit_of_work() as session:
        scoping.enter_tenant(session, world.a.tenant_id)
        result = session.execute(update(Resource).values(name="renamed"))
        assert result.rowcount == len(world.a.live[Resource])
    after = _names_by_tenant(orm_db)
    changed = {key for key in after if after[key] != before[key]}
    assert changed == {(world.a.tenant_id, rid) for rid in world.a.live[Resource]}
    assert {after[key] for key in changed} == {"renamed"}


def test_bulk_update_leaves_other_tenants_objects_in_the_identity_map_alone(
    orm_db: Database, world: World
) -> None:
    with orm_db.unit_of_work() as session:
        scoping.enter_tenant(session, world.a.tenant_id)
        with scoping.cross_tenant(session):
            b_host = session.get(Resource, (world.b.tenant_id, world.b.host))
        assert b_host is not None
        session.execute(update(Resource).values(name="renamed"))
        assert b_host.name == "host"


def test_bulk_delete_removes_only_the_current_tenants_live_rows(orm_db: Database, world: World) -> None:
    before = set(_names_by_tenant(orm_db))
    with orm_db.unit_of_work() as session:
        scoping.enter_tenant(session, world.a.tenant_id)
        session.execute(delete(Grant))
        session.execute(delete(Resource))
    remaining = set(_names_by_tenant(orm_db))
    assert before - remaining == {(world.a.tenant_id, rid) for rid in world.a.live[Resource]}
    with orm_db.unit_of_work() as session, scoping.include_deleted(session):
        scoping.enter_tenant(session, world.b.tenant_id)
        assert _ids(session, Grant) == world.b.live[Grant] | world.b.deleted[Grant]
        scoping.enter_tenant(session, world.a.tenant_id)
        assert _ids(session, Grant) == world.a.deleted[Grant]


def test_bulk_update_without_tenant_changes_nothing(orm_db: Database, world: World) -> None:
    before = _names_by_tenant(orm_db)
    with orm_db.unit_of_work() as session:
        result = session.execute(update(Resource).values(name="renamed"))
        assert result.rowcount == 0
    assert _names_by_tenant(orm_db) == before


@pytest.mark.parametrize("model", TENANT_OWNED_MODELS, ids=lambda m: m.__tablename__)
def test_soft_deleted_rows_are_hidden_by_default(orm_db: Database, world: World, model: type) -> None:
    with orm_db.unit_of_work() as session:
        scoping.enter_tenant(session, world.a.tenant_id)
        assert _ids(session, model).isdisjoint(world.a.deleted[model])


@pytest.mark.parametrize("model", TENANT_OWNED_MODELS, ids=lambda m: m.__tablename__)
def test_include_deleted_shows_soft_deleted_rows_of_the_tenant(
    orm_db: Database, world: World, model: type
) -> None:
    with orm_db.unit_of_work() as session:
        scoping.enter_tenant(session, world.a.tenant_id)
        with scoping.include_deleted(session):
            assert _ids(session, model) == world.a.live[model] | world.a.deleted[model]
        assert _ids(session, model) == world.a.live[model]


@pytest.mark.parametrize("model", TENANT_OWNED_MODELS, ids=lambda m: m.__tablename__)
def test_include_deleted_execution_option_applies_to_that_statement_only(
    orm_db: Database, world: World, model: type
) -> None:
    with orm_db.unit_of_work() as session:
        scoping.enter_tenant(session, world.a.tenant_id)
        stmt = select(model).execution_options(include_deleted=True)
        assert {r.id for r in session.scalars(stmt)} == world.a.live[model] | world.a.deleted[model]
        assert _ids(session, model) == world.a.live[model]


def test_soft_deleted_global_rows_are_hidden_by_default(orm_db: Database, world: World) -> None:
    with orm_db.unit_of_work() as session:
        assert set(session.scalars(select(User.email))) == {"member@example.com", "gone@example.com"}
        session.execute(update(User).where(User.email == "gone@example.com").values(deleted_at=utcnow()))
        assert set(session.scalars(select(User.email))) == {"member@example.com"}
        with scoping.include_deleted(session):
            assert set(session.scalars(select(User.email))) == {"member@example.com", "gone@example.com"}


@pytest.mark.parametrize("model", TENANT_OWNED_MODELS, ids=lambda m: m.__tablename__)
def test_cross_tenant_sees_both_tenants_and_ends_with_its_block(
    orm_db: Database, world: World, model: type
) -> None:
    with orm_db.unit_of_work() as session:
        scoping.enter_tenant(session, world.a.tenant_id)
        with scoping.cross_tenant(session):
            assert _ids(session, model) == world.a.live[model] | world.b.live[model]
        assert _ids(session, model) == world.a.live[model]


def test_in_tenant_restores_the_previous_tenant(orm_db: Database, world: World) -> None:
    with orm_db.unit_of_work() as session:
        scoping.enter_tenant(session, world.a.tenant_id)
        with scoping.in_tenant(session, world.b.tenant_id):
            assert _ids(session, Resource) == world.b.live[Resource]
        assert scoping.current_tenant(session) == world.a.tenant_id
        assert _ids(session, Resource) == world.a.live[Resource]


# --- joins ---------------------------------------------------------------------------------------


@pytest.fixture
def twin_ids(orm_db: Database, world: World) -> uuid.UUID:
    """Resource ids are unique per tenant only: give tenant B a resource with A's host id."""
    with orm_db.unit_of_work() as session, scoping.in_tenant(session, world.b.tenant_id):
        session.add(Resource(tenant_id=world.b.tenant_id, id=world.a.host, type="host", name="b-twin"))
        session.flush()
    return world.a.host


def test_join_on_id_alone_does_not_pick_up_another_tenants_row(
    orm_db: Database, world: World, twin_ids: uuid.UUID
) -> None:
    with orm_db.unit_of_work() as session:
        scoping.enter_tenant(session, world.a.tenant_id)
        rows = session.execute(
            select(Grant.id, Resource.tenant_id, Resource.name).join(
                Resource, Resource.id == Grant.resource_id
            )
        ).all()
    assert [(tenant, name) for _, tenant, name in rows] == [(world.a.tenant_id, "host")]


def test_join_to_an_aliased_table_is_scoped(orm_db: Database, world: World, twin_ids: uuid.UUID) -> None:
    parent = aliased(Resource)
    with orm_db.unit_of_work() as session:
        scoping.enter_tenant(session, world.a.tenant_id)
        rows = session.execute(
            select(Resource.name, parent.tenant_id, parent.name).join(parent, parent.id == Resource.parent_id)
        ).all()
    assert rows == [("service", world.a.tenant_id, "host")]


def test_outer_join_to_another_tenants_row_finds_nothing(orm_db: Database, world: World) -> None:
    with orm_db.unit_of_work() as session:
        scoping.enter_tenant(session, world.a.tenant_id)
        rows = session.execute(
            select(Grant.id, Resource.id)
            .outerjoin(Resource, Resource.tenant_id == world.b.tenant_id)
            .where(Grant.resource_id.is_not(None))
        ).all()
    assert [r for _, r in rows] == [None]


def test_join_to_a_soft_deleted_row_drops_the_row(orm_db: Database, world: World) -> None:
    with orm_db.unit_of_work() as session:
        scoping.enter_tenant(session, world.a.tenant_id)
        stmt = select(Membership.id, User.email).join(User, User.id == Membership.user_id)
        assert [email for _, email in session.execute(stmt)] == ["member@example.com"]
        session.execute(update(User).where(User.id == world.user_id).values(deleted_at=utcnow()))
        assert session.execute(stmt).all() == []


# --- relationship loads --------------------------------------------------------------------------
# The production tables declare no relationship() yet; this separate registry maps the real
# `resources` table with a parent → children relationship that, on purpose, joins on id alone,
# so only the scoping criteria keep another tenant's (or a trashed) child out.


class _RelBase(DeclarativeBase):
    pass


class Node(TenantOwned, SoftDeletable, _RelBase):
    __tablename__ = "resources"

    type: Mapped[str]
    name: Mapped[str]
    parent_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    children: Mapped[list[Node]] = relationship(
        primaryjoin=lambda: remote(foreign(Node.parent_id)) == Node.id,
        viewonly=True,
        order_by=lambda: Node.name,
    )


@pytest.fixture
def family(orm_db: Database, world: World, twin_ids: uuid.UUID) -> uuid.UUID:
    """A's host has a live and a trashed child; B's host with the same id has a child too."""
    with orm_db.unit_of_work() as session:
        for tenant, name, deleted in (
            (world.a.tenant_id, "a-trashed-child", utcnow()),
            (world.b.tenant_id, "b-child", None),
        ):
            with scoping.in_tenant(session, tenant):
                session.add(
                    Resource(
                        tenant_id=tenant, type="service", name=name, parent_id=twin_ids, deleted_at=deleted
                    )
                )
                session.flush()
    return twin_ids


def _children(node: Node) -> list[str]:
    return [c.name for c in node.children]


@pytest.mark.parametrize("strategy", ["lazy", "selectin", "joined"])
def test_relationship_loads_are_scoped(
    orm_db: Database, world: World, family: uuid.UUID, strategy: str
) -> None:
    options = {"lazy": [], "selectin": [selectinload(Node.children)], "joined": [joinedload(Node.children)]}
    with orm_db.unit_of_work() as session:
        scoping.enter_tenant(session, world.a.tenant_id)
        node = (
            session.scalars(select(Node).where(Node.id == family).options(*options[strategy])).unique().one()
        )
        assert _children(node) == ["service"]


def test_lazy_load_after_cross_tenant_block_is_scoped_to_the_current_tenant(
    orm_db: Database, world: World, family: uuid.UUID
) -> None:
    with orm_db.unit_of_work() as session:
        scoping.enter_tenant(session, world.a.tenant_id)
        with scoping.cross_tenant(session):
            node = session.scalars(
                select(Node).where(Node.id == family, Node.tenant_id == world.a.tenant_id)
            ).one()
        assert _children(node) == ["service"]


def test_lazy_load_on_an_object_never_loaded_by_a_query_is_scoped(
    orm_db: Database, world: World, family: uuid.UUID
) -> None:
    with orm_db.unit_of_work() as session:
        scoping.enter_tenant(session, world.a.tenant_id)
        node = Node(tenant_id=world.a.tenant_id, id=family, type="host", name="host")
        make_transient_to_detached(node)
        session.add(node)
        assert _children(node) == ["service"]


def test_lazy_load_with_include_deleted_shows_trashed_children(
    orm_db: Database, world: World, family: uuid.UUID
) -> None:
    with orm_db.unit_of_work() as session:
        scoping.enter_tenant(session, world.a.tenant_id)
        with scoping.include_deleted(session):
            node = session.scalars(select(Node).where(Node.id == family)).one()
            assert _children(node) == ["a-trashed-child", "service"]


# --- write guard and constraints -----------------------------------------------------------------


def test_flushing_a_new_row_for_another_tenant_raises(orm_db: Database, world: World) -> None:
    with orm_db.sessions() as session:
        scoping.enter_tenant(session, world.a.tenant_id)
        session.add(Resource(tenant_id=world.b.tenant_id, type="host", name="smuggled"))
        with pytest.raises(PermissionError):
            session.flush()
    assert "smuggled" not in _names_by_tenant(orm_db).values()


def test_flushing_a_new_tenant_owned_row_without_a_tenant_raises(orm_db: Database, world: World) -> None:
    with orm_db.sessions() as session:
        session.add(Resource(tenant_id=world.a.tenant_id, type="host", name="orphan"))
        with pytest.raises(PermissionError):
            session.flush()


def test_flushing_a_new_row_for_the_current_tenant_succeeds(orm_db: Database, world: World) -> None:
    with orm_db.unit_of_work() as session:
        scoping.enter_tenant(session, world.a.tenant_id)
        session.add(Resource(tenant_id=world.a.tenant_id, type="host", name="welcome"))
        session.flush()
    assert "welcome" in _names_by_tenant(orm_db).values()


@pytest.mark.parametrize("change", ["update", "delete"])
def test_flushing_a_change_to_another_tenants_row_raises(orm_db: Database, world: World, change: str) -> None:
    before = _names_by_tenant(orm_db)
    with orm_db.sessions() as session:
        scoping.enter_tenant(session, world.a.tenant_id)
        with scoping.cross_tenant(session):
            b_host = session.get(Resource, (world.b.tenant_id, world.b.host))
        assert b_host is not None
        if change == "update":
            b_host.name = "hijacked"
        else:
            session.delete(b_host)
        with pytest.raises(PermissionError):
            session.flush()
    assert _names_by_tenant(orm_db) == before


def test_moving_a_loaded_row_to_another_tenant_raises(orm_db: Database, world: World) -> None:
    with orm_db.sessions() as session:
        scoping.enter_tenant(session, world.a.tenant_id)
        row = session.scalars(select(Resource).where(Resource.name == "service")).one()
        row.tenant_id = world.b.tenant_id
        with pytest.raises(PermissionError):
            session.flush()


def test_composite_foreign_key_rejects_a_parent_in_another_tenant(orm_db: Database, world: World) -> None:
    with orm_db.sessions() as session, scoping.cross_tenant(session):
        session.add(Resource(tenant_id=world.b.tenant_id, type="service", name="x", parent_id=world.a.host))
        with pytest.raises(IntegrityError):
            session.flush()


def test_composite_foreign_key_rejects_a_grant_on_another_tenants_resource(
    orm_db: Database, world: World
) -> None:
    with orm_db.sessions() as session, scoping.cross_tenant(session):
        session.add(
            Grant(
                tenant_id=world.b.tenant_id,
                principal_type="user",
                principal_id=world.user_id,
                role_key="viewer",
                resource_id=world.a.host,
            )
        )
        with pytest.raises(IntegrityError):
            session.flush()


def test_composite_foreign_key_accepts_a_parent_in_the_same_tenant(orm_db: Database, world: World) -> None:
    with orm_db.sessions() as session, scoping.cross_tenant(session):
        session.add(Resource(tenant_id=world.b.tenant_id, type="service", name="x", parent_id=world.b.host))
        session.flush()
        session.rollback()


# --- property ------------------------------------------------------------------------------------

ROW = st.tuples(st.sampled_from(["resource", "grant", "membership"]), st.integers(0, 2), st.booleans())


def test_scoped_select_returns_exactly_the_current_tenants_live_rows(orm_db: Database) -> None:
    with orm_db.unit_of_work() as session:
        tenants = [Tenant(slug=f"prop-{i}", name=f"P{i}") for i in range(3)]
        session.add_all(tenants)
        session.flush()
        tenant_ids = [t.id for t in tenants]

    @settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(rows=st.lists(ROW, max_size=20))
    def check(rows: list[tuple[str, int, bool]]) -> None:
        expected: dict[tuple[type, uuid.UUID], set[uuid.UUID]] = {
            (m, t): set() for m in TENANT_OWNED_MODELS for t in tenant_ids
        }
        with orm_db.sessions() as session:
            try:
                with scoping.cross_tenant(session):
                    for kind, index, deleted in rows:
                        tenant_id = tenant_ids[index]
                        deleted_at = utcnow() if deleted else None
                        if kind == "resource":
                            obj = Resource(tenant_id=tenant_id, type="host", name="r", deleted_at=deleted_at)
                        elif kind == "grant":
                            obj = Grant(
                                tenant_id=tenant_id,
                                principal_type="user",
                                principal_id=uuid7(),
                                role_key="member",
                                deleted_at=deleted_at,
                            )
                        else:
                            user = User(email=f"{uuid7().hex}@example.com")
                            session.add(user)
                            session.flush()
                            obj = Membership(tenant_id=tenant_id, user_id=user.id, deleted_at=deleted_at)
                        session.add(obj)
                        session.flush()
                        if not deleted:
                            expected[(type(obj), tenant_id)].add(obj.id)
                for tenant_id in tenant_ids:
                    scoping.enter_tenant(session, tenant_id)
                    for model in TENANT_OWNED_MODELS:
                        assert _ids(session, model) == expected[(model, tenant_id)]
                scoping.enter_tenant(session, None)
                for model in TENANT_OWNED_MODELS:
                    assert _ids(session, model) == set()
            finally:
                session.rollback()

    check()

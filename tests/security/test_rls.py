"""PostgreSQL row-level security: the second barrier, exercised with raw SQL as the app role.

Raw SQL never passes through the ORM scoping, so whatever the app role sees here is decided by
the policies alone. Rows are seeded as the owner (a superuser, which bypasses RLS).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Connection, create_engine, event, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import NullPool

from tenantry.db import rls, scoping
from tenantry.db.engine import make_engine, normalise_url
from tenantry.db.session import Database
from tenantry.db.tables import Grant, Membership, Resource, Tenant, User
from tests.backends import Backend

pytestmark = pytest.mark.postgres_only

TABLES = rls.tenant_owned_tables()
SEEDED = ["grants", "memberships", "resources"]  # the tables the `seeded` fixture fills
SET_TENANT = text("SELECT set_config('tenantry.tenant_id', :t, true)")


@dataclass
class Seeded:
    a: uuid.UUID
    b: uuid.UUID
    counts: dict[tuple[str, uuid.UUID], int]


@pytest.fixture
def seeded(backend: Backend, clean_db: Database) -> Iterator[Seeded]:
    """Tenants A and B with rows in every tenant-owned table, written as the owner."""
    owner = Database(backend.owner_url)
    try:
        with owner.unit_of_work() as session, scoping.cross_tenant(session):
            a, b = Tenant(slug="rls-a", name="A"), Tenant(slug="rls-b", name="B")
            user = User(email="rls@example.com")
            session.add_all([a, b, user])
            session.flush()
            for tenant in (a, b):
                host = Resource(tenant_id=tenant.id, type="host", name="host")
                session.add(host)
                session.flush()
                session.add_all(
                    [
                        Resource(tenant_id=tenant.id, type="service", name="svc", parent_id=host.id),
                        Membership(tenant_id=tenant.id, user_id=user.id),
                        Grant(
                            tenant_id=tenant.id,
                            principal_type="user",
                            principal_id=user.id,
                            role_key="member",
                        ),
                    ]
                )
                session.flush()
        with owner.engine.connect() as conn:
            counts = {
                (table, tid): conn.execute(
                    text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t"), {"t": tid}
                ).scalar_one()
                for table in SEEDED
                for tid in (a.id, b.id)
            }
        yield Seeded(a.id, b.id, counts)
    finally:
        owner.dispose()


def _tenants_seen(conn: Connection, table: str) -> list[uuid.UUID]:
    return [row[0] for row in conn.execute(text(f"SELECT tenant_id FROM {table}"))]


def _owner_count(backend: Backend, table: str, tenant_id: uuid.UUID) -> int:
    engine = make_engine(backend.owner_url)
    try:
        with engine.connect() as conn:
            return conn.execute(
                text(f"SELECT count(*) FROM {table} WHERE tenant_id = :t"), {"t": tenant_id}
            ).scalar_one()
    finally:
        engine.dispose()


@pytest.mark.parametrize("table", SEEDED)
def test_app_role_without_tenant_setting_sees_no_rows(clean_db: Database, seeded: Seeded, table: str) -> None:
    assert seeded.counts[(table, seeded.a)] > 0
    with clean_db.engine.connect() as conn:
        assert _tenants_seen(conn, table) == []


@pytest.mark.parametrize("table", SEEDED)
def test_app_role_with_tenant_setting_sees_only_that_tenants_rows(
    clean_db: Database, seeded: Seeded, table: str
) -> None:
    with clean_db.engine.connect() as conn:
        conn.execute(SET_TENANT, {"t": str(seeded.a)})
        seen = _tenants_seen(conn, table)
    assert seen == [seeded.a] * seeded.counts[(table, seeded.a)]


@pytest.mark.parametrize("table", SEEDED)
def test_tenant_setting_ends_with_the_transaction(clean_db: Database, seeded: Seeded, table: str) -> None:
    with clean_db.engine.connect() as conn:
        conn.execute(SET_TENANT, {"t": str(seeded.a)})
        assert len(_tenants_seen(conn, table)) == seeded.counts[(table, seeded.a)]
        conn.commit()
        assert conn.execute(text("SELECT current_setting('tenantry.tenant_id', true)")).scalar() == ""
        assert _tenants_seen(conn, table) == []


@pytest.mark.parametrize("table", SEEDED)
def test_cross_tenant_setting_set_by_hand_shows_no_other_tenant(
    clean_db: Database, seeded: Seeded, table: str
) -> None:
    """What one injected statement could do as the app role: the policies ignore it."""
    with clean_db.engine.connect() as conn:
        conn.execute(text("SELECT set_config('tenantry.cross_tenant', 'on', true)"))
        assert _tenants_seen(conn, table) == []
        conn.execute(SET_TENANT, {"t": str(seeded.a)})
        assert set(_tenants_seen(conn, table)) == {seeded.a}
    with clean_db.engine.connect() as conn:
        conn.execute(text("SET tenantry.cross_tenant = 'on'"))  # session-wide: no better
        assert _tenants_seen(conn, table) == []
        conn.rollback()


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("SELECT tenantry_cross_tenant('on')", "cross-tenant mode refused"),
        ("SELECT tenantry_cross_tenant(repeat('0', 64))", "cross-tenant mode refused"),
        ("SELECT tenantry_cross_tenant_key()", "already"),  # the app took it when it connected
        ("SELECT secret FROM tenantry_private.deployment_secret", "permission denied"),
        ("SELECT * FROM tenantry_private.cross_tenant_keys", "permission denied"),
        ("SELECT tenantry_private.cross_tenant_proof()", "permission denied"),
        ("UPDATE tenantry_private.cross_tenant_keys SET pid = 0", "permission denied"),
    ],
)
def test_forging_the_cross_tenant_switch_fails(
    clean_db: Database, seeded: Seeded, sql: str, error: str
) -> None:
    with clean_db.engine.connect() as conn:
        with pytest.raises(DBAPIError, match=error):
            conn.execute(text(sql))
        conn.rollback()
        assert _tenants_seen(conn, "resources") == []


def test_a_guessed_proof_shows_no_other_tenant(clean_db: Database, seeded: Seeded) -> None:
    """The proof is a keyed hash of backend and transaction start: without the secret, a guess."""
    with clean_db.engine.connect() as conn:
        conn.execute(
            text(
                "SELECT set_config('tenantry.cross_tenant', encode(sha256(convert_to("
                "'cross-tenant:' || pg_backend_pid() || ':' || extract(epoch FROM now())::text, 'UTF8')),"
                " 'hex'), true)"
            )
        )
        assert _tenants_seen(conn, "resources") == []


def test_the_key_is_handed_out_once_per_connection(backend: Backend, seeded: Seeded) -> None:
    """A connection opened without the application's hook may ask once; then never again."""
    engine = create_engine(normalise_url(backend.app_url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            key = conn.execute(text("SELECT tenantry_cross_tenant_key()")).scalar_one()
            conn.commit()
            with pytest.raises(DBAPIError, match="already"):
                conn.execute(text("SELECT tenantry_cross_tenant_key()"))
            conn.rollback()
            conn.execute(text("SELECT tenantry_cross_tenant(:k)"), {"k": key})
            assert set(_tenants_seen(conn, "resources")) == {seeded.a, seeded.b}
    finally:
        engine.dispose()


@pytest.mark.parametrize("table", SEEDED)
def test_insert_for_another_tenant_is_rejected(
    backend: Backend, clean_db: Database, seeded: Seeded, table: str
) -> None:
    """Copy one of A's rows, re-label it as B's, and try to insert it while A is set."""
    with clean_db.engine.connect() as conn:
        conn.execute(SET_TENANT, {"t": str(seeded.a)})
        conn.execute(text(f"CREATE TEMP TABLE probe ON COMMIT DROP AS SELECT * FROM {table} LIMIT 1"))
        conn.execute(text("UPDATE probe SET tenant_id = :b, id = gen_random_uuid()"), {"b": seeded.b})
        with pytest.raises(DBAPIError, match="row-level security"):
            conn.execute(text(f"INSERT INTO {table} SELECT * FROM probe"))
    assert _owner_count(backend, table, seeded.b) == seeded.counts[(table, seeded.b)]


@pytest.mark.parametrize("table", SEEDED)
def test_update_cannot_move_a_row_to_another_tenant(clean_db: Database, seeded: Seeded, table: str) -> None:
    with clean_db.engine.connect() as conn:
        conn.execute(SET_TENANT, {"t": str(seeded.a)})
        with pytest.raises(DBAPIError, match="row-level security"):
            conn.execute(text(f"UPDATE {table} SET tenant_id = :b"), {"b": seeded.b})


@pytest.mark.parametrize("table", SEEDED)
def test_update_and_delete_of_another_tenants_rows_touch_nothing(
    backend: Backend, clean_db: Database, seeded: Seeded, table: str
) -> None:
    with clean_db.engine.connect() as conn:
        conn.execute(SET_TENANT, {"t": str(seeded.a)})
        updated = conn.execute(
            text(f"UPDATE {table} SET tenant_id = tenant_id WHERE tenant_id = :b"), {"b": seeded.b}
        )
        deleted = conn.execute(text(f"DELETE FROM {table} WHERE tenant_id = :b"), {"b": seeded.b})
        assert (updated.rowcount, deleted.rowcount) == (0, 0)
        conn.commit()
    assert _owner_count(backend, table, seeded.b) == seeded.counts[(table, seeded.b)]


def test_app_role_is_not_superuser_and_has_no_bypassrls(clean_db: Database) -> None:
    with clean_db.engine.connect() as conn:
        row = conn.execute(
            text("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user")
        ).one()
    assert (row.rolsuper, row.rolbypassrls) == (False, False)


def test_app_role_owns_no_table_and_is_no_member_of_an_owner(clean_db: Database) -> None:
    with clean_db.engine.connect() as conn:
        owners = {
            row.tableowner: row.member
            for row in conn.execute(
                text(
                    "SELECT tableowner, pg_has_role(current_user, tableowner, 'MEMBER') AS member "
                    "FROM pg_tables WHERE schemaname = 'public'"
                )
            )
        }
        me = conn.execute(text("SELECT current_user")).scalar()
    assert owners, "the public schema holds the application's tables"
    assert me not in owners
    assert not any(owners.values())


def test_app_role_cannot_switch_row_level_security_off(clean_db: Database) -> None:
    with clean_db.engine.connect() as conn, pytest.raises(DBAPIError, match="must be owner"):
        conn.execute(text("ALTER TABLE resources DISABLE ROW LEVEL SECURITY"))


def test_role_bypasses_rls_is_false_for_the_app_role(clean_db: Database) -> None:
    with clean_db.engine.connect() as conn:
        assert rls.role_bypasses_rls(conn) is False


def test_role_bypasses_rls_is_true_for_the_owner_superuser(backend: Backend) -> None:
    engine = make_engine(backend.owner_url)
    try:
        with engine.connect() as conn:
            assert rls.role_bypasses_rls(conn) is True
    finally:
        engine.dispose()


def test_every_tenant_owned_table_has_forced_row_level_security(clean_db: Database) -> None:
    with clean_db.engine.connect() as conn:
        flags = {
            row.relname: (row.relrowsecurity, row.relforcerowsecurity)
            for row in conn.execute(
                text(
                    "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class "
                    "WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace"
                )
            )
        }
        policies = {
            row.tablename
            for row in conn.execute(
                text("SELECT tablename FROM pg_policies WHERE policyname = 'tenant_isolation'")
            )
        }
    assert TABLES
    assert {t: flags.get(t) for t in TABLES} == {t: (True, True) for t in TABLES}
    assert policies == set(TABLES)


# --- the ORM session mirrors its tenant into the transaction --------------------------------------


@pytest.fixture
def one_connection(backend: Backend) -> Iterator[sessionmaker]:
    """Sessions on an engine with exactly one pooled connection, so reuse is certain."""
    engine = make_engine(backend.app_url, pool_size=1, max_overflow=0)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


def test_raw_sql_through_a_scoped_session_sees_only_its_tenant(
    one_connection: sessionmaker, seeded: Seeded
) -> None:
    with one_connection() as session:
        scoping.enter_tenant(session, seeded.a)
        seen = {row[0] for row in session.execute(text("SELECT tenant_id FROM resources"))}
    assert seen == {seeded.a}


def test_pooled_connection_does_not_carry_a_tenant_into_the_next_session(
    one_connection: sessionmaker, seeded: Seeded
) -> None:
    with one_connection() as session:
        scoping.enter_tenant(session, seeded.a)
        first_pid = session.execute(text("SELECT pg_backend_pid()")).scalar()
        with scoping.cross_tenant(session):
            assert session.scalars(select(Resource.id)).all()
        session.commit()
    with one_connection() as session:
        assert session.execute(text("SELECT pg_backend_pid()")).scalar() == first_pid
        assert session.execute(text("SELECT tenant_id FROM resources")).all() == []


def test_pooled_connection_does_not_carry_a_tenant_into_raw_sql(
    one_connection: sessionmaker, seeded: Seeded
) -> None:
    """Plain `engine.connect()` runs no session hook: only transaction-local settings keep it clean."""
    engine = one_connection.kw["bind"]
    with one_connection() as session:
        scoping.enter_tenant(session, seeded.a)
        with scoping.cross_tenant(session):
            first_pid = session.execute(text("SELECT pg_backend_pid()")).scalar()
        session.commit()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT pg_backend_pid()")).scalar() == first_pid
        settings = conn.execute(
            text(
                "SELECT current_setting('tenantry.tenant_id', true),"
                " current_setting('tenantry.cross_tenant', true)"
            )
        ).one()
        assert tuple(settings) == ("", "")
        assert conn.execute(text("SELECT tenant_id FROM resources")).all() == []


def test_scoping_escapes_are_mirrored_and_undone(one_connection: sessionmaker, seeded: Seeded) -> None:
    def visible(session: object) -> set[uuid.UUID]:
        return {row[0] for row in session.execute(text("SELECT DISTINCT tenant_id FROM grants"))}  # type: ignore[attr-defined]

    with one_connection() as session:
        scoping.enter_tenant(session, seeded.a)
        assert visible(session) == {seeded.a}
        with scoping.cross_tenant(session):
            assert visible(session) == {seeded.a, seeded.b}
        assert visible(session) == {seeded.a}
        with scoping.in_tenant(session, seeded.b):
            assert visible(session) == {seeded.b}
        assert visible(session) == {seeded.a}
        scoping.enter_tenant(session, None)
        assert visible(session) == set()


def test_the_apps_cross_tenant_mode_sees_every_tenant(one_connection: sessionmaker, seeded: Seeded) -> None:
    with one_connection() as session, scoping.cross_tenant(session):
        seen = {row[0] for row in session.execute(text("SELECT tenant_id FROM resources"))}
    assert seen == {seeded.a, seeded.b}


def test_a_proof_holds_for_its_own_transaction_only(one_connection: sessionmaker, seeded: Seeded) -> None:
    """Copied out of a cross-tenant transaction, the proof opens nothing in the next one."""
    with one_connection() as session:
        with scoping.cross_tenant(session):
            assert len(session.scalars(select(Resource.id)).all()) == 4
            proof = session.execute(text("SELECT current_setting('tenantry.cross_tenant')")).scalar_one()
        session.commit()
        session.execute(text("SELECT set_config('tenantry.cross_tenant', :p, true)"), {"p": proof})
        assert session.execute(text("SELECT tenant_id FROM resources")).all() == []


def test_entering_cross_tenant_mode_costs_no_extra_statement(
    one_connection: sessionmaker, seeded: Seeded
) -> None:
    """One statement sets the context, for one tenant as for all of them."""
    engine = one_connection.kw["bind"]
    statements: list[str] = []

    def note(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(engine, "before_cursor_execute", note)
    try:
        with one_connection() as session:
            scoping.enter_tenant(session, seeded.a)
            session.scalars(select(Resource.id)).all()
        in_tenant, statements[:] = list(statements), []
        with one_connection() as session, scoping.cross_tenant(session):
            session.scalars(select(Resource.id)).all()
        crossing = list(statements)
    finally:
        event.remove(engine, "before_cursor_execute", note)
    assert len(in_tenant) == len(crossing) == 2
    assert "tenantry_cross_tenant(" in crossing[0] and "tenantry_cross_tenant(" not in in_tenant[0]

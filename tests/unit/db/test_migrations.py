"""Alembic migrations on a fresh database of the selected backend: round trip and no drift."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

import tenantry.db.tables  # noqa: F401  (registers every table on Base.metadata)
from tenantry.db import migrate, rls
from tenantry.db.base import Base
from tenantry.db.engine import make_engine
from tests.backends import Backend, create_backend

ALL_TABLES = {t.name for t in Base.metadata.sorted_tables}


def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(migrate.alembic_config("sqlite://"))


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def _revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def _drift(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(ctx, Base.metadata))
    finally:
        engine.dispose()


@dataclass
class RoundTrip:
    backend: Backend
    after_upgrade: set[str]
    after_downgrade: set[str]
    revision_after_downgrade: str | None
    after_second_upgrade: set[str]


@pytest.fixture(scope="module")
def round_trip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoundTrip]:
    """A fresh database taken through upgrade head → downgrade base → upgrade head."""
    backend = create_backend(tmp_path_factory.mktemp("migrations"), migrated=False)
    try:
        assert _tables(backend.owner_url) == set()
        migrate.upgrade(backend.owner_url, app_url=backend.app_url)
        first = _tables(backend.owner_url)
        migrate.downgrade(backend.owner_url, "base")
        empty = _tables(backend.owner_url)
        revision = _revision(backend.owner_url)
        migrate.upgrade(backend.owner_url, app_url=backend.app_url)
        yield RoundTrip(backend, first, empty, revision, _tables(backend.owner_url))
    finally:
        backend.drop()


def test_upgrade_head_creates_every_mapped_table(round_trip: RoundTrip) -> None:
    assert round_trip.after_upgrade == ALL_TABLES


def test_downgrade_base_removes_every_table(round_trip: RoundTrip) -> None:
    assert round_trip.after_downgrade == set()
    assert round_trip.revision_after_downgrade is None


def test_upgrade_after_downgrade_recreates_every_table_at_head(round_trip: RoundTrip) -> None:
    assert round_trip.after_second_upgrade == ALL_TABLES
    assert _revision(round_trip.backend.owner_url) == _script().get_current_head()


def test_autogenerate_finds_no_drift_between_migrations_and_models(round_trip: RoundTrip) -> None:
    assert _drift(round_trip.backend.owner_url) == []


def test_app_role_can_use_the_tables_after_the_round_trip(round_trip: RoundTrip) -> None:
    engine = make_engine(round_trip.backend.app_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM tenants")).scalar() == 0
            assert conn.execute(text("SELECT count(*) FROM resources")).scalar() == 0
    finally:
        engine.dispose()


@pytest.mark.postgres_only
def test_round_trip_leaves_row_level_security_policies_in_place(round_trip: RoundTrip) -> None:
    engine = make_engine(round_trip.backend.owner_url)
    try:
        with engine.connect() as conn:
            policies = {
                row.tablename
                for row in conn.execute(
                    text("SELECT tablename FROM pg_policies WHERE policyname = 'tenant_isolation'")
                )
            }
    finally:
        engine.dispose()
    assert policies == set(rls.tenant_owned_tables())


def test_each_revision_downgrades_and_upgrades_on_its_own(tmp_path: Path) -> None:
    """Step through every revision, one downgrade at a time, so each downgrade() is exercised alone."""
    revisions = [r.revision for r in reversed(list(_script().walk_revisions()))]
    backend = create_backend(tmp_path, migrated=False)
    try:
        url = backend.owner_url
        tables_at: dict[str, set[str]] = {}
        for rev in revisions:
            migrate.upgrade(url, rev, app_url=backend.app_url)
            assert _revision(url) == rev
            tables_at[rev] = _tables(url)
        for previous, rev in reversed(list(zip([None, *revisions], revisions, strict=False))):
            migrate.downgrade(url, previous or "base")
            assert _revision(url) == previous
            assert _tables(url) == (tables_at[previous] if previous else set())
            migrate.upgrade(url, rev, app_url=backend.app_url)
            assert _tables(url) == tables_at[rev]
            migrate.downgrade(url, previous or "base")
        assert _tables(url) == set()
    finally:
        backend.drop()


def test_settings_catalog_migration_keeps_each_tenants_require_2fa(tmp_path: Path) -> None:
    """0011 moves `tenants.require_2fa` into the settings catalog's overrides and back."""
    import sqlalchemy as sa

    from tenantry.db.types import JSONType, UTCDateTime, utcnow
    from tenantry.ids import uuid7

    backend = create_backend(tmp_path, migrated=False)
    tenants = sa.table(
        "tenants",
        sa.column("id", sa.Uuid()),
        sa.column("slug", sa.String()),
        sa.column("name", sa.String()),
        sa.column("description", sa.Text()),
        sa.column("status", sa.String()),
        sa.column("require_2fa", sa.Boolean()),
        sa.column("version", sa.Integer()),
        sa.column("created_at", UTCDateTime()),
        sa.column("updated_at", UTCDateTime()),
    )
    overrides = sa.table(
        "tenant_settings",
        sa.column("tenant_id", sa.Uuid()),
        sa.column("category", sa.String()),
        sa.column("key", sa.String()),
        sa.column("value", JSONType),
    )
    strict, lax = uuid7(), uuid7()
    try:
        url = backend.owner_url
        migrate.upgrade(url, "0010", app_url=backend.app_url)
        engine = make_engine(url)
        try:
            with engine.begin() as conn:
                now = utcnow()
                for tid, slug, flag in ((strict, "strict", True), (lax, "lax", False)):
                    conn.execute(
                        tenants.insert().values(
                            id=tid,
                            slug=slug,
                            name=slug,
                            description="",
                            status="active",
                            require_2fa=flag,
                            version=1,
                            created_at=now,
                            updated_at=now,
                        )
                    )
            migrate.upgrade(url, "0011", app_url=backend.app_url)
            with engine.begin() as conn:
                if conn.dialect.name == "postgresql":  # FORCEd RLS applies to the owner too
                    conn.execute(text("SELECT set_config('tenantry.cross_tenant', 'on', true)"))
                rows = conn.execute(sa.select(overrides)).all()
                assert [(r.tenant_id, r.category, r.key, r.value) for r in rows] == [
                    (strict, "security", "require_2fa", True)
                ]
                assert "require_2fa" not in {c["name"] for c in inspect(conn).get_columns("tenants")}
            migrate.downgrade(url, "0010")
            with engine.begin() as conn:
                flags = dict(conn.execute(sa.select(tenants.c.id, tenants.c.require_2fa)).all())
                assert flags == {strict: True, lax: False}
        finally:
            engine.dispose()
    finally:
        backend.drop()


def test_migrations_that_rebuild_a_table_keep_the_rows_that_refer_to_it(tmp_path: Path) -> None:
    """SQLite rebuilds `users` in batch mode (copy, drop, rename); that must not cascade.

    With foreign keys on during the migration, dropping the old `users` table would delete every
    membership (ON DELETE CASCADE). Down to 0007 and back to head rebuilds `users` twice.
    """
    from tenantry.ids import uuid7

    backend = create_backend(tmp_path, migrated=False)
    tables = Base.metadata.tables
    tenant_id, user_id = uuid7(), uuid7()
    try:
        url = backend.owner_url
        migrate.upgrade(url, app_url=backend.app_url)
        engine = make_engine(url)
        try:
            if engine.dialect.name != "sqlite":
                pytest.skip("batch-mode table rebuilds happen on SQLite only")
            with engine.begin() as conn:
                conn.execute(tables["tenants"].insert().values(id=tenant_id, slug="kept", name="Kept"))
                conn.execute(tables["users"].insert().values(id=user_id, email="kept@example.com"))
                conn.execute(tables["memberships"].insert().values(tenant_id=tenant_id, user_id=user_id))
            migrate.downgrade(url, "0007")
            migrate.upgrade(url, app_url=backend.app_url)
            with engine.connect() as conn:
                members = conn.execute(text("SELECT user_id FROM memberships")).all()
                users = conn.execute(text("SELECT email FROM users")).scalars().all()
            assert len(members) == 1
            assert users == ["kept@example.com"]
        finally:
            engine.dispose()
    finally:
        backend.drop()

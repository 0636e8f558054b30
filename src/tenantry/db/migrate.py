"""Run Alembic migrations programmatically, and hand the application role its privileges."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.engine import make_url

from tenantry.db.engine import make_engine, normalise_url

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", normalise_url(url).replace("%", "%%"))
    return cfg


@cache
def script_heads() -> frozenset[str]:
    """The head revision(s) of the migrations shipped with this code (read once per process)."""
    return frozenset(ScriptDirectory(str(MIGRATIONS)).get_heads())


def current_revisions(conn: Connection) -> frozenset[str]:
    """The revision(s) the database is at; empty when it was never migrated (no version table)."""
    return frozenset(MigrationContext.configure(conn).get_current_heads())


def at_head(conn: Connection) -> bool:
    """Whether the database's schema is the one this code expects (what `tenantry init` makes)."""
    return current_revisions(conn) == script_heads()


def _migration_engine(url: str) -> Engine:
    """The owner's engine, with SQLite's foreign keys off while the schema changes.

    On SQLite, Alembic's batch mode rebuilds a table by copy, drop and rename; with foreign keys
    on, dropping `users` or `tenants` would cascade-delete every row that refers to them. The
    keys are checked as a whole once the migration is done (`_check_foreign_keys`).
    """
    engine = make_engine(url)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _foreign_keys_off(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.execute("PRAGMA foreign_keys=OFF")

    return engine


def _check_foreign_keys(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"migration left rows without their parent: {broken[:5]}")


def upgrade(url: str, revision: str = "head", *, app_url: str | None = None) -> None:
    """Migrate with the owner `url`; on PostgreSQL grant DML to the app's role if it differs."""
    engine = _migration_engine(url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            _check_foreign_keys(conn)
            if conn.dialect.name == "postgresql" and app_url:
                app_user = make_url(normalise_url(app_url)).username
                owner = conn.execute(text("SELECT current_user")).scalar()
                if app_user and app_user != owner:
                    grant_app_role(conn, app_user)
    finally:
        engine.dispose()


def downgrade(url: str, revision: str = "base") -> None:
    engine = _migration_engine(url)
    try:
        with engine.begin() as conn:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, revision)
            _check_foreign_keys(conn)
    finally:
        engine.dispose()


def grant_app_role(conn: object, role: str) -> None:
    quoted = '"' + role.replace('"', '""') + '"'
    for stmt in (
        f"GRANT USAGE ON SCHEMA public TO {quoted}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {quoted}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {quoted}",
        # Audit events are append-only: the application may read and add them, never change them.
        f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM {quoted}",
    ):
        conn.execute(text(stmt))  # type: ignore[attr-defined]

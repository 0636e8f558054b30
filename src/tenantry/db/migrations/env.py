"""Alembic environment: metadata from the mapped tables, URL from settings or the caller."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

import tenantry.db.tables  # noqa: F401  (registers every table)
from tenantry.db.base import Base
from tenantry.db.engine import make_engine

target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    config = context.config
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        from tenantry.config import load_settings

        s = load_settings()
        url = s.migration_database_url or s.database_url
    engine = make_engine(url)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `tenantry migrate`")
run_migrations_online()

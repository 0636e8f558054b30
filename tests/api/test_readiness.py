"""`/readyz`: ready only when the database is reachable and migrated to this code's head."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from tenantry.api.app import create_app
from tenantry.config import load_settings
from tenantry.db import migrate
from tenantry.db.session import Database
from tests.backends import Backend, create_backend


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Backend]:
    backend = create_backend(tmp_path, migrated=False)
    yield backend
    backend.drop()


@pytest.fixture
def fresh_db(fresh: Backend) -> Iterator[Database]:
    database = Database(fresh.app_url)
    yield database
    database.dispose()


def _probe(fresh: Backend, db: Database) -> TestClient:
    # No lifespan: readiness must not depend on start-up having run.
    return TestClient(create_app(load_settings(database_url=fresh.app_url), db=db))


def _assert_pending(r) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == "migrations_pending"
    assert "tenantry init" in body["detail"]


def test_readyz_503_on_a_database_that_was_never_migrated(fresh: Backend, fresh_db: Database) -> None:
    _assert_pending(_probe(fresh, fresh_db).get("/readyz"))


def test_readyz_503_while_a_migration_is_pending(fresh: Backend, fresh_db: Database) -> None:
    migrate.upgrade(fresh.owner_url, app_url=fresh.app_url)
    migrate.downgrade(fresh.owner_url, "-1")  # one revision short of what this code needs
    _assert_pending(_probe(fresh, fresh_db).get("/readyz"))


def test_readyz_turns_ready_once_migrated_and_then_costs_one_query(
    fresh: Backend, fresh_db: Database
) -> None:
    client = _probe(fresh, fresh_db)
    _assert_pending(client.get("/readyz"))
    migrate.upgrade(fresh.owner_url, app_url=fresh.app_url)
    assert client.get("/readyz").json() == {"status": "ready"}

    statements: list[str] = []

    def record(_conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
        statements.append(statement)

    event.listen(fresh_db.engine, "before_cursor_execute", record)
    try:
        r = client.get("/readyz")
    finally:
        event.remove(fresh_db.engine, "before_cursor_execute", record)
    assert r.status_code == 200
    assert [s for s in statements if s != "BEGIN"] == ["SELECT 1"]  # SQLite's engine says BEGIN

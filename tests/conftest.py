"""Shared fixtures: the backend under test, the app, personas and API clients."""

from __future__ import annotations

import os

# Cheap argon2 parameters keep the suite fast; the algorithm (argon2id) is the same.
os.environ.setdefault("TENANTRY_ARGON2_MEMORY_KIB", "1024")
os.environ.setdefault("TENANTRY_ARGON2_TIME_COST", "1")
os.environ.setdefault("TENANTRY_LOG_LEVEL", "WARNING")
os.environ.setdefault("TENANTRY_RUN_JOBS", "false")

from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import text  # noqa: E402

from tenantry.api.app import create_app  # noqa: E402
from tenantry.config import load_settings  # noqa: E402
from tenantry.db.base import Base  # noqa: E402
from tenantry.db.session import Database  # noqa: E402
from tests.backends import Backend, create_backend, selected  # noqa: E402
from tests.personas import Personas, build_personas  # noqa: E402


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if selected() == "postgres":
        # Browser and process tests drive what a real client sees; the database behind adds
        # nothing a second run would catch (the API suites run on both).
        # The console's page tests and the CLI's command tests check the layer in front of the
        # services (forms, redirects, output, exit codes); the services below them run on both
        # databases through the API suites.
        once = pytest.mark.skip(reason="runs once, on the SQLite pass")
        for item in items:
            front = item.nodeid.startswith(("tests/web/", "tests/unit/test_cli"))
            if "e2e" in item.keywords or front:
                item.add_marker(once)
        return
    skip = pytest.mark.skip(reason="PostgreSQL only (set TENANTRY_TEST_BACKEND=postgres)")
    for item in items:
        # The cluster and fault tests run PostgreSQL themselves; once, on the PostgreSQL pass.
        if "postgres_only" in item.keywords or "cluster" in item.keywords or "fault" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    b = create_backend(tmp_path_factory.mktemp("db"))
    yield b
    b.drop()


@pytest.fixture(scope="session")
def db(backend: Backend) -> Iterator[Database]:
    database = Database(backend.app_url)
    yield database
    database.dispose()


def _owner_truncate(backend: Backend) -> None:
    """Empty every table between tests (as the owner, so RLS does not hide rows)."""
    owner = Database(backend.owner_url)
    tables = [t.name for t in reversed(Base.metadata.sorted_tables) if t.name != "authz_state"]
    with owner.engine.begin() as conn:
        # Keep the one authz_state row, but move its version so every permission cache resets.
        conn.execute(text("UPDATE authz_state SET version = version + 1"))
        if owner.dialect == "postgresql":
            # Audit events are append-only; the owner may clear them with the maintenance switch.
            conn.execute(text("SET LOCAL tenantry.audit_maintenance = 'on'"))
            conn.execute(text("TRUNCATE " + ", ".join(tables) + " CASCADE"))
        else:
            for t in tables:
                conn.execute(text(f"DELETE FROM {t}"))
    owner.dispose()


@pytest.fixture
def clean_db(backend: Backend, db: Database) -> Iterator[Database]:
    yield db
    _owner_truncate(backend)


@pytest.fixture
def app(clean_db: Database, backend: Backend) -> FastAPI:
    settings = load_settings(database_url=backend.app_url)
    return create_app(settings, db=clean_db)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def personas(clean_db: Database) -> Personas:
    return build_personas(clean_db)


@pytest.fixture
def api(client: TestClient, personas: Personas) -> Callable[[str | None], TestClient]:
    """`api("acme_admin").get(...)`: the test client with that persona's bearer token."""

    def for_persona(name: str | None) -> TestClient:
        client.headers.pop("Authorization", None)
        if name is not None:
            client.headers["Authorization"] = f"Bearer {personas.tokens[name]}"
        return client

    return for_persona


@pytest.fixture(autouse=True)
def fresh_login_limiter() -> Iterator[None]:
    """The per-address login limiter is process-wide: give every test a fresh one."""
    from tenantry.services import throttle

    throttle.set_limiter(None)
    yield
    throttle.set_limiter(None)


@pytest.fixture(autouse=True)
def fresh_trace_limits() -> Iterator[None]:
    """The budgets for refusal traces are process-wide too: every test starts with full ones."""
    from tenantry.services import audit

    for kind in ("denied", "hidden"):
        audit.set_sampler(kind, None)
    yield
    for kind in ("denied", "hidden"):
        audit.set_sampler(kind, None)


@pytest.fixture
def tmp_dir(tmp_path: Path) -> Path:
    return tmp_path

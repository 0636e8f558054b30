"""Test databases: a SQLite file always; a throw-away PostgreSQL database when configured.

On PostgreSQL the migrations run as the owner (the URL given in TENANTRY_TEST_POSTGRES_URL,
typically a superuser) while the application connects as a freshly created plain role — not
owner, not superuser, no BYPASSRLS — so row-level security really applies to it.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tenantry.db import migrate
from tenantry.db.engine import normalise_url


@dataclass
class Backend:
    name: str
    app_url: str
    owner_url: str
    _admin_url: str | None = None
    _dbname: str | None = None
    _role: str | None = None

    def drop(self) -> None:
        if self.name != "postgres":
            path = make_url(self.app_url).database
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            return
        eng = create_engine(normalise_url(self._admin_url or ""), isolation_level="AUTOCOMMIT")
        with eng.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self._dbname}" WITH (FORCE)'))
            conn.execute(text(f'DROP ROLE IF EXISTS "{self._role}"'))
        eng.dispose()


def selected() -> str:
    return os.environ.get("TENANTRY_TEST_BACKEND", "sqlite")


def postgres_admin_url() -> str | None:
    return os.environ.get("TENANTRY_TEST_POSTGRES_URL")


def create_backend(tmp_dir: Path, name: str | None = None, *, migrated: bool = True) -> Backend:
    name = name or selected()
    if name == "sqlite":
        url = f"sqlite:///{tmp_dir / f'tenantry-{secrets.token_hex(4)}.db'}"
        backend = Backend("sqlite", url, url)
    else:
        admin = postgres_admin_url()
        if not admin:
            raise RuntimeError("TENANTRY_TEST_POSTGRES_URL is not set")
        suffix = secrets.token_hex(4)
        dbname, role = f"tenantry_test_{suffix}", f"tenantry_app_{suffix}"
        eng = create_engine(normalise_url(admin), isolation_level="AUTOCOMMIT")
        with eng.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{dbname}"'))
            conn.execute(text(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE'))
        eng.dispose()
        owner = make_url(normalise_url(admin)).set(database=dbname)
        app = owner.set(username=role, password=None)
        backend = Backend(
            "postgres",
            app.render_as_string(hide_password=False),
            owner.render_as_string(hide_password=False),
            admin,
            dbname,
            role,
        )
    if migrated:
        migrate.upgrade(backend.owner_url, app_url=backend.app_url)
    return backend

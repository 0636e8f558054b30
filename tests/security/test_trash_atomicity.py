"""Kill tests: a process SIGKILLed inside a trash operation leaves all or nothing.

A subprocess opens `Database(url).unit_of_work()`, runs delete / restore / purge through the
services as the system principal, flushes every statement to the database, reports that it
got that far, and kills itself before the unit of work commits. Afterwards nothing may have
changed: the database, not the process, decides what survives.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tenantry.authz import system_principal
from tenantry.db import scoping
from tenantry.db.base import Base, SoftDeletable
from tenantry.db.session import Database
from tenantry.db.tables import DeletionBatch, Resource, ResourceUniqueValue, Tenant
from tenantry.services import resource_types, tenants, trash
from tenantry.services.context import ServiceContext
from tests.backends import Backend
from tests.personas import Personas, build_personas

RESOURCES = 2_000
MARKER = "REACHED-KILL-POINT"
REPO = Path(__file__).resolve().parents[2]

PRELUDE = """
import os, signal, sys, uuid
from tenantry.authz import system_principal
from tenantry.db.session import Database
from tenantry.db.tables import DeletionBatch
from tenantry.services import tenants, trash
from tenantry.services.context import ServiceContext

db = Database(os.environ["TENANTRY_DATABASE_URL"])
with db.unit_of_work() as session:
    ctx = ServiceContext(session=session, principal=system_principal("kill-test"))
"""

KILL = """
    session.flush()
    print("{marker}", counts, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
print("COMMITTED", flush=True)
"""

DELETE_TENANT = """
    tenant = tenants.find_visible(ctx, "acme")
    _batch, counts = tenants.delete_tenant(ctx, tenant)
"""

RESTORE_BATCH = """
    counts = trash.restore_batch(ctx, uuid.UUID(sys.argv[1]))
"""

PURGE_BATCH = """
    counts = trash.purge_batch(ctx, uuid.UUID(sys.argv[1]), confirm=True)
"""


@pytest.fixture
def seeded(clean_db: Database) -> Iterator[Personas]:
    """acme with ~2,000 resources (hosts with unique addresses, each with services)."""
    personas = build_personas(clean_db)
    with clean_db.unit_of_work() as session:
        ctx = ServiceContext(session=session, principal=system_principal("tests"))
        resource_types.ensure_builtin_types(ctx)
    acme = personas.acme.id
    with clean_db.unit_of_work() as session:
        scoping.enter_tenant(session, acme)
        hosts = [
            Resource(
                tenant_id=acme,
                id=uuid.uuid4(),
                type="host",
                name=f"host-{i}",
                attributes={"ip_address": f"10.{i // 250}.{i % 250}.1"},
            )
            for i in range(RESOURCES // 2)
        ]
        session.add_all(hosts)
        session.flush()
        session.add_all(
            ResourceUniqueValue(
                tenant_id=acme,
                resource_id=h.id,
                type="host",
                field="ip_address",
                value=h.attributes["ip_address"],
            )
            for h in hosts
        )
        session.add_all(
            Resource(tenant_id=acme, type="service", name=f"svc-{i}", parent_id=h.id, attributes={"port": 22})
            for i, h in enumerate(hosts)
        )
    yield personas


def _run_and_kill(backend: Backend, body: str, *args: str) -> str:
    script = (
        PRELUDE
        + textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
        + "\n"
        + KILL.format(marker=MARKER)
    )
    env = {**os.environ, "TENANTRY_DATABASE_URL": backend.app_url}
    proc = subprocess.run(
        [sys.executable, "-c", script, *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, proc.stdout, proc.stderr)
    assert MARKER in proc.stdout, proc.stderr  # the work was done (and flushed) before the kill
    assert "COMMITTED" not in proc.stdout
    return proc.stdout


def _soft_deletable_tables() -> list[Any]:
    return [m.class_ for m in Base.registry.mappers if issubclass(m.class_, SoftDeletable)]


def _state(backend: Backend) -> dict[str, Any]:
    """Every soft-deletable table's (rows, trashed rows, batch ids), and the batches, read as the owner."""
    owner = Database(backend.owner_url)
    try:
        out: dict[str, Any] = {}
        with owner.sessions() as s, scoping.cross_tenant(s), scoping.include_deleted(s):
            for model in _soft_deletable_tables():
                total = s.scalar(select(func.count()).select_from(model)) or 0
                trashed = (
                    s.scalar(select(func.count()).select_from(model).where(model.deleted_at.is_not(None)))
                    or 0
                )
                batches = sorted(str(b) for b in s.scalars(select(model.deletion_batch_id).distinct()) if b)
                out[model.__tablename__] = (total, trashed, batches)
            out["deletion_batches"] = [
                (str(b.id), b.restored_at, b.purged_at)
                for b in s.scalars(select(DeletionBatch).order_by(DeletionBatch.id))
            ]
        return out
    finally:
        owner.dispose()


def _delete_acme(db: Database) -> str:
    with db.unit_of_work() as session:
        ctx = ServiceContext(session=session, principal=system_principal("tests"))
        batch, _ = tenants.delete_tenant(ctx, tenants.find_visible(ctx, "acme"))
    return str(batch)


def test_kill_during_tenant_delete_changes_nothing(backend, clean_db, seeded):
    before = _state(backend)
    assert before["resources"] == (RESOURCES, 0, [])
    out = _run_and_kill(backend, DELETE_TENANT)
    assert f"'resources': {RESOURCES}" in out
    after = _state(backend)
    assert after == before
    batches = after.pop("deletion_batches")
    assert batches == []
    for table, (_total, trashed, batch_ids) in after.items():
        assert (trashed, batch_ids) == (0, []), table
    with clean_db.sessions() as s:
        assert s.scalar(select(Tenant.deleted_at).where(Tenant.slug == "acme")) is None


def test_kill_during_restore_leaves_the_batch_in_the_trash(backend, clean_db, seeded):
    batch = _delete_acme(clean_db)
    before = _state(backend)
    assert before["resources"] == (RESOURCES, RESOURCES, [batch])
    assert before["deletion_batches"] == [(batch, None, None)]
    out = _run_and_kill(backend, RESTORE_BATCH, batch)
    assert f"'resources': {RESOURCES}" in out
    assert _state(backend) == before
    with clean_db.sessions() as s:
        assert s.scalar(select(Tenant.id).where(Tenant.slug == "acme")) is None  # still in the trash


def test_kill_during_purge_leaves_the_batch_in_the_trash(backend, clean_db, seeded):
    batch = _delete_acme(clean_db)
    before = _state(backend)
    out = _run_and_kill(backend, PURGE_BATCH, batch)
    assert f"'resources': {RESOURCES}" in out
    assert _state(backend) == before
    with clean_db.sessions() as s:
        row = s.get(DeletionBatch, uuid.UUID(batch))
        assert row is not None and row.purged_at is None and row.restored_at is None
    # The batch is intact: a real restore afterwards brings every row back.
    with clean_db.unit_of_work() as session:
        ctx = ServiceContext(session=session, principal=system_principal("tests"))
        restored = trash.restore_batch(ctx, uuid.UUID(batch))
    assert restored["resources"] == RESOURCES
    assert _state(backend)["resources"] == (RESOURCES, 0, [])

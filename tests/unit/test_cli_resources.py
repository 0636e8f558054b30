"""`tenantry resources export|import` and `tenantry trash list|restore|purge` against the test backend."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from tenantry.authz import system_principal
from tenantry.cli import app
from tenantry.cli.common import EXIT_CONFLICT, EXIT_INVALID, EXIT_NOT_FOUND, console
from tenantry.db import scoping
from tenantry.db.session import Database
from tenantry.db.tables import AuditEvent, DeletionBatch, Resource
from tenantry.db.types import utcnow
from tenantry.services import resource_types, resources, tenants
from tenantry.services.context import ServiceContext
from tests.backends import Backend
from tests.personas import Personas, build_personas

Invoke = Callable[..., Result]


@pytest.fixture
def world(clean_db: Database) -> Personas:
    personas = build_personas(clean_db)
    with clean_db.unit_of_work() as session:
        resource_types.ensure_builtin_types(
            ServiceContext(session=session, principal=system_principal("tests"))
        )
    return personas


@pytest.fixture
def cli(backend: Backend, world: Personas, monkeypatch: pytest.MonkeyPatch) -> Iterator[Invoke]:
    """`cli("trash", "list")`: run a command against the test database as the system."""
    monkeypatch.setattr(console, "width", 250)  # batch ids must not be cut off in tables

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(
            app, list(args), env={"TENANTRY_DATABASE_URL": backend.app_url}, input=input
        )

    yield invoke


def _ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.output


def _ctx(session: Any, tenant: str | None = None) -> ServiceContext:
    ctx = ServiceContext(session=session, principal=system_principal("tests"))
    if tenant is not None:
        ctx.enter(tenants.find_visible(ctx, tenant))
    return ctx


def _tree(db: Database, tenant: str = "acme") -> dict[str, uuid.UUID]:
    """host → service → alert, a second host, project + inventory + deployment referencing both."""
    with db.unit_of_work() as session:
        ctx = _ctx(session, tenant)
        h1 = resources.create_resource(ctx, type="host", name="web-1", attributes={"ip_address": "10.0.0.1"})
        h2 = resources.create_resource(ctx, type="host", name="web-2", attributes={"ip_address": "10.0.0.2"})
        s1 = resources.create_resource(
            ctx, type="service", name="ssh", parent_id=h1.id, attributes={"port": 22}
        )
        a1 = resources.create_resource(
            ctx, type="alert", name="down", parent_id=s1.id, attributes={"severity": "critical"}
        )
        p = resources.create_resource(ctx, type="project", name="site", attributes={})
        i = resources.create_resource(ctx, type="inventory", name="prod", attributes={})
        d = resources.create_resource(
            ctx,
            type="deployment",
            name="rollout",
            attributes={"project_id": str(p.id), "inventory_id": str(i.id)},
        )
        return {"h1": h1.id, "h2": h2.id, "s1": s1.id, "a1": a1.id, "p": p.id, "i": i.id, "d": d.id}


def _resources(db: Database, tenant_id: uuid.UUID) -> dict[str, Resource]:
    with db.sessions() as s:
        scoping.enter_tenant(s, tenant_id)
        return {r.name: r for r in s.scalars(select(Resource))}


def _trashed(db: Database) -> int:
    with db.sessions() as s, scoping.cross_tenant(s), scoping.include_deleted(s):
        return (
            s.scalar(select(func.count()).select_from(Resource).where(Resource.deleted_at.is_not(None))) or 0
        )


# --- resources export / import ----------------------------------------------------------------


def test_export_resources_writes_parents_before_children(cli, clean_db, tmp_path: Path):
    ids = _tree(clean_db)
    out = tmp_path / "acme.jsonl"
    _ok(cli("resources", "export", "acme", "-o", str(out)))
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 7
    position = {r["id"]: n for n, r in enumerate(rows)}
    for r in rows:
        if r["parent_id"]:
            assert position[r["parent_id"]] < position[r["id"]]
    by_name = {r["name"]: r for r in rows}
    assert by_name["ssh"]["parent_id"] == str(ids["h1"])
    assert by_name["rollout"]["attributes"] == {"project_id": str(ids["p"]), "inventory_id": str(ids["i"])}


def test_export_then_import_into_other_tenant_recreates_tree_with_new_ids(
    cli, clean_db, world, tmp_path: Path
):
    old = _tree(clean_db)
    out = tmp_path / "f.jsonl"
    _ok(cli("resources", "export", "acme", "-o", str(out)))
    output = _ok(cli("resources", "import", "globex", "-i", str(out)))
    assert "imported" in output and "7" in output
    acme = _resources(clean_db, world.acme.id)
    globex = _resources(clean_db, world.globex.id)
    assert sorted(globex) == sorted(acme)
    assert not {r.id for r in globex.values()} & set(old.values())  # all new ids
    for name, r in globex.items():
        assert r.type == acme[name].type
        assert r.tenant_id == world.globex.id
    assert globex["ssh"].parent_id == globex["web-1"].id
    assert globex["down"].parent_id == globex["ssh"].id
    assert globex["web-1"].parent_id is None
    assert globex["web-1"].attributes == {"ip_address": "10.0.0.1"}
    assert globex["rollout"].attributes == {
        "project_id": str(globex["site"].id),
        "inventory_id": str(globex["prod"].id),
    }
    assert acme["rollout"].attributes == {"project_id": str(old["p"]), "inventory_id": str(old["i"])}
    with clean_db.sessions() as s:
        creates = s.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "resource.create", AuditEvent.tenant_id == world.globex.id)
        )
    assert creates == 7


def test_import_children_listed_before_parents_still_resolves(cli, clean_db, world, tmp_path: Path):
    _tree(clean_db)
    out = tmp_path / "f.jsonl"
    _ok(cli("resources", "export", "acme", "-o", str(out)))
    out.write_text("\n".join(reversed(out.read_text().splitlines())) + "\n")
    _ok(cli("resources", "import", "globex", "-i", str(out)))
    globex = _resources(clean_db, world.globex.id)
    assert globex["down"].parent_id == globex["ssh"].id
    assert globex["rollout"].attributes["project_id"] == str(globex["site"].id)


def test_import_clashing_unique_value_fails_and_writes_nothing(cli, clean_db, world, tmp_path: Path):
    _tree(clean_db)
    out = tmp_path / "f.jsonl"
    _ok(cli("resources", "export", "acme", "-o", str(out)))
    before = _resources(clean_db, world.acme.id)
    result = cli("resources", "import", "acme", "-i", str(out))  # the same addresses again
    assert result.exit_code == EXIT_CONFLICT
    assert "unique_violation" in result.output
    assert _resources(clean_db, world.acme.id).keys() == before.keys()
    assert len(_resources(clean_db, world.acme.id)) == 7


def test_import_unresolvable_parent_fails_and_writes_nothing(cli, clean_db, world, tmp_path: Path):
    src = tmp_path / "bad.jsonl"
    src.write_text(
        json.dumps(
            {"id": str(uuid.uuid4()), "type": "project", "name": "ok", "attributes": {}, "parent_id": None}
        )
        + "\n"
        + json.dumps(
            {
                "id": str(uuid.uuid4()),
                "type": "service",
                "name": "orphan",
                "attributes": {},
                "parent_id": str(uuid.uuid4()),
            }
        )
        + "\n"
    )
    result = cli("resources", "import", "globex", "-i", str(src))
    assert result.exit_code != 0
    assert _resources(clean_db, world.globex.id) == {}


def test_import_into_unknown_tenant_fails(cli, clean_db, tmp_path: Path):
    src = tmp_path / "f.jsonl"
    src.write_text("")
    result = cli("resources", "import", "no-such-tenant", "-i", str(src))
    assert result.exit_code == EXIT_NOT_FOUND
    assert "not_found" in result.output


# --- trash list / restore / purge -----------------------------------------------------------


def _delete_host(db: Database, rid: uuid.UUID) -> str:
    with db.unit_of_work() as session:
        return str(resources.delete_resource(_ctx(session, "acme"), rid))


def test_trash_list_shows_every_batch_with_counts(cli, clean_db):
    ids = _tree(clean_db)
    batch = _delete_host(clean_db, ids["h1"])
    with clean_db.unit_of_work() as session:
        ctx = _ctx(session)
        tenant_batch, _ = tenants.delete_tenant(ctx, tenants.find_visible(ctx, "globex"))
    output = _ok(cli("trash", "list"))
    assert batch in output
    assert str(tenant_batch) in output
    assert "host web-1" in output
    assert "resources 3" in output
    listed = json.loads(_ok(cli("trash", "list", "--output", "json")))
    assert {b["batch"] for b in listed} == {batch, str(tenant_batch)}
    assert next(b for b in listed if b["batch"] == batch)["counts"]["resources"] == 3


def test_trash_restore_brings_the_family_back(cli, clean_db, world):
    ids = _tree(clean_db)
    batch = _delete_host(clean_db, ids["h1"])
    assert _trashed(clean_db) == 3
    output = _ok(cli("trash", "restore", batch))
    assert "restored" in output
    assert _trashed(clean_db) == 0
    acme = _resources(clean_db, world.acme.id)
    assert acme["ssh"].id == ids["s1"] and acme["ssh"].parent_id == ids["h1"]
    assert batch not in _ok(cli("trash", "list"))


def test_trash_restore_conflict_exits_conflict_and_restores_nothing(cli, clean_db):
    ids = _tree(clean_db)
    batch = _delete_host(clean_db, ids["h1"])
    with clean_db.unit_of_work() as session:
        resources.create_resource(
            _ctx(session, "acme"), type="host", name="taker", attributes={"ip_address": "10.0.0.1"}
        )
    result = cli("trash", "restore", batch)
    assert result.exit_code == EXIT_CONFLICT
    assert "restore_conflict" in result.output
    assert _trashed(clean_db) == 3


def test_trash_restore_unknown_batch_exits_not_found(cli):
    result = cli("trash", "restore", str(uuid.uuid4()))
    assert result.exit_code == EXIT_NOT_FOUND
    assert "not_found" in result.output


def test_trash_purge_yes_removes_rows_for_good(cli, clean_db):
    ids = _tree(clean_db)
    batch = _delete_host(clean_db, ids["h1"])
    output = _ok(cli("trash", "purge", batch, "--yes"))
    assert "purged" in output
    assert _trashed(clean_db) == 0
    with clean_db.sessions() as s, scoping.cross_tenant(s), scoping.include_deleted(s):
        assert s.scalar(select(func.count()).select_from(Resource).where(Resource.id == ids["h1"])) == 0
        assert s.get(DeletionBatch, uuid.UUID(batch)).purged_at is not None
        purge_events = s.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "resource.purge")
        )
    assert purge_events == 1
    assert cli("trash", "restore", batch).exit_code == EXIT_NOT_FOUND


def test_trash_purge_declined_prompt_purges_nothing(cli, clean_db):
    ids = _tree(clean_db)
    batch = _delete_host(clean_db, ids["h1"])
    result = cli("trash", "purge", batch, input="n\n")
    assert result.exit_code == EXIT_INVALID  # no terminal to ask and no --yes: refused
    assert _trashed(clean_db) == 3
    assert batch in _ok(cli("trash", "list"))


def test_trash_purge_without_batch_or_expired_is_a_usage_error(cli, clean_db):
    result = cli("trash", "purge", "--yes")
    assert result.exit_code == 2


def test_trash_purge_expired_purges_only_batches_past_retention(cli, clean_db):
    ids = _tree(clean_db)
    old = _delete_host(clean_db, ids["h1"])
    young = _delete_host(clean_db, ids["h2"])
    with clean_db.unit_of_work() as session:
        session.execute(
            update(DeletionBatch)
            .where(DeletionBatch.id == uuid.UUID(old))
            .values(purge_after=utcnow() - timedelta(days=1))
        )
    output = _ok(cli("trash", "purge", "--expired"))
    assert "purged 1 batch" in output
    listed = _ok(cli("trash", "list"))
    assert old not in listed and young in listed
    with clean_db.sessions() as s:
        assert s.get(DeletionBatch, uuid.UUID(young)).purged_at is None

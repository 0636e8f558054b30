"""Audit integrity: hash chains per tenant (and one global), verified by API and CLI.

Tampering is done as the owner (with the documented maintenance switch on PostgreSQL); the
application's role cannot change events at all there, and a trigger refuses even the owner
without the switch. Writers of one tenant, running concurrently, never fork its chain.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from tenantry.authz import system_principal
from tenantry.cli import app as cli_app
from tenantry.db import migrate
from tenantry.db.engine import make_engine
from tenantry.db.session import Database
from tenantry.services import audit
from tenantry.services.context import ServiceContext
from tests.asserts import assert_problem
from tests.backends import Backend, create_backend
from tests.personas import Personas

VERIFY = "/api/v1/audit/verify"
MAINTENANCE = "SET LOCAL tenantry.audit_maintenance = 'on'"


def _owner(backend: Backend, sql: str, **params: Any) -> list[Any]:
    """Run one statement as the owner (maintenance switch on, where there is one)."""
    engine = make_engine(backend.owner_url)
    try:
        with engine.begin() as conn:
            if backend.name == "postgres":
                conn.execute(text(MAINTENANCE))
            result = conn.execute(text(sql), params)
            return list(result) if result.returns_rows else []
    finally:
        engine.dispose()


def _events(backend: Backend, tenant_id: uuid.UUID) -> list[Any]:
    return _owner(
        backend,
        "SELECT id, seq FROM audit_events WHERE tenant_id = :t ORDER BY seq",
        t=tenant_id if backend.name == "postgres" else tenant_id.hex,
    )


def _cli(backend: Backend, *args: str) -> Any:
    env = {"TENANTRY_DATABASE_URL": backend.app_url, "TENANTRY_MIGRATION_DATABASE_URL": backend.owner_url}
    return CliRunner().invoke(cli_app, ["audit", "verify", *args], env=env)


def _activity(api: Callable[[str | None], Any]) -> None:
    """A few audited writes in acme, globex and the global stream."""
    for slug in ("acme", "globex"):
        for n in range(3):
            r = api(f"{slug}_admin").patch(f"/api/v1/tenants/{slug}", json={"description": f"take {n}"})
            assert r.status_code == 200, r.text
    r = api("superadmin").post("/api/v1/tenants", json={"slug": "initech", "name": "Initech"})
    assert r.status_code == 201, r.text


def _id(backend: Backend, value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)


# --- intact -------------------------------------------------------------------------------------


def test_chains_are_intact_after_normal_activity(api, personas: Personas, backend: Backend) -> None:
    _activity(api)
    r = api("superadmin").get(VERIFY)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ok"] is True and body["first_broken"] is None
    assert body["streams_checked"] >= 4  # acme, globex, initech, global
    acme = _events(backend, personas.acme.id)
    assert [row.seq for row in acme] == list(range(1, len(acme) + 1))
    assert body["events_checked"] >= len(acme) + 6
    result = _cli(backend)
    assert result.exit_code == 0, result.output
    assert "intact" in result.stdout
    result = _cli(backend, "--tenant", "acme", "--output", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "ok": True,
        "streams_checked": 1,
        "events_checked": len(acme),
        "first_broken": None,
    }


def test_verify_is_for_superadmins_only(api, personas: Personas) -> None:
    for persona in ("acme_admin", "outsider"):
        assert_problem(api(persona).get(VERIFY), 403, "permission_denied")
    assert_problem(api(None).get(VERIFY), 401, "unauthenticated")


# --- tampering ----------------------------------------------------------------------------------


def test_changed_content_is_named_as_the_first_broken_link(api, personas: Personas, backend: Backend) -> None:
    _activity(api)
    acme = _events(backend, personas.acme.id)
    victim = acme[1]
    _owner(backend, "UPDATE audit_events SET actor_label = 'someone else' WHERE id = :i", i=victim.id)
    body = api("superadmin").get(VERIFY).json()
    assert body["ok"] is False
    assert body["first_broken"] == {
        "tenant_id": str(personas.acme.id),
        "seq": 2,
        "event_id": str(_id(backend, victim.id)),
        "reason": "hash_mismatch",
    }
    result = _cli(backend, "--output", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["first_broken"] == body["first_broken"]
    result = _cli(backend, "--tenant", "globex")
    assert result.exit_code == 0, result.output
    result = _cli(backend, "--tenant", str(personas.acme.id))
    assert result.exit_code == 1
    assert "hash_mismatch" in result.stdout and "seq 2" in result.stdout


def test_rehashed_content_breaks_the_next_link(api, personas: Personas, backend: Backend) -> None:
    """A tamperer who recomputes the changed event's own hash still breaks its successor's link."""
    _activity(api)
    acme = _events(backend, personas.acme.id)
    _owner(backend, "UPDATE audit_events SET hash = :h WHERE id = :i", h="f" * 64, i=acme[0].id)
    broken = api("superadmin").get(VERIFY).json()["first_broken"]
    assert (broken["seq"], broken["reason"]) == (1, "hash_mismatch")
    _owner(backend, "UPDATE audit_events SET prev_hash = :h WHERE id = :i", h="f" * 64, i=acme[1].id)
    _owner(backend, "UPDATE audit_events SET hash = :h WHERE id = :i", h="e" * 64, i=acme[0].id)
    broken = api("superadmin").get(VERIFY).json()["first_broken"]
    assert (broken["seq"], broken["reason"]) == (1, "hash_mismatch")


def test_a_deleted_event_is_named(api, personas: Personas, backend: Backend) -> None:
    _activity(api)
    acme = _events(backend, personas.acme.id)
    assert len(acme) >= 3
    _owner(backend, "DELETE FROM audit_events WHERE id = :i", i=acme[1].id)
    broken = api("superadmin").get(VERIFY).json()["first_broken"]
    assert broken == {
        "tenant_id": str(personas.acme.id),
        "seq": 2,
        "event_id": str(_id(backend, acme[2].id)),
        "reason": "missing_event",
    }
    result = _cli(backend)
    assert result.exit_code == 1 and "missing_event" in result.stdout


def test_a_deleted_newest_event_is_named(api, personas: Personas, backend: Backend) -> None:
    _activity(api)
    acme = _events(backend, personas.acme.id)
    _owner(backend, "DELETE FROM audit_events WHERE id = :i", i=acme[-1].id)
    broken = api("superadmin").get(VERIFY).json()["first_broken"]
    assert broken == {
        "tenant_id": str(personas.acme.id),
        "seq": len(acme),
        "event_id": None,
        "reason": "missing_event",
    }


def test_an_insert_that_does_not_extend_the_chain_is_refused(
    personas: Personas, backend: Backend, clean_db: Database
) -> None:
    """A second event with a taken seq (a fork) fails in the database, whoever inserts it."""
    [last] = _events(backend, personas.acme.id)[-1:]
    copy = (
        "INSERT INTO audit_events (id, occurred_at, tenant_id, actor_type, actor_label, action, target_type,"
        " seq, prev_hash, hash) SELECT :new, occurred_at, tenant_id, actor_type, actor_label, action,"
        " target_type, seq, prev_hash, hash FROM audit_events WHERE id = :i"
    )
    new = uuid.uuid4() if backend.name == "postgres" else uuid.uuid4().hex
    with clean_db.engine.connect() as conn, pytest.raises(DBAPIError, match="extend the head"):
        conn.execute(text(copy), {"new": new, "i": last.id})
    with pytest.raises(DBAPIError, match="extend the head"):
        _owner(backend, copy, new=new, i=last.id)


# --- append-only on PostgreSQL --------------------------------------------------------------------


@pytest.mark.postgres_only
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_events SET action = 'x'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ],
)
def test_app_role_cannot_change_or_remove_events(personas: Personas, clean_db: Database, sql: str) -> None:
    with clean_db.engine.connect() as conn:
        conn.execute(text(MAINTENANCE))
        with pytest.raises(DBAPIError, match="permission denied"):
            conn.execute(text(sql))


@pytest.mark.postgres_only
def test_app_role_holds_only_select_and_insert_on_events(clean_db: Database) -> None:
    with clean_db.engine.connect() as conn:
        held = {
            p
            for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
            if conn.execute(text("SELECT has_table_privilege('audit_events', :p)"), {"p": p}).scalar()
        }
    assert held == {"SELECT", "INSERT"}


@pytest.mark.postgres_only
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_events SET action = 'x'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
    ],
)
def test_the_owner_is_refused_without_the_maintenance_switch(
    personas: Personas, backend: Backend, sql: str
) -> None:
    engine = make_engine(backend.owner_url)
    try:
        with engine.begin() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text(sql))
        with engine.begin() as conn:
            conn.execute(text("SET LOCAL tenantry.audit_maintenance = 'off'"))
            with pytest.raises(DBAPIError, match="append-only"):
                conn.execute(text(sql))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar() > 0
    finally:
        engine.dispose()


# --- purge ----------------------------------------------------------------------------------------


def test_purging_the_trash_keeps_every_audit_event(api, personas: Personas, backend: Backend) -> None:
    _activity(api)
    r = api("superadmin").delete("/api/v1/tenants/globex")
    assert r.status_code == 200, r.text
    [batch] = api("superadmin").get("/api/v1/trash").json()["items"]
    before = _owner(backend, "SELECT id FROM audit_events")
    r = api("superadmin").delete(f"/api/v1/trash/{batch['id']}", params={"confirm": "true"})
    assert r.status_code == 200, r.text
    after = {row.id for row in _owner(backend, "SELECT id FROM audit_events")}
    assert {row.id for row in before} <= after
    assert len(_events(backend, personas.globex.id)) > 0
    assert api("superadmin").get(VERIFY).json()["ok"] is True


# --- concurrent writers ---------------------------------------------------------------------------


def test_concurrent_writers_in_one_tenant_never_fork_its_chain(
    personas: Personas, backend: Backend, db: Database, api
) -> None:
    """Two writers, each with its own sessions and connections, 50 events each, at once."""
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            start.wait()
            for n in range(50):
                with db.unit_of_work() as session:
                    ctx = ServiceContext(session=session, principal=system_principal(name))
                    audit.record(ctx, "test.concurrent", after={"n": n}, tenant_id=personas.acme.id)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"writer-{i}",)) for i in range(2)]
    before = len(_events(backend, personas.acme.id))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    acme = _events(backend, personas.acme.id)
    assert len(acme) == before + 100
    assert [row.seq for row in acme] == list(range(1, len(acme) + 1))
    body = api("superadmin").get(VERIFY).json()
    assert body["ok"] is True, body


# --- upgraded databases ---------------------------------------------------------------------------


def test_migration_chains_the_events_that_already_exist(tmp_path) -> None:
    fresh = create_backend(tmp_path, migrated=False)
    try:
        migrate.upgrade(fresh.owner_url, "0010", app_url=fresh.app_url)
        tenant = uuid.uuid4()
        engine = make_engine(fresh.owner_url)
        try:
            with engine.begin() as conn:
                for n, tid in enumerate([tenant, None, tenant, tenant, None]):
                    conn.execute(
                        text(
                            "INSERT INTO audit_events (id, occurred_at, tenant_id, actor_type, actor_label,"
                            " action, target_type, after) VALUES (:i, :o, :t, 'system', 'old', 'x.y', '', :a)"
                        ),
                        {
                            "i": str(uuid.uuid4()) if fresh.name == "postgres" else uuid.uuid4().hex,
                            "o": f"2026-01-0{n + 1} 10:00:00.123456",
                            "t": None if tid is None else (str(tid) if fresh.name == "postgres" else tid.hex),
                            "a": json.dumps({"n": n, "f": 1.5}),
                        },
                    )
        finally:
            engine.dispose()
        migrate.upgrade(fresh.owner_url, app_url=fresh.app_url)
        database = Database(fresh.app_url)
        try:
            with database.unit_of_work() as session:
                ctx = ServiceContext(session=session, principal=system_principal("tests"))
                report = audit.verify_chains(ctx)
                assert (report.ok, report.streams_checked, report.events_checked) == (True, 2, 5)
                audit.record(ctx, "x.z", tenant_id=tenant)
            with database.unit_of_work() as session:
                ctx = ServiceContext(session=session, principal=system_principal("tests"))
                assert audit.verify_chains(ctx, tenant_id=tenant) == audit.ChainReport(True, 1, 4, None)
        finally:
            database.dispose()
    finally:
        fresh.drop()

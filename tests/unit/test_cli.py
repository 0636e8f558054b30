"""The `tenantry` command against a fresh database of the selected backend."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import text
from typer.testing import CliRunner

from tenantry.cli import app
from tenantry.cli.common import EXIT_CONFLICT, EXIT_INVALID, EXIT_NOT_FOUND
from tenantry.cli.server import ServeOptions
from tenantry.db import migrate as db_migrate
from tenantry.db.engine import make_engine
from tenantry.db.session import Database
from tests.backends import Backend, create_backend
from tests.personas import login_token

ADMIN_PASSWORD = "a-long-enough-admin-passphrase"

Invoke = Callable[..., Result]


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Backend]:
    backend = create_backend(tmp_path, migrated=False)
    yield backend
    backend.drop()


@pytest.fixture
def cli(fresh: Backend) -> Iterator[Invoke]:
    """`cli("tenants", "list")`: run the command with the fresh database configured."""
    base_env = {
        "TENANTRY_DATABASE_URL": fresh.app_url,
        "TENANTRY_MIGRATION_DATABASE_URL": fresh.owner_url,
        "TENANTRY_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "TENANTRY_ADMIN_EMAIL": "root@example.com",
    }

    def invoke(*args: str, env: dict[str, str | None] | None = None, input: str | None = None) -> Result:
        return CliRunner().invoke(app, list(args), env={**base_env, **(env or {})}, input=input)

    yield invoke


def _rows(backend: Backend, sql: str, **params: Any) -> list[Any]:
    """Read as the owner, so row-level security does not hide anything."""
    engine = make_engine(backend.owner_url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql), params))
    finally:
        engine.dispose()


def _execute(backend: Backend, sql: str) -> None:
    engine = make_engine(backend.owner_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def _ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.stdout


# --- init ----------------------------------------------------------------------------------------


def test_init_twice_creates_one_tenant_and_one_superadmin(cli: Invoke, fresh: Backend) -> None:
    _ok(cli("init"))
    _ok(cli("init"))
    assert [r.slug for r in _rows(fresh, "SELECT slug FROM tenants")] == ["default"]
    admins = _rows(fresh, "SELECT email FROM users WHERE is_superadmin")
    assert [r.email for r in admins] == ["root@example.com"]
    assert len(_rows(fresh, "SELECT id FROM memberships")) == 1


def test_init_second_run_skips_and_writes_no_audit_event(cli: Invoke, fresh: Backend) -> None:
    _ok(cli("init"))
    first = _rows(fresh, "SELECT id, action FROM audit_events ORDER BY id")
    second_output = _ok(cli("init"))
    assert "skipping" in second_output
    assert "password:" not in second_output
    assert _rows(fresh, "SELECT id, action FROM audit_events ORDER BY id") == first
    assert {"tenant.create", "user.create", "member.add"} <= {r.action for r in first}


def test_init_with_admin_password_does_not_print_it(cli: Invoke) -> None:
    output = _ok(cli("init"))
    assert "root@example.com" in output
    assert ADMIN_PASSWORD not in output


def test_init_without_admin_password_prints_one_that_logs_in(cli: Invoke, fresh: Backend) -> None:
    output = _ok(cli("init", env={"TENANTRY_ADMIN_PASSWORD": None}))
    match = re.search(r"password:\s+(\S+)\s+\(shown once", output)
    assert match is not None, output
    db = Database(fresh.app_url)
    try:
        assert login_token(db, "root@example.com", match.group(1)).startswith("tnt_ses_")
    finally:
        db.dispose()


def test_init_with_another_admin_email_does_not_create_a_second_superadmin(
    cli: Invoke, fresh: Backend
) -> None:
    _ok(cli("init"))
    output = _ok(cli("init", env={"TENANTRY_ADMIN_EMAIL": "other@example.com"}))
    assert "superadmin root@example.com exists" in output
    assert "password:" not in output
    assert [r.email for r in _rows(fresh, "SELECT email FROM users")] == ["root@example.com"]


def test_init_counts_a_superadmin_in_the_trash_and_says_how_to_restore_it(
    cli: Invoke, fresh: Backend
) -> None:
    _ok(cli("init"))
    _execute(fresh, "UPDATE users SET deleted_at = created_at")
    output = _ok(cli("init", env={"TENANTRY_ADMIN_EMAIL": "other@example.com"}))
    assert "root@example.com" in output and "trash" in output
    assert len(_rows(fresh, "SELECT id FROM users")) == 1


def test_init_does_not_promote_a_plain_user_holding_the_admin_address(cli: Invoke, fresh: Backend) -> None:
    _ok(cli("init"))
    _execute(fresh, "UPDATE users SET is_superadmin = false")
    output = _ok(cli("init"))
    assert "not a superadmin" in output
    assert _rows(fresh, "SELECT email FROM users WHERE is_superadmin") == []


def test_migrate_on_a_fresh_database_creates_the_tables(cli: Invoke, fresh: Backend) -> None:
    assert "up to date" in _ok(cli("migrate"))
    assert _rows(fresh, "SELECT count(*) AS n FROM tenants")[0].n == 0


# --- serve ---------------------------------------------------------------------------------------


@pytest.fixture
def uvicorn_runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Record the server's start instead of starting it."""
    calls: list[dict[str, Any]] = []

    def record(options: ServeOptions) -> int:
        calls.append(vars(options))
        return 0

    monkeypatch.setattr("tenantry.cli.serve.run_server", record)
    return calls


def test_serve_on_an_uninitialised_database_stops_naming_init(
    cli: Invoke, uvicorn_runs: list[dict[str, Any]]
) -> None:
    result = cli("serve")
    assert result.exit_code == 1
    assert "tenantry init" in result.stderr
    assert uvicorn_runs == []


def test_serve_on_a_database_behind_the_code_stops_naming_init(
    cli: Invoke, fresh: Backend, uvicorn_runs: list[dict[str, Any]]
) -> None:
    _ok(cli("init"))
    db_migrate.downgrade(fresh.owner_url, "-1")
    result = cli("serve")
    assert result.exit_code == 1
    assert "tenantry init" in result.stderr
    assert uvicorn_runs == []


def test_serve_on_an_unreachable_database_stops_with_a_message(
    cli: Invoke, uvicorn_runs: list[dict[str, Any]]
) -> None:
    result = cli("serve", env={"TENANTRY_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"})
    assert result.exit_code == 1
    assert "database not reachable" in result.stderr
    assert uvicorn_runs == []


def test_serve_after_init_starts_uvicorn(cli: Invoke, uvicorn_runs: list[dict[str, Any]]) -> None:
    _ok(cli("init"))
    _ok(cli("serve", "--port", "8123"))
    assert [call["port"] for call in uvicorn_runs] == [8123]


# --- tenants -------------------------------------------------------------------------------------


def _slugs(list_output: str) -> set[str]:
    return set(re.findall(r"^│ ([a-z0-9-]+)\s+│", list_output, flags=re.MULTILINE))


def test_tenants_create_list_delete_restore(cli: Invoke, fresh: Backend) -> None:
    _ok(cli("init"))
    assert "created acme" in _ok(cli("tenants", "create", "acme", "Acme"))
    assert _slugs(_ok(cli("tenants", "list"))) == {"acme", "default"}

    assert "deleted acme" in _ok(cli("tenants", "delete", "acme", "--yes"))
    assert _slugs(_ok(cli("tenants", "list"))) == {"default"}
    assert _rows(fresh, "SELECT deleted_at FROM tenants WHERE slug = 'acme'")[0].deleted_at is not None

    assert "restored acme" in _ok(cli("tenants", "restore", "acme"))
    assert _slugs(_ok(cli("tenants", "list"))) == {"acme", "default"}
    assert _rows(fresh, "SELECT deleted_at FROM tenants WHERE slug = 'acme'")[0].deleted_at is None


def test_tenants_delete_and_restore_bring_back_the_family(cli: Invoke, fresh: Backend) -> None:
    _ok(cli("init"))
    before = _rows(fresh, "SELECT id, deleted_at FROM memberships ORDER BY id")
    assert "memberships: 1" in _ok(cli("tenants", "delete", "default", "--yes"))
    assert all(r.deleted_at is not None for r in _rows(fresh, "SELECT deleted_at FROM memberships"))
    _ok(cli("tenants", "restore", "default"))
    assert _rows(fresh, "SELECT id, deleted_at FROM memberships ORDER BY id") == before


def test_tenants_delete_declined_keeps_the_tenant(cli: Invoke) -> None:
    _ok(cli("init"))
    _ok(cli("tenants", "create", "acme", "Acme"))
    result = cli("tenants", "delete", "acme", input="n\n")
    assert result.exit_code == EXIT_INVALID  # no terminal to ask and no --yes: refused
    assert "acme" in _slugs(_ok(cli("tenants", "list")))


def test_tenants_create_taken_slug_exits_conflict_with_the_error_code(cli: Invoke) -> None:
    _ok(cli("init"))
    _ok(cli("tenants", "create", "acme", "Acme"))
    result = cli("tenants", "create", "acme", "Acme again")
    assert result.exit_code == EXIT_CONFLICT
    assert "slug_taken" in result.stderr


def test_tenants_restore_of_a_live_tenant_exits_not_found(cli: Invoke) -> None:
    _ok(cli("init"))
    _ok(cli("tenants", "create", "acme", "Acme"))
    result = cli("tenants", "restore", "acme")
    assert result.exit_code == EXIT_NOT_FOUND
    assert "not_found" in result.stderr


# --- audit ---------------------------------------------------------------------------------------


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_audit_export_writes_json_lines_including_tenant_create(cli: Invoke, tmp_path: Path) -> None:
    _ok(cli("init"))
    _ok(cli("tenants", "create", "acme", "Acme"))
    out = tmp_path / "audit.jsonl"
    _ok(cli("audit", "export", "-o", str(out)))
    events = _events(out)
    creates = [e["after"]["slug"] for e in events if e["action"] == "tenant.create"]
    assert creates == ["default", "acme"]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert all(e["actor"]["type"] == "system" for e in events)


def test_audit_export_for_one_tenant_holds_only_its_events(
    cli: Invoke, fresh: Backend, tmp_path: Path
) -> None:
    _ok(cli("init"))
    _ok(cli("tenants", "create", "acme", "Acme"))
    acme_id = str(_rows(fresh, "SELECT id FROM tenants WHERE slug = 'acme'")[0].id)
    out = tmp_path / "acme.jsonl"
    _ok(cli("audit", "export", "--tenant", "acme", "-o", str(out)))
    events = _events(out)
    assert [e["action"] for e in events] == ["tenant.create"]
    assert {e["tenant_id"].replace("-", "") for e in events} == {acme_id.replace("-", "")}

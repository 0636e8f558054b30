"""`tenantry users|members|roles|tenants …` admin commands against the test backend, as the system."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import Result
from sqlalchemy import select
from typer.testing import CliRunner

from tenantry.authz import Principal
from tenantry.cli import app
from tenantry.cli.common import EXIT_CONFLICT, EXIT_INVALID, EXIT_NOT_FOUND, console
from tenantry.db import scoping
from tenantry.db.session import Database
from tenantry.db.tables import AuditEvent, AuthSession, Grant, Tenant, User
from tenantry.services import alias_roles, aliases, api_keys
from tenantry.services.context import ServiceContext
from tests.backends import Backend
from tests.personas import PASSWORD, Personas, build_personas

Invoke = Callable[..., Result]


@pytest.fixture
def world(clean_db: Database) -> Personas:
    return build_personas(clean_db)


@pytest.fixture
def cli(backend: Backend, world: Personas, monkeypatch: pytest.MonkeyPatch) -> Iterator[Invoke]:
    monkeypatch.setattr(console, "width", 80)  # a narrow terminal: ids must still be whole

    def invoke(*args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(
            app, list(args), env={"TENANTRY_DATABASE_URL": backend.app_url}, input=input
        )

    yield invoke


def _ok(result: Result) -> str:
    assert result.exit_code == 0, (result.output, result.exception)
    return result.stdout


def _json(result: Result) -> Any:
    return json.loads(_ok(result))


def _user(db: Database, email: str) -> User | None:
    with db.sessions() as s, scoping.cross_tenant(s):
        return s.scalar(select(User).where(User.email == email))


def _actions(db: Database) -> list[str]:
    with db.sessions() as s, scoping.cross_tenant(s):
        return list(s.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def _roles(db: Database, tenant_id: uuid.UUID, user_id: uuid.UUID) -> list[str]:
    with db.sessions() as s, scoping.cross_tenant(s):
        stmt = select(Grant.role_key).where(
            Grant.tenant_id == tenant_id, Grant.principal_id == user_id, Grant.resource_id.is_(None)
        )
        return sorted(s.scalars(stmt))


# --- users ---------------------------------------------------------------------------------------


def test_users_list_json_round_trips_the_ids(cli: Invoke, world: Personas) -> None:
    listed = _json(cli("users", "list", "--output", "json"))
    assert {u["id"] for u in listed} == {str(u.id) for u in world.users.values()}
    one = next(u for u in listed if u["email"] == "acme.admin@example.com")
    shown = _json(cli("users", "show", one["id"], "--output", "json"))
    assert shown["id"] == one["id"]
    assert [t["id"] for t in shown["tenants"]] == [str(world.acme.id)]


def test_users_list_table_keeps_every_id_whole_on_a_narrow_terminal(cli: Invoke, world: Personas) -> None:
    output = _ok(cli("users", "list", "--tenant", "acme"))
    for persona in ("acme_admin", "acme_member"):
        assert str(world.users[persona].id) in output
    assert str(world.users["globex_admin"].id) not in output


def test_users_show_unknown_exits_not_found(cli: Invoke) -> None:
    result = cli("users", "show", "nobody@example.com")
    assert result.exit_code == EXIT_NOT_FOUND
    assert "not_found" in result.stderr


def test_users_create_invites_and_a_taken_email_is_a_conflict(cli: Invoke, clean_db: Database) -> None:
    created = _json(cli("users", "create", "new@example.com", "--first-name", "Nia", "--output", "json"))
    user = _user(clean_db, "new@example.com")
    assert user is not None and str(user.id) == created["id"] and created["invited"] is True
    assert "user.create" in _actions(clean_db)
    result = cli("users", "create", "NEW@example.com")
    assert result.exit_code == EXIT_CONFLICT, result.output
    _ok(cli("users", "invite", "new@example.com"))


def test_users_create_bad_email_is_invalid(cli: Invoke, clean_db: Database) -> None:
    result = cli("users", "create", "not-an-email")
    assert result.exit_code == EXIT_INVALID
    assert "invalid_email" in result.stderr


def test_users_invite_of_an_account_with_a_password_is_a_conflict(cli: Invoke) -> None:
    result = cli("users", "invite", "acme.member@example.com")
    assert result.exit_code == EXIT_CONFLICT
    assert "already_accepted" in result.stderr


def test_users_deactivate_needs_yes_without_a_terminal(cli: Invoke, clean_db: Database) -> None:
    result = cli("users", "deactivate", "acme.member@example.com")
    assert result.exit_code == EXIT_INVALID
    assert "--yes" in result.stderr
    user = _user(clean_db, "acme.member@example.com")
    assert user is not None and user.active
    data = _json(cli("users", "deactivate", "acme.member@example.com", "--yes", "--output", "json"))
    assert data["active"] is False
    user = _user(clean_db, "acme.member@example.com")
    assert user is not None and not user.active
    assert _json(cli("users", "activate", data["id"], "--output", "json"))["active"] is True
    user = _user(clean_db, "acme.member@example.com")
    assert user is not None and user.active


# --- members -------------------------------------------------------------------------------------


def test_members_list_json_shows_only_that_tenant(cli: Invoke, world: Personas) -> None:
    listed = _json(cli("members", "list", "--tenant", "globex", "--output", "json"))
    assert {m["id"] for m in listed} == {
        str(world.users["globex_admin"].id),
        str(world.users["globex_member"].id),
    }
    assert {m["email"]: m["roles"] for m in listed}["globex.admin@example.com"] == ["tenant_admin"]


def test_members_unknown_tenant_exits_not_found(cli: Invoke) -> None:
    result = cli("members", "list", "--tenant", "no-such-tenant")
    assert result.exit_code == EXIT_NOT_FOUND


def test_members_add_set_role_remove(cli: Invoke, clean_db: Database, world: Personas) -> None:
    outsider = world.users["outsider"]
    added = _json(cli("members", "add", "outsider@example.com", "--tenant", "acme", "--output", "json"))
    assert added["id"] == str(outsider.id) and added["roles"] == ["member"]
    changed = _json(
        cli("members", "set-role", "outsider@example.com", "viewer", "--tenant", "acme", "--output", "json")
    )
    assert changed["roles"] == ["viewer"]
    assert _roles(clean_db, world.acme.id, outsider.id) == ["viewer"]
    refused = cli("members", "remove", "outsider@example.com", "--tenant", "acme")
    assert refused.exit_code == EXIT_INVALID
    assert _roles(clean_db, world.acme.id, outsider.id) == ["viewer"]
    _ok(cli("members", "remove", "outsider@example.com", "--tenant", "acme", "--yes"))
    assert _roles(clean_db, world.acme.id, outsider.id) == []
    assert {"member.add", "member.remove"} <= set(_actions(clean_db))


def test_members_set_role_unknown_role_is_invalid(cli: Invoke, clean_db: Database, world: Personas) -> None:
    result = cli("members", "set-role", "acme.member@example.com", "emperor", "--tenant", "acme")
    assert result.exit_code == EXIT_INVALID
    assert "unknown_role" in result.stderr
    assert _roles(clean_db, world.acme.id, world.users["acme_member"].id) == ["member"]


def test_members_remove_of_a_non_member_is_not_found(cli: Invoke) -> None:
    result = cli("members", "remove", "globex.admin@example.com", "--tenant", "acme", "--yes")
    assert result.exit_code == EXIT_NOT_FOUND


# --- roles ---------------------------------------------------------------------------------------


def test_roles_create_show_list_delete_in_a_tenant(cli: Invoke, world: Personas) -> None:
    created = _json(
        cli(
            "roles",
            "create",
            "reader",
            "Reader",
            "-p",
            "member.read",
            "--tenant",
            "acme",
            "--output",
            "json",
        )
    )
    assert created["permissions"] == ["member.read"] and created["tenant_id"] == str(world.acme.id)
    shown = _json(cli("roles", "show", "reader", "--tenant", "acme", "--output", "json"))
    assert shown["id"] == created["id"]
    listed = _json(cli("roles", "list", "--tenant", "acme", "--output", "json"))
    assert created["id"] in {r["id"] for r in listed}
    assert "reader" not in {
        r["key"] for r in _json(cli("roles", "list", "--tenant", "globex", "--output", "json"))
    }
    assert cli("roles", "delete", "reader", "--tenant", "acme").exit_code == EXIT_INVALID
    _ok(cli("roles", "delete", "reader", "--tenant", "acme", "--yes"))
    assert cli("roles", "show", "reader", "--tenant", "acme").exit_code == EXIT_NOT_FOUND


def test_roles_create_unknown_permission_is_invalid(cli: Invoke) -> None:
    result = cli("roles", "create", "odd", "Odd", "-p", "no.such.permission", "--tenant", "acme")
    assert result.exit_code == EXIT_INVALID


def test_roles_delete_builtin_is_refused(cli: Invoke) -> None:
    result = cli("roles", "delete", "member", "--tenant", "acme", "--yes")
    assert result.exit_code not in (0, EXIT_INVALID), result.output


# --- tenants -------------------------------------------------------------------------------------


def test_tenants_rename_suspend_activate(cli: Invoke, clean_db: Database, world: Personas) -> None:
    renamed = _json(cli("tenants", "rename", "acme", "Acme Industries", "--output", "json"))
    assert renamed == {
        "id": str(world.acme.id),
        "slug": "acme",
        "name": "Acme Industries",
        "status": "active",
    }
    assert cli("tenants", "suspend", "acme").exit_code == EXIT_INVALID
    assert _json(cli("tenants", "suspend", "acme", "--yes", "--output", "json"))["status"] == "suspended"
    with clean_db.sessions() as s:
        assert s.get(Tenant, world.acme.id).status == "suspended"  # type: ignore[union-attr]
    assert _json(cli("tenants", "activate", "acme", "--output", "json"))["status"] == "active"
    assert {"tenant.update", "tenant.suspend", "tenant.reactivate"} <= set(_actions(clean_db))


def test_tenants_rename_unknown_and_blank(cli: Invoke) -> None:
    assert cli("tenants", "rename", "no-such-tenant", "X").exit_code == EXIT_NOT_FOUND
    assert cli("tenants", "rename", "acme", "   ").exit_code == EXIT_INVALID


# --- grants --------------------------------------------------------------------------------------


def test_grants_add_list_remove_in_a_tenant(cli: Invoke, clean_db: Database, world: Personas) -> None:
    outsider = world.users["acme_member"]
    added = _json(
        cli(
            "grants",
            "add",
            "viewer",
            "--user",
            "acme.member@example.com",
            "--tenant",
            "acme",
            "--output",
            "json",
        )
    )
    assert added["principal_id"] == str(outsider.id) and added["tenant_id"] == str(world.acme.id)
    listed = _json(cli("grants", "list", "--tenant", "acme", "--user", str(outsider.id), "--output", "json"))
    assert added["id"] in [g["id"] for g in listed] and len(listed) == 2
    assert added["id"] in _ok(cli("grants", "list", "--tenant", "acme"))  # the narrow table keeps it whole
    assert (
        _json(cli("grants", "list", "--tenant", "globex", "--output", "json", "--user", str(outsider.id)))
        == []
    )
    assert cli("grants", "remove", added["id"], "--tenant", "acme").exit_code == EXIT_INVALID
    assert _roles(clean_db, world.acme.id, outsider.id) == ["member", "viewer"]
    _ok(cli("grants", "remove", added["id"], "--tenant", "acme", "--yes"))
    assert _roles(clean_db, world.acme.id, outsider.id) == ["member"]
    assert cli("grants", "remove", added["id"], "--tenant", "acme", "--yes").exit_code == EXIT_NOT_FOUND


def test_grants_add_needs_exactly_one_principal(cli: Invoke) -> None:
    assert cli("grants", "add", "viewer", "--tenant", "acme").exit_code == EXIT_INVALID


def test_grants_add_unknown_role_is_refused(cli: Invoke) -> None:
    result = cli("grants", "add", "emperor", "--user", "outsider@example.com", "--tenant", "acme")
    assert result.exit_code in (EXIT_INVALID, EXIT_NOT_FOUND), result.output


# --- settings ------------------------------------------------------------------------------------


def _setting(rows: list[dict[str, Any]], category: str, key: str) -> dict[str, Any]:
    return next(r for r in rows if r["category"] == category and r["key"] == key)


def test_settings_tenant_set_show_reset(cli: Invoke) -> None:
    shown = _json(cli("settings", "show", "--tenant", "acme", "--output", "json"))
    assert _setting(shown, "security", "require_2fa") == {
        "category": "security",
        "key": "require_2fa",
        "value": False,
        "source": "default",
        "tenant_overridable": True,
    }
    _json(cli("settings", "set", "security", "require_2fa", "true", "--tenant", "acme", "--output", "json"))
    shown = _json(cli("settings", "show", "security", "--tenant", "acme", "--output", "json"))
    assert _setting(shown, "security", "require_2fa")["value"] is True
    assert _setting(shown, "security", "require_2fa")["source"] == "tenant"
    other = _json(cli("settings", "show", "security", "--tenant", "globex", "--output", "json"))
    assert _setting(other, "security", "require_2fa")["value"] is False
    _ok(cli("settings", "reset", "security", "require_2fa", "--tenant", "acme"))
    shown = _json(cli("settings", "show", "security", "--tenant", "acme", "--output", "json"))
    assert _setting(shown, "security", "require_2fa")["source"] == "default"


def test_settings_system_set_text_value(cli: Invoke) -> None:
    _ok(cli("settings", "set", "general", "display_name", "Ops Portal"))
    shown = _json(cli("settings", "show", "general", "--output", "json"))
    assert _setting(shown, "general", "display_name")["value"] == "Ops Portal"


def test_settings_refusals(cli: Invoke) -> None:
    assert (
        cli("settings", "set", "security", "session_idle_minutes", "soon", "--tenant", "acme").exit_code
        == EXIT_INVALID
    )
    assert cli("settings", "set", "security", "no_such_key", "1").exit_code == EXIT_INVALID
    assert cli("settings", "show", "trash", "--tenant", "acme").exit_code == EXIT_NOT_FOUND
    assert cli("settings", "show", "--tenant", "no-such-tenant").exit_code == EXIT_NOT_FOUND


# --- groups --------------------------------------------------------------------------------------


def test_groups_create_members_show_delete(cli: Invoke, clean_db: Database, world: Personas) -> None:
    created = _json(cli("groups", "create", "ops", "--description", "On call", "--output", "json"))
    assert created["id"] in {g["id"] for g in _json(cli("groups", "list", "--output", "json"))}
    _ok(cli("groups", "add-member", "ops", "acme.member@example.com"))
    shown = _json(cli("groups", "show", created["id"], "--output", "json"))
    assert shown["members"] == [
        {"id": str(world.users["acme_member"].id), "email": "acme.member@example.com"}
    ]
    assert cli("groups", "create", "ops").exit_code == EXIT_CONFLICT
    assert cli("groups", "remove-member", "ops", "acme.member@example.com").exit_code == EXIT_INVALID
    _ok(cli("groups", "remove-member", "ops", "acme.member@example.com", "--yes"))
    assert _json(cli("groups", "show", "ops", "--output", "json"))["members"] == []
    assert cli("groups", "delete", "ops").exit_code == EXIT_INVALID
    _ok(cli("groups", "delete", "ops", "--yes"))
    assert cli("groups", "show", "ops").exit_code == EXIT_NOT_FOUND
    assert {"group.create", "group.delete"} <= set(_actions(clean_db))


# --- api keys and aliases ------------------------------------------------------------------------


def _member_key_and_alias(db: Database, member_id: uuid.UUID) -> tuple[str, str]:
    """The member makes an API key and an alias for themselves (their own acts)."""
    with db.unit_of_work() as session:
        session_id = session.scalar(select(AuthSession.id).where(AuthSession.user_id == member_id))
        assert session_id is not None
        me = Principal(kind="user", user_id=member_id, label="acme.member@example.com", session_id=session_id)
        ctx = ServiceContext(session=session, principal=me)
        key = api_keys.create_key(ctx, name="ci", scope="read")
        role = alias_roles.create_alias_role(ctx, name="support", permissions=["host.read"])
        alias = aliases.create_alias(ctx, email="alias@example.com", password=PASSWORD, role_id=role.role.id)
        return str(key.key.id), str(alias.alias.id)


def test_api_keys_list_and_revoke(cli: Invoke, clean_db: Database, world: Personas) -> None:
    key_id, _ = _member_key_and_alias(clean_db, world.users["acme_member"].id)
    listed = _json(cli("api-keys", "list", "--user", "acme.member@example.com", "--output", "json"))
    assert [k["id"] for k in listed] == [key_id] and "token_hash" not in listed[0]
    assert key_id in _ok(cli("api-keys", "list", "--user", "acme.member@example.com"))
    assert _json(cli("api-keys", "list", "--user", "acme.admin@example.com", "--output", "json")) == []
    assert cli("api-keys", "revoke", key_id, "--user", "acme.member@example.com").exit_code == EXIT_INVALID
    # another user's key is not found under this user
    assert (
        cli("api-keys", "revoke", key_id, "--user", "acme.admin@example.com", "--yes").exit_code
        == EXIT_NOT_FOUND
    )
    _ok(cli("api-keys", "revoke", key_id, "--user", "acme.member@example.com", "--yes"))
    assert _json(cli("api-keys", "list", "--user", "acme.member@example.com", "--output", "json")) == []
    assert "api_key.revoke" in _actions(clean_db)


def test_aliases_list_of_a_parent_user(cli: Invoke, clean_db: Database, world: Personas) -> None:
    _, alias_id = _member_key_and_alias(clean_db, world.users["acme_member"].id)
    listed = _json(cli("aliases", "list", "--user", "acme.member@example.com", "--output", "json"))
    assert [(a["id"], a["email"]) for a in listed] == [(alias_id, "alias@example.com")]
    assert _json(cli("aliases", "list", "--user", "acme.admin@example.com", "--output", "json")) == []
    assert cli("aliases", "list", "--user", "nobody@example.com").exit_code == EXIT_NOT_FOUND


def test_tenants_list_json_round_trips_the_ids(cli: Invoke, world: Personas) -> None:
    listed = _json(cli("tenants", "list", "--output", "json"))
    assert {t["slug"]: t["id"] for t in listed} == {
        "acme": str(world.acme.id),
        "globex": str(world.globex.id),
    }
    assert str(world.acme.id) in _ok(cli("tenants", "list"))

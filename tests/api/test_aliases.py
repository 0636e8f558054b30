"""`/api/v1/me/aliases`: alias users of the caller, their SSH keys, their own sign-in (issue 10)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from tenantry.db import scoping
from tenantry.db.session import Database
from tenantry.db.tables import AuditEvent, OutboxMessage, Resource, SshKey, User
from tests.asserts import assert_problem as _problem
from tests.personas import PASSWORD, login_token

ALIASES = "/api/v1/me/aliases"
ROLES = "/api/v1/me/alias-roles"
ONE = f"{ALIASES}/00000000-0000-7000-8000-000000000001"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl laptop"


def _aliases(db: Database) -> int:
    with db.sessions() as s, scoping.include_deleted(s):
        return s.scalar(select(func.count()).select_from(User).where(User.parent_id.is_not(None))) or 0


def _audit(db: Database, action: str) -> list[AuditEvent]:
    with db.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _role(api, persona: str = "acme_member", perms: list[str] | None = None, name: str = "ops") -> str:
    body = {"name": name, "permissions": perms if perms is not None else ["host.read", "tenant.read"]}
    r = api(persona).post(ROLES, json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _alias(api, persona: str = "acme_member", email: str = "helper@example.com", **extra) -> dict:
    body = {
        "email": email,
        "password": PASSWORD,
        "role_id": extra.pop("role_id", None) or _role(api, persona),
    }
    r = api(persona).post(ALIASES, json={**body, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def _host(db: Database, tenant_id: uuid.UUID, name: str = "web-1") -> str:
    with db.unit_of_work() as s, scoping.in_tenant(s, tenant_id):
        host = Resource(tenant_id=tenant_id, type="host", name=name)
        s.add(host)
        s.flush()
        return str(host.id)


# --- create -------------------------------------------------------------------------------------


def test_create_alias_signs_in_with_its_own_password_and_is_audited(api, db, personas, client):
    alias = _alias(api, first_name="Help", last_name="Er")
    assert alias["email"] == "helper@example.com"
    assert alias["first_name"] == "Help" and alias["active"] is True
    assert alias["resource_ids"] == [] and alias["invitation_pending"] is False
    with db.sessions() as s:
        row = s.get(User, uuid.UUID(alias["id"]))
        assert row is not None and row.parent_id == personas.users["acme_member"].id
    assert len(_audit(db, "alias.create")) == 1
    token = login_token(db, "helper@example.com")
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200, me.text
    assert me.json()["email"] == "helper@example.com"


def test_create_alias_without_password_sends_an_invitation(api, db):
    role_id = _role(api)
    r = api("acme_member").post(ALIASES, json={"email": "invitee@example.com", "role_id": role_id})
    assert r.status_code == 201, r.text
    assert r.json()["invitation_pending"] is True
    with db.sessions() as s:
        mails = list(s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "invitation")))
    assert [m.to_addr for m in mails] == ["invitee@example.com"]


def test_create_alias_with_assigned_resources(api, db, personas):
    host = _host(db, personas.acme.id)
    alias = _alias(api, resource_ids=[host])
    assert alias["resource_ids"] == [host]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"email": "not-an-email"}, 422, "invalid_email"),
        ({"email": "acme.admin@example.com"}, 409, "email_taken"),
        ({"role_id": "00000000-0000-7000-8000-000000000001"}, 422, "unknown_alias_role"),
        ({"resource_ids": ["00000000-0000-7000-8000-000000000001"]}, 422, "unknown_resource"),
        ({"password": "short"}, 422, "password_too_short"),
        ({"role_id": "nope"}, 422, "validation_error"),
    ],
)
def test_create_alias_bad_input_writes_nothing(api, db, body, status, code):
    role_id = _role(api)
    base = {"email": "helper@example.com", "password": PASSWORD, "role_id": role_id}
    _problem(api("acme_member").post(ALIASES, json={**base, **body}), status, code)
    assert _aliases(db) == 0
    assert _audit(db, "alias.create") == []


def test_create_alias_with_another_users_role_or_resource_422(api, db, personas):
    theirs = _role(api, "globex_member")
    base = {"email": "helper@example.com", "password": PASSWORD}
    _problem(api("acme_member").post(ALIASES, json={**base, "role_id": theirs}), 422, "unknown_alias_role")
    globex_host = _host(db, personas.globex.id)
    body = {**base, "role_id": _role(api), "resource_ids": [globex_host]}
    _problem(api("acme_member").post(ALIASES, json=body), 422, "unknown_resource")
    assert _aliases(db) == 0


def test_create_alias_needs_alias_manage_403(api, db):
    # A viewer holds no alias.manage anywhere.
    body = {"email": "helper@example.com", "role_id": "00000000-0000-7000-8000-000000000001"}
    _problem(api("acme_viewer").post(ALIASES, json=body), 403, "permission_denied")
    _problem(api("outsider").post(ALIASES, json=body), 403, "permission_denied")
    assert _aliases(db) == 0


def test_create_alias_unauthenticated_401(api):
    body = {"email": "helper@example.com", "role_id": "00000000-0000-7000-8000-000000000001"}
    assert api(None).post(ALIASES, json=body).status_code == 401


# --- list / get ---------------------------------------------------------------------------------


def test_list_aliases_own_only_paginated(api):
    role_id = _role(api)
    ids = [_alias(api, email=f"a{i}@example.com", role_id=role_id)["id"] for i in range(3)]
    _alias(api, "globex_member", email="theirs@example.com")
    first = api("acme_member").get(ALIASES, params={"limit": 2})
    assert first.status_code == 200, first.text
    assert [a["id"] for a in first.json()["items"]] == ids[:2]
    nxt = api("acme_member").get(ALIASES, params={"limit": 2, "cursor": first.json()["next_cursor"]})
    assert [a["id"] for a in nxt.json()["items"]] == ids[2:]
    assert nxt.json()["next_cursor"] is None


def test_list_aliases_refuses_another_lists_cursor(api):
    roles_page = api("acme_member").get(ROLES, params={"limit": 1})
    _role(api, name="a")
    _role(api, name="b")
    cursor = api("acme_member").get(ROLES, params={"limit": 1}).json()["next_cursor"]
    assert roles_page.status_code == 200 and cursor
    _problem(api("acme_member").get(ALIASES, params={"cursor": cursor}), 422, "invalid_cursor")


def test_list_aliases_403_without_alias_manage(api):
    _problem(api("acme_viewer").get(ALIASES), 403, "permission_denied")


def test_get_alias_own_404_for_others(api):
    alias = _alias(api)
    assert api("acme_member").get(f"{ALIASES}/{alias['id']}").json()["email"] == "helper@example.com"
    _problem(api("globex_member").get(f"{ALIASES}/{alias['id']}"), 404, "not_found")
    _problem(api("acme_member").get(ONE), 404, "not_found")
    _problem(api("acme_viewer").get(f"{ALIASES}/{alias['id']}"), 403, "permission_denied")
    _problem(api("acme_member").get(f"{ALIASES}/nope"), 422, "validation_error")


# --- update: rename, role, assignments, disable / enable ----------------------------------------


def test_update_alias_rename_role_assignments_audited(api, db, personas):
    alias = _alias(api)
    path = f"{ALIASES}/{alias['id']}"
    other = _role(api, perms=["host.read"], name="readers")
    host = _host(db, personas.acme.id)
    r = api("acme_member").patch(path, json={"first_name": "New", "role_id": other, "resource_ids": [host]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["first_name"], body["role_id"], body["resource_ids"]) == ("New", other, [host])
    r = api("acme_member").patch(path, json={"resource_ids": []})
    assert r.json()["resource_ids"] == []
    assert len(_audit(db, "alias.update")) == 2


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"role_id": "00000000-0000-7000-8000-000000000001"}, 422, "unknown_alias_role"),
        ({"role_id": None}, 422, "unknown_alias_role"),
        ({"resource_ids": ["00000000-0000-7000-8000-000000000001"]}, 422, "unknown_resource"),
        ({"email": "x@example.com"}, 422, "validation_error"),
        ({"active": "no"}, 422, "validation_error"),
    ],
)
def test_update_alias_bad_input_changes_nothing(api, db, body, status, code):
    alias = _alias(api)
    _problem(api("acme_member").patch(f"{ALIASES}/{alias['id']}", json=body), status, code)
    after = api("acme_member").get(f"{ALIASES}/{alias['id']}").json()
    assert after == alias
    assert _audit(db, "alias.update") == []


def test_update_alias_others_404_and_403(api):
    alias = _alias(api)
    _problem(
        api("globex_member").patch(f"{ALIASES}/{alias['id']}", json={"first_name": "x"}), 404, "not_found"
    )
    _problem(
        api("acme_viewer").patch(f"{ALIASES}/{alias['id']}", json={"first_name": "x"}),
        403,
        "permission_denied",
    )


def test_disable_alias_ends_its_sessions_enable_lets_it_sign_in(api, db, client):
    alias = _alias(api)
    token = login_token(db, "helper@example.com")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    r = api("acme_member").patch(f"{ALIASES}/{alias['id']}", json={"active": False})
    assert r.status_code == 200 and r.json()["active"] is False
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    login = client.post("/api/v1/auth/login", json={"email": "helper@example.com", "password": PASSWORD})
    _problem(login, 401, "invalid_credentials")
    assert len(_audit(db, "alias.disable")) == 1
    api("acme_member").patch(f"{ALIASES}/{alias['id']}", json={"active": True})
    assert len(_audit(db, "alias.enable")) == 1
    token = login_token(db, "helper@example.com")
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200


# --- delete -------------------------------------------------------------------------------------


def test_delete_alias_to_the_trash_and_its_sessions_end(api, db, client):
    alias = _alias(api)
    token = login_token(db, "helper@example.com")
    r = api("acme_member").delete(f"{ALIASES}/{alias['id']}")
    assert r.status_code == 204, r.text
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    _problem(api("acme_member").get(f"{ALIASES}/{alias['id']}"), 404, "not_found")
    with db.sessions() as s, scoping.include_deleted(s):
        row = s.get(User, uuid.UUID(alias["id"]))
        assert row is not None and row.deleted_at is not None and row.deletion_batch_id is not None
    assert len(_audit(db, "alias.delete")) == 1


def test_delete_alias_others_404_403_and_bad_id(api, db):
    alias = _alias(api)
    _problem(api("globex_member").delete(f"{ALIASES}/{alias['id']}"), 404, "not_found")
    _problem(api("acme_viewer").delete(f"{ALIASES}/{alias['id']}"), 403, "permission_denied")
    _problem(api("acme_member").delete(f"{ALIASES}/nope"), 422, "validation_error")
    assert api("acme_member").get(f"{ALIASES}/{alias['id']}").status_code == 200


def test_alias_role_in_use_cannot_be_deleted(api):
    alias = _alias(api)
    _problem(api("acme_member").delete(f"{ROLES}/{alias['role_id']}"), 409, "alias_role_in_use")


def test_deleting_the_parent_trashes_its_aliases_and_restoring_brings_them_back(api, db, personas, client):
    alias = _alias(api)
    parent_id = personas.users["acme_member"].id
    impact = api("superadmin").get(f"/api/v1/users/{parent_id}/deletion-impact")
    assert impact.status_code == 200, impact.text
    assert impact.json()["aliases"] == 1
    r = api("superadmin").delete(f"/api/v1/users/{parent_id}")
    assert r.status_code in (200, 204), r.text
    with db.sessions() as s, scoping.include_deleted(s):
        parent = s.get(User, parent_id)
        row = s.get(User, uuid.UUID(alias["id"]))
        assert parent is not None and row is not None
        assert row.deletion_batch_id == parent.deletion_batch_id is not None
        batch = parent.deletion_batch_id
    login = client.post("/api/v1/auth/login", json={"email": "helper@example.com", "password": PASSWORD})
    _problem(login, 401, "invalid_credentials")
    r = api("superadmin").post(f"/api/v1/trash/{batch}/restore")
    assert r.status_code == 200, r.text
    with db.sessions() as s:
        row = s.get(User, uuid.UUID(alias["id"]))
        assert row is not None and row.deleted_at is None
    assert login_token(db, "helper@example.com")


# --- an alias's SSH keys, managed by its parent -------------------------------------------------


def test_parent_manages_its_alias_ssh_keys(api, db):
    alias = _alias(api)
    path = f"{ALIASES}/{alias['id']}/ssh-keys"
    r = api("acme_member").post(path, json={"name": "laptop", "public_key": SSH_KEY})
    assert r.status_code == 201, r.text
    key = r.json()
    with db.sessions() as s:
        row = s.get(SshKey, uuid.UUID(key["id"]))
        assert row is not None and str(row.user_id) == alias["id"]
    listed = api("acme_member").get(path)
    assert [k["id"] for k in listed.json()["items"]] == [key["id"]]
    # The parent's own keys are another list.
    assert api("acme_member").get("/api/v1/me/ssh-keys").json()["items"] == []
    assert api("acme_member").delete(f"{path}/{key['id']}").status_code == 204
    assert api("acme_member").get(path).json()["items"] == []


def test_alias_ssh_keys_bad_input_others_and_forbidden(api, db):
    alias = _alias(api)
    path = f"{ALIASES}/{alias['id']}/ssh-keys"
    _problem(
        api("acme_member").post(path, json={"name": "x", "public_key": "ssh-rsa garbage"}),
        422,
        "invalid_ssh_key",
    )
    _problem(api("globex_member").get(path), 404, "not_found")
    _problem(api("globex_member").post(path, json={"name": "x", "public_key": SSH_KEY}), 404, "not_found")
    _problem(api("acme_viewer").get(path), 403, "permission_denied")
    r = api("acme_member").post(path, json={"name": "laptop", "public_key": SSH_KEY})
    _problem(api("globex_member").delete(f"{path}/{r.json()['id']}"), 404, "not_found")
    _problem(api("acme_member").delete(f"{path}/00000000-0000-7000-8000-000000000001"), 404, "not_found")
    with db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(SshKey)) == 1


def test_alias_holds_its_own_api_keys_and_ssh_keys(api, db, client):
    _alias(api)
    token = login_token(db, "helper@example.com")
    headers = {"Authorization": f"Bearer {token}"}
    r = client.post("/api/v1/me/api-keys", json={"name": "ci", "scope": "read"}, headers=headers)
    assert r.status_code == 201, r.text
    key_headers = {"Authorization": f"Bearer {r.json()['token']}"}
    assert client.get("/api/v1/me", headers=key_headers).json()["email"] == "helper@example.com"
    r = client.post("/api/v1/me/ssh-keys", json={"name": "laptop", "public_key": SSH_KEY}, headers=headers)
    assert r.status_code == 201, r.text


# --- a parent impersonating its own alias ---------------------------------------------------------

IMPERSONATION = "/api/v1/impersonation"


def _impersonate(api, persona: str, user_id: str):  # noqa: ANN202
    body = {"user_id": user_id, "reason": "see what my helper sees", "minutes": 10}
    return api(persona).post(IMPERSONATION, json=body)


def test_a_parent_may_impersonate_its_own_alias_under_the_aliass_ceiling(api, client, app, personas):
    app.state.settings.impersonation = True
    alias = _alias(api)
    r = _impersonate(api, "acme_member", alias["id"])
    assert r.status_code == 201, r.text
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    me = client.get("/api/v1/me", headers=headers)
    assert me.status_code == 200, me.text
    assert me.json()["id"] == alias["id"]
    assert me.json()["impersonated_by"]["id"] == str(personas.users["acme_member"].id)
    # The alias's ceiling holds under the token: its role has no member.read.
    assert client.get("/api/v1/tenants/acme/members", headers=headers).status_code == 403


def test_nobody_but_the_parent_or_a_superadmin_impersonates_an_alias(api, app, personas):
    app.state.settings.impersonation = True
    alias = _alias(api)
    for persona in ("acme_admin", "globex_member"):
        r = _impersonate(api, persona, alias["id"])
        assert r.status_code == 403, r.text
        assert r.json()["code"] == "impersonation_denied"
    # An unknown id answers the same as someone else's alias: nothing to learn.
    r = _impersonate(api, "acme_member", str(uuid.uuid4()))
    assert r.status_code == 403 and r.json()["code"] == "impersonation_denied"
    assert _impersonate(api, "superadmin", alias["id"]).status_code == 201


def test_an_impersonated_alias_is_refused_once_its_parent_is_deactivated(api, client, app, personas):
    app.state.settings.impersonation = True
    alias = _alias(api)
    r = _impersonate(api, "superadmin", alias["id"])
    assert r.status_code == 201, r.text
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    parent = personas.users["acme_member"].id
    assert api("superadmin").patch(f"/api/v1/users/{parent}", json={"active": False}).status_code == 200
    r = client.get("/api/v1/me", headers=headers)
    assert r.status_code == 401 and r.json()["code"] == "invalid_token"

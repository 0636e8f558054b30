"""`/api/v1/me/alias-roles`: permission sets a parent defines for its alias users (issue 10)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from tenantry.db import scoping
from tenantry.db.session import Database
from tenantry.db.tables import AliasRole, AuditEvent, Resource
from tests.asserts import assert_problem as _problem

ROLES = "/api/v1/me/alias-roles"
ONE = f"{ROLES}/00000000-0000-7000-8000-000000000001"


def _rows(db: Database) -> int:
    with db.sessions() as s, scoping.include_deleted(s):
        return s.scalar(select(func.count()).select_from(AliasRole)) or 0


def _audit(db: Database, action: str) -> list[AuditEvent]:
    with db.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _create(api, persona: str = "acme_member", name: str = "support", perms: list[str] | None = None) -> dict:
    body = {"name": name, "permissions": perms if perms is not None else ["host.read", "tenant.read"]}
    r = api(persona).post(ROLES, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def _key(api, persona: str, scope: str, tenant_id: uuid.UUID | None = None) -> dict[str, str]:
    body: dict[str, str] = {"name": "k", "scope": scope}
    if tenant_id is not None:
        body["tenant_id"] = str(tenant_id)
    token = api(persona).post("/api/v1/me/api-keys", json=body).json()["token"]
    return {"Authorization": f"Bearer {token}"}


# --- create -------------------------------------------------------------------------------------


def test_create_alias_role_owned_by_the_caller_and_audited(api, db, personas):
    r = api("acme_member").post(
        ROLES, json={"name": " support ", "permissions": ["tenant.read", "host.read", "host.read"]}
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["name"] == "support"
    assert body["permissions"] == ["host.read", "tenant.read"]
    assert body["warnings"] == []
    assert r.headers["ETag"] == '"v1"'
    with db.sessions() as s:
        role = s.get(AliasRole, uuid.UUID(body["id"]))
        assert role is not None and role.owner_id == personas.users["acme_member"].id
    events = _audit(db, "alias_role.create")
    assert len(events) == 1
    assert events[0].tenant_id is None
    assert events[0].target_id == body["id"]
    assert events[0].after["permissions"] == ["host.read", "tenant.read"]


def test_create_alias_role_with_no_permissions(api):
    assert _create(api, perms=[])["permissions"] == []


def test_create_alias_role_unknown_permission_422_nothing_written(api, db):
    body = _problem(
        api("acme_member").post(ROLES, json={"name": "x", "permissions": ["host.read", "host.fly"]}),
        422,
        "unknown_permission",
    )
    assert body["permissions"] == ["host.fly"]
    assert _rows(db) == 0


def test_create_alias_role_naming_a_permission_the_parent_lacks_422_naming_it(api, db):
    # A member holds resource and read permissions in acme, not member.manage or audit.read.
    body = _problem(
        api("acme_member").post(
            ROLES, json={"name": "x", "permissions": ["host.read", "member.manage", "audit.read"]}
        ),
        422,
        "permission_not_held",
    )
    assert body["permissions"] == ["audit.read", "member.manage"]
    assert "member.manage" in body["detail"]
    assert _rows(db) == 0
    assert _audit(db, "alias_role.create") == []


def test_create_alias_role_permissions_held_in_another_tenant_count(api):
    # globex_admin holds member.manage in globex: the alias is capped per scope by the engine later.
    assert _create(api, "globex_admin", perms=["member.manage", "audit.read"])["permissions"] == [
        "audit.read",
        "member.manage",
    ]


def test_superadmin_may_name_any_permission_it_holds(api):
    assert "user.read" in _create(api, "superadmin", perms=["user.read", "tenant.create"])["permissions"]


@pytest.mark.parametrize("perm", ["alias.manage", "impersonate"])
def test_create_alias_role_with_delegation_permissions_422(api, db, perm):
    body = _problem(
        api("superadmin").post(ROLES, json={"name": "x", "permissions": [perm], "acknowledge_risk": True}),
        422,
        "permission_not_for_aliases",
    )
    assert body["permissions"] == [perm]
    assert _rows(db) == 0


def test_create_alias_role_dangerous_needs_acknowledge_risk(api, db):
    # trash.purge is dangerous and a tenant admin holds it.
    body = _problem(
        api("acme_admin").post(ROLES, json={"name": "cleaner", "permissions": ["trash.purge"]}),
        409,
        "risk_not_acknowledged",
    )
    assert body["permissions"] == ["trash.purge"]
    assert _rows(db) == 0
    r = api("acme_admin").post(
        ROLES, json={"name": "cleaner", "permissions": ["trash.purge"], "acknowledge_risk": True}
    )
    assert r.status_code == 201, r.text
    assert r.json()["warnings"] == ["dangerous permission: trash.purge"]
    assert _audit(db, "alias_role.create")[0].after["acknowledged_risk"] == ["trash.purge"]


def test_create_alias_role_duplicate_name_409(api, db):
    _create(api, name="support")
    _problem(
        api("acme_member").post(ROLES, json={"name": "support", "permissions": []}),
        409,
        "alias_role_name_taken",
    )
    assert _rows(db) == 1
    _create(api, "globex_member", name="support")  # names are per parent


@pytest.mark.parametrize(
    "body",
    [
        {"name": "x"},
        {"permissions": []},
        {"name": "", "permissions": []},
        {"name": "a\nb", "permissions": []},
        {"name": "x" * 101, "permissions": []},
        {"name": "x", "permissions": "host.read"},
        {"name": "x", "permissions": [], "owner_id": str(uuid.uuid4())},
        {"name": "x", "permissions": [], "acknowledge_risk": "yes"},
    ],
)
def test_create_alias_role_bad_body_422_nothing_written(api, db, body):
    _problem(api("acme_member").post(ROLES, json=body), 422, "validation_error")
    assert _rows(db) == 0


def test_create_alias_role_with_read_write_key_restricted_to_acme(api, client, personas):
    headers = _key(api, "acme_member", "read_write", personas.acme.id)
    r = client.post(ROLES, json={"name": "bot", "permissions": ["host.read"]}, headers=headers)
    assert r.status_code == 201, r.text


# --- list and get -------------------------------------------------------------------------------


def test_list_alias_roles_only_own_paginated(api):
    mine = [_create(api, name=f"r{i}") for i in range(3)]
    gone = _create(api, name="gone")
    api("acme_member").delete(f"{ROLES}/{gone['id']}")
    _create(api, "acme_admin", name="theirs")
    first = api("acme_member").get(ROLES, params={"limit": 2}).json()
    assert [r["name"] for r in first["items"]] == ["r0", "r1"]
    rest = api("acme_member").get(ROLES, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [r["name"] for r in rest["items"]] == ["r2"]
    assert rest["next_cursor"] is None
    assert [r["id"] for r in first["items"] + rest["items"]] == [r["id"] for r in mine]
    assert [r["name"] for r in api("acme_admin").get(ROLES).json()["items"]] == ["theirs"]
    assert api("superadmin").get(ROLES).json() == {"items": [], "next_cursor": None}


def test_list_alias_roles_bad_input_422(api):
    _problem(api("acme_member").get(ROLES, params={"cursor": "nope"}), 422, "invalid_cursor")
    ssh_cursor = "WyJzc2hfa2V5cyIsIjAwMDAwMDAwLTAwMDAtNzAwMC04MDAwLTAwMDAwMDAwMDAwMSJd"  # another list's
    _problem(api("acme_member").get(ROLES, params={"cursor": ssh_cursor}), 422, "invalid_cursor")
    _problem(api("acme_member").get(ROLES, params={"limit": 201}), 422, "validation_error")


def test_get_alias_role(api):
    role = _create(api)
    r = api("acme_member").get(f"{ROLES}/{role['id']}")
    assert r.status_code == 200
    assert r.json() == role
    assert r.headers["ETag"] == '"v1"'


def test_get_alias_role_bad_id_422_unknown_404(api):
    _problem(api("acme_member").get(f"{ROLES}/not-a-uuid"), 422, "validation_error")
    _problem(api("acme_member").get(ONE), 404, "not_found")


# --- another parent's alias role: 404 everywhere, untouched --------------------------------------


@pytest.mark.parametrize("persona", ["acme_admin", "globex_admin", "superadmin"])
def test_another_users_alias_role_404(api, db, persona):
    role = _create(api, "acme_member")
    path = f"{ROLES}/{role['id']}"
    _problem(api(persona).get(path), 404, "not_found")
    _problem(api(persona).patch(path, json={"name": "taken over"}), 404, "not_found")
    _problem(api(persona).delete(path), 404, "not_found")
    assert role["id"] not in str(api(persona).get(ROLES).json())
    assert api("acme_member").get(path).json() == role
    assert _audit(db, "alias_role.update") == _audit(db, "alias_role.delete") == []


# --- update -------------------------------------------------------------------------------------


def test_rename_and_change_permissions_audited(api, db):
    role = _create(api)
    path = f"{ROLES}/{role['id']}"
    r = api("acme_member").patch(path, json={"name": "helpdesk"}, headers={"If-Match": '"v1"'})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "helpdesk"
    assert r.headers["ETag"] == '"v2"'
    r = api("acme_member").patch(path, json={"permissions": ["host.update", "host.read"]})
    assert r.status_code == 200, r.text
    assert r.json()["permissions"] == ["host.read", "host.update"]
    assert r.json()["name"] == "helpdesk"
    events = _audit(db, "alias_role.update")
    assert [e.after for e in events] == [
        {"name": "helpdesk"},
        {"permissions": ["host.read", "host.update"]},
    ]
    assert events[1].before == {"permissions": ["host.read", "tenant.read"]}


def test_update_without_changes_writes_no_audit(api, db):
    role = _create(api)
    r = api("acme_member").patch(f"{ROLES}/{role['id']}", json={"name": role["name"]})
    assert r.status_code == 200
    assert _audit(db, "alias_role.update") == []


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"permissions": ["host.fly"]}, 422, "unknown_permission"),
        ({"permissions": ["member.manage"]}, 422, "permission_not_held"),
        ({"permissions": ["alias.manage"]}, 422, "permission_not_for_aliases"),
        ({"permissions": None}, 422, "invalid_permissions"),
        ({"name": None}, 422, "invalid_name"),
        ({"name": ""}, 422, "validation_error"),
        ({"name": "x", "owner_id": str(uuid.uuid4())}, 422, "validation_error"),
    ],
)
def test_update_alias_role_bad_input_nothing_written(api, db, body, status, code):
    role = _create(api)
    _problem(api("acme_member").patch(f"{ROLES}/{role['id']}", json=body), status, code)
    assert api("acme_member").get(f"{ROLES}/{role['id']}").json() == role
    assert _audit(db, "alias_role.update") == []


def test_update_alias_role_dangerous_needs_acknowledge_risk_only_when_added(api):
    role = _create(api, "acme_admin", perms=["host.read"])
    path = f"{ROLES}/{role['id']}"
    _problem(
        api("acme_admin").patch(path, json={"permissions": ["trash.purge"]}), 409, "risk_not_acknowledged"
    )
    r = api("acme_admin").patch(path, json={"permissions": ["trash.purge"], "acknowledge_risk": True})
    assert r.status_code == 200, r.text
    assert r.json()["warnings"] == ["dangerous permission: trash.purge"]
    # Already there: keeping it needs no second acknowledgement.
    r = api("acme_admin").patch(path, json={"permissions": ["trash.purge", "host.read"]})
    assert r.status_code == 200, r.text


def test_update_alias_role_rename_clash_409_and_stale_etag_412(api):
    _create(api, name="a")
    b = _create(api, name="b")
    path = f"{ROLES}/{b['id']}"
    _problem(api("acme_member").patch(path, json={"name": "a"}), 409, "alias_role_name_taken")
    _problem(
        api("acme_member").patch(path, json={"name": "c"}, headers={"If-Match": '"v7"'}), 412, "etag_mismatch"
    )
    assert api("acme_member").get(path).json()["name"] == "b"


def test_permissions_are_checked_against_what_the_parent_holds_at_save(api, personas):
    role = _create(api, "acme_admin", perms=["member.manage"])
    member = personas.users["acme_admin"].id
    # The parent loses tenant_admin (becomes a plain member): member.manage can no longer be saved.
    r = api("superadmin").patch(f"/api/v1/tenants/acme/members/{member}", json={"role": "member"})
    assert r.status_code == 200, r.text
    body = _problem(
        api("acme_admin").patch(
            f"{ROLES}/{role['id']}", json={"permissions": ["member.manage", "host.read"]}
        ),
        422,
        "permission_not_held",
    )
    assert body["permissions"] == ["member.manage"]
    # A rename alone does not re-save the permissions.
    assert api("acme_admin").patch(f"{ROLES}/{role['id']}", json={"name": "old"}).status_code == 200


# --- delete -------------------------------------------------------------------------------------


def test_delete_alias_role_audited_then_404_and_name_free(api, db):
    role = _create(api)
    path = f"{ROLES}/{role['id']}"
    assert api("acme_member").delete(path).status_code == 204
    _problem(api("acme_member").get(path), 404, "not_found")
    _problem(api("acme_member").delete(path), 404, "not_found")
    events = _audit(db, "alias_role.delete")
    assert len(events) == 1 and events[0].target_id == role["id"]
    assert events[0].before["name"] == "support"
    _create(api, name="support")


def test_delete_alias_role_bad_id_422(api):
    _problem(api("acme_member").delete(f"{ROLES}/not-a-uuid"), 422, "validation_error")


# --- not permitted: 403 on every endpoint -------------------------------------------------------

ENDPOINTS = [
    ("GET", ROLES, None),
    ("POST", ROLES, {"name": "x", "permissions": ["tenant.read"]}),
    ("GET", ONE, None),
    ("PATCH", ONE, {"name": "x"}),
    ("DELETE", ONE, None),
]


@pytest.mark.parametrize("persona", ["acme_viewer", "outsider"])
@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_without_alias_manage_403_on_every_endpoint(api, db, persona, method, path, body):
    _problem(api(persona).request(method, path, json=body), 403, "permission_denied")
    assert _rows(db) == 0


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_read_api_key_403_on_every_endpoint(api, client, db, method, path, body):
    headers = _key(api, "acme_member", "read")
    _problem(client.request(method, path, json=body, headers=headers), 403, "key_read_only")
    assert _rows(db) == 0


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_not_signed_in_401_on_every_endpoint(api, method, path, body):
    _problem(api(None).request(method, path, json=body), 401, "unauthenticated")


def test_refusal_leaves_an_authz_denied_trace(api, db, personas):
    api("acme_viewer").get(ROLES)
    events = _audit(db, "authz.denied")
    assert any(e.actor_id == personas.users["acme_viewer"].id for e in events)


def test_key_restricted_to_globex_acts_only_with_globex_permissions(api, client, personas):
    # acme_member is also a viewer in globex: a key tied to globex holds no alias.manage at all.
    r = api("superadmin").post(
        "/api/v1/tenants/globex/members",
        json={"user_id": str(personas.users["acme_member"].id), "role": "viewer"},
    )
    assert r.status_code in (200, 201), r.text
    headers = _key(api, "acme_member", "read_write", personas.globex.id)
    _problem(client.get(ROLES, headers=headers), 403, "permission_denied")


# --- the parent's deletion ---------------------------------------------------------------------


def test_deleting_the_parent_trashes_its_alias_roles_and_restore_brings_them_back(api, db, personas):
    role = _create(api)
    user_id = personas.users["acme_member"].id
    assert api("superadmin").delete(f"/api/v1/users/{user_id}").status_code in (200, 202, 204)
    with db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(AliasRole)) == 0
    assert api("superadmin").post(f"/api/v1/users/{user_id}/restore").status_code == 200
    with db.sessions() as s:
        assert [str(r) for r in s.scalars(select(AliasRole.id))] == [role["id"]]


# --- held on one resource only ------------------------------------------------------------------


def test_permission_held_on_one_resource_only_may_be_named(api, db, personas):
    """A grant on one host is holding: the alias role may name it (the engine caps it per resource)."""
    viewer = str(personas.users["acme_viewer"].id)
    r = api("acme_admin").post(
        "/api/v1/tenants/acme/roles", json={"key": "aliaser", "name": "A", "permissions": ["alias.manage"]}
    )
    assert r.status_code == 201, r.text
    grant = {"principal": {"type": "user", "id": viewer}, "role": "aliaser"}
    assert api("acme_admin").post("/api/v1/tenants/acme/grants", json=grant).status_code == 201
    body = {"name": "ops", "permissions": ["host.update"]}
    refused = _problem(api("acme_viewer").post(ROLES, json=body), 422, "permission_not_held")
    assert refused["permissions"] == ["host.update"]
    with db.unit_of_work() as s, scoping.in_tenant(s, personas.acme.id):
        host = Resource(tenant_id=personas.acme.id, type="host", name="web-1")
        s.add(host)
        s.flush()
        host_id = str(host.id)
    on_host = {**grant, "role": "member", "scope": {"type": "resource", "resource_id": host_id}}
    r = api("acme_admin").post("/api/v1/tenants/acme/grants", json=on_host)
    assert r.status_code == 201, r.text
    r = api("acme_viewer").post(ROLES, json=body)
    assert r.status_code == 201, r.text
    # Not resource-scoped, and held nowhere: still refused.
    _problem(
        api("acme_viewer").post(ROLES, json={"name": "x", "permissions": ["member.manage"]}),
        422,
        "permission_not_held",
    )

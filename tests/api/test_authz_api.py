"""The authorization API: `/permissions`, `/roles`, `/tenants/{tenant}/roles`, `/grants`,
`/tenants/{tenant}/grants`, `/groups` (+ members) and `/authz/explain`.

Each endpoint gets the four cases (STYLE point 14): success, bad input (problem + stable code,
nothing written), another tenant (404) and not permitted (403).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tenantry.db import scoping
from tenantry.db.session import Database
from tenantry.db.tables import AuditEvent, GlobalGrant, Grant, Group, Resource, Role, TenantRole
from tests.personas import Personas

Api = Callable[[str | None], TestClient]

ROLES = "/api/v1/roles"
ACME_ROLES = "/api/v1/tenants/acme/roles"
GRANTS = "/api/v1/grants"
ACME_GRANTS = "/api/v1/tenants/acme/grants"
GROUPS = "/api/v1/groups"
EXPLAIN = "/api/v1/authz/explain"


# --- helpers ---------------------------------------------------------------------------------


def problem(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == code, body
    return body


def uid(personas: Personas, name: str) -> str:
    return str(personas.users[name].id)


def to_user(personas: Personas, name: str, role: str, **scope: object) -> dict:
    body: dict = {"principal": {"type": "user", "id": uid(personas, name)}, "role": role}
    if scope:
        body["scope"] = scope
    return body


def count(db: Database, model: type, *where: object, tenant_id: uuid.UUID | None = None) -> int:
    with db.sessions() as s:
        if tenant_id is not None:
            scoping.enter_tenant(s, tenant_id)
        return s.scalar(select(func.count()).select_from(model).where(*where)) or 0


def audit_count(db: Database, action: str) -> int:
    return count(db, AuditEvent, AuditEvent.action == action)


def add_resource(db: Database, tenant_id: uuid.UUID, name: str, parent: uuid.UUID | None = None) -> uuid.UUID:
    with db.unit_of_work() as s, scoping.in_tenant(s, tenant_id):
        r = Resource(tenant_id=tenant_id, type="host", name=name, parent_id=parent)
        s.add(r)
        s.flush()
        return r.id


def role_keys(r) -> set[str]:
    assert r.status_code == 200, r.text
    return {role["key"] for role in r.json()}


# --- /permissions ------------------------------------------------------------------------------


def test_list_permissions_returns_the_catalog_with_risk_and_scopes(api: Api) -> None:
    r = api("acme_member").get("/api/v1/permissions")
    assert r.status_code == 200, r.text
    by_key = {p["key"]: p for p in r.json()}
    assert by_key["tenant.delete"]["risk"] == "dangerous"
    assert by_key["tenant.delete"]["scopes"] == ["global"]
    assert by_key["host.read"] == {
        "key": "host.read",
        "description": by_key["host.read"]["description"],
        "risk": "normal",
        "scopes": ["global", "tenant", "resource"],
        "read_only": True,
    }
    assert list(by_key) == sorted(by_key)  # stable order


def test_list_permissions_without_token_401(api: Api) -> None:
    problem(api(None).get("/api/v1/permissions"), 401, "unauthenticated")


def test_list_permissions_with_unknown_token_401(client: TestClient) -> None:
    r = client.get("/api/v1/permissions", headers={"Authorization": "Bearer tnt_ses_not-a-real-token"})
    assert r.status_code == 401
    assert r.json()["code"] in {"invalid_token", "unauthenticated"}


# --- /roles (global) -----------------------------------------------------------------------------


def test_list_roles_shows_builtin_and_global_custom_roles(api: Api) -> None:
    r = api("superadmin").get(ROLES)
    assert {"superadmin", "tenant_admin", "member", "viewer", "auditor"} <= role_keys(r)
    builtin = {role["key"]: role for role in r.json()}
    assert builtin["viewer"]["builtin"] is True
    assert "host.update" not in builtin["viewer"]["permissions"]


@pytest.mark.parametrize("persona", ["acme_admin", "acme_member", "outsider"])
def test_list_roles_global_not_permitted_403(api: Api, persona: str) -> None:
    problem(api(persona).get(ROLES), 403, "permission_denied")


def test_global_role_crud_by_superadmin(api: Api, db: Database) -> None:
    sa = api("superadmin")
    r = sa.post(
        ROLES, json={"key": "deployer", "name": "Deployer", "permissions": ["host.update", "host.read"]}
    )
    assert r.status_code == 201, r.text
    assert r.json() | {"permissions": None} == {
        "key": "deployer",
        "name": "Deployer",
        "description": "",
        "permissions": None,
        "builtin": False,
        "scope": "global",
        "tenant_id": None,
        "warnings": [],
    }
    assert r.json()["permissions"] == ["host.read", "host.update"]
    assert audit_count(db, "role.create") == 1

    assert sa.get(f"{ROLES}/deployer").json()["name"] == "Deployer"
    r = sa.patch(f"{ROLES}/deployer", json={"name": "Deployers", "permissions": ["host.read"]})
    assert r.status_code == 200, r.text
    assert (r.json()["name"], r.json()["permissions"]) == ("Deployers", ["host.read"])
    assert "deployer" in role_keys(sa.get(ROLES))
    # Usable in every tenant.
    assert "deployer" in role_keys(api("acme_admin").get(ACME_ROLES))

    sa = api("superadmin")  # one test client: a persona switch changes its header
    assert sa.delete(f"{ROLES}/deployer").status_code == 204
    problem(sa.get(f"{ROLES}/deployer"), 404, "not_found")
    assert "deployer" not in role_keys(sa.get(ROLES))


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"key": "Bad Key", "name": "x", "permissions": []}, "invalid_role_key"),
        ({"key": "x1", "name": "   ", "permissions": []}, "validation_error"),
        ({"key": "ghost", "name": "Ghost", "permissions": ["host.read", "host.fly"]}, "unknown_permission"),
        ({"key": "ghost", "name": "Ghost"}, "validation_error"),
        ({"key": "ghost", "name": "Ghost", "permissions": [], "extra": 1}, "validation_error"),
    ],
)
def test_create_role_bad_input_422_nothing_written(api: Api, db: Database, body: dict, code: str) -> None:
    problem(api("superadmin").post(ROLES, json=body), 422, code)
    assert count(db, Role) == 0
    assert audit_count(db, "role.create") == 0


@pytest.mark.parametrize("key", ["member", "viewer"])
def test_create_role_with_taken_key_409(api: Api, key: str) -> None:
    problem(
        api("superadmin").post(ROLES, json={"key": key, "name": "x", "permissions": []}),
        409,
        "role_key_taken",
    )


def test_create_role_with_key_of_a_tenant_role_409(api: Api) -> None:
    r = api("acme_admin").post(
        ACME_ROLES, json={"key": "operator", "name": "Operator", "permissions": ["host.read"]}
    )
    assert r.status_code == 201, r.text
    body = {"key": "operator", "name": "x", "permissions": []}
    problem(api("superadmin").post(ROLES, json=body), 409, "role_key_taken")


@pytest.mark.parametrize("persona", ["acme_admin", "acme_member"])
def test_create_global_role_not_permitted_403_nothing_written(api: Api, db: Database, persona: str) -> None:
    r = api(persona).post(ROLES, json={"key": "sneaky", "name": "Sneaky", "permissions": ["host.read"]})
    problem(r, 403, "permission_denied")
    assert count(db, Role) == 0


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("patch", f"{ROLES}/tenant_admin", {"name": "Boss"}),
        ("patch", f"{ROLES}/viewer", {"permissions": ["host.read", "host.delete"]}),
        ("delete", f"{ROLES}/superadmin", None),
        ("patch", f"{ACME_ROLES}/member", {"name": "Member+"}),
        ("delete", f"{ACME_ROLES}/auditor", None),
    ],
)
def test_builtin_roles_are_immutable_409(api: Api, method: str, path: str, body: dict | None) -> None:
    persona = "acme_admin" if "/tenants/" in path else "superadmin"
    kwargs = {"json": body} if body is not None else {}
    problem(getattr(api(persona), method)(path, **kwargs), 409, "builtin_role_immutable")


@pytest.mark.parametrize(
    ("persona", "path"),
    [
        ("acme_member", f"{ROLES}/viewer"),  # built-in
        ("acme_admin", f"{ROLES}/tenant_admin"),
        ("acme_admin", f"{ROLES}/no_such_role"),  # absent
        ("acme_member", f"{ACME_ROLES}/member"),
        ("acme_viewer", f"{ACME_ROLES}/no_such_role"),
    ],
)
def test_change_role_not_permitted_403_whatever_the_key(api: Api, persona: str, path: str) -> None:
    """No role management right: the same 403 for built-in, absent and custom roles alike."""
    problem(api(persona).patch(path, json={"name": "x"}), 403, "permission_denied")
    problem(api(persona).delete(path), 403, "permission_denied")


def test_dangerous_permission_without_acknowledgement_409_lists_them(api: Api, db: Database) -> None:
    body = {"key": "wrecker", "name": "Wrecker", "permissions": ["host.read", "tenant.delete", "user.manage"]}
    p = problem(api("superadmin").post(ROLES, json=body), 409, "risk_not_acknowledged")
    assert p["permissions"] == ["tenant.delete", "user.manage"]
    assert count(db, Role) == 0


def test_dangerous_permission_acknowledged_201_with_warnings(api: Api) -> None:
    body = {"key": "wrecker", "name": "Wrecker", "permissions": ["tenant.delete"], "acknowledge_risk": True}
    r = api("superadmin").post(ROLES, json=body)
    assert r.status_code == 201, r.text
    assert r.json()["warnings"] == ["dangerous permission: tenant.delete"]


def test_update_role_adding_dangerous_permission_needs_acknowledgement(api: Api) -> None:
    sa = api("superadmin")
    assert sa.post(ROLES, json={"key": "ops", "name": "Ops", "permissions": ["host.read"]}).status_code == 201
    p = problem(
        sa.patch(f"{ROLES}/ops", json={"permissions": ["host.read", "impersonate"]}),
        409,
        "risk_not_acknowledged",
    )
    assert p["permissions"] == ["impersonate"]
    assert sa.get(f"{ROLES}/ops").json()["permissions"] == ["host.read"]  # unchanged
    r = sa.patch(f"{ROLES}/ops", json={"permissions": ["host.read", "impersonate"], "acknowledge_risk": True})
    assert r.status_code == 200, r.text
    assert r.json()["warnings"] == ["dangerous permission: impersonate"]
    # Already acknowledged once: renaming does not ask again.
    assert sa.patch(f"{ROLES}/ops", json={"name": "Operations"}).status_code == 200


def test_delete_role_in_use_409_role_in_use(api: Api, personas: Personas) -> None:
    sa = api("superadmin")
    assert (
        sa.post(ROLES, json={"key": "reporter", "name": "R", "permissions": ["audit.read"]}).status_code
        == 201
    )
    assert sa.post(ACME_GRANTS, json=to_user(personas, "acme_member", "reporter")).status_code == 201
    problem(sa.delete(f"{ROLES}/reporter"), 409, "role_in_use")
    assert sa.get(f"{ROLES}/reporter").status_code == 200


def test_get_unknown_role_404(api: Api) -> None:
    problem(api("superadmin").get(f"{ROLES}/no_such_role"), 404, "not_found")
    problem(api("superadmin").patch(f"{ROLES}/no_such_role", json={"name": "x"}), 404, "not_found")


# --- /tenants/{tenant}/roles ---------------------------------------------------------------------


def test_tenant_role_crud_by_tenant_admin(api: Api, db: Database, personas: Personas) -> None:
    admin = api("acme_admin")
    r = admin.post(
        ACME_ROLES, json={"key": "operator", "name": "Operator", "permissions": ["host.read", "host.update"]}
    )
    assert r.status_code == 201, r.text
    assert (r.json()["scope"], r.json()["tenant_id"]) == ("tenant", str(personas.acme.id))
    keys = role_keys(admin.get(ACME_ROLES))
    assert {"tenant_admin", "member", "viewer", "auditor", "operator"} <= keys
    assert "superadmin" not in keys  # global-only, not usable in a tenant
    assert admin.get(f"{ACME_ROLES}/operator").json()["permissions"] == ["host.read", "host.update"]
    r = admin.patch(f"{ACME_ROLES}/operator", json={"description": "Runs hosts"})
    assert (r.status_code, r.json()["description"]) == (200, "Runs hosts")
    assert admin.delete(f"{ACME_ROLES}/operator").status_code == 204
    problem(admin.get(f"{ACME_ROLES}/operator"), 404, "not_found")
    assert audit_count(db, "role.delete") == 1


def test_tenant_role_is_usable_only_in_its_tenant(api: Api) -> None:
    r = api("acme_admin").post(
        ACME_ROLES, json={"key": "operator", "name": "Operator", "permissions": ["host.read"]}
    )
    assert r.status_code == 201
    assert "operator" not in role_keys(api("globex_admin").get("/api/v1/tenants/globex/roles"))
    problem(api("globex_admin").get("/api/v1/tenants/globex/roles/operator"), 404, "not_found")
    assert "operator" not in role_keys(api("superadmin").get(ROLES))


def test_list_tenant_roles_by_member_200(api: Api) -> None:
    assert "member" in role_keys(api("acme_member").get(ACME_ROLES))


@pytest.mark.parametrize("persona", ["acme_member", "acme_viewer", "acme_auditor"])
def test_create_tenant_role_not_permitted_403_nothing_written(
    api: Api, db: Database, personas: Personas, persona: str
) -> None:
    r = api(persona).post(ACME_ROLES, json={"key": "mine", "name": "Mine", "permissions": ["host.read"]})
    problem(r, 403, "permission_denied")
    assert count(db, TenantRole, tenant_id=personas.acme.id) == 0


def test_change_tenant_role_not_permitted_403(api: Api) -> None:
    assert (
        api("acme_admin").post(ACME_ROLES, json={"key": "op", "name": "Op", "permissions": []}).status_code
        == 201
    )
    problem(api("acme_member").patch(f"{ACME_ROLES}/op", json={"name": "Mine"}), 403, "permission_denied")
    problem(api("acme_member").delete(f"{ACME_ROLES}/op"), 403, "permission_denied")
    assert api("acme_admin").get(f"{ACME_ROLES}/op").json()["name"] == "Op"


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("post", "", {"key": "intruder", "name": "Intruder", "permissions": []}),
        ("get", "/operator", None),
        ("patch", "/operator", {"name": "Pwned"}),
        ("delete", "/operator", None),
    ],
)
def test_tenant_roles_of_another_tenant_404(
    api: Api, db: Database, personas: Personas, method: str, suffix: str, body: dict | None
) -> None:
    assert (
        api("acme_admin")
        .post(ACME_ROLES, json={"key": "operator", "name": "Op", "permissions": []})
        .status_code
        == 201
    )
    kwargs = {"json": body} if body is not None else {}
    problem(getattr(api("globex_admin"), method)(ACME_ROLES + suffix, **kwargs), 404, "not_found")
    assert count(db, TenantRole, tenant_id=personas.acme.id) == 1
    assert api("acme_admin").get(f"{ACME_ROLES}/operator").json()["name"] == "Op"


def test_tenant_role_by_id_of_another_tenant_404(api: Api, personas: Personas) -> None:
    r = api("globex_admin").get(f"/api/v1/tenants/{personas.acme.id}/roles")
    problem(r, 404, "not_found")


def test_tenant_role_with_global_only_permission_422(api: Api, db: Database, personas: Personas) -> None:
    body = {"key": "boss", "name": "Boss", "permissions": ["host.read", "tenant.delete", "user.manage"]}
    p = problem(api("acme_admin").post(ACME_ROLES, json=body), 422, "permission_not_allowed_here")
    assert p["permissions"] == ["tenant.delete", "user.manage"]
    assert count(db, TenantRole, tenant_id=personas.acme.id) == 0


def test_tenant_role_with_permission_the_creator_lacks_403_escalation_denied(
    api: Api, db: Database, personas: Personas
) -> None:
    """A role manager who may not delete hosts cannot define a role that may."""
    admin = api("acme_admin")
    r = admin.post(
        ACME_ROLES, json={"key": "role_admin", "name": "RA", "permissions": ["tenant.read", "role.manage"]}
    )
    assert r.status_code == 201, r.text
    assert admin.post(ACME_GRANTS, json=to_user(personas, "acme_viewer", "role_admin")).status_code == 201

    viewer = api("acme_viewer")
    body = {"key": "deleter", "name": "Deleter", "permissions": ["host.read", "host.delete"]}
    p = problem(viewer.post(ACME_ROLES, json=body), 403, "escalation_denied")
    assert p["permissions"] == ["host.delete"]
    # ... nor widen an existing role to it.
    assert (
        viewer.post(
            ACME_ROLES, json={"key": "reader", "name": "Reader", "permissions": ["host.read"]}
        ).status_code
        == 201
    )
    r = viewer.patch(f"{ACME_ROLES}/reader", json={"permissions": ["host.read", "host.delete"]})
    problem(r, 403, "escalation_denied")
    assert count(db, TenantRole, TenantRole.key == "deleter", tenant_id=personas.acme.id) == 0


def test_tenant_admin_cannot_change_a_global_custom_role(api: Api) -> None:
    assert (
        api("superadmin").post(ROLES, json={"key": "shared", "name": "S", "permissions": []}).status_code
        == 201
    )
    problem(api("acme_admin").patch(f"{ACME_ROLES}/shared", json={"name": "Mine"}), 403, "global_role")
    problem(api("acme_admin").delete(f"{ACME_ROLES}/shared"), 403, "global_role")


# --- /grants (global) ------------------------------------------------------------------------------


def test_global_grant_create_list_revoke_by_superadmin(api: Api, db: Database, personas: Personas) -> None:
    sa = api("superadmin")
    r = sa.post(GRANTS, json=to_user(personas, "outsider", "viewer"))
    assert r.status_code == 201, r.text
    grant = r.json()
    assert grant["scope"] == {"type": "global", "tenant_id": None, "resource_id": None}
    assert grant["principal"] == {"type": "user", "id": uid(personas, "outsider")}
    # A global viewer sees acme without a membership.
    assert api("outsider").get("/api/v1/tenants/acme").status_code == 200

    sa = api("superadmin")
    listed = sa.get(GRANTS, params={"principal_id": uid(personas, "outsider")})
    assert [g["id"] for g in listed.json()] == [grant["id"]]
    assert sa.get(GRANTS, params={"role": "auditor"}).json() == []

    assert sa.delete(f"{GRANTS}/{grant['id']}").status_code == 204
    assert sa.get(GRANTS).json() == []
    problem(api("outsider").get("/api/v1/tenants/acme"), 403, "no_tenant")  # back to no tenant at all
    assert audit_count(db, "grant.create") == audit_count(db, "grant.delete") == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"role": "viewer", "principal": {"type": "user", "id": "not-a-uuid"}}, "validation_error"),
        ({"role": "viewer", "principal": {"type": "robot", "id": str(uuid.uuid4())}}, "validation_error"),
        ({"role": "viewer", "principal": {"type": "user", "id": str(uuid.uuid4())}}, "unknown_principal"),
        ({"role": "viewer", "principal": {"type": "group", "id": str(uuid.uuid4())}}, "unknown_principal"),
        ({"role": "no_such_role", "principal": "outsider"}, "unknown_role"),
        ({"role": "viewer", "principal": "outsider", "scope": {"type": "tenant"}}, "invalid_scope"),
    ],
)
def test_create_global_grant_bad_input_422_nothing_written(
    api: Api, db: Database, personas: Personas, body: dict, code: str
) -> None:
    if body["principal"] == "outsider":
        body = body | {"principal": {"type": "user", "id": uid(personas, "outsider")}}
    problem(api("superadmin").post(GRANTS, json=body), 422, code)
    assert count(db, GlobalGrant) == 0


def test_create_global_grant_twice_409_grant_exists(api: Api, db: Database, personas: Personas) -> None:
    sa = api("superadmin")
    assert sa.post(GRANTS, json=to_user(personas, "outsider", "auditor")).status_code == 201
    problem(sa.post(GRANTS, json=to_user(personas, "outsider", "auditor")), 409, "grant_exists")
    assert count(db, GlobalGrant) == 1


@pytest.mark.parametrize("persona", ["acme_admin", "acme_member", "globex_admin", "outsider"])
def test_global_grants_not_permitted_403_for_listing_and_creating(
    api: Api, db: Database, personas: Personas, persona: str
) -> None:
    problem(api(persona).get(GRANTS), 403, "permission_denied")
    r = api(persona).post(GRANTS, json=to_user(personas, persona, "tenant_admin"))
    assert r.status_code == 403, r.text
    assert r.json()["code"] in {"permission_denied", "global_grant_denied"}
    assert count(db, GlobalGrant) == 0


def test_revoke_global_grant_not_permitted_403_and_unknown_404(api: Api, personas: Personas) -> None:
    grant = api("superadmin").post(GRANTS, json=to_user(personas, "outsider", "viewer")).json()
    problem(api("acme_admin").delete(f"{GRANTS}/{grant['id']}"), 403, "permission_denied")
    problem(api("superadmin").delete(f"{GRANTS}/{uuid.uuid4()}"), 404, "not_found")
    assert len(api("superadmin").get(GRANTS).json()) == 1


# --- /tenants/{tenant}/grants ----------------------------------------------------------------------


def test_tenant_grant_to_a_member_201_and_listed(api: Api, db: Database, personas: Personas) -> None:
    admin = api("acme_admin")
    r = admin.post(ACME_GRANTS, json=to_user(personas, "acme_viewer", "auditor"))
    assert r.status_code == 201, r.text
    assert r.json()["scope"] == {"type": "tenant", "tenant_id": str(personas.acme.id), "resource_id": None}
    listed = admin.get(ACME_GRANTS, params={"principal_id": uid(personas, "acme_viewer")}).json()
    assert {g["role"] for g in listed} == {"viewer", "auditor"}
    # Takes effect: the viewer now reads the audit log.
    assert api("acme_viewer").get("/api/v1/tenants/acme/audit").status_code == 200


def test_resource_grant_201_covers_the_resource(api: Api, db: Database, personas: Personas) -> None:
    host = add_resource(db, personas.acme.id, "web-1")
    body = to_user(personas, "acme_viewer", "member", type="resource", resource_id=str(host))
    r = api("acme_admin").post(ACME_GRANTS, json=body)
    assert r.status_code == 201, r.text
    assert r.json()["scope"] == {
        "type": "resource",
        "tenant_id": str(personas.acme.id),
        "resource_id": str(host),
    }
    listed = api("acme_admin").get(ACME_GRANTS, params={"resource_id": str(host)}).json()
    assert [g["id"] for g in listed] == [r.json()["id"]]


def test_tenant_grant_to_a_non_member_422_not_a_member(api: Api, db: Database, personas: Personas) -> None:
    before = count(db, Grant, tenant_id=personas.acme.id)
    for who in ("outsider", "globex_member"):
        problem(
            api("acme_admin").post(ACME_GRANTS, json=to_user(personas, who, "viewer")), 422, "not_a_member"
        )
    assert count(db, Grant, tenant_id=personas.acme.id) == before


def test_resource_grant_on_resource_of_another_tenant_422_unknown_resource(
    api: Api, db: Database, personas: Personas
) -> None:
    before = count(db, Grant, tenant_id=personas.acme.id)
    theirs = add_resource(db, personas.globex.id, "their-host")
    for resource in (theirs, uuid.uuid4()):
        body = to_user(personas, "acme_member", "viewer", type="resource", resource_id=str(resource))
        problem(api("acme_admin").post(ACME_GRANTS, json=body), 422, "unknown_resource")
    assert count(db, Grant, tenant_id=personas.acme.id) == before


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"scope": {"type": "global"}}, "invalid_scope"),
        ({"scope": {"type": "resource"}}, "invalid_scope"),
        ({"role": "superadmin"}, "role_not_allowed_here"),
        ({"role": "no_such_role"}, "unknown_role"),
        ({"role": ""}, "validation_error"),
    ],
)
def test_create_tenant_grant_bad_input_422_nothing_written(
    api: Api, db: Database, personas: Personas, body: dict, code: str
) -> None:
    before = count(db, Grant, tenant_id=personas.acme.id)
    problem(
        api("acme_admin").post(ACME_GRANTS, json=to_user(personas, "acme_member", "viewer") | body), 422, code
    )
    assert count(db, Grant, tenant_id=personas.acme.id) == before


def test_create_tenant_grant_twice_409_grant_exists(api: Api, db: Database, personas: Personas) -> None:
    problem(
        api("acme_admin").post(ACME_GRANTS, json=to_user(personas, "acme_member", "member")),
        409,
        "grant_exists",
    )
    host = add_resource(db, personas.acme.id, "web-1")
    body = to_user(personas, "acme_member", "viewer", type="resource", resource_id=str(host))
    assert api("acme_admin").post(ACME_GRANTS, json=body).status_code == 201
    problem(api("acme_admin").post(ACME_GRANTS, json=body), 409, "grant_exists")


@pytest.mark.parametrize("persona", ["acme_member", "acme_viewer", "acme_auditor"])
def test_create_tenant_grant_not_permitted_403(
    api: Api, db: Database, personas: Personas, persona: str
) -> None:
    before = count(db, Grant, tenant_id=personas.acme.id)
    r = api(persona).post(ACME_GRANTS, json=to_user(personas, persona, "tenant_admin"))
    problem(r, 403, "permission_denied")
    assert count(db, Grant, tenant_id=personas.acme.id) == before


def test_list_tenant_grants_needs_grant_read(api: Api) -> None:
    assert api("acme_auditor").get(ACME_GRANTS).status_code == 200
    problem(api("acme_member").get(ACME_GRANTS), 403, "permission_denied")


def test_tenant_grants_of_another_tenant_404(api: Api, db: Database, personas: Personas) -> None:
    acme_grant = api("acme_admin").get(ACME_GRANTS).json()[0]["id"]
    before = count(db, Grant, tenant_id=personas.acme.id)
    g = api("globex_admin")
    problem(g.get(ACME_GRANTS), 404, "not_found")
    problem(g.post(ACME_GRANTS, json=to_user(personas, "globex_member", "viewer")), 404, "not_found")
    problem(g.delete(f"{ACME_GRANTS}/{acme_grant}"), 404, "not_found")
    # Through their own tenant's URL, acme's grant id does not exist either.
    problem(g.delete(f"/api/v1/tenants/globex/grants/{acme_grant}"), 404, "not_found")
    assert count(db, Grant, tenant_id=personas.acme.id) == before


def test_revoke_tenant_grant_204(api: Api, personas: Personas) -> None:
    admin = api("acme_admin")
    grant = admin.post(ACME_GRANTS, json=to_user(personas, "acme_viewer", "auditor")).json()
    assert admin.delete(f"{ACME_GRANTS}/{grant['id']}").status_code == 204
    roles = {
        g["role"]
        for g in admin.get(ACME_GRANTS, params={"principal_id": uid(personas, "acme_viewer")}).json()
    }
    assert roles == {"viewer"}
    problem(admin.delete(f"{ACME_GRANTS}/{grant['id']}"), 404, "not_found")


def test_revoking_the_last_tenant_admin_grant_409(api: Api, personas: Personas) -> None:
    admin = api("acme_admin")
    mine = admin.get(
        ACME_GRANTS, params={"principal_id": uid(personas, "acme_admin"), "role": "tenant_admin"}
    ).json()
    assert len(mine) == 1
    problem(admin.delete(f"{ACME_GRANTS}/{mine[0]['id']}"), 409, "last_tenant_admin")
    assert api("acme_admin").get(ACME_GRANTS).status_code == 200  # still an admin
    # With a second admin it may go.
    assert admin.post(ACME_GRANTS, json=to_user(personas, "acme_member", "tenant_admin")).status_code == 201
    assert admin.delete(f"{ACME_GRANTS}/{mine[0]['id']}").status_code == 204


def test_tenant_admin_cannot_grant_a_role_holding_more_than_they_do(
    api: Api, db: Database, personas: Personas
) -> None:
    assert (
        api("superadmin")
        .post(ROLES, json={"key": "creator", "name": "C", "permissions": ["tenant.create"]})
        .status_code
        == 201
    )
    p = problem(
        api("acme_admin").post(ACME_GRANTS, json=to_user(personas, "acme_member", "creator")),
        403,
        "escalation_denied",
    )
    assert p["permissions"] == ["tenant.create"]
    assert count(db, Grant, Grant.role_key == "creator", tenant_id=personas.acme.id) == 0


# --- /groups ------------------------------------------------------------------------------------


def test_group_crud_and_members_by_superadmin(api: Api, db: Database, personas: Personas) -> None:
    sa = api("superadmin")
    r = sa.post(GROUPS, json={"name": "ops", "description": "Operations"})
    assert r.status_code == 201, r.text
    group = r.json()
    assert (group["name"], group["description"]) == ("ops", "Operations")
    assert [g["id"] for g in sa.get(GROUPS).json()] == [group["id"]]
    assert sa.get(f"{GROUPS}/{group['id']}").json() == group
    r = sa.patch(f"{GROUPS}/{group['id']}", json={"name": "operations"})
    assert (r.status_code, r.json()["name"]) == (200, "operations")

    r = sa.post(f"{GROUPS}/{group['id']}/members", json={"user_id": uid(personas, "acme_member")})
    assert r.status_code == 201, r.text
    assert r.json() == {"user_id": uid(personas, "acme_member"), "email": personas.users["acme_member"].email}
    assert [m["user_id"] for m in sa.get(f"{GROUPS}/{group['id']}/members").json()] == [
        uid(personas, "acme_member")
    ]
    assert sa.delete(f"{GROUPS}/{group['id']}/members/{uid(personas, 'acme_member')}").status_code == 204
    assert sa.get(f"{GROUPS}/{group['id']}/members").json() == []

    assert sa.delete(f"{GROUPS}/{group['id']}").status_code == 204
    problem(sa.get(f"{GROUPS}/{group['id']}"), 404, "not_found")
    assert sa.get(GROUPS).json() == []
    assert audit_count(db, "group.create") == audit_count(db, "group.delete") == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [({"name": ""}, "validation_error"), ({"name": "   "}, "validation_error"), ({}, "validation_error")],
)
def test_create_group_bad_input_422_nothing_written(api: Api, db: Database, body: dict, code: str) -> None:
    problem(api("superadmin").post(GROUPS, json=body), 422, code)
    assert count(db, Group) == 0


def test_group_name_taken_409(api: Api, db: Database) -> None:
    sa = api("superadmin")
    assert sa.post(GROUPS, json={"name": "ops"}).status_code == 201
    problem(sa.post(GROUPS, json={"name": "ops"}), 409, "group_name_taken")
    other = sa.post(GROUPS, json={"name": "dev"}).json()
    problem(sa.patch(f"{GROUPS}/{other['id']}", json={"name": "ops"}), 409, "group_name_taken")
    assert count(db, Group) == 2


def test_group_members_bad_input(api: Api, personas: Personas) -> None:
    sa = api("superadmin")
    group = sa.post(GROUPS, json={"name": "ops"}).json()
    members = f"{GROUPS}/{group['id']}/members"
    problem(sa.post(members, json={"user_id": str(uuid.uuid4())}), 404, "not_found")
    problem(sa.post(members, json={"user_id": "nope"}), 422, "validation_error")
    assert sa.post(members, json={"user_id": uid(personas, "acme_member")}).status_code == 201
    problem(sa.post(members, json={"user_id": uid(personas, "acme_member")}), 409, "already_member")
    problem(sa.delete(f"{members}/{uid(personas, 'outsider')}"), 404, "not_found")
    problem(sa.get(f"{GROUPS}/{uuid.uuid4()}/members"), 404, "not_found")
    assert len(sa.get(members).json()) == 1


@pytest.mark.parametrize("persona", ["acme_admin", "acme_member", "globex_admin", "outsider"])
def test_groups_not_permitted_403(api: Api, db: Database, personas: Personas, persona: str) -> None:
    group = api("superadmin").post(GROUPS, json={"name": "ops"}).json()
    gid = group["id"]
    c = api(persona)
    for r in (
        c.get(GROUPS),
        c.post(GROUPS, json={"name": "mine"}),
        c.get(f"{GROUPS}/{gid}"),
        c.patch(f"{GROUPS}/{gid}", json={"name": "mine"}),
        c.delete(f"{GROUPS}/{gid}"),
        c.get(f"{GROUPS}/{gid}/members"),
        c.post(f"{GROUPS}/{gid}/members", json={"user_id": uid(personas, persona)}),
        c.delete(f"{GROUPS}/{gid}/members/{uid(personas, persona)}"),
    ):
        problem(r, 403, "permission_denied")
    assert api("superadmin").get(f"{GROUPS}/{gid}").json()["name"] == "ops"
    assert api("superadmin").get(f"{GROUPS}/{gid}/members").json() == []


# --- /authz/explain ---------------------------------------------------------------------------------


def explain(api: Api, persona: str, personas: Personas, who: str, permission: str, **extra: object):
    return api(persona).post(EXPLAIN, json={"user_id": uid(personas, who), "permission": permission, **extra})


def test_explain_allowed_lists_the_grant(api: Api, personas: Personas) -> None:
    r = explain(api, "superadmin", personas, "acme_member", "host.update", tenant="acme")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["allowed"] is True
    assert body["grants"] == [
        {
            "role": "member",
            "scope": {"type": "tenant", "tenant_id": str(personas.acme.id), "resource_id": None},
            "via_group": None,
        }
    ]


def test_explain_allowed_through_a_group_names_the_group(api: Api, personas: Personas) -> None:
    sa = api("superadmin")
    group = sa.post(GROUPS, json={"name": "auditors"}).json()
    assert (
        sa.post(f"{GROUPS}/{group['id']}/members", json={"user_id": uid(personas, "acme_member")}).status_code
        == 201
    )
    body = {"principal": {"type": "group", "id": group["id"]}, "role": "auditor"}
    assert sa.post(ACME_GRANTS, json=body).status_code == 201
    r = explain(api, "superadmin", personas, "acme_member", "audit.read", tenant="acme")
    assert r.json()["allowed"] is True
    assert [(g["role"], g["via_group"]) for g in r.json()["grants"]] == [("auditor", group["id"])]


def test_explain_resource_grant_covers_a_child(api: Api, db: Database, personas: Personas) -> None:
    host = add_resource(db, personas.acme.id, "web-1")
    service = add_resource(db, personas.acme.id, "nginx", parent=host)
    body = to_user(personas, "acme_viewer", "member", type="resource", resource_id=str(host))
    assert api("acme_admin").post(ACME_GRANTS, json=body).status_code == 201
    r = explain(
        api, "acme_admin", personas, "acme_viewer", "host.update", tenant="acme", resource=str(service)
    )
    assert r.json()["allowed"] is True
    assert r.json()["grants"][0]["scope"]["resource_id"] == str(host)
    r = explain(api, "acme_admin", personas, "acme_viewer", "host.update", tenant="acme")
    assert r.json()["allowed"] is False


def test_explain_denied_gives_reasons(api: Api, personas: Personas) -> None:
    r = explain(api, "superadmin", personas, "outsider", "host.read", tenant="acme")
    assert r.status_code == 200, r.text
    assert r.json()["allowed"] is False and r.json()["grants"] == []
    assert any("membership" in reason for reason in r.json()["reasons"])
    r = explain(api, "superadmin", personas, "acme_viewer", "host.update", tenant="acme")
    assert r.json()["allowed"] is False
    assert any("host.update" in reason for reason in r.json()["reasons"])


def test_explain_superadmin_target_is_allowed_everywhere(api: Api, personas: Personas) -> None:
    r = explain(api, "superadmin", personas, "superadmin", "tenant.delete")
    assert r.json()["allowed"] is True


def test_explain_by_tenant_admin_within_their_tenant(api: Api, personas: Personas) -> None:
    r = explain(api, "acme_admin", personas, "acme_member", "host.read", tenant="acme")
    assert (r.status_code, r.json()["allowed"]) == (200, True)
    r = explain(api, "acme_admin", personas, "acme_member", "host.read", tenant=str(personas.acme.id))
    assert (r.status_code, r.json()["allowed"]) == (200, True)


def test_explain_by_tenant_admin_for_another_tenant_404(api: Api, personas: Personas) -> None:
    problem(
        explain(api, "acme_admin", personas, "globex_member", "host.read", tenant="globex"), 404, "not_found"
    )
    problem(
        explain(api, "acme_admin", personas, "acme_member", "host.read", tenant="globex"), 404, "not_found"
    )
    # Nor about people outside acme, asked within acme.
    problem(
        explain(api, "acme_admin", personas, "globex_member", "host.read", tenant="acme"), 404, "not_found"
    )


def test_explain_at_global_scope_not_permitted_for_tenant_admin_403(api: Api, personas: Personas) -> None:
    problem(explain(api, "acme_admin", personas, "acme_member", "host.read"), 403, "permission_denied")


def test_explain_not_permitted_without_grant_read_403(api: Api, personas: Personas) -> None:
    problem(
        explain(api, "acme_member", personas, "acme_viewer", "host.read", tenant="acme"),
        403,
        "permission_denied",
    )


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"permission": "host.fly", "tenant": "acme"}, 422, "unknown_permission"),
        ({"permission": "", "tenant": "acme"}, 422, "validation_error"),
        ({"permission": "host.read", "resource": "not-a-uuid"}, 422, "validation_error"),
        ({"permission": "host.read", "tenant": "no-such-tenant"}, 404, "not_found"),
    ],
)
def test_explain_bad_input(api: Api, personas: Personas, body: dict, status: int, code: str) -> None:
    r = api("superadmin").post(EXPLAIN, json={"user_id": uid(personas, "acme_member"), **body})
    problem(r, status, code)


def test_explain_unknown_user_404(api: Api) -> None:
    r = api("superadmin").post(EXPLAIN, json={"user_id": str(uuid.uuid4()), "permission": "host.read"})
    problem(r, 404, "not_found")

"""Tenant isolation and escalation (DESIGN §2), generated from `app.routes` (STYLE point 14).

- Every route under `/api/v1/tenants/{tenant}` called by `globex_admin` with acme's slug or id
  answers exactly as for a tenant that does not exist (404; 403 where the route is
  superadmin-only), never 2xx, never a byte of acme's data, and writes nothing.
- Every mutating route there called by `acme_viewer` is refused (403; 404/422 where an object id
  is random or the input is judged first), never 2xx, and writes nothing.
- Escalation: a tenant admin cannot hand out global or superadmin power, nor make anyone a
  superadmin; a member cannot add members.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tenantry.authz import system_principal
from tenantry.db import scoping
from tenantry.db.session import Database
from tenantry.db.tables import AuditEvent, GlobalGrant, Grant, Membership, Resource, User
from tenantry.services import email_templates, roles
from tenantry.services.context import ServiceContext
from tests.personas import Personas
from tests.security.test_enforcement import Targets, api_routes, minimal_body

Api = Callable[[str | None], TestClient]
TENANT_PREFIX = "/api/v1/tenants/{tenant}"
MUTATING = {"POST", "PUT", "PATCH", "DELETE"}
# Routes whose refusal to a viewer is decided before anything else: exactly 403.
CORE_403 = {
    ("PATCH", "/api/v1/tenants/{tenant}"),
    ("DELETE", "/api/v1/tenants/{tenant}"),
    ("POST", "/api/v1/tenants/{tenant}/members"),
    ("PATCH", "/api/v1/tenants/{tenant}/members/{user_id}"),
    ("DELETE", "/api/v1/tenants/{tenant}/members/{user_id}"),
    ("POST", "/api/v1/tenants/{tenant}/roles"),
    ("PATCH", "/api/v1/tenants/{tenant}/roles/{key}"),
    ("DELETE", "/api/v1/tenants/{tenant}/roles/{key}"),
    ("POST", "/api/v1/tenants/{tenant}/grants"),
    ("DELETE", "/api/v1/tenants/{tenant}/grants/{grant_id}"),
}


@dataclass
class Acme:
    """Acme's real objects, so that a leak would have something to leak."""

    targets: Targets
    secrets: tuple[str, ...]  # strings that must never appear in an answer to an outsider


@pytest.fixture
def acme(clean_db: Database, personas: Personas) -> Acme:
    acme_id = personas.acme.id
    with clean_db.unit_of_work() as s:
        ctx = ServiceContext(session=s, principal=system_principal("tests"))
        found = s.get(type(personas.acme), acme_id)
        assert found is not None
        ctx.enter(found)
        roles.create_role(ctx, key="acme_only", name="Acme only", permissions=["host.read"])
        template = email_templates.create_template(ctx, key="invitation", language="en")
    with clean_db.unit_of_work() as s, scoping.in_tenant(s, acme_id):
        host = Resource(tenant_id=acme_id, type="host", name="acme-secret-host")
        s.add(host)
        s.flush()
        grant_id = s.scalar(select(Grant.id).where(Grant.principal_id == personas.users["acme_viewer"].id))
        host_id = host.id
    member = personas.users["acme_member"]
    params = {
        "user_id": str(member.id),
        "key": "acme_only",
        "grant_id": str(grant_id),
        "resource_id": str(host_id),
        "template_id": str(template.id),
    }
    secrets = (str(member.id), member.email, str(grant_id), str(host_id), "acme-secret-host", "Acme Corp")
    return Acme(Targets(params=params, victim_id=str(member.id)), secrets)


def tenant_endpoints(app: FastAPI) -> list[tuple[APIRoute, str]]:
    found = [
        (route, method)
        for route in api_routes(app.routes)
        if route.path == TENANT_PREFIX or route.path.startswith(TENANT_PREFIX + "/")
        for method in sorted(route.methods)
    ]
    assert len(found) > 20  # the walk really found the tenant routes
    return found


def call(client: TestClient, token: str, route: APIRoute, method: str, targets: Targets, tenant: str):
    targets.params["tenant"] = tenant
    body = minimal_body(route, targets)
    return client.request(
        method,
        targets.path(route.path, route),
        headers={"Authorization": f"Bearer {token}"},
        **({"json": body} if body is not None else {}),
    )


def writes(db: Database) -> int:
    """Every change is audited in its own transaction: the audit count moves on any write.

    Refusals of the engine leave `authz.denied` events of their own; those are not writes.
    """
    with db.sessions() as s:
        return (
            s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action != "authz.denied"))
            or 0
        )


def code_of(r) -> str | None:
    try:
        body = r.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


# --- the matrix -------------------------------------------------------------------------------------


@pytest.mark.parametrize("ref", ["slug", "id"])
def test_other_tenant_admin_gets_the_answer_for_a_tenant_that_does_not_exist(
    app: FastAPI, client: TestClient, clean_db: Database, personas: Personas, acme: Acme, ref: str
) -> None:
    acme_ref = "acme" if ref == "slug" else str(personas.acme.id)
    ghost_ref = "no-such-tenant" if ref == "slug" else str(uuid.uuid4())
    token = personas.tokens["globex_admin"]
    before = writes(clean_db)
    wrong = []
    for route, method in tenant_endpoints(app):
        r = call(client, token, route, method, acme.targets, acme_ref)
        ghost = call(client, token, route, method, acme.targets, ghost_ref)
        leaked = [s for s in acme.secrets if s in r.text]
        if (
            r.status_code not in (403, 404)
            or (r.status_code, code_of(r)) != (ghost.status_code, code_of(ghost))
            or leaked
        ):
            wrong.append((method, route.path, r.status_code, code_of(r), ghost.status_code, leaked))
    assert wrong == []
    assert writes(clean_db) == before


def test_other_tenant_admin_mostly_gets_404(
    app: FastAPI, client: TestClient, personas: Personas, acme: Acme
) -> None:
    """DESIGN §2: another tenant's object is answered 404; 403 only for superadmin-only routes."""
    token = personas.tokens["globex_admin"]
    statuses = {
        (method, route.path): call(client, token, route, method, acme.targets, "acme").status_code
        for route, method in tenant_endpoints(app)
    }
    forbidden = {k for k, v in statuses.items() if v == 403}
    assert forbidden <= {("POST", "/api/v1/tenants/{tenant}/restore")}
    assert {v for k, v in statuses.items() if k not in forbidden} == {404}


def test_viewer_cannot_change_anything_in_their_tenant(
    app: FastAPI, client: TestClient, clean_db: Database, personas: Personas, acme: Acme
) -> None:
    token = personas.tokens["acme_viewer"]
    before = writes(clean_db)
    answers = {
        (method, route.path): call(client, token, route, method, acme.targets, "acme")
        for route, method in tenant_endpoints(app)
        if method in MUTATING
    }
    assert [(k, r.status_code, r.text) for k, r in answers.items() if r.status_code < 300] == []
    assert [(k, r.status_code) for k, r in answers.items() if r.status_code not in (403, 404, 422)] == []
    assert {k: answers[k].status_code for k in CORE_403 if k in answers} == {k: 403 for k in CORE_403}
    assert writes(clean_db) == before


# --- escalation ---------------------------------------------------------------------------------------


def test_tenant_admin_cannot_grant_superadmin_in_the_tenant(
    api: Api, clean_db: Database, personas: Personas
) -> None:
    body = {"principal": {"type": "user", "id": str(personas.users["acme_member"].id)}, "role": "superadmin"}
    r = api("acme_admin").post("/api/v1/tenants/acme/grants", json=body)
    assert (r.status_code, r.json()["code"]) == (422, "role_not_allowed_here")
    r = api("acme_admin").patch(
        f"/api/v1/tenants/acme/members/{personas.users['acme_member'].id}", json={"role": "superadmin"}
    )
    assert r.status_code in (403, 422), r.text
    with clean_db.sessions() as s, scoping.cross_tenant(s):
        assert s.scalar(select(func.count()).select_from(Grant).where(Grant.role_key == "superadmin")) == 0


@pytest.mark.parametrize("role", ["superadmin", "tenant_admin", "viewer"])
def test_tenant_admin_cannot_create_a_global_grant(
    api: Api, clean_db: Database, personas: Personas, role: str
) -> None:
    for who in ("acme_admin", "acme_member"):
        body = {"principal": {"type": "user", "id": str(personas.users[who].id)}, "role": role}
        r = api("acme_admin").post("/api/v1/grants", json=body)
        assert r.status_code == 403, r.text
    with clean_db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(GlobalGrant)) == 0
    # Nor through the tenant URL with a global scope.
    body = {
        "principal": {"type": "user", "id": str(personas.users["acme_admin"].id)},
        "role": role,
        "scope": {"type": "global"},
    }
    assert api("acme_admin").post("/api/v1/tenants/acme/grants", json=body).status_code == 422


def test_tenant_admin_cannot_grant_a_role_with_global_powers(api: Api, personas: Personas) -> None:
    r = api("superadmin").post(
        "/api/v1/roles",
        json={"key": "creator", "name": "Creator", "permissions": ["tenant.create", "host.read"]},
    )
    assert r.status_code == 201, r.text
    member = str(personas.users["acme_member"].id)
    r = api("acme_admin").post(
        "/api/v1/tenants/acme/grants", json={"principal": {"type": "user", "id": member}, "role": "creator"}
    )
    assert (r.status_code, r.json()["code"]) == (403, "escalation_denied")
    r = api("acme_admin").patch(f"/api/v1/tenants/acme/members/{member}", json={"role": "creator"})
    assert (r.status_code, r.json()["code"]) == (403, "escalation_denied")
    assert (
        api("acme_member").post("/api/v1/tenants", json={"slug": "mine", "name": "Mine"}).status_code == 403
    )


@pytest.mark.parametrize("who", ["acme_admin", "acme_member"])
def test_tenant_admin_cannot_make_anyone_superadmin(
    api: Api, clean_db: Database, personas: Personas, who: str
) -> None:
    target = personas.users[who].id
    r = api("acme_admin").patch(f"/api/v1/users/{target}", json={"is_superadmin": True})
    assert r.status_code == 403, r.text
    r = api("acme_admin").patch("/api/v1/me", json={"is_superadmin": True})
    assert r.status_code == 422, r.text
    assert api("acme_admin").get("/api/v1/me").json()["is_superadmin"] is False
    with clean_db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(User).where(User.is_superadmin.is_(True))) == 1


def test_tenant_admin_cannot_reach_superadmin_only_routes(api: Api, personas: Personas) -> None:
    admin = api("acme_admin")
    for method, path in [
        ("GET", "/api/v1/users"),
        ("GET", "/api/v1/grants"),
        ("GET", "/api/v1/groups"),
        ("GET", "/api/v1/roles"),
        ("DELETE", "/api/v1/tenants/acme"),
        ("POST", "/api/v1/tenants/acme/restore"),
    ]:
        r = admin.request(method, path)
        assert r.status_code == 403, (method, path, r.text)


def test_member_cannot_add_members(api: Api, clean_db: Database, personas: Personas) -> None:
    with clean_db.sessions() as s:
        scoping.enter_tenant(s, personas.acme.id)
        before = s.scalar(select(func.count()).select_from(Membership))
    for body in (
        {"user_id": str(personas.users["outsider"].id), "role": "member"},
        {"user_id": str(personas.users["globex_member"].id), "role": "viewer"},
        {"email": "friend@example.com", "role": "member"},
    ):
        r = api("acme_member").post("/api/v1/tenants/acme/members", json=body)
        assert (r.status_code, r.json()["code"]) == (403, "permission_denied")
    with clean_db.sessions() as s:
        scoping.enter_tenant(s, personas.acme.id)
        assert s.scalar(select(func.count()).select_from(Membership)) == before
        assert s.scalar(select(func.count()).select_from(User).where(User.email == "friend@example.com")) == 0


def test_member_cannot_raise_their_own_role(api: Api, personas: Personas) -> None:
    me = personas.users["acme_member"].id
    r = api("acme_member").patch(f"/api/v1/tenants/acme/members/{me}", json={"role": "tenant_admin"})
    assert r.status_code == 403
    body = {"principal": {"type": "user", "id": str(me)}, "role": "tenant_admin"}
    assert api("acme_member").post("/api/v1/tenants/acme/grants", json=body).status_code == 403
    assert (
        api("acme_member")
        .post("/api/v1/tenants/acme/roles", json={"key": "x1", "name": "x", "permissions": []})
        .status_code
        == 403
    )


def test_read_only_key_of_tenant_admin_cannot_change_anything(api: Api, personas: Personas) -> None:
    r = api("acme_admin").post("/api/v1/me/api-keys", json={"name": "ro", "scope": "read"})
    assert r.status_code == 201, r.text
    key = {"Authorization": f"Bearer {r.json()['token']}"}
    client = api(None)
    assert client.get("/api/v1/tenants/acme/grants", headers=key).status_code == 200
    body = {"principal": {"type": "user", "id": str(personas.users["acme_member"].id)}, "role": "auditor"}
    assert client.post("/api/v1/tenants/acme/grants", json=body, headers=key).status_code == 403
    assert (
        client.post(
            "/api/v1/tenants/acme/roles", json={"key": "k1", "name": "k", "permissions": []}, headers=key
        ).status_code
        == 403
    )


def test_key_restricted_to_acme_sees_nothing_of_globex(api: Api, personas: Personas) -> None:
    """Even a superadmin's key, when bound to one tenant, acts nowhere else."""
    r = api("superadmin").post(
        "/api/v1/me/api-keys",
        json={"name": "acme-only", "scope": "read_write", "tenant_id": str(personas.acme.id)},
    )
    assert r.status_code == 201, r.text
    key = {"Authorization": f"Bearer {r.json()['token']}"}
    client = api(None)
    assert client.get("/api/v1/tenants/acme/grants", headers=key).status_code == 200
    assert client.get("/api/v1/tenants/globex/grants", headers=key).status_code == 404
    assert client.get("/api/v1/tenants/globex", headers=key).status_code == 404


def test_tenant_role_of_acme_cannot_be_granted_in_globex(api: Api, personas: Personas, acme: Acme) -> None:
    body = {"principal": {"type": "user", "id": str(personas.users["globex_member"].id)}, "role": "acme_only"}
    r = api("globex_admin").post("/api/v1/tenants/globex/grants", json=body)
    assert (r.status_code, r.json()["code"]) == (422, "unknown_role")

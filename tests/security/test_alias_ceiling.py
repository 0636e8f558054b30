"""The alias ceiling on every check (issue 10 item 3): alias role ∩ the parent's permissions now.

Each test changes something on the parent's side (a grant, its activity) or the alias's (its
role, its assignments) and asserts the alias's very next request sees it: the engine's cache is
voided by the authorization version, not by time.
"""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from tenantry.authz import system_principal
from tenantry.db import scoping
from tenantry.db.session import Database
from tenantry.db.tables import Resource, Tenant
from tenantry.services import resource_types
from tenantry.services.context import ServiceContext
from tests.personas import PASSWORD, login_token
from tests.settings_helpers import require_2fa

ALIASES = "/api/v1/me/aliases"
ROLES = "/api/v1/me/alias-roles"
HOSTS = "/api/v1/tenants/acme/resources"


def _code(r, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.json()["code"] == code, r.json()


def _host(db: Database, tenant_id: uuid.UUID, name: str) -> str:
    with db.unit_of_work() as s, scoping.in_tenant(s, tenant_id):
        host = Resource(tenant_id=tenant_id, type="host", name=name)
        s.add(host)
        s.flush()
        return str(host.id)


class Alias:
    """An alias of `parent`, signed in with its own session."""

    def __init__(self, api, db, client, parent: str, perms: list[str], **extra) -> None:
        r = api(parent).post(ROLES, json={"name": "ops", "permissions": perms, **extra})
        assert r.status_code == 201, r.text
        self.role_id = r.json()["id"]
        body = {"email": "alias@example.com", "password": PASSWORD, "role_id": self.role_id}
        r = api(parent).post(ALIASES, json={**body, **extra.get("alias", {})})
        assert r.status_code == 201, r.text
        self.id = r.json()["id"]
        self.parent = parent
        self.client = client
        self.headers = {"Authorization": f"Bearer {login_token(db, 'alias@example.com')}"}

    def get(self, path: str, **kw):
        return self.client.get(path, headers=self.headers, **kw)

    def post(self, path: str, json: dict):
        return self.client.post(path, json=json, headers=self.headers)

    def patch(self, path: str, json: dict):
        return self.client.patch(path, json=json, headers=self.headers)


def _hosts(who) -> set[str]:
    r = who.get(HOSTS, params={"type": "host"})
    assert r.status_code == 200, r.text
    return {h["name"] for h in r.json()["items"]}


def _member_grant(api, personas, persona: str = "acme_member") -> str:
    uid = str(personas.users[persona].id)
    grants = api("acme_admin").get("/api/v1/tenants/acme/grants").json()
    return next(g["id"] for g in grants if g["principal"]["id"] == uid and g["role"] == "member")


@pytest.fixture
def hosts(db, personas) -> dict[str, str]:
    with db.unit_of_work() as session:
        ctx = ServiceContext(session=session, principal=system_principal("tests"))
        resource_types.ensure_builtin_types(ctx)
    return {n: _host(db, personas.acme.id, n) for n in ("web-1", "web-2")}


def test_alias_acts_within_its_role_and_its_parents_tenants(api, db, client, personas, hosts):
    alias = Alias(api, db, client, "acme_member", ["host.read", "tenant.read"])
    assert _hosts(alias) == {"web-1", "web-2"}
    assert alias.get("/api/v1/me").json()["email"] == "alias@example.com"
    # Its role names no update: refused though the parent may.
    _code(alias.patch(f"{HOSTS}/{hosts['web-1']}", {"name": "x"}), 403, "permission_denied")
    # The parent's tenants only: globex is as invisible to it as to its parent.
    r = alias.get("/api/v1/tenants")
    assert r.status_code == 200, r.text
    assert [t["slug"] for t in r.json()["items"]] == ["acme"]
    theirs = alias.get("/api/v1/tenants/globex/resources", params={"type": "host"})
    assert theirs.status_code == 404, theirs.text


def test_parents_grant_revoked_alias_denied_on_the_next_request(api, db, client, personas, hosts):
    alias = Alias(api, db, client, "acme_member", ["host.read"])
    assert _hosts(alias) == {"web-1", "web-2"}  # warms the cache
    assert alias.get(f"{HOSTS}/{hosts['web-1']}").status_code == 200
    r = api("acme_admin").delete(f"/api/v1/tenants/acme/grants/{_member_grant(api, personas)}")
    assert r.status_code == 204, r.text
    assert _hosts(alias) == set()
    assert alias.get(f"{HOSTS}/{hosts['web-1']}").status_code == 404


def test_alias_role_holding_a_permission_the_parent_lost_is_still_denied(api, db, client, personas, hosts):
    alias = Alias(api, db, client, "acme_member", ["host.read", "host.update"])
    assert alias.patch(f"{HOSTS}/{hosts['web-1']}", {"name": "web-1a"}).status_code == 200
    # The parent goes from member to viewer: it reads, no longer updates.
    uid = str(personas.users["acme_member"].id)
    viewer = {"principal": {"type": "user", "id": uid}, "role": "viewer"}
    assert api("acme_admin").post("/api/v1/tenants/acme/grants", json=viewer).status_code == 201
    api("acme_admin").delete(f"/api/v1/tenants/acme/grants/{_member_grant(api, personas)}")
    _code(alias.patch(f"{HOSTS}/{hosts['web-1']}", {"name": "web-1b"}), 403, "permission_denied")
    assert _hosts(alias) == {"web-1a", "web-2"}


def test_changing_the_alias_role_or_assignments_acts_on_the_next_request(api, db, client, hosts):
    alias = Alias(api, db, client, "acme_member", ["host.read"])
    assert _hosts(alias) == {"web-1", "web-2"}
    r = api("acme_member").patch(f"{ALIASES}/{alias.id}", json={"resource_ids": [hosts["web-2"]]})
    assert r.status_code == 200, r.text
    assert _hosts(alias) == {"web-2"}
    assert alias.get(f"{HOSTS}/{hosts['web-1']}").status_code == 404
    assert alias.get(f"{HOSTS}/{hosts['web-2']}").status_code == 200
    r = api("acme_member").patch(f"{ROLES}/{alias.role_id}", json={"permissions": ["tenant.read"]})
    assert r.status_code == 200, r.text
    assert _hosts(alias) == set()


def test_assigned_alias_creates_nothing_tenant_wide(api, db, client, hosts):
    alias = Alias(api, db, client, "acme_member", ["host.read", "host.create", "host.update"])
    api("acme_member").patch(f"{ALIASES}/{alias.id}", json={"resource_ids": [hosts["web-1"]]})
    _code(
        alias.post(HOSTS, {"type": "host", "name": "new", "attributes": {"ip_address": "10.0.0.9"}}),
        403,
        "permission_denied",
    )
    assert alias.patch(f"{HOSTS}/{hosts['web-1']}", {"name": "web-1a"}).status_code == 200


def test_alias_never_creates_aliases(api, db, client):
    alias = Alias(api, db, client, "acme_member", ["host.read"])
    _code(alias.get(ALIASES), 403, "permission_denied")
    body = {"email": "second@example.com", "password": PASSWORD, "role_id": alias.role_id}
    _code(alias.post(ALIASES, body), 403, "permission_denied")
    _code(alias.post(ROLES, {"name": "x", "permissions": ["host.read"]}), 403, "permission_denied")


def test_alias_cannot_grant_itself_or_others_beyond_the_ceiling(api, db, client, personas):
    alias = Alias(api, db, client, "acme_admin", ["grant.manage", "grant.read", "host.read", "tenant.read"])
    me = {"principal": {"type": "user", "id": alias.id}, "role": "viewer"}
    _code(alias.post("/api/v1/tenants/acme/grants", me), 422, "alias_not_grantable")
    # Granting someone a role beyond what the alias holds (its role ∩ its parent's): refused.
    other = {
        "principal": {"type": "user", "id": str(personas.users["acme_viewer"].id)},
        "role": "tenant_admin",
    }
    _code(alias.post("/api/v1/tenants/acme/grants", other), 403, "escalation_denied")
    # Nor may the parent grant its alias anything.
    _code(api("acme_admin").post("/api/v1/tenants/acme/grants", json=me), 422, "alias_not_grantable")


def test_alias_mints_read_write_keys_only_under_a_writing_ceiling(api, db, client, personas, hosts):
    alias = Alias(api, db, client, "acme_member", ["host.read", "tenant.read"])
    rw = {"name": "ci", "scope": "read_write"}
    _code(alias.post("/api/v1/me/api-keys", rw), 403, "escalation_denied")
    r = alias.post("/api/v1/me/api-keys", {"name": "ci", "scope": "read"})
    assert r.status_code == 201, r.text
    key = {"Authorization": f"Bearer {r.json()['token']}"}
    # The key acts as the alias: capped the same way.
    listed = client.get(HOSTS, params={"type": "host"}, headers=key)
    assert {h["name"] for h in listed.json()["items"]} == {"web-1", "web-2"}
    api("acme_member").patch(f"{ROLES}/{alias.role_id}", json={"permissions": ["host.read", "host.update"]})
    r = alias.post("/api/v1/me/api-keys", rw)
    assert r.status_code == 201, r.text
    key = {"Authorization": f"Bearer {r.json()['token']}"}
    assert client.patch(f"{HOSTS}/{hosts['web-1']}", json={"name": "k"}, headers=key).status_code == 200
    r = client.post(
        HOSTS, json={"type": "host", "name": "new", "attributes": {"ip_address": "10.0.0.9"}}, headers=key
    )
    _code(r, 403, "permission_denied")


def test_parent_deactivated_alias_401_session_and_key(api, db, client, personas):
    alias = Alias(api, db, client, "acme_member", ["host.read"])
    r = alias.post("/api/v1/me/api-keys", {"name": "ci", "scope": "read"})
    key = {"Authorization": f"Bearer {r.json()['token']}"}
    assert client.get("/api/v1/me", headers=key).status_code == 200
    parent = personas.users["acme_member"].id
    r = api("superadmin").patch(f"/api/v1/users/{parent}", json={"active": False})
    assert r.status_code == 200, r.text
    assert alias.get("/api/v1/me").status_code == 401
    assert client.get("/api/v1/me", headers=key).status_code == 401
    login = client.post("/api/v1/auth/login", json={"email": "alias@example.com", "password": PASSWORD})
    _code(login, 401, "invalid_credentials")
    api("superadmin").patch(f"/api/v1/users/{parent}", json={"active": True})
    assert alias.get("/api/v1/me").status_code == 200  # the alias's own session was never revoked


def test_explain_shows_both_halves_for_an_alias(api, db, client, personas):
    alias = Alias(api, db, client, "acme_member", ["host.read", "host.update"])
    body = {"user_id": alias.id, "permission": "host.update", "tenant": "acme"}
    r = api("acme_admin").post("/api/v1/authz/explain", json=body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["allowed"] is True
    assert out["alias"]["role_allows"] is True and out["alias"]["parent_holds"] is True
    assert [g["role"] for g in out["alias"]["parent_grants"]] == ["member"]
    r = api("acme_admin").post("/api/v1/authz/explain", json={**body, "permission": "member.manage"})
    out = r.json()
    assert out["allowed"] is False
    assert out["alias"] == {
        "parent_id": str(personas.users["acme_member"].id),
        "role_allows": False,
        "parent_holds": False,
        "parent_grants": [],
        "restricted_to_resources": False,
    }
    assert "the alias role does not include member.manage" in out["reasons"]


def test_alias_owes_2fa_where_its_parents_tenant_requires_it(api, db, client):
    Alias(api, db, client, "acme_member", ["host.read"])
    with db.unit_of_work() as session:
        tenant = session.scalar(select(Tenant).where(Tenant.slug == "acme"))
        assert tenant is not None
        tenant_id = tenant.id
    require_2fa(db, tenant_id)
    r = client.post("/api/v1/auth/login", json={"email": "alias@example.com", "password": PASSWORD})
    assert r.status_code == 200, r.text
    assert r.json()["requires_2fa_setup"] is True
    blocked = client.get(HOSTS, headers={"Authorization": f"Bearer {r.json()['token']}"})
    _code(blocked, 403, "2fa_setup_required")

"""The enforcement guard (STYLE point 7, Keystone's "API is unenforced" after-request assert).

Every APIRoute of the app is called as `acme_member` and as `superadmin`, with path parameters
filled by plausible ids and a minimal valid body built from the route's request model. The
request middleware records in `app.state.unenforced` every authenticated request that finished
without an authorization decision; at the end that list must be empty. Public routes (health,
metrics, docs, sign-in, password reset, invitations) are called without a token, so they are
out of the guard's reach by construction — and must not need one.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import select

from tenantry.api import app as app_module
from tenantry.api.deps import CtxDep
from tenantry.authz import Principal, system_principal
from tenantry.db import scoping
from tenantry.db.session import Database
from tenantry.db.tables import Grant, Resource
from tenantry.services import alias_roles, aliases, groups, memberships, roles, users
from tenantry.services.context import ServiceContext
from tests.personas import PASSWORD, Personas, login_token

PUBLIC_PREFIXES = (
    "/healthz",
    "/livez",
    "/readyz",
    "/metrics",
    "/api/v1/openapi.json",
    "/api/docs",
    "/docs/",
    "/api/v1/auth/login",
    "/api/v1/auth/session",
    "/api/v1/auth/password/",
    "/api/v1/auth/invitations/",
    # The console's sign-in pages.
    "/login",
    "/forgot-password",
    "/reset-password",
    "/invitations/accept",
)
# These end the very session they are called with: each gets a fresh one.
SESSION_ENDERS = {("POST", "/api/v1/auth/logout"), ("DELETE", "/api/v1/me/sessions"), ("POST", "/logout")}
# The framework refused the request before the handler ran (bad body or query): not a route
# that forgot to ask, so not what this guard looks for.
FRAMEWORK_REFUSALS = {"validation_error", "malformed_json"}
PERSONAS = ("acme_member", "superadmin")


def api_routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, also inside the routers FastAPI 0.165 wraps (`original_router`)."""
    for route in routes:
        if getattr(route, "original_router", None) is not None:
            yield from api_routes(route.original_router.routes)
        elif isinstance(route, APIRoute):
            yield route


def is_public(path: str) -> bool:
    return path.startswith(PUBLIC_PREFIXES)


# --- plausible input ---------------------------------------------------------------------------


@dataclass
class Targets:
    """Real objects for path parameters; anything else gets a random id."""

    params: dict[str, str]
    victim_id: str

    def path(self, template: str, route: APIRoute) -> str:
        return template.format(
            **{name: self.params.get(name, str(uuid.uuid4())) for name in route.param_convertors}
        )

    def field(self, name: str) -> Any:
        tag = uuid.uuid4().hex[:8]
        return {
            "email": f"probe-{tag}@example.com",
            "slug": f"probe-{tag}",
            "key": f"probe_{tag}",
            "name": f"Probe {tag}",
            "permissions": [],
            "role": "viewer",
            "user_id": self.victim_id,
            "permission": "host.read",
            "password": PASSWORD,
            "new_password": f"{PASSWORD}-{tag}",
            "current_password": "not-the-current-password",
            "code": "000000",
            "principal": {"type": "user", "id": self.victim_id},
        }.get(name)


def _resolve(prop: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in prop:
        return defs[prop["$ref"].rsplit("/", 1)[-1]]
    for choice in prop.get("anyOf", []):
        if choice.get("type") != "null":
            return _resolve(choice, defs)
    return prop


def _sample(name: str, prop: dict[str, Any], defs: dict[str, Any], targets: Targets) -> Any:
    known = targets.field(name)
    if known is not None:
        return known
    prop = _resolve(prop, defs)
    if "enum" in prop:
        return prop["enum"][0]
    kind = prop.get("type")
    if kind == "object" or "properties" in prop:
        return {
            k: _sample(k, p, defs, targets)
            for k, p in prop.get("properties", {}).items()
            if k in prop.get("required", [])
        }
    if kind == "string":
        return str(uuid.uuid4()) if prop.get("format") == "uuid" else "probe"
    if kind in ("integer", "number"):
        return max(1, prop.get("minimum", 1))
    return {"boolean": False, "array": []}.get(kind or "", "probe")


# Models whose rules span fields (exactly one of …, at least one of …).
BODIES: dict[str, dict[str, Any]] = {
    "MemberCreate": {"email": "probe-member@example.com", "role": "viewer"},
    "MemberUpdate": {"role": "viewer"},
}


def minimal_body(route: APIRoute, targets: Targets) -> dict[str, Any] | None:
    """The required fields of the route's request model, with plausible values ({} otherwise)."""
    if route.body_field is None:
        return None
    model = route.body_field.field_info.annotation
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return {}
    if model.__name__ in BODIES:
        return dict(BODIES[model.__name__])
    schema = model.model_json_schema()
    body = _sample("", schema, schema.get("$defs", {}), targets)
    return body if isinstance(body, dict) else {}


# --- the sweep ---------------------------------------------------------------------------------------


@dataclass
class Call:
    persona: str | None
    method: str
    path: str  # the route template
    status: int
    code: str | None
    decisions: list[str] = field(default_factory=list)

    @property
    def refused_by_framework(self) -> bool:
        return self.status == 422 and self.code in FRAMEWORK_REFUSALS


@pytest.fixture
def targets(clean_db: Database, personas: Personas) -> Targets:
    with clean_db.unit_of_work() as s:
        ctx = ServiceContext(session=s, principal=system_principal("tests"))
        victim = users.create_user(ctx, email="victim@example.com", password=PASSWORD)
        memberships.add_member(ctx, personas.acme, user=victim, role="viewer")
        group = groups.create_group(ctx, name="probes")
        roles.create_role(ctx, key="probe_role", name="Probe role", permissions=["host.read"])
    with clean_db.unit_of_work() as s, scoping.in_tenant(s, personas.acme.id):
        grant_id = s.scalar(select(Grant.id).where(Grant.principal_id == victim.id))
        resource = Resource(tenant_id=personas.acme.id, type="host", name="probe-host")
        s.add(resource)
        s.flush()
        resource_id = resource.id
    with clean_db.unit_of_work() as s:
        # An alias of the superadmin (the persona that sweeps the lists), for /me/aliases/{alias_id}.
        parent = Principal(
            kind="user", user_id=personas.users["superadmin"].id, is_superadmin=True, session_id=uuid.uuid4()
        )
        ctx = ServiceContext(session=s, principal=parent)
        role = alias_roles.create_alias_role(ctx, name="probe", permissions=["host.read"])
        alias = aliases.create_alias(
            ctx, email="probe-alias@example.com", role_id=role.role.id, password=PASSWORD
        )
    params = {
        "alias_id": str(alias.alias.id),
        "tenant": "acme",
        "tenant_id": str(personas.acme.id),
        "user_id": str(victim.id),
        "id": str(victim.id),
        "key": "probe_role",
        "grant_id": str(grant_id),
        "group_id": str(group.id),
        "resource_id": str(resource_id),
        "session_id": str(uuid.uuid4()),
        "key_id": str(uuid.uuid4()),
    }
    return Targets(params=params, victim_id=str(victim.id))


def _order(item: tuple[APIRoute, str]) -> tuple[bool, bool, str, str]:
    route, method = item
    # Destructive calls last, and deleting the tenant itself at the very end.
    return (
        route.path == "/api/v1/tenants/{tenant}" and method == "DELETE",
        method == "DELETE",
        route.path,
        method,
    )


def sweep(
    app: FastAPI,
    client: TestClient,
    db: Database,
    personas: Personas,
    targets: Targets,
    monkeypatch: pytest.MonkeyPatch,
) -> list[Call]:
    logs: list[list[str]] = []
    original = app_module.start_decision_log

    def spying_log() -> list[str]:
        log = original()
        logs.append(log)
        return log

    monkeypatch.setattr(app_module, "start_decision_log", spying_log)
    endpoints = sorted(
        ((route, method) for route in api_routes(app.routes) for method in route.methods), key=_order
    )
    calls: list[Call] = []
    tokens = dict(personas.tokens)
    for persona in (None, *PERSONAS):
        for route, method in endpoints:
            if (persona is None) != is_public(route.path):
                continue
            headers = {}
            ends_session = (method, route.path) in SESSION_ENDERS
            if persona is not None:
                token = login_token(db, personas.users[persona].email) if ends_session else tokens[persona]
                headers["Authorization"] = f"Bearer {token}"
            body = minimal_body(route, targets)
            client.cookies.clear()
            before = len(app.state.unenforced)
            r = client.request(
                method,
                targets.path(route.path, route),
                headers=headers,
                **({"json": body} if body is not None else {}),
            )
            payload = r.json() if r.headers.get("content-type", "").endswith("json") and r.content else None
            call = Call(
                persona,
                method,
                route.path,
                r.status_code,
                payload.get("code") if isinstance(payload, dict) else None,
                list(logs[-1]) if logs else [],
            )
            if call.refused_by_framework:
                del app.state.unenforced[before:]  # the handler never ran
            if persona is not None and ends_session:
                tokens[persona] = login_token(db, personas.users[persona].email)  # it may end them all
            calls.append(call)
    return calls


# --- the tests --------------------------------------------------------------------------------------


def test_every_authenticated_route_asks_the_engine(
    app: FastAPI,
    client: TestClient,
    clean_db: Database,
    personas: Personas,
    targets: Targets,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = sweep(app, client, clean_db, personas, targets, monkeypatch)
    authenticated = [c for c in calls if c.persona is not None]
    assert len({(c.method, c.path) for c in authenticated}) > 40  # the walk really found the routes
    # Every call really reached its route as the persona (else the guard would pass vacuously) ...
    assert [c for c in authenticated if c.status == 401] == []
    # ... and the guard can judge it (it ignores 5xx).
    assert [c for c in calls if c.status >= 500] == []
    assert app.state.unenforced == [], f"answered without asking the engine: {app.state.unenforced}"


def test_public_routes_answer_without_a_token(
    app: FastAPI,
    client: TestClient,
    clean_db: Database,
    personas: Personas,
    targets: Targets,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    public = [c for c in sweep(app, client, clean_db, personas, targets, monkeypatch) if c.persona is None]
    assert {c.path for c in public} >= {"/healthz", "/api/v1/auth/login", "/api/v1/auth/password/forgot"}
    # Wrong credentials may well be 401; "a bearer token is required" must never be.
    assert [c for c in public if c.code in ("unauthenticated", "permission_denied")] == []


def test_every_tenant_route_decides_more_than_the_tenant_lookup(
    app: FastAPI,
    client: TestClient,
    clean_db: Database,
    personas: Personas,
    targets: Targets,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Resolving `{tenant}` is itself a decision ("tenant.visible"); a handler behind it must still
    ask for the permission of what it does."""
    calls = sweep(app, client, clean_db, personas, targets, monkeypatch)
    lazy = [
        (c.persona, c.method, c.path, c.status)
        for c in calls
        if c.path.startswith("/api/v1/tenants/{tenant}/")
        and c.persona is not None
        and not c.refused_by_framework
        and not set(c.decisions) - {"tenant.visible"}
    ]
    assert lazy == [], f"asked nothing beyond the tenant lookup: {lazy}"


def test_guard_notices_a_route_that_never_asks(app: FastAPI, client: TestClient, personas: Personas) -> None:
    """The guard itself works: a route answering without a decision is recorded."""

    @app.get("/api/v1/_probe_unenforced")
    def unenforced_probe() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/api/v1/_probe_authenticated")
    def authenticated_probe(ctx: CtxDep) -> dict[str, bool]:
        return {"ok": True}

    token = personas.tokens["acme_member"]
    assert (
        client.get("/api/v1/_probe_unenforced", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    assert app.state.unenforced == []  # no principal, nothing to enforce
    assert (
        client.get("/api/v1/_probe_authenticated", headers={"Authorization": f"Bearer {token}"}).status_code
        == 200
    )
    assert app.state.unenforced == [("GET", "/api/v1/_probe_authenticated")]

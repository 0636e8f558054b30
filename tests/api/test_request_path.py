"""The request path's shape: one thread-pool hop per request, and no route outside that shape.

The dependencies only record what to do; the route's single hop does it (`api/routing.py`).
A route that took `CtxDep` without the API route class would never authenticate its caller:
it would fail closed, but silently — so every such route is checked here.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio.to_thread
import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from tenantry.api import deps
from tenantry.api.deps import CtxDep
from tenantry.api.routing import ApiRoute

ACME = "/api/v1/tenants/acme"


def _calls(dependant: Dependant) -> Iterator[object]:
    stack = [dependant]
    while stack:
        current = stack.pop()
        yield current.call
        stack.extend(current.dependencies)


def test_every_route_with_a_session_or_caller_is_an_api_route(app):
    needing = {deps.get_session, deps.authenticated_context, deps.tenant_context, deps.anonymous_context}
    offenders = [
        route.path
        for route in app.routes
        if isinstance(route, APIRoute)
        and not isinstance(route, ApiRoute)
        and needing & set(_calls(route.dependant))
    ]
    assert offenders == []


@pytest.fixture
def hops(monkeypatch) -> list[str]:
    """Every function the request handed to the thread pool."""
    seen: list[str] = []
    real = anyio.to_thread.run_sync

    async def counting(func, *args, **kwargs):  # noqa: ANN001, ANN202
        seen.append(getattr(func, "__qualname__", repr(func)))
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    return seen


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("GET", "/api/v1/me", None, 200),
        ("GET", ACME, None, 200),
        ("GET", f"{ACME}/members?limit=100", None, 200),
        ("POST", f"{ACME}/roles", {"key": "ops", "name": "Ops", "permissions": ["host.read"]}, 201),
        ("GET", "/api/v1/tenants/nowhere", None, 404),
        ("POST", f"{ACME}/roles", {"key": 7}, 422),
    ],
)
def test_a_request_costs_one_thread_pool_hop(api, hops, method, path, body, status):
    client = api("acme_admin")
    client.get("/api/v1/me")  # the test client's own start-up hops are not the request's
    hops.clear()
    r = client.request(method, path, json=body)
    assert r.status_code == status, r.text
    assert len(hops) == 1, hops


def test_bad_input_from_an_unauthenticated_caller_is_401_not_422(client):
    r = client.post(f"{ACME}/roles", json={"key": 7}, headers={"Authorization": "Bearer tnt_ses_forged"})
    assert r.status_code == 401, r.text
    assert r.json()["code"] == "invalid_token"


def test_bad_input_in_a_hidden_tenant_is_404_not_422(api):
    r = api("globex_admin").post(f"{ACME}/roles", json={"key": 7})
    assert r.status_code == 404, r.text


def test_a_plain_route_with_a_caller_still_authenticates_before_its_endpoint(app, client, personas):
    """Outside the API route class the work cannot wait for the endpoint's hop: it runs first."""

    @app.get("/api/v1/_plain_whoami")
    def whoami(ctx: CtxDep) -> dict[str, str]:
        return {"user": str(ctx.principal.user_id)}

    assert client.get("/api/v1/_plain_whoami").status_code == 401
    forged = client.get("/api/v1/_plain_whoami", headers={"Authorization": "Bearer tnt_ses_forged"})
    assert forged.status_code == 401
    r = client.get(
        "/api/v1/_plain_whoami", headers={"Authorization": f"Bearer {personas.tokens['acme_admin']}"}
    )
    assert r.json() == {"user": str(personas.users["acme_admin"].id)}

"""Application-wide behaviour: body limit, problem+json errors, request ids, health, metrics, docs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tenantry.api.app import create_app
from tenantry.config import load_settings
from tenantry.db.session import Database
from tenantry.services import throttle

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


@pytest.fixture(autouse=True)
def _fresh_address_limiter() -> Iterator[None]:
    """The per-address login failure counter is process-wide; this file's failed logins start at 0."""
    throttle.set_limiter(None)
    yield
    throttle.set_limiter(None)


def _assert_problem(r, status: int, code: str | None = None) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers["content-type"]
    body = r.json()
    assert set(body) >= PROBLEM_KEYS
    assert body["status"] == status
    assert isinstance(body["code"], str) and body["code"]
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str)
    if code is not None:
        assert body["code"] == code
    return body


@pytest.fixture
def small_client(backend, clean_db, personas) -> Iterator[TestClient]:
    app = create_app(load_settings(database_url=backend.app_url, max_body_bytes=2048), db=clean_db)
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {personas.tokens['superadmin']}"
        yield c


# --- request body limit --------------------------------------------------------------------


def test_post_body_over_limit_413_and_nothing_written(small_client):
    r = small_client.post("/api/v1/tenants", json={"slug": "big", "name": "Big", "description": "x" * 4000})
    assert r.status_code == 413
    slugs = [t["slug"] for t in small_client.get("/api/v1/tenants").json()["items"]]
    assert slugs == ["acme", "globex"]


def test_post_body_under_limit_accepted(small_client):
    r = small_client.post(
        "/api/v1/tenants", json={"slug": "small", "name": "Small", "description": "x" * 1500}
    )
    assert r.status_code == 201


def test_post_chunked_body_over_limit_413(small_client):
    def chunks() -> Iterator[bytes]:
        yield b'{"slug": "big", "name": "Big", "description": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}'

    r = small_client.post("/api/v1/tenants", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413


def test_post_body_over_limit_413_is_problem_json(small_client):
    r = small_client.post("/api/v1/tenants", json={"slug": "big", "name": "Big", "description": "x" * 4000})
    _assert_problem(r, 413, "payload_too_large")


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/v1/tenants"), ("PATCH", "/api/v1/tenants/acme"), ("POST", "/api/v1/auth/login")],
)
@pytest.mark.parametrize("raw", [b"{", b'{"name": "x",}', b"not json", b'{"name": "\xff"}'])
def test_request_malformed_json_422_malformed_json(api, method, path, raw):
    r = api("superadmin").request(method, path, content=raw, headers={"content-type": "application/json"})
    _assert_problem(r, 422, "malformed_json")


@pytest.mark.parametrize(
    ("method", "path", "body", "fields"),
    [
        ("POST", "/api/v1/tenants", {"slug": 12, "name": "X"}, {"slug"}),
        ("POST", "/api/v1/tenants", {"slug": "ok", "name": ["X"]}, {"name"}),
        (
            "POST",
            "/api/v1/tenants",
            {"slug": "ok", "name": "X", "branding": {"color": 5}},
            {"branding.color"},
        ),
        ("POST", "/api/v1/tenants", {"slug": "ok", "name": "X", "branding": "blue"}, {"branding"}),
        ("PATCH", "/api/v1/tenants/acme", {"description": {"a": 1}}, {"description"}),
        ("PATCH", "/api/v1/tenants/acme", {"status": True, "name": 3}, {"status", "name"}),
        ("POST", "/api/v1/auth/login", {"email": 1, "password": 2}, {"email", "password"}),
    ],
)
def test_request_wrong_types_422_naming_each_field(api, method, path, body, fields):
    r = api("superadmin").request(method, path, json=body)
    problem = _assert_problem(r, 422, "validation_error")
    named = {e["field"] for e in problem["errors"]}
    assert fields <= named
    assert all(e["message"] for e in problem["errors"])


def test_request_json_array_body_422_validation_error(api):
    r = api("superadmin").post("/api/v1/tenants", json=[{"slug": "x", "name": "X"}])
    _assert_problem(r, 422, "validation_error")


# --- every error is a problem --------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "method", "path", "kwargs", "status"),
    [
        (None, "GET", "/api/v1/tenants", {}, 401),
        ("acme_member", "POST", "/api/v1/tenants", {"json": {"slug": "x", "name": "X"}}, 403),
        ("acme_member", "GET", "/api/v1/audit", {}, 403),
        ("globex_admin", "GET", "/api/v1/tenants/acme", {}, 404),
        ("superadmin", "GET", "/api/v1/no-such-route", {}, 404),
        ("superadmin", "PUT", "/api/v1/tenants", {"json": {}}, 405),
        ("superadmin", "POST", "/api/v1/tenants", {"json": {"slug": "acme", "name": "X"}}, 409),
        ("superadmin", "PATCH", "/api/v1/tenants/acme", {"json": {}, "headers": {"If-Match": '"v999"'}}, 412),
        ("superadmin", "POST", "/api/v1/tenants", {"json": {"slug": "-x-", "name": "X"}}, 422),
        ("superadmin", "POST", "/api/v1/tenants", {"json": {}}, 422),
        ("superadmin", "GET", "/api/v1/audit", {"params": {"cursor": "!!"}}, 422),
        (None, "POST", "/api/v1/auth/login", {"json": {"email": "a@b.example", "password": "x"}}, 401),
    ],
)
def test_error_response_is_problem_json(api, persona, method, path, kwargs, status):
    r = api(persona).request(method, path, **kwargs)
    body = _assert_problem(r, status)
    assert body["type"].endswith(body["code"])


def test_error_response_does_not_leak_internals(api):
    r = api("superadmin").post("/api/v1/tenants", json={"slug": "acme", "name": "X"})
    text = r.text.lower()
    for leak in ("traceback", "sqlalchemy", "integrityerror", "select ", "insert "):
        assert leak not in text


# --- request ids ---------------------------------------------------------------------------


def test_request_id_echoed_when_sent(api):
    for path in ("/healthz", "/api/v1/tenants", "/api/v1/no-such-route"):
        r = api("acme_member").get(path, headers={"X-Request-Id": "trace-abc-123"})
        assert r.headers["X-Request-Id"] == "trace-abc-123"


def test_request_id_generated_when_absent_and_unique(client):
    ids = [client.get("/healthz").headers.get("X-Request-Id") for _ in range(3)]
    assert all(ids)
    assert len(set(ids)) == 3


@pytest.mark.parametrize("bad", ["x" * 65, "line\tbreak"])
def test_request_id_unusable_value_replaced(client, bad):
    rid = client.get("/healthz", headers={"X-Request-Id": bad}).headers["X-Request-Id"]
    assert rid and rid != bad


def test_request_id_present_on_error_responses(api):
    r = api(None).get("/api/v1/tenants", headers={"X-Request-Id": "err-req-1"})
    assert r.status_code == 401
    assert r.headers["X-Request-Id"] == "err-req-1"


# --- health, metrics, docs -----------------------------------------------------------------


def test_healthz_200_ok_without_auth(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_livez_200_ok_without_auth_or_database(client, monkeypatch):
    # Liveness must not touch the database: it answers even when every connection would fail.
    def no_database(*_args, **_kwargs):
        raise AssertionError("/livez touched the database")

    monkeypatch.setattr(client.app.state.db.engine, "connect", no_database)
    r = client.get("/livez")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    assert r.headers["X-Request-Id"]


def test_readyz_200_ready_when_database_reachable(client):
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json() == {"status": "ready"}


def test_readyz_503_problem_when_database_unreachable(backend):
    app = create_app(
        load_settings(database_url=backend.app_url),
        db=Database("postgresql://nobody@127.0.0.1:1/unreachable"),
    )
    r = TestClient(app).get("/readyz")  # no lifespan: start-up would try the database too
    _assert_problem(r, 503, "database_unavailable")


def test_openapi_json_served_and_lists_the_contract_paths(client):
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    spec = r.json()
    assert spec["openapi"].startswith("3.1")
    for path in (
        "/api/v1/tenants",
        "/api/v1/tenants/{tenant}",
        "/api/v1/tenants/{tenant}/restore",
        "/api/v1/tenants/{tenant}/deletion-impact",
        "/api/v1/audit",
        "/api/v1/tenants/{tenant}/audit",
        "/api/v1/auth/login",
        "/api/v1/auth/logout",
    ):
        assert path in spec["paths"], path


def test_docs_served_as_html(client):
    r = client.get("/api/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "/api/v1/openapi.json" in r.text


def test_unknown_tenant_id_format_is_404_not_500(api):
    for ref in (str(uuid.uuid4()), "00000000-0000-0000-0000-000000000000", "x" * 300, "%00"):
        r = api("superadmin").get(f"/api/v1/tenants/{ref}")
        assert r.status_code == 404, ref

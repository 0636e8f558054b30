"""Web hardening headers on every kind of response (issue 8, point 6).

Every route of the app is called once (GET where it has one, otherwise its own method without a
body), anonymously and as two personas, plus the answers no route produces itself: unknown path,
bad body, missing token, oversized body, wrong method, server error, the docs page and static
files. Each must carry nosniff, a CSP that forbids framing, no-referrer and no `Server` banner;
every answer outside `/static/` — and so every one that carries a token, key or recovery code — is
`Cache-Control: no-store`.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tenantry.api.app import create_app
from tenantry.config import load_settings
from tests.personas import Personas
from tests.security.helpers import bearer, login, totp_code
from tests.security.test_enforcement import api_routes

PERSONAS = ("acme_admin", "superadmin")
DUMMY = {"tenant": "acme", "key": "host"}  # anything else: a random UUID
_SRC = re.compile(r'(?:src|href)="([^"]+)"')


def problems_with(r: Any) -> list[str]:
    """What is wrong with this response's security headers (empty when nothing is)."""
    h = r.headers
    wrong = []
    if h.get("x-content-type-options") != "nosniff":
        wrong.append("nosniff")
    csp = h.get("content-security-policy", "")
    if "frame-ancestors 'none'" not in csp or "default-src 'none'" not in csp:
        wrong.append(f"csp={csp!r}")
    if h.get("referrer-policy") != "no-referrer":
        wrong.append("referrer-policy")
    if "server" in h:
        wrong.append(f"server={h['server']!r}")
    path = r.request.url.path
    if not path.startswith("/static/") and h.get("cache-control") != "no-store":
        wrong.append(f"cache-control={h.get('cache-control')!r}")
    return wrong


def assert_hardened(r: Any) -> None:
    wrong = problems_with(r)
    assert not wrong, f"{r.request.method} {r.request.url.path} -> {r.status_code}: {wrong}"


def _fill(route: Any) -> str:
    return route.path.format(**{n: DUMMY.get(n, str(uuid.uuid4())) for n in route.param_convertors})


def test_every_route_answers_with_the_security_headers(
    app: FastAPI, client: TestClient, personas: Personas
) -> None:
    routes = list(api_routes(app.routes))
    assert len(routes) > 60  # the walk really found the routes
    seen: list[tuple[str, str, str | None, int]] = []
    wrong: list[tuple[str, str, str | None, int, list[str]]] = []
    for persona in (None, *PERSONAS):
        for route in routes:
            if "GET" in route.methods:
                method = "GET"
            elif persona is None:
                method = sorted(route.methods)[0]  # no body: 401 or 422, never a change
            else:
                continue  # writes as a persona could change the data the sweep walks on
            headers = bearer(personas.tokens[persona]) if persona else {}
            client.cookies.clear()
            r = client.request(method, _fill(route), headers=headers)
            seen.append((method, route.path, persona, r.status_code))
            if problems_with(r):
                wrong.append((method, route.path, persona, r.status_code, problems_with(r)))
    assert wrong == []
    statuses = {status for *_, status in seen}
    assert {200, 401, 404} <= statuses  # successes and refusals were both sampled
    assert 422 in statuses or 405 in statuses


def test_error_answers_carry_the_headers(api: Any, backend: Any, clean_db: Any) -> None:
    anon = api(None)
    cases = [
        (anon.get("/no-such-path"), 404),
        (anon.get("/api/v1/tenants"), 401),
        (api("superadmin").post("/api/v1/tenants", json={"slug": 5}), 422),
        (
            api("superadmin").post(
                "/api/v1/tenants", content=b"{", headers={"content-type": "application/json"}
            ),
            422,
        ),
        (anon.delete("/healthz"), 405),
        (anon.get("/metrics"), 404),  # the test client's address is not an allowed scraper
        (anon.get("/static/no-such-file.js"), 404),
    ]
    small = create_app(load_settings(database_url=backend.app_url, max_body_bytes=2048), db=clean_db)
    with TestClient(small) as c:
        cases.append((c.post("/api/v1/tenants", json={"name": "x" * 4000}), 413))
    for r, status in cases:
        assert r.status_code == status, (r.request.url.path, r.status_code)
        assert_hardened(r)


def test_unhandled_server_error_still_carries_the_headers(app: FastAPI) -> None:
    """Starlette answers a crash from outside every added middleware; ours wraps even that."""

    @app.get("/api/v1/_probe_crash")
    def crash() -> None:
        raise RuntimeError("boom")

    r = TestClient(app, raise_server_exceptions=False).get("/api/v1/_probe_crash")
    assert r.status_code == 500
    assert_hardened(r)


def test_json_answers_get_the_locked_down_policy(api: Any) -> None:
    r = api("acme_admin").get("/api/v1/tenants/acme")
    assert r.status_code == 200
    assert r.headers["content-security-policy"] == (
        "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )


def test_docs_page_policy_allows_only_same_origin_and_no_inline_script(client: TestClient) -> None:
    r = client.get("/api/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert_hardened(r)
    directives = dict(d.strip().split(" ", 1) for d in r.headers["content-security-policy"].split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in r.headers["content-security-policy"]
    assert "<script>" not in r.text.replace(" ", "")  # every script is a served file


def test_docs_page_assets_are_same_origin_and_served(client: TestClient) -> None:
    page = client.get("/api/docs").text
    refs = _SRC.findall(page)
    assert any(ref.endswith("swagger-ui-bundle.js") for ref in refs)
    assert any(ref.endswith("swagger-ui.css") for ref in refs)
    assert any(ref.endswith("swagger-init.js") for ref in refs)
    for ref in refs:
        assert ref.startswith("/") and not ref.startswith("//"), f"not same-origin: {ref}"
        r = client.get(ref)
        assert r.status_code == 200, ref
        assert r.content, ref
        assert_hardened(r)
        assert "cache-control" not in r.headers or r.headers["cache-control"] != "no-store"
    assert 'data-openapi-url="/api/v1/openapi.json"' in page
    assert client.get("/api/v1/openapi.json").status_code == 200


def test_docs_page_names_no_outside_host(client: TestClient) -> None:
    assert "http://" not in client.get("/api/docs").text
    assert "https://" not in client.get("/api/docs").text
    init = client.get("/static/docs/swagger-init.js").text
    assert "validatorUrl: null" in init


# --- answers that carry a credential ------------------------------------------------------------


def test_login_answer_is_no_store(client: TestClient, personas: Personas) -> None:
    r = login(client, "acme.admin@example.com")
    assert r.status_code == 200 and r.json()["token"]
    assert r.headers["cache-control"] == "no-store"
    assert_hardened(r)


def test_api_key_answer_is_no_store(api: Any) -> None:
    r = api("acme_admin").post("/api/v1/me/api-keys", json={"name": "ci"})
    assert r.status_code == 201 and r.json()["token"]
    assert r.headers["cache-control"] == "no-store"


def test_totp_secret_and_recovery_code_answers_are_no_store(client: TestClient, personas: Personas) -> None:
    token = personas.tokens["acme_member"]
    setup = client.post("/api/v1/me/2fa/setup", headers=bearer(token))
    assert setup.status_code == 200 and setup.json()["secret"]
    assert setup.headers["cache-control"] == "no-store"
    enable = client.post(
        "/api/v1/me/2fa/enable", json={"code": totp_code(setup.json()["secret"])}, headers=bearer(token)
    )
    assert enable.status_code == 200 and enable.json()["recovery_codes"]
    assert enable.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("path", ["/healthz", "/api/v1/openapi.json"])
def test_public_answers_are_hardened_too(client: TestClient, path: str) -> None:
    assert_hardened(client.get(path))

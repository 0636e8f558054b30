"""Cookie sessions for the console: HttpOnly + SameSite cookies and a CSRF token bound to the session."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.personas import PASSWORD
from tests.security.helpers import code_of

MEMBER = "acme.member@example.com"


def _cookie_login(c: TestClient, email: str = MEMBER):
    r = c.post("/api/v1/auth/session", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return r


def _set_cookie(r, name: str) -> str:
    found = [h for h in r.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert len(found) == 1, r.headers.get_list("set-cookie")
    return found[0]


def _attrs(header: str) -> set[str]:
    return {part.strip().lower() for part in header.split(";")[1:]}


@pytest.fixture
def cookie_client(client, personas):
    """The test client signed in with a cookie session (no Authorization header); csrf token."""
    assert "authorization" not in {k.lower() for k in client.headers}
    r = _cookie_login(client)
    return client, r.json()["csrf_token"]


def test_cookie_login_sets_httponly_samesite_lax_session_cookie_and_csrf_cookie(client, personas):
    r = _cookie_login(client)
    session = _attrs(_set_cookie(r, "tenantry_session"))
    assert "httponly" in session
    assert "samesite=lax" in session
    assert "path=/" in session
    assert any(a.startswith("expires=") for a in session)
    csrf_header = _set_cookie(r, "tenantry_csrf")
    csrf = _attrs(csrf_header)
    assert "samesite=lax" in csrf
    assert "httponly" not in csrf  # the console's script reads it to send the header
    assert csrf_header.split(";")[0].split("=", 1)[1] == r.json()["csrf_token"]
    assert "token" not in r.json()  # the session token is only in the HttpOnly cookie
    assert r.cookies.get("tenantry_session", "").startswith("tnt_ses_")


def test_cookie_session_get_me_200(cookie_client):
    c, _ = cookie_client
    r = c.get("/api/v1/me")
    assert r.status_code == 200
    assert r.json()["email"] == MEMBER


def test_cookie_session_unsafe_request_without_csrf_header_403(cookie_client):
    c, _ = cookie_client
    r = c.patch("/api/v1/me", json={"first_name": "Forged"})
    assert r.status_code == 403
    assert code_of(r) == "csrf_failed"
    assert c.get("/api/v1/me").json()["first_name"] != "Forged"


@pytest.mark.parametrize("bad", ["wrong-token", "", " "], ids=["wrong", "empty", "blank"])
def test_cookie_session_unsafe_request_with_wrong_csrf_403(cookie_client, bad):
    c, _ = cookie_client
    r = c.patch("/api/v1/me", json={"first_name": "Forged"}, headers={"X-CSRF-Token": bad})
    assert r.status_code == 403
    assert code_of(r) == "csrf_failed"


def test_cookie_session_csrf_token_of_another_session_403(app, cookie_client):
    c, _ = cookie_client
    with TestClient(app) as other:
        theirs = _cookie_login(other).json()["csrf_token"]  # the same user, another session
        assert (
            other.patch("/api/v1/me", json={"theme": "dark"}, headers={"X-CSRF-Token": theirs}).status_code
            == 200
        )
    r = c.patch("/api/v1/me", json={"first_name": "Forged"}, headers={"X-CSRF-Token": theirs})
    assert r.status_code == 403
    assert code_of(r) == "csrf_failed"


def test_cookie_session_session_token_as_csrf_token_403(cookie_client):
    c, _ = cookie_client
    r = c.patch(
        "/api/v1/me", json={"first_name": "Forged"}, headers={"X-CSRF-Token": c.cookies["tenantry_session"]}
    )
    assert r.status_code == 403


def test_cookie_session_unsafe_request_with_right_csrf_200(cookie_client):
    c, csrf = cookie_client
    r = c.patch("/api/v1/me", json={"first_name": "Real"}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text
    assert r.json()["first_name"] == "Real"
    assert c.get("/api/v1/me").json()["first_name"] == "Real"


def test_cookie_session_logout_needs_csrf_and_ends_the_session(cookie_client):
    c, csrf = cookie_client
    assert c.post("/api/v1/auth/logout").status_code == 403
    assert c.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert c.get("/api/v1/me").status_code == 401


def test_bearer_session_token_has_no_csrf_and_cannot_be_used_as_cookie_with_any_header(client, personas):
    # A bearer-issued session has no CSRF token bound, so as a cookie it can never pass an unsafe check.
    token = personas.tokens["acme_member"]
    cookie = {"Cookie": f"tenantry_session={token}"}
    assert client.get("/api/v1/me", headers=cookie).status_code == 200
    r = client.patch("/api/v1/me", json={"first_name": "X"}, headers={**cookie, "X-CSRF-Token": "anything"})
    assert r.status_code == 403
    assert code_of(r) == "csrf_failed"

"""Sessions and API keys die at once: deactivation, deletion, revocation, expiry, forgery."""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import inspect, select, text

from tenantry.db.session import Database
from tenantry.db.tables import ApiKey, AuditEvent
from tenantry.db.types import utcnow
from tenantry.security import tokens
from tests.personas import PASSWORD
from tests.security.helpers import bearer, code_of, login

MEMBER = "acme.member@example.com"


def _key(client, session_token: str, scope: str = "read_write") -> dict:
    r = client.post(
        "/api/v1/me/api-keys", json={"name": f"k-{scope}", "scope": scope}, headers=bearer(session_token)
    )
    assert r.status_code == 201, r.text
    return r.json()


def _me_status(client, token: str) -> int:
    return client.get("/api/v1/me", headers=bearer(token)).status_code


@pytest.fixture
def member(client, personas):
    """acme_member's session token, a read_write key, and the user id."""
    session = personas.tokens["acme_member"]
    key = _key(client, session)
    assert _me_status(client, session) == 200
    assert _me_status(client, key["token"]) == 200
    return session, key, personas.users["acme_member"].id


def _admin(client, personas, method: str, path: str, **kw):
    return client.request(method, path, headers=bearer(personas.tokens["superadmin"]), **kw)


def test_deactivated_user_session_and_key_401_next_request(client, personas, member):
    session, key, uid = member
    r = _admin(client, personas, "PATCH", f"/api/v1/users/{uid}", json={"active": False})
    assert r.status_code == 200, r.text
    assert _me_status(client, session) == 401
    assert _me_status(client, key["token"]) == 401
    assert login(client, MEMBER).status_code == 401


def test_deleted_user_session_and_key_401(client, personas, member):
    session, key, uid = member
    assert _admin(client, personas, "DELETE", f"/api/v1/users/{uid}").status_code == 200
    assert _me_status(client, session) == 401
    assert _me_status(client, key["token"]) == 401
    assert login(client, MEMBER).status_code == 401


def test_reactivation_does_not_revive_old_session(client, personas, member):
    session, _, uid = member
    assert (
        _admin(client, personas, "PATCH", f"/api/v1/users/{uid}", json={"active": False}).status_code == 200
    )
    assert _admin(client, personas, "PATCH", f"/api/v1/users/{uid}", json={"active": True}).status_code == 200
    assert _me_status(client, session) == 401
    fresh = login(client, MEMBER)
    assert fresh.status_code == 200
    assert _me_status(client, fresh.json()["token"]) == 200


def test_reactivation_does_not_revive_old_api_keys(client, personas, member, clean_db):
    """DESIGN: a key dies with its owner's access, for good; the owner makes new ones."""
    session, key, uid = member
    read_key = _key(client, session, scope="read")
    assert (
        _admin(client, personas, "PATCH", f"/api/v1/users/{uid}", json={"active": False}).status_code == 200
    )
    assert _admin(client, personas, "PATCH", f"/api/v1/users/{uid}", json={"active": True}).status_code == 200
    assert _me_status(client, key["token"]) == 401
    assert _me_status(client, read_key["token"]) == 401
    fresh = login(client, MEMBER).json()["token"]
    assert client.get("/api/v1/me/api-keys", headers=bearer(fresh)).json() == []
    assert _me_status(client, _key(client, fresh)["token"]) == 200  # new keys work
    # Each revocation is in the audit log, with its reason.
    with clean_db.unit_of_work() as s:
        rows = s.execute(
            select(AuditEvent.target_id, AuditEvent.after).where(AuditEvent.action == "api_key.revoke")
        ).all()
    assert {str(target) for target, _ in rows} == {key["id"], read_key["id"]}
    assert all(after["reason"] == "owner_deactivated" for _, after in rows)


def test_restore_after_delete_does_not_revive_old_session(client, personas, member):
    session, _, uid = member
    assert _admin(client, personas, "DELETE", f"/api/v1/users/{uid}").status_code == 200
    assert _admin(client, personas, "POST", f"/api/v1/users/{uid}/restore").status_code == 200
    assert _me_status(client, session) == 401


def test_revoked_key_401_next_request(client, member):
    session, key, _ = member
    r = client.delete(f"/api/v1/me/api-keys/{key['id']}", headers=bearer(session))
    assert r.status_code == 204
    assert _me_status(client, key["token"]) == 401
    assert _me_status(client, session) == 200


def test_revoked_session_401_next_request(client, member):
    session, key, _ = member
    assert client.delete("/api/v1/me/sessions", headers=bearer(session)).status_code == 204
    assert _me_status(client, session) == 401
    assert _me_status(client, key["token"]) == 200  # keys are separate credentials


def test_read_key_cannot_write_403_key_read_only(client, personas):
    key = _key(client, personas.tokens["acme_member"], scope="read")
    h = bearer(key["token"])
    assert client.get("/api/v1/me", headers=h).status_code == 200
    for method, path, body, code in (
        ("PATCH", "/api/v1/me", {"first_name": "Mallory"}, "key_read_only"),
        ("POST", "/api/v1/tenants", {"slug": "evil", "name": "Evil"}, "key_read_only"),
        ("POST", "/api/v1/auth/logout", None, "key_read_only"),
        # Keys are managed from a signed-in session only, whatever the key's scope.
        ("POST", "/api/v1/me/api-keys", {"name": "more", "scope": "read_write"}, "session_required"),
        ("DELETE", f"/api/v1/me/api-keys/{key['id']}", None, "session_required"),
    ):
        r = client.request(method, path, json=body, headers=h)
        assert r.status_code == 403, (method, path, r.text)
        assert code_of(r) == code, (method, path)
    assert client.get("/api/v1/me", headers=h).json()["first_name"] != "Mallory"


def test_read_write_key_can_patch_me_but_not_manage_keys(client, member):
    _, key, _ = member
    h = bearer(key["token"])
    r = client.patch("/api/v1/me", json={"first_name": "Keyed"}, headers=h)
    assert r.status_code == 200
    assert r.json()["first_name"] == "Keyed"
    more = client.post("/api/v1/me/api-keys", json={"name": "child", "scope": "read_write"}, headers=h)
    assert more.status_code == 403
    assert code_of(more) == "session_required"


def test_expired_key_401(client, clean_db, member):
    _, key, _ = member
    with clean_db.unit_of_work() as session:
        row = session.get(ApiKey, uuid.UUID(key["id"]))
        row.expires_at = utcnow() - timedelta(seconds=1)
    assert _me_status(client, key["token"]) == 401


def test_key_with_past_expiry_cannot_be_created(client, personas):
    r = client.post(
        "/api/v1/me/api-keys",
        json={"name": "old", "scope": "read", "expires_at": (utcnow() - timedelta(days=1)).isoformat()},
        headers=bearer(personas.tokens["acme_member"]),
    )
    assert r.status_code == 422


@pytest.mark.parametrize(
    "forged",
    [
        "tnt_ses_" + secrets.token_urlsafe(32),
        "tnt_pat_" + secrets.token_urlsafe(32),
        "tnt_ses_",
        "tnt_pat_",
        "not-a-token",
    ],
    ids=["session", "api_key", "bare_session_prefix", "bare_key_prefix", "no_prefix"],
)
def test_forged_token_401(client, personas, forged):
    r = client.get("/api/v1/me", headers=bearer(forged))
    assert r.status_code == 401
    assert r.headers.get("www-authenticate") == "Bearer"


def test_tampered_real_token_401(client, personas):
    real = personas.tokens["acme_member"]
    last = "A" if real[-1] != "A" else "B"
    assert _me_status(client, real[:-1] + last) == 401
    assert _me_status(client, real + "x") == 401


def test_tokens_are_stored_hashed_only(client, personas, backend, member):
    session_token, key, _ = member
    cookie = client.post("/api/v1/auth/session", json={"email": MEMBER, "password": PASSWORD})
    assert cookie.status_code == 200
    cookie_token = cookie.cookies.get("tenantry_session")
    csrf = cookie.json()["csrf_token"]
    secrets_issued = [session_token, key["token"], cookie_token, csrf]
    assert all(secrets_issued)

    owner = Database(backend.owner_url)  # the owner sees every row, whatever the RLS policies
    try:
        with owner.engine.connect() as conn:
            dump = {
                table: "\n".join(repr(tuple(row)) for row in conn.execute(text(f"SELECT * FROM {table}")))
                for table in ("auth_sessions", "api_keys", "audit_events")
                if _exists(conn, table)
            }
    finally:
        owner.dispose()
    assert dump["auth_sessions"] and dump["api_keys"]
    for table, content in dump.items():
        for raw in secrets_issued:
            body = raw.split("_", 2)[-1] if raw.startswith("tnt_") else raw
            assert raw not in content, table
            assert body not in content, table
    # What is stored is the digest.
    assert tokens.digest(session_token) in dump["auth_sessions"]
    assert tokens.digest(csrf) in dump["auth_sessions"]
    assert tokens.digest(key["token"]) in dump["api_keys"]


def _exists(conn, table: str) -> bool:
    return inspect(conn).has_table(table)


def test_read_key_may_use_a_read_only_permission_through_post(client, personas):
    """The catalog's read-only flag decides, not the HTTP method: explain is a POST that only reads."""
    key = _key(client, personas.tokens["acme_admin"], scope="read")
    r = client.post(
        "/api/v1/authz/explain",
        json={"user_id": str(personas.users["acme_member"].id), "permission": "host.read", "tenant": "acme"},
        headers=bearer(key["token"]),
    )
    assert r.status_code == 200, r.text
    assert "allowed" in r.json()

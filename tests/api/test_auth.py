"""`/api/v1/auth/login` and `/logout`, and what a bearer token must be to be accepted."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update

from tenantry.db.session import Database
from tenantry.db.tables import AuditEvent, AuthSession, User
from tenantry.db.types import utcnow
from tenantry.security import tokens
from tenantry.services import throttle
from tests.personas import PASSWORD

LOGIN = "/api/v1/auth/login"
LOGOUT = "/api/v1/auth/logout"
PROTECTED = "/api/v1/tenants"


@pytest.fixture(autouse=True)
def _fresh_address_limiter() -> Iterator[None]:
    """The per-address failure counter is process-wide; start every test with an empty one."""
    throttle.set_limiter(None)
    yield
    throttle.set_limiter(None)


def _login(client, email: str, password: str = PASSWORD):
    return client.post(LOGIN, json={"email": email, "password": password})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _failed_logins(db: Database) -> list[AuditEvent]:
    with db.sessions() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == "auth.login_failed")))


def _set_session(db: Database, token: str, **values) -> None:
    with db.unit_of_work() as s:
        n = s.execute(
            update(AuthSession).where(AuthSession.token_hash == tokens.digest(token)).values(**values)
        )
        assert n.rowcount == 1


# --- login ---------------------------------------------------------------------------------


def test_login_valid_credentials_returns_bearer_token(client, personas):
    r = _login(client, "acme.admin@example.com")
    assert r.status_code == 200, r.text
    body = r.json()
    assert {"token", "token_type", "expires_at"} <= set(body)
    assert body["token_type"] == "bearer"
    assert body["token"].startswith("tnt_ses_")
    assert body["token"] not in personas.tokens.values()
    expires = datetime.fromisoformat(body["expires_at"])
    assert expires.tzinfo is not None
    assert utcnow() < expires < utcnow() + timedelta(days=8)
    me = client.get(PROTECTED, headers=_bearer(body["token"]))
    assert me.status_code == 200
    assert [t["slug"] for t in me.json()["items"]] == ["acme"]


def test_login_email_is_case_insensitive_and_trimmed(client, personas):
    r = _login(client, "  ACME.Admin@Example.COM ")
    assert r.status_code == 200
    assert r.json()["token"].startswith("tnt_ses_")


def test_login_twice_issues_distinct_tokens_both_valid(client, personas):
    a = _login(client, "acme.member@example.com").json()["token"]
    b = _login(client, "acme.member@example.com").json()["token"]
    assert a != b
    assert client.get(PROTECTED, headers=_bearer(a)).status_code == 200
    assert client.get(PROTECTED, headers=_bearer(b)).status_code == 200


def test_login_writes_auth_login_event_without_secrets(client, api, personas):
    token = _login(client, "acme.admin@example.com").json()["token"]
    user = personas.users["acme_admin"]
    events = (
        api("superadmin")
        .get("/api/v1/audit", params={"action": "auth.login", "actor_id": str(user.id)})
        .json()["items"]
    )
    assert len(events) == 2  # the persona's own sign-in and this one
    assert all(e["actor"]["label"] == user.email for e in events)
    assert token not in str(events)
    assert PASSWORD not in str(events)


def test_login_failures_same_401_invalid_credentials_and_same_body(client, clean_db, personas):
    with clean_db.unit_of_work() as s:
        s.execute(update(User).where(User.id == personas.users["acme_viewer"].id).values(active=False))
    answers = {
        "wrong password": _login(client, "acme.admin@example.com", "not-the-password-at-all"),
        "unknown email": _login(client, "nobody@example.com"),
        "inactive user": _login(client, "acme.viewer@example.com"),
    }
    bodies = {why: r.json() for why, r in answers.items()}
    for why, r in answers.items():
        assert r.status_code == 401, why
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.headers["WWW-Authenticate"] == "Bearer"
        assert r.json()["code"] == "invalid_credentials"
        assert "token" not in r.json()
    assert bodies["wrong password"] == bodies["unknown email"] == bodies["inactive user"]


def test_login_failed_writes_auth_login_failed_event(client, clean_db, personas):
    wrong = "a-wrong-passphrase-never-stored"
    assert _login(client, "acme.member@example.com", wrong).status_code == 401
    assert _login(client, "ghost@example.com", wrong).status_code == 401
    events = sorted(_failed_logins(clean_db), key=lambda e: e.id)
    assert len(events) == 2
    member, ghost = events
    assert member.target_type == "user"
    assert member.target_id == str(personas.users["acme_member"].id)
    assert member.after["email"] == "acme.member@example.com"
    assert ghost.target_id is None
    assert ghost.after["email"] == "ghost@example.com"
    assert all(e.tenant_id is None and e.actor_id is None for e in events)
    for e in events:
        assert wrong not in str(e.before) + str(e.after)


def test_login_success_writes_no_failure_event(client, clean_db, personas):
    assert _login(client, "acme.member@example.com").status_code == 200
    assert _failed_logins(clean_db) == []


@pytest.mark.parametrize(
    "body",
    [
        {"email": "acme.admin@example.com"},
        {"password": PASSWORD},
        {"email": "acme.admin@example.com", "password": ""},
        {"email": "acme.admin@example.com", "password": PASSWORD, "is_superadmin": True},
        {"email": ["acme.admin@example.com"], "password": PASSWORD},
    ],
)
def test_login_invalid_body_422_validation_error(client, clean_db, personas, body):
    r = client.post(LOGIN, json=body)
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"
    assert "token" not in r.json()


def test_login_malformed_json_422(client, personas):
    r = client.post(LOGIN, content=b'{"email": ', headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["code"] == "malformed_json"


# --- bearer tokens -------------------------------------------------------------------------


def test_request_without_token_401_with_www_authenticate(client, personas):
    r = client.get(PROTECTED)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "unauthenticated"


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer tnt_ses_" + "A" * 43,
        "Bearer tnt_ses_Zm9yZ2VkLXRva2VuLXRoYXQtd2FzLW5ldmVyLWlzc3VlZA",
        "Bearer garbage",
        "Bearer tnt_pat_Zm9yZ2VkLWFwaS1rZXktdGhhdC13YXMtbmV2ZXItaXNzdWVk",
        "Bearer ",
        "Basic YWRtaW46YWRtaW4=",
        "tnt_ses_nobearer",
    ],
)
def test_request_with_forged_or_malformed_token_401(client, personas, authorization):
    r = client.get(PROTECTED, headers={"Authorization": authorization})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert r.json()["code"] in ("invalid_token", "unauthenticated")


def test_request_with_token_hash_instead_of_token_401(client, personas):
    """The stored digest is not a credential: a leaked database row cannot be replayed."""
    digest = tokens.digest(personas.tokens["superadmin"])
    assert client.get(PROTECTED, headers=_bearer(digest)).status_code == 401
    assert client.get(PROTECTED, headers=_bearer("tnt_ses_" + digest)).status_code == 401


@pytest.mark.parametrize("column", ["expires_at", "idle_expires_at"])
def test_request_with_expired_session_401(client, clean_db, personas, column):
    token = personas.tokens["acme_admin"]
    assert client.get(PROTECTED, headers=_bearer(token)).status_code == 200
    _set_session(clean_db, token, **{column: utcnow() - timedelta(seconds=1)})
    r = client.get(PROTECTED, headers=_bearer(token))
    assert r.status_code == 401
    assert r.json()["code"] == "invalid_token"
    assert client.get(PROTECTED, headers=_bearer(personas.tokens["acme_member"])).status_code == 200


def test_request_by_deactivated_user_401_at_once(client, clean_db, personas):
    token = personas.tokens["acme_admin"]
    assert client.get(PROTECTED, headers=_bearer(token)).status_code == 200
    with clean_db.unit_of_work() as s:
        s.execute(update(User).where(User.id == personas.users["acme_admin"].id).values(active=False))
    assert client.get(PROTECTED, headers=_bearer(token)).status_code == 401


# --- logout --------------------------------------------------------------------------------


def test_logout_then_same_token_401_other_sessions_unaffected(client, clean_db, personas):
    first = _login(client, "acme.admin@example.com").json()["token"]
    second = _login(client, "acme.admin@example.com").json()["token"]
    r = client.post(LOGOUT, headers=_bearer(first))
    assert r.status_code == 204
    after = client.get(PROTECTED, headers=_bearer(first))
    assert after.status_code == 401
    assert after.json()["code"] == "invalid_token"
    assert client.post(LOGOUT, headers=_bearer(first)).status_code == 401
    assert client.get(PROTECTED, headers=_bearer(second)).status_code == 200
    assert client.get(PROTECTED, headers=_bearer(personas.tokens["acme_admin"])).status_code == 200
    with clean_db.sessions() as s:
        [event] = s.scalars(select(AuditEvent).where(AuditEvent.action == "auth.logout")).all()
        assert event.actor_id == personas.users["acme_admin"].id


def test_logout_without_token_401(client, personas):
    r = client.post(LOGOUT)
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"

"""`/api/v1/me`: profile, password, tenants, sessions and personal API keys."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from sqlalchemy import event, func, select

from tenantry.db.session import Database
from tenantry.db.tables import ApiKey, AuditEvent
from tenantry.db.types import utcnow
from tests.asserts import assert_problem as _problem
from tests.personas import PASSWORD, login_token

ME = "/api/v1/me"
KEYS = "/api/v1/me/api-keys"
NEW_PASSWORD = "violet-harbour-engine-stapler-91"


# --- helpers -------------------------------------------------------------------------------


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _all_audit(db: Database) -> int:
    """Audited changes; refusals leave `authz.denied` events, which change nothing."""
    with db.sessions() as s:
        return (
            s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action != "authz.denied"))
            or 0
        )


def _audit_count(db: Database, action: str) -> int:
    with db.sessions() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)) or 0


def _key_rows(db: Database) -> int:
    with db.sessions() as s:
        return s.scalar(select(func.count()).select_from(ApiKey)) or 0


def _iso(dt: datetime) -> str:
    return dt.isoformat()


def _members_of_acme(api) -> int:
    return len(api("superadmin").get("/api/v1/tenants/acme/members").json()["items"])


def _create_key(client, token: str, **body) -> dict:
    r = client.post(KEYS, json={"name": "ci", "scope": "read_write", **body}, headers=_auth(token))
    assert r.status_code == 201, r.text
    return r.json()


# --- profile -------------------------------------------------------------------------------


def test_get_me_returns_own_profile(api, personas):
    r = api("acme_member").get(ME)
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == str(personas.users["acme_member"].id)
    assert body["email"] == "acme.member@example.com"
    assert body["default_tenant_id"] == str(personas.acme.id)
    assert body["is_superadmin"] is False
    # language null: mails and messages follow the tenant's default language (issue 11)
    assert (body["language"], body["theme"], body["preferences"]) == (None, "system", {})
    assert "password_hash" not in body
    assert "totp_secret" not in body


def test_get_me_outsider_works_without_any_tenant(api):
    r = api("outsider").get(ME)
    assert r.status_code == 200
    assert r.json()["default_tenant_id"] is None


def test_get_me_without_or_with_forged_token_401(api, client):
    _problem(api(None).get(ME), 401, "unauthenticated")
    _problem(client.get(ME, headers=_auth("tnt_ses_forged")), 401, "invalid_token")
    _problem(client.get(ME, headers=_auth("tnt_pat_forged")), 401, "invalid_token")
    _problem(client.get(ME, headers=_auth("something-else")), 401, "invalid_token")


def test_update_me_names_language_theme_and_preferences(api, db):
    r = api("acme_member").patch(
        ME,
        json={
            "first_name": " Ann ",
            "last_name": "Smith",
            "language": "de",
            "theme": "dark",
            "preferences": {"hide_ai": True},
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["first_name"], body["last_name"], body["language"], body["theme"]) == (
        "Ann",
        "Smith",
        "de",
        "dark",
    )
    assert body["preferences"] == {"hide_ai": True}
    # Preferences merge; the others stay.
    r = api("acme_member").patch(ME, json={"preferences": {"compact_tables": True}})
    assert r.json()["preferences"] == {"hide_ai": True, "compact_tables": True}
    r = api("acme_member").patch(ME, json={"preferences": {"hide_ai": False}})
    assert r.json()["preferences"] == {"hide_ai": False, "compact_tables": True}
    again = api("acme_member").get(ME).json()
    assert (again["first_name"], again["language"], again["theme"]) == ("Ann", "de", "dark")
    assert _audit_count(db, "profile.update") == 3


def test_update_me_default_tenant_id(api, personas):
    user = personas.users["globex_member"]
    api("superadmin").post("/api/v1/tenants/acme/members", json={"user_id": str(user.id)})
    r = api("globex_member").patch(ME, json={"default_tenant_id": str(personas.acme.id)})
    assert r.status_code == 200, r.text
    assert r.json()["default_tenant_id"] == str(personas.acme.id)
    tenants = {t["slug"]: t["is_default"] for t in api("globex_member").get(f"{ME}/tenants").json()}
    assert tenants == {"acme": True, "globex": False}
    r = api("globex_member").patch(ME, json={"default_tenant_id": None})
    assert r.json()["default_tenant_id"] is None


@pytest.mark.parametrize("which", ["globex", "unknown", "deleted"])
def test_update_me_default_tenant_not_a_member_of_404(api, db, personas, which):
    if which == "deleted":
        api("superadmin").post("/api/v1/tenants", json={"slug": "gone", "name": "Gone"})
        gone = api("superadmin").get("/api/v1/tenants/gone").json()["id"]
        api("superadmin").post(
            "/api/v1/tenants/gone/members", json={"user_id": str(personas.users["acme_member"].id)}
        )
        assert api("superadmin").delete("/api/v1/tenants/gone").status_code == 200
        target = gone
    else:
        target = str(personas.globex.id) if which == "globex" else str(uuid.uuid4())
    before = _all_audit(db)
    _problem(api("acme_member").patch(ME, json={"default_tenant_id": target}), 404, "not_found")
    assert api("acme_member").get(ME).json()["default_tenant_id"] == str(personas.acme.id)
    assert _all_audit(db) == before


@pytest.mark.parametrize(
    "body",
    [
        {"language": "fr"},
        {"theme": "blue"},
        {"preferences": {"unknown_flag": True}},
        {"preferences": {"hide_ai": "sometimes"}},
        {"preferences": ["hide_ai"]},
        {"email": "new@example.com"},
        {"is_superadmin": True},
        {"active": False},
        {"first_name": "n" * 101},
        {"default_tenant_id": "acme"},
    ],
)
def test_update_me_bad_input_422_nothing_changed(api, db, body):
    before = _all_audit(db)
    _problem(api("acme_member").patch(ME, json=body), 422, "validation_error")
    me = api("acme_member").get(ME).json()
    assert (me["email"], me["language"], me["theme"], me["preferences"]) == (
        "acme.member@example.com",
        None,
        "system",
        {},
    )
    assert (me["is_superadmin"], me["active"]) == (False, True)
    assert _all_audit(db) == before


def test_update_me_with_read_key_403_key_read_only(api, client, personas):
    key = _create_key(client, personas.tokens["acme_member"], scope="read")["token"]
    _problem(client.patch(ME, json={"first_name": "Key"}, headers=_auth(key)), 403, "key_read_only")
    assert api("acme_member").get(ME).json()["first_name"] == ""


# --- password ------------------------------------------------------------------------------


def test_change_password_revokes_other_sessions_keeps_current(api, client, db, personas):
    current = personas.tokens["acme_member"]
    other = login_token(db, "acme.member@example.com")
    assert client.get(ME, headers=_auth(other)).status_code == 200
    r = client.post(
        f"{ME}/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=_auth(current),
    )
    assert r.status_code == 204, r.text
    _problem(client.get(ME, headers=_auth(other)), 401, "invalid_token")
    assert client.get(ME, headers=_auth(current)).status_code == 200
    r = api(None).post("/api/v1/auth/login", json={"email": "acme.member@example.com", "password": PASSWORD})
    _problem(r, 401, "invalid_credentials")
    assert login_token(db, "acme.member@example.com", NEW_PASSWORD).startswith("tnt_ses_")
    assert _audit_count(db, "password.change") == 1
    # Other users' sessions are untouched.
    assert client.get(ME, headers=_auth(personas.tokens["acme_viewer"])).status_code == 200


def test_change_password_wrong_current_422_invalid_password(api, client, db, personas):
    other = login_token(db, "acme.member@example.com")
    before = _all_audit(db)
    r = api("acme_member").post(
        f"{ME}/password", json={"current_password": "wrong-" + PASSWORD, "new_password": NEW_PASSWORD}
    )
    body = _problem(r, 422, "invalid_password")
    assert body["field"] == "current_password"
    assert client.get(ME, headers=_auth(other)).status_code == 200
    # Nothing changed; only the failed check is recorded (it counts like a failed sign-in).
    assert _all_audit(db) == before + 1
    assert _audit_count(db, "auth.reauth_failed") == 1
    assert login_token(db, "acme.member@example.com", PASSWORD)


@pytest.mark.parametrize(
    ("new", "code"),
    [
        ("short", "password_too_short"),
        ("passwordpassword", "password_too_weak"),
        ("my-acme.member-password-x7", "password_contains_email"),
        ("", "validation_error"),
    ],
)
def test_change_password_bad_new_password_422_nothing_changed(api, client, db, personas, new, code):
    other = login_token(db, "acme.member@example.com")
    before = _all_audit(db)
    r = api("acme_member").post(f"{ME}/password", json={"current_password": PASSWORD, "new_password": new})
    _problem(r, 422, code)
    assert client.get(ME, headers=_auth(other)).status_code == 200
    assert _all_audit(db) == before
    assert login_token(db, "acme.member@example.com", PASSWORD)


def test_change_password_with_api_key_refused(api, client, db, personas):
    key = _create_key(client, personas.tokens["acme_member"])["token"]
    r = client.post(
        f"{ME}/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=_auth(key),
    )
    _problem(r, 403, "session_required")
    assert login_token(db, "acme.member@example.com", PASSWORD)


def test_change_password_without_token_401(api):
    r = api(None).post(f"{ME}/password", json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    _problem(r, 401, "unauthenticated")


# --- tenants -------------------------------------------------------------------------------


def test_my_tenants_lists_tenants_with_roles_default_and_counts(api, personas):
    r = api("acme_admin").get(f"{ME}/tenants")
    assert r.status_code == 200
    assert r.json() == [
        {
            "id": str(personas.acme.id),
            "slug": "acme",
            "name": "Acme Corp",
            "status": "active",
            "access": "member",
            "roles": ["tenant_admin"],
            "is_default": True,
            "member_count": 4,
            "resource_count": 0,
        }
    ]


def test_my_tenants_outsider_empty(api):
    assert api("outsider").get(f"{ME}/tenants").json() == []


def _switcher(api, persona: str) -> list[tuple[str, str, str, list[str]]]:
    r = api(persona).get(f"{ME}/tenants")
    assert r.status_code == 200, r.text
    return [(t["slug"], t["status"], t["access"], t["roles"]) for t in r.json()]


def test_my_tenants_superadmin_without_membership_lists_every_tenant_with_counts(api):
    rows = api("superadmin").get(f"{ME}/tenants").json()
    assert [(t["slug"], t["access"], t["roles"], t["is_default"]) for t in rows] == [
        ("acme", "superadmin", [], False),
        ("globex", "superadmin", [], False),
    ]
    assert [(t["member_count"], t["resource_count"]) for t in rows] == [(4, 0), (2, 0)]


def test_my_tenants_superadmin_member_somewhere_is_member_there(api, personas):
    api("superadmin").post(
        "/api/v1/tenants/globex/members",
        json={"user_id": str(personas.users["superadmin"].id), "role": "viewer"},
    )
    assert _switcher(api, "superadmin") == [
        ("acme", "active", "superadmin", []),
        ("globex", "active", "member", ["viewer"]),
    ]


def _grant_cross_view(api, personas, *persona_names: str) -> None:
    sa = api("superadmin")
    body = {"key": "overseer", "name": "Overseer", "permissions": ["tenant.cross_view"]}
    assert sa.post("/api/v1/roles", json=body).status_code == 201
    for name in persona_names:
        principal = {"type": "user", "id": str(personas.users[name].id)}
        r = sa.post("/api/v1/grants", json={"principal": principal, "role": "overseer"})
        assert r.status_code == 201, r.text


def test_my_tenants_cross_view_user_lists_every_tenant_read_only(api, personas):
    _grant_cross_view(api, personas, "acme_member", "outsider")
    assert _switcher(api, "acme_member") == [
        ("acme", "active", "member", ["member"]),
        ("globex", "active", "cross_view", []),
    ]
    assert _switcher(api, "outsider") == [
        ("acme", "active", "cross_view", []),
        ("globex", "active", "cross_view", []),
    ]
    # Listed, and readable, but not writable: cross_view is a read-only permission.
    assert api("outsider").get("/api/v1/tenants/globex").status_code == 200
    assert api("outsider").patch("/api/v1/tenants/globex", json={"name": "Mine"}).status_code == 403


def test_my_tenants_shows_a_suspended_tenant_with_its_status(api):
    assert api("superadmin").patch("/api/v1/tenants/globex", json={"status": "suspended"}).status_code == 200
    assert _switcher(api, "globex_member") == [("globex", "suspended", "member", ["member"])]
    assert [(slug, status) for slug, status, _, _ in _switcher(api, "superadmin")] == [
        ("acme", "active"),
        ("globex", "suspended"),
    ]


def test_my_tenants_statement_count_does_not_grow_with_the_tenants(api, clean_db, personas):
    def statements(persona: str) -> int:
        api(persona).get(f"{ME}/tenants")  # warm the permission cache
        seen: list[str] = []

        def record(_conn, _cursor, statement, *_args) -> None:  # noqa: ANN001
            if statement != "BEGIN" and "set_config(" not in statement:  # transaction bookkeeping
                seen.append(statement)

        event.listen(clean_db.engine, "before_cursor_execute", record)
        try:
            assert api(persona).get(f"{ME}/tenants").status_code == 200
        finally:
            event.remove(clean_db.engine, "before_cursor_execute", record)
        return len(seen)

    before = {p: statements(p) for p in ("superadmin", "acme_admin")}
    sa = api("superadmin")
    for i in range(6):
        assert (
            sa.post("/api/v1/tenants", json={"slug": f"extra-{i}", "name": f"Extra {i}"}).status_code == 201
        )
        r = sa.post(
            f"/api/v1/tenants/extra-{i}/members",
            json={"user_id": str(personas.users["acme_admin"].id), "role": "viewer"},
        )
        assert r.status_code == 201, r.text
    assert len(api("superadmin").get(f"{ME}/tenants").json()) == 8
    assert len(api("acme_admin").get(f"{ME}/tenants").json()) == 7
    after = {p: statements(p) for p in ("superadmin", "acme_admin")}
    assert after == before
    # Principal (session, user, permission version), tenants, memberships and roles, two counts.
    assert max(after.values()) <= 8


def test_my_tenants_two_tenants_in_slug_order(api, personas):
    api("superadmin").post(
        "/api/v1/tenants/acme/members",
        json={"user_id": str(personas.users["globex_member"].id), "role": "viewer"},
    )
    rows = api("globex_member").get(f"{ME}/tenants").json()
    assert [(t["slug"], t["roles"], t["is_default"]) for t in rows] == [
        ("acme", ["viewer"], False),
        ("globex", ["member"], True),
    ]


def test_my_tenants_key_restricted_to_one_tenant_shows_only_that_tenant(api, client, personas):
    api("superadmin").post(
        "/api/v1/tenants/acme/members", json={"user_id": str(personas.users["globex_member"].id)}
    )
    key = _create_key(client, personas.tokens["globex_member"], tenant_id=str(personas.acme.id))["token"]
    rows = client.get(f"{ME}/tenants", headers=_auth(key)).json()
    assert [t["slug"] for t in rows] == ["acme"]


# --- sessions ------------------------------------------------------------------------------


def test_list_sessions_marks_the_current_one(api, client, db, personas):
    other = login_token(db, "acme.member@example.com")
    r = client.get(f"{ME}/sessions", headers=_auth(personas.tokens["acme_member"]))
    assert r.status_code == 200
    rows = r.json()
    assert len(rows) == 2
    assert sorted(s["current"] for s in rows) == [False, True]
    assert "token" not in rows[0]
    assert "token_hash" not in rows[0]
    mine = client.get(f"{ME}/sessions", headers=_auth(other)).json()
    assert {s["id"] for s in mine} == {s["id"] for s in rows}
    assert [s["id"] for s in rows if s["current"]] != [s["id"] for s in mine if s["current"]]


def test_list_sessions_shows_only_own_sessions(api, personas):
    rows = api("acme_viewer").get(f"{ME}/sessions").json()
    assert len(rows) == 1
    assert rows[0]["current"] is True


def test_revoke_session_signs_out_that_session_only(api, client, db, personas):
    current = personas.tokens["acme_member"]
    other = login_token(db, "acme.member@example.com")
    other_id = next(
        s["id"] for s in client.get(f"{ME}/sessions", headers=_auth(other)).json() if s["current"]
    )
    r = client.delete(f"{ME}/sessions/{other_id}", headers=_auth(current))
    assert r.status_code == 204, r.text
    _problem(client.get(ME, headers=_auth(other)), 401, "invalid_token")
    assert client.get(ME, headers=_auth(current)).status_code == 200
    assert len(client.get(f"{ME}/sessions", headers=_auth(current)).json()) == 1
    _problem(client.delete(f"{ME}/sessions/{other_id}", headers=_auth(current)), 404, "not_found")
    assert _audit_count(db, "auth.session_revoke") == 1


def test_revoke_session_of_another_user_404_and_it_keeps_working(api, client, personas):
    victim = personas.tokens["acme_viewer"]
    victim_id = client.get(f"{ME}/sessions", headers=_auth(victim)).json()[0]["id"]
    for persona in ("acme_admin", "superadmin"):
        _problem(api(persona).delete(f"{ME}/sessions/{victim_id}"), 404, "not_found")
    assert client.get(ME, headers=_auth(victim)).status_code == 200


def test_revoke_session_unknown_404_and_bad_id_422(api):
    _problem(api("acme_member").delete(f"{ME}/sessions/{uuid.uuid4()}"), 404, "not_found")
    _problem(api("acme_member").delete(f"{ME}/sessions/not-a-uuid"), 422, "validation_error")


def test_revoke_all_sessions_signs_out_everywhere_including_current(api, client, db, personas):
    current = personas.tokens["acme_member"]
    other = login_token(db, "acme.member@example.com")
    r = client.delete(f"{ME}/sessions", headers=_auth(current))
    assert r.status_code == 204
    _problem(client.get(ME, headers=_auth(current)), 401, "invalid_token")
    _problem(client.get(ME, headers=_auth(other)), 401, "invalid_token")
    assert client.get(ME, headers=_auth(personas.tokens["acme_viewer"])).status_code == 200
    assert login_token(db, "acme.member@example.com")


@pytest.mark.parametrize(("method", "path"), [("GET", f"{ME}/sessions"), ("DELETE", f"{ME}/sessions")])
def test_sessions_without_token_401(api, method, path):
    _problem(api(None).request(method, path), 401, "unauthenticated")


def test_revoke_sessions_with_an_api_key_403_session_required(api, client, personas):
    token = personas.tokens["acme_member"]
    key = _create_key(client, token)["token"]
    session_id = client.get(f"{ME}/sessions", headers=_auth(token)).json()[0]["id"]
    _problem(client.delete(f"{ME}/sessions/{session_id}", headers=_auth(key)), 403, "session_required")
    _problem(client.delete(f"{ME}/sessions", headers=_auth(key)), 403, "session_required")
    assert client.get(ME, headers=_auth(token)).status_code == 200


# --- API keys ------------------------------------------------------------------------------


def test_create_api_key_shows_token_once_and_it_authenticates(api, client, db, personas):
    r = api("acme_member").post(KEYS, json={"name": " deploy bot ", "scope": "read_write"})
    assert r.status_code == 201, r.text
    body = r.json()
    token = body["token"]
    assert token.startswith("tnt_pat_")
    assert len(token) > 40
    assert token.startswith(body["prefix"])
    assert body["name"] == "deploy bot"
    assert body["scope"] == "read_write"
    assert body["tenant_id"] is None
    assert body["last_used_at"] is None
    listed = api("acme_member").get(KEYS).json()
    assert [k["id"] for k in listed] == [body["id"]]
    assert "token" not in listed[0]
    assert "token_hash" not in listed[0]
    assert token not in api("acme_member").get(KEYS).text
    me = client.get(ME, headers=_auth(token))
    assert me.status_code == 200
    assert me.json()["email"] == "acme.member@example.com"
    assert client.get("/api/v1/tenants/acme/members", headers=_auth(token)).status_code == 200
    assert _audit_count(db, "api_key.create") == 1
    with db.sessions() as s:
        assert token not in {k.token_hash for k in s.scalars(select(ApiKey))}


def test_create_api_key_default_scope_is_read_and_expiry_is_set(api):
    body = api("acme_member").post(KEYS, json={"name": "reader"}).json()
    assert body["scope"] == "read"
    assert body["expires_at"]


def test_list_api_keys_shows_only_own_live_keys(api, client, personas):
    mine = _create_key(client, personas.tokens["acme_member"], name="mine")
    gone = _create_key(client, personas.tokens["acme_member"], name="gone")
    _create_key(client, personas.tokens["acme_viewer"], name="theirs")
    api("acme_member").delete(f"{KEYS}/{gone['id']}")
    assert [k["name"] for k in api("acme_member").get(KEYS).json()] == [mine["name"]]
    assert [k["name"] for k in api("acme_viewer").get(KEYS).json()] == ["theirs"]
    assert api("outsider").get(KEYS).json() == []


def test_revoke_api_key_then_the_key_gets_401(api, client, db, personas):
    key = _create_key(client, personas.tokens["acme_member"])
    assert client.get(ME, headers=_auth(key["token"])).status_code == 200
    r = api("acme_member").delete(f"{KEYS}/{key['id']}")
    assert r.status_code == 204
    _problem(client.get(ME, headers=_auth(key["token"])), 401, "invalid_token")
    _problem(api("acme_member").delete(f"{KEYS}/{key['id']}"), 404, "not_found")
    assert _audit_count(db, "api_key.revoke") == 1


def test_revoke_api_key_of_another_user_404_and_it_keeps_working(api, client, personas):
    key = _create_key(client, personas.tokens["acme_viewer"])
    for persona in ("acme_admin", "superadmin"):
        _problem(api(persona).delete(f"{KEYS}/{key['id']}"), 404, "not_found")
    assert client.get(ME, headers=_auth(key["token"])).status_code == 200


def test_revoke_api_key_unknown_404_and_bad_id_422(api):
    _problem(api("acme_member").delete(f"{KEYS}/{uuid.uuid4()}"), 404, "not_found")
    _problem(api("acme_member").delete(f"{KEYS}/not-a-uuid"), 422, "validation_error")


def test_create_api_key_restricted_to_own_tenant(api, client, personas):
    body = _create_key(client, personas.tokens["acme_member"], tenant_id=str(personas.acme.id))
    assert body["tenant_id"] == str(personas.acme.id)
    assert client.get("/api/v1/tenants/acme/members", headers=_auth(body["token"])).status_code == 200


@pytest.mark.parametrize(
    ("persona", "which"),
    [
        ("acme_member", "globex"),
        ("acme_member", "unknown"),
        ("acme_member", "deleted"),
        ("superadmin", "unknown"),
        ("superadmin", "deleted"),
    ],
)
def test_create_api_key_for_tenant_you_cannot_see_404(api, db, personas, persona, which):
    if which == "deleted":
        api("superadmin").post("/api/v1/tenants", json={"slug": "gone", "name": "Gone"})
        target = api("superadmin").get("/api/v1/tenants/gone").json()["id"]
        assert api("superadmin").delete("/api/v1/tenants/gone").status_code == 200
    elif which == "unknown":
        target = str(uuid.uuid4())
    else:
        target = str(personas.globex.id)
    before = _all_audit(db), _key_rows(db)
    r = api(persona).post(KEYS, json={"name": "x", "tenant_id": target})
    _problem(r, 404, "not_found")
    assert (_all_audit(db), _key_rows(db)) == before


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "x", "expires_at": _iso(utcnow() - timedelta(days=1))}, "invalid_expiry"),
        ({"name": "x", "expires_at": "2001-01-01T00:00:00+00:00"}, "invalid_expiry"),
        ({"name": "x", "expires_at": _iso(utcnow() + timedelta(days=400))}, "expiry_too_far"),
        ({"name": "x", "expires_at": "2999-01-01T00:00:00"}, "invalid_expiry"),
        ({"name": "x", "expires_at": "tomorrow"}, "validation_error"),
        ({"name": "x", "scope": "admin"}, "validation_error"),
        ({"name": ""}, "validation_error"),
        ({"name": "   "}, "validation_error"),
        ({"name": "n" * 101}, "validation_error"),
        ({}, "validation_error"),
        ({"name": "x", "tenant_id": "acme"}, "validation_error"),
        ({"name": "x", "user_id": str(uuid.uuid4())}, "validation_error"),
        ({"name": "x", "token": "tnt_pat_chosen"}, "validation_error"),
    ],
)
def test_create_api_key_bad_input_422_nothing_written(api, db, body, code):
    before = _all_audit(db), _key_rows(db)
    _problem(api("acme_member").post(KEYS, json=body), 422, code)
    assert (_all_audit(db), _key_rows(db)) == before


def test_create_api_key_expiry_within_max_accepted(api):
    r = api("acme_member").post(KEYS, json={"name": "x", "expires_at": _iso(utcnow() + timedelta(days=30))})
    assert r.status_code == 201, r.text


def test_api_key_read_scope_reads_but_never_writes(api, client, db, personas):
    key = _create_key(client, personas.tokens["acme_admin"], scope="read")["token"]
    h = _auth(key)
    assert client.get(ME, headers=h).status_code == 200
    assert client.get("/api/v1/tenants/acme/members", headers=h).status_code == 200
    assert client.get("/api/v1/tenants/acme", headers=h).status_code == 200
    outsider = str(personas.users["outsider"].id)
    before = _all_audit(db)
    for method, path, body, code in [
        ("POST", "/api/v1/tenants/acme/members", {"user_id": outsider}, "key_read_only"),
        (
            "PATCH",
            f"/api/v1/tenants/acme/members/{personas.users['acme_member'].id}",
            {"role": "viewer"},
            "key_read_only",
        ),
        ("DELETE", f"/api/v1/tenants/acme/members/{personas.users['acme_member'].id}", None, "key_read_only"),
        ("PATCH", ME, {"first_name": "x"}, "key_read_only"),
        # Account security is never done with any key, read or not.
        ("POST", KEYS, {"name": "child"}, "session_required"),
        ("DELETE", f"{ME}/sessions", None, "session_required"),
    ]:
        kwargs = {"json": body} if body is not None else {}
        _problem(client.request(method, path, headers=h, **kwargs), 403, code)
    assert _all_audit(db) == before
    assert _members_of_acme(api) == 4


def test_api_key_restricted_to_acme_cannot_reach_globex_or_global(api, client, personas):
    key = _create_key(client, personas.tokens["superadmin"], tenant_id=str(personas.acme.id))["token"]
    h = _auth(key)
    assert client.get("/api/v1/tenants/acme/members", headers=h).status_code == 200
    _problem(client.get("/api/v1/tenants/globex", headers=h), 404, "not_found")
    _problem(client.get("/api/v1/tenants/globex/members", headers=h), 404, "not_found")
    _problem(client.get(f"/api/v1/tenants/{personas.globex.id}/members", headers=h), 404, "not_found")
    _problem(client.get("/api/v1/users", headers=h), 403, "permission_denied")
    _problem(
        client.post("/api/v1/tenants", json={"slug": "viakey", "name": "Via key"}, headers=h),
        403,
        "permission_denied",
    )
    assert api("superadmin").get("/api/v1/tenants/viakey").status_code == 404


def test_api_key_restricted_to_acme_lists_only_acme(api, client, personas):
    key = _create_key(client, personas.tokens["acme_admin"], tenant_id=str(personas.acme.id))["token"]
    assert [t["slug"] for t in client.get("/api/v1/tenants", headers=_auth(key)).json()["items"]] == ["acme"]


def test_api_key_of_superadmin_restricted_to_acme_lists_acme(api, client, personas):
    key = _create_key(client, personas.tokens["superadmin"], tenant_id=str(personas.acme.id))["token"]
    assert client.get("/api/v1/tenants/acme", headers=_auth(key)).status_code == 200
    assert [t["slug"] for t in client.get("/api/v1/tenants", headers=_auth(key)).json()["items"]] == ["acme"]


def test_api_key_restricted_to_acme_still_manages_members_there(api, client, personas):
    key = _create_key(client, personas.tokens["acme_admin"], tenant_id=str(personas.acme.id))["token"]
    r = client.post(
        "/api/v1/tenants/acme/members",
        json={"user_id": str(personas.users["outsider"].id)},
        headers=_auth(key),
    )
    assert r.status_code == 202, r.text  # a tenant admin invites; the account joins by accepting


def test_api_key_cannot_create_or_revoke_keys_403_session_required(api, client, db, personas):
    parent = _create_key(client, personas.tokens["acme_member"])
    before = _key_rows(db)
    r = client.post(KEYS, json={"name": "child", "scope": "read_write"}, headers=_auth(parent["token"]))
    _problem(r, 403, "session_required")
    assert _key_rows(db) == before
    r = client.delete(f"{KEYS}/{parent['id']}", headers=_auth(parent["token"]))
    _problem(r, 403, "session_required")
    assert client.get(ME, headers=_auth(parent["token"])).status_code == 200


def test_api_key_lists_keys_without_tokens(api, client, personas):
    key = _create_key(client, personas.tokens["acme_member"], scope="read")
    listed = client.get(KEYS, headers=_auth(key["token"])).json()
    assert [k["id"] for k in listed] == [key["id"]]
    assert "token" not in listed[0]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", KEYS),
        ("POST", KEYS),
        ("DELETE", f"{KEYS}/00000000-0000-7000-8000-000000000001"),
        ("GET", f"{ME}/tenants"),
    ],
)
def test_keys_and_tenants_without_token_401(api, method, path):
    kwargs = {"json": {"name": "x"}} if method == "POST" else {}
    _problem(api(None).request(method, path, **kwargs), 401, "unauthenticated")


def test_outsider_on_tenant_members_403_no_tenant(api):
    _problem(api("outsider").get("/api/v1/tenants/acme/members"), 403, "no_tenant")
    _problem(api("outsider").get("/api/v1/tenants/globex/members"), 403, "no_tenant")
    _problem(api("outsider").get("/api/v1/tenants/nowhere/members"), 403, "no_tenant")

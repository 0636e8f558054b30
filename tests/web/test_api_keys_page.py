"""Profile → API keys console page: create (token shown once), list, revoke."""

from __future__ import annotations

from sqlalchemy import select

from tenantry.db.tables import ApiKey

XSS = "<script>alert(1)</script>"


def _keys(db, personas, persona: str) -> list[ApiKey]:
    with db.unit_of_work() as session:
        return list(session.scalars(select(ApiKey).where(ApiKey.user_id == personas.users[persona].id)))


def test_anonymous_is_sent_to_login(browser):
    assert browser(None).get("/profile/api-keys").headers["location"] == "/login"


def test_create_shows_the_token_once_then_list_and_revoke(browser, client, clean_db, personas):
    b = browser("acme_member")
    assert 'href="/profile/api-keys"' in b.get("/profile").text
    r = b.post("/profile/api-keys", {"name": XSS, "scope": "read", "tenant": str(personas.acme.id)})
    assert r.status_code == 200
    token = r.text.split('id="new-token">')[1].split("<")[0]
    assert token and XSS not in r.text and "&lt;script&gt;" in r.text
    listed = b.get("/profile/api-keys").text
    assert token not in listed and 'id="api-keys"' in listed and "Acme Corp" in listed
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    # A key is no session: it cannot mint or revoke keys through the console either (403).
    via_key = client.post(
        "/profile/api-keys",
        data={"name": "chained", "scope": "read"},
        headers={"Authorization": f"Bearer {token}"},
        follow_redirects=False,
    )
    assert via_key.status_code == 403
    (key,) = _keys(clean_db, personas, "acme_member")
    assert b.post(f"/profile/api-keys/{key.id}/revoke").status_code == 303
    assert client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_bad_input_is_shown_next_to_the_field(browser, clean_db, personas):
    b = browser("acme_member")
    r = b.post("/profile/api-keys", {"name": "ok", "scope": "everything"})
    assert r.status_code == 400 and 'id="scope-error"' in r.text
    empty = b.post("/profile/api-keys", {"name": " ", "scope": "read"})
    assert empty.status_code == 400 and 'id="name-error"' in empty.text
    assert _keys(clean_db, personas, "acme_member") == []


def test_other_tenant_and_other_users_keys_are_404(browser, clean_db, personas):
    b = browser("acme_member")
    hidden = b.post("/profile/api-keys", {"name": "x", "scope": "read", "tenant": str(personas.globex.id)})
    assert hidden.status_code == 404
    assert _keys(clean_db, personas, "acme_member") == []
    g = browser("globex_member")
    assert g.post("/profile/api-keys", {"name": "theirs", "scope": "read"}).status_code == 200
    (theirs,) = _keys(clean_db, personas, "globex_member")
    assert b.post(f"/profile/api-keys/{theirs.id}/revoke").status_code == 404
    assert b.post("/profile/api-keys/not-a-uuid/revoke").status_code == 404
    with clean_db.unit_of_work() as session:
        assert session.get(ApiKey, theirs.id).revoked_at is None


def test_csrf_missing_is_refused(browser, clean_db, personas):
    b = browser("acme_member")
    assert b.post("/profile/api-keys", {"name": "x", "scope": "read"}, csrf=False).status_code == 403
    assert _keys(clean_db, personas, "acme_member") == []

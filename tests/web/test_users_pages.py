"""Superadmin user pages: list with filters and cursor, detail with tenants, (de)activate, invite."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tenantry.db.tables import User
from tests.security.helpers import link_token, outbox

XSS = "<script>alert(1)</script>"
MISSING = "/admin/users/0190b0e8-0000-7000-8000-000000000000"


def _page(personas, persona: str) -> str:
    return f"/admin/users/{personas.users[persona].id}"


def test_anonymous_is_sent_to_login(browser, personas):
    b = browser(None)
    for path in ("/admin/users", _page(personas, "acme_member")):
        assert b.get(path).headers["location"] == "/login"


@pytest.mark.parametrize("persona", ["acme_admin", "acme_member", "outsider"])
def test_user_pages_are_403_for_everybody_but_superadmins(browser, personas, persona, clean_db):
    b = browser(persona)
    assert b.get("/admin/users").status_code == 403
    assert b.get(_page(personas, "globex_member")).status_code == 403
    assert b.post("/admin/users", {"email": "probe@example.com"}).status_code == 403
    assert b.post(_page(personas, "globex_member") + "/active", {"active": "false"}).status_code == 403
    nav = b.get("/dashboard").text
    assert "/admin/users" not in nav
    with clean_db.unit_of_work() as session:
        assert session.scalar(select(User).where(User.email == "probe@example.com")) is None
        assert session.get(User, personas.users["globex_member"].id).active


def test_list_filters_and_pagination(browser, monkeypatch):
    from tenantry.web.routes import users

    b = browser("superadmin")
    text = b.get("/admin/users").text
    assert "acme.member@example.com" in text and "globex.admin@example.com" in text
    assert "/admin/users" in text[text.index('<nav class="menu"') : text.index("</nav>")]
    only = b.get("/admin/users?email=globex").text
    assert "globex.member@example.com" in only and "acme.member@example.com" not in only
    assert b.get("/admin/users?active=maybe").status_code == 422
    monkeypatch.setattr(users, "PAGE_SIZE", 2)
    first = b.get("/admin/users").text
    href = first.split('id="next-page" href="')[1].split('"')[0].replace("&amp;", "&")
    assert b.get(href).status_code == 200
    assert b.get("/admin/users?cursor=garbage").status_code == 422


def test_detail_shows_tenants_and_roles(browser, personas):
    b = browser("superadmin")
    text = b.get(_page(personas, "acme_admin")).text
    assert 'id="user-tenants"' in text and "Acme Corp" in text and "tenant_admin" in text
    assert b.get(MISSING).status_code == 404
    assert b.get("/admin/users/not-a-uuid").status_code == 404


def test_deactivate_and_reactivate(browser, personas, clean_db):
    b = browser("superadmin")
    page = _page(personas, "acme_member")
    assert b.post(page + "/active", {"active": "false"}).status_code == 303
    assert 'id="user-status">deactivated<' in b.get(page).text
    assert b.post(page + "/active", {"active": "true"}).status_code == 303
    assert 'id="user-status">active<' in b.get(page).text
    bad = b.post(page + "/active", {"active": "perhaps"})
    assert bad.status_code == 400 and 'id="active-error"' in bad.text
    self_off = b.post(_page(personas, "superadmin") + "/active", {"active": "false"})
    assert self_off.status_code == 409 and 'id="active-error"' in self_off.text


def test_invite_a_user_by_email(browser, clean_db):
    b = browser("superadmin")
    r = b.post("/admin/users", {"email": "fresh@example.com", "first_name": XSS})
    assert r.status_code == 303
    detail = b.get(r.headers["location"]).text
    assert "fresh@example.com" in detail and XSS not in detail and "&lt;script&gt;" in detail
    assert link_token(outbox(clean_db, to="fresh@example.com", kind="invitation")[-1].body_text)
    assert XSS not in b.get("/admin/users").text


def test_invite_bad_input_is_shown_next_to_the_field(browser, clean_db):
    b = browser("superadmin")
    bad = b.post("/admin/users", {"email": "not an email", "first_name": "Nobody"})
    assert bad.status_code == 400 and 'id="email-error"' in bad.text and 'value="Nobody"' in bad.text
    taken = b.post("/admin/users", {"email": "acme.member@example.com"})
    assert taken.status_code == 409 and 'id="email-error"' in taken.text
    with clean_db.unit_of_work() as session:
        assert session.scalar(select(User).where(User.first_name == "Nobody")) is None


def test_csrf_missing_is_refused(browser, personas, clean_db):
    b = browser("superadmin")
    assert b.post("/admin/users", {"email": "csrf@example.com"}, csrf=False).status_code == 403
    r = b.post(_page(personas, "acme_member") + "/active", {"active": "false"}, csrf=False)
    assert r.status_code == 403
    with clean_db.unit_of_work() as session:
        assert session.scalar(select(User).where(User.email == "csrf@example.com")) is None
        assert session.get(User, personas.users["acme_member"].id).active

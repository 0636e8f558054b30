"""My tenant console page: members with roles, add by email, change role, remove, invitations."""

from __future__ import annotations

from sqlalchemy import select

from tenantry.db.tables import Membership, User
from tests.security.helpers import outbox

XSS = "<script>alert(1)</script>"


def _member_id(personas, persona: str) -> str:
    return str(personas.users[persona].id)


def test_anonymous_is_sent_to_login(browser, personas):
    b = browser(None)
    assert b.get("/my-tenant").headers["location"] == "/login"
    r = b.post(f"/my-tenant/members/{_member_id(personas, 'acme_member')}/remove", csrf=False)
    assert r.headers["location"] == "/login"


def test_members_with_their_roles_and_search(browser):
    b = browser("acme_admin")
    text = b.get("/my-tenant").text
    assert 'id="members"' in text
    assert "acme.member@example.com" in text and "globex.member@example.com" not in text
    assert "tenant_admin" in text and 'action="/my-tenant/members"' in text
    found = b.get("/my-tenant?q=auditor").text
    assert "acme.auditor@example.com" in found and "acme.member@example.com" not in found


def test_members_pagination_by_the_services_cursor(browser, monkeypatch):
    from tenantry.web.routes import members

    monkeypatch.setattr(members, "PAGE_SIZE", 2)
    b = browser("acme_admin")
    first = b.get("/my-tenant").text
    assert 'id="next-page"' in first
    href = first.split('id="next-page" href="')[1].split('"')[0].replace("&amp;", "&")
    second = b.get(href)
    assert second.status_code == 200 and 'id="members"' in second.text
    assert b.get("/my-tenant?cursor=garbage").status_code == 422


def test_member_without_member_rights_sees_no_management(browser):
    r = browser("acme_viewer").get("/my-tenant")
    assert r.status_code == 200
    assert 'action="/my-tenant/members"' not in r.text and "/remove" not in r.text


def test_not_permitted_writes_are_403(browser, personas, clean_db):
    b = browser("acme_member")
    assert b.post("/my-tenant/members", {"email": "x@example.com", "role": "viewer"}).status_code == 403
    target = _member_id(personas, "acme_viewer")
    assert b.post(f"/my-tenant/members/{target}/role", {"role": "member"}).status_code == 403
    assert b.post(f"/my-tenant/members/{target}/remove").status_code == 403
    with clean_db.unit_of_work() as session:
        assert session.scalar(select(User).where(User.email == "x@example.com")) is None


def test_other_tenants_member_is_404(browser, personas):
    b = browser("acme_admin")
    other = _member_id(personas, "globex_member")
    assert b.post(f"/my-tenant/members/{other}/role", {"role": "viewer"}).status_code == 404
    assert b.post(f"/my-tenant/members/{other}/remove").status_code == 404
    assert b.post("/my-tenant/members/not-a-uuid/remove").status_code == 404


def test_add_member_answers_the_same_for_known_and_unknown_addresses(browser, clean_db):
    b = browser("acme_admin")
    known = b.post("/my-tenant/members", {"email": "globex.member@example.com", "role": "viewer"})
    unknown = b.post("/my-tenant/members", {"email": "newcomer@example.com", "role": "viewer"})
    assert known.status_code == unknown.status_code == 200
    assert "globex.member@example.com was invited." in known.text
    assert "newcomer@example.com was invited." in unknown.text
    assert 'id="invitations"' in unknown.text and "newcomer@example.com" in unknown.text
    assert outbox(clean_db, to="newcomer@example.com")
    row = unknown.text.split("<td>newcomer@example.com</td>")[1]
    inv_id = row.split('action="/my-tenant/invitations/')[1].split("/")[0]
    assert b.post(f"/my-tenant/invitations/{inv_id}/revoke").status_code == 303
    assert "newcomer@example.com" not in b.get("/my-tenant").text


def test_add_member_bad_input_is_shown_next_to_the_field(browser, clean_db):
    b = browser("acme_admin")
    bad = b.post("/my-tenant/members", {"email": "not an email", "role": "viewer"})
    assert bad.status_code == 400 and 'id="email-error"' in bad.text
    assert 'value="not an email"' in bad.text
    role = b.post("/my-tenant/members", {"email": "someone@example.com", "role": "nope"})
    assert role.status_code == 400 and 'id="role-error"' in role.text
    with clean_db.unit_of_work() as session:
        assert session.scalar(select(User).where(User.email == "someone@example.com")) is None


def test_change_role_and_remove(browser, personas, clean_db):
    b = browser("acme_admin")
    target = _member_id(personas, "acme_viewer")
    assert b.post(f"/my-tenant/members/{target}/role", {"role": "member"}).status_code == 303
    bad = b.post(f"/my-tenant/members/{target}/role", {"role": "nope"})
    assert bad.status_code == 400 and f'id="role-{target}-error"' in bad.text
    assert b.post(f"/my-tenant/members/{target}/remove").status_code == 303
    assert "acme.viewer@example.com" not in b.get("/my-tenant").text
    with clean_db.unit_of_work() as session:
        assert (
            session.scalar(select(Membership).where(Membership.user_id == personas.users["acme_viewer"].id))
            is None
        )


def test_last_admin_cannot_remove_themselves(browser, personas):
    b = browser("acme_admin")
    me = _member_id(personas, "acme_admin")
    r = b.post(f"/my-tenant/members/{me}/remove")
    assert r.status_code == 409 and f'id="remove-{me}-error"' in r.text


def test_csrf_missing_is_refused(browser, personas, clean_db):
    b = browser("acme_admin")
    assert (
        b.post("/my-tenant/members", {"email": "csrf@example.com", "role": "viewer"}, csrf=False).status_code
        == 403
    )
    target = _member_id(personas, "acme_viewer")
    assert b.post(f"/my-tenant/members/{target}/remove", csrf=False).status_code == 403
    assert "acme.viewer@example.com" in b.get("/my-tenant").text


def test_member_names_are_escaped(browser, api):
    assert api("acme_member").patch("/api/v1/me", json={"first_name": XSS}).status_code == 200
    text = browser("acme_admin").get("/my-tenant").text
    assert XSS not in text and "&lt;script&gt;" in text

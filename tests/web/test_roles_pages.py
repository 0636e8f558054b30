"""Roles console pages: roles with permissions, custom roles from the catalog with risk levels
and the "I understand" acknowledgement for dangerous permissions."""

from __future__ import annotations

from sqlalchemy import select

from tenantry.db import scoping
from tenantry.db.tables import Role, TenantRole

XSS = "<script>alert(1)</script>"


def _tenant_roles(db, personas) -> list[TenantRole]:
    with db.unit_of_work() as session, scoping.in_tenant(session, personas.acme.id):
        return list(session.scalars(select(TenantRole)))


def test_anonymous_is_sent_to_login(browser):
    for path in ("/roles", "/roles/viewer"):
        assert browser(None).get(path).headers["location"] == "/login"


def test_roles_with_their_permissions(browser):
    b = browser("acme_admin")
    text = b.get("/roles").text
    assert 'id="roles"' in text and "tenant_admin" in text and "member.read" in text
    assert 'href="/roles"' in text[text.index('<nav class="menu"') : text.index("</nav>")]
    assert "(dangerous)" in text and 'name="acknowledge_risk"' in text
    assert 'value="tenant.delete"' not in text  # global-only permissions are not offered in a tenant
    assert b.get("/roles/viewer").status_code == 200
    assert b.get("/roles/no_such_role").status_code == 404


def test_not_permitted_is_403(browser, clean_db, personas):
    b = browser("acme_viewer")
    assert 'action="/roles"' not in b.get("/roles").text  # may read roles, not manage them
    r = b.post("/roles", {"key": "probe", "name": "Probe", "permissions": "member.read"})
    assert r.status_code == 403
    assert _tenant_roles(clean_db, personas) == []


def test_no_tenant_goes_to_the_dashboard(browser):
    assert browser("outsider").get("/roles").headers["location"] == "/dashboard"


def test_create_and_edit_a_tenant_role(browser, clean_db, personas):
    b = browser("acme_admin")
    r = b.post("/roles", {"key": "reader", "name": XSS, "permissions": "member.read"})
    assert r.status_code == 303
    text = b.get("/roles").text
    assert XSS not in text and "&lt;script&gt;" in text
    page = b.get("/roles/reader").text
    assert 'id="perm-member.read" name="permissions" value="member.read" checked' in page
    assert b.post("/roles/reader", {"name": "Reader", "permissions": "audit.read"}).status_code == 303
    (role,) = _tenant_roles(clean_db, personas)
    assert role.name == "Reader" and role.permissions == ["audit.read"]


def test_dangerous_permission_needs_the_acknowledgement(browser, clean_db, personas):
    b = browser("acme_admin")
    data = {"key": "purger", "name": "Purger", "permissions": "trash.purge"}
    r = b.post("/roles", data)
    assert r.status_code == 400 and 'id="acknowledge_risk-error"' in r.text
    assert 'value="purger"' in r.text  # what was typed stays
    assert _tenant_roles(clean_db, personas) == []
    assert b.post("/roles", {**data, "acknowledge_risk": "yes"}).status_code == 303
    assert [x.key for x in _tenant_roles(clean_db, personas)] == ["purger"]


def test_bad_input_is_shown_next_to_the_field(browser, clean_db, personas):
    b = browser("acme_admin")
    bad_key = b.post("/roles", {"key": "Bad Key", "name": "X", "permissions": "member.read"})
    assert bad_key.status_code == 400 and 'id="key-error"' in bad_key.text
    unknown = b.post("/roles", {"key": "odd", "name": "X", "permissions": "no.such"})
    assert unknown.status_code == 400 and 'id="permissions-error"' in unknown.text
    taken = b.post("/roles", {"key": "viewer", "name": "X", "permissions": "member.read"})
    assert taken.status_code == 409 and 'id="key-error"' in taken.text
    assert _tenant_roles(clean_db, personas) == []
    b.post("/roles", {"key": "reader", "name": "Reader", "permissions": "member.read"})
    empty = b.post("/roles/reader", {"name": " ", "permissions": "member.read"})
    assert empty.status_code == 400 and 'id="name-error"' in empty.text


def test_other_tenants_role_is_404(browser, clean_db, personas):
    g = browser("globex_admin")
    assert (
        g.post("/roles", {"key": "globex_only", "name": "G", "permissions": "member.read"}).status_code == 303
    )
    b = browser("acme_admin")
    assert b.get("/roles/globex_only").status_code == 404
    assert (
        b.post("/roles/globex_only", {"name": "Taken over", "permissions": "member.read"}).status_code == 404
    )


def test_csrf_missing_is_refused(browser, clean_db, personas):
    b = browser("acme_admin")
    r = b.post("/roles", {"key": "csrf_probe", "name": "X", "permissions": "member.read"}, csrf=False)
    assert r.status_code == 403
    assert _tenant_roles(clean_db, personas) == []


def test_superadmin_global_roles_in_all_tenants_mode(browser, clean_db):
    b = browser("superadmin")
    b.post("/switch-tenant", {"tenant": "all"})
    text = b.get("/roles").text
    assert 'value="tenant.delete"' in text
    r = b.post("/roles", {"key": "suspender", "name": "S", "permissions": "tenant.suspend"})
    assert r.status_code == 400 and 'id="acknowledge_risk-error"' in r.text
    ok = b.post(
        "/roles",
        {"key": "suspender", "name": "S", "permissions": "tenant.suspend", "acknowledge_risk": "yes"},
    )
    assert ok.status_code == 303
    with clean_db.unit_of_work() as session:
        assert session.scalar(select(Role).where(Role.key == "suspender")) is not None

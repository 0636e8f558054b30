"""Resources console pages: table with filter/sort/cursor, forms from the type's JSON Schema."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tenantry.authz import system_principal
from tenantry.db import scoping
from tenantry.db.tables import Resource
from tenantry.services import resource_types
from tenantry.services.context import ServiceContext

XSS = "<script>alert(1)</script>"


@pytest.fixture(autouse=True)
def _types(clean_db):
    with clean_db.unit_of_work() as session:
        resource_types.ensure_builtin_types(ServiceContext(session=session, principal=system_principal("t")))


def _resources(db, personas, slug: str = "acme") -> list[Resource]:
    with db.unit_of_work() as session, scoping.in_tenant(session, personas.tenants[slug].id):
        return list(session.scalars(select(Resource)))


def test_anonymous_is_sent_to_login(browser):
    assert browser(None).get("/resources/host").headers["location"] == "/login"


def test_create_list_filter_and_edit(browser, clean_db, personas):
    b = browser("acme_admin")
    page = b.get("/resources/service").text
    assert 'name="attr-port"' in page and '<option value="tcp"' in page  # integer and enum fields
    r = b.post("/resources/host", {"name": XSS, "attr-ip_address": "10.0.0.1", "attr-os": "linux"})
    assert r.status_code == 303, r.text
    b.post("/resources/host", {"name": "beta", "attr-ip_address": "10.0.0.2"})
    text = b.get("/resources/host?sort=-name").text
    assert XSS not in text and "&lt;script&gt;" in text and "10.0.0.1" in text
    only = b.get("/resources/host?name=beta").text
    assert "10.0.0.2" in only and "10.0.0.1" not in only
    assert b.get("/resources/host?sort=colour").status_code == 422
    detail = r.headers["location"]
    assert (
        b.post(detail, {"name": "alpha", "attr-ip_address": "10.0.0.9", "attr-os": "bsd"}).status_code == 303
    )
    assert 'value="10.0.0.9"' in b.get(detail).text
    assert b.get("/resources/no_such_type").status_code == 404


def test_bad_input_is_shown_next_to_the_field(browser, clean_db, personas):
    b = browser("acme_admin")
    port = b.post("/resources/service", {"name": "web", "attr-port": "eighty"})
    assert port.status_code == 400 and 'id="attr-port-error"' in port.text and 'value="eighty"' in port.text
    schema = b.post("/resources/service", {"name": "web", "attr-port": "70000"})
    assert schema.status_code == 400 and 'id="attr-port-error"' in schema.text
    name = b.post("/resources/host", {"name": " ", "attr-ip_address": "10.0.0.3"})
    assert name.status_code == 400 and 'id="name-error"' in name.text
    assert _resources(clean_db, personas) == []


def test_not_permitted_and_other_tenant(browser, clean_db, personas):
    g = browser("globex_admin")
    r = g.post("/resources/host", {"name": "g1", "attr-ip_address": "10.1.0.1"})
    assert r.status_code == 303
    b = browser("acme_admin")
    assert b.get(r.headers["location"]).status_code == 404
    assert b.post(r.headers["location"], {"name": "taken"}).status_code == 404
    viewer = browser("acme_viewer")
    assert viewer.post("/resources/host", {"name": "v", "attr-ip_address": "10.0.0.4"}).status_code == 403
    assert _resources(clean_db, personas) == []


def test_csrf_missing_is_refused(browser, clean_db, personas):
    b = browser("acme_admin")
    r = b.post("/resources/host", {"name": "c", "attr-ip_address": "10.0.0.5"}, csrf=False)
    assert r.status_code == 403
    assert _resources(clean_db, personas) == []

"""Audit log console page: tenant events, All-tenants mode, filters, cursor, export links."""

from __future__ import annotations

import pytest

XSS = "<script>alert(1)</script>"


def _invite(api, persona: str, tenant: str, email: str) -> None:
    r = api(persona).post(f"/api/v1/tenants/{tenant}/members", json={"email": email, "role": "viewer"})
    assert r.status_code in (201, 202), r.text


def test_anonymous_is_sent_to_login(browser):
    assert browser(None).get("/audit").headers["location"] == "/login"


@pytest.mark.parametrize("persona", ["acme_member", "acme_viewer"])
def test_not_permitted_is_403(browser, persona):
    b = browser(persona)
    assert b.get("/audit").status_code == 403
    nav = b.get("/dashboard").text
    assert 'href="/audit"' not in nav


def test_no_tenant_goes_to_the_dashboard(browser):
    assert browser("outsider").get("/audit").headers["location"] == "/dashboard"


def test_tenant_events_only_and_filters(browser, api):
    _invite(api, "acme_admin", "acme", "acme.newcomer@example.com")
    _invite(api, "globex_admin", "globex", "globex.newcomer@example.com")
    b = browser("acme_admin")
    text = b.get("/audit").text
    assert 'href="/audit"' in text and 'id="audit"' in text
    assert "<td>member.invite</td>" in text and "acme.admin@example.com" in text
    assert "globex.admin@example.com" not in text  # the other tenant's events stay there
    none = b.get("/audit?action=tenant.delete").text
    assert "<td>member.invite</td>" not in none and "No events." in none
    prefix = b.get("/audit?action=member.*&since=2000-01-01&until=2999-12-31").text
    assert "<td>member.invite</td>" in prefix
    future = b.get("/audit?since=2999-01-01").text
    assert "No events." in future


def test_bad_filters_are_shown_next_to_the_field(browser):
    b = browser("acme_admin")
    r = b.get(f"/audit?actor={XSS}&since=yesterday")
    assert r.status_code == 400
    assert 'id="actor-error"' in r.text and 'id="since-error"' in r.text
    assert XSS not in r.text and "&lt;script&gt;" in r.text  # the typed text comes back escaped
    assert b.get("/audit?cursor=garbage").status_code == 422


def test_actor_filter_and_pagination(browser, api, personas, monkeypatch):
    from tenantry.web.routes import audit_log

    for i in range(3):
        _invite(api, "acme_admin", "acme", f"n{i}@example.com")
    monkeypatch.setattr(audit_log, "PAGE_SIZE", 2)
    b = browser("acme_admin")
    actor = personas.users["acme_admin"].id
    first = b.get(f"/audit?actor={actor}").text
    href = first.split('id="next-page" href="')[1].split('"')[0].replace("&amp;", "&")
    assert f"actor={actor}" in href
    assert b.get(href).status_code == 200
    other = b.get(f"/audit?actor={personas.users['acme_member'].id}").text
    assert "No events." in other


def test_export_links_reuse_the_apis_export(browser, api):
    _invite(api, "acme_admin", "acme", "exported@example.com")
    b = browser("acme_admin")
    text = b.get("/audit?action=member.invite").text
    csv_href = text.split('id="export-csv" href="')[1].split('"')[0].replace("&amp;", "&")
    assert csv_href.startswith("/api/v1/tenants/acme/audit?")
    r = b.client.get(csv_href)
    assert r.status_code == 200 and "member.invite" in r.text and "exported@example.com" in r.text
    jsonl = text.split('id="export-jsonl" href="')[1].split('"')[0].replace("&amp;", "&")
    assert b.client.get(jsonl).status_code == 200


def test_superadmin_all_tenants_mode_sees_every_event(browser, api):
    _invite(api, "globex_admin", "globex", "g.newcomer@example.com")
    b = browser("superadmin")
    b.post("/switch-tenant", {"tenant": "all"})
    text = b.get("/audit").text
    assert "globex.admin@example.com" in text
    assert 'href="/api/v1/audit?format=jsonl"' in text

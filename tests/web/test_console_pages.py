"""Console pages, route level: sign-in, guards, tenant context, CSRF, escaping, every page."""

from __future__ import annotations

import re
import uuid

import pyotp
import pytest
from sqlalchemy import select

from tenantry.authz import system_principal
from tenantry.db.tables import DeletionBatch, Tenant, User
from tenantry.services import memberships, resource_types, throttle, totp
from tenantry.services.context import ServiceContext
from tenantry.services.sessions import principal_of
from tests.personas import PASSWORD
from tests.security.helpers import NEW_PASSWORD, link_token, outbox, totp_code
from tests.settings_helpers import require_2fa

XSS = "<script>alert(1)</script>"
PAGES = ["/dashboard", "/my-tenant", "/admin/tenants", "/trash", "/profile", "/setup-2fa"]


def _tenant_page(personas, slug: str = "globex") -> str:
    return f"/admin/tenants/{personas.tenants[slug].id}"


# --- anonymous ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [*PAGES, "/admin/tenants/0190b0e8-0000-7000-8000-000000000000"])
def test_anonymous_is_sent_to_login(browser, path):
    r = browser(None).get(path)
    assert r.status_code == 303
    assert r.headers["location"] == "/login"


def test_root_leads_to_login_or_dashboard(browser):
    assert browser(None).get("/").headers["location"] == "/login"
    assert browser("acme_admin").get("/").headers["location"] == "/dashboard"


def test_public_pages_render_with_the_security_headers(browser):
    for path in ("/login", "/forgot-password", "/reset-password?token=x", "/invitations/accept?token=x"):
        r = browser(None).get(path)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["cache-control"] == "no-store"


def test_reset_page_explains_the_password_rules(browser, app):
    text = browser(None).get("/reset-password?token=abc").text
    assert f"At least {app.state.settings.password_min_length} characters" in text
    assert 'name="token" value="abc"' in text


# --- sign-in -----------------------------------------------------------------------------------------


def test_login_with_wrong_password_shows_the_apis_answer(browser, personas):
    r = browser(None).client.post("/login", data={"email": "acme.admin@example.com", "password": "nope"})
    assert r.status_code == 401
    assert "email or password is wrong" in r.text
    assert "tenantry_session" not in r.headers.get("set-cookie", "")


def test_login_sets_an_httponly_lax_session_cookie(browser, personas):
    b = browser(None)
    r = b.client.post(
        "/login", data={"email": "acme.admin@example.com", "password": PASSWORD}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == "/dashboard"
    cookies = r.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("tenantry_session="))
    assert "HttpOnly" in session and "samesite=lax" in session.lower()


def _enable_totp(db, email: str) -> tuple[str, list[str]]:
    """Turn on 2FA for the account the way a user does it (start, confirm with a real code)."""
    with db.unit_of_work() as session:
        user = session.scalar(select(User).where(User.email == email))
        assert user is not None
        ctx = ServiceContext(
            session=session, principal=principal_of(user, label=email, session_id=uuid.uuid4())
        )
        setup = totp.start_setup(ctx)
        codes = totp.enable(ctx, code=pyotp.TOTP(setup.secret).now())
        return setup.secret, codes


def test_login_with_totp_step(browser, personas, clean_db):
    secret, _codes = _enable_totp(clean_db, "acme.admin@example.com")
    b = browser(None)
    first = b.client.post("/login", data={"email": "acme.admin@example.com", "password": PASSWORD})
    assert first.status_code == 401
    assert 'name="totp_code"' in first.text
    wrong = b.client.post(
        "/login", data={"email": "acme.admin@example.com", "password": PASSWORD, "totp_code": "000000"}
    )
    assert wrong.status_code == 401 and "the code is not valid" in wrong.text
    b.sign_in("acme.admin@example.com", totp_code=totp_code(secret, 1))  # the enabling code is spent
    assert b.get("/dashboard").status_code == 200


def test_login_with_a_recovery_code(browser, personas, clean_db):
    _secret, codes = _enable_totp(clean_db, "acme.admin@example.com")
    b = browser(None)
    b.sign_in("acme.admin@example.com", totp_code=codes[0])
    assert b.get("/dashboard").status_code == 200


def test_restricted_session_reaches_only_the_2fa_setup(browser, personas, clean_db):
    require_2fa(clean_db, personas.acme.id)
    b = browser(None)
    r = b.client.post(
        "/login", data={"email": "acme.member@example.com", "password": PASSWORD}, follow_redirects=False
    )
    assert r.headers["location"] == "/setup-2fa"
    for path in ("/dashboard", "/profile", "/trash"):
        assert b.get(path).headers["location"] == "/setup-2fa", path
    assert b.get("/setup-2fa").status_code == 200
    started = b.post("/setup-2fa/start")
    assert started.status_code == 200 and "<svg" in started.text
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', started.text).group(1)
    done = b.post("/setup-2fa/enable", {"code": pyotp.TOTP(secret).now()})
    assert done.status_code == 200 and 'id="recovery-codes"' in done.text
    assert b.get("/dashboard").status_code == 200  # the session is a normal one now


def test_logout_ends_the_session(browser):
    b = browser("acme_admin")
    r = b.post("/logout")
    assert r.status_code == 303 and r.headers["location"] == "/login"
    b.client.cookies.clear()
    assert b.get("/dashboard").headers["location"] == "/login"


def test_logout_session_is_dead_even_with_the_old_cookie(browser):
    b = browser("acme_admin")
    cookie = b.client.cookies.get("tenantry_session")
    b.post("/logout")
    b.client.cookies.set("tenantry_session", cookie)
    assert b.get("/dashboard").headers["location"] == "/login"


def test_forgot_and_reset_password_through_the_pages(browser, personas, clean_db):
    b = browser(None)
    r = b.client.post("/forgot-password", data={"email": "acme.member@example.com"})
    assert r.status_code == 200 and "reset link is on its way" in r.text
    same = b.client.post("/forgot-password", data={"email": "nobody@example.com"})
    assert same.status_code == 200 and "reset link is on its way" in same.text  # no account oracle
    token = link_token(outbox(clean_db, to="acme.member@example.com", kind="password_reset")[-1].body_text)
    weak = b.client.post("/reset-password", data={"token": token, "password": "short"})
    assert weak.status_code == 400 and 'id="password-error"' in weak.text
    ok = b.client.post("/reset-password", data={"token": token, "password": NEW_PASSWORD})
    assert ok.status_code == 200 and "Your password is set" in ok.text
    b.sign_in("acme.member@example.com", NEW_PASSWORD)


def test_invitation_accept_page_sets_the_password(browser, personas, clean_db, api):
    r = api("superadmin").post("/api/v1/users", json={"email": "invitee@example.com"})
    assert r.status_code == 201
    token = link_token(outbox(clean_db, to="invitee@example.com", kind="invitation")[-1].body_text)
    b = browser(None)
    assert b.get(f"/invitations/accept?token={token}").status_code == 200
    done = b.client.post("/invitations/accept", data={"token": token, "password": PASSWORD})
    assert done.status_code == 200
    b.sign_in("invitee@example.com")
    again = b.client.post("/invitations/accept", data={"token": token, "password": PASSWORD})
    assert again.status_code == 400  # single use


def test_user_without_tenant_gets_a_clear_page(browser):
    r = browser("outsider").get("/dashboard")
    assert r.status_code == 200
    assert "No access to any tenant" in r.text
    assert browser("outsider").get("/my-tenant").headers["location"] == "/dashboard"


# --- CSRF ----------------------------------------------------------------------------------------------


def test_form_post_without_csrf_token_is_refused(browser, personas):
    b = browser("superadmin")
    r = b.post("/admin/tenants", {"slug": "csrf-probe", "name": "Probe"}, csrf=False)
    assert r.status_code == 403 and "csrf" in r.text.lower()
    wrong = b.client.post(
        "/admin/tenants",
        data={"slug": "csrf-probe", "name": "P", "csrf_token": "forged"},
        follow_redirects=False,
    )
    assert wrong.status_code == 403
    assert "csrf-probe" not in b.get("/admin/tenants").text


def test_csrf_token_of_another_session_is_refused(browser):
    a, other = browser("superadmin"), browser("superadmin")
    r = a.client.post(
        "/switch-tenant", data={"tenant": "all", "csrf_token": other.csrf}, follow_redirects=False
    )
    assert r.status_code == 403


def test_logout_needs_the_csrf_token(browser):
    b = browser("acme_admin")
    assert b.post("/logout", csrf=False).status_code == 403
    assert b.get("/dashboard").status_code == 200


# --- tenant context ------------------------------------------------------------------------------


def _join(db, personas, persona: str, slug: str, role: str = "viewer") -> None:
    with db.unit_of_work() as session:
        ctx = ServiceContext(session=session, principal=system_principal("tests"))
        user = session.get(User, personas.users[persona].id)
        memberships.add_member(ctx, session.get(Tenant, personas.tenants[slug].id), user=user, role=role)


def test_single_tenant_user_sees_no_switcher(browser):
    text = browser("acme_admin").get("/dashboard").text
    assert 'name="tenant"' not in text and "Acme Corp" in text


def test_switcher_shows_counts_and_switches_without_signing_in(browser, personas, clean_db):
    _join(clean_db, personas, "acme_admin", "globex")
    b = browser("acme_admin")
    page = b.get("/dashboard").text
    assert 'id="tenant-switch"' in page
    assert re.search(r"Globex Inc \(\d+ members, \d+ resources\)", page)
    r = b.post("/switch-tenant", {"tenant": str(personas.globex.id)})
    assert r.status_code == 303
    assert '<h2 id="tenant-heading">Globex Inc</h2>' in b.get("/dashboard").text


def test_switching_to_a_hidden_tenant_is_404(browser, personas):
    b = browser("acme_admin")
    assert b.post("/switch-tenant", {"tenant": str(personas.globex.id)}).status_code == 404
    assert b.post("/switch-tenant", {"tenant": "all"}).status_code == 403


def test_forged_tenant_cookie_falls_back_to_an_allowed_tenant(browser, personas):
    b = browser("acme_admin")
    b.client.cookies.set("tenantry_tenant", str(personas.globex.id))
    text = b.get("/dashboard").text
    assert "Acme Corp" in text and "Globex" not in text
    b.client.cookies.set("tenantry_tenant", "all")
    assert "Select a tenant" not in b.get("/dashboard").text


def test_superadmin_all_tenants_mode(browser, personas):
    b = browser("superadmin")
    text = b.get("/dashboard").text
    assert 'id="select-tenant"' in text
    nav = text[text.index('<nav class="menu"') : text.index("</nav>")]
    assert "/admin/tenants" in nav and "/my-tenant" not in nav
    assert b.get("/my-tenant").headers["location"] == "/dashboard"  # a tenant page needs a tenant
    b.post("/switch-tenant", {"tenant": str(personas.acme.id)})
    text = b.get("/dashboard").text
    assert '<h2 id="tenant-heading">Acme Corp</h2>' in text
    assert b.get("/my-tenant").status_code == 200


def test_menu_follows_the_engine(browser):
    def nav(persona: str) -> str:
        text = browser(persona).get("/dashboard").text
        return text[text.index('<nav class="menu"') : text.index("</nav>")]

    assert "/my-tenant" in nav("acme_admin") and "/admin/tenants" not in nav("acme_admin")
    viewer = nav("acme_viewer")
    assert "/my-tenant" not in viewer and "/admin/tenants" not in viewer


# --- superadmin pages -------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["acme_admin", "acme_member", "globex_admin", "outsider"])
def test_superadmin_pages_are_403_for_everybody_else(browser, personas, persona):
    b = browser(persona)
    for path in (
        "/admin/tenants",
        _tenant_page(personas),
        _tenant_page(personas, "acme"),
        _tenant_page(personas) + "/delete",
    ):
        assert b.get(path).status_code == 403, path
    assert b.post("/admin/tenants", {"slug": "x-probe", "name": "X"}).status_code == 403
    assert b.post(_tenant_page(personas) + "/delete", {"confirm": "globex"}).status_code == 403


def test_tenants_list_and_detail(browser, personas):
    b = browser("superadmin")
    text = b.get("/admin/tenants").text
    assert "Acme Corp" in text and "Globex Inc" in text
    assert b.get(_tenant_page(personas)).status_code == 200
    assert b.get("/admin/tenants/0190b0e8-0000-7000-8000-000000000000").status_code == 404
    assert b.get("/admin/tenants/not-a-uuid").status_code == 404


def test_create_tenant_with_bad_input_shows_the_error_next_to_the_field(browser, clean_db):
    b = browser("superadmin")
    r = b.post("/admin/tenants", {"slug": "Bad Slug!", "name": "Bad"})
    assert r.status_code == 400
    assert 'id="slug-error"' in r.text
    with clean_db.unit_of_work() as session:
        assert session.scalar(select(Tenant).where(Tenant.name == "Bad")) is None


def test_tenant_names_are_escaped(browser, clean_db):
    b = browser("superadmin")
    r = b.post("/admin/tenants", {"slug": "xss", "name": XSS})
    assert r.status_code == 303
    for path in ("/admin/tenants", r.headers["location"]):
        text = b.get(path).text
        assert XSS not in text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    b.post("/switch-tenant", {"tenant": "xss"})
    assert XSS not in b.get("/dashboard").text


def test_rename_and_suspend(browser, personas):
    b = browser("superadmin")
    page = _tenant_page(personas)
    assert b.post(page + "/rename", {"name": "Globex Renamed"}).status_code == 303
    assert "Globex Renamed" in b.get(page).text
    assert b.post(page + "/rename", {"name": "  "}).status_code == 400
    assert b.post(page + "/status", {"status": "suspended"}).status_code == 303
    assert 'id="tenant-status">suspended<' in b.get(page).text


def test_delete_after_the_impact_preview_then_restore_from_the_trash(browser, personas, clean_db):
    b = browser("superadmin")
    page = _tenant_page(personas)
    preview = b.get(page + "/delete")
    assert preview.status_code == 200 and "memberships" in preview.text
    assert b.post(page + "/delete", {"confirm": "wrong"}).status_code == 400
    r = b.post(page + "/delete", {"confirm": "globex"})
    assert r.status_code == 303 and r.headers["location"] == "/trash"
    trash_page = b.get("/trash").text
    assert "Globex Inc (globex)" in trash_page
    with clean_db.unit_of_work() as session:
        batch = session.scalar(select(DeletionBatch).where(DeletionBatch.root_type == "tenant"))
    assert b.post(f"/trash/{batch.id}/restore").status_code == 303
    assert b.get(page).status_code == 200


def test_trash_of_another_tenant_is_404(browser, personas, clean_db, api):
    with clean_db.unit_of_work() as session:
        resource_types.ensure_builtin_types(
            ServiceContext(session=session, principal=system_principal("tests"))
        )
    r = api("globex_admin").post(
        "/api/v1/tenants/globex/resources",
        json={"type": "host", "name": "h1", "attributes": {"ip_address": "10.0.0.1"}},
    )
    assert r.status_code == 201, r.text
    assert api("globex_admin").delete(f"/api/v1/tenants/globex/resources/{r.json()['id']}").status_code == 200
    with clean_db.unit_of_work() as session:
        batch = session.scalar(select(DeletionBatch))
    assert batch is not None
    b = browser("acme_admin")
    assert b.post(f"/trash/{batch.id}/restore").status_code == 404
    assert b.post(f"/trash/{batch.id}/purge", {"confirm": "yes"}).status_code == 404
    globex = browser("globex_admin")
    mine = globex.get("/trash").text
    assert "resource: host h1" in mine and "host h1" not in b.get("/trash").text
    assert globex.post(f"/trash/{batch.id}/purge").status_code == 409  # purging wants the confirmation
    assert globex.post(f"/trash/{batch.id}/restore").status_code == 303


def test_trash_page_by_role(browser):
    assert browser("acme_admin").get("/trash").status_code == 200
    assert browser("superadmin").get("/trash").status_code == 200


# --- profile ---------------------------------------------------------------------------------------


def test_profile_theme_and_language(browser):
    b = browser("acme_member")
    assert b.post("/profile", {"first_name": XSS, "theme": "dark", "language": "de"}).status_code == 303
    text = b.get("/profile").text
    assert 'data-theme="dark"' in text and XSS not in text
    bad = b.post("/profile", {"theme": "neon"})
    assert bad.status_code == 400 and 'id="theme-error"' in bad.text


def test_profile_password_change(browser):
    b = browser("acme_member")
    wrong = b.post("/profile/password", {"current_password": "nope", "new_password": NEW_PASSWORD})
    assert wrong.status_code == 400 and 'id="current_password-error"' in wrong.text
    ok = b.post("/profile/password", {"current_password": PASSWORD, "new_password": NEW_PASSWORD})
    assert ok.status_code == 200 and "Your password was changed." in ok.text


def test_every_console_page_answers_html_with_the_page_policy(browser, personas):
    b = browser("superadmin")
    b.post("/switch-tenant", {"tenant": "acme"})
    for path in ("/dashboard", "/my-tenant", "/admin/tenants", _tenant_page(personas), "/trash", "/profile"):
        r = b.get(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("text/html")
        assert "unsafe-inline" not in r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert "<script>" not in r.text  # no inline script anywhere


def test_htmx_is_served_from_our_own_files(browser):
    r = browser(None).client.get("/static/vendor/htmx/htmx.min.js")
    assert r.status_code == 200 and len(r.content) > 10_000


def test_lock_out_message_is_the_apis(browser, app):
    app.state.settings.login_lock_after = 2
    throttle.set_limiter(None)
    b = browser(None)
    for _ in range(2):
        b.client.post("/login", data={"email": "acme.member@example.com", "password": "wrong"})
    r = b.client.post("/login", data={"email": "acme.member@example.com", "password": PASSWORD})
    assert r.status_code == 429
    assert "too many failed sign-ins; reset your password to unlock" in r.text
    assert r.headers["retry-after"]
    assert 'value="acme.member@example.com"' in r.text  # the address stays in its field


def test_impersonation_banner_with_an_end_button(app, client, api, personas):
    app.state.settings.impersonation = True
    r = api("superadmin").post(
        "/api/v1/impersonation",
        json={
            "user_id": str(personas.users["acme_admin"].id),
            "reason": "ticket 1: console check",
            "minutes": 10,
        },
    )
    assert r.status_code == 201, r.text
    auth = {"Authorization": f"Bearer {r.json()['token']}"}
    page = client.get("/dashboard", headers=auth)
    assert page.status_code == 200
    assert "You are acting as acme.admin@example.com; signed in as superadmin@example.com." in page.text
    assert 'action="/impersonation/end"' in page.text
    end = client.post("/impersonation/end", headers=auth, follow_redirects=False)
    assert end.status_code == 303
    assert client.get("/dashboard", headers=auth, follow_redirects=False).headers["location"] == "/login"


def test_no_banner_without_impersonation(browser):
    assert "End impersonation" not in browser("acme_admin").get("/dashboard").text


def test_sign_in_forms_posted_from_another_site_are_refused(browser):
    b = browser(None)
    for path, data in (
        ("/login", {"email": "acme.admin@example.com", "password": PASSWORD}),
        ("/forgot-password", {"email": "acme.admin@example.com"}),
        ("/reset-password", {"token": "x" * 20, "password": NEW_PASSWORD}),
        ("/invitations/accept", {"token": "x" * 20, "password": NEW_PASSWORD}),
    ):
        for headers in (
            {"Origin": "https://evil.example"},
            {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
        ):
            r = b.client.post(path, data=data, headers=headers, follow_redirects=False)
            assert r.status_code == 403, (path, headers)
    assert "tenantry_session" not in b.client.cookies
    same = b.client.post(
        "/login",
        data={"email": "acme.admin@example.com", "password": PASSWORD},
        headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"},
        follow_redirects=False,
    )
    assert same.status_code == 303


def test_member_of_a_suspended_tenant_is_told_so(browser, api):
    assert api("superadmin").patch("/api/v1/tenants/globex", json={"status": "suspended"}).status_code == 200
    r = browser("globex_member").get("/dashboard")
    assert r.status_code == 200
    assert "Your tenant is suspended" in r.text and "No access to any tenant" not in r.text
    assert (
        browser("globex_member").get("/trash").status_code == 403
    )  # no tenant: the global trash, not theirs

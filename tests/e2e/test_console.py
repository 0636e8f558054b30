"""The console in a real browser (Debian chromium + Playwright) against a real uvicorn server.

One browser for the module; each test gets fresh data and fresh browser contexts. Screenshots of
the main pages in both themes land in `var/test-artifacts/console/` (git-ignored).
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyotp
import pytest
from sqlalchemy import select

from tenantry.authz import system_principal
from tenantry.db.tables import Tenant, User
from tenantry.jobs.outbox_delivery import deliver_due
from tenantry.services import memberships, totp
from tenantry.services.context import ServiceContext
from tenantry.services.sessions import principal_of
from tests.e2e.test_docs_offline import CHROMIUM_ARGS, live_url  # noqa: F401 (fixture)
from tests.personas import PASSWORD
from tests.security.helpers import NEW_PASSWORD, totp_code
from tests.smtp_sink import smtp_sink  # noqa: F401 (fixture)

pytestmark = pytest.mark.e2e

XSS = "<script>alert(1)</script>"
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts" / "console"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _enable_totp(db: Any, email: str) -> tuple[str, list[str]]:
    with db.unit_of_work() as session:
        user = session.scalar(select(User).where(User.email == email))
        ctx = ServiceContext(
            session=session, principal=principal_of(user, label=email, session_id=uuid.uuid4())
        )
        setup = totp.start_setup(ctx)
        codes = totp.enable(ctx, code=pyotp.TOTP(setup.secret).now())
        return setup.secret, codes


def _join(db: Any, email: str, slug: str) -> None:
    with db.unit_of_work() as session:
        ctx = ServiceContext(session=session, principal=system_principal("tests"))
        user = session.scalar(select(User).where(User.email == email))
        tenant = session.scalar(select(Tenant).where(Tenant.slug == slug))
        memberships.add_member(ctx, tenant, user=user, role="viewer")


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _sign_in(page: Any, base: str, email: str, code: str | None = None) -> None:
    page.goto(base + "/")
    assert page.url.endswith("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    if code is not None:
        page.get_by_label("Code from your authenticator app, or a recovery code").fill(code)
        page.get_by_role("button", name="Verify").click()
    assert page.url.endswith("/dashboard"), page.url


def test_superadmin_flows(chromium: Any, live_url: str, personas: Any, clean_db: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect

    secret, recovery = _enable_totp(clean_db, "superadmin@example.com")
    dialogs: list[str] = []
    csp: list[str] = []  # the pages work under their policy: nothing of ours is refused
    for scheme in ("light", "dark"):
        context = chromium.new_context(color_scheme=scheme)
        page = context.new_page()
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        page.on("console", lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None)
        if scheme == "light":
            page.goto(live_url + "/login")
            _shot(page, "login-light")
            # The code of the next step: the one that turned 2FA on is spent.
            _sign_in(page, live_url, "superadmin@example.com", totp_code(secret, 1))
            # All-tenants mode: the select-a-tenant card, global menu items only.
            expect(page.locator("#select-tenant")).to_be_visible()
            expect(page.locator("nav.menu")).not_to_contain_text("My tenant")
            _shot(page, "dashboard-all-light")
            # Switch to Acme with the switcher (counts shown), no new sign-in.
            page.locator("#tenant-switch").select_option(label="Acme Corp (4 members, 0 resources)")
            page.get_by_role("button", name="Switch").click()
            expect(page.locator("#tenant-heading")).to_have_text("Acme Corp")
            _shot(page, "dashboard-tenant-light")
            # Create a tenant whose name is markup: it shows as text, no dialog fires.
            page.goto(live_url + "/admin/tenants")
            page.get_by_label("Name", exact=True).fill(XSS)
            page.get_by_label("Slug").fill("xss")
            page.get_by_role("button", name="Create tenant").click()
            expect(page.locator("#tenant-name")).to_have_text(XSS)
            page.goto(live_url + "/admin/tenants")
            expect(page.locator("#tenants")).to_contain_text(XSS)
            _shot(page, "tenants-light")
            # Delete after the impact preview, find it in the trash, restore it.
            page.get_by_role("link", name=XSS).click()
            page.get_by_role("link", name="Delete…").click()
            expect(page.locator("#impact")).to_contain_text("memberships")
            _shot(page, "delete-preview-light")
            page.get_by_label("Type the slug xss to confirm").fill("xss")
            page.get_by_role("button", name="Delete tenant").click()
            assert page.url.endswith("/trash")
            expect(page.locator("#trash")).to_contain_text(f"{XSS} (xss)")
            _shot(page, "trash-light")
            page.locator("#trash tr", has_text="(xss)").get_by_role("button", name="Restore").click()
            expect(page.locator("main")).not_to_contain_text("(xss)")
            page.goto(live_url + "/admin/tenants")
            expect(page.locator("#tenants")).to_contain_text(XSS)
            # A form post without the CSRF token (same cookies, no token) is refused ...
            refused = context.request.post(
                live_url + "/admin/tenants", form={"slug": "no-token", "name": "No token"}, max_redirects=0
            )
            assert refused.status == 403
            # ... and so is a cross-site form (the Lax cookie stays home, so it is not even signed in).
            page.set_content(
                f'<form method="post" action="{live_url}/admin/tenants">'
                '<input name="slug" value="cross-site"><input name="name" value="Cross site">'
                '<button type="submit">go</button></form>'
            )
            page.get_by_role("button", name="go").click()
            page.wait_for_load_state()
            assert "/admin/tenants/" not in page.url
            page.goto(live_url + "/admin/tenants")
            expect(page.locator("#tenants")).not_to_contain_text("no-token")
            expect(page.locator("#tenants")).not_to_contain_text("cross-site")
            # The user's own theme choice wins over the system's.
            page.goto(live_url + "/profile")
            page.get_by_label("Theme").select_option("dark")
            page.get_by_role("button", name="Save").click()
            expect(page.locator("html")).to_have_attribute("data-theme", "dark")
            _shot(page, "profile-dark-choice")
            page.get_by_label("Theme").select_option("system")
            page.get_by_role("button", name="Save").click()
            page.get_by_role("button", name="Sign out").click()
            assert page.url.endswith("/login")
        else:
            page.goto(live_url + "/login")
            _shot(page, "login-dark")
            _sign_in(page, live_url, "superadmin@example.com", recovery[0])  # a recovery code works too
            _shot(page, "dashboard-all-dark")
            page.goto(live_url + "/admin/tenants")
            _shot(page, "tenants-dark")
            page.goto(live_url + "/trash")
            _shot(page, "trash-dark")
            page.goto(live_url + "/profile")
            _shot(page, "profile-dark")
        context.close()
    assert dialogs == []
    assert csp == []


def test_tenant_admin_switches_and_is_refused_the_admin_pages(
    chromium: Any,
    live_url: str,  # noqa: F811
    personas: Any,
    clean_db: Any,
) -> None:
    from playwright.sync_api import expect

    _join(clean_db, "acme.admin@example.com", "globex")
    context = chromium.new_context()
    page = context.new_page()
    _sign_in(page, live_url, "acme.admin@example.com")
    expect(page.locator("#tenant-heading")).to_have_text("Acme Corp")  # the default tenant, chosen at sign-in
    page.locator("#tenant-switch").select_option(label="Globex Inc (3 members, 0 resources)")
    page.get_by_role("button", name="Switch").click()
    expect(page.locator("#tenant-heading")).to_have_text("Globex Inc")
    response = page.goto(live_url + "/admin/tenants")
    assert response is not None and response.status == 403
    expect(page.locator("h1")).to_have_text("Not allowed")
    response = page.goto(live_url + f"/admin/tenants/{personas.acme.id}")
    assert response is not None and response.status == 403
    context.close()


def test_password_reset_from_the_mail(
    chromium: Any,
    live_url: str,  # noqa: F811
    app: Any,
    personas: Any,
    clean_db: Any,
    smtp_sink: Any,  # noqa: F811
) -> None:
    """Forgot → the mail a real SMTP server received → the link → a new password → signed in."""
    from playwright.sync_api import expect

    app.state.settings.smtp_url = smtp_sink.url
    context = chromium.new_context()
    page = context.new_page()
    page.goto(live_url + "/login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill("acme.member@example.com")
    page.get_by_role("button", name="Send reset link").click()
    expect(page.get_by_role("status")).to_contain_text("reset link is on its way")
    assert deliver_due(clean_db, app.state.settings) == 1
    [mail] = smtp_sink.to("acme.member@example.com")
    link = urlsplit(re.search(r"https?://\S+/reset-password\?token=\S+", mail.text).group(0))
    page.goto(f"{live_url}{link.path}?{link.query}")
    expect(page.locator("#password-rules")).to_contain_text("characters")
    _shot(page, "reset-password-light")
    page.get_by_label("New password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Set password").click()
    expect(page.get_by_role("status")).to_contain_text("Your password was changed")
    page.get_by_role("link", name="Sign in").click()
    page.get_by_label("Email").fill("acme.member@example.com")
    page.get_by_label("Password").fill(NEW_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    assert page.url.endswith("/dashboard")
    context.close()

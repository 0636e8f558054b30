"""Languages (issue 11 item 5): mails and problem details in the user's language, the tenant's
default, else English; `Accept-Language` for anonymous calls; German mail with the tenant's
branding through a real SMTP server and the real outbox delivery job."""

from __future__ import annotations

from email.utils import parseaddr

import pytest
from sqlalchemy import select

from tenantry import i18n
from tenantry.db.session import Database
from tenantry.db.tables import OutboxMessage, Tenant
from tenantry.jobs.outbox_delivery import deliver_due
from tests.asserts import assert_problem
from tests.smtp_sink import smtp_sink  # noqa: F401  (fixture)

LOGO = "https://acme.example/logo.png"


def _german(api, persona: str) -> None:
    r = api(persona).patch("/api/v1/me", json={"language": "de"})
    assert r.status_code == 200, r.text
    assert r.json()["language"] == "de"


def _brand_acme(db: Database) -> None:
    with db.unit_of_work() as s:
        acme = s.scalar(select(Tenant).where(Tenant.slug == "acme"))
        acme.branding_color = "#aa3300"
        acme.branding_logo_url = LOGO


# --- problem details ----------------------------------------------------------------------------


def test_problem_detail_in_german_for_german_user_code_unchanged(api):
    _german(api, "acme_member")
    r = api("acme_member").get("/api/v1/tenants/nope")
    body = assert_problem(r, 404, "not_found")
    assert body["detail"] == "Mandant nicht gefunden"
    assert r.headers["Content-Language"] == "de"
    body = assert_problem(
        api("acme_member").get("/api/v1/tenants/acme/email-templates"), 403, "permission_denied"
    )
    assert body["detail"] == "Fehlende Berechtigung template.manage"


def test_problem_detail_in_english_by_default(api):
    r = api("acme_member").get("/api/v1/tenants/nope")
    assert assert_problem(r, 404, "not_found")["detail"] == "tenant not found"
    assert r.headers["Content-Language"] == "en"


def test_german_user_ignores_accept_language(api):
    _german(api, "acme_member")
    r = api("acme_member").get("/api/v1/tenants/nope", headers={"Accept-Language": "en"})
    assert assert_problem(r, 404, "not_found")["detail"] == "Mandant nicht gefunden"


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        ("de", "Ein Bearer-Token ist erforderlich"),
        ("de-AT,en;q=0.5", "Ein Bearer-Token ist erforderlich"),
        ("fr, de;q=0.8, en;q=0.5", "Ein Bearer-Token ist erforderlich"),
        ("en-US,de;q=0.5", "a bearer token is required"),
        ("fr", "a bearer token is required"),
    ],
)
def test_anonymous_problem_detail_follows_accept_language(client, header, detail):
    r = client.get("/api/v1/me", headers={"Accept-Language": header})
    body = assert_problem(r, 401, "unauthenticated")
    assert body["detail"] == detail


def test_anonymous_validation_detail_in_german(client):
    r = client.post("/api/v1/auth/login", json={}, headers={"Accept-Language": "de"})
    body = assert_problem(r, 422, "validation_error")
    assert body["detail"].startswith("Ungültige Eingabe: ")


def test_profile_language_accepts_en_de_and_null(api):
    me = api("acme_member")
    assert me.get("/api/v1/me").json()["language"] is None  # follows the tenant
    assert me.patch("/api/v1/me", json={"language": "de"}).json()["language"] == "de"
    assert me.patch("/api/v1/me", json={"language": None}).json()["language"] is None
    assert_problem(me.patch("/api/v1/me", json={"language": "fr"}), 422, "validation_error")


def test_catalog_compiles_from_po_without_mo():
    # The fallback path of a fresh checkout: the .po is compiled in memory.
    assert i18n.translate_detail("user not found", "de") == "Benutzer nicht gefunden"
    assert i18n.translate_detail("something unknown", "de") == "something unknown"


# --- mails --------------------------------------------------------------------------------------


def test_german_user_receives_german_mail_with_tenant_branding_over_smtp(
    api,
    app,
    client,
    personas,
    clean_db,
    smtp_sink,  # noqa: F811
):
    _brand_acme(clean_db)
    _german(api, "globex_member")
    app.state.settings.smtp_url = smtp_sink.url
    to = personas.users["globex_member"].email
    # An existing account invited to acme: a membership invitation in acme's name.
    r = api("acme_admin").post(
        "/api/v1/tenants/acme/members",
        json={"user_id": str(personas.users["globex_member"].id), "role": "viewer"},
    )
    assert r.status_code in (200, 201, 202), r.text
    assert deliver_due(clean_db, app.state.settings) == 1
    [received] = smtp_sink.to(to)
    name, address = parseaddr(received.msg["From"])
    assert name == "Acme Corp"
    assert address == parseaddr(app.state.settings.mail_from)[1]
    assert received.msg["Subject"] == "acme.admin@example.com lädt Sie zu Acme Corp ein"
    assert received.text.startswith("Hallo")
    html = received.html
    assert html is not None
    assert LOGO in html and "#aa3300" in html
    assert "Hallo" in html and 'lang="de"' in html


def test_english_user_receives_english_mail(api, personas, clean_db):
    api("acme_admin").post(
        "/api/v1/tenants/acme/members",
        json={"user_id": str(personas.users["globex_member"].id), "role": "viewer"},
    )
    with clean_db.sessions() as s:
        msg = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "membership_invitation")).one()
    assert msg.subject.endswith("invites you to join Acme Corp")
    assert msg.body_text.startswith("Hello")
    assert msg.body_html is not None


def test_impersonation_start_notifies_target_in_their_language_with_branding(app, api, personas, clean_db):
    app.state.settings.impersonation = True
    _brand_acme(clean_db)
    _german(api, "acme_member")
    r = api("superadmin").post(
        "/api/v1/impersonation",
        json={"user_id": str(personas.users["acme_member"].id), "reason": "ticket 4711", "minutes": 30},
    )
    assert r.status_code in (200, 201), r.text
    with clean_db.sessions() as s:
        msg = s.scalars(select(OutboxMessage).where(OutboxMessage.kind == "impersonation_notice")).one()
    assert msg.to_addr == personas.users["acme_member"].email
    assert msg.sender_name == "Acme Corp"
    assert "superadmin@example.com" in msg.subject and "in Ihrem Namen" in msg.subject
    assert "ticket 4711" in msg.body_text
    assert msg.body_html is not None and LOGO in msg.body_html


def test_tenant_sender_name_reply_to_and_system_sender_come_from_the_settings(
    api,
    app,
    personas,
    clean_db,
    smtp_sink,  # noqa: F811
):
    """notifications.sender_name / reply_to (tenant) and mail.sender (system) reach the SMTP server."""
    r = api("acme_admin").put(
        "/api/v1/tenants/acme/settings/notifications",
        json={"sender_name": "Acme Support", "reply_to": "support@acme.example"},
    )
    assert r.status_code == 200, r.text
    r = api("superadmin").put("/api/v1/settings/mail", json={"sender": "Ops <ops@tenantry.example>"})
    assert r.status_code == 200, r.text
    app.state.settings.smtp_url = smtp_sink.url
    to = personas.users["globex_member"].email
    r = api("acme_admin").post(
        "/api/v1/tenants/acme/members",
        json={"user_id": str(personas.users["globex_member"].id), "role": "viewer"},
    )
    assert r.status_code in (200, 201, 202), r.text
    assert deliver_due(clean_db, app.state.settings) == 1
    [received] = smtp_sink.to(to)
    assert parseaddr(received.msg["From"]) == ("Acme Support", "ops@tenantry.example")
    assert received.msg["Reply-To"] == "support@acme.example"


def test_impersonation_notice_follows_the_tenants_setting(app, api, personas, clean_db):
    app.state.settings.impersonation = True
    r = api("acme_admin").put(
        "/api/v1/tenants/acme/settings/security", json={"impersonation_notice_mail": False}
    )
    assert r.status_code == 200, r.text
    r = api("superadmin").post(
        "/api/v1/impersonation",
        json={"user_id": str(personas.users["acme_member"].id), "reason": "ticket 4712", "minutes": 30},
    )
    assert r.status_code in (200, 201), r.text
    with clean_db.sessions() as s:
        kinds = s.scalars(select(OutboxMessage.kind)).all()
    assert "impersonation_notice" not in kinds

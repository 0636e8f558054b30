"""`/api/v1/settings` and `/api/v1/tenants/{tenant}/settings`: the catalog, merged values, and the
settings taking effect (2FA, session lifetimes, password length, lock-out, impersonation, retention)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from tenantry.db import scoping
from tenantry.db.session import Database
from tenantry.db.tables import AuditEvent, AuthSession, DeletionBatch, SystemSetting, TenantSetting
from tenantry.db.types import utcnow
from tenantry.jobs.purge import purge_expired
from tests.asserts import assert_problem
from tests.personas import PASSWORD, Personas

SYSTEM = "/api/v1/settings"
ACME = "/api/v1/tenants/acme/settings"
GLOBEX = "/api/v1/tenants/globex/settings"
SYSTEM_ONLY = ("trash", "mail", "defaults")


def _rows(db: Database) -> tuple[list[Any], list[Any]]:
    with db.sessions() as s, scoping.cross_tenant(s):
        tenant = [(r.tenant_id, r.category, r.key, r.value) for r in s.scalars(select(TenantSetting))]
        system = [(r.category, r.key, r.value) for r in s.scalars(select(SystemSetting))]
        return sorted(tenant, key=str), sorted(system, key=str)


def _events(db: Database, action: str) -> list[AuditEvent]:
    with db.sessions() as s, scoping.cross_tenant(s):
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


def _value(body: dict[str, Any], category: str, key: str) -> tuple[Any, str]:
    entry = body["categories"][category]["settings"][key]
    return entry["value"], entry["source"]


def _login(client, email: str) -> Any:
    return client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})


# --- reading and merging -----------------------------------------------------------------------


def test_get_tenant_settings_merges_overrides_over_defaults_with_source(api, personas):
    r = api("acme_admin").put(f"{ACME}/security", json={"session_idle_minutes": 60})
    assert r.status_code == 200, r.text
    assert r.json()["settings"]["session_idle_minutes"] == {
        "value": 60,
        "source": "tenant",
        "tenant_overridable": True,
    }
    body = api("acme_admin").get(ACME).json()
    assert _value(body, "security", "session_idle_minutes") == (60, "tenant")
    assert _value(body, "security", "require_2fa") == (False, "default")
    assert _value(body, "security", "session_absolute_minutes") == (7 * 24 * 60, "default")  # TENANTRY_*
    assert body["categories"]["security"]["settings"]["login_lock_after"]["tenant_overridable"] is False
    # Another tenant keeps the default.
    assert _value(api("globex_admin").get(GLOBEX).json(), "security", "session_idle_minutes") == (
        720,
        "default",
    )


def test_system_value_is_the_tenants_default_until_it_overrides(api, personas):
    r = api("superadmin").put(
        f"{SYSTEM}/general", json={"display_name": "Control", "time_zone": "Europe/Berlin"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["settings"]["display_name"]["source"] == "system"
    body = api("acme_admin").get(f"{ACME}/general").json()
    assert body["settings"]["display_name"] == {
        "value": "Control",
        "source": "default",
        "tenant_overridable": True,
    }
    api("acme_admin").put(f"{ACME}/general", json={"display_name": "Acme Console"})
    assert (
        api("acme_admin").get(f"{ACME}/general").json()["settings"]["display_name"]["value"] == "Acme Console"
    )
    assert (
        api("globex_admin").get(f"{GLOBEX}/general").json()["settings"]["display_name"]["value"] == "Control"
    )


def test_superadmin_reads_every_category_with_system_values(api, personas):
    body = api("superadmin").get(SYSTEM).json()
    assert set(body["categories"]) == {
        "general",
        "security",
        "notifications",
        "branding",
        "trash",
        "mail",
        "defaults",
    }
    assert _value(body, "trash", "retention_days") == (30, "default")
    assert _value(body, "mail", "sender") == ("Tenantry <noreply@example.com>", "default")
    assert api("superadmin").get(f"{SYSTEM}/trash").json()["settings"]["retention_days"]["value"] == 30


def test_member_reads_tenant_settings_but_viewer_may_not(api, personas):
    assert api("acme_member").get(ACME).status_code == 200
    assert_problem(api("acme_viewer").get(ACME), 403, "permission_denied")


# --- reset ---------------------------------------------------------------------------------------


def test_delete_key_resets_it_to_the_default_and_audits(api, personas, db):
    api("acme_admin").put(f"{ACME}/security", json={"require_2fa": True, "session_idle_minutes": 30})
    r = api("acme_admin").delete(f"{ACME}/security/require_2fa")
    assert r.status_code == 200, r.text
    assert r.json()["settings"]["require_2fa"] == {
        "value": False,
        "source": "default",
        "tenant_overridable": True,
    }
    assert r.json()["settings"]["session_idle_minutes"]["source"] == "tenant"  # only that key
    tenant_rows, _ = _rows(db)
    assert [(c, k) for _, c, k, _ in tenant_rows] == [("security", "session_idle_minutes")]
    [event] = _events(db, "settings.reset")
    assert event.before == {"require_2fa": True}
    assert event.after == {"require_2fa": None}
    assert event.tenant_id == personas.acme.id


def test_put_null_resets_a_key(api, personas):
    api("acme_admin").put(f"{ACME}/notifications", json={"sender_name": "Acme Ops"})
    r = api("acme_admin").put(f"{ACME}/notifications", json={"sender_name": None})
    assert r.json()["settings"]["sender_name"] == {
        "value": None,
        "source": "default",
        "tenant_overridable": True,
    }


def test_delete_unknown_key_is_422_naming_it(api, personas):
    body = assert_problem(api("acme_admin").delete(f"{ACME}/security/nope"), 422, "unknown_setting")
    assert body["field"] == "security.nope"


# --- audit -----------------------------------------------------------------------------------------


def test_every_change_is_audited_with_before_and_after(api, personas, db):
    api("acme_admin").put(f"{ACME}/security", json={"session_idle_minutes": 60})
    api("acme_admin").put(f"{ACME}/security", json={"session_idle_minutes": 45, "require_2fa": True})
    first, second = _events(db, "settings.update")
    assert (first.before, first.after) == ({"session_idle_minutes": None}, {"session_idle_minutes": 60})
    assert second.before == {"session_idle_minutes": 60, "require_2fa": None}
    assert second.after == {"session_idle_minutes": 45, "require_2fa": True}
    assert second.target_type == "settings"
    api("superadmin").put(f"{SYSTEM}/trash", json={"retention_days": 7})
    [system] = _events(db, "settings.system_update")
    assert (system.before, system.after, system.tenant_id) == (
        {"retention_days": 30},
        {"retention_days": 7},
        None,
    )


def test_unchanged_put_writes_no_audit_event(api, personas, db):
    api("acme_admin").put(f"{ACME}/general", json={"default_language": "de"})
    api("acme_admin").put(f"{ACME}/general", json={"default_language": "de"})
    assert len(_events(db, "settings.update")) == 1


# --- system-only categories ----------------------------------------------------------------------


def test_system_only_categories_are_absent_from_the_tenant_view(api, personas):
    for persona in ("acme_admin", "superadmin"):
        body = api(persona).get(ACME).json()
        assert set(body["categories"]) == {"general", "security", "notifications", "branding"}


@pytest.mark.parametrize("category", SYSTEM_ONLY)
def test_system_only_category_is_404_in_a_tenant(api, personas, db, category):
    admin = api("acme_admin")
    assert_problem(admin.get(f"{ACME}/{category}"), 404, "not_found")
    assert_problem(admin.put(f"{ACME}/{category}", json={"retention_days": 1}), 404, "not_found")
    assert_problem(admin.delete(f"{ACME}/{category}/retention_days"), 404, "not_found")
    assert _rows(db) == ([], [])


# --- refusals ----------------------------------------------------------------------------------------


def test_tenant_cannot_override_a_system_key_403(api, personas, db):
    r = api("acme_admin").put(f"{ACME}/security", json={"login_lock_after": 3, "session_idle_minutes": 5})
    body = assert_problem(r, 403, "setting_not_overridable")
    assert body["field"] == "security.login_lock_after"
    assert _rows(db) == ([], [])


def test_member_without_settings_update_is_403(api, personas, db):
    assert_problem(
        api("acme_member").put(f"{ACME}/general", json={"time_zone": "UTC"}), 403, "permission_denied"
    )
    assert_problem(api("acme_member").delete(f"{ACME}/general/time_zone"), 403, "permission_denied")
    assert _rows(db) == ([], [])


def test_tenant_admin_cannot_read_or_change_system_values_403(api, personas, db):
    admin = api("acme_admin")
    assert_problem(admin.get(SYSTEM), 403, "permission_denied")
    assert_problem(admin.get(f"{SYSTEM}/security"), 403, "permission_denied")
    assert_problem(admin.put(f"{SYSTEM}/trash", json={"retention_days": 0}), 403, "permission_denied")
    assert _rows(db) == ([], [])


def test_other_tenant_is_404(api, personas, db):
    other = api("globex_admin")
    assert_problem(other.get(ACME), 404, "not_found")
    assert_problem(other.get(f"{ACME}/security"), 404, "not_found")
    assert_problem(other.put(f"{ACME}/security", json={"require_2fa": True}), 404, "not_found")
    assert_problem(other.delete(f"{ACME}/security/require_2fa"), 404, "not_found")
    assert _rows(db) == ([], [])


@pytest.mark.parametrize(
    ("path", "body", "code", "field"),
    [
        (
            f"{ACME}/security",
            {"session_idle_minutes": "sixty"},
            "invalid_setting",
            "security.session_idle_minutes",
        ),
        (f"{ACME}/security", {"session_idle_minutes": 0}, "invalid_setting", "security.session_idle_minutes"),
        (f"{ACME}/security", {"require_2fa": "yes"}, "invalid_setting", "security.require_2fa"),
        (f"{ACME}/security", {"password_min_length": 4}, "invalid_setting", "security.password_min_length"),
        (f"{ACME}/security", {"colour": "#000000"}, "unknown_setting", "security.colour"),
        (f"{ACME}/general", {"time_zone": "Mars/Olympus"}, "invalid_setting", "general.time_zone"),
        (f"{ACME}/general", {"default_language": "fr"}, "invalid_setting", "general.default_language"),
        (f"{ACME}/general", {"display_name": "two\nlines"}, "invalid_setting", "general.display_name"),
        (
            f"{ACME}/notifications",
            {"reply_to": "not-an-address"},
            "invalid_setting",
            "notifications.reply_to",
        ),
        (f"{ACME}/branding", {"color": "red"}, "invalid_setting", "branding.color"),
        (f"{ACME}/nonsense", {"x": 1}, "unknown_setting", "nonsense"),
        (f"{SYSTEM}/nonsense", {"x": 1}, "unknown_setting", "nonsense"),
        (f"{SYSTEM}/trash", {"retention_days": -1}, "invalid_setting", "trash.retention_days"),
        (
            f"{SYSTEM}/mail",
            {"sender": "x@example.com\r\nBcc: y@example.com"},
            "invalid_setting",
            "mail.sender",
        ),
    ],
)
def test_invalid_value_is_422_naming_the_key_and_writes_nothing(api, personas, db, path, body, code, field):
    problem = assert_problem(api("superadmin").put(path, json=body), 422, code)
    assert problem["field"] == field
    assert _rows(db) == ([], [])
    assert _events(db, "settings.update") == []


def test_invalid_key_among_valid_ones_writes_nothing(api, personas, db):
    r = api("acme_admin").put(f"{ACME}/security", json={"require_2fa": True, "session_idle_minutes": -5})
    assert_problem(r, 422, "invalid_setting")
    assert _rows(db) == ([], [])


# --- branding: the tenant's columns are its overrides ------------------------------------------------


def test_branding_override_is_the_tenant_payloads_branding(api, personas):
    r = api("acme_admin").put(f"{ACME}/branding", json={"color": "#AA0000"})
    assert r.json()["settings"]["color"] == {
        "value": "#aa0000",
        "source": "tenant",
        "tenant_overridable": True,
    }
    assert api("acme_admin").get("/api/v1/tenants/acme").json()["branding"]["color"] == "#aa0000"
    api("acme_admin").patch(
        "/api/v1/tenants/acme", json={"branding": {"logo_url": "https://a.example/l.png"}}
    )
    logo = api("acme_admin").get(f"{ACME}/branding").json()["settings"]["logo_url"]
    assert (logo["value"], logo["source"]) == ("https://a.example/l.png", "tenant")
    api("acme_admin").delete(f"{ACME}/branding/color")
    assert api("acme_admin").get("/api/v1/tenants/acme").json()["branding"]["color"] is None
    assert api("acme_admin").get(f"{ACME}/branding").json()["settings"]["color"]["source"] == "default"


# --- new-tenant defaults -----------------------------------------------------------------------------


def test_new_tenant_starts_with_the_defaults_category(api, personas):
    api("superadmin").put(f"{SYSTEM}/defaults", json={"require_2fa": True, "default_language": "de"})
    assert (
        api("superadmin").post("/api/v1/tenants", json={"slug": "newco", "name": "Newco"}).status_code == 201
    )
    body = api("superadmin").get("/api/v1/tenants/newco/settings").json()
    assert _value(body, "security", "require_2fa") == (True, "tenant")
    assert _value(body, "general", "default_language") == ("de", "tenant")
    assert _value(api("superadmin").get(ACME).json(), "security", "require_2fa") == (False, "default")


# --- settings take effect ----------------------------------------------------------------------------


def test_require_2fa_forces_setup_at_members_next_sign_in(api, client, personas):
    assert _login(client, "acme.member@example.com").json()["requires_2fa_setup"] is False
    api("acme_admin").put(f"{ACME}/security", json={"require_2fa": True})
    assert _login(client, "acme.member@example.com").json()["requires_2fa_setup"] is True
    assert _login(client, "globex.member@example.com").json()["requires_2fa_setup"] is False
    api("acme_admin").delete(f"{ACME}/security/require_2fa")
    assert _login(client, "acme.member@example.com").json()["requires_2fa_setup"] is False


def test_system_require_2fa_applies_to_tenants_without_an_override(api, client, personas):
    api("superadmin").put(f"{SYSTEM}/security", json={"require_2fa": True})
    assert _login(client, "acme.member@example.com").json()["requires_2fa_setup"] is True
    api("globex_admin").put(f"{GLOBEX}/security", json={"require_2fa": False})
    assert _login(client, "globex.member@example.com").json()["requires_2fa_setup"] is False


def _age_sessions(db: Database, personas: Personas, persona: str, *, minutes: int, idle: bool) -> None:
    then = utcnow() - timedelta(minutes=minutes)
    values = {"last_seen_at": then} if idle else {"created_at": then}
    with db.unit_of_work() as s:
        s.execute(
            update(AuthSession).where(AuthSession.user_id == personas.users[persona].id).values(**values)
        )


def test_shorter_absolute_lifetime_ends_older_sessions_at_their_next_request(api, personas, db):
    _age_sessions(db, personas, "acme_member", minutes=90, idle=False)
    assert api("acme_member").get("/api/v1/me").status_code == 200
    assert api("globex_member").get("/api/v1/me").status_code == 200
    api("acme_admin").put(f"{ACME}/security", json={"session_absolute_minutes": 60})
    assert_problem(api("acme_member").get("/api/v1/me"), 401, "invalid_token")
    assert api("globex_member").get("/api/v1/me").status_code == 200  # another tenant's rule
    assert api("acme_admin").get("/api/v1/me").status_code == 200  # a session younger than an hour


def test_shorter_idle_lifetime_ends_idle_sessions(api, personas, db):
    _age_sessions(db, personas, "acme_member", minutes=20, idle=True)
    assert api("acme_member").get("/api/v1/me").status_code == 200
    _age_sessions(db, personas, "acme_member", minutes=20, idle=True)
    api("superadmin").put(f"{SYSTEM}/security", json={"session_idle_minutes": 10})
    assert_problem(api("acme_member").get("/api/v1/me"), 401, "invalid_token")


def test_new_session_lifetime_follows_the_setting(api, client, personas):
    api("acme_admin").put(f"{ACME}/security", json={"session_idle_minutes": 15})
    r = _login(client, "acme.member@example.com")
    expires = r.json()["expires_at"]
    from datetime import datetime

    assert datetime.fromisoformat(expires) <= utcnow() + timedelta(minutes=15)


def test_strictest_tenant_applies_to_a_user_in_several(api, personas, db):
    api("superadmin").post(
        "/api/v1/tenants/globex/members",
        json={"user_id": str(personas.users["acme_member"].id), "role": "member"},
    )
    _age_sessions(db, personas, "acme_member", minutes=90, idle=False)
    api("globex_admin").put(f"{GLOBEX}/security", json={"session_absolute_minutes": 60})
    assert_problem(api("acme_member").get("/api/v1/me"), 401, "invalid_token")


def test_password_minimum_length_follows_the_tenant(api, personas):
    body = {"current_password": PASSWORD, "new_password": "quartz-meadow-lantern-vivid-9"}  # 29 chars
    api("acme_admin").put(f"{ACME}/security", json={"password_min_length": 40})
    problem = assert_problem(
        api("acme_member").post("/api/v1/me/password", json=body), 422, "password_too_short"
    )
    assert problem["min_length"] == 40
    assert api("globex_member").post("/api/v1/me/password", json=body).status_code == 204


def test_lock_out_threshold_follows_the_system_value(api, client, personas):
    api("superadmin").put(f"{SYSTEM}/security", json={"login_lock_after": 2})
    wrong = {"email": "acme.member@example.com", "password": "wrong-password-entirely"}
    assert_problem(client.post("/api/v1/auth/login", json=wrong), 401, "invalid_credentials")
    assert_problem(client.post("/api/v1/auth/login", json=wrong), 401, "invalid_credentials")
    assert_problem(_login(client, "acme.member@example.com"), 429, "account_locked")


def test_retention_drives_the_purge_job(api, personas, db):
    api("superadmin").post("/api/v1/tenants", json={"slug": "oldco", "name": "Oldco"})
    assert api("superadmin").delete("/api/v1/tenants/oldco").status_code in (200, 202, 204)
    with db.unit_of_work() as s:
        s.execute(update(DeletionBatch).values(deleted_at=utcnow() - timedelta(days=3)))
    assert purge_expired(db) == 0  # 30 days
    api("superadmin").put(f"{SYSTEM}/trash", json={"retention_days": 2})
    assert purge_expired(db) == 1


@pytest.fixture
def impersonation_on(app):
    app.state.settings.impersonation = True
    return app.state.settings


def _impersonate(api, personas, target: str, minutes: int = 10) -> Any:
    body = {"user_id": str(personas.users[target].id), "reason": "ticket 1", "minutes": minutes}
    return api("superadmin").post("/api/v1/impersonation", json=body)


def test_tenant_may_refuse_impersonation_of_its_members(api, personas, impersonation_on):
    api("acme_admin").put(f"{ACME}/security", json={"impersonation_allowed": False})
    assert_problem(_impersonate(api, personas, "acme_member"), 403, "impersonation_not_allowed")
    assert _impersonate(api, personas, "globex_member").status_code == 201


def test_tenant_impersonation_max_minutes_applies(api, personas, impersonation_on):
    api("acme_admin").put(f"{ACME}/security", json={"impersonation_max_minutes": 5})
    problem = assert_problem(_impersonate(api, personas, "acme_member", 10), 422, "minutes_out_of_range")
    assert problem["max_minutes"] == 5
    assert _impersonate(api, personas, "acme_member", 5).status_code == 201
    assert _impersonate(api, personas, "globex_member", 10).status_code == 201


def test_system_can_switch_impersonation_off_but_not_on(api, personas, app):
    api("superadmin").put(f"{SYSTEM}/security", json={"impersonation_allowed": True})
    assert_problem(_impersonate(api, personas, "acme_member"), 403, "impersonation_disabled")  # env off
    app.state.settings.impersonation = True
    api("superadmin").put(f"{SYSTEM}/security", json={"impersonation_allowed": False})
    assert_problem(_impersonate(api, personas, "acme_member"), 403, "impersonation_disabled")

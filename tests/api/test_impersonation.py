"""`/api/v1/impersonation`: a superadmin acts as another user, audited with both names (issue 10)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from tenantry.db import scoping
from tenantry.db.session import Database
from tenantry.db.tables import AuditEvent, Impersonation, User
from tenantry.db.types import utcnow
from tests.asserts import assert_problem as _problem
from tests.personas import PASSWORD

BASE = "/api/v1/impersonation"
ME = "/api/v1/me"


@pytest.fixture
def enabled(app):
    app.state.settings.impersonation = True
    return app.state.settings


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _body(user_id, **extra) -> dict:
    return {"user_id": str(user_id), "reason": "ticket 4711: cannot see host web-1", "minutes": 30} | extra


def _start(api, personas, target: str = "acme_admin", persona: str = "superadmin", **extra) -> str:
    r = api(persona).post(BASE, json=_body(personas.users[target].id, **extra))
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["token"].startswith("tnt_imp_")
    assert set(body) == {"token", "expires_at"}
    return body["token"]


def _rows(db: Database) -> int:
    with db.sessions() as s:
        return s.scalar(select(func.count()).select_from(Impersonation)) or 0


def _events(db: Database, action: str) -> list[AuditEvent]:
    with db.sessions() as s, scoping.cross_tenant(s):
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)))


# --- start -----------------------------------------------------------------------------------------


def test_start_superadmin_gets_a_token_that_acts_as_the_user(api, client, db, personas, enabled):
    token = _start(api, personas)
    r = client.get(ME, headers=_auth(token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == str(personas.users["acme_admin"].id)
    assert body["email"] == "acme.admin@example.com"
    assert body["impersonated_by"] == {
        "id": str(personas.users["superadmin"].id),
        "email": "superadmin@example.com",
    }
    # The superadmin's own session is untouched, and shows nobody behind it.
    mine = api("superadmin").get(ME).json()
    assert mine["email"] == "superadmin@example.com"
    assert mine["impersonated_by"] is None
    # The token is stored only as its digest.
    with db.sessions() as s:
        row = s.scalar(select(Impersonation))
        assert row is not None and token not in row.token_hash
        assert row.reason == "ticket 4711: cannot see host web-1"
        assert row.impersonator_id == personas.users["superadmin"].id


def test_start_refused_when_disabled_403_nothing_written(api, db, personas):
    r = api("superadmin").post(BASE, json=_body(personas.users["acme_admin"].id))
    _problem(r, 403, "impersonation_disabled")
    assert _rows(db) == 0
    assert _events(db, "impersonation.start") == []


@pytest.mark.parametrize("persona", ["acme_admin", "acme_member", "outsider"])
def test_start_by_a_non_superadmin_403_nothing_written(api, db, personas, enabled, persona):
    target = "acme_member" if persona != "acme_member" else "acme_viewer"
    _problem(api(persona).post(BASE, json=_body(personas.users[target].id)), 403, "impersonation_denied")
    # An unknown id gets the same answer: a caller without the right learns nothing.
    _problem(api(persona).post(BASE, json=_body(uuid.uuid4())), 403, "impersonation_denied")
    assert _rows(db) == 0


def test_start_of_a_superadmin_or_oneself_403(api, db, personas, enabled):
    other = api("superadmin").post(
        "/api/v1/users", json={"email": "root2@example.com", "password": PASSWORD, "is_superadmin": True}
    )
    assert other.status_code == 201, other.text
    _problem(api("superadmin").post(BASE, json=_body(other.json()["id"])), 403, "impersonation_denied")
    _problem(
        api("superadmin").post(BASE, json=_body(personas.users["superadmin"].id)), 403, "impersonation_denied"
    )
    assert _rows(db) == 0


def test_start_with_an_api_key_403_session_required(api, client, personas, enabled):
    r = api("superadmin").post(f"{ME}/api-keys", json={"name": "ci", "scope": "read_write"})
    key = r.json()["token"]
    r = client.post(BASE, json=_body(personas.users["acme_admin"].id), headers=_auth(key))
    _problem(r, 403, "session_required")


def test_start_unknown_or_deleted_user_404(api, db, personas, enabled):
    _problem(api("superadmin").post(BASE, json=_body(uuid.uuid4())), 404, "not_found")
    uid = personas.users["outsider"].id
    assert api("superadmin").delete(f"/api/v1/users/{uid}").status_code in (200, 204)
    _problem(api("superadmin").post(BASE, json=_body(uid)), 404, "not_found")
    assert _rows(db) == 0


def test_start_deactivated_user_409(api, db, personas, enabled):
    uid = personas.users["acme_member"].id
    assert api("superadmin").patch(f"/api/v1/users/{uid}", json={"active": False}).status_code == 200
    _problem(api("superadmin").post(BASE, json=_body(uid)), 409, "user_inactive")
    assert _rows(db) == 0


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"minutes": 61}, "minutes_out_of_range"),
        ({"minutes": 0}, "validation_error"),
        ({"minutes": "ten"}, "validation_error"),
        ({"minutes": "10"}, "validation_error"),
        ({"minutes": 10.5}, "validation_error"),
        ({"read_only": "yes"}, "validation_error"),
        ({"reason": ""}, "validation_error"),
        ({"reason": "   "}, "validation_error"),
        ({"reason": "two\nlines"}, "validation_error"),
        ({"user_id": "not-a-uuid"}, "validation_error"),
        ({"unexpected": True}, "validation_error"),
    ],
)
def test_start_bad_input_422_nothing_written(api, db, personas, enabled, extra, code):
    r = api("superadmin").post(BASE, json=_body(personas.users["acme_admin"].id) | extra)
    _problem(r, 422, code)
    assert _rows(db) == 0
    assert _events(db, "impersonation.start") == []


def test_start_minutes_cap_follows_the_setting(api, personas, enabled):
    enabled.impersonation_max_minutes = 120
    _start(api, personas, minutes=120.0)  # JSON's integer: 120.0 is 120
    body = _problem(
        api("superadmin").post(BASE, json=_body(personas.users["acme_admin"].id, minutes=121)),
        422,
        "minutes_out_of_range",
    )
    assert body["max_minutes"] == 120


def test_start_without_reason_field_422(api, personas, enabled):
    body = _body(personas.users["acme_admin"].id)
    del body["reason"]
    _problem(api("superadmin").post(BASE, json=body), 422, "validation_error")


# --- while impersonating -----------------------------------------------------------------------------


def test_nested_impersonation_403(api, client, db, personas, enabled):
    token = _start(api, personas)
    r = client.post(BASE, json=_body(personas.users["acme_member"].id), headers=_auth(token))
    _problem(r, 403, "impersonation_nested")
    assert _rows(db) == 1


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/me/password", {"current_password": "x", "new_password": "y" * 20}),
        ("POST", "/api/v1/me/2fa/setup", None),
        ("DELETE", "/api/v1/me/2fa", {"password": "x", "code": "123456"}),
        ("DELETE", "/api/v1/me/sessions", None),
        ("POST", "/api/v1/me/api-keys", {"name": "ci", "scope": "read"}),
        ("POST", "/api/v1/me/ssh-keys", {"name": "k", "public_key": "ssh-ed25519 AAAA x"}),
    ],
)
def test_account_security_refused_while_impersonating_403(
    api, client, db, personas, enabled, method, path, body
):
    token = _start(api, personas)
    r = client.request(method, path, json=body, headers=_auth(token))
    _problem(r, 403, "impersonation_restricted")
    # The real user's own session still may.
    assert api("acme_admin").get(f"{ME}/sessions").status_code == 200


def test_target_sessions_and_keys_untouched_while_impersonating(api, client, db, personas, enabled):
    key = api("acme_admin").post(f"{ME}/api-keys", json={"name": "ci", "scope": "read"}).json()
    token = _start(api, personas)
    r = client.delete(f"{ME}/api-keys/{key['id']}", headers=_auth(token))
    _problem(r, 403, "impersonation_restricted")
    _problem(client.delete(f"{ME}/sessions", headers=_auth(token)), 403, "impersonation_restricted")
    assert client.get(ME, headers=_auth(key["token"])).status_code == 200
    assert api("acme_admin").get(ME).status_code == 200


def test_dual_audit_trail_action_and_start_end_in_the_tenant(api, client, db, personas, enabled):
    real = personas.users["superadmin"]
    target = personas.users["acme_admin"]
    token = _start(api, personas)
    r = client.patch("/api/v1/tenants/acme", json={"description": "checked"}, headers=_auth(token))
    assert r.status_code == 200, r.text
    assert client.delete(BASE, headers=_auth(token)).status_code == 204

    # The tenant's admin (signed in as themself) sees all three in the tenant's audit.
    items = api("acme_admin").get("/api/v1/tenants/acme/audit", params={"limit": 200}).json()["items"]
    by_action = {e["action"]: e for e in items}
    update_event = by_action["tenant.update"]
    assert update_event["actor"]["id"] == str(target.id)
    assert update_event["actor"]["type"] == "user"
    assert update_event["impersonator_id"] == str(real.id)
    start = by_action["impersonation.start"]
    assert start["actor"]["id"] == str(real.id)
    assert start["target"] == {"type": "user", "id": str(target.id)}
    assert start["after"]["reason"] == "ticket 4711: cannot see host web-1"
    assert start["tenant_id"] == str(personas.acme.id)
    end = by_action["impersonation.end"]
    assert end["actor"]["id"] == str(target.id)
    assert end["impersonator_id"] == str(real.id)
    # Globex's admin sees none of it: the target is no member there.
    globex = api("globex_admin").get("/api/v1/tenants/globex/audit", params={"limit": 200}).json()["items"]
    assert not [e for e in globex if e["action"].startswith("impersonation.")]
    # Start and end: one global event plus one per tenant of the target (acme).
    assert [e.tenant_id for e in _events(db, "impersonation.start")] == [None, personas.acme.id]
    assert [e.tenant_id for e in _events(db, "impersonation.end")] == [None, personas.acme.id]


def test_self_service_write_under_impersonation_audited_with_both(api, client, db, personas, enabled):
    token = _start(api, personas, target="acme_member")
    assert client.patch(ME, json={"first_name": "Changed"}, headers=_auth(token)).status_code == 200
    (event,) = _events(db, "profile.update")
    assert event.actor_id == personas.users["acme_member"].id
    assert event.impersonator_id == personas.users["superadmin"].id
    r = api("superadmin").get("/api/v1/audit", params={"action": "profile.update"})
    assert r.json()["items"][0]["impersonator_id"] == str(personas.users["superadmin"].id)


def test_read_only_impersonation_reads_but_refuses_writes_403(api, client, db, personas, enabled):
    token = _start(api, personas, read_only=True)
    assert client.get(ME, headers=_auth(token)).status_code == 200
    assert client.get("/api/v1/tenants/acme", headers=_auth(token)).status_code == 200
    assert client.get("/api/v1/tenants/acme/members", headers=_auth(token)).status_code == 200
    r = client.patch("/api/v1/tenants/acme", json={"description": "no"}, headers=_auth(token))
    _problem(r, 403, "impersonation_read_only")
    r = client.patch(ME, json={"first_name": "No"}, headers=_auth(token))
    _problem(r, 403, "impersonation_read_only")
    assert _events(db, "tenant.update") == []
    # Ending it is still allowed.
    assert client.delete(BASE, headers=_auth(token)).status_code == 204


# --- the end of the token ----------------------------------------------------------------------------


def test_end_kills_the_token_401_after(api, client, db, personas, enabled):
    token = _start(api, personas)
    assert client.delete(BASE, headers=_auth(token)).status_code == 204
    _problem(client.get(ME, headers=_auth(token)), 401, "invalid_token")
    _problem(client.delete(BASE, headers=_auth(token)), 401, "invalid_token")
    with db.sessions() as s:
        assert s.scalar(select(Impersonation.ended_at)) is not None


def test_end_with_an_ordinary_session_403_not_impersonating(api, personas, enabled):
    _problem(api("superadmin").delete(BASE), 403, "not_impersonating")
    _problem(api(None).delete(BASE), 401, "unauthenticated")


def test_end_unknown_token_401(client, personas, enabled):
    _problem(client.delete(BASE, headers=_auth("tnt_imp_forged")), 401, "invalid_token")


def test_logout_under_the_token_ends_it(api, client, db, personas, enabled):
    token = _start(api, personas)
    assert client.post("/api/v1/auth/logout", headers=_auth(token)).status_code == 204
    _problem(client.get(ME, headers=_auth(token)), 401, "invalid_token")
    assert len(_events(db, "impersonation.end")) == 2
    assert api("superadmin").get(ME).status_code == 200


def test_token_dies_at_expiry_401(api, client, db, personas, enabled):
    token = _start(api, personas)
    with db.unit_of_work() as s:
        s.execute(update(Impersonation).values(expires_at=utcnow() - timedelta(seconds=1)))
    _problem(client.get(ME, headers=_auth(token)), 401, "invalid_token")


@pytest.mark.parametrize("who", ["target", "impersonator"])
def test_token_dies_when_either_user_is_deactivated_401(api, client, db, personas, enabled, who):
    token = _start(api, personas)
    uid = personas.users["acme_admin" if who == "target" else "superadmin"].id
    with db.unit_of_work() as s:
        s.execute(update(User).where(User.id == uid).values(active=False))
    _problem(client.get(ME, headers=_auth(token)), 401, "invalid_token")


def test_token_dies_when_the_impersonator_is_no_longer_superadmin_401(api, client, db, personas, enabled):
    token = _start(api, personas)
    with db.unit_of_work() as s:
        s.execute(update(User).where(User.id == personas.users["superadmin"].id).values(is_superadmin=False))
    _problem(client.get(ME, headers=_auth(token)), 401, "invalid_token")


def test_token_is_not_accepted_as_a_cookie(client, api, personas, enabled):
    token = _start(api, personas)
    anonymous = api(None)
    anonymous.cookies.set("tenantry_session", token)
    try:
        _problem(anonymous.get(ME), 401, "invalid_token")
    finally:
        client.cookies.clear()


def test_reads_under_the_token_leave_a_trace_with_both_names(api, client, db, personas, enabled):
    token = _start(api, personas, target="acme_member")
    assert client.get(ME, headers=_auth(token)).status_code == 200
    assert client.get("/api/v1/tenants/acme", headers=_auth(token)).status_code == 200
    events = _events(db, "impersonation.request")
    assert [e.after["path"] for e in events] == [ME, "/api/v1/tenants/acme"]
    assert {(e.actor_id, e.impersonator_id) for e in events} == {
        (personas.users["acme_member"].id, personas.users["superadmin"].id)
    }
    # A refused token leaves none.
    with db.unit_of_work() as s:
        s.execute(update(Impersonation).values(ended_at=utcnow()))
    _problem(client.get(ME, headers=_auth(token)), 401, "invalid_token")
    assert len(_events(db, "impersonation.request")) == 2

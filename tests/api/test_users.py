"""`/api/v1/users`: superadmin administration of accounts (create, list, get, patch, delete,
deletion impact, restore, tenants, invitation)."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tenantry.db import scoping
from tenantry.db.session import Database
from tenantry.db.tables import ApiKey, AuditEvent, Membership, OutboxMessage, User
from tenantry.db.types import utcnow
from tests.asserts import assert_problem as _problem
from tests.personas import PASSWORD, login_token

BASE = "/api/v1/users"
STRONG = "violet-harbour-engine-stapler-91"


# --- helpers -------------------------------------------------------------------------------


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _user_rows(db: Database, email: str) -> int:
    with db.sessions() as s, scoping.include_deleted(s):
        return s.scalar(select(func.count()).select_from(User).where(User.email == email.lower())) or 0


def _audit_count(db: Database, action: str, target_id: object = None) -> int:
    stmt = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
    if target_id is not None:
        stmt = stmt.where(AuditEvent.target_id == str(target_id))
    with db.sessions() as s:
        return s.scalar(stmt) or 0


def _all_audit(db: Database) -> int:
    """Audited changes; refusals leave `authz.denied` events, which change nothing."""
    with db.sessions() as s:
        return (
            s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action != "authz.denied"))
            or 0
        )


def _outbox(db: Database, to: str) -> list[OutboxMessage]:
    with db.sessions() as s:
        return list(
            s.scalars(select(OutboxMessage).where(OutboxMessage.to_addr == to).order_by(OutboxMessage.id))
        )


def _link_token(msg: OutboxMessage) -> str:
    m = re.search(r"token=([A-Za-z0-9_\-]+)", msg.body_text)
    assert m, msg.body_text
    return m.group(1)


def _member_ids(api, tenant: str = "acme") -> set[str]:
    r = api("superadmin").get(f"/api/v1/tenants/{tenant}/members", params={"limit": 200})
    assert r.status_code == 200, r.text
    return {m["user_id"] for m in r.json()["items"]}


def _create(api, **body) -> dict:
    r = api("superadmin").post(BASE, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def _api_key(client, token: str, **body) -> str:
    r = client.post(
        "/api/v1/me/api-keys", json={"name": "k", "scope": "read_write", **body}, headers=_auth(token)
    )
    assert r.status_code == 201, r.text
    return r.json()["token"]


# --- create --------------------------------------------------------------------------------


def test_create_user_with_password_returns_user_who_can_sign_in(api, db):
    r = api("superadmin").post(
        BASE,
        json={
            "email": "Dora@Example.COM",
            "first_name": " Dora ",
            "last_name": "Explorer",
            "password": STRONG,
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["email"] == "dora@example.com"
    assert (body["first_name"], body["last_name"]) == ("Dora", "Explorer")
    assert body["active"] is True
    assert body["is_superadmin"] is False
    assert body["invitation_pending"] is False
    assert body["default_tenant_id"] is None
    assert _outbox(db, "dora@example.com") == []
    assert _audit_count(db, "user.create", body["id"]) == 1
    r = api(None).post("/api/v1/auth/login", json={"email": "DORA@example.com", "password": STRONG})
    assert r.status_code == 200, r.text
    assert r.json()["token"].startswith("tnt_ses_")


def test_create_user_superadmin_flag_gives_user_administration(api, client, db):
    _create(api, email="boss@example.com", password=STRONG, is_superadmin=True)
    token = login_token(db, "boss@example.com", STRONG)
    assert client.get(BASE, headers=_auth(token)).status_code == 200


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("short-pass", "password_too_short"),
        ("passwordpassword", "password_too_weak"),
        ("aaaaaaaaaaaaaaaaaaaa", "password_too_weak"),
        ("1234567890123456", "password_too_weak"),
        ("xx-carol.jones-velvet-harbour-7", "password_contains_email"),
        ("x" * 1025, "validation_error"),
    ],
)
def test_create_user_password_policy_violation_422_nothing_written(api, db, password, code):
    before = _all_audit(db)
    r = api("superadmin").post(BASE, json={"email": "carol.jones@example.com", "password": password})
    body = _problem(r, 422, code)
    if code != "validation_error":
        assert body["field"] == "password"
    assert _user_rows(db, "carol.jones@example.com") == 0
    assert _all_audit(db) == before
    assert _outbox(db, "carol.jones@example.com") == []


def test_create_user_password_of_64_characters_accepted(api):
    password = "correct horse battery staple " * 2 + "sunrise"  # 65 characters
    assert len(password) >= 64
    _create(api, email="long@example.com", password=password)
    ok = api(None).post("/api/v1/auth/login", json={"email": "long@example.com", "password": password})
    assert ok.status_code == 200, ok.text


def test_create_user_password_longer_than_72_characters_accepted_and_not_truncated(api):
    long_password = "correct horse battery staple " * 4  # 116 characters
    _create(api, email="long@example.com", password=long_password)
    ok = api(None).post("/api/v1/auth/login", json={"email": "long@example.com", "password": long_password})
    assert ok.status_code == 200, ok.text
    cut = api(None).post(
        "/api/v1/auth/login", json={"email": "long@example.com", "password": long_password[:72]}
    )
    _problem(cut, 401, "invalid_credentials")


def test_create_user_without_password_mails_invitation_and_is_pending(api, db):
    body = _create(api, email="invitee@example.com", first_name="Ivy")
    assert body["invitation_pending"] is True
    mails = _outbox(db, "invitee@example.com")
    assert [m.kind for m in mails] == ["invitation"]
    assert mails[0].tenant_id is None
    assert "token=" in mails[0].body_text
    assert _audit_count(db, "invitation.send", body["id"]) == 1
    # No password yet: nothing to sign in with.
    r = api(None).post("/api/v1/auth/login", json={"email": "invitee@example.com", "password": STRONG})
    _problem(r, 401, "invalid_credentials")
    # The link sets the password and signs in.
    r = api(None).post(
        "/api/v1/auth/invitations/accept", json={"token": _link_token(mails[0]), "password": STRONG}
    )
    assert r.status_code == 200, r.text
    me = api(None).get("/api/v1/me", headers=_auth(r.json()["token"]))
    assert me.json()["email"] == "invitee@example.com"
    assert api("superadmin").get(f"{BASE}/{body['id']}").json()["invitation_pending"] is False


def test_create_user_duplicate_email_case_insensitive_409_email_taken(api, db):
    _create(api, email="twin@example.com", password=STRONG)
    before = _all_audit(db)
    for email in ("twin@example.com", "TWIN@Example.com", "  Twin@example.COM "):
        r = api("superadmin").post(BASE, json={"email": email})
        _problem(r, 409, "email_taken")
    assert _user_rows(db, "twin@example.com") == 1
    assert _all_audit(db) == before
    assert _outbox(db, "twin@example.com") == []


def test_create_user_email_of_a_persona_409_email_taken(api):
    _problem(api("superadmin").post(BASE, json={"email": "ACME.Member@example.com"}), 409, "email_taken")


def test_create_user_email_of_deleted_user_stays_reserved_409(api):
    user = _create(api, email="ghost@example.com", password=STRONG)
    assert api("superadmin").delete(f"{BASE}/{user['id']}").status_code == 200
    _problem(api("superadmin").post(BASE, json={"email": "ghost@example.com"}), 409, "email_taken")


@pytest.mark.parametrize("email", ["not-an-email", "two@@example.com", "spaces in@example.com", "no-domain@"])
def test_create_user_invalid_email_422_invalid_email(api, db, email):
    before = _all_audit(db)
    body = _problem(
        api("superadmin").post(BASE, json={"email": email, "password": STRONG}), 422, "invalid_email"
    )
    assert body["field"] == "email"
    assert _all_audit(db) == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"email": "x@example.com", "id": str(uuid.uuid4())},
        {"email": "x@example.com", "active": False},
        {"email": "x@example.com", "first_name": "n" * 101},
        {"email": "x@example.com", "password": ""},
        {"email": 42},
    ],
)
def test_create_user_malformed_body_422_validation_error(api, db, body):
    _problem(api("superadmin").post(BASE, json=body), 422, "validation_error")
    assert _user_rows(db, "x@example.com") == 0


# --- list ----------------------------------------------------------------------------------


def test_list_users_returns_every_persona_once(api, personas):
    r = api("superadmin").get(BASE, params={"limit": 200})
    assert r.status_code == 200
    body = r.json()
    assert body["next_cursor"] is None
    assert {u["email"] for u in body["items"]} == {u.email for u in personas.users.values()}
    item = body["items"][0]
    assert {"id", "email", "first_name", "last_name", "active", "is_superadmin", "default_tenant_id"} <= set(
        item
    )


def test_list_users_cursor_pagination_returns_each_user_once(api, personas):
    for i in range(7):
        _create(api, email=f"page{i}@example.com", password=STRONG)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 4} | ({"cursor": cursor} if cursor else {})
        body = api("superadmin").get(BASE, params=params).json()
        assert len(body["items"]) <= 4
        seen += [u["id"] for u in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert pages < 10
    assert len(seen) == len(set(seen)) == len(personas.users) + 7
    assert pages == 4


def test_list_users_filter_email_contains_case_insensitive_and_literal(api):
    _create(api, email="needle_one@example.com", password=STRONG)
    _create(api, email="needleone@example.com", password=STRONG)
    emails = lambda **p: sorted(u["email"] for u in api("superadmin").get(BASE, params=p).json()["items"])  # noqa: E731
    assert emails(email="NEEDLE") == ["needle_one@example.com", "needleone@example.com"]
    assert emails(email="needle_") == ["needle_one@example.com"]
    assert emails(email="%") == []
    assert emails(email="acme.") == [
        "acme.admin@example.com",
        "acme.auditor@example.com",
        "acme.member@example.com",
        "acme.viewer@example.com",
    ]


def test_list_users_filter_active(api, personas):
    uid = personas.users["acme_viewer"].id
    assert api("superadmin").patch(f"{BASE}/{uid}", json={"active": False}).status_code == 200
    inactive = api("superadmin").get(BASE, params={"active": "false"}).json()["items"]
    assert [u["id"] for u in inactive] == [str(uid)]
    active = api("superadmin").get(BASE, params={"active": "true", "limit": 200}).json()["items"]
    assert str(uid) not in {u["id"] for u in active}
    assert len(active) == len(personas.users) - 1


def test_list_users_filter_tenant_id(api, personas):
    items = api("superadmin").get(BASE, params={"tenant_id": str(personas.globex.id)}).json()["items"]
    assert sorted(u["email"] for u in items) == ["globex.admin@example.com", "globex.member@example.com"]
    assert api("superadmin").get(BASE, params={"tenant_id": str(uuid.uuid4())}).json()["items"] == []


def test_list_users_excludes_deleted_unless_asked(api, personas):
    uid = str(personas.users["acme_viewer"].id)
    assert api("superadmin").delete(f"{BASE}/{uid}").status_code == 200
    live = {u["id"] for u in api("superadmin").get(BASE, params={"limit": 200}).json()["items"]}
    assert uid not in live
    trashed = api("superadmin").get(BASE, params={"deleted": "true"}).json()["items"]
    assert [u["id"] for u in trashed] == [uid]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"cursor": "!!!!"}, "invalid_cursor"),
        ({"cursor": "bm90LWEtdXVpZA"}, "invalid_cursor"),
        ({"limit": 0}, "validation_error"),
        ({"limit": 201}, "validation_error"),
        ({"active": "maybe"}, "validation_error"),
        ({"tenant_id": "acme"}, "validation_error"),
    ],
)
def test_list_users_bad_query_422(api, params, code):
    _problem(api("superadmin").get(BASE, params=params), 422, code)


# --- get -----------------------------------------------------------------------------------


def test_get_user_returns_the_user(api, personas):
    u = personas.users["acme_member"]
    r = api("superadmin").get(f"{BASE}/{u.id}")
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == str(u.id)
    assert body["email"] == "acme.member@example.com"
    assert body["default_tenant_id"] == str(personas.acme.id)
    assert "password_hash" not in body
    assert "totp_secret" not in body


def test_get_user_unknown_id_404_and_bad_id_422(api):
    _problem(api("superadmin").get(f"{BASE}/{uuid.uuid4()}"), 404, "not_found")
    _problem(api("superadmin").get(f"{BASE}/not-a-uuid"), 422, "validation_error")


def test_get_user_deleted_404(api, personas):
    uid = personas.users["acme_viewer"].id
    api("superadmin").delete(f"{BASE}/{uid}")
    _problem(api("superadmin").get(f"{BASE}/{uid}"), 404, "not_found")


# --- patch ---------------------------------------------------------------------------------


def test_update_user_names(api, db, personas):
    uid = personas.users["acme_member"].id
    r = api("superadmin").patch(f"{BASE}/{uid}", json={"first_name": " Ann ", "last_name": "Smith"})
    assert r.status_code == 200, r.text
    assert (r.json()["first_name"], r.json()["last_name"]) == ("Ann", "Smith")
    assert api("superadmin").get(f"{BASE}/{uid}").json()["first_name"] == "Ann"
    assert _audit_count(db, "user.update", uid) == 1


def test_update_user_no_change_writes_no_audit_event(api, db, personas):
    uid = personas.users["acme_member"].id
    before = _all_audit(db)
    assert api("superadmin").patch(f"{BASE}/{uid}", json={"active": True}).status_code == 200
    assert _all_audit(db) == before


def test_update_user_promote_and_demote_superadmin_takes_effect_on_existing_token(api, client, personas):
    uid = personas.users["acme_member"].id
    token = personas.tokens["acme_member"]
    _problem(client.get(BASE, headers=_auth(token)), 403, "permission_denied")
    r = api("superadmin").patch(f"{BASE}/{uid}", json={"is_superadmin": True})
    assert r.json()["is_superadmin"] is True
    assert client.get(BASE, headers=_auth(token)).status_code == 200
    r = api("superadmin").patch(f"{BASE}/{uid}", json={"is_superadmin": False})
    assert r.json()["is_superadmin"] is False
    _problem(client.get(BASE, headers=_auth(token)), 403, "permission_denied")


@pytest.mark.parametrize(
    "body",
    [
        {"email": "new@example.com"},
        {"password_hash": "x"},
        {"default_tenant_id": str(uuid.uuid4())},
        {"id": str(uuid.uuid4())},
        {"active": "sometimes"},
        {"last_name": "n" * 101},
    ],
)
def test_update_user_not_editable_or_malformed_field_422_nothing_changed(api, db, personas, body):
    uid = personas.users["acme_member"].id
    before = _all_audit(db)
    _problem(api("superadmin").patch(f"{BASE}/{uid}", json=body), 422, "validation_error")
    after = api("superadmin").get(f"{BASE}/{uid}").json()
    assert after["email"] == "acme.member@example.com"
    assert after["active"] is True
    assert _all_audit(db) == before


def test_update_user_unknown_id_404(api):
    _problem(api("superadmin").patch(f"{BASE}/{uuid.uuid4()}", json={"first_name": "x"}), 404, "not_found")


def test_deactivate_user_kills_token_and_key_and_reactivation_does_not_revive_token(
    api, client, db, personas
):
    uid = personas.users["acme_member"].id
    token = personas.tokens["acme_member"]
    key = _api_key(client, token)
    assert client.get("/api/v1/me", headers=_auth(key)).status_code == 200
    r = api("superadmin").patch(f"{BASE}/{uid}", json={"active": False})
    assert r.status_code == 200
    assert r.json()["active"] is False
    _problem(client.get("/api/v1/me", headers=_auth(token)), 401, "invalid_token")
    _problem(client.get("/api/v1/me", headers=_auth(key)), 401, "invalid_token")
    # Nor can they sign in again while inactive.
    r = api(None).post("/api/v1/auth/login", json={"email": "acme.member@example.com", "password": PASSWORD})
    _problem(r, 401, "invalid_credentials")
    assert _audit_count(db, "user.deactivate", uid) == 1
    assert api("superadmin").patch(f"{BASE}/{uid}", json={"active": True}).json()["active"] is True
    _problem(client.get("/api/v1/me", headers=_auth(token)), 401, "invalid_token")
    fresh = login_token(db, "acme.member@example.com")
    assert client.get("/api/v1/me", headers=_auth(fresh)).status_code == 200


def test_deactivate_invited_user_makes_invitation_link_useless(api, db):
    user = _create(api, email="late@example.com")
    link = _link_token(_outbox(db, "late@example.com")[0])
    assert api("superadmin").patch(f"{BASE}/{user['id']}", json={"active": False}).status_code == 200
    r = api(None).post("/api/v1/auth/invitations/accept", json={"token": link, "password": STRONG})
    _problem(r, 422, "invalid_or_expired_token")
    after = api("superadmin").get(f"{BASE}/{user['id']}").json()
    assert after["active"] is False
    assert after["invitation_pending"] is True


@pytest.mark.parametrize("body", [{"active": False}, {"is_superadmin": False}])
def test_update_user_self_deactivate_or_demote_409_cannot_modify_self(api, personas, body):
    me = personas.users["superadmin"].id
    _problem(api("superadmin").patch(f"{BASE}/{me}", json=body), 409, "cannot_modify_self")
    after = api("superadmin").get(f"{BASE}/{me}").json()
    assert (after["active"], after["is_superadmin"]) == (True, True)


def test_update_user_another_superadmin_can_be_demoted(api, personas):
    other = _create(api, email="second.admin@example.com", password=STRONG, is_superadmin=True)
    r = api("superadmin").patch(f"{BASE}/{other['id']}", json={"is_superadmin": False})
    assert r.status_code == 200
    assert r.json()["is_superadmin"] is False


# --- deletion impact, delete, restore --------------------------------------------------------


def test_user_deletion_impact_counts_memberships_grants_and_keys(api, client, personas):
    uid = personas.users["globex_member"].id
    r = api("superadmin").post("/api/v1/tenants/acme/members", json={"user_id": str(uid), "role": "viewer"})
    assert r.status_code == 201, r.text
    _api_key(client, personas.tokens["globex_member"])
    _api_key(client, personas.tokens["globex_member"], scope="read")
    r = api("superadmin").get(f"{BASE}/{uid}/deletion-impact")
    assert r.status_code == 200
    assert r.json() == {"memberships": 2, "grants": 2, "api_keys": 2, "ssh_keys": 0, "alias_roles": 0}
    assert api("superadmin").get(f"{BASE}/{personas.users['outsider'].id}/deletion-impact").json() == {
        "memberships": 0,
        "grants": 0,
        "api_keys": 0,
        "ssh_keys": 0,
        "alias_roles": 0,
    }


def test_user_deletion_impact_unknown_404(api):
    _problem(api("superadmin").get(f"{BASE}/{uuid.uuid4()}/deletion-impact"), 404, "not_found")


def test_delete_user_kills_token_and_key_and_removes_memberships(api, client, db, personas):
    uid = personas.users["acme_member"].id
    token = personas.tokens["acme_member"]
    key = _api_key(client, token)
    r = api("superadmin").delete(f"{BASE}/{uid}")
    assert r.status_code == 200, r.text
    assert uuid.UUID(r.json()["deletion_batch_id"])
    _problem(client.get("/api/v1/me", headers=_auth(token)), 401, "invalid_token")
    _problem(client.get("/api/v1/me", headers=_auth(key)), 401, "invalid_token")
    assert str(uid) not in _member_ids(api)
    r = api("acme_admin").get(f"/api/v1/tenants/acme/members/{uid}")
    _problem(r, 404, "not_found")
    assert api("superadmin").get("/api/v1/tenants/acme").json()["member_count"] == 3
    assert _audit_count(db, "user.delete", uid) == 1
    r = api(None).post("/api/v1/auth/login", json={"email": "acme.member@example.com", "password": PASSWORD})
    _problem(r, 401, "invalid_credentials")


def test_delete_user_twice_404(api, personas):
    uid = personas.users["acme_viewer"].id
    assert api("superadmin").delete(f"{BASE}/{uid}").status_code == 200
    _problem(api("superadmin").delete(f"{BASE}/{uid}"), 404, "not_found")


def test_delete_user_self_409_cannot_modify_self(api, db, personas):
    me = personas.users["superadmin"].id
    _problem(api("superadmin").delete(f"{BASE}/{me}"), 409, "cannot_modify_self")
    assert api("superadmin").get(f"{BASE}/{me}").status_code == 200
    assert _audit_count(db, "user.delete") == 0


def test_delete_user_unknown_404(api):
    _problem(api("superadmin").delete(f"{BASE}/{uuid.uuid4()}"), 404, "not_found")


def test_restore_user_brings_back_memberships_roles_and_keys(api, client, db, personas):
    uid = personas.users["acme_member"].id
    key = _api_key(client, personas.tokens["acme_member"], scope="read")
    api("superadmin").delete(f"{BASE}/{uid}")
    r = api("superadmin").post(f"{BASE}/{uid}/restore")
    assert r.status_code == 200, r.text
    assert r.json()["id"] == str(uid)
    assert str(uid) in _member_ids(api)
    member = api("acme_admin").get(f"/api/v1/tenants/acme/members/{uid}").json()
    assert member["roles"] == ["member"]
    assert member["is_default"] is True
    assert client.get("/api/v1/me", headers=_auth(key)).status_code == 200
    assert _audit_count(db, "user.restore", uid) == 1
    # Sessions were revoked for good; signing in again works.
    _problem(client.get("/api/v1/me", headers=_auth(personas.tokens["acme_member"])), 401, "invalid_token")
    fresh = login_token(db, "acme.member@example.com")
    r = client.get("/api/v1/tenants/acme/members", headers=_auth(fresh))
    assert r.status_code == 200


def test_restore_user_does_not_resurrect_a_membership_removed_earlier(api, personas):
    uid = personas.users["globex_member"].id
    assert (
        api("superadmin")
        .post("/api/v1/tenants/acme/members", json={"user_id": str(uid), "role": "viewer"})
        .status_code
        == 201
    )
    assert api("acme_admin").delete(f"/api/v1/tenants/acme/members/{uid}").status_code == 204
    assert api("superadmin").delete(f"{BASE}/{uid}").status_code == 200
    assert api("superadmin").post(f"{BASE}/{uid}/restore").status_code == 200
    assert str(uid) not in _member_ids(api, "acme")
    assert str(uid) in _member_ids(api, "globex")
    assert [t["slug"] for t in api("superadmin").get(f"{BASE}/{uid}/tenants").json()] == ["globex"]


def test_restore_user_not_in_trash_404(api, personas):
    _problem(api("superadmin").post(f"{BASE}/{personas.users['acme_member'].id}/restore"), 404, "not_found")
    _problem(api("superadmin").post(f"{BASE}/{uuid.uuid4()}/restore"), 404, "not_found")


def test_restore_user_leaves_other_users_alone(api, db, personas):
    a, b = personas.users["acme_member"].id, personas.users["acme_viewer"].id
    api("superadmin").delete(f"{BASE}/{a}")
    api("superadmin").delete(f"{BASE}/{b}")
    api("superadmin").post(f"{BASE}/{a}/restore")
    ids = _member_ids(api)
    assert str(a) in ids
    assert str(b) not in ids
    with db.sessions() as s, scoping.cross_tenant(s), scoping.include_deleted(s):
        live = s.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.user_id == b, Membership.deleted_at.is_(None))
        )
    assert live == 0


# --- tenants of a user ---------------------------------------------------------------------


def test_user_tenants_lists_tenants_with_roles_default_and_counts(api, personas):
    uid = personas.users["globex_member"].id
    api("superadmin").post("/api/v1/tenants/acme/members", json={"user_id": str(uid), "role": "auditor"})
    r = api("superadmin").get(f"{BASE}/{uid}/tenants")
    assert r.status_code == 200
    rows = {t["slug"]: t for t in r.json()}
    assert list(rows) == ["acme", "globex"]
    assert rows["acme"]["roles"] == ["auditor"]
    assert rows["globex"]["roles"] == ["member"]
    assert (rows["acme"]["is_default"], rows["globex"]["is_default"]) == (False, True)
    assert rows["acme"]["member_count"] == 5
    assert rows["globex"]["member_count"] == 2
    assert {(t["status"], t["access"]) for t in rows.values()} == {("active", "member")}


def test_user_tenants_of_outsider_empty_and_unknown_user_404(api, personas):
    assert api("superadmin").get(f"{BASE}/{personas.users['outsider'].id}/tenants").json() == []
    _problem(api("superadmin").get(f"{BASE}/{uuid.uuid4()}/tenants"), 404, "not_found")


# --- invitation ----------------------------------------------------------------------------


def test_resend_invitation_invalidates_the_previous_link(api, db):
    user = _create(api, email="again@example.com")
    old = _link_token(_outbox(db, "again@example.com")[0])
    r = api("superadmin").post(f"{BASE}/{user['id']}/invitation")
    assert r.status_code == 204, r.text
    mails = _outbox(db, "again@example.com")
    assert len(mails) == 2
    new = _link_token(mails[1])
    assert new != old
    r = api(None).post("/api/v1/auth/invitations/accept", json={"token": old, "password": STRONG})
    _problem(r, 422, "invalid_or_expired_token")
    r = api(None).post("/api/v1/auth/invitations/accept", json={"token": new, "password": STRONG})
    assert r.status_code == 200, r.text
    # Single use.
    r = api(None).post("/api/v1/auth/invitations/accept", json={"token": new, "password": STRONG})
    _problem(r, 422, "invalid_or_expired_token")


def test_resend_invitation_to_user_with_password_409_already_accepted(api, db, personas):
    uid = personas.users["acme_member"].id
    before = _all_audit(db)
    _problem(api("superadmin").post(f"{BASE}/{uid}/invitation"), 409, "already_accepted")
    assert _outbox(db, "acme.member@example.com") == []
    assert _all_audit(db) == before


def test_resend_invitation_unknown_user_404(api):
    _problem(api("superadmin").post(f"{BASE}/{uuid.uuid4()}/invitation"), 404, "not_found")


# --- who may -------------------------------------------------------------------------------

_ID = "{id}"
ENDPOINTS = [
    ("get", BASE, None),
    ("post", BASE, {"email": "sneaky@example.com", "password": STRONG}),
    ("get", f"{BASE}/{_ID}", None),
    ("patch", f"{BASE}/{_ID}", {"first_name": "Hacked", "is_superadmin": True}),
    ("get", f"{BASE}/{_ID}/deletion-impact", None),
    ("delete", f"{BASE}/{_ID}", None),
    ("post", f"{BASE}/{_ID}/restore", None),
    ("post", f"{BASE}/{_ID}/invitation", None),
    ("get", f"{BASE}/{_ID}/tenants", None),
]


@pytest.mark.parametrize("persona", ["acme_admin", "acme_member", "acme_auditor", "globex_admin", "outsider"])
@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_users_endpoints_non_superadmin_403_and_nothing_changes(
    api, db, personas, persona, method, path, body
):
    target = personas.users["acme_viewer"].id  # a user in the caller's own tenant, for tenant admins
    before = _all_audit(db)
    kwargs = {"json": body} if body is not None else {}
    r = api(persona).request(method.upper(), path.replace(_ID, str(target)), **kwargs)
    _problem(r, 403, "permission_denied")
    assert _all_audit(db) == before
    assert _user_rows(db, "sneaky@example.com") == 0
    u = api("superadmin").get(f"{BASE}/{target}").json()
    assert (u["first_name"], u["is_superadmin"], u["active"]) == ("", False, True)


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_users_endpoints_unknown_id_as_tenant_admin_still_403(api, method, path, body):
    kwargs = {"json": body} if body is not None else {}
    r = api("acme_admin").request(method.upper(), path.replace(_ID, str(uuid.uuid4())), **kwargs)
    _problem(r, 403, "permission_denied")


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_users_endpoints_without_token_401(api, personas, method, path, body):
    kwargs = {"json": body} if body is not None else {}
    r = api(None).request(method.upper(), path.replace(_ID, str(personas.users["acme_viewer"].id)), **kwargs)
    _problem(r, 401, "unauthenticated")


def test_users_superadmin_key_restricted_to_a_tenant_cannot_administer_users(api, client, personas):
    key = _api_key(client, personas.tokens["superadmin"], tenant_id=str(personas.acme.id))
    _problem(client.get(BASE, headers=_auth(key)), 403, "permission_denied")
    r = client.post(BASE, json={"email": "viakey@example.com", "password": STRONG}, headers=_auth(key))
    _problem(r, 403, "permission_denied")


def test_users_read_key_of_superadmin_lists_but_cannot_create(api, client, db, personas):
    key = _api_key(client, personas.tokens["superadmin"], scope="read")
    assert client.get(BASE, headers=_auth(key)).status_code == 200
    r = client.post(BASE, json={"email": "viakey@example.com", "password": STRONG}, headers=_auth(key))
    _problem(r, 403, "key_read_only")
    assert _user_rows(db, "viakey@example.com") == 0


def test_users_api_key_rows_are_soft_deleted_with_the_user(api, client, db, personas):
    uid = personas.users["acme_member"].id
    _api_key(client, personas.tokens["acme_member"], expires_at=(utcnow() + timedelta(days=3)).isoformat())
    api("superadmin").delete(f"{BASE}/{uid}")
    with db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.user_id == uid)) == 0
    with db.sessions() as s, scoping.include_deleted(s):
        assert s.scalar(select(func.count()).select_from(ApiKey).where(ApiKey.user_id == uid)) == 1

"""`/api/v1/tenants/{tenant}/members`: list, add (by id, by email, by inviting), get, change
role, default tenant, remove, resend invitation — and who may do which."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import func, select

from tenantry.db import scoping
from tenantry.db.session import Database
from tenantry.db.tables import AuditEvent, Grant, Membership, OutboxMessage, User
from tests.personas import PASSWORD, login_token

ACME = "/api/v1/tenants/acme/members"
GLOBEX = "/api/v1/tenants/globex/members"
STRONG = "violet-harbour-engine-stapler-91"
TENANT_ROLES = ["tenant_admin", "member", "viewer", "auditor"]


# --- helpers -------------------------------------------------------------------------------


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _problem(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["code"] == code, body
    return body


def _members(api, persona: str = "superadmin", base: str = ACME, **params) -> dict[str, dict]:
    r = api(persona).get(base, params={"limit": 200, **params})
    assert r.status_code == 200, r.text
    return {m["email"]: m for m in r.json()["items"]}


def _uid(personas, name: str) -> str:
    return str(personas.users[name].id)


def _all_audit(db: Database) -> int:
    """Audited changes; refusals leave `authz.denied` events, which change nothing."""
    with db.sessions() as s:
        return (
            s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action != "authz.denied"))
            or 0
        )


def _live_memberships(db: Database, user_id) -> list[str]:
    """Tenant ids of a user's live memberships, across tenants."""
    with db.sessions() as s, scoping.cross_tenant(s):
        return sorted(
            str(t) for t in s.scalars(select(Membership.tenant_id).where(Membership.user_id == user_id))
        )


def _live_grants(db: Database, user_id) -> list[tuple[str, str]]:
    """(tenant id, role) of a user's live grants, across tenants."""
    with db.sessions() as s, scoping.cross_tenant(s):
        rows = s.execute(select(Grant.tenant_id, Grant.role_key).where(Grant.principal_id == user_id))
        return sorted((str(t), r) for t, r in rows)


def _user_count(db: Database, email: str) -> int:
    with db.sessions() as s, scoping.include_deleted(s):
        return s.scalar(select(func.count()).select_from(User).where(User.email == email)) or 0


def _outbox(db: Database, to: str) -> list[OutboxMessage]:
    with db.sessions() as s:
        return list(
            s.scalars(select(OutboxMessage).where(OutboxMessage.to_addr == to).order_by(OutboxMessage.id))
        )


def _link_token(msg: OutboxMessage) -> str:
    m = re.search(r"token=([A-Za-z0-9_\-]+)", msg.body_text)
    assert m, msg.body_text
    return m.group(1)


def _tenant_audit(api, persona: str, tenant: str, action: str) -> list[dict]:
    r = api(persona).get(f"/api/v1/tenants/{tenant}/audit", params={"action": action, "limit": 200})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _add(api, persona: str = "acme_admin", base: str = ACME, **body) -> dict:
    r = api(persona).post(base, json=body)
    assert r.status_code == 201, r.text
    return r.json()


# --- list ----------------------------------------------------------------------------------


def test_list_members_shows_roles_and_default_flag(api, personas):
    members = _members(api, "acme_admin")
    assert set(members) == {
        "acme.admin@example.com",
        "acme.member@example.com",
        "acme.viewer@example.com",
        "acme.auditor@example.com",
    }
    assert members["acme.admin@example.com"]["roles"] == ["tenant_admin"]
    assert members["acme.member@example.com"]["roles"] == ["member"]
    assert members["acme.viewer@example.com"]["roles"] == ["viewer"]
    assert members["acme.auditor@example.com"]["roles"] == ["auditor"]
    assert all(m["is_default"] for m in members.values())
    m = members["acme.member@example.com"]
    assert m["user_id"] == _uid(personas, "acme_member")
    assert m["invitation_pending"] is False
    assert m["active"] is True


@pytest.mark.parametrize(
    "persona", ["acme_admin", "acme_member", "acme_viewer", "acme_auditor", "superadmin"]
)
def test_list_members_any_member_of_the_tenant_and_superadmin_may_read(api, persona):
    assert len(_members(api, persona)) == 4


def test_list_members_is_default_false_when_default_is_elsewhere(api, personas):
    _add(api, user_id=_uid(personas, "globex_member"), role="viewer")
    members = _members(api, "acme_admin")
    assert members["globex.member@example.com"]["is_default"] is False
    assert members["globex.member@example.com"]["roles"] == ["viewer"]
    # Its globex role is not shown in acme, and vice versa.
    assert _members(api, "globex_admin", GLOBEX)["globex.member@example.com"]["roles"] == ["member"]


def test_list_members_cursor_pagination_returns_each_once(api):
    for i in range(5):
        _add(api, email=f"page{i}@example.com")
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        body = api("acme_admin").get(ACME, params=params).json()
        assert len(body["items"]) <= 2
        seen += [m["user_id"] for m in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert pages < 10
    assert len(seen) == len(set(seen)) == 9
    assert pages == 5


def test_list_members_q_filters_by_email(api):
    assert list(_members(api, "acme_admin", q="VIEWER")) == ["acme.viewer@example.com"]
    assert _members(api, "acme_admin", q="globex") == {}
    assert _members(api, "acme_admin", q="%") == {}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"cursor": "!!!!"}, "invalid_cursor"),
        ({"limit": 0}, "validation_error"),
        ({"limit": 500}, "validation_error"),
    ],
)
def test_list_members_bad_query_422(api, params, code):
    _problem(api("acme_admin").get(ACME, params=params), 422, code)


def test_list_members_by_tenant_id_works_like_slug(api, personas):
    r = api("acme_admin").get(f"/api/v1/tenants/{personas.acme.id}/members")
    assert r.status_code == 200
    assert len(r.json()["items"]) == 4


def test_list_members_other_tenant_404(api, personas):
    _problem(api("globex_admin").get(ACME), 404, "not_found")
    _problem(api("acme_admin").get(f"/api/v1/tenants/{personas.globex.id}/members"), 404, "not_found")
    _problem(api("acme_admin").get("/api/v1/tenants/no-such-tenant/members"), 404, "not_found")


def test_list_members_outsider_403_no_tenant(api):
    _problem(api("outsider").get(ACME), 403, "no_tenant")


def test_list_members_without_token_401(api):
    _problem(api(None).get(ACME), 401, "unauthenticated")


# --- add -----------------------------------------------------------------------------------


def test_add_member_by_user_id(api, client, personas):
    uid = _uid(personas, "outsider")
    r = api("acme_admin").post(ACME, json={"user_id": uid, "role": "member"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["user_id"] == uid
    assert body["email"] == "outsider@example.com"
    assert body["roles"] == ["member"]
    assert body["is_default"] is True  # their first tenant becomes the default
    assert "outsider@example.com" in _members(api, "acme_admin")
    # They can work in acme now, with their existing token.
    token = personas.tokens["outsider"]
    assert client.get(ACME, headers=_auth(token)).status_code == 200
    tenants = client.get("/api/v1/me/tenants", headers=_auth(token)).json()
    assert [t["slug"] for t in tenants] == ["acme"]


def test_add_member_role_defaults_to_member(api, personas):
    assert _add(api, user_id=_uid(personas, "outsider"))["roles"] == ["member"]


def test_add_member_by_email_of_existing_user_case_insensitive(api, db, personas):
    r = api("acme_admin").post(ACME, json={"email": "  GLOBEX.Member@Example.com ", "role": "viewer"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["user_id"] == _uid(personas, "globex_member")
    assert body["invitation_pending"] is False
    assert body["is_default"] is False
    assert _user_count(db, "globex.member@example.com") == 1
    assert _outbox(db, "globex.member@example.com") == []


def test_add_member_by_unknown_email_creates_user_and_mails_invitation(api, client, db, personas):
    r = api("acme_admin").post(ACME, json={"email": "Newbie@Example.com", "role": "viewer"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["email"] == "newbie@example.com"
    assert body["invitation_pending"] is True
    assert body["roles"] == ["viewer"]
    assert _user_count(db, "newbie@example.com") == 1
    mails = _outbox(db, "newbie@example.com")
    assert [m.kind for m in mails] == ["invitation"]
    assert mails[0].tenant_id == personas.acme.id
    assert "Acme Corp" in mails[0].body_text
    r = api(None).post(
        "/api/v1/auth/invitations/accept", json={"token": _link_token(mails[0]), "password": STRONG}
    )
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    assert client.get(ACME, headers=_auth(token)).status_code == 200
    _problem(
        client.post(ACME, json={"email": "x@example.com"}, headers=_auth(token)), 403, "permission_denied"
    )


@pytest.mark.parametrize("role", TENANT_ROLES)
def test_add_member_tenant_admin_may_grant_every_builtin_tenant_role(api, personas, role):
    body = _add(api, user_id=_uid(personas, "outsider"), role=role)
    assert body["roles"] == [role]
    assert _members(api, "acme_admin")["outsider@example.com"]["roles"] == [role]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"role": "member"}, "validation_error"),
        ({"user_id": "{outsider}", "email": "outsider@example.com"}, "validation_error"),
        ({"user_id": "not-a-uuid"}, "validation_error"),
        ({"email": "newbie@example.com", "role": "overlord"}, "unknown_role"),
        ({"email": "newbie@example.com", "role": "superadmin"}, "unknown_role"),
        ({"user_id": "{outsider}", "role": "overlord"}, "unknown_role"),
        ({"email": "newbie@example.com", "role": ""}, "validation_error"),
        ({"email": "not an email"}, "invalid_email"),
        ({"email": "newbie@example.com", "tenant_id": "{globex}"}, "validation_error"),
        ({"email": "newbie@example.com", "is_default": True}, "validation_error"),
    ],
)
def test_add_member_bad_input_422_nothing_written(api, db, personas, body, code):
    subst = {"{outsider}": _uid(personas, "outsider"), "{globex}": str(personas.globex.id)}
    body = {k: subst.get(v, v) if isinstance(v, str) else v for k, v in body.items()}
    before = _all_audit(db)
    _problem(api("acme_admin").post(ACME, json=body), 422, code)
    assert _all_audit(db) == before
    assert _user_count(db, "newbie@example.com") == 0
    assert _outbox(db, "newbie@example.com") == []
    assert len(_members(api, "acme_admin")) == 4
    assert _live_memberships(db, personas.users["outsider"].id) == []


def test_add_member_unknown_or_deleted_user_id_404(api, personas):
    _problem(api("acme_admin").post(ACME, json={"user_id": str(uuid.uuid4())}), 404, "not_found")
    uid = _uid(personas, "outsider")
    assert api("superadmin").delete(f"/api/v1/users/{uid}").status_code == 200
    _problem(api("acme_admin").post(ACME, json={"user_id": uid}), 404, "not_found")
    assert len(_members(api, "acme_admin")) == 4


@pytest.mark.parametrize("by", ["user_id", "email"])
def test_add_member_already_member_409_already_member(api, db, personas, by):
    value = _uid(personas, "acme_viewer") if by == "user_id" else "ACME.viewer@example.com"
    before = _all_audit(db)
    _problem(api("acme_admin").post(ACME, json={by: value, "role": "tenant_admin"}), 409, "already_member")
    assert _members(api, "acme_admin")["acme.viewer@example.com"]["roles"] == ["viewer"]
    assert _all_audit(db) == before


@pytest.mark.parametrize("persona", ["acme_member", "acme_viewer", "acme_auditor"])
def test_add_member_without_member_manage_403(api, db, personas, persona):
    before = _all_audit(db)
    r = api(persona).post(ACME, json={"user_id": _uid(personas, "outsider"), "role": "viewer"})
    _problem(r, 403, "permission_denied")
    r = api(persona).post(ACME, json={"email": "newbie@example.com"})
    _problem(r, 403, "permission_denied")
    assert _all_audit(db) == before
    assert _user_count(db, "newbie@example.com") == 0
    assert _live_memberships(db, personas.users["outsider"].id) == []


def test_add_member_other_tenant_admin_404(api, db, personas):
    before = _all_audit(db)
    _problem(api("globex_admin").post(ACME, json={"user_id": _uid(personas, "outsider")}), 404, "not_found")
    _problem(api("globex_admin").post(ACME, json={"email": "newbie@example.com"}), 404, "not_found")
    assert _all_audit(db) == before
    assert _user_count(db, "newbie@example.com") == 0


def test_add_member_outsider_403_no_tenant(api, personas):
    r = api("outsider").post(ACME, json={"user_id": _uid(personas, "outsider"), "role": "tenant_admin"})
    _problem(r, 403, "no_tenant")
    assert "outsider@example.com" not in _members(api, "superadmin")


def test_add_member_superadmin_adds_to_any_tenant(api, personas):
    body = _add(api, "superadmin", GLOBEX, user_id=_uid(personas, "acme_viewer"), role="auditor")
    assert body["roles"] == ["auditor"]
    assert _members(api, "globex_admin", GLOBEX)["acme.viewer@example.com"]["roles"] == ["auditor"]


def test_add_member_writes_audit_event_member_add_in_the_tenant(api, personas):
    uid = _uid(personas, "outsider")
    _add(api, user_id=uid, role="viewer")
    events = [e for e in _tenant_audit(api, "acme_admin", "acme", "member.add") if e["target"]["id"] == uid]
    assert len(events) == 1
    assert events[0]["after"]["role"] == "viewer"
    assert events[0]["actor"]["id"] == _uid(personas, "acme_admin")
    assert uid not in {e["target"]["id"] for e in _tenant_audit(api, "globex_admin", "globex", "member.add")}


# --- get -----------------------------------------------------------------------------------


def test_get_member(api, personas):
    r = api("acme_viewer").get(f"{ACME}/{_uid(personas, 'acme_member')}")
    assert r.status_code == 200
    body = r.json()
    assert body["email"] == "acme.member@example.com"
    assert body["roles"] == ["member"]
    assert body["is_default"] is True


def test_get_member_of_other_tenant_404(api, personas):
    # A globex user id under acme: not a member here, indistinguishable from unknown.
    _problem(api("acme_admin").get(f"{ACME}/{_uid(personas, 'globex_member')}"), 404, "not_found")
    _problem(api("acme_admin").get(f"{ACME}/{uuid.uuid4()}"), 404, "not_found")
    # A globex admin on acme's members.
    _problem(api("globex_admin").get(f"{ACME}/{_uid(personas, 'acme_member')}"), 404, "not_found")


def test_get_member_bad_id_422_and_outsider_403(api, personas):
    _problem(api("acme_admin").get(f"{ACME}/not-a-uuid"), 422, "validation_error")
    _problem(api("outsider").get(f"{ACME}/{_uid(personas, 'acme_member')}"), 403, "no_tenant")


# --- change role ---------------------------------------------------------------------------


def test_change_member_role_replaces_role_and_takes_effect(api, client, personas):
    uid = _uid(personas, "acme_member")
    token = personas.tokens["acme_member"]
    _problem(
        client.post(ACME, json={"email": "x@example.com"}, headers=_auth(token)), 403, "permission_denied"
    )
    r = api("acme_admin").patch(f"{ACME}/{uid}", json={"role": "tenant_admin"})
    assert r.status_code == 200, r.text
    assert r.json()["roles"] == ["tenant_admin"]
    assert _members(api, "acme_admin")["acme.member@example.com"]["roles"] == ["tenant_admin"]
    r = client.post(ACME, json={"email": "x@example.com"}, headers=_auth(token))
    assert r.status_code == 201, r.text
    r = api("acme_admin").patch(f"{ACME}/{uid}", json={"role": "viewer"})
    assert r.json()["roles"] == ["viewer"]


def test_change_member_role_writes_audit_event_member_role_change(api, personas):
    uid = _uid(personas, "acme_viewer")
    api("acme_admin").patch(f"{ACME}/{uid}", json={"role": "auditor"})
    events = [
        e for e in _tenant_audit(api, "acme_admin", "acme", "member.role_change") if e["target"]["id"] == uid
    ]
    assert len(events) == 1
    assert events[0]["before"] == {"roles": ["viewer"]}
    assert events[0]["after"] == {"roles": ["auditor"]}
    assert events[0]["tenant_id"] == str(personas.acme.id)


def test_change_member_role_leaves_the_other_tenant_alone(api, db, personas):
    user = personas.users["globex_member"]
    _add(api, user_id=str(user.id), role="viewer")
    r = api("acme_admin").patch(f"{ACME}/{user.id}", json={"role": "auditor"})
    assert r.status_code == 200
    assert _members(api, "globex_admin", GLOBEX)["globex.member@example.com"]["roles"] == ["member"]
    assert _live_grants(db, user.id) == sorted(
        [(str(personas.acme.id), "auditor"), (str(personas.globex.id), "member")]
    )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"role": "overlord"}, "unknown_role"),
        ({"role": "superadmin"}, "unknown_role"),
        ({}, "validation_error"),
        ({"is_default": False}, "validation_error"),
        ({"role": "viewer", "email": "x@example.com"}, "validation_error"),
        ({"roles": ["viewer"]}, "validation_error"),
    ],
)
def test_change_member_role_bad_input_422_nothing_changed(api, db, personas, body, code):
    uid = _uid(personas, "acme_member")
    before = _all_audit(db)
    _problem(api("acme_admin").patch(f"{ACME}/{uid}", json=body), 422, code)
    assert _members(api, "acme_admin")["acme.member@example.com"]["roles"] == ["member"]
    assert _all_audit(db) == before


def test_change_member_role_non_member_404(api, personas):
    _problem(
        api("acme_admin").patch(f"{ACME}/{_uid(personas, 'globex_member')}", json={"role": "viewer"}),
        404,
        "not_found",
    )
    _problem(api("acme_admin").patch(f"{ACME}/{uuid.uuid4()}", json={"role": "viewer"}), 404, "not_found")
    assert _members(api, "globex_admin", GLOBEX)["globex.member@example.com"]["roles"] == ["member"]


@pytest.mark.parametrize("persona", ["acme_member", "acme_viewer", "acme_auditor"])
def test_change_member_role_without_member_manage_403(api, personas, persona):
    r = api(persona).patch(f"{ACME}/{_uid(personas, persona)}", json={"role": "tenant_admin"})
    _problem(r, 403, "permission_denied")
    assert _members(api, "acme_admin")[f"{persona.replace('_', '.')}@example.com"]["roles"] != [
        "tenant_admin"
    ]


def test_change_member_role_other_tenant_admin_404(api, personas):
    r = api("globex_admin").patch(f"{ACME}/{_uid(personas, 'acme_member')}", json={"role": "tenant_admin"})
    _problem(r, 404, "not_found")
    assert _members(api, "acme_admin")["acme.member@example.com"]["roles"] == ["member"]


def test_change_member_role_last_tenant_admin_cannot_be_demoted_by_tenant_admin(api, db, personas):
    uid = _uid(personas, "acme_admin")
    before = _all_audit(db)
    _problem(api("acme_admin").patch(f"{ACME}/{uid}", json={"role": "member"}), 409, "last_tenant_admin")
    assert _members(api, "acme_admin")["acme.admin@example.com"]["roles"] == ["tenant_admin"]
    assert _all_audit(db) == before
    # Re-asserting the admin role is no demotion.
    assert api("acme_admin").patch(f"{ACME}/{uid}", json={"role": "tenant_admin"}).status_code == 200


def test_change_member_role_last_tenant_admin_can_be_demoted_by_superadmin(api, personas):
    uid = _uid(personas, "acme_admin")
    r = api("superadmin").patch(f"{ACME}/{uid}", json={"role": "viewer"})
    assert r.status_code == 200, r.text
    assert r.json()["roles"] == ["viewer"]
    _problem(api("acme_admin").post(ACME, json={"email": "x@example.com"}), 403, "permission_denied")


def test_change_member_role_admin_may_step_down_when_another_admin_exists(api, personas):
    api("acme_admin").patch(f"{ACME}/{_uid(personas, 'acme_member')}", json={"role": "tenant_admin"})
    r = api("acme_admin").patch(f"{ACME}/{_uid(personas, 'acme_admin')}", json={"role": "member"})
    assert r.status_code == 200, r.text
    # Now acme_member is the last admin.
    r = api("acme_member").patch(f"{ACME}/{_uid(personas, 'acme_member')}", json={"role": "member"})
    _problem(r, 409, "last_tenant_admin")


def test_change_member_role_deactivated_admin_does_not_count(api, personas):
    other = _uid(personas, "acme_member")
    api("acme_admin").patch(f"{ACME}/{other}", json={"role": "tenant_admin"})
    assert api("superadmin").patch(f"/api/v1/users/{other}", json={"active": False}).status_code == 200
    r = api("acme_admin").patch(f"{ACME}/{_uid(personas, 'acme_admin')}", json={"role": "member"})
    _problem(r, 409, "last_tenant_admin")
    _problem(api("acme_admin").delete(f"{ACME}/{_uid(personas, 'acme_admin')}"), 409, "last_tenant_admin")


def test_change_member_role_admins_of_another_tenant_do_not_count(api, personas):
    # globex has its own admin; acme's last admin is still acme's last admin.
    _add(api, "superadmin", GLOBEX, user_id=_uid(personas, "acme_admin"), role="tenant_admin")
    r = api("acme_admin").patch(f"{ACME}/{_uid(personas, 'acme_admin')}", json={"role": "member"})
    _problem(r, 409, "last_tenant_admin")


# --- default tenant ------------------------------------------------------------------------


def test_update_member_is_default_moves_the_default_tenant(api, client, db, personas):
    user = personas.users["globex_member"]
    _add(api, user_id=str(user.id), role="viewer")
    r = api("acme_admin").patch(f"{ACME}/{user.id}", json={"is_default": True})
    assert r.status_code == 200, r.text
    assert r.json()["is_default"] is True
    assert r.json()["roles"] == ["viewer"]
    me = client.get("/api/v1/me", headers=_auth(personas.tokens["globex_member"])).json()
    assert me["default_tenant_id"] == str(personas.acme.id)
    assert _members(api, "globex_admin", GLOBEX)["globex.member@example.com"]["is_default"] is False
    events = _tenant_audit(api, "acme_admin", "acme", "member.set_default")
    assert [e["target"]["id"] for e in events] == [str(user.id)]


def test_update_member_role_and_default_together(api, personas):
    user = personas.users["globex_member"]
    _add(api, user_id=str(user.id), role="viewer")
    r = api("acme_admin").patch(f"{ACME}/{user.id}", json={"is_default": True, "role": "auditor"})
    assert r.status_code == 200, r.text
    assert (r.json()["is_default"], r.json()["roles"]) == (True, ["auditor"])


def test_update_member_is_default_for_non_member_404(api, personas):
    uid = _uid(personas, "globex_member")
    _problem(api("acme_admin").patch(f"{ACME}/{uid}", json={"is_default": True}), 404, "not_found")
    _problem(
        api("globex_admin").patch(f"{ACME}/{_uid(personas, 'acme_member')}", json={"is_default": True}),
        404,
        "not_found",
    )


def test_update_member_is_default_without_member_manage_403(api, personas):
    r = api("acme_viewer").patch(f"{ACME}/{_uid(personas, 'acme_member')}", json={"is_default": True})
    _problem(r, 403, "permission_denied")


# --- remove --------------------------------------------------------------------------------


def test_remove_member_loses_access_to_the_tenant(api, client, db, personas):
    uid = _uid(personas, "acme_member")
    token = personas.tokens["acme_member"]
    r = api("acme_admin").delete(f"{ACME}/{uid}")
    assert r.status_code == 204, r.text
    assert "acme.member@example.com" not in _members(api, "acme_admin")
    _problem(api("acme_admin").get(f"{ACME}/{uid}"), 404, "not_found")
    # No tenant left at all: the clear answer.
    _problem(client.get(ACME, headers=_auth(token)), 403, "no_tenant")
    _problem(client.get("/api/v1/tenants/acme", headers=_auth(token)), 403, "no_tenant")
    assert client.get("/api/v1/me/tenants", headers=_auth(token)).json() == []
    me = client.get("/api/v1/me", headers=_auth(token)).json()
    assert me["default_tenant_id"] is None
    assert api("superadmin").get("/api/v1/tenants/acme").json()["member_count"] == 3


def test_remove_member_with_another_tenant_gets_404_on_the_removed_one(api, client, db, personas):
    user = personas.users["globex_member"]
    _add(api, user_id=str(user.id), role="member")
    assert api("acme_admin").delete(f"{ACME}/{user.id}").status_code == 204
    token = personas.tokens["globex_member"]
    _problem(client.get(ACME, headers=_auth(token)), 404, "not_found")
    assert client.get(GLOBEX, headers=_auth(token)).status_code == 200
    # The globex membership and role are untouched.
    assert _members(api, "globex_admin", GLOBEX)["globex.member@example.com"]["roles"] == ["member"]
    assert _live_grants(db, user.id) == [(str(personas.globex.id), "member")]
    assert _live_memberships(db, user.id) == [str(personas.globex.id)]


def test_remove_member_writes_audit_event_member_remove(api, personas):
    uid = _uid(personas, "acme_viewer")
    api("acme_admin").delete(f"{ACME}/{uid}")
    events = [
        e for e in _tenant_audit(api, "acme_admin", "acme", "member.remove") if e["target"]["id"] == uid
    ]
    assert len(events) == 1
    assert events[0]["actor"]["id"] == _uid(personas, "acme_admin")
    assert _tenant_audit(api, "globex_admin", "globex", "member.remove") == []


def test_remove_member_then_add_again(api, personas):
    uid = _uid(personas, "acme_viewer")
    assert api("acme_admin").delete(f"{ACME}/{uid}").status_code == 204
    body = _add(api, user_id=uid, role="auditor")
    assert body["roles"] == ["auditor"]
    assert _members(api, "acme_admin")["acme.viewer@example.com"]["roles"] == ["auditor"]


def test_remove_member_twice_or_non_member_404(api, personas):
    uid = _uid(personas, "acme_viewer")
    assert api("acme_admin").delete(f"{ACME}/{uid}").status_code == 204
    _problem(api("acme_admin").delete(f"{ACME}/{uid}"), 404, "not_found")
    _problem(api("acme_admin").delete(f"{ACME}/{_uid(personas, 'globex_member')}"), 404, "not_found")
    assert "globex.member@example.com" in _members(api, "globex_admin", GLOBEX)


@pytest.mark.parametrize("persona", ["acme_member", "acme_viewer", "acme_auditor"])
def test_remove_member_without_member_manage_403(api, db, personas, persona):
    before = _all_audit(db)
    _problem(api(persona).delete(f"{ACME}/{_uid(personas, 'acme_viewer')}"), 403, "permission_denied")
    assert "acme.viewer@example.com" in _members(api, "acme_admin")
    assert _all_audit(db) == before


def test_remove_member_other_tenant_admin_404_and_outsider_403(api, personas):
    _problem(api("globex_admin").delete(f"{ACME}/{_uid(personas, 'acme_viewer')}"), 404, "not_found")
    _problem(api("outsider").delete(f"{ACME}/{_uid(personas, 'acme_viewer')}"), 403, "no_tenant")
    assert "acme.viewer@example.com" in _members(api, "acme_admin")


def test_remove_member_last_tenant_admin_409_by_tenant_admin(api, db, personas):
    before = _all_audit(db)
    _problem(api("acme_admin").delete(f"{ACME}/{_uid(personas, 'acme_admin')}"), 409, "last_tenant_admin")
    assert "acme.admin@example.com" in _members(api, "acme_admin")
    assert _all_audit(db) == before


def test_remove_member_last_tenant_admin_by_superadmin(api, client, personas):
    assert api("superadmin").delete(f"{ACME}/{_uid(personas, 'acme_admin')}").status_code == 204
    assert "acme.admin@example.com" not in _members(api, "superadmin")
    _problem(client.get(ACME, headers=_auth(personas.tokens["acme_admin"])), 403, "no_tenant")


# --- invitation ----------------------------------------------------------------------------


def test_resend_member_invitation_invalidates_the_previous_link(api, db, personas):
    uid = _add(api, email="pending@example.com")["user_id"]
    old = _link_token(_outbox(db, "pending@example.com")[0])
    r = api("acme_admin").post(f"{ACME}/{uid}/invitation")
    assert r.status_code == 204, r.text
    mails = _outbox(db, "pending@example.com")
    assert len(mails) == 2
    assert mails[1].tenant_id == personas.acme.id
    new = _link_token(mails[1])
    r = api(None).post("/api/v1/auth/invitations/accept", json={"token": old, "password": STRONG})
    _problem(r, 422, "invalid_or_expired_token")
    r = api(None).post("/api/v1/auth/invitations/accept", json={"token": new, "password": STRONG})
    assert r.status_code == 200, r.text
    assert _members(api, "acme_admin")["pending@example.com"]["invitation_pending"] is False


def test_resend_member_invitation_after_acceptance_409_already_accepted(api, db, personas):
    before = _all_audit(db)
    _problem(
        api("acme_admin").post(f"{ACME}/{_uid(personas, 'acme_member')}/invitation"), 409, "already_accepted"
    )
    assert _outbox(db, "acme.member@example.com") == []
    assert _all_audit(db) == before


def test_resend_member_invitation_to_deactivated_user_refused(api, db, personas):
    uid = _add(api, email="pending@example.com")["user_id"]
    assert api("superadmin").patch(f"/api/v1/users/{uid}", json={"active": False}).status_code == 200
    _problem(api("acme_admin").post(f"{ACME}/{uid}/invitation"), 409, "user_inactive")
    assert len(_outbox(db, "pending@example.com")) == 1


def test_resend_member_invitation_non_member_404(api, db):
    # An invited user of globex, resent from acme.
    uid = _add(api, "globex_admin", GLOBEX, email="globex.pending@example.com")["user_id"]
    _problem(api("acme_admin").post(f"{ACME}/{uid}/invitation"), 404, "not_found")
    _problem(api("acme_admin").post(f"{ACME}/{uuid.uuid4()}/invitation"), 404, "not_found")
    assert len(_outbox(db, "globex.pending@example.com")) == 1


def test_resend_member_invitation_permissions(api, db):
    uid = _add(api, email="pending@example.com")["user_id"]
    _problem(api("acme_member").post(f"{ACME}/{uid}/invitation"), 403, "permission_denied")
    _problem(api("globex_admin").post(f"{ACME}/{uid}/invitation"), 404, "not_found")
    _problem(api("outsider").post(f"{ACME}/{uid}/invitation"), 403, "no_tenant")
    assert len(_outbox(db, "pending@example.com")) == 1


# --- misc ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("GET", "", None),
        ("POST", "", {"email": "x@example.com"}),
        ("GET", "/{id}", None),
        ("PATCH", "/{id}", {"role": "viewer"}),
        ("DELETE", "/{id}", None),
        ("POST", "/{id}/invitation", None),
    ],
)
def test_members_endpoints_without_token_401(api, personas, method, suffix, body):
    path = ACME + suffix.replace("{id}", _uid(personas, "acme_member"))
    kwargs = {"json": body} if body is not None else {}
    _problem(api(None).request(method, path, **kwargs), 401, "unauthenticated")


def test_members_sign_in_after_removal_and_restore_of_tenant_membership_via_login(api, client, db, personas):
    """A removed member who signs in again still has no acme access."""
    api("acme_admin").delete(f"{ACME}/{_uid(personas, 'acme_member')}")
    token = login_token(db, "acme.member@example.com", PASSWORD)
    _problem(client.get(ACME, headers=_auth(token)), 403, "no_tenant")

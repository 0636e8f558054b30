"""`/api/v1/tenants/{tenant}/members`: list, add (by id, by email, by inviting), get, change
role, default tenant, remove, resend invitation — and who may do which."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update

from tenantry.db import scoping
from tenantry.db.session import Database
from tenantry.db.tables import AuditEvent, Grant, Membership, MembershipInvitation, OutboxMessage, User
from tenantry.db.types import utcnow
from tests.asserts import assert_problem as _problem
from tests.personas import PASSWORD, login_token

ACME = "/api/v1/tenants/acme/members"
ACME_INVITATIONS = "/api/v1/tenants/acme/invitations"
GLOBEX = "/api/v1/tenants/globex/members"
ME_INV = "/api/v1/me/invitations"
INVITATION_FIELDS = {"id", "email", "role", "status", "invited_by", "created_at", "expires_at"}
STRONG = "violet-harbour-engine-stapler-91"
TENANT_ROLES = ["tenant_admin", "member", "viewer", "auditor"]


# --- helpers -------------------------------------------------------------------------------


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


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


def _tenant_audit(api, persona: str, tenant: str, action: str | None) -> list[dict]:
    params = {"limit": 200} | ({"action": action} if action else {})
    r = api(persona).get(f"/api/v1/tenants/{tenant}/audit", params=params)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _add(api, persona: str = "superadmin", base: str = ACME, **body) -> dict:
    """Attach at once (account administrators do)."""
    r = api(persona).post(base, json=body)
    assert r.status_code == 201, r.text
    return r.json()


def _invite(api, persona: str = "acme_admin", base: str = ACME, **body) -> dict:
    """Anyone else leaves an invitation."""
    r = api(persona).post(base, json=body)
    assert r.status_code == 202, r.text
    return r.json()


def _pending(api, persona: str = "acme_admin", base: str = ACME) -> list[dict]:
    r = api(persona).get(base.replace("/members", "/invitations"), params={"limit": 200})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _invitation_rows(db: Database) -> int:
    with db.sessions() as s, scoping.cross_tenant(s), scoping.include_deleted(s):
        return s.scalar(select(func.count()).select_from(MembershipInvitation)) or 0


def _expire(db: Database, invitation_id: str) -> None:
    with db.unit_of_work() as s, scoping.cross_tenant(s):
        s.execute(
            update(MembershipInvitation)
            .where(MembershipInvitation.id == uuid.UUID(invitation_id))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )


def _lifetime(inv: dict) -> timedelta:
    """Expiry minus creation, to the minute."""
    delta = datetime.fromisoformat(inv["expires_at"]) - datetime.fromisoformat(inv["created_at"])
    return timedelta(minutes=round(delta.total_seconds() / 60))


def _accept_link(api, mail: OutboxMessage) -> str:
    """Set the first password through the mailed link; the new session's token."""
    r = api(None).post(
        "/api/v1/auth/invitations/accept", json={"token": _link_token(mail), "password": STRONG}
    )
    assert r.status_code == 200, r.text
    return r.json()["token"]


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


# --- add: account administrators attach at once ----------------------------------------------


def test_add_member_superadmin_attaches_existing_account_by_user_id_at_once(api, client, db, personas):
    uid = _uid(personas, "outsider")
    r = api("superadmin").post(ACME, json={"user_id": uid, "role": "member"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["user_id"] == uid
    assert body["email"] == "outsider@example.com"
    assert body["roles"] == ["member"]
    assert body["is_default"] is True  # their first tenant becomes the default
    assert "outsider@example.com" in _members(api, "acme_admin")
    assert _invitation_rows(db) == 0
    # They can work in acme now, with their existing token.
    token = personas.tokens["outsider"]
    assert client.get(ACME, headers=_auth(token)).status_code == 200
    tenants = client.get("/api/v1/me/tenants", headers=_auth(token)).json()
    assert [t["slug"] for t in tenants] == ["acme"]


def test_add_member_role_defaults_to_member(api, personas):
    assert _add(api, user_id=_uid(personas, "outsider"))["roles"] == ["member"]


def test_add_member_superadmin_by_email_of_existing_user_case_insensitive(api, db, personas):
    r = api("superadmin").post(ACME, json={"email": "  GLOBEX.Member@Example.com ", "role": "viewer"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["user_id"] == _uid(personas, "globex_member")
    assert body["invitation_pending"] is False
    assert body["is_default"] is False
    assert _user_count(db, "globex.member@example.com") == 1
    assert _outbox(db, "globex.member@example.com") == []


def test_add_member_superadmin_by_unknown_email_creates_member_and_mails_link(api, client, db, personas):
    r = api("superadmin").post(ACME, json={"email": "Newbie@Example.com", "role": "viewer"})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["email"] == "newbie@example.com"
    assert body["invitation_pending"] is True
    assert body["roles"] == ["viewer"]
    mails = _outbox(db, "newbie@example.com")
    assert [m.kind for m in mails] == ["invitation"]
    token = _accept_link(api, mails[0])
    assert client.get(ACME, headers=_auth(token)).status_code == 200


def test_add_member_superadmin_attach_settles_an_open_invitation(api, db, personas):
    _invite(api, email="outsider@example.com", role="viewer")
    assert _invitation_rows(db) == 1
    _add(api, user_id=_uid(personas, "outsider"), role="auditor")
    assert _invitation_rows(db) == 0
    assert api("outsider").get(ME_INV).json() == []
    assert _members(api, "acme_admin")["outsider@example.com"]["roles"] == ["auditor"]


# --- add: everyone else invites, with one answer for every address ---------------------------------


def test_add_member_by_tenant_admin_same_answer_whether_or_not_an_account_exists(api, db, personas):
    before = Counter(e["action"] for e in _tenant_audit(api, "acme_admin", "acme", None))
    existing = api("acme_admin").post(ACME, json={"email": "globex.member@example.com", "role": "viewer"})
    new = api("acme_admin").post(ACME, json={"email": "newbie@example.com", "role": "viewer"})
    assert existing.status_code == new.status_code == 202, (existing.text, new.text)
    a, b = existing.json(), new.json()
    assert set(a) == set(b) == INVITATION_FIELDS  # no names, no user id, no "pending" flag
    assert (a["status"], a["role"], a["invited_by"]) == (b["status"], b["role"], b["invited_by"])
    assert a["status"] == "invited"
    assert a["invited_by"] == "acme.admin@example.com"
    assert _lifetime(a) == _lifetime(b) == timedelta(days=7)
    # Both got exactly one mail, neither is a member yet.
    assert len(_outbox(db, "globex.member@example.com")) == len(_outbox(db, "newbie@example.com")) == 1
    assert len(_members(api, "acme_admin")) == 4
    # The pending list shows both alike.
    rows = {r["email"]: r for r in _pending(api)}
    assert set(rows) == {"globex.member@example.com", "newbie@example.com"}
    assert rows["globex.member@example.com"] | {
        "id": None,
        "email": None,
        "created_at": None,
        "expires_at": None,
    } == (rows["newbie@example.com"] | {"id": None, "email": None, "created_at": None, "expires_at": None})
    # The tenant's audit log: the same events for both, naming the invitations, not the accounts.
    after = _tenant_audit(api, "acme_admin", "acme", None)
    assert Counter(e["action"] for e in after) - before == Counter({"member.invite": 2})
    invites = _tenant_audit(api, "acme_admin", "acme", "member.invite")
    assert {e["target"]["type"] for e in invites} == {"membership_invitation"}
    assert {e["target"]["id"] for e in invites} == {a["id"], b["id"]}
    assert {tuple(sorted(e["after"])) for e in invites} == {("email", "expires_at", "role")}


def test_add_member_by_tenant_admin_existing_account_is_asked_not_attached(api, client, db, personas):
    body = _invite(api, email="  GLOBEX.Member@Example.com ", role="viewer")
    assert body["email"] == "globex.member@example.com"
    assert _user_count(db, "globex.member@example.com") == 1
    [mail] = _outbox(db, "globex.member@example.com")
    assert mail.kind == "membership_invitation"
    assert mail.tenant_id == personas.acme.id
    assert "Acme Corp" in mail.body_text and "viewer" in mail.body_text
    assert "token=" not in mail.body_text  # nothing to redeem: the account answers when signed in
    token = personas.tokens["globex_member"]
    _problem(client.get(ACME, headers=_auth(token)), 404, "not_found")
    assert "globex.member@example.com" not in _members(api, "acme_admin")
    assert _live_memberships(db, personas.users["globex_member"].id) == [str(personas.globex.id)]
    [mine] = api("globex_member").get(ME_INV).json()
    assert mine["id"] == body["id"]


def test_add_member_by_tenant_admin_user_id_is_an_invitation_too(api, client, db, personas):
    r = api("acme_admin").post(ACME, json={"user_id": _uid(personas, "outsider"), "role": "member"})
    assert r.status_code == 202, r.text
    assert set(r.json()) == INVITATION_FIELDS
    assert r.json()["email"] == "outsider@example.com"
    assert _live_memberships(db, personas.users["outsider"].id) == []
    _problem(client.get(ACME, headers=_auth(personas.tokens["outsider"])), 403, "no_tenant")


def test_add_member_by_tenant_admin_unknown_email_joins_by_accepting_the_link(api, client, db, personas):
    body = _invite(api, email="Newbie@Example.com", role="viewer")
    assert body["email"] == "newbie@example.com"
    assert _user_count(db, "newbie@example.com") == 1
    assert "newbie@example.com" not in _members(api, "acme_admin")
    [mail] = _outbox(db, "newbie@example.com")
    assert mail.kind == "invitation"
    assert mail.tenant_id == personas.acme.id
    assert "Acme Corp" in mail.body_text
    token = _accept_link(api, mail)
    assert client.get(ACME, headers=_auth(token)).status_code == 200
    member = _members(api, "acme_admin")["newbie@example.com"]
    assert (member["roles"], member["is_default"]) == (["viewer"], True)
    assert _pending(api) == []
    accepted = _tenant_audit(api, "acme_admin", "acme", "member.invitation_accept")
    assert [e["target"]["id"] for e in accepted] == [body["id"]]
    # The new account's own creation is not in the tenant's log.
    assert _tenant_audit(api, "acme_admin", "acme", "user.create") == []
    # Joined with the role it was invited with: no member.manage.
    _problem(
        client.post(ACME, json={"email": "x@example.com"}, headers=_auth(token)), 403, "permission_denied"
    )


def test_add_member_by_tenant_admin_trashed_account_gets_the_same_answer(api, db, personas):
    assert api("superadmin").delete(f"/api/v1/users/{_uid(personas, 'outsider')}").status_code == 200
    r = api("acme_admin").post(ACME, json={"email": "outsider@example.com"})
    assert r.status_code == 202, r.text  # not 409 email_taken: that would tell an account exists
    assert set(r.json()) == INVITATION_FIELDS
    assert [p["email"] for p in _pending(api)] == ["outsider@example.com"]


def test_add_member_by_tenant_admin_twice_renews_the_invitation(api, db, personas):
    first = _invite(api, email="globex.member@example.com", role="viewer")
    second = _invite(api, email="globex.member@example.com", role="auditor")
    assert second["id"] == first["id"]
    assert second["role"] == "auditor"
    assert second["expires_at"] >= first["expires_at"]
    assert len(_outbox(db, "globex.member@example.com")) == 2
    assert [(p["id"], p["role"]) for p in _pending(api)] == [(first["id"], "auditor")]


@pytest.mark.parametrize("role", TENANT_ROLES)
def test_add_member_tenant_admin_may_invite_with_every_builtin_tenant_role(api, personas, role):
    body = _invite(api, user_id=_uid(personas, "outsider"), role=role)
    assert body["role"] == role
    r = api("outsider").post(f"{ME_INV}/{body['id']}/accept")
    assert r.status_code == 200, r.text
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
    assert _invitation_rows(db) == 0
    assert len(_members(api, "acme_admin")) == 4
    assert _live_memberships(db, personas.users["outsider"].id) == []


def test_add_member_unknown_or_deleted_user_id_404(api, db, personas):
    _problem(api("acme_admin").post(ACME, json={"user_id": str(uuid.uuid4())}), 404, "not_found")
    uid = _uid(personas, "outsider")
    assert api("superadmin").delete(f"/api/v1/users/{uid}").status_code == 200
    _problem(api("acme_admin").post(ACME, json={"user_id": uid}), 404, "not_found")
    assert len(_members(api, "acme_admin")) == 4
    assert _invitation_rows(db) == 0


@pytest.mark.parametrize("by", ["user_id", "email"])
@pytest.mark.parametrize("persona", ["acme_admin", "superadmin"])
def test_add_member_already_member_409_already_member(api, db, personas, by, persona):
    value = _uid(personas, "acme_viewer") if by == "user_id" else "ACME.viewer@example.com"
    before = _all_audit(db)
    _problem(api(persona).post(ACME, json={by: value, "role": "tenant_admin"}), 409, "already_member")
    assert _members(api, "acme_admin")["acme.viewer@example.com"]["roles"] == ["viewer"]
    assert _all_audit(db) == before
    assert _invitation_rows(db) == 0


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
    assert _invitation_rows(db) == 0


def test_add_member_other_tenant_admin_404(api, db, personas):
    before = _all_audit(db)
    _problem(api("globex_admin").post(ACME, json={"user_id": _uid(personas, "outsider")}), 404, "not_found")
    _problem(api("globex_admin").post(ACME, json={"email": "newbie@example.com"}), 404, "not_found")
    assert _all_audit(db) == before
    assert _user_count(db, "newbie@example.com") == 0
    assert _invitation_rows(db) == 0


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
    assert events[0]["actor"]["id"] == _uid(personas, "superadmin")
    assert uid not in {e["target"]["id"] for e in _tenant_audit(api, "globex_admin", "globex", "member.add")}


# --- pending invitations (the admin's side) ----------------------------------------------------


def test_list_invitations_shows_open_and_expired_to_member_managers(api, db, personas):
    a = _invite(api, email="globex.member@example.com", role="viewer")
    b = _invite(api, email="newbie@example.com", role="auditor")
    _expire(db, b["id"])
    rows = _pending(api)
    assert [(r["id"], r["email"], r["role"], r["status"]) for r in rows] == [
        (a["id"], "globex.member@example.com", "viewer", "invited"),
        (b["id"], "newbie@example.com", "auditor", "expired"),
    ]
    assert all(set(r) == INVITATION_FIELDS for r in rows)
    assert _pending(api, "superadmin") == rows
    assert _pending(api, "globex_admin", GLOBEX) == []


def test_list_invitations_pagination(api):
    for i in range(3):
        _invite(api, email=f"page{i}@example.com")
    first = api("acme_admin").get(ACME_INVITATIONS, params={"limit": 2}).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = api("acme_admin").get(ACME_INVITATIONS, params={"limit": 2, "cursor": first["next_cursor"]})
    assert [r["email"] for r in first["items"] + rest.json()["items"]] == [
        f"page{i}@example.com" for i in range(3)
    ]
    assert rest.json()["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "code"), [({"cursor": "!!!!"}, "invalid_cursor"), ({"limit": 0}, "validation_error")]
)
def test_list_invitations_bad_query_422(api, params, code):
    _problem(api("acme_admin").get(ACME_INVITATIONS, params=params), 422, code)


@pytest.mark.parametrize("persona", ["acme_member", "acme_viewer", "acme_auditor"])
def test_list_invitations_needs_member_manage_403(api, persona):
    _invite(api, email="newbie@example.com")
    _problem(api(persona).get(ACME_INVITATIONS), 403, "permission_denied")


def test_list_invitations_other_tenant_404_and_outsider_403(api):
    _invite(api, email="newbie@example.com")
    _problem(api("globex_admin").get(ACME_INVITATIONS), 404, "not_found")
    _problem(api("outsider").get(ACME_INVITATIONS), 403, "no_tenant")


def test_revoke_invitation_withdraws_it_and_is_audited(api, db, personas):
    inv = _invite(api, email="outsider@example.com", role="viewer")
    r = api("acme_admin").delete(f"{ACME_INVITATIONS}/{inv['id']}")
    assert r.status_code == 204, r.text
    assert _pending(api) == []
    assert api("outsider").get(ME_INV).json() == []
    _problem(api("outsider").post(f"{ME_INV}/{inv['id']}/accept"), 404, "not_found")
    [event] = _tenant_audit(api, "acme_admin", "acme", "member.invite_revoke")
    assert event["target"] == {"type": "membership_invitation", "id": inv["id"]}
    assert event["before"] == {"email": "outsider@example.com", "role": "viewer"}
    _problem(api("acme_admin").delete(f"{ACME_INVITATIONS}/{inv['id']}"), 404, "not_found")


def test_revoke_invitation_bad_id_422_unknown_or_other_tenant_404(api, db):
    globex_inv = _invite(api, "globex_admin", GLOBEX, email="outsider@example.com")
    before = _all_audit(db)
    _problem(api("acme_admin").delete(f"{ACME_INVITATIONS}/not-a-uuid"), 422, "validation_error")
    _problem(api("acme_admin").delete(f"{ACME_INVITATIONS}/{uuid.uuid4()}"), 404, "not_found")
    _problem(api("acme_admin").delete(f"{ACME_INVITATIONS}/{globex_inv['id']}"), 404, "not_found")
    _problem(api("globex_admin").delete(f"{ACME_INVITATIONS}/{globex_inv['id']}"), 404, "not_found")
    assert _all_audit(db) == before
    assert [p["id"] for p in _pending(api, "globex_admin", GLOBEX)] == [globex_inv["id"]]


@pytest.mark.parametrize("persona", ["acme_member", "acme_viewer"])
def test_revoke_invitation_without_member_manage_403(api, db, persona):
    inv = _invite(api, email="newbie@example.com")
    _problem(api(persona).delete(f"{ACME_INVITATIONS}/{inv['id']}"), 403, "permission_denied")
    assert _invitation_rows(db) == 1


# --- creating a tenant -------------------------------------------------------------------------


def test_tenant_creator_without_superadmin_becomes_its_tenant_admin(api, client, db, personas):
    sa = api("superadmin")
    r = sa.post("/api/v1/roles", json={"key": "founder", "name": "Founder", "permissions": ["tenant.create"]})
    assert r.status_code == 201, r.text
    grant = {"principal": {"type": "user", "id": _uid(personas, "outsider")}, "role": "founder"}
    assert sa.post("/api/v1/grants", json=grant).status_code == 201
    r = api("outsider").post("/api/v1/tenants", json={"slug": "initech", "name": "Initech"})
    assert r.status_code == 201, r.text
    members = _members(api, "outsider", "/api/v1/tenants/initech/members")
    assert members["outsider@example.com"]["roles"] == ["tenant_admin"]
    assert members["outsider@example.com"]["is_default"] is True
    # An admin indeed: they may invite there, and not anywhere else.
    assert (
        api("outsider").post("/api/v1/tenants/initech/members", json={"email": "x@example.com"}).status_code
        == 202
    )
    _problem(api("outsider").get(ACME), 404, "not_found")
    [event] = _tenant_audit(api, "outsider", "initech", "member.add")
    assert event["after"]["via"] == "tenant.create"


def test_tenant_creator_superadmin_does_not_become_a_member(api):
    r = api("superadmin").post("/api/v1/tenants", json={"slug": "initech", "name": "Initech"})
    assert r.status_code == 201, r.text
    assert _members(api, "superadmin", "/api/v1/tenants/initech/members") == {}


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
    assert r.status_code == 202, r.text
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
    uid = _add(api, "superadmin", GLOBEX, email="globex.pending@example.com")["user_id"]
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
        ("GET", "/invitations", None),
        ("DELETE", "/invitations/{id}", None),
    ],
)
def test_members_endpoints_without_token_401(api, personas, method, suffix, body):
    base, suffix = (
        (ACME_INVITATIONS, suffix[len("/invitations") :])
        if suffix.startswith("/invitations")
        else (ACME, suffix)
    )
    path = base + suffix.replace("{id}", _uid(personas, "acme_member"))
    kwargs = {"json": body} if body is not None else {}
    _problem(api(None).request(method, path, **kwargs), 401, "unauthenticated")


def test_members_sign_in_after_removal_and_restore_of_tenant_membership_via_login(api, client, db, personas):
    """A removed member who signs in again still has no acme access."""
    api("acme_admin").delete(f"{ACME}/{_uid(personas, 'acme_member')}")
    token = login_token(db, "acme.member@example.com", PASSWORD)
    _problem(client.get(ACME, headers=_auth(token)), 403, "no_tenant")

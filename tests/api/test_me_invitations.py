"""`/api/v1/me/invitations`: tenants asking one's account to join — list, accept, decline — and
who may answer which."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from sqlalchemy import func, select, update

from tenantry.db import scoping
from tenantry.db.session import Database
from tenantry.db.tables import AuditEvent, MembershipInvitation, OutboxMessage
from tenantry.db.types import utcnow
from tests.asserts import assert_problem as _problem

ME_INV = "/api/v1/me/invitations"
ACME = "/api/v1/tenants/acme/members"
GLOBEX = "/api/v1/tenants/globex/members"
STRONG = "violet-harbour-engine-stapler-91"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _invite(api, email: str, role: str = "viewer", persona: str = "acme_admin", base: str = ACME) -> dict:
    r = api(persona).post(base, json={"email": email, "role": role})
    assert r.status_code == 202, r.text
    return r.json()


def _mine(api, persona: str) -> list[dict]:
    r = api(persona).get(ME_INV)
    assert r.status_code == 200, r.text
    return r.json()


def _members(api, base: str = ACME) -> dict[str, dict]:
    r = api("superadmin").get(base, params={"limit": 200})
    assert r.status_code == 200, r.text
    return {m["email"]: m for m in r.json()["items"]}


def _all_audit(db: Database) -> int:
    with db.sessions() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent)) or 0


def _rows(db: Database) -> int:
    with db.sessions() as s, scoping.cross_tenant(s):
        return s.scalar(select(func.count()).select_from(MembershipInvitation)) or 0


def _tenant_audit(api, tenant: str, action: str) -> list[dict]:
    r = api("superadmin").get(f"/api/v1/tenants/{tenant}/audit", params={"action": action, "limit": 200})
    assert r.status_code == 200, r.text
    return r.json()["items"]


def _outbox(db: Database, to: str) -> list[OutboxMessage]:
    with db.sessions() as s:
        return list(
            s.scalars(select(OutboxMessage).where(OutboxMessage.to_addr == to).order_by(OutboxMessage.id))
        )


def _link_token(msg: OutboxMessage) -> str:
    m = re.search(r"token=([A-Za-z0-9_\-]+)", msg.body_text)
    assert m, msg.body_text
    return m.group(1)


def _key(client, token: str, **body) -> str:
    r = client.post(
        "/api/v1/me/api-keys", json={"name": "k", "scope": "read_write", **body}, headers=_auth(token)
    )
    assert r.status_code == 201, r.text
    return r.json()["token"]


# --- list ----------------------------------------------------------------------------------


def test_list_my_invitations_shows_tenant_role_inviter_and_expiry(api, personas):
    inv = _invite(api, "outsider@example.com", role="auditor")
    [mine] = _mine(api, "outsider")
    assert mine["id"] == inv["id"]
    assert mine["tenant"] == {"id": str(personas.acme.id), "slug": "acme", "name": "Acme Corp"}
    assert mine["role"] == "auditor"
    assert mine["invited_by"] == "acme.admin@example.com"
    assert mine["expires_at"] == inv["expires_at"]
    assert set(mine) == {"id", "tenant", "role", "invited_by", "created_at", "expires_at"}


def test_list_my_invitations_only_my_own_across_tenants_newest_first(api, personas):
    a = _invite(api, "outsider@example.com")
    b = _invite(api, "outsider@example.com", persona="globex_admin", base=GLOBEX)
    _invite(api, "globex.member@example.com")
    assert [i["id"] for i in _mine(api, "outsider")] == [b["id"], a["id"]]
    assert [i["tenant"]["slug"] for i in _mine(api, "globex_member")] == ["acme"]
    assert _mine(api, "acme_admin") == []
    assert _mine(api, "superadmin") == []


def test_list_my_invitations_hides_expired_and_those_of_a_deleted_tenant(api, db, personas):
    _invite(api, "outsider@example.com")
    globex = _invite(api, "outsider@example.com", persona="globex_admin", base=GLOBEX)
    with db.unit_of_work() as s, scoping.cross_tenant(s):
        s.execute(
            update(MembershipInvitation)
            .where(MembershipInvitation.id == uuid.UUID(globex["id"]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    assert [i["tenant"]["slug"] for i in _mine(api, "outsider")] == ["acme"]
    assert api("superadmin").delete("/api/v1/tenants/acme").status_code == 200
    assert _mine(api, "outsider") == []
    # Restoring the tenant brings its open invitations back with it.
    assert api("superadmin").post("/api/v1/tenants/acme/restore").status_code == 200
    assert [i["tenant"]["slug"] for i in _mine(api, "outsider")] == ["acme"]


def test_list_my_invitations_key_restricted_to_a_tenant_sees_only_that_tenant(api, client, personas):
    _invite(api, "globex.member@example.com")
    token = personas.tokens["globex_member"]
    key = _key(client, token, tenant_id=str(personas.globex.id))
    assert client.get(ME_INV, headers=_auth(key)).json() == []
    unrestricted = _key(client, token, scope="read")
    assert [i["tenant"]["slug"] for i in client.get(ME_INV, headers=_auth(unrestricted)).json()] == ["acme"]


def test_list_my_invitations_without_token_401(api):
    _problem(api(None).get(ME_INV), 401, "unauthenticated")


# --- accept --------------------------------------------------------------------------------


def test_accept_makes_a_member_with_the_invited_role_and_is_audited(api, client, db, personas):
    inv = _invite(api, "outsider@example.com", role="auditor")
    r = api("outsider").post(f"{ME_INV}/{inv['id']}/accept")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "tenant": {"id": str(personas.acme.id), "slug": "acme", "name": "Acme Corp"},
        "roles": ["auditor"],
        "is_default": True,  # their first tenant
    }
    member = _members(api)["outsider@example.com"]
    assert (member["roles"], member["is_default"]) == (["auditor"], True)
    assert client.get(ACME, headers=_auth(personas.tokens["outsider"])).status_code == 200
    assert _mine(api, "outsider") == []
    assert _rows(db) == 0
    uid = str(personas.users["outsider"].id)
    [accepted] = _tenant_audit(api, "acme", "member.invitation_accept")
    assert accepted["actor"]["id"] == uid
    assert accepted["target"] == {"type": "membership_invitation", "id": inv["id"]}
    [added] = [e for e in _tenant_audit(api, "acme", "member.add") if e["target"]["id"] == uid]
    assert added["after"] == {"email": "outsider@example.com", "role": "auditor", "via": "invitation"}


def test_accept_keeps_an_existing_default_tenant(api, personas):
    inv = _invite(api, "globex.member@example.com", role="viewer")
    r = api("globex_member").post(f"{ME_INV}/{inv['id']}/accept")
    assert r.status_code == 200, r.text
    assert r.json()["is_default"] is False
    assert api("globex_member").get("/api/v1/me").json()["default_tenant_id"] == str(personas.globex.id)
    assert [t["slug"] for t in api("globex_member").get("/api/v1/me/tenants").json()] == ["acme", "globex"]


def test_accept_bad_id_422_nothing_written(api, db):
    _invite(api, "outsider@example.com")
    before = _all_audit(db)
    _problem(api("outsider").post(f"{ME_INV}/not-a-uuid/accept"), 422, "validation_error")
    assert _all_audit(db) == before
    assert _rows(db) == 1
    assert "outsider@example.com" not in _members(api)


def test_accept_someone_elses_or_unknown_invitation_404(api, db, personas):
    inv = _invite(api, "outsider@example.com")
    before = _all_audit(db)
    # Another account, even the inviting admin or a superadmin: not theirs to answer.
    for persona in ("globex_member", "acme_admin", "superadmin"):
        _problem(api(persona).post(f"{ME_INV}/{inv['id']}/accept"), 404, "not_found")
    _problem(api("outsider").post(f"{ME_INV}/{uuid.uuid4()}/accept"), 404, "not_found")
    assert _all_audit(db) == before
    assert _rows(db) == 1
    assert "globex.member@example.com" not in _members(api)


def test_accept_another_tenants_invitation_id_404(api, client, personas):
    """A key tied to globex cannot answer (or even see) acme's invitation."""
    inv = _invite(api, "globex.member@example.com")
    key = _key(client, personas.tokens["globex_member"], tenant_id=str(personas.globex.id))
    _problem(client.post(f"{ME_INV}/{inv['id']}/accept", headers=_auth(key)), 404, "not_found")
    assert "globex.member@example.com" not in _members(api)


def test_accept_expired_404_and_accepting_twice_404(api, db):
    inv = _invite(api, "outsider@example.com")
    assert api("outsider").post(f"{ME_INV}/{inv['id']}/accept").status_code == 200
    _problem(api("outsider").post(f"{ME_INV}/{inv['id']}/accept"), 404, "not_found")
    other = _invite(api, "globex.member@example.com")
    with db.unit_of_work() as s, scoping.cross_tenant(s):
        s.execute(
            update(MembershipInvitation)
            .where(MembershipInvitation.id == uuid.UUID(other["id"]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    _problem(api("globex_member").post(f"{ME_INV}/{other['id']}/accept"), 404, "not_found")
    assert "globex.member@example.com" not in _members(api)


def test_accept_with_an_api_key_403_session_required(api, client, db, personas):
    inv = _invite(api, "outsider@example.com")
    token = personas.tokens["outsider"]
    before = _all_audit(db)
    key = _key(client, token)
    _problem(client.post(f"{ME_INV}/{inv['id']}/accept", headers=_auth(key)), 403, "session_required")
    read_key = _key(client, token, scope="read")
    _problem(client.post(f"{ME_INV}/{inv['id']}/accept", headers=_auth(read_key)), 403, "session_required")
    _problem(api(None).post(f"{ME_INV}/{inv['id']}/accept"), 401, "unauthenticated")
    assert _all_audit(db) == before + 2  # the two keys' creation, nothing else
    assert "outsider@example.com" not in _members(api)


def test_accept_when_the_invited_role_is_gone_409(api, db, personas):
    r = api("acme_admin").post(
        "/api/v1/tenants/acme/roles",
        json={"key": "operator", "name": "Operator", "permissions": ["host.read"]},
    )
    assert r.status_code == 201, r.text
    inv = _invite(api, "outsider@example.com", role="operator")
    assert api("acme_admin").delete("/api/v1/tenants/acme/roles/operator").status_code in (200, 204)
    _problem(api("outsider").post(f"{ME_INV}/{inv['id']}/accept"), 409, "role_unavailable")
    assert "outsider@example.com" not in _members(api)


# --- decline -------------------------------------------------------------------------------


def test_decline_removes_the_invitation_and_is_audited(api, db, personas):
    inv = _invite(api, "outsider@example.com", role="viewer")
    r = api("outsider").post(f"{ME_INV}/{inv['id']}/decline")
    assert r.status_code == 204, r.text
    assert _mine(api, "outsider") == []
    assert "outsider@example.com" not in _members(api)
    assert _rows(db) == 0
    pending = api("acme_admin").get("/api/v1/tenants/acme/invitations").json()["items"]
    assert pending == []
    [event] = _tenant_audit(api, "acme", "member.invitation_decline")
    assert event["actor"]["id"] == str(personas.users["outsider"].id)
    assert event["target"] == {"type": "membership_invitation", "id": inv["id"]}
    _problem(api("outsider").post(f"{ME_INV}/{inv['id']}/accept"), 404, "not_found")
    # The tenant may ask again.
    assert api("acme_admin").post(ACME, json={"email": "outsider@example.com"}).status_code == 202


def test_decline_bad_id_422_nothing_written(api, db):
    _invite(api, "outsider@example.com")
    before = _all_audit(db)
    _problem(api("outsider").post(f"{ME_INV}/12345/decline"), 422, "validation_error")
    assert (_all_audit(db), _rows(db)) == (before, 1)


def test_decline_someone_elses_or_another_tenants_invitation_404(api, client, db, personas):
    inv = _invite(api, "globex.member@example.com")
    before = _all_audit(db)
    for persona in ("outsider", "acme_admin", "globex_admin"):
        _problem(api(persona).post(f"{ME_INV}/{inv['id']}/decline"), 404, "not_found")
    key = _key(client, personas.tokens["globex_member"], tenant_id=str(personas.globex.id))
    _problem(client.post(f"{ME_INV}/{inv['id']}/decline", headers=_auth(key)), 404, "not_found")
    assert _all_audit(db) == before + 1  # the key's creation
    assert _rows(db) == 1


def test_decline_with_an_api_key_403(api, client, db, personas):
    inv = _invite(api, "outsider@example.com")
    key = _key(client, personas.tokens["outsider"])
    _problem(client.post(f"{ME_INV}/{inv['id']}/decline", headers=_auth(key)), 403, "session_required")
    _problem(api(None).post(f"{ME_INV}/{inv['id']}/decline"), 401, "unauthenticated")
    assert _rows(db) == 1


# --- brand-new addresses -------------------------------------------------------------------


def test_new_address_link_accepts_that_tenant_and_leaves_others_listed(api, client, db, personas):
    acme = _invite(api, "newbie@example.com", role="auditor")
    globex = _invite(api, "newbie@example.com", persona="globex_admin", base=GLOBEX)
    # The later link is the one that works (each new link replaces the previous one).
    link = _outbox(db, "newbie@example.com")[-1]
    assert link.tenant_id == personas.globex.id
    r = api(None).post(
        "/api/v1/auth/invitations/accept", json={"token": _link_token(link), "password": STRONG}
    )
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    assert client.get(GLOBEX, headers=_auth(token)).status_code == 200
    _problem(client.get(ACME, headers=_auth(token)), 404, "not_found")
    [open_one] = client.get(ME_INV, headers=_auth(token)).json()
    assert (open_one["id"], open_one["role"]) == (acme["id"], "auditor")
    assert globex["id"] != acme["id"]
    r = client.post(f"{ME_INV}/{acme['id']}/accept", headers=_auth(token))
    assert r.status_code == 200, r.text
    assert _members(api)["newbie@example.com"]["roles"] == ["auditor"]

"""`/api/v1/shared-resources` (superadmins) and `/api/v1/tenants/{tenant}/shared-resources` (read-only)."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from tenantry.db import scoping
from tenantry.db.session import Database
from tenantry.db.tables import AuditEvent, SharedResource, SharedResourceAssignment
from tests.personas import Personas

ADMIN = "/api/v1/shared-resources"
GATEWAY = {
    "name": "gw-frankfurt",
    "type": "gateway",
    "status": "active",
    "capacity": 2,
    "attributes": {"wan_address": "203.0.113.10", "protocol": "wireguard"},
}


def tenant_url(tenant: str, sid: object | None = None) -> str:
    base = f"/api/v1/tenants/{tenant}/shared-resources"
    return base if sid is None else f"{base}/{sid}"


def make(api, **overrides: Any) -> dict[str, Any]:
    r = api("superadmin").post(ADMIN, json=GATEWAY | overrides)
    assert r.status_code == 201, r.text
    return r.json()


def assign(api, sid: str, tenant_id: uuid.UUID, persona: str = "superadmin") -> Any:
    return api(persona).post(f"{ADMIN}/{sid}/assignments", json={"tenant_id": str(tenant_id)})


def live_rows(db: Database, model: Any = SharedResource) -> int:
    with db.sessions() as s, scoping.cross_tenant(s):
        return s.scalar(select(func.count()).select_from(model)) or 0


def audit_actions(db: Database) -> list[str]:
    with db.sessions() as s:
        return list(s.scalars(select(AuditEvent.action).where(AuditEvent.action.like("shared_resource.%"))))


def tenant_ids(body: dict[str, Any]) -> list[str]:
    return [a["tenant_id"] for a in body["assignments"]]


# --- admin: create -------------------------------------------------------------------------


def test_create_shared_resource_superadmin_201_with_documented_fields_and_audit(api, clean_db):
    body = make(api)
    assert set(body) == {"id", "name", "type", "status", "capacity", "attributes", "assignments"}
    assert (body["name"], body["type"], body["status"], body["capacity"]) == (
        "gw-frankfurt",
        "gateway",
        "active",
        2,
    )
    assert body["attributes"] == GATEWAY["attributes"]
    assert body["assignments"] == []
    assert audit_actions(clean_db) == ["shared_resource.create"]


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"capacity": 0}, "validation_error"),
        ({"status": "broken"}, "validation_error"),
        ({"name": "  "}, "validation_error"),
        ({"attributes": {"protocol": "pptp"}}, "invalid_protocol"),
        ({"tenant_id": str(uuid.uuid4())}, "validation_error"),
    ],
)
def test_create_shared_resource_bad_input_422_nothing_written(api, clean_db, overrides, code):
    r = api("superadmin").post(ADMIN, json=GATEWAY | overrides)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code
    assert live_rows(clean_db) == 0
    assert audit_actions(clean_db) == []


@pytest.mark.parametrize("persona", ["acme_admin", "acme_member", "globex_admin", "outsider"])
def test_create_shared_resource_non_superadmin_403_nothing_written(api, clean_db, persona):
    r = api(persona).post(ADMIN, json=GATEWAY)
    assert r.status_code == 403
    assert r.json()["code"] == "permission_denied"
    assert live_rows(clean_db) == 0


# --- admin: list / get ---------------------------------------------------------------------


def test_list_shared_resources_superadmin_sees_all_with_every_assignment(api, personas):
    a = make(api, name="gw-a")
    b = make(api, name="gw-b")
    assert assign(api, a["id"], personas.acme.id).status_code == 201
    assert assign(api, a["id"], personas.globex.id).status_code == 201
    r = api("superadmin").get(ADMIN)
    assert r.status_code == 200
    assert r.json()["next_cursor"] is None
    by_name = {s["name"]: s for s in r.json()["items"]}
    assert list(by_name) == ["gw-a", "gw-b"]
    assert sorted(tenant_ids(by_name["gw-a"])) == sorted([str(personas.acme.id), str(personas.globex.id)])
    assert tenant_ids(by_name["gw-b"]) == []
    assert api("superadmin").get(f"{ADMIN}/{b['id']}").json() == by_name["gw-b"]


@pytest.mark.parametrize("persona", ["acme_admin", "acme_member", "globex_admin", "outsider"])
def test_list_and_get_shared_resources_admin_path_non_superadmin_403(api, personas, persona):
    s = make(api)
    assign(api, s["id"], personas.acme.id)
    for r in (api(persona).get(ADMIN), api(persona).get(f"{ADMIN}/{s['id']}")):
        assert r.status_code == 403
        assert r.json()["code"] == "permission_denied"
        assert "gw-frankfurt" not in r.text


def test_get_shared_resource_unknown_404_bad_id_422(api):
    assert api("superadmin").get(f"{ADMIN}/{uuid.uuid4()}").status_code == 404
    assert api("superadmin").get(f"{ADMIN}/not-a-uuid").status_code == 422


def test_list_shared_resources_without_token_401(api):
    assert api(None).get(ADMIN).status_code == 401


# --- admin: update -------------------------------------------------------------------------


def test_patch_shared_resource_superadmin_200_and_audited(api, clean_db):
    s = make(api)
    r = api("superadmin").patch(f"{ADMIN}/{s['id']}", json={"status": "maintenance", "capacity": 5})
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["capacity"]) == ("maintenance", 5)
    assert api("superadmin").get(f"{ADMIN}/{s['id']}").json()["status"] == "maintenance"
    assert audit_actions(clean_db).count("shared_resource.update") == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"capacity": 0}, "validation_error"),
        ({"status": "gone"}, "validation_error"),
        ({"attributes": {"protocol": "l2tp"}}, "invalid_protocol"),
        ({"id": str(uuid.uuid4())}, "validation_error"),
    ],
)
def test_patch_shared_resource_bad_input_422_nothing_written(api, body, code):
    s = make(api)
    r = api("superadmin").patch(f"{ADMIN}/{s['id']}", json=body)
    assert r.status_code == 422
    assert r.json()["code"] == code
    assert api("superadmin").get(f"{ADMIN}/{s['id']}").json() == s


def test_patch_shared_resource_capacity_below_assigned_409_capacity_exhausted(api, personas):
    s = make(api)
    assign(api, s["id"], personas.acme.id)
    assign(api, s["id"], personas.globex.id)
    r = api("superadmin").patch(f"{ADMIN}/{s['id']}", json={"capacity": 1})
    assert r.status_code == 409
    assert r.json()["code"] == "capacity_exhausted"
    assert api("superadmin").get(f"{ADMIN}/{s['id']}").json()["capacity"] == 2


@pytest.mark.parametrize("persona", ["acme_admin", "globex_admin"])
def test_patch_shared_resource_non_superadmin_403_nothing_written(api, persona):
    s = make(api)
    r = api(persona).patch(f"{ADMIN}/{s['id']}", json={"capacity": 50})
    assert r.status_code == 403
    assert api("superadmin").get(f"{ADMIN}/{s['id']}").json()["capacity"] == 2


def test_patch_shared_resource_unknown_404(api):
    assert api("superadmin").patch(f"{ADMIN}/{uuid.uuid4()}", json={"capacity": 3}).status_code == 404


# --- admin: delete -------------------------------------------------------------------------


def test_delete_shared_resource_unassigned_204_then_404(api, clean_db):
    s = make(api)
    assert api("superadmin").delete(f"{ADMIN}/{s['id']}").status_code == 204
    assert api("superadmin").get(f"{ADMIN}/{s['id']}").status_code == 404
    assert api("superadmin").get(ADMIN).json()["items"] == []
    assert "shared_resource.delete" in audit_actions(clean_db)


def test_delete_shared_resource_with_assignments_409_in_use(api, personas):
    s = make(api)
    assign(api, s["id"], personas.acme.id)
    r = api("superadmin").delete(f"{ADMIN}/{s['id']}")
    assert r.status_code == 409
    assert r.json()["code"] == "in_use"
    assert api("acme_member").get(tenant_url("acme", s["id"])).status_code == 200


@pytest.mark.parametrize("persona", ["acme_admin", "globex_admin"])
def test_delete_shared_resource_non_superadmin_403_kept(api, persona):
    s = make(api)
    assert api(persona).delete(f"{ADMIN}/{s['id']}").status_code == 403
    assert api("superadmin").get(f"{ADMIN}/{s['id']}").status_code == 200


# --- admin: assignments --------------------------------------------------------------------


def test_assign_tenant_201_slot_visible_and_audited_in_that_tenant(api, clean_db, personas):
    s = make(api)
    r = assign(api, s["id"], personas.acme.id)
    assert r.status_code == 201, r.text
    assert tenant_ids(r.json()) == [str(personas.acme.id)]
    with clean_db.sessions() as sess:
        ev = sess.scalar(select(AuditEvent).where(AuditEvent.action == "shared_resource.assign"))
        assert ev is not None and ev.tenant_id == personas.acme.id


def test_assign_tenant_full_gateway_409_capacity_exhausted_nothing_written(api, clean_db, personas):
    s = make(api, capacity=1)
    assert assign(api, s["id"], personas.acme.id).status_code == 201
    r = assign(api, s["id"], personas.globex.id)
    assert r.status_code == 409
    assert r.json()["code"] == "capacity_exhausted"
    assert live_rows(clean_db, SharedResourceAssignment) == 1
    assert api("globex_admin").get(tenant_url("globex")).json()["items"] == []


def test_assign_tenant_already_assigned_409(api, clean_db, personas):
    s = make(api, capacity=5)
    assert assign(api, s["id"], personas.acme.id).status_code == 201
    r = assign(api, s["id"], personas.acme.id)
    assert r.status_code == 409
    assert r.json()["code"] == "already_assigned"
    assert live_rows(clean_db, SharedResourceAssignment) == 1


def test_assign_tenant_unknown_tenant_422_and_bad_body_422(api, clean_db):
    s = make(api)
    r = assign(api, s["id"], uuid.uuid4())
    assert r.status_code == 422
    assert r.json()["code"] == "unknown_tenant"
    r = api("superadmin").post(f"{ADMIN}/{s['id']}/assignments", json={"tenant_id": "acme"})
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"
    assert live_rows(clean_db, SharedResourceAssignment) == 0


@pytest.mark.parametrize("persona", ["acme_admin", "globex_admin"])
def test_assign_tenant_non_superadmin_403_nothing_written(api, clean_db, personas, persona):
    s = make(api)
    r = assign(api, s["id"], personas.acme.id, persona=persona)
    assert r.status_code == 403
    assert live_rows(clean_db, SharedResourceAssignment) == 0


def test_unassign_tenant_204_frees_the_slot_and_hides_it_from_the_tenant(api, personas):
    s = make(api, capacity=1)
    assign(api, s["id"], personas.acme.id)
    assert api("superadmin").delete(f"{ADMIN}/{s['id']}/assignments/{personas.acme.id}").status_code == 204
    assert api("acme_member").get(tenant_url("acme")).json()["items"] == []
    assert api("acme_member").get(tenant_url("acme", s["id"])).status_code == 404
    assert assign(api, s["id"], personas.globex.id).status_code == 201
    assert api("superadmin").delete(f"{ADMIN}/{s['id']}/assignments/{personas.acme.id}").status_code == 404


def test_unassign_tenant_non_superadmin_403_slot_kept(api, personas):
    s = make(api)
    assign(api, s["id"], personas.acme.id)
    r = api("acme_admin").delete(f"{ADMIN}/{s['id']}/assignments/{personas.acme.id}")
    assert r.status_code == 403
    assert api("acme_member").get(tenant_url("acme", s["id"])).status_code == 200


# --- tenant view (read-only) ---------------------------------------------------------------


@pytest.fixture
def shared(api, personas: Personas) -> dict[str, dict]:
    """gw-both: acme and globex; gw-acme: acme only; gw-none: nobody."""
    both = make(api, name="gw-both")
    only = make(api, name="gw-acme")
    none = make(api, name="gw-none")
    assign(api, both["id"], personas.acme.id)
    assign(api, both["id"], personas.globex.id)
    assign(api, only["id"], personas.acme.id)
    return {"both": both, "acme": only, "none": none}


@pytest.mark.parametrize("persona", ["acme_admin", "acme_member", "acme_viewer", "acme_auditor"])
def test_list_tenant_shared_resources_member_sees_assigned_with_only_own_tenant(
    api, personas, shared, persona
):
    r = api(persona).get(tenant_url("acme"))
    assert r.status_code == 200
    assert [s["name"] for s in r.json()["items"]] == ["gw-acme", "gw-both"]
    assert r.json()["next_cursor"] is None
    for item in r.json()["items"]:
        assert tenant_ids(item) == [str(personas.acme.id)]
    assert str(personas.globex.id) not in r.text


def test_get_tenant_shared_resource_member_200_only_own_tenant_in_assignments(api, personas, shared):
    r = api("acme_member").get(tenant_url("acme", shared["both"]["id"]))
    assert r.status_code == 200
    assert r.json()["name"] == "gw-both"
    assert r.json()["attributes"] == GATEWAY["attributes"]
    assert tenant_ids(r.json()) == [str(personas.acme.id)]


def test_get_tenant_shared_resource_not_assigned_404(api, shared):
    for sid in (shared["none"]["id"], uuid.uuid4()):
        r = api("acme_member").get(tenant_url("acme", sid))
        assert r.status_code == 404
        assert r.json()["code"] == "not_found"
        assert "gw-none" not in r.text


def test_tenant_shared_resources_unassigned_tenant_sees_nothing(api, clean_db, personas):
    s = make(api, name="gw-acme")
    assign(api, s["id"], personas.acme.id)
    r = api("globex_admin").get(tenant_url("globex"))
    assert r.status_code == 200
    assert r.json() == {"items": [], "next_cursor": None}
    r = api("globex_admin").get(tenant_url("globex", s["id"]))
    assert r.status_code == 404
    assert "gw-acme" not in r.text


def test_tenant_shared_resources_of_other_tenant_404(api, shared):
    assert api("globex_admin").get(tenant_url("acme")).status_code == 404
    assert api("globex_admin").get(tenant_url("acme", shared["acme"]["id"])).status_code == 404
    assert api("outsider").get(tenant_url("acme")).status_code == 403


def test_tenant_shared_resources_superadmin_in_tenant_context_sees_that_tenants_view(api, personas, shared):
    r = api("superadmin").get(tenant_url("globex"))
    assert [s["name"] for s in r.json()["items"]] == ["gw-both"]
    assert tenant_ids(r.json()["items"][0]) == [str(personas.globex.id)]


def _walk(api, persona: str, url: str, limit: int) -> list[list[str]]:
    """Follow next_cursor to the end: the names of each page."""
    pages, cursor = [], None
    while True:
        params = {"limit": limit} | ({"cursor": cursor} if cursor else {})
        r = api(persona).get(url, params=params)
        assert r.status_code == 200, r.text
        pages.append([s["name"] for s in r.json()["items"]])
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return pages


def test_tenant_shared_resources_paginate_by_name_then_id_with_equal_names(api, personas):
    ids = {}
    for name in ("gw-c", "gw-a", "gw-b", "gw-a", "gw-d"):
        s = make(api, name=name)
        assert assign(api, s["id"], personas.acme.id).status_code == 201
        ids.setdefault(name, []).append(s["id"])
    make(api, name="gw-0-unassigned")
    pages = _walk(api, "acme_member", tenant_url("acme"), limit=2)
    assert pages == [["gw-a", "gw-a"], ["gw-b", "gw-c"], ["gw-d"]]
    first = api("acme_member").get(tenant_url("acme"), params={"limit": 1}).json()["items"]
    assert [s["id"] for s in first] == sorted(ids["gw-a"])[:1]
    assert _walk(api, "superadmin", ADMIN, limit=4) == [
        ["gw-0-unassigned", "gw-a", "gw-a", "gw-b"],
        ["gw-c", "gw-d"],
    ]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "%%%not-base64",
        _b64(b"not json"),
        _b64(b"42"),
        _b64(b'"gw-a"'),
        _b64(b'["gw-a"]'),
        _b64(b'["gw-a", "not-a-uuid"]'),
        _b64(b'[1, "0190a6c4-8f5e-7c3a-9b1d-2e4f6a8c0b1d"]'),
        _b64(b'["gw-a", 5]'),
        _b64(b'["gw-a", "0190a6c4-8f5e-7c3a-9b1d-2e4f6a8c0b1d", 1]'),
        _b64(b'["gw\\u0000a", "0190a6c4-8f5e-7c3a-9b1d-2e4f6a8c0b1d"]'),
        _b64(b"\xff\xfe"),
    ],
)
def test_shared_resources_tampered_cursor_422_on_both_lists(api, shared, cursor):
    for persona, url in (("acme_member", tenant_url("acme")), ("superadmin", ADMIN)):
        r = api(persona).get(url, params={"cursor": cursor})
        assert r.status_code == 422, (url, r.text)
        assert r.json()["code"] == "invalid_cursor"


@pytest.mark.parametrize("limit", [0, 201, -1])
def test_tenant_shared_resources_limit_out_of_range_422(api, shared, limit):
    r = api("acme_member").get(tenant_url("acme"), params={"limit": limit})
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"


@pytest.mark.parametrize(
    ("method", "path_of", "body"),
    [
        ("POST", lambda s: tenant_url("acme"), GATEWAY),
        ("PATCH", lambda s: tenant_url("acme", s["id"]), {"capacity": 99}),
        ("PUT", lambda s: tenant_url("acme", s["id"]), GATEWAY),
        ("DELETE", lambda s: tenant_url("acme", s["id"]), None),
    ],
)
@pytest.mark.parametrize("persona", ["acme_admin", "acme_member"])
def test_write_tenant_shared_resources_403_nothing_written(
    api, clean_db, shared, method, path_of, body, persona
):
    before = api("superadmin").get(ADMIN).json()
    r = api(persona).request(method, path_of(shared["acme"]), json=body)
    assert r.status_code == 403
    assert r.json()["code"] == "permission_denied"
    assert api("superadmin").get(ADMIN).json() == before
    assert live_rows(clean_db) == 3


def test_tenant_shared_resources_trashed_tenant_assignment_goes_with_it(api, personas, shared):
    assert api("superadmin").delete("/api/v1/tenants/acme").status_code == 200
    both = api("superadmin").get(f"{ADMIN}/{shared['both']['id']}").json()
    assert tenant_ids(both) == [str(personas.globex.id)]
    assert assign(api, shared["acme"]["id"], personas.globex.id).status_code == 201

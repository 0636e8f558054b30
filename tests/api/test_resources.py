"""`/api/v1/tenants/{tenant}/resources`: typed tenant objects, filters, pagination, resource grants."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from tenantry.authz import system_principal
from tenantry.db import scoping
from tenantry.db.session import Database
from tenantry.db.tables import AuditEvent, Resource, ResourceUniqueValue
from tenantry.services import resource_types, users
from tenantry.services.context import ServiceContext
from tests.personas import Personas, login_token

PASSWORD = "a-long-enough-passphrase-for-tests"


@pytest.fixture
def builtin_types(personas: Personas, clean_db: Database) -> None:
    """The personas fixture does not create the built-in resource types; `tenantry init` would."""
    with clean_db.unit_of_work() as session:
        resource_types.ensure_builtin_types(
            ServiceContext(session=session, principal=system_principal("tests"))
        )


pytestmark = pytest.mark.usefixtures("builtin_types")


# --- helpers -------------------------------------------------------------------------------


def url(tenant: str = "acme", rid: object | None = None) -> str:
    base = f"/api/v1/tenants/{tenant}/resources"
    return base if rid is None else f"{base}/{rid}"


def make(api, persona: str = "acme_member", tenant: str = "acme", **body: Any) -> dict[str, Any]:
    body.setdefault("attributes", {})
    r = api(persona).post(url(tenant), json=body)
    assert r.status_code == 201, r.text
    return r.json()


def host(api, name: str, ip: str, tenant: str = "acme", persona: str | None = None, **attrs: Any) -> dict:
    persona = persona or ("acme_member" if tenant == "acme" else "globex_member")
    return make(api, persona, tenant, type="host", name=name, attributes={"ip_address": ip, **attrs})


def service(api, name: str, parent: dict, tenant: str = "acme", port: int = 22) -> dict:
    persona = "acme_member" if tenant == "acme" else "globex_member"
    return make(
        api,
        persona,
        tenant,
        type="service",
        name=name,
        parent_id=parent["id"],
        attributes={"port": port, "protocol": "tcp"},
    )


def names(api, persona: str = "acme_member", tenant: str = "acme", **params: Any) -> list[str]:
    r = api(persona).get(url(tenant), params={"limit": 200, **params})
    assert r.status_code == 200, r.text
    return [i["name"] for i in r.json()["items"]]


def count_rows(db: Database, tenant_id: uuid.UUID, model: Any = Resource) -> int:
    with db.sessions() as s, scoping.cross_tenant(s), scoping.include_deleted(s):
        return s.scalar(select(func.count()).select_from(model).where(model.tenant_id == tenant_id)) or 0


def audit_count(db: Database, action: str) -> int:
    with db.sessions() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)) or 0


def tenant_counts(api, tenant: str = "acme") -> tuple[int, int]:
    body = api("superadmin").get(f"/api/v1/tenants/{tenant}").json()
    return body["member_count"], body["resource_count"]


def add_user(db: Database, api, personas: Personas, persona: str, role: str) -> uuid.UUID:
    """A new acme member with `role`, signed in as `persona`."""
    with db.unit_of_work() as session:
        ctx = ServiceContext(session=session, principal=system_principal("tests"))
        user = users.create_user(ctx, email=f"{persona}@example.com", password=PASSWORD)
        user_id = user.id
    r = api("superadmin").post("/api/v1/tenants/acme/members", json={"user_id": str(user_id), "role": role})
    assert r.status_code == 201, r.text
    personas.tokens[persona] = login_token(db, f"{persona}@example.com")
    return user_id


def grant_on(api, user_id: uuid.UUID, resource_id: str, role: str = "viewer") -> dict:
    r = api("acme_admin").post(
        "/api/v1/tenants/acme/grants",
        json={
            "principal": {"type": "user", "id": str(user_id)},
            "role": role,
            "scope": {"type": "resource", "resource_id": resource_id},
        },
    )
    assert r.status_code == 201, r.text
    return r.json()


# --- create --------------------------------------------------------------------------------


def test_create_host_member_201_with_documented_fields_etag_and_audit(api, clean_db):
    r = api("acme_member").post(
        url(),
        json={"type": "host", "name": " web-1 ", "attributes": {"ip_address": "10.0.0.1", "os": "linux"}},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"id", "type", "name", "attributes", "parent_id", "created_at", "updated_at"}
    assert (body["type"], body["name"], body["parent_id"]) == ("host", "web-1", None)
    assert body["attributes"] == {"ip_address": "10.0.0.1", "os": "linux"}
    assert r.headers["ETag"] == '"v1"'
    assert api("acme_viewer").get(url(rid=body["id"])).json() == body
    assert audit_count(clean_db, "resource.create") == 1


def test_create_host_invalid_ip_422_names_the_attribute_and_nothing_written(api, clean_db, personas):
    r = api("acme_member").post(
        url(), json={"type": "host", "name": "h", "attributes": {"ip_address": "999.1.1.1"}}
    )
    assert r.status_code == 422
    assert r.json()["code"] == "schema_violation"
    assert r.json()["field"] == "attributes.ip_address"
    assert "ip_address" in r.json()["detail"]
    assert count_rows(clean_db, personas.acme.id) == 0
    assert count_rows(clean_db, personas.acme.id, ResourceUniqueValue) == 0
    assert audit_count(clean_db, "resource.create") == 0


def test_create_service_port_out_of_range_422_names_the_attribute(api, clean_db, personas):
    h = host(api, "h", "10.0.0.1")
    r = api("acme_member").post(
        url(), json={"type": "service", "name": "s", "parent_id": h["id"], "attributes": {"port": 70000}}
    )
    assert r.status_code == 422
    assert r.json()["field"] == "attributes.port"
    assert count_rows(clean_db, personas.acme.id) == 1


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"type": "no_such_type", "name": "x"}, "unknown_resource_type"),
        ({"type": "host", "name": "   "}, "validation_error"),
        ({"type": "host"}, "validation_error"),
        ({"type": "host", "name": "x", "attributes": []}, "validation_error"),
        ({"type": "host", "name": "x", "tenant_id": str(uuid.uuid4())}, "validation_error"),
        ({"type": "host", "name": "x", "id": str(uuid.uuid4())}, "validation_error"),
        ({"type": "host", "name": "x", "parent_id": "not-a-uuid"}, "validation_error"),
    ],
)
def test_create_resource_bad_input_422_stable_code_nothing_written(api, clean_db, personas, body, code):
    r = api("acme_member").post(url(), json=body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code
    assert count_rows(clean_db, personas.acme.id) == 0


def test_create_host_taken_ip_409_names_field_and_clashing_resource(api, clean_db, personas):
    first = host(api, "h1", "10.0.0.1")
    r = api("acme_admin").post(
        url(), json={"type": "host", "name": "h2", "attributes": {"ip_address": "10.0.0.1"}}
    )
    assert r.status_code == 409
    assert r.json()["code"] == "unique_violation"
    assert r.json()["field"] == "attributes.ip_address"
    assert r.json()["resource_id"] == first["id"]
    assert names(api) == ["h1"]
    assert count_rows(clean_db, personas.acme.id) == 1
    assert count_rows(clean_db, personas.acme.id, ResourceUniqueValue) == 1


def test_create_host_same_ip_in_two_tenants_both_201(api):
    a = host(api, "a", "10.0.0.1")
    g = host(api, "g", "10.0.0.1", tenant="globex")
    assert a["id"] != g["id"]
    assert names(api) == ["a"]
    assert names(api, "globex_member", "globex") == ["g"]


def test_create_host_ip_of_trashed_host_is_free_again(api):
    old = host(api, "old", "10.0.0.1")
    assert api("acme_member").delete(url(rid=old["id"])).status_code == 200
    host(api, "new", "10.0.0.1")
    assert names(api) == ["new"]


def test_create_service_under_own_host_201(api):
    h = host(api, "h", "10.0.0.1")
    s = service(api, "ssh", h)
    assert s["parent_id"] == h["id"]
    alert = make(api, type="alert", name="down", parent_id=s["id"], attributes={"severity": "critical"})
    assert alert["parent_id"] == s["id"]


def test_create_service_parent_in_other_tenant_422_answers_like_missing_without_leaking(
    api, clean_db, personas
):
    theirs = host(api, "globex-secret-host", "192.168.77.1", tenant="globex")
    r = api("acme_member").post(
        url(), json={"type": "service", "name": "s", "parent_id": theirs["id"], "attributes": {"port": 22}}
    )
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_parent"
    assert r.json()["field"] == "parent_id"
    assert "globex-secret-host" not in r.text
    assert "192.168.77.1" not in r.text
    assert theirs["id"] not in r.json()["detail"]
    missing = api("acme_member").post(
        url(),
        json={"type": "service", "name": "s", "parent_id": str(uuid.uuid4()), "attributes": {"port": 22}},
    )
    assert (missing.status_code, missing.json()["code"], missing.json()["detail"]) == (
        422,
        r.json()["code"],
        r.json()["detail"],
    )
    assert count_rows(clean_db, personas.acme.id) == 0


@pytest.mark.parametrize("parent_type", ["server", "project", "service"])
def test_create_service_wrong_parent_type_422_invalid_parent(api, clean_db, personas, parent_type):
    h = host(api, "h", "10.0.0.1")
    if parent_type == "service":
        parent = service(api, "svc", h)
    else:
        attrs = {"hostname": "srv"} if parent_type == "server" else {}
        parent = make(api, type=parent_type, name="p", attributes=attrs)
    before = count_rows(clean_db, personas.acme.id)
    r = api("acme_member").post(url(), json={"type": "service", "name": "s", "parent_id": parent["id"]})
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_parent"
    assert count_rows(clean_db, personas.acme.id) == before


def test_create_service_without_parent_422_parent_required(api, clean_db, personas):
    r = api("acme_member").post(url(), json={"type": "service", "name": "s"})
    assert r.status_code == 422
    assert r.json()["code"] == "parent_required"
    assert count_rows(clean_db, personas.acme.id) == 0


def test_create_deployment_with_own_project_and_inventory_201(api):
    p = make(api, type="project", name="p")
    i = make(api, type="inventory", name="i")
    d = make(api, type="deployment", name="d", attributes={"project_id": p["id"], "inventory_id": i["id"]})
    assert d["attributes"] == {"project_id": p["id"], "inventory_id": i["id"]}


def test_create_deployment_referencing_other_tenants_project_422_invalid_reference(api, clean_db, personas):
    theirs = make(api, "globex_member", "globex", type="project", name="globex-secret-project")
    inv = make(api, type="inventory", name="i")
    r = api("acme_member").post(
        url(),
        json={
            "type": "deployment",
            "name": "d",
            "attributes": {"project_id": theirs["id"], "inventory_id": inv["id"]},
        },
    )
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_reference"
    assert r.json()["field"] == "attributes.project_id"
    assert "globex-secret-project" not in r.text
    assert count_rows(clean_db, personas.acme.id) == 1


def test_create_deployment_reference_of_wrong_type_422_invalid_reference(api, clean_db, personas):
    p = make(api, type="project", name="p")
    r = api("acme_member").post(
        url(),
        json={
            "type": "deployment",
            "name": "d",
            "attributes": {"project_id": p["id"], "inventory_id": p["id"]},
        },
    )
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_reference"
    assert r.json()["field"] == "attributes.inventory_id"


@pytest.mark.parametrize("persona", ["acme_viewer", "acme_auditor"])
def test_create_resource_read_only_role_403_nothing_written(api, clean_db, personas, persona):
    r = api(persona).post(url(), json={"type": "host", "name": "h", "attributes": {"ip_address": "10.0.0.1"}})
    assert r.status_code == 403
    assert r.json()["code"] == "permission_denied"
    assert count_rows(clean_db, personas.acme.id) == 0


@pytest.mark.parametrize("persona", ["globex_admin", "globex_member"])
def test_create_resource_in_other_tenant_404_nothing_written(api, clean_db, personas, persona):
    r = api(persona).post(
        url("acme"), json={"type": "host", "name": "h", "attributes": {"ip_address": "10.0.0.1"}}
    )
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"
    assert count_rows(clean_db, personas.acme.id) == 0


def test_create_resource_without_token_401(api):
    assert api(None).post(url(), json={"type": "project", "name": "p"}).status_code == 401


# --- get -----------------------------------------------------------------------------------


def test_get_resource_200_with_etag(api):
    h = host(api, "h", "10.0.0.1")
    r = api("acme_viewer").get(url(rid=h["id"]))
    assert r.status_code == 200
    assert r.json()["id"] == h["id"]
    assert r.headers["ETag"] == '"v1"'


@pytest.mark.parametrize(
    ("persona", "tenant"),
    [
        ("globex_admin", "acme"),
        ("globex_admin", "globex"),
        ("globex_member", "globex"),
        ("superadmin", "globex"),
    ],
)
def test_get_resource_of_other_tenant_404(api, persona, tenant):
    h = host(api, "acme-host", "10.0.0.1")
    r = api(persona).get(url(tenant, h["id"]))
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"
    assert "acme-host" not in r.text


def test_get_resource_unknown_404_and_bad_id_422(api):
    assert api("acme_member").get(url(rid=uuid.uuid4())).status_code == 404
    r = api("acme_member").get(url(rid="not-a-uuid"))
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"


def test_get_resource_user_without_tenant_403(api):
    h = host(api, "h", "10.0.0.1")
    r = api("outsider").get(url(rid=h["id"]))
    assert r.status_code == 403
    assert r.json()["code"] == "no_tenant"


# --- list ----------------------------------------------------------------------------------


@pytest.fixture
def inventory(api) -> dict[str, dict]:
    """A small tree in acme (and a decoy in globex)."""
    h1 = host(api, "Web-1", "10.0.0.1", os="linux")
    h2 = host(api, "web-2", "10.0.0.2", os="windows")
    h3 = host(api, "db_1", "10.0.0.3", os="linux")
    s1 = service(api, "ssh", h1, port=22)
    s2 = service(api, "http", h1, port=80)
    s3 = service(api, "rdp", h2, port=3389)
    p = make(api, type="project", name="100%-project")
    host(api, "web-globex", "10.0.0.9", tenant="globex", os="linux")
    return {"h1": h1, "h2": h2, "h3": h3, "s1": s1, "s2": s2, "s3": s3, "p": p}


def test_list_resources_filters_type(api, inventory):
    assert names(api, type="host") == ["Web-1", "db_1", "web-2"]
    assert names(api, type="service") == ["http", "rdp", "ssh"]


def test_list_resources_filters_name_contains_case_insensitively_and_literally(api, inventory):
    assert names(api, name="WEB") == ["Web-1", "web-2"]
    assert names(api, name="_") == ["db_1"]
    assert names(api, name="%") == ["100%-project"]
    assert names(api, name="nothing") == []


def test_list_resources_filters_attribute_equality(api, inventory):
    assert names(api, **{"attr.os": "linux"}) == ["Web-1", "db_1"]
    assert names(api, **{"attr.os": "linux", "type": "host", "name": "web"}) == ["Web-1"]
    assert names(api, **{"attr.ip_address": "10.0.0.2"}) == ["web-2"]
    assert names(api, **{"attr.protocol": "tcp", "attr.port": "80"}) == ["http"]


def test_list_resources_filters_parent_id(api, inventory):
    assert names(api, parent_id=inventory["h1"]["id"]) == ["http", "ssh"]
    assert names(api, parent_id=inventory["h3"]["id"]) == []


def test_list_resources_sort_name_desc_name_and_created_at(api, inventory):
    all_names = ["100%-project", "Web-1", "db_1", "http", "rdp", "ssh", "web-2"]
    assert names(api) == all_names
    assert names(api, sort="name") == all_names
    assert names(api, sort="-name") == list(reversed(all_names))
    created = ["Web-1", "web-2", "db_1", "ssh", "http", "rdp", "100%-project"]
    assert names(api, sort="created_at") == created
    assert names(api, sort="-created_at") == list(reversed(created))


@pytest.mark.parametrize("sort", ["name", "-name", "created_at", "-created_at", "updated_at"])
def test_list_resources_cursor_pagination_returns_each_exactly_once(api, inventory, sort):
    for _ in range(6):  # duplicate names: ties must be broken by id, never repeated or skipped
        make(api, type="project", name="same")
    expected = names(api, sort=sort)
    seen_ids: list[str] = []
    seen_names: list[str] = []
    cursor, pages = None, 0
    while True:
        params = {"limit": 3, "sort": sort} | ({"cursor": cursor} if cursor else {})
        body = api("acme_member").get(url(), params=params).json()
        assert len(body["items"]) <= 3
        seen_ids += [i["id"] for i in body["items"]]
        seen_names += [i["name"] for i in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert pages < 20
    assert len(seen_ids) == len(set(seen_ids)) == 13
    assert seen_names == expected
    assert pages == 5


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"sort": "attributes"}, "invalid_sort"),
        ({"cursor": "!!!"}, "invalid_cursor"),
        ({"cursor": "bm90LWpzb24"}, "invalid_cursor"),
        ({"type": "no_such_type"}, "unknown_resource_type"),
        ({"attr.bad-key": "x"}, "invalid_filter"),
        ({"parent_id": "nope"}, "validation_error"),
        ({"limit": 0}, "validation_error"),
        ({"limit": 201}, "validation_error"),
    ],
)
def test_list_resources_bad_query_422_stable_code(api, inventory, params, code):
    r = api("acme_member").get(url(), params=params)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code


def test_list_resources_other_tenant_404_and_own_list_excludes_theirs(api, inventory):
    r = api("globex_admin").get(url("acme"))
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"
    assert names(api, "globex_admin", "globex") == ["web-globex"]
    assert "web-globex" not in names(api, "acme_admin")


def test_list_resources_user_without_tenant_403(api):
    r = api("outsider").get(url())
    assert r.status_code == 403
    assert r.json()["code"] == "no_tenant"


# --- update --------------------------------------------------------------------------------


def test_patch_resource_with_current_if_match_200_new_etag_and_audited_diff(api, clean_db):
    h = host(api, "h", "10.0.0.1", os="linux")
    etag = api("acme_member").get(url(rid=h["id"])).headers["ETag"]
    r = api("acme_member").patch(url(rid=h["id"]), json={"name": "renamed"}, headers={"If-Match": etag})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "renamed"
    assert r.json()["attributes"] == {"ip_address": "10.0.0.1", "os": "linux"}
    assert r.headers["ETag"] != etag
    with clean_db.sessions() as s:
        ev = s.scalar(select(AuditEvent).where(AuditEvent.action == "resource.update"))
        assert ev is not None and ev.before == {"name": "h"} and ev.after == {"name": "renamed"}


def test_patch_resource_stale_if_match_412_nothing_written(api):
    h = host(api, "h", "10.0.0.1")
    stale = api("acme_member").get(url(rid=h["id"])).headers["ETag"]
    assert api("acme_member").patch(url(rid=h["id"]), json={"name": "first"}).status_code == 200
    r = api("acme_member").patch(url(rid=h["id"]), json={"name": "second"}, headers={"If-Match": stale})
    assert r.status_code == 412
    assert r.json()["code"] == "etag_mismatch"
    assert api("acme_member").get(url(rid=h["id"])).json()["name"] == "first"


def test_patch_resource_changing_ip_frees_the_old_value(api):
    h = host(api, "h", "10.0.0.1")
    r = api("acme_member").patch(url(rid=h["id"]), json={"attributes": {"ip_address": "10.0.0.2"}})
    assert r.status_code == 200, r.text
    other = host(api, "h2", "10.0.0.1")
    clash = api("acme_member").post(
        url(), json={"type": "host", "name": "h3", "attributes": {"ip_address": "10.0.0.2"}}
    )
    assert clash.status_code == 409
    assert clash.json()["resource_id"] == h["id"]
    assert other["id"] != h["id"]


def test_patch_resource_to_taken_ip_409_names_field_and_resource_nothing_written(api):
    a = host(api, "a", "10.0.0.1")
    b = host(api, "b", "10.0.0.2")
    r = api("acme_member").patch(url(rid=b["id"]), json={"attributes": {"ip_address": "10.0.0.1"}})
    assert r.status_code == 409
    assert (r.json()["code"], r.json()["field"], r.json()["resource_id"]) == (
        "unique_violation",
        "attributes.ip_address",
        a["id"],
    )
    assert api("acme_member").get(url(rid=b["id"])).json()["attributes"] == {"ip_address": "10.0.0.2"}
    # b still holds its own address
    assert (
        api("acme_member")
        .post(url(), json={"type": "host", "name": "c", "attributes": {"ip_address": "10.0.0.2"}})
        .status_code
        == 409
    )


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"attributes": {"ip_address": "nope"}}, "schema_violation", "attributes.ip_address"),
        ({"name": ""}, "validation_error", "name"),
        ({"type": "service"}, "validation_error", "type"),
    ],
)
def test_patch_resource_bad_input_422_nothing_written(api, body, code, field):
    h = host(api, "h", "10.0.0.1")
    r = api("acme_member").patch(url(rid=h["id"]), json=body)
    assert r.status_code == 422
    assert r.json()["code"] == code
    assert field in (r.json().get("field"), *[e["field"] for e in r.json().get("errors", [])])
    assert api("acme_member").get(url(rid=h["id"])).json() == h


def test_patch_resource_parent_to_other_tenants_host_422_invalid_parent_without_leaking(api):
    h = host(api, "h", "10.0.0.1")
    s = service(api, "s", h)
    theirs = host(api, "globex-secret-host", "10.9.9.9", tenant="globex")
    r = api("acme_member").patch(url(rid=s["id"]), json={"parent_id": theirs["id"]})
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_parent"
    assert "globex-secret-host" not in r.text
    assert api("acme_member").get(url(rid=s["id"])).json()["parent_id"] == h["id"]


def test_patch_resource_parent_cycle_422_invalid_parent(api, clean_db):
    with clean_db.unit_of_work() as session:
        ctx = ServiceContext(session=session, principal=system_principal("tests"))
        resource_types.create_type(ctx, key="folder", name="Folder", cascade_delete=True)
    a = make(api, type="folder", name="a")
    b = make(api, type="folder", name="b", parent_id=a["id"])
    r = api("acme_member").patch(url(rid=a["id"]), json={"parent_id": b["id"]})
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_parent"
    r = api("acme_member").patch(url(rid=a["id"]), json={"parent_id": a["id"]})
    assert r.status_code == 422
    assert api("acme_member").get(url(rid=a["id"])).json()["parent_id"] is None


def test_patch_deployment_reference_to_other_tenants_inventory_422(api):
    p = make(api, type="project", name="p")
    i = make(api, type="inventory", name="i")
    d = make(api, type="deployment", name="d", attributes={"project_id": p["id"], "inventory_id": i["id"]})
    theirs = make(api, "globex_member", "globex", type="inventory", name="gi")
    r = api("acme_member").patch(
        url(rid=d["id"]), json={"attributes": {"project_id": p["id"], "inventory_id": theirs["id"]}}
    )
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_reference"
    assert api("acme_member").get(url(rid=d["id"])).json()["attributes"]["inventory_id"] == i["id"]


@pytest.mark.parametrize("persona", ["acme_viewer", "acme_auditor"])
def test_patch_resource_read_only_role_403_nothing_written(api, persona):
    h = host(api, "h", "10.0.0.1")
    r = api(persona).patch(url(rid=h["id"]), json={"name": "mine"})
    assert r.status_code == 403
    assert api("acme_member").get(url(rid=h["id"])).json()["name"] == "h"


def test_patch_resource_of_other_tenant_404_nothing_written(api):
    h = host(api, "h", "10.0.0.1")
    for tenant in ("acme", "globex"):
        r = api("globex_admin").patch(url(tenant, h["id"]), json={"name": "mine"})
        assert r.status_code == 404
    assert api("acme_member").get(url(rid=h["id"])).json()["name"] == "h"


# --- delete and deletion impact --------------------------------------------------------------


def test_delete_resource_200_batch_then_404_and_unlisted(api, clean_db, personas):
    h = host(api, "h", "10.0.0.1")
    r = api("acme_member").delete(url(rid=h["id"]))
    assert r.status_code == 200
    assert uuid.UUID(r.json()["deletion_batch_id"])
    assert api("acme_member").get(url(rid=h["id"])).status_code == 404
    assert names(api) == []
    assert count_rows(clean_db, personas.acme.id) == 1  # in the trash, not gone


def test_delete_resource_stale_if_match_412_nothing_trashed(api):
    h = host(api, "h", "10.0.0.1")
    stale = api("acme_member").get(url(rid=h["id"])).headers["ETag"]
    api("acme_member").patch(url(rid=h["id"]), json={"name": "h2"})
    r = api("acme_member").delete(url(rid=h["id"]), headers={"If-Match": stale})
    assert r.status_code == 412
    assert api("acme_member").get(url(rid=h["id"])).status_code == 200


@pytest.mark.parametrize("persona", ["acme_viewer", "acme_auditor"])
def test_delete_resource_read_only_role_403_nothing_trashed(api, persona):
    h = host(api, "h", "10.0.0.1")
    r = api(persona).delete(url(rid=h["id"]))
    assert r.status_code == 403
    assert api("acme_member").get(url(rid=h["id"])).status_code == 200


def test_delete_resource_of_other_tenant_404_nothing_trashed(api):
    h = host(api, "h", "10.0.0.1")
    assert api("globex_admin").delete(url("acme", h["id"])).status_code == 404
    assert api("globex_admin").delete(url("globex", h["id"])).status_code == 404
    assert api("acme_member").get(url(rid=h["id"])).status_code == 200


def test_deletion_impact_resource_counts_subtree_unique_values_and_grants(api, clean_db, personas):
    h = host(api, "h", "10.0.0.1")
    service(api, "s1", h)
    service(api, "s2", h, port=80)
    grant_on(api, personas.users["acme_viewer"].id, h["id"])
    r = api("acme_member").get(url(rid=h["id"]) + "/deletion-impact")
    assert r.status_code == 200, r.text
    assert r.json()["counts"] == {"resources": 3, "resource_unique_values": 1, "grants": 1}
    assert len(names(api)) == 3  # nothing deleted


def test_deletion_impact_resource_viewer_403_other_tenant_404(api):
    h = host(api, "h", "10.0.0.1")
    assert api("acme_viewer").get(url(rid=h["id"]) + "/deletion-impact").status_code == 403
    assert api("globex_admin").get(url("acme", h["id"]) + "/deletion-impact").status_code == 404
    assert api("globex_admin").get(url("globex", h["id"]) + "/deletion-impact").status_code == 404


# --- tenant counts -------------------------------------------------------------------------


def test_tenant_counts_follow_create_delete_and_restore(api):
    assert tenant_counts(api) == (4, 0)
    h = host(api, "h", "10.0.0.1")
    service(api, "s", h)
    make(api, type="project", name="p")
    assert tenant_counts(api) == (4, 3)
    assert tenant_counts(api, "globex") == (2, 0)
    batch = api("acme_member").delete(url(rid=h["id"])).json()["deletion_batch_id"]
    assert tenant_counts(api) == (4, 1)
    assert api("acme_member").get("/api/v1/tenants/acme").json()["resource_count"] == 1
    r = api("acme_admin").post(f"/api/v1/tenants/acme/trash/{batch}/restore")
    assert r.status_code == 200, r.text
    assert tenant_counts(api) == (4, 3)
    assert tenant_counts(api, "globex") == (2, 0)


# --- resource-level grants -----------------------------------------------------------------


@pytest.fixture
def scoped_tree(api) -> dict[str, dict]:
    h1 = host(api, "granted-host", "10.0.0.1")
    s1 = service(api, "granted-child", h1)
    alert = make(api, type="alert", name="granted-grandchild", parent_id=s1["id"])
    h2 = host(api, "other-host", "10.0.0.2")
    s2 = service(api, "other-child", h2)
    p = make(api, type="project", name="other-project")
    return {"h1": h1, "s1": s1, "alert": alert, "h2": h2, "s2": s2, "p": p}


def _assert_sees_exactly_the_granted_subtree(api, persona: str, tree: dict[str, dict]) -> None:
    assert names(api, persona) == ["granted-child", "granted-grandchild", "granted-host"]
    assert names(api, persona, type="host") == ["granted-host"]
    assert names(api, persona, parent_id=tree["h2"]["id"]) == []
    for key in ("h1", "s1", "alert"):
        assert api(persona).get(url(rid=tree[key]["id"])).status_code == 200
    for key in ("h2", "s2", "p"):
        r = api(persona).get(url(rid=tree[key]["id"]))
        assert r.status_code == 404
        assert r.json()["code"] == "not_found"


def test_resource_grant_custom_role_member_sees_exactly_granted_resource_and_children(
    api, clean_db, personas, scoped_tree
):
    r = api("acme_admin").post(
        "/api/v1/tenants/acme/roles", json={"key": "lobby", "name": "Lobby", "permissions": ["tenant.read"]}
    )
    assert r.status_code == 201, r.text
    user_id = add_user(clean_db, api, personas, "acme_lobby", "lobby")
    assert names(api, "acme_lobby") == []
    grant_on(api, user_id, scoped_tree["h1"]["id"])
    _assert_sees_exactly_the_granted_subtree(api, "acme_lobby", scoped_tree)


def test_resource_grant_viewer_cannot_write_the_granted_resource(api, clean_db, personas, scoped_tree):
    api("acme_admin").post(
        "/api/v1/tenants/acme/roles", json={"key": "lobby", "name": "Lobby", "permissions": ["tenant.read"]}
    )
    user_id = add_user(clean_db, api, personas, "acme_lobby", "lobby")
    grant_on(api, user_id, scoped_tree["h1"]["id"])
    r = api("acme_lobby").patch(url(rid=scoped_tree["h1"]["id"]), json={"name": "mine"})
    assert r.status_code == 403
    r = api("acme_lobby").post(
        url(), json={"type": "service", "name": "x", "parent_id": scoped_tree["h1"]["id"]}
    )
    assert r.status_code == 403
    assert names(api, "acme_lobby", type="service") == ["granted-child"]


def test_resource_grant_member_role_may_create_children_under_granted_host_only(
    api, clean_db, personas, scoped_tree
):
    api("acme_admin").post(
        "/api/v1/tenants/acme/roles", json={"key": "lobby", "name": "Lobby", "permissions": ["tenant.read"]}
    )
    user_id = add_user(clean_db, api, personas, "acme_lobby", "lobby")
    grant_on(api, user_id, scoped_tree["h1"]["id"], role="member")
    ok = api("acme_lobby").post(
        url(),
        json={
            "type": "service",
            "name": "new",
            "parent_id": scoped_tree["h1"]["id"],
            "attributes": {"port": 8080},
        },
    )
    assert ok.status_code == 201, ok.text
    denied = api("acme_lobby").post(
        url(),
        json={
            "type": "service",
            "name": "no",
            "parent_id": scoped_tree["h2"]["id"],
            "attributes": {"port": 8080},
        },
    )
    assert denied.status_code == 403
    assert "no" not in names(api, "acme_admin")


def test_resource_grant_only_grant_member_sees_exactly_granted_resource_and_children(
    api, clean_db, personas, scoped_tree
):
    """A member whose only grant is on one resource (tenant grant revoked) still works on it."""
    user_id = add_user(clean_db, api, personas, "acme_scoped", "viewer")
    tenant_grant = (
        api("acme_admin").get("/api/v1/tenants/acme/grants", params={"principal_id": str(user_id)}).json()
    )
    assert len(tenant_grant) == 1
    assert api("acme_admin").delete(f"/api/v1/tenants/acme/grants/{tenant_grant[0]['id']}").status_code == 204
    grant_on(api, user_id, scoped_tree["h1"]["id"])
    _assert_sees_exactly_the_granted_subtree(api, "acme_scoped", scoped_tree)


def test_resource_grant_on_trashed_resource_stops_working_and_returns_with_restore(
    api, clean_db, personas, scoped_tree
):
    api("acme_admin").post(
        "/api/v1/tenants/acme/roles", json={"key": "lobby", "name": "Lobby", "permissions": ["tenant.read"]}
    )
    user_id = add_user(clean_db, api, personas, "acme_lobby", "lobby")
    grant_on(api, user_id, scoped_tree["h1"]["id"])
    batch = api("acme_admin").delete(url(rid=scoped_tree["h1"]["id"])).json()["deletion_batch_id"]
    assert names(api, "acme_lobby") == []
    assert api("acme_admin").post(f"/api/v1/tenants/acme/trash/{batch}/restore").status_code == 200
    _assert_sees_exactly_the_granted_subtree(api, "acme_lobby", scoped_tree)


def test_resource_grant_on_other_tenants_resource_422_unknown_resource(api, clean_db, personas):
    theirs = host(api, "globex-host", "10.0.0.1", tenant="globex")
    r = api("acme_admin").post(
        "/api/v1/tenants/acme/grants",
        json={
            "principal": {"type": "user", "id": str(personas.users["acme_viewer"].id)},
            "role": "viewer",
            "scope": {"type": "resource", "resource_id": theirs["id"]},
        },
    )
    assert r.status_code == 422
    assert r.json()["code"] == "unknown_resource"
    assert "globex-host" not in r.text


def test_resource_grant_type_specific_custom_role_lists_both_granted_subtrees(
    api, clean_db, personas, scoped_tree
):
    for key, perms in (("lobby", ["tenant.read"]), ("host_reader", ["host.read"])):
        r = api("acme_admin").post(
            "/api/v1/tenants/acme/roles", json={"key": key, "name": key, "permissions": perms}
        )
        assert r.status_code == 201, r.text
    user_id = add_user(clean_db, api, personas, "acme_lobby", "lobby")
    grant_on(api, user_id, scoped_tree["h2"]["id"], role="host_reader")
    grant_on(api, user_id, scoped_tree["h1"]["id"])
    assert names(api, "acme_lobby") == ["granted-child", "granted-grandchild", "granted-host", "other-host"]

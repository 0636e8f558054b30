"""`/api/v1/resource-types`: the registry (superadmins write; everyone signed in reads)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from sqlalchemy import func, select

from tenantry.authz import system_principal
from tenantry.db.session import Database
from tenantry.db.tables import AuditEvent, ResourceType
from tenantry.services import resource_types
from tenantry.services.context import ServiceContext
from tests.personas import Personas

BASE = "/api/v1/resource-types"
BUILTIN = ["alert", "deployment", "host", "inventory", "project", "server", "service"]
WIDGET = {
    "key": "widget",
    "name": "Widget",
    "schema": {"type": "object", "properties": {"size": {"type": "integer"}}},
    "unique_fields": ["serial"],
    "cascade_delete": True,
}


@pytest.fixture
def builtin_types(personas: Personas, clean_db: Database) -> None:
    """The personas fixture does not create the built-in resource types; `tenantry init` would."""
    with clean_db.unit_of_work() as session:
        resource_types.ensure_builtin_types(
            ServiceContext(session=session, principal=system_principal("tests"))
        )


pytestmark = pytest.mark.usefixtures("builtin_types")


# --- helpers -------------------------------------------------------------------------------


def _type_row(db: Database, key: str) -> ResourceType | None:
    with db.sessions() as s:
        return s.get(ResourceType, key)


def _audit(db: Database, action: str, target_id: str) -> list[AuditEvent]:
    with db.sessions() as s:
        return list(
            s.scalars(
                select(AuditEvent).where(AuditEvent.action == action, AuditEvent.target_id == target_id)
            )
        )


def _widget(api, **overrides: Any) -> dict[str, Any]:
    r = api("superadmin").post(BASE, json=WIDGET | overrides)
    assert r.status_code == 201, r.text
    return r.json()


def _resource(api, persona: str, tenant: str, **body: Any) -> Any:
    return api(persona).post(f"/api/v1/tenants/{tenant}/resources", json=body)


def _keys(api, persona: str = "superadmin") -> list[str]:
    r = api(persona).get(BASE)
    assert r.status_code == 200, r.text
    return [t["key"] for t in r.json()]


# --- list ----------------------------------------------------------------------------------


@pytest.mark.parametrize("persona", ["superadmin", "acme_admin", "acme_viewer", "globex_member", "outsider"])
def test_list_resource_types_everyone_signed_in_sees_the_registry(api, persona):
    assert _keys(api, persona) == BUILTIN


def test_list_resource_types_item_has_the_documented_fields(api):
    host = next(t for t in api("acme_member").get(BASE).json() if t["key"] == "host")
    assert {"key", "name", "schema", "unique_fields", "parent_type", "cascade_delete"} <= set(host)
    assert host["unique_fields"] == ["ip_address"]
    assert host["cascade_delete"] is True
    assert host["parent_type"] is None
    assert host["builtin"] is True
    assert host["schema"]["properties"]["ip_address"]["format"] == "ipv4"


def test_list_resource_types_without_token_401(api):
    r = api(None).get(BASE)
    assert r.status_code == 401
    assert r.json()["code"] == "unauthenticated"


# --- create --------------------------------------------------------------------------------


def test_create_resource_type_superadmin_201_listed_and_audited(api, clean_db):
    body = _widget(api, parent_type="host")
    assert body["key"] == "widget"
    assert body["schema"] == WIDGET["schema"]
    assert body["unique_fields"] == ["serial"]
    assert body["parent_type"] == "host"
    assert body["builtin"] is False
    assert "widget" in _keys(api, "acme_member")
    assert len(_audit(clean_db, "resource_type.create", "widget")) == 1


def test_create_resource_type_generates_permissions_members_can_use(api):
    _widget(api)
    perms = [p["key"] for p in api("superadmin").get("/api/v1/permissions").json()]
    assert {"widget.read", "widget.create", "widget.update", "widget.delete"} <= set(perms)
    r = _resource(api, "acme_member", "acme", type="widget", name="w1", attributes={"size": 3})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "no-such-type"},
        {"type": "object", "properties": {"size": {"type": 12}}},
        {"type": "object", "required": "size"},
        {"minLength": -1},
        {"type": "string", "pattern": "("},
        {"$ref": "#/$defs/missing"},
        {"$ref": "file:///etc/passwd"},
        {"$ref": "http://127.0.0.1:9/schema.json"},
    ],
)
def test_create_resource_type_invalid_json_schema_422_invalid_schema_nothing_written(api, clean_db, schema):
    r = api("superadmin").post(BASE, json=WIDGET | {"schema": schema})
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_schema"
    assert r.json()["field"] == "schema"
    assert _type_row(clean_db, "widget") is None
    assert _audit(clean_db, "resource_type.create", "widget") == []


@pytest.fixture
def schema_server() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that serves a valid schema and records every request it gets."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            body = json.dumps({"type": "object"}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/schema.json", hits
    finally:
        server.shutdown()
        server.server_close()


def test_create_resource_type_remote_ref_is_refused_and_never_fetched(api, clean_db, schema_server):
    url, hits = schema_server
    r = api("superadmin").post(BASE, json=WIDGET | {"schema": {"$ref": url}})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_schema"
    assert hits == []  # the server never reached out (no SSRF through `$ref`)
    assert _type_row(clean_db, "widget") is None


def test_create_resource_type_local_refs_and_meta_schema_refs_resolve(api):
    schema = {
        "$defs": {"size": {"type": "integer", "minimum": 0}},
        "type": "object",
        "properties": {"size": {"$ref": "#/$defs/size"}},
    }
    _widget(api, schema=schema)
    assert (
        _resource(api, "acme_member", "acme", type="widget", name="w1", attributes={"size": 3}).status_code
        == 201
    )
    r = _resource(api, "acme_member", "acme", type="widget", name="w2", attributes={"size": -1})
    assert r.status_code == 422, r.text
    meta = {"$ref": "https://json-schema.org/draft/2020-12/schema"}  # built in, nothing fetched
    assert api("superadmin").post(BASE, json=WIDGET | {"key": "meta_doc", "schema": meta}).status_code == 201


@pytest.mark.parametrize("key", ["X", "1abc", "has-dash", "tenant", "audit", "a" * 65])
def test_create_resource_type_bad_key_422_nothing_written(api, clean_db, key):
    r = api("superadmin").post(BASE, json=WIDGET | {"key": key})
    assert r.status_code == 422
    assert r.json()["code"] in {"invalid_type_key", "validation_error"}
    assert _keys(api) == BUILTIN


def test_create_resource_type_unknown_parent_type_422(api, clean_db):
    r = api("superadmin").post(BASE, json=WIDGET | {"parent_type": "no_such_type"})
    assert r.status_code == 422
    assert r.json()["code"] == "unknown_resource_type"
    assert _type_row(clean_db, "widget") is None


def test_create_resource_type_bad_unique_field_name_422(api, clean_db):
    r = api("superadmin").post(BASE, json=WIDGET | {"unique_fields": ["not a name"]})
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_field"
    assert _type_row(clean_db, "widget") is None


def test_create_resource_type_existing_key_409_and_original_untouched(api, clean_db):
    r = api("superadmin").post(BASE, json=WIDGET | {"key": "host", "name": "Impostor"})
    assert r.status_code == 409
    assert r.json()["code"] == "resource_type_exists"
    assert api("acme_member").get(f"{BASE}/host").json()["name"] == "Host"


def test_create_resource_type_mass_assignment_422(api, clean_db):
    r = api("superadmin").post(BASE, json=WIDGET | {"builtin": True})
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"
    assert _type_row(clean_db, "widget") is None


@pytest.mark.parametrize("persona", ["acme_admin", "acme_member", "globex_admin", "outsider"])
def test_create_resource_type_non_superadmin_403_nothing_written(api, clean_db, persona):
    r = api(persona).post(BASE, json=WIDGET)
    assert r.status_code == 403
    assert r.json()["code"] == "permission_denied"
    assert _type_row(clean_db, "widget") is None


# --- get -----------------------------------------------------------------------------------


def test_get_resource_type_any_member_200_with_etag(api):
    r = api("globex_member").get(f"{BASE}/service")
    assert r.status_code == 200
    assert r.json()["parent_type"] == "host"
    assert r.headers["ETag"] == '"v1"'


def test_get_resource_type_unknown_404(api):
    r = api("superadmin").get(f"{BASE}/no_such_type")
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"


# --- update --------------------------------------------------------------------------------


def test_patch_resource_type_superadmin_200_new_etag_and_audited(api, clean_db):
    _widget(api)
    etag = api("superadmin").get(f"{BASE}/widget").headers["ETag"]
    r = api("superadmin").patch(f"{BASE}/widget", json={"name": "Gadget"}, headers={"If-Match": etag})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Gadget"
    assert r.headers["ETag"] != etag
    events = _audit(clean_db, "resource_type.update", "widget")
    assert len(events) == 1
    assert events[0].after == {"name": "Gadget"}


def test_patch_resource_type_stale_if_match_412_nothing_written(api, clean_db):
    _widget(api)
    stale = api("superadmin").get(f"{BASE}/widget").headers["ETag"]
    assert api("superadmin").patch(f"{BASE}/widget", json={"name": "First"}).status_code == 200
    r = api("superadmin").patch(f"{BASE}/widget", json={"name": "Second"}, headers={"If-Match": stale})
    assert r.status_code == 412
    assert r.json()["code"] == "etag_mismatch"
    assert api("superadmin").get(f"{BASE}/widget").json()["name"] == "First"


def test_patch_resource_type_schema_new_resources_validated_against_new_schema(api):
    _widget(api)
    strict = {"type": "object", "properties": {"size": {"type": "integer", "maximum": 10}}}
    assert api("superadmin").patch(f"{BASE}/widget", json={"schema": strict}).status_code == 200
    r = _resource(api, "acme_member", "acme", type="widget", name="big", attributes={"size": 11})
    assert r.status_code == 422
    assert r.json()["field"] == "attributes.size"


def test_patch_resource_type_schema_existing_resources_violate_409_with_count(api, clean_db):
    _widget(api)
    for i, tenant in enumerate(["acme", "acme", "globex"]):
        r = _resource(api, "superadmin", tenant, type="widget", name=f"w{i}", attributes={"size": i + 1})
        assert r.status_code == 201, r.text
    assert _resource(api, "superadmin", "acme", type="widget", name="free", attributes={}).status_code == 201
    stricter = {
        "type": "object",
        "required": ["size"],
        "properties": {"size": {"type": "integer", "maximum": 1}},
    }
    r = api("superadmin").patch(f"{BASE}/widget", json={"schema": stricter})
    assert r.status_code == 409
    assert r.json()["code"] == "schema_violations"
    assert r.json()["count"] == 3  # sizes 2 and 3 break the maximum; the one without a size breaks required
    assert api("superadmin").get(f"{BASE}/widget").json()["schema"] == WIDGET["schema"]
    assert _audit(clean_db, "resource_type.update", "widget") == []


def test_patch_resource_type_schema_ignores_trashed_resources(api):
    _widget(api)
    r = _resource(api, "acme_member", "acme", type="widget", name="old", attributes={"size": 50})
    assert api("acme_member").delete(f"/api/v1/tenants/acme/resources/{r.json()['id']}").status_code == 200
    small = {"type": "object", "properties": {"size": {"type": "integer", "maximum": 10}}}
    assert api("superadmin").patch(f"{BASE}/widget", json={"schema": small}).status_code == 200


def test_patch_resource_type_invalid_schema_422_invalid_schema_nothing_written(api):
    _widget(api)
    r = api("superadmin").patch(f"{BASE}/widget", json={"schema": {"type": 5}})
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_schema"
    assert api("superadmin").get(f"{BASE}/widget").json()["schema"] == WIDGET["schema"]


def test_patch_resource_type_changing_unique_fields_409(api):
    _widget(api)
    r = api("superadmin").patch(f"{BASE}/widget", json={"unique_fields": ["other"]})
    assert r.status_code == 409
    assert r.json()["code"] == "unique_fields_fixed"
    assert api("superadmin").get(f"{BASE}/widget").json()["unique_fields"] == ["serial"]


def test_patch_resource_type_unknown_field_422(api):
    _widget(api)
    r = api("superadmin").patch(f"{BASE}/widget", json={"key": "renamed"})
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"


def test_patch_resource_type_unknown_404(api):
    r = api("superadmin").patch(f"{BASE}/no_such_type", json={"name": "x"})
    assert r.status_code == 404


@pytest.mark.parametrize("persona", ["acme_admin", "acme_member", "globex_admin"])
def test_patch_resource_type_non_superadmin_403_nothing_written(api, persona):
    r = api(persona).patch(f"{BASE}/host", json={"name": "Mine"})
    assert r.status_code == 403
    assert r.json()["code"] == "permission_denied"
    assert api("superadmin").get(f"{BASE}/host").json()["name"] == "Host"


# --- delete --------------------------------------------------------------------------------


def test_delete_resource_type_unused_204_gone_and_audited(api, clean_db):
    _widget(api)
    r = api("superadmin").delete(f"{BASE}/widget")
    assert r.status_code == 204
    assert api("superadmin").get(f"{BASE}/widget").status_code == 404
    assert "widget" not in _keys(api)
    assert len(_audit(clean_db, "resource_type.delete", "widget")) == 1


@pytest.mark.parametrize("key", BUILTIN)
def test_delete_resource_type_builtin_409_and_kept(api, key):
    r = api("superadmin").delete(f"{BASE}/{key}")
    assert r.status_code == 409
    assert r.json()["code"] == "builtin_resource_type"
    assert api("superadmin").get(f"{BASE}/{key}").status_code == 200


def test_delete_resource_type_in_use_409_and_kept(api):
    _widget(api)
    assert (
        _resource(api, "globex_member", "globex", type="widget", name="w", attributes={}).status_code == 201
    )
    r = api("superadmin").delete(f"{BASE}/widget")
    assert r.status_code == 409
    assert r.json()["code"] == "type_in_use"
    assert api("superadmin").get(f"{BASE}/widget").status_code == 200


def test_delete_resource_type_used_only_in_trash_409(api):
    _widget(api)
    r = _resource(api, "acme_member", "acme", type="widget", name="w", attributes={})
    assert api("acme_member").delete(f"/api/v1/tenants/acme/resources/{r.json()['id']}").status_code == 200
    r = api("superadmin").delete(f"{BASE}/widget")
    assert r.status_code == 409
    assert r.json()["code"] == "type_in_use"


def test_delete_resource_type_unknown_404(api):
    assert api("superadmin").delete(f"{BASE}/no_such_type").status_code == 404


@pytest.mark.parametrize("persona", ["acme_admin", "globex_admin", "outsider"])
def test_delete_resource_type_non_superadmin_403_and_kept(api, persona):
    _widget(api)
    r = api(persona).delete(f"{BASE}/widget")
    assert r.status_code == 403
    assert api("superadmin").get(f"{BASE}/widget").status_code == 200


def test_delete_then_recreate_resource_type_validates_with_the_new_schema(api):
    """A recreated key starts at version 1 again: no validator of the old type may linger."""
    _widget(api)
    r = _resource(api, "acme_member", "acme", type="widget", name="w", attributes={"size": "large"})
    assert r.status_code == 422  # validated (and the validator compiled) under the old schema
    assert api("superadmin").delete(f"{BASE}/widget").status_code == 204
    _widget(api, schema={"type": "object", "properties": {"size": {"type": "string"}}})
    r = _resource(api, "acme_member", "acme", type="widget", name="w", attributes={"size": "large"})
    assert r.status_code == 201, r.text


def test_resource_type_counts_unchanged_by_refused_writes(api, clean_db):
    before = _keys(api)
    api("acme_admin").post(BASE, json=WIDGET)
    api("superadmin").post(BASE, json=WIDGET | {"schema": {"type": 1}})
    with clean_db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(ResourceType)) == len(before)

"""`/api/v1/tenants`: list, create, get, patch, put, delete to the trash, deletion impact, restore."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from tenantry.authz import system_principal
from tenantry.db import scoping
from tenantry.db.session import Database
from tenantry.db.tables import AuditEvent, Membership, Resource, Tenant
from tenantry.db.types import utcnow
from tenantry.services import tenants as tenant_service
from tenantry.services.context import ServiceContext

BASE = "/api/v1/tenants"
SOME_UUID = "0190a6c4-8f5e-7c3a-9b1d-2e4f6a8c0b1d"  # fixed: parametrize ids must be stable


# --- helpers -------------------------------------------------------------------------------


def _slugs(api, persona: str = "superadmin", **params) -> list[str]:
    r = api(persona).get(BASE, params={"limit": 200, **params})
    assert r.status_code == 200, r.text
    return [t["slug"] for t in r.json()["items"]]


def _audit_count(db: Database, action: str) -> int:
    with db.sessions() as s:
        return s.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)) or 0


def _audit_events(db: Database, action: str, target_id: object) -> list[AuditEvent]:
    with db.sessions() as s:
        return list(
            s.scalars(
                select(AuditEvent)
                .where(AuditEvent.action == action, AuditEvent.target_id == str(target_id))
                .order_by(AuditEvent.id)
            )
        )


def _memberships(db: Database, tenant_id: uuid.UUID) -> dict[uuid.UUID, tuple[object, object]]:
    """Every membership row of a tenant, trashed or not: id → (deleted_at, deletion_batch_id)."""
    with db.sessions() as s, scoping.cross_tenant(s), scoping.include_deleted(s):
        rows = s.scalars(select(Membership).where(Membership.tenant_id == tenant_id))
        return {m.id: (m.deleted_at, m.deletion_batch_id) for m in rows}


def _add_resources(db: Database, tenant_id: uuid.UUID, live: int, trashed: int = 0) -> None:
    with db.unit_of_work() as s:
        scoping.enter_tenant(s, tenant_id)
        for i in range(live):
            s.add(Resource(tenant_id=tenant_id, type="host", name=f"host-{i}"))
        for i in range(trashed):
            s.add(Resource(tenant_id=tenant_id, type="host", name=f"gone-{i}", deleted_at=utcnow()))


def _create_tenants(db: Database, slugs: list[str]) -> None:
    with db.unit_of_work() as s:
        ctx = ServiceContext(session=s, principal=system_principal("tests"))
        for slug in slugs:
            tenant_service.create_tenant(ctx, slug=slug, name=f"Tenant {slug}")


@contextmanager
def _statements(db: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def on_execute(_conn, _cursor, statement, _params, _context, _executemany) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", on_execute)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", on_execute)


def _etag(api, ref: str = "acme") -> str:
    r = api("superadmin").get(f"{BASE}/{ref}")
    assert r.status_code == 200
    return r.headers["ETag"]


# --- list ----------------------------------------------------------------------------------


def test_list_tenants_superadmin_sees_all_in_slug_order(api):
    r = api("superadmin").get(BASE)
    assert r.status_code == 200
    assert [t["slug"] for t in r.json()["items"]] == ["acme", "globex"]
    assert r.json()["next_cursor"] is None


@pytest.mark.parametrize(
    ("persona", "expected"),
    [
        ("acme_admin", ["acme"]),
        ("acme_member", ["acme"]),
        ("acme_viewer", ["acme"]),
        ("acme_auditor", ["acme"]),
        ("globex_member", ["globex"]),
        ("outsider", []),
    ],
)
def test_list_tenants_non_superadmin_sees_only_own_tenants(api, persona, expected):
    assert _slugs(api, persona) == expected


def test_list_tenants_without_token_401(api):
    r = api(None).get(BASE)
    assert r.status_code == 401
    assert r.json()["code"] == "unauthenticated"


def test_list_tenants_item_has_the_documented_fields(api, personas):
    item = api("acme_member").get(BASE).json()["items"][0]
    assert set(item) == {
        "id",
        "slug",
        "name",
        "description",
        "branding",
        "status",
        "member_count",
        "resource_count",
        "created_at",
        "updated_at",
    }
    assert item["id"] == str(personas.acme.id)
    assert item["name"] == "Acme Corp"
    assert item["branding"] == {"color": None, "logo_url": None}
    assert item["status"] == "active"


def test_list_tenants_counts_members_and_live_resources(api, personas, clean_db):
    _add_resources(clean_db, personas.acme.id, live=3, trashed=2)
    _add_resources(clean_db, personas.globex.id, live=1)
    items = {t["slug"]: t for t in api("superadmin").get(BASE).json()["items"]}
    assert (items["acme"]["member_count"], items["acme"]["resource_count"]) == (4, 3)
    assert (items["globex"]["member_count"], items["globex"]["resource_count"]) == (2, 1)
    one = api("superadmin").get(f"{BASE}/acme").json()
    assert (one["member_count"], one["resource_count"]) == (4, 3)


def test_list_tenants_cursor_pagination_returns_each_once_in_slug_order(api, clean_db):
    _create_tenants(clean_db, ["zulu", "bravo", "mike", "alpha", "hotel"])
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        body = api("superadmin").get(BASE, params=params).json()
        assert len(body["items"]) <= 3
        seen += [t["slug"] for t in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert pages < 10
    assert pages == 3
    assert seen == sorted(["acme", "globex", "zulu", "bravo", "mike", "alpha", "hotel"])


def test_list_tenants_insert_before_cursor_neither_repeats_nor_skips(api, clean_db):
    _create_tenants(clean_db, ["bravo", "delta", "foxtrot"])
    first = api("superadmin").get(BASE, params={"limit": 2}).json()
    assert [t["slug"] for t in first["items"]] == ["acme", "bravo"]
    _create_tenants(clean_db, ["aardvark"])  # sorts before the cursor
    rest = api("superadmin").get(BASE, params={"limit": 10, "cursor": first["next_cursor"]}).json()
    assert [t["slug"] for t in rest["items"]] == ["delta", "foxtrot", "globex"]


def test_list_tenants_garbage_cursor_422_invalid_cursor(api):
    for cursor in ("!!!!", "%FF", "not a cursor"):
        r = api("superadmin").get(BASE, params={"cursor": cursor})
        assert r.status_code == 422, cursor
        assert r.json()["code"] == "invalid_cursor"


def test_list_tenants_statement_count_independent_of_page_size(api, clean_db):
    _create_tenants(clean_db, [f"tenant{i:02d}" for i in range(28)])
    # Warm up once: per-process caches (permissions, prepared state) may cost a first statement.
    assert api("superadmin").get(BASE, params={"limit": 1}).status_code == 200
    counts = {}
    for limit in (5, 30):
        with _statements(clean_db) as seen:
            r = api("superadmin").get(BASE, params={"limit": limit})
        assert r.status_code == 200
        assert len(r.json()["items"]) == limit
        counts[limit] = len(seen)
    assert counts[5] == counts[30]
    assert counts[30] < 30


def test_list_tenants_q_matches_name_or_slug_case_insensitively(api, clean_db):
    _create_tenants(clean_db, ["initech"])
    assert _slugs(api, q="CORP") == ["acme"]
    assert _slugs(api, q="glob") == ["globex"]
    assert _slugs(api, q="nothing-like-this") == []


def test_list_tenants_q_wildcards_are_literal(api, clean_db):
    _create_tenants(clean_db, ["ab1"])
    assert _slugs(api, q="_") == []
    assert _slugs(api, q="%") == []
    assert _slugs(api, q="a_1") == []


def test_list_tenants_status_filter_returns_matching_only(api):
    r = api("superadmin").patch(f"{BASE}/globex", json={"status": "suspended"})
    assert r.status_code == 200
    assert _slugs(api, status="suspended") == ["globex"]
    assert _slugs(api, status="active") == ["acme"]


@pytest.mark.parametrize("params", [{"status": "paused"}, {"limit": 0}, {"limit": 201}, {"limit": "x"}])
def test_list_tenants_bad_query_422_validation_error(api, params):
    r = api("superadmin").get(BASE, params=params)
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"


# --- create --------------------------------------------------------------------------------


def test_create_tenant_superadmin_201_with_etag_location_and_audit(api, clean_db, personas):
    body = {
        "slug": "Initech",
        "name": " Initech ",
        "description": "TPS reports",
        "branding": {"color": "#00AAFF", "logo_url": "https://example.com/logo.svg"},
    }
    r = api("superadmin").post(BASE, json=body)
    assert r.status_code == 201, r.text
    t = r.json()
    assert t["slug"] == "initech"
    assert t["name"] == "Initech"
    assert t["description"] == "TPS reports"
    assert t["branding"] == {"color": "#00aaff", "logo_url": "https://example.com/logo.svg"}
    assert t["status"] == "active"
    assert (t["member_count"], t["resource_count"]) == (0, 0)
    assert r.headers["ETag"]
    assert r.headers["Location"] == f"{BASE}/initech"
    assert api("superadmin").get(r.headers["Location"]).json()["id"] == t["id"]
    assert _slugs(api) == ["acme", "globex", "initech"]
    [ev] = _audit_events(clean_db, "tenant.create", t["id"])
    assert ev.actor_id == personas.users["superadmin"].id
    assert ev.tenant_id == uuid.UUID(t["id"])
    assert ev.after["slug"] == "initech"


def test_create_tenant_suspended_status_allowed_for_superadmin(api):
    r = api("superadmin").post(BASE, json={"slug": "dormant", "name": "Dormant", "status": "suspended"})
    assert r.status_code == 201
    assert r.json()["status"] == "suspended"


@pytest.mark.parametrize("slug", ["-acme", "acme-", "ac_me", "a b", "ümlaut", "a.b", "x" * 62 + "-"])
def test_create_tenant_bad_slug_422_invalid_slug_and_nothing_written(api, clean_db, slug):
    r = api("superadmin").post(BASE, json={"slug": slug, "name": "X"})
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_slug"
    assert _slugs(api) == ["acme", "globex"]
    assert _audit_count(clean_db, "tenant.create") == 2


@pytest.mark.parametrize("slug", ["admin", "API", "www", " me "])
def test_create_tenant_reserved_slug_422_slug_reserved(api, clean_db, slug):
    r = api("superadmin").post(BASE, json={"slug": slug, "name": "X"})
    assert r.status_code == 422
    assert r.json()["code"] == "slug_reserved"
    assert _slugs(api) == ["acme", "globex"]


@pytest.mark.parametrize("color", ["red", "#12345g", "#123", "00aaff"])
def test_create_tenant_bad_color_422_invalid_color(api, clean_db, color):
    r = api("superadmin").post(BASE, json={"slug": "initech", "name": "X", "branding": {"color": color}})
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_color"
    assert _slugs(api) == ["acme", "globex"]
    assert _audit_count(clean_db, "tenant.create") == 2


@pytest.mark.parametrize(
    "url", ["http://example.com/logo.png", "javascript:alert(1)", "ftp://x/y", "https://"]
)
def test_create_tenant_bad_logo_url_422_invalid_logo_url(api, clean_db, url):
    r = api("superadmin").post(BASE, json={"slug": "initech", "name": "X", "branding": {"logo_url": url}})
    assert r.status_code == 422
    assert r.json()["code"] == "invalid_logo_url"
    assert _slugs(api) == ["acme", "globex"]


@pytest.mark.parametrize("slug", ["acme", "ACME", " Acme "])
def test_create_tenant_taken_slug_409_slug_taken_and_original_untouched(api, clean_db, personas, slug):
    r = api("superadmin").post(BASE, json={"slug": slug, "name": "Impostor"})
    assert r.status_code == 409
    assert r.json()["code"] == "slug_taken"
    acme = api("superadmin").get(f"{BASE}/acme").json()
    assert (acme["id"], acme["name"]) == (str(personas.acme.id), "Acme Corp")
    assert _slugs(api) == ["acme", "globex"]
    assert _audit_count(clean_db, "tenant.create") == 2


def test_create_tenant_slug_of_trashed_tenant_409_slug_taken(api):
    assert api("superadmin").delete(f"{BASE}/globex").status_code == 200
    r = api("superadmin").post(BASE, json={"slug": "globex", "name": "New Globex"})
    assert r.status_code == 409
    assert r.json()["code"] == "slug_taken"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "No slug"}, "slug"),
        ({"slug": "noname"}, "name"),
        ({"slug": "blank", "name": "   "}, "name"),
        ({"slug": "x" * 64, "name": "Too long"}, "slug"),
        ({"slug": "st", "name": "Bad status", "status": "deleted"}, "status"),
        ({"slug": "typ", "name": 42}, "name"),
    ],
)
def test_create_tenant_invalid_body_422_validation_error_naming_field(api, clean_db, body, field):
    r = api("superadmin").post(BASE, json=body)
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"
    assert field in [e["field"] for e in r.json()["errors"]]
    assert _slugs(api) == ["acme", "globex"]


@pytest.mark.parametrize(
    "extra",
    [
        {"id": SOME_UUID},
        {"tenant_id": SOME_UUID},
        {"member_count": 99},
        {"created_at": "2000-01-01T00:00:00Z"},
        {"version": 7},
    ],
)
def test_create_tenant_mass_assignment_422_and_nothing_written(api, clean_db, extra):
    r = api("superadmin").post(BASE, json={"slug": "initech", "name": "Initech", **extra})
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"
    assert [e["field"] for e in r.json()["errors"]] == list(extra)
    assert _slugs(api) == ["acme", "globex"]
    assert _audit_count(clean_db, "tenant.create") == 2


def test_create_tenant_malformed_json_422_malformed_json(api):
    r = api("superadmin").post(BASE, content=b'{"slug": "x",', headers={"content-type": "application/json"})
    assert r.status_code == 422
    assert r.json()["code"] == "malformed_json"
    assert _slugs(api) == ["acme", "globex"]


@pytest.mark.parametrize("persona", ["acme_admin", "acme_member", "globex_admin", "outsider"])
def test_create_tenant_non_superadmin_403_and_nothing_written(api, clean_db, persona):
    r = api(persona).post(BASE, json={"slug": "initech", "name": "Initech"})
    assert r.status_code == 403
    assert r.json()["code"] == "permission_denied"
    assert _slugs(api) == ["acme", "globex"]
    assert _audit_count(clean_db, "tenant.create") == 2


def test_create_tenant_without_token_401(api):
    r = api(None).post(BASE, json={"slug": "initech", "name": "Initech"})
    assert r.status_code == 401


# --- get -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "persona", ["superadmin", "acme_admin", "acme_member", "acme_viewer", "acme_auditor"]
)
def test_get_tenant_by_slug_and_by_id_200_with_etag(api, personas, persona):
    by_slug = api(persona).get(f"{BASE}/acme")
    by_id = api(persona).get(f"{BASE}/{personas.acme.id}")
    assert by_slug.status_code == by_id.status_code == 200
    assert by_slug.json() == by_id.json()
    assert by_slug.json()["slug"] == "acme"
    assert by_slug.headers["ETag"] == by_id.headers["ETag"]


def test_get_tenant_slug_is_case_insensitive(api):
    assert api("acme_member").get(f"{BASE}/ACME").json()["slug"] == "acme"


@pytest.mark.parametrize("persona", ["globex_admin", "globex_member"])
def test_get_tenant_of_other_tenant_404_like_unknown(api, personas, persona):
    unknown = api(persona).get(f"{BASE}/no-such-tenant")
    for ref in ("acme", str(personas.acme.id)):
        r = api(persona).get(f"{BASE}/{ref}")
        assert r.status_code == 404
        assert r.json() == unknown.json()
        assert "Acme" not in r.text


def test_get_tenant_user_without_any_tenant_403_no_tenant_like_unknown(api, personas):
    unknown = api("outsider").get(f"{BASE}/no-such-tenant")
    assert unknown.status_code == 403
    assert unknown.json()["code"] == "no_tenant"
    for ref in ("acme", str(personas.acme.id)):
        r = api("outsider").get(f"{BASE}/{ref}")
        assert (r.status_code, r.json()) == (403, unknown.json())


def test_get_tenant_unknown_uuid_404(api):
    r = api("superadmin").get(f"{BASE}/{uuid.uuid4()}")
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"


# --- patch ---------------------------------------------------------------------------------


def test_patch_tenant_admin_renames_200_new_etag_and_audited_diff(api, clean_db, personas):
    old = _etag(api)
    r = api("acme_admin").patch(f"{BASE}/acme", json={"name": "Acme Industries"}, headers={"If-Match": old})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "Acme Industries"
    assert r.json()["description"] == ""
    assert r.headers["ETag"] != old
    assert api("acme_member").get(f"{BASE}/acme").json()["name"] == "Acme Industries"
    [ev] = _audit_events(clean_db, "tenant.update", personas.acme.id)
    assert ev.before == {"name": "Acme Corp"}
    assert ev.after == {"name": "Acme Industries"}
    assert ev.actor_id == personas.users["acme_admin"].id


def test_patch_tenant_branding_partial_keeps_other_branding_field(api):
    r = api("acme_admin").patch(
        f"{BASE}/acme", json={"branding": {"color": "#ABCDEF", "logo_url": "https://a.example/l.png"}}
    )
    assert r.status_code == 200
    r = api("acme_admin").patch(f"{BASE}/acme", json={"branding": {"color": "#000000"}})
    assert r.json()["branding"] == {"color": "#000000", "logo_url": "https://a.example/l.png"}
    r = api("acme_admin").patch(f"{BASE}/acme", json={"branding": None})
    assert r.json()["branding"] == {"color": None, "logo_url": None}


def test_patch_tenant_without_if_match_or_with_star_succeeds(api):
    assert api("acme_admin").patch(f"{BASE}/acme", json={"description": "a"}).status_code == 200
    r = api("acme_admin").patch(f"{BASE}/acme", json={"description": "b"}, headers={"If-Match": "*"})
    assert r.status_code == 200
    assert r.json()["description"] == "b"


def test_patch_tenant_stale_if_match_412_etag_mismatch_and_nothing_written(api, clean_db, personas):
    stale = _etag(api)
    assert (
        api("acme_admin")
        .patch(f"{BASE}/acme", json={"name": "First"}, headers={"If-Match": stale})
        .status_code
        == 200
    )
    r = api("acme_admin").patch(f"{BASE}/acme", json={"name": "Second"}, headers={"If-Match": stale})
    assert r.status_code == 412
    assert r.json()["code"] == "etag_mismatch"
    assert api("superadmin").get(f"{BASE}/acme").json()["name"] == "First"
    assert len(_audit_events(clean_db, "tenant.update", personas.acme.id)) == 1


@pytest.mark.parametrize("header", ["garbage", '"v"', '"vx1"', '"1"', 'W/"abc"', '"v1", "v2"'])
def test_patch_tenant_garbage_if_match_412(api, header):
    r = api("acme_admin").patch(f"{BASE}/acme", json={"name": "Nope"}, headers={"If-Match": header})
    assert r.status_code == 412
    assert r.json()["code"] == "etag_mismatch"
    assert api("superadmin").get(f"{BASE}/acme").json()["name"] == "Acme Corp"


@pytest.mark.parametrize("persona", ["acme_member", "acme_viewer", "acme_auditor"])
def test_patch_tenant_non_admin_member_403_and_nothing_written(api, clean_db, persona):
    r = api(persona).patch(f"{BASE}/acme", json={"name": "Hijacked"})
    assert r.status_code == 403
    assert r.json()["code"] == "permission_denied"
    assert api("superadmin").get(f"{BASE}/acme").json()["name"] == "Acme Corp"
    assert _audit_count(clean_db, "tenant.update") == 0


def test_patch_tenant_of_other_tenant_404_by_slug_and_id(api, personas):
    for ref in ("acme", str(personas.acme.id)):
        r = api("globex_admin").patch(f"{BASE}/{ref}", json={"name": "Hijacked"})
        assert r.status_code == 404
        assert r.json()["code"] == "not_found"
    assert api("superadmin").get(f"{BASE}/acme").json()["name"] == "Acme Corp"


def test_patch_tenant_admin_changing_status_403_and_still_active(api, clean_db):
    r = api("acme_admin").patch(f"{BASE}/acme", json={"status": "suspended"})
    assert r.status_code == 403
    assert r.json()["code"] == "permission_denied"
    assert api("superadmin").get(f"{BASE}/acme").json()["status"] == "active"
    assert _audit_count(clean_db, "tenant.suspend") == 0


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"branding": {"color": "blue"}}, "invalid_color"),
        ({"branding": {"logo_url": "http://insecure.example/x.png"}}, "invalid_logo_url"),
        ({"name": None}, "invalid_name"),
        ({"status": None}, "invalid_status"),
        ({"name": ""}, "validation_error"),
        ({"status": "archived"}, "validation_error"),
        ({"slug": "renamed"}, "validation_error"),
        ({"id": SOME_UUID}, "validation_error"),
        ({"tenant_id": SOME_UUID}, "validation_error"),
        ({"member_count": 0}, "validation_error"),
        ({"branding": {"colour": "#000000"}}, "validation_error"),
    ],
)
def test_patch_tenant_bad_input_422_and_nothing_written(api, clean_db, body, code):
    r = api("superadmin").patch(f"{BASE}/acme", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code
    after = api("superadmin").get(f"{BASE}/acme").json()
    assert (after["slug"], after["name"], after["status"]) == ("acme", "Acme Corp", "active")
    assert after["branding"] == {"color": None, "logo_url": None}
    assert _audit_count(clean_db, "tenant.update") == 0


def test_patch_tenant_malformed_json_422(api):
    r = api("acme_admin").patch(
        f"{BASE}/acme", content=b"{name:", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422
    assert r.json()["code"] == "malformed_json"


def test_patch_tenant_same_values_no_new_version_and_no_audit(api, clean_db):
    before = _etag(api)
    r = api("acme_admin").patch(f"{BASE}/acme", json={"name": "Acme Corp"})
    assert r.status_code == 200
    assert r.headers["ETag"] == before
    assert _audit_count(clean_db, "tenant.update") == 0


# --- put (full update) --------------------------------------------------------------------

FULL = {
    "name": "Acme Industries",
    "description": "Tools",
    "branding": {"color": "#ABCDEF", "logo_url": "https://a.example/l.png"},
    "status": "active",
}


def test_put_tenant_admin_replaces_every_field_new_etag_and_audited_diff(api, clean_db, personas):
    old = _etag(api)
    r = api("acme_admin").put(f"{BASE}/acme", json=FULL, headers={"If-Match": old})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["slug"], body["name"], body["description"], body["status"]) == (
        "acme",
        "Acme Industries",
        "Tools",
        "active",
    )
    assert body["branding"] == {"color": "#abcdef", "logo_url": "https://a.example/l.png"}
    assert r.headers["ETag"] != old
    assert api("acme_member").get(f"{BASE}/acme").json() == body
    [ev] = _audit_events(clean_db, "tenant.update", personas.acme.id)
    assert ev.before == {
        "name": "Acme Corp",
        "description": "",
        "branding_color": None,
        "branding_logo_url": None,
    }
    assert ev.after == {
        "name": "Acme Industries",
        "description": "Tools",
        "branding_color": "#abcdef",
        "branding_logo_url": "https://a.example/l.png",
    }
    assert ev.actor_id == personas.users["acme_admin"].id


def test_put_tenant_clears_what_the_body_leaves_empty(api):
    assert api("acme_admin").put(f"{BASE}/acme", json=FULL).status_code == 200
    r = api("acme_admin").put(
        f"{BASE}/acme",
        json={**FULL, "description": "", "branding": {"color": "#000000"}},
    )
    assert r.status_code == 200, r.text
    assert r.json()["description"] == ""
    assert r.json()["branding"] == {"color": "#000000", "logo_url": None}  # unlike PATCH
    r = api("acme_admin").put(f"{BASE}/acme", json={**FULL, "branding": None})
    assert r.json()["branding"] == {"color": None, "logo_url": None}


def test_put_tenant_superadmin_suspends_with_the_suspend_event(api, clean_db, personas):
    r = api("superadmin").put(f"{BASE}/acme", json={**FULL, "status": "suspended"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "suspended"
    assert len(_audit_events(clean_db, "tenant.suspend", personas.acme.id)) == 1


@pytest.mark.parametrize("missing", ["name", "description", "branding", "status"])
def test_put_tenant_missing_field_422_and_nothing_written(api, clean_db, missing):
    body = {k: v for k, v in FULL.items() if k != missing}
    r = api("superadmin").put(f"{BASE}/acme", json=body)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "validation_error"
    assert api("superadmin").get(f"{BASE}/acme").json()["name"] == "Acme Corp"
    assert _audit_count(clean_db, "tenant.update") == 0


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"name": ""}, "validation_error"),
        ({"name": None}, "validation_error"),
        ({"description": None}, "validation_error"),
        ({"status": "archived"}, "validation_error"),
        ({"slug": "renamed"}, "validation_error"),
        ({"id": SOME_UUID}, "validation_error"),
        ({"branding": {"color": "blue"}}, "invalid_color"),
        ({"branding": {"logo_url": "http://insecure.example/x.png"}}, "invalid_logo_url"),
    ],
)
def test_put_tenant_bad_input_422_and_nothing_written(api, clean_db, change, code):
    r = api("superadmin").put(f"{BASE}/acme", json={**FULL, **change})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code
    after = api("superadmin").get(f"{BASE}/acme").json()
    assert (after["slug"], after["name"], after["description"]) == ("acme", "Acme Corp", "")
    assert _audit_count(clean_db, "tenant.update") == 0


def test_put_tenant_stale_if_match_412_and_nothing_written(api, clean_db, personas):
    stale = _etag(api)
    assert api("acme_admin").put(f"{BASE}/acme", json=FULL, headers={"If-Match": stale}).status_code == 200
    r = api("acme_admin").put(f"{BASE}/acme", json={**FULL, "name": "Second"}, headers={"If-Match": stale})
    assert r.status_code == 412
    assert r.json()["code"] == "etag_mismatch"
    assert api("superadmin").get(f"{BASE}/acme").json()["name"] == "Acme Industries"
    assert len(_audit_events(clean_db, "tenant.update", personas.acme.id)) == 1


@pytest.mark.parametrize("persona", ["acme_member", "acme_viewer", "acme_auditor"])
def test_put_tenant_non_admin_member_403_and_nothing_written(api, clean_db, persona):
    r = api(persona).put(f"{BASE}/acme", json=FULL)
    assert r.status_code == 403
    assert r.json()["code"] == "permission_denied"
    assert api("superadmin").get(f"{BASE}/acme").json()["name"] == "Acme Corp"
    assert _audit_count(clean_db, "tenant.update") == 0


def test_put_tenant_admin_changing_status_403_and_still_active(api, clean_db):
    r = api("acme_admin").put(f"{BASE}/acme", json={**FULL, "status": "suspended"})
    assert r.status_code == 403
    assert r.json()["code"] == "permission_denied"
    after = api("superadmin").get(f"{BASE}/acme").json()
    assert (after["name"], after["status"]) == ("Acme Corp", "active")
    assert _audit_count(clean_db, "tenant.update") + _audit_count(clean_db, "tenant.suspend") == 0


def test_put_tenant_of_other_tenant_404_by_slug_and_id(api, personas):
    for ref in ("acme", str(personas.acme.id)):
        r = api("globex_admin").put(f"{BASE}/{ref}", json=FULL)
        assert r.status_code == 404
        assert r.json()["code"] == "not_found"
    assert api("superadmin").get(f"{BASE}/acme").json()["name"] == "Acme Corp"


# --- suspend -------------------------------------------------------------------------------


def test_suspend_tenant_members_get_403_tenant_suspended_superadmin_still_sees_data(api, clean_db, personas):
    _add_resources(clean_db, personas.acme.id, live=2)
    r = api("superadmin").patch(f"{BASE}/acme", json={"status": "suspended"})
    assert r.status_code == 200
    assert r.json()["status"] == "suspended"
    for persona in ("acme_admin", "acme_member", "acme_viewer", "acme_auditor"):
        for method, path, kw in (
            ("GET", "", {}),
            ("PATCH", "", {"json": {"name": "x"}}),
            ("GET", "/audit", {}),
        ):
            r = api(persona).request(method, f"{BASE}/acme{path}", **kw)
            assert r.status_code == 403, (persona, method, path)
            assert r.json()["code"] == "tenant_suspended"
    seen = api("superadmin").get(f"{BASE}/acme").json()
    assert (seen["status"], seen["name"], seen["member_count"], seen["resource_count"]) == (
        "suspended",
        "Acme Corp",
        4,
        2,
    )
    assert len(_audit_events(clean_db, "tenant.suspend", personas.acme.id)) == 1


def test_suspend_tenant_does_not_affect_other_tenant(api):
    api("superadmin").patch(f"{BASE}/acme", json={"status": "suspended"})
    assert api("globex_member").get(f"{BASE}/globex").status_code == 200


def test_reactivate_tenant_restores_member_access(api, clean_db, personas):
    api("superadmin").patch(f"{BASE}/acme", json={"status": "suspended"})
    r = api("superadmin").patch(f"{BASE}/acme", json={"status": "active"})
    assert r.status_code == 200
    got = api("acme_member").get(f"{BASE}/acme")
    assert got.status_code == 200
    assert got.json()["member_count"] == 4
    [ev] = _audit_events(clean_db, "tenant.reactivate", personas.acme.id)
    assert (ev.before, ev.after) == ({"status": "suspended"}, {"status": "active"})


# --- deletion impact, delete ---------------------------------------------------------------


def test_deletion_impact_superadmin_counts_family_without_deleting(api, clean_db, personas):
    _add_resources(clean_db, personas.acme.id, live=3, trashed=1)
    r = api("superadmin").get(f"{BASE}/acme/deletion-impact")
    assert r.status_code == 200
    counts = r.json()["counts"]
    assert (counts["memberships"], counts["grants"], counts["resources"]) == (4, 4, 3)
    assert api("acme_member").get(f"{BASE}/acme").status_code == 200
    assert _audit_count(clean_db, "tenant.delete") == 0


@pytest.mark.parametrize(
    ("persona", "status"),
    [("acme_admin", 403), ("acme_member", 403), ("globex_admin", 404), ("outsider", 403)],
)
def test_deletion_impact_non_superadmin_refused(api, persona, status):
    assert api(persona).get(f"{BASE}/acme/deletion-impact").status_code == status


def test_delete_tenant_superadmin_trashes_whole_family_under_one_batch(api, clean_db, personas):
    _add_resources(clean_db, personas.acme.id, live=2)
    r = api("superadmin").delete(f"{BASE}/acme")
    assert r.status_code == 200, r.text
    batch = r.json()["deletion_batch_id"]
    counts = r.json()["counts"]
    assert (counts["memberships"], counts["grants"], counts["resources"]) == (4, 4, 2)
    rows = _memberships(clean_db, personas.acme.id)
    assert len(rows) == 4
    assert all(deleted_at is not None and str(b) == batch for deleted_at, b in rows.values())
    assert all(b is None for _, b in _memberships(clean_db, personas.globex.id).values())
    [ev] = _audit_events(clean_db, "tenant.delete", personas.acme.id)
    assert ev.before["slug"] == "acme"
    assert ev.after["deletion_batch_id"] == batch


def test_delete_tenant_then_get_404_for_everyone_and_hidden_from_lists(api, personas):
    assert api("superadmin").delete(f"{BASE}/acme").status_code == 200
    for persona in ("superadmin", "acme_admin", "acme_member"):
        unknown = api(persona).get(f"{BASE}/no-such-tenant")
        assert unknown.status_code in (403, 404)  # former members now have no tenant at all
        for ref in ("acme", str(personas.acme.id)):
            r = api(persona).get(f"{BASE}/{ref}")
            assert (r.status_code, r.json()) == (unknown.status_code, unknown.json())
    assert api("superadmin").get(f"{BASE}/acme").status_code == 404
    assert _slugs(api) == ["globex"]
    assert _slugs(api, "acme_member") == []
    assert api("superadmin").patch(f"{BASE}/acme", json={"name": "x"}).status_code == 404
    assert api("superadmin").delete(f"{BASE}/acme").status_code == 404


@pytest.mark.parametrize("persona", ["acme_admin", "acme_member", "acme_auditor"])
def test_delete_tenant_by_tenant_user_403_and_nothing_trashed(api, clean_db, personas, persona):
    r = api(persona).delete(f"{BASE}/acme")
    assert r.status_code == 403
    assert r.json()["code"] == "permission_denied"
    assert all(d is None for d, _ in _memberships(clean_db, personas.acme.id).values())
    assert api("acme_member").get(f"{BASE}/acme").status_code == 200


def test_delete_tenant_of_other_tenant_404_by_slug_and_id(api, personas):
    for ref in ("acme", str(personas.acme.id)):
        r = api("globex_admin").delete(f"{BASE}/{ref}")
        assert r.status_code == 404
    assert api("acme_member").get(f"{BASE}/acme").status_code == 200


def test_delete_tenant_stale_if_match_412_and_nothing_trashed(api, clean_db, personas):
    stale = _etag(api)
    api("superadmin").patch(f"{BASE}/acme", json={"name": "Changed"})
    r = api("superadmin").delete(f"{BASE}/acme", headers={"If-Match": stale})
    assert r.status_code == 412
    assert r.json()["code"] == "etag_mismatch"
    assert api("acme_member").get(f"{BASE}/acme").status_code == 200
    assert all(d is None for d, _ in _memberships(clean_db, personas.acme.id).values())


def test_delete_tenant_current_if_match_succeeds(api):
    r = api("superadmin").delete(f"{BASE}/acme", headers={"If-Match": _etag(api)})
    assert r.status_code == 200


# --- restore -------------------------------------------------------------------------------


def test_restore_tenant_brings_back_exactly_the_same_family(api, clean_db, personas):
    _add_resources(clean_db, personas.acme.id, live=2)
    # One membership was already in the trash on its own: the tenant's restore must not revive it.
    with clean_db.unit_of_work() as s:
        scoping.enter_tenant(s, personas.acme.id)
        m = s.scalars(select(Membership).where(Membership.user_id == personas.users["acme_viewer"].id)).one()
        m.deleted_at, m.deletion_batch_id = utcnow() - timedelta(days=1), uuid.uuid4()
        solo_id = m.id
    before = _memberships(clean_db, personas.acme.id)
    assert api("superadmin").delete(f"{BASE}/acme").status_code == 200
    r = api("superadmin").post(f"{BASE}/acme/restore")
    assert r.status_code == 200, r.text
    assert r.headers["ETag"]
    t = r.json()
    assert (t["id"], t["slug"], t["status"]) == (str(personas.acme.id), "acme", "active")
    assert (t["member_count"], t["resource_count"]) == (3, 2)
    after = _memberships(clean_db, personas.acme.id)
    assert after.keys() == before.keys()
    assert after[solo_id] == before[solo_id]
    assert all(after[mid] == (None, None) for mid in after if mid != solo_id)
    assert api("acme_member").get(f"{BASE}/acme").status_code == 200
    unknown = api("acme_viewer").get(f"{BASE}/no-such-tenant")
    r = api("acme_viewer").get(f"{BASE}/acme")
    assert r.status_code != 200
    assert (r.status_code, r.json()) == (unknown.status_code, unknown.json())
    [ev] = _audit_events(clean_db, "tenant.restore", personas.acme.id)
    [deleted] = _audit_events(clean_db, "tenant.delete", personas.acme.id)
    assert ev.after["deletion_batch_id"] == deleted.after["deletion_batch_id"]


def test_restore_tenant_by_id_200(api, personas):
    api("superadmin").delete(f"{BASE}/globex")
    r = api("superadmin").post(f"{BASE}/{personas.globex.id}/restore")
    assert r.status_code == 200
    assert _slugs(api) == ["acme", "globex"]


@pytest.mark.parametrize("persona", ["acme_admin", "acme_member", "globex_admin", "outsider"])
def test_restore_tenant_non_superadmin_403_and_stays_deleted(api, persona):
    api("superadmin").delete(f"{BASE}/acme")
    r = api(persona).post(f"{BASE}/acme/restore")
    assert r.status_code == 403
    assert r.json()["code"] == "permission_denied"
    assert api("superadmin").get(f"{BASE}/acme").status_code == 404


@pytest.mark.parametrize("ref", ["acme", "no-such-tenant", SOME_UUID])
def test_restore_tenant_not_in_trash_404(api, clean_db, ref):
    r = api("superadmin").post(f"{BASE}/{ref}/restore")
    assert r.status_code == 404
    assert r.json()["code"] == "not_found"
    assert _audit_count(clean_db, "tenant.restore") == 0


def test_restore_tenant_twice_second_404(api):
    api("superadmin").delete(f"{BASE}/acme")
    assert api("superadmin").post(f"{BASE}/acme/restore").status_code == 200
    assert api("superadmin").post(f"{BASE}/acme/restore").status_code == 404


def test_restore_tenant_keeps_the_row_count_of_tenants(clean_db, api):
    api("superadmin").delete(f"{BASE}/acme")
    api("superadmin").post(f"{BASE}/acme/restore")
    with clean_db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Tenant).execution_options(include_deleted=True)) == 2

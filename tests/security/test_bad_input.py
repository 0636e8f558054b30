"""Bad input is a clean 4xx, never a 500 and never stored (issue 8, point 3).

The cases are generated from the route table, like the enforcement sweep: every GET route that
takes a `cursor` gets garbage cursors, every GET route an unknown query parameter, every body
field that holds text gets control characters, every free-form JSON field non-finite numbers.
A new route or field is covered without touching this file.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from tenantry.api.routing import ApiRoute, declared_query_params
from tenantry.authz import system_principal
from tenantry.db import scoping
from tenantry.db.session import Database
from tenantry.db.tables import Grant, Resource, Tenant, User
from tenantry.errors import Invalid
from tenantry.services import grants, resource_types, users
from tenantry.services.context import ServiceContext
from tests.asserts import assert_problem as _problem
from tests.personas import PASSWORD, Personas
from tests.security import test_enforcement as enforcement
from tests.security.helpers import bearer, code_of, in_parallel, login
from tests.security.test_enforcement import Targets, api_routes, minimal_body

SUPER = "superadmin"
targets = enforcement.targets  # the sweep's real objects for path parameters


def _b64(raw: str | bytes) -> str:
    data = raw.encode() if isinstance(raw, str) else raw
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _routes(app: FastAPI, method: str) -> list[APIRoute]:
    return sorted(
        (r for r in api_routes(app.routes) if method in r.methods and r.path.startswith("/api/v1/")),
        key=lambda r: r.path,
    )


@pytest.fixture
def builtin_types(personas: Personas, clean_db: Database) -> None:
    """The built-in resource types (`tenantry init` creates them; personas do not)."""
    with clean_db.unit_of_work() as session:
        resource_types.ensure_builtin_types(
            ServiceContext(session=session, principal=system_principal("tests"))
        )


pytestmark = pytest.mark.usefixtures("builtin_types")


@pytest.fixture
def sa(app: FastAPI, personas: Personas) -> Iterator[TestClient]:
    """A superadmin client that reports server errors as responses (so a 500 is asserted on)."""
    with TestClient(app, raise_server_exceptions=False) as c:
        c.headers.update(bearer(personas.tokens[SUPER]))
        yield c


def test_every_api_route_uses_the_strict_route_class(app: FastAPI) -> None:
    routes = [r for r in api_routes(app.routes) if r.path.startswith("/api/v1/")]
    assert len(routes) > 40
    assert [r.path for r in routes if not isinstance(r, ApiRoute)] == []


# --- 1. cursors ----------------------------------------------------------------------------------


def _cursor_routes(app: FastAPI) -> list[APIRoute]:
    return [r for r in _routes(app, "GET") if "cursor" in declared_query_params(r.dependant)]


GARBAGE_CURSORS = {
    "not base64": "%%%***not-base64***%%%",
    "base64 of bytes": _b64(b"\xff\xfe\x00\x01"),
    "base64 of text": _b64("hello, world"),
    "json object": _b64('{"kind": "users", "after": 1}'),
    "json null": _b64("null"),
    "json string": _b64('"acme"'),
    "json empty list": _b64("[]"),
    "json numbers": _b64("[1, 2]"),
    "json NaN": _b64("[NaN]"),
    "wrong kind": _b64(json.dumps(["no-such-list", str(uuid.uuid4())])),
    "kind without value": _b64(json.dumps(["users"])),
    "huge": "A" * 20_000,
}


def test_garbage_cursors_on_every_list_are_422_invalid_cursor(app: FastAPI, sa: TestClient, targets) -> None:
    routes = _cursor_routes(app)
    assert {"/api/v1/users", "/api/v1/tenants", "/api/v1/tenants/{tenant}/resources"} <= {
        r.path for r in routes
    }
    failures = []
    for route in routes:
        for name, cursor in GARBAGE_CURSORS.items():
            r = sa.get(targets.path(route.path, route), params={"cursor": cursor})
            if r.status_code != 422 or code_of(r) != "invalid_cursor":
                failures.append((route.path, name, r.status_code, r.text[:120]))
    assert failures == []


def test_a_cursor_of_another_list_is_422_on_every_list(app: FastAPI, sa: TestClient, targets) -> None:
    users_cursor = sa.get("/api/v1/users", params={"limit": 1}).json()["next_cursor"]
    tenants_cursor = sa.get("/api/v1/tenants", params={"limit": 1}).json()["next_cursor"]
    assert users_cursor and tenants_cursor
    failures = []
    for route in _cursor_routes(app):
        path = targets.path(route.path, route)
        own = sa.get(path, params={"limit": 1}).json().get("next_cursor")
        for foreign in {users_cursor, tenants_cursor} - {own}:
            if route.path == "/api/v1/users" and foreign == users_cursor:
                continue
            if route.path == "/api/v1/tenants" and foreign == tenants_cursor:
                continue
            r = sa.get(path, params={"cursor": foreign})
            if r.status_code != 422 or code_of(r) != "invalid_cursor":
                failures.append((route.path, r.status_code))
    assert failures == []


def test_own_cursors_still_page_through_users_and_tenants(sa: TestClient) -> None:
    for path in ("/api/v1/users", "/api/v1/tenants"):
        seen, cursor = [], None
        while True:
            page = sa.get(path, params={"limit": 2, **({"cursor": cursor} if cursor else {})})
            assert page.status_code == 200, page.text
            seen += [i["id"] for i in page.json()["items"]]
            cursor = page.json()["next_cursor"]
            if not cursor:
                break
        assert len(seen) == len(set(seen)) >= 2


@pytest.mark.parametrize(
    ("sort", "values"),
    [
        ("name", ["resources", "name", "x", "not-a-uuid"]),
        ("name", ["resources", "name", {"x": 1}, str(uuid.uuid4())]),
        ("name", ["resources", "name", "x"]),
        ("created_at", ["resources", "created_at", "yesterday", str(uuid.uuid4())]),
        ("created_at", ["resources", "created_at", "2030-01-01T00:00:00", str(uuid.uuid4())]),  # naive
        ("name", ["resources", "created_at", "2030-01-01T00:00:00+00:00", str(uuid.uuid4())]),  # other order
        ("-name", ["resources", "name", "x", str(uuid.uuid4())]),  # other direction
    ],
)
def test_resource_cursor_of_the_wrong_shape_or_order_is_422(
    sa: TestClient, sort: str, values: list[Any]
) -> None:
    r = sa.get("/api/v1/tenants/acme/resources", params={"sort": sort, "cursor": _b64(json.dumps(values))})
    _problem(r, 422, "invalid_cursor")


# --- 6. unknown query parameters -------------------------------------------------------------------


def test_unknown_query_parameter_on_every_get_route_is_422_naming_it(
    app: FastAPI, sa: TestClient, targets
) -> None:
    failures = []
    routes = _routes(app, "GET")
    assert len(routes) > 20
    for route in routes:
        r = sa.get(targets.path(route.path, route), params={"bogus": "1"})
        body = r.json() if r.headers.get("content-type", "").endswith("json") else {}
        if r.status_code != 422 or body.get("code") != "unknown_parameter" or body.get("field") != "bogus":
            failures.append((route.path, r.status_code, body.get("code")))
    assert failures == []


def test_users_q_is_refused_instead_of_listing_everyone(sa: TestClient) -> None:
    body = _problem(sa.get("/api/v1/users", params={"q": "nobody-matches-this"}), 422, "unknown_parameter")
    assert body["field"] == "q" and "'q'" in body["detail"]


def test_declared_parameters_and_attribute_filters_still_work(sa: TestClient) -> None:
    body = {"type": "host", "name": "h1", "attributes": {"ip_address": "10.9.9.9"}}
    created = sa.post("/api/v1/tenants/acme/resources", json=body)
    assert created.status_code == 201, created.text
    assert sa.get("/api/v1/users", params={"email": "acme", "limit": 5}).status_code == 200
    r = sa.get("/api/v1/tenants/acme/resources", params={"type": "host", "attr.ip_address": "10.9.9.9"})
    assert r.status_code == 200, r.text
    assert [i["name"] for i in r.json()["items"]] == ["h1"]
    _problem(sa.get("/api/v1/tenants/acme/resources", params={"attrs.ip": "x"}), 422, "unknown_parameter")


def test_control_characters_in_query_values_are_422(sa: TestClient) -> None:
    for path, params in (
        ("/api/v1/tenants", {"q": "a\x00b"}),
        ("/api/v1/users", {"email": "a\x00"}),
        ("/api/v1/tenants/acme/resources", {"attr.ip_address": "10.0.0.1\x00"}),
        ("/api/v1/tenants/acme/members", {"q": "x\r\ny"}),
    ):
        _problem(sa.get(path, params=params), 422, "invalid_character")


def test_control_characters_in_a_path_name_are_404(sa: TestClient) -> None:
    for path in ("/api/v1/roles/a%00b", "/api/v1/resource-types/a%00b", "/api/v1/tenants/a%0d%0ab"):
        _problem(sa.get(path), 404, "not_found")


# --- 3. control characters in text fields ----------------------------------------------------------


def _string_paths(
    schema: dict[str, Any], defs: dict[str, Any], prefix: tuple[str, ...] = ()
) -> Iterator[tuple]:
    """(path, kind) of every text leaf of a request schema; kind is str, list or key."""
    if "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    for choice in schema.get("anyOf", []):
        if choice.get("type") != "null":
            yield from _string_paths(choice, defs, prefix)
            return
    kind = schema.get("type")
    if kind == "string" and schema.get("format") not in ("uuid", "date-time") and "enum" not in schema:
        yield prefix, "str"
    elif kind == "array" and schema.get("items", {}).get("type") == "string":
        yield prefix, "list"
    elif kind == "object" and "properties" in schema:
        for name, prop in schema["properties"].items():
            yield from _string_paths(prop, defs, (*prefix, name))
    elif kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        values = schema["additionalProperties"]
        if values.get("$ref", "").endswith("/JsonValue"):
            yield prefix, "json"  # free-form JSON: its strings and keys
        elif values.get("type") == "string":
            yield prefix, "key"


def _with(body: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(body))
    node = out
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    return out


def _text_cases(app: FastAPI, targets: Targets) -> Iterator[tuple[APIRoute, str, tuple[str, ...], str, dict]]:
    for route in api_routes(app.routes):
        body = minimal_body(route, targets)
        if body is None or route.body_field is None:
            continue
        model = route.body_field.field_info.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        schema = model.model_json_schema()
        for method in route.methods:
            for path, kind in _string_paths(schema, schema.get("$defs", {})):
                yield route, method, path, kind, body


BAD_TEXT = {"NUL": "a\x00b", "CR LF": "Acme\r\nBcc: evil@example.com", "ESC": "a\x1b[31mb", "DEL": "a\x7fb"}
# `MultiLine` fields: line breaks reach the service, which decides (an SSH public key is one line,
# but a private key pasted by mistake must get its own answer, `ssh_private_key`); mail template
# bodies (`text`, `html`) are multi-line by nature.
MULTI_LINE_FIELDS = {"description", "public_key", "text", "html"}


def test_control_characters_in_every_text_field_are_422(app: FastAPI, sa: TestClient, targets) -> None:
    failures, checked = [], set()
    for route, method, path, kind, body in _text_cases(app, targets):
        for name, bad in BAD_TEXT.items():
            if (path[-1] in MULTI_LINE_FIELDS or kind == "json") and name == "CR LF":
                continue  # multi-line text keeps its line breaks (tested below)
            value = {"str": bad, "list": [bad], "key": {bad: "x"}, "json": {"k": [bad]}}[kind]
            r = sa.request(method, targets.path(route.path, route), json=_with(body, path, value))
            checked.add((route.path, ".".join(path)))
            ok = r.status_code == 422 and code_of(r) == "validation_error"
            fields = [e["field"] for e in r.json().get("errors", [])] if ok else []
            if not ok or not any(f.startswith(".".join(path)) for f in fields):
                failures.append((method, route.path, ".".join(path), name, r.status_code, r.text[:100]))
    assert len(checked) > 40  # the walk found the fields (names, slugs, emails, passwords, ...)
    assert failures == []


def test_tenant_name_with_crlf_is_refused_and_not_stored(sa: TestClient, clean_db: Database) -> None:
    r = sa.post("/api/v1/tenants", json={"slug": "evil", "name": "Evil\r\nBcc: all@example.com"})
    _problem(r, 422, "validation_error")
    _problem(sa.patch("/api/v1/tenants/acme", json={"name": "Acme\nCorp"}), 422, "validation_error")
    with clean_db.unit_of_work() as s:
        assert s.scalar(select(Tenant.id).where(Tenant.slug == "evil")) is None
        assert s.scalar(select(Tenant.name).where(Tenant.slug == "acme")) == "Acme Corp"


def test_descriptions_keep_line_breaks_and_tabs_but_not_nul(sa: TestClient) -> None:
    text = "first line\r\nsecond\tline\n"
    r = sa.post("/api/v1/tenants", json={"slug": "multi", "name": "Multi", "description": text})
    assert r.status_code == 201, r.text
    assert r.json()["description"] == text.strip()
    _problem(sa.patch("/api/v1/tenants/multi", json={"description": "a\x00b"}), 422, "validation_error")


def test_names_are_still_trimmed(sa: TestClient) -> None:
    r = sa.post("/api/v1/tenants", json={"slug": "  trimmed ", "name": "  Trimmed Inc  "})
    assert r.status_code == 201, r.text
    assert (r.json()["slug"], r.json()["name"]) == ("trimmed", "Trimmed Inc")


# --- 2. non-finite numbers ---------------------------------------------------------------------------


def _free_form_fields(model: type[BaseModel]) -> list[str]:
    schema = model.model_json_schema()
    out = []
    for name, prop in schema.get("properties", {}).items():
        choices = prop.get("anyOf", [prop])
        if any(
            c.get("type") == "object"
            and (c.get("additionalProperties") or {}).get("$ref", "").endswith("/JsonValue")
            for c in choices
        ):
            out.append(name)
    return out


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_in_free_form_json_are_422_everywhere(
    app: FastAPI, sa: TestClient, targets, constant: str
) -> None:
    failures, checked = [], []
    for route in api_routes(app.routes):
        body = minimal_body(route, targets)
        if body is None or route.body_field is None:
            continue
        for field in _free_form_fields(route.body_field.field_info.annotation):
            for method in route.methods:
                raw = json.dumps({**body, field: {"n": "__X__", "nested": [1, "__X__"]}})
                raw = raw.replace('"__X__"', constant)
                r = sa.request(
                    method,
                    targets.path(route.path, route),
                    content=raw,
                    headers={"Content-Type": "application/json"},
                )
                checked.append((method, route.path, field))
                if r.status_code != 422 or code_of(r) != "malformed_json":
                    failures.append((method, route.path, field, r.status_code, r.text[:100]))
    assert {p for _, p, _ in checked} >= {"/api/v1/tenants/{tenant}/resources", "/api/v1/resource-types"}
    assert failures == []


def test_non_finite_number_anywhere_in_a_body_is_malformed_json(sa: TestClient) -> None:
    raw = '{"slug": "nan", "name": "NaN Inc", "branding": {"color": NaN}}'
    r = sa.post("/api/v1/tenants", content=raw, headers={"Content-Type": "application/json"})
    body = _problem(r, 422, "malformed_json")
    assert "NaN" in body["detail"]


def test_nan_attribute_is_not_stored_and_attribute_filters_keep_working(
    sa: TestClient, clean_db: Database, personas: Personas
) -> None:
    raw = '{"type": "project", "name": "nan-project", "attributes": {"budget": NaN}}'
    r = sa.post("/api/v1/tenants/acme/resources", content=raw, headers={"Content-Type": "application/json"})
    _problem(r, 422, "malformed_json")
    with clean_db.unit_of_work() as s, scoping.in_tenant(s, personas.acme.id):
        assert s.scalar(select(Resource.id).where(Resource.name == "nan-project")) is None
    r = sa.get("/api/v1/tenants/acme/resources", params={"attr.budget": "1"})
    assert r.status_code == 200, r.text


def test_nul_in_free_form_attributes_is_422(sa: TestClient) -> None:
    for attributes in ({"note": "a\x00b"}, {"a\x00": "x"}, {"list": ["ok", "\x00"]}):
        r = sa.post(
            "/api/v1/tenants/acme/resources", json={"type": "project", "name": "p", "attributes": attributes}
        )
        _problem(r, 422, "validation_error")


# --- 4. contradictory grant scope --------------------------------------------------------------------


def _member_id(personas: Personas) -> str:
    return str(personas.users["acme_member"].id)


@pytest.mark.parametrize("persona", ["acme_admin", SUPER])
def test_tenant_grant_naming_another_tenant_is_422_scope_mismatch_nothing_written(
    api, personas: Personas, clean_db: Database, persona: str
) -> None:
    body = {
        "principal": {"type": "user", "id": _member_id(personas)},
        "role": "viewer",
        "scope": {"type": "tenant", "tenant_id": str(personas.globex.id)},
    }
    r = api(persona).post("/api/v1/tenants/acme/grants", json=body)
    assert r.status_code == 422 and code_of(r) == "scope_mismatch", r.text
    assert r.json()["field"] == "scope.tenant_id"
    with clean_db.unit_of_work() as s, scoping.cross_tenant(s):
        roles = s.scalars(
            select(Grant.role_key).where(Grant.principal_id == personas.users["acme_member"].id)
        )
        assert sorted(roles) == ["member"]


def test_tenant_grant_naming_its_own_tenant_is_201(api, personas: Personas) -> None:
    body = {
        "principal": {"type": "user", "id": _member_id(personas)},
        "role": "viewer",
        "scope": {"type": "tenant", "tenant_id": str(personas.acme.id)},
    }
    r = api("acme_admin").post("/api/v1/tenants/acme/grants", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["scope"] == {"type": "tenant", "tenant_id": str(personas.acme.id), "resource_id": None}


def test_other_contradictory_scopes_are_422(api, personas: Personas) -> None:
    member = {"type": "user", "id": _member_id(personas)}
    r = api(SUPER).post(
        "/api/v1/grants",
        json={
            "principal": member,
            "role": "viewer",
            "scope": {"type": "global", "tenant_id": str(personas.acme.id)},
        },
    )
    assert (r.status_code, code_of(r)) == (422, "scope_mismatch"), r.text
    r = api("acme_admin").post(
        "/api/v1/tenants/acme/grants",
        json={
            "principal": member,
            "role": "viewer",
            "scope": {"type": "tenant", "resource_id": str(uuid.uuid4())},
        },
    )
    assert (r.status_code, code_of(r)) == (422, "scope_mismatch"), r.text


def test_service_refuses_a_scope_tenant_that_is_not_the_context(
    clean_db: Database, personas: Personas
) -> None:
    with clean_db.unit_of_work() as s:
        ctx = ServiceContext(session=s, principal=system_principal("tests"))
        ctx.enter(s.get(Tenant, personas.acme.id))
        with pytest.raises(Invalid) as err:
            grants.create_grant(
                ctx,
                principal_type="user",
                principal_id=personas.users["acme_member"].id,
                role="viewer",
                scope_tenant_id=personas.globex.id,
            )
        assert err.value.code == "scope_mismatch"


# --- 5. optimistic locking, concurrency and unexpected errors ----------------------------------------


def test_concurrent_first_memberships_of_one_user_both_201(
    app: FastAPI, clean_db: Database, personas: Personas
) -> None:
    for round_ in range(3):
        with clean_db.unit_of_work() as s:
            ctx = ServiceContext(session=s, principal=system_principal("tests"))
            user_id = users.create_user(ctx, email=f"twice-{round_}@example.com", password=PASSWORD).id
        slugs = iter(["acme", "globex"])

        def add(slugs: Iterator[str] = slugs, user_id: uuid.UUID = user_id) -> int:
            slug = next(slugs)
            c = TestClient(app, raise_server_exceptions=False)
            c.headers.update(bearer(personas.tokens[SUPER]))
            return c.post(
                f"/api/v1/tenants/{slug}/members", json={"user_id": str(user_id), "role": "member"}
            ).status_code

        assert sorted(in_parallel(2, add)) == [201, 201]
        with clean_db.unit_of_work() as s:
            user = s.get(User, user_id)
            assert user is not None and user.default_tenant_id in (personas.acme.id, personas.globex.id)


def test_concurrent_patches_with_one_if_match_one_wins_other_412(app: FastAPI, personas: Personas) -> None:
    etag = TestClient(app).get("/api/v1/tenants/acme", headers=bearer(personas.tokens[SUPER])).headers["ETag"]
    names = iter(["Acme One", "Acme Two"])

    def patch() -> int:
        c = TestClient(app, raise_server_exceptions=False)
        headers = {**bearer(personas.tokens[SUPER]), "If-Match": etag}
        return c.patch("/api/v1/tenants/acme", json={"name": next(names)}, headers=headers).status_code

    assert sorted(in_parallel(2, patch)) == [200, 412]


def test_stale_data_error_is_412_with_if_match_and_409_without(
    sa: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tenantry.services import tenants

    def lose_the_race(*_a: Any, **_k: Any) -> None:
        raise StaleDataError(
            "UPDATE statement on table 'tenants' expected to update 1 row(s); 0 were matched."
        )

    monkeypatch.setattr(tenants, "update_tenant", lose_the_race)
    etag = sa.get("/api/v1/tenants/acme").headers["ETag"]
    _problem(
        sa.patch("/api/v1/tenants/acme", json={"name": "X"}, headers={"If-Match": etag}), 412, "etag_mismatch"
    )
    _problem(sa.patch("/api/v1/tenants/acme", json={"name": "X"}), 409, "concurrent_update")


def test_unexpected_error_is_problem_json_500_with_the_request_id(
    sa: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tenantry.services import tenants

    def boom(*_a: Any, **_k: Any) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(tenants, "list_tenants", boom)
    r = sa.get("/api/v1/tenants", headers={"X-Request-ID": "req-boom-1"})
    body = _problem(r, 500, "internal_error")
    assert body["request_id"] == "req-boom-1" == r.headers["X-Request-ID"]
    assert "secret internal detail" not in r.text and "Traceback" not in r.text
    r = sa.get("/api/v1/tenants")  # a generated id is reported, too
    body = _problem(r, 500, "internal_error")
    assert body["request_id"] and body["request_id"] == r.headers["X-Request-ID"]


# --- 7. passwords are kept as typed ------------------------------------------------------------------


def test_password_with_surrounding_spaces_is_kept_as_typed(sa: TestClient, client: TestClient) -> None:
    typed = "  spaces around this passphrase  "
    r = sa.post("/api/v1/users", json={"email": "spacey@example.com", "password": typed})
    assert r.status_code == 201, r.text
    assert login(client, "spacey@example.com", typed).status_code == 200
    assert login(client, "spacey@example.com", typed.strip()).status_code == 401


def test_changed_password_with_spaces_is_kept_as_typed(api, client: TestClient, personas: Personas) -> None:
    new = " new passphrase with a trailing space "
    r = api("acme_member").post(
        "/api/v1/me/password", json={"current_password": PASSWORD, "new_password": new}
    )
    assert r.status_code == 204, r.text
    email = personas.users["acme_member"].email
    assert login(client, email, new.strip()).status_code == 401
    assert login(client, email, new).status_code == 200

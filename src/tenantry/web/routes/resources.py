"""Resources of one type: a table (name filter, sort, the service's cursor pages) and a
create/edit form drawn from the type's JSON Schema (string, number, integer, boolean and enum
fields; anything else as a JSON text area). The resources service validates and authorizes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response

from tenantry.db.tables import ResourceType
from tenantry.errors import Conflict, DomainError, Invalid
from tenantry.services import resource_types, resources
from tenantry.services.resources import ResourceFilter
from tenantry.web.console import FormDep, PageCtx, console_router, parse_uuid, redirect, render, shell
from tenantry.web.i18n import _

router = console_router()

PAGE_SIZE = 50
SORTS = ("name", "-name", "created_at", "-created_at", "updated_at", "-updated_at")


@dataclass
class Field:
    name: str
    kind: str  # string | number | integer | boolean | enum | json
    required: bool
    options: list[str]


def schema_fields(rtype: ResourceType) -> list[Field]:
    schema = rtype.schema or {}
    required = set(schema.get("required", []))
    out = []
    for name, prop in sorted((schema.get("properties") or {}).items()):
        prop = prop if isinstance(prop, dict) else {}
        kind, options = "json", []
        if "enum" in prop:
            kind, options = "enum", [str(v) for v in prop["enum"]]
        elif prop.get("type") in ("string", "number", "integer", "boolean"):
            kind = str(prop["type"])
        out.append(Field(name, kind, name in required, options))
    return out


def _attributes(fields: list[Field], form: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    """The form's attribute fields as JSON values; a field that does not parse gets its error."""
    out: dict[str, Any] = {}
    for f in fields:
        raw = form.get(f"attr-{f.name}", "")
        if f.kind == "boolean":
            out[f.name] = raw == "yes"
            continue
        if raw.strip() == "":
            continue  # absent: the schema says whether it is required
        try:
            if f.kind == "integer":
                out[f.name] = int(raw)
            elif f.kind == "number":
                out[f.name] = float(raw)
            elif f.kind == "json":
                out[f.name] = json.loads(raw)
            else:
                out[f.name] = raw
        except ValueError:
            errors[f"attr-{f.name}"] = {
                "integer": _("Give a whole number."),
                "number": _("Give a number."),
            }.get(f.kind, _("Give valid JSON."))
    return out


def _field_errors(exc: DomainError) -> dict[str, str]:
    field = str(exc.extra.get("field") or "form")
    if field.startswith("attributes."):
        return {f"attr-{field.split('.')[1]}": exc.detail}
    return {field.split(".")[0]: exc.detail}


def _form_values(fields: list[Field], attributes: dict[str, Any]) -> dict[str, str]:
    values = {}
    for f in fields:
        if f.name in attributes:
            v = attributes[f.name]
            values[f"attr-{f.name}"] = (
                json.dumps(v) if f.kind == "json" else ("yes" if v is True else "" if v is False else str(v))
            )
    return values


@router.get("/resources/{type_key}")
def resources_page(
    ctx: PageCtx,
    request: Request,
    type_key: str,
    name: str = "",
    sort: str = "name",
    cursor: str | None = None,
) -> Response:
    return _list(ctx, request, type_key, name=name, sort=sort, cursor=cursor)


def _list(
    ctx: PageCtx,
    request: Request,
    type_key: str,
    *,
    name: str = "",
    sort: str = "name",
    cursor: str | None = None,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    s = shell(ctx, request, need_tenant=True)
    rtype = resource_types.get_type_visible(ctx, type_key)
    page = resources.list_resources(
        ctx, ResourceFilter(type=rtype.key, name=name or None), limit=PAGE_SIZE, cursor=cursor, sort=sort
    )
    return render(
        request,
        "resources.html",
        status=status,
        shell=s,
        rtype=rtype,
        page=page,
        fields=schema_fields(rtype),
        name_filter=name,
        sort=sort,
        sorts=SORTS,
        errors=errors or {},
        values=values or {},
    )


@router.post("/resources/{type_key}")
def create_resource(ctx: PageCtx, form: FormDep, request: Request, type_key: str) -> Response:
    shell(ctx, request, need_tenant=True)
    rtype = resource_types.get_type_visible(ctx, type_key)
    fields = schema_fields(rtype)
    errors: dict[str, str] = {}
    attributes = _attributes(fields, form, errors)
    if not errors:
        try:
            r = resources.create_resource(
                ctx, type=rtype.key, name=form.get("name", ""), attributes=attributes
            )
        except (Invalid, Conflict) as exc:
            ctx.session.rollback()  # nothing half-written
            errors = _field_errors(exc)
        else:
            ctx.commit()
            return redirect(f"/resources/{rtype.key}/{r.id}")
    return _list(ctx, request, type_key, status=400, errors=errors, values=dict(form))


def _detail(
    ctx: PageCtx,
    request: Request,
    type_key: str,
    resource_id: str,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    s = shell(ctx, request, need_tenant=True)
    r = resources.get_resource(ctx, parse_uuid(resource_id))
    if r.type != type_key:
        raise resources_not_found()
    rtype = resource_types.get_type_visible(ctx, type_key)
    fields = schema_fields(rtype)
    return render(
        request,
        "resource.html",
        status=status,
        shell=s,
        rtype=rtype,
        resource=r,
        fields=fields,
        errors=errors or {},
        values=values or {"name": r.name, **_form_values(fields, r.attributes)},
    )


def resources_not_found() -> DomainError:
    from tenantry.errors import NotFound

    return NotFound("resource")


@router.get("/resources/{type_key}/{resource_id}")
def resource_page(ctx: PageCtx, request: Request, type_key: str, resource_id: str) -> Response:
    return _detail(ctx, request, type_key, resource_id)


@router.post("/resources/{type_key}/{resource_id}")
def update_resource(
    ctx: PageCtx, form: FormDep, request: Request, type_key: str, resource_id: str
) -> Response:
    shell(ctx, request, need_tenant=True)
    r = resources.get_resource(ctx, parse_uuid(resource_id))
    if r.type != type_key:
        raise resources_not_found()
    fields = schema_fields(resource_types.get_type_visible(ctx, type_key))
    errors: dict[str, str] = {}
    attributes = _attributes(fields, form, errors)
    # Attributes the form does not draw (the schema allows extra ones) are kept as they are.
    known = {f.name for f in fields}
    attributes = {**{k: v for k, v in r.attributes.items() if k not in known}, **attributes}
    if not errors:
        try:
            resources.update_resource(ctx, r.id, {"name": form.get("name", ""), "attributes": attributes})
        except (Invalid, Conflict) as exc:
            ctx.session.rollback()
            errors = _field_errors(exc)
        else:
            ctx.commit()
            return redirect(f"/resources/{type_key}/{resource_id}")
    return _detail(ctx, request, type_key, resource_id, 400, errors, dict(form))

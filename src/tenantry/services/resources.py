"""Tenant-owned typed resources: validated attributes, per-tenant unique fields, parents and
references inside one tenant, resource-level grants honoured in every list and get."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, false, func, literal, or_, select
from sqlalchemy.exc import IntegrityError

from tenantry.authz import cache as authz_cache
from tenantry.authz import engine as authz_engine
from tenantry.authz.catalog import resource_perm
from tenantry.db import core
from tenantry.db.tables import Grant, Resource, ResourceType, ResourceUniqueValue
from tenantry.errors import Conflict, Invalid, NotFound, PreconditionFailed
from tenantry.services import audit, resource_types, trash
from tenantry.services.context import ServiceContext
from tenantry.services.pagination import (
    Page,
    decode_cursor,
    encode_cursor,
    invalid_cursor,
    parse_datetime,
    parse_uuid,
)

SORTS = {"name": Resource.name, "created_at": Resource.created_at, "updated_at": Resource.updated_at}


@dataclass(frozen=True)
class ResourceFilter:
    type: str | None = None
    name: str | None = None
    parent_id: uuid.UUID | None = None
    attributes: tuple[tuple[str, str], ...] = ()


def snapshot(r: Resource) -> dict[str, Any]:
    return {"type": r.type, "name": r.name, "attributes": r.attributes, "parent_id": r.parent_id}


def _tenant_id(ctx: ServiceContext) -> uuid.UUID:
    if ctx.tenant is None:
        raise Invalid("no tenant selected", code="no_tenant")
    return ctx.tenant.id


def _rtype(ctx: ServiceContext, key: str) -> ResourceType:
    rtype = ctx.session.get(ResourceType, key)
    if rtype is None:
        raise Invalid(f"unknown resource type {key!r}", code="unknown_resource_type", field="type")
    return rtype


def _check_attributes(rtype: ResourceType, attributes: dict[str, Any]) -> None:
    errors = list(resource_types.validator(rtype).iter_errors(attributes))
    if errors:
        first = errors[0]
        path = ".".join(str(p) for p in first.instance_path) or "attributes"
        raise Invalid(
            f"attributes.{path}: {first.message}" if path != "attributes" else first.message,
            code="schema_violation",
            field=f"attributes.{path}" if path != "attributes" else "attributes",
            errors=[
                {"field": ".".join(str(p) for p in e.instance_path), "message": e.message}
                for e in errors[:20]
            ],
        )


def _live(ctx: ServiceContext, resource_id: Any) -> Resource | None:
    """A live resource of the session's tenant (the choke point hides every other tenant's)."""
    try:
        rid = resource_id if isinstance(resource_id, uuid.UUID) else uuid.UUID(str(resource_id))
    except ValueError:
        return None
    return ctx.session.scalar(select(Resource).where(Resource.id == rid))


def _check_links(
    ctx: ServiceContext,
    rtype: ResourceType,
    attributes: dict[str, Any],
    parent_id: uuid.UUID | None,
    own_id: uuid.UUID | None = None,
) -> None:
    if parent_id is not None:
        parent = _live(ctx, parent_id)
        # Security: another tenant's resource answers exactly like a missing one.
        if parent is None or parent.id == own_id:
            raise Invalid(
                "parent_id does not name a resource of this tenant", code="invalid_parent", field="parent_id"
            )
        if rtype.parent_type is not None and parent.type != rtype.parent_type:
            raise Invalid(
                f"a {rtype.key} needs a parent of type {rtype.parent_type}",
                code="invalid_parent",
                field="parent_id",
            )
    elif rtype.parent_type is not None:
        raise Invalid(
            f"a {rtype.key} needs a parent of type {rtype.parent_type}",
            code="parent_required",
            field="parent_id",
        )
    for attr, target_type in rtype.references.items():
        if attr not in attributes or attributes[attr] is None:
            continue
        target = _live(ctx, attributes[attr])
        if target is None or target.type != target_type:
            raise Invalid(
                f"attributes.{attr} must name a {target_type} of this tenant",
                code="invalid_reference",
                field=f"attributes.{attr}",
            )


def _unique_rows(tenant_id: uuid.UUID, r: Resource, rtype: ResourceType) -> list[ResourceUniqueValue]:
    rows = []
    for f in rtype.unique_fields:
        if f in r.attributes and r.attributes[f] is not None:
            value = r.attributes[f] if isinstance(r.attributes[f], str) else json.dumps(r.attributes[f])
            rows.append(
                ResourceUniqueValue(
                    tenant_id=tenant_id, resource_id=r.id, type=rtype.key, field=f, value=value[:512]
                )
            )
    return rows


def _raise_clash(ctx: ServiceContext, rows: list[ResourceUniqueValue], own_id: uuid.UUID | None) -> None:
    for row in rows:
        clash = ctx.session.scalar(
            select(ResourceUniqueValue.resource_id).where(
                ResourceUniqueValue.type == row.type,
                ResourceUniqueValue.field == row.field,
                ResourceUniqueValue.value == row.value,
                ResourceUniqueValue.resource_id != own_id if own_id else literal(True),
            )
        )
        if clash is not None:
            raise Conflict(
                f"{row.field} {row.value!r} is already used by resource {clash}",
                code="unique_violation",
                field=f"attributes.{row.field}",
                resource_id=str(clash),
            )


def _write_unique(ctx: ServiceContext, r: Resource, rtype: ResourceType, *, replace: bool) -> None:
    tid = _tenant_id(ctx)
    rows = _unique_rows(tid, r, rtype)
    _raise_clash(ctx, rows, r.id)
    if replace:
        ctx.session.query(ResourceUniqueValue).filter(ResourceUniqueValue.resource_id == r.id).delete(
            synchronize_session=False
        )
    try:
        with ctx.session.begin_nested():
            ctx.session.add_all(rows)
            ctx.session.flush()
    except IntegrityError:  # a concurrent writer won the race: same answer as the pre-check
        _raise_clash(ctx, rows, r.id)
        raise Conflict("a unique value is taken", code="unique_violation") from None


def _visible(ctx: ServiceContext, types: list[str]) -> ColumnElement[bool]:
    """Per type: the `<type>.read` visibility as SQL (tenant-wide, or resource grants + children)."""
    tid = _tenant_id(ctx)
    # Types readable through the same roles get the same answer: one condition (and one
    # recursive CTE) per group, not per type — same-named CTEs in one statement do not compile.
    groups: dict[frozenset[str], list[str]] = {}
    for t in types:
        roles = frozenset(authz_engine.roles_with(ctx.session, resource_perm(t, "read"), tid))
        groups.setdefault(roles, []).append(t)
    conds = []
    for same in groups.values():
        cond = authz_engine.visible_filter(ctx.session, ctx.principal, resource_perm(same[0], "read"), tid)
        conds.append(Resource.type.in_(same) & cond)
    return or_(*conds) if conds else false()


def list_resources(
    ctx: ServiceContext, flt: ResourceFilter, *, limit: int, cursor: str | None = None, sort: str = "name"
) -> Page[Resource]:
    tid = _tenant_id(ctx)
    authz_engine.mark_decided("resource.read")  # visibility per type below; no types, nothing visible
    types = [flt.type] if flt.type else list(authz_cache.resource_type_keys(ctx.session))
    if flt.type:
        _rtype(ctx, flt.type)
    desc = sort.startswith("-")
    col = SORTS.get(sort.lstrip("-"))
    if col is None:
        raise Invalid(
            "sort by name, created_at or updated_at (prefix - for descending)",
            code="invalid_sort",
            field="sort",
        )
    stmt: Select[Resource] = select(Resource).where(Resource.tenant_id == tid, _visible(ctx, types))
    if flt.type:
        stmt = stmt.where(Resource.type == flt.type)
    if flt.name:
        stmt = stmt.where(func.lower(Resource.name).contains(flt.name.lower(), autoescape=True))
    if flt.parent_id:
        stmt = stmt.where(Resource.parent_id == flt.parent_id)
    for key, value in flt.attributes:
        stmt = stmt.where(Resource.attributes[key].as_string() == value)
    if cursor:
        # The sort key is part of the cursor: a page of one order never continues another.
        sort_key, last_value, last_id = decode_cursor(cursor, "resources", 3)
        if sort_key != sort:
            raise invalid_cursor()
        last_uuid = parse_uuid(last_id)
        last = last_value if col is Resource.name else parse_datetime(last_value)
        stmt = stmt.where(
            (col < last) | ((col == last) & (Resource.id < last_uuid))
            if desc
            else (col > last) | ((col == last) & (Resource.id > last_uuid))
        )
    order = (col.desc(), Resource.id.desc()) if desc else (col, Resource.id)
    rows = list(ctx.session.scalars(stmt.order_by(*order).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if more:
        v = getattr(rows[-1], sort.lstrip("-"))
        next_cursor = encode_cursor(
            "resources", sort, v if isinstance(v, str) else v.isoformat(), str(rows[-1].id)
        )
    return Page(rows, next_cursor)


def get_resource(ctx: ServiceContext, resource_id: uuid.UUID) -> Resource:
    """A resource the principal may read; invisible and absent look the same (404)."""
    r = _live(ctx, resource_id)
    authz_engine.mark_decided("resource.read")
    if r is None or not authz_engine.check(
        ctx.session, ctx.principal, resource_perm(r.type, "read"), _tenant_id(ctx), r.id
    ):
        raise NotFound("resource")
    return r


def create_resource(
    ctx: ServiceContext,
    *,
    type: str,
    name: str,
    attributes: dict[str, Any],
    parent_id: uuid.UUID | None = None,
) -> Resource:
    tid = _tenant_id(ctx)
    authz_engine.mark_decided("resource.create")  # an unknown type is refused before any grant matters
    rtype = _rtype(ctx, type)
    # Creating under a parent needs the permission there (a resource grant on the parent counts).
    authz_engine.require(ctx.session, ctx.principal, resource_perm(type, "create"), tid, parent_id)
    name = name.strip()
    if not name:
        raise Invalid("name must not be empty", code="invalid_name", field="name")
    _check_attributes(rtype, attributes)
    _check_links(ctx, rtype, attributes, parent_id)
    r = Resource(tenant_id=tid, type=type, name=name, attributes=attributes, parent_id=parent_id)
    ctx.session.add(r)
    ctx.session.flush()
    _write_unique(ctx, r, rtype, replace=False)
    audit.record(ctx, "resource.create", target_type=type, target_id=r.id, after=snapshot(r))
    return r


def update_resource(
    ctx: ServiceContext, resource_id: uuid.UUID, changes: dict[str, Any], *, if_match: int | None = None
) -> Resource:
    r = get_resource(ctx, resource_id)
    authz_engine.require(ctx.session, ctx.principal, resource_perm(r.type, "update"), _tenant_id(ctx), r.id)
    if if_match is not None and if_match != r.version:
        raise PreconditionFailed("the resource was changed by someone else; reload and retry")
    rtype = _rtype(ctx, r.type)
    before = snapshot(r)
    name = changes.get("name", r.name)
    if not (name or "").strip():
        raise Invalid("name must not be empty", code="invalid_name", field="name")
    attributes = changes.get("attributes", r.attributes)
    parent_id = changes.get("parent_id", r.parent_id)
    _check_attributes(rtype, attributes)
    _check_links(ctx, rtype, attributes, parent_id, own_id=r.id)
    if parent_id is not None and r.id in authz_engine.ancestors(ctx.session, _tenant_id(ctx), parent_id):
        raise Invalid("a resource cannot be its own ancestor", code="invalid_parent", field="parent_id")
    r.name, r.attributes, r.parent_id = name.strip(), attributes, parent_id
    ctx.session.flush()
    if "attributes" in changes:
        _write_unique(ctx, r, rtype, replace=True)
    b, a = audit.diff(before, snapshot(r))
    if a:
        audit.record(ctx, "resource.update", target_type=r.type, target_id=r.id, before=b, after=a)
    return r


def _subtree(ctx: ServiceContext, r: Resource) -> list[uuid.UUID]:
    """The resource and all its descendants (one recursive query)."""
    res = core.resources
    tid = _tenant_id(ctx)
    base = select(res.c.id).where(res.c.tenant_id == tid, res.c.id == r.id)
    tree = base.cte("subtree", recursive=True)
    child = res.alias("child")
    tree = tree.union_all(
        select(child.c.id).join(tree, child.c.parent_id == tree.c.id).where(core.in_tenant(child, tid))
    )
    return list(ctx.session.scalars(select(tree.c.id)))


def _family(ctx: ServiceContext, r: Resource) -> trash.Family:
    rtype = _rtype(ctx, r.type)
    ids = _subtree(ctx, r)
    if len(ids) > 1 and not rtype.cascade_delete:
        raise Conflict(
            f"{len(ids) - 1} child resource(s) depend on it; delete them first",
            code="has_children",
            children=len(ids) - 1,
        )
    tid = _tenant_id(ctx)
    return trash.Family(
        [
            (
                ResourceUniqueValue,
                (ResourceUniqueValue.tenant_id == tid) & ResourceUniqueValue.resource_id.in_(ids),
            ),
            (Grant, (Grant.tenant_id == tid) & Grant.resource_id.in_(ids)),
            (Resource, (Resource.tenant_id == tid) & Resource.id.in_(ids)),
        ]
    )


def deletion_impact(ctx: ServiceContext, resource_id: uuid.UUID) -> dict[str, int]:
    r = get_resource(ctx, resource_id)
    authz_engine.require(ctx.session, ctx.principal, resource_perm(r.type, "delete"), _tenant_id(ctx), r.id)
    return _family(ctx, r).counts(ctx)


def delete_resource(ctx: ServiceContext, resource_id: uuid.UUID, *, if_match: int | None = None) -> uuid.UUID:
    r = get_resource(ctx, resource_id)
    authz_engine.require(ctx.session, ctx.principal, resource_perm(r.type, "delete"), _tenant_id(ctx), r.id)
    if if_match is not None and if_match != r.version:
        raise PreconditionFailed("the resource was changed by someone else; reload and retry")
    batch = trash.move_to_trash(
        ctx,
        _family(ctx, r),
        root_type="resource",
        root_id=r.id,
        root_name=f"{r.type} {r.name}",
        tenant_id=_tenant_id(ctx),
        before=snapshot(r),
    )
    return batch.id

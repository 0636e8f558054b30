"""Shared resources: system-owned (e.g. gateways), assigned to tenants in slots.

Superadmins manage them; members of an assigned tenant see their assignment read-only;
everyone else sees nothing (404).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select

from tenantry.authz import Perm
from tenantry.db import scoping
from tenantry.db.tables import SharedResource, SharedResourceAssignment, Tenant
from tenantry.db.types import utcnow
from tenantry.errors import Conflict, Invalid, NotFound
from tenantry.services import audit
from tenantry.services.context import ServiceContext
from tenantry.services.pagination import Page, decode_cursor, encode_cursor, parse_uuid

STATUSES = ("active", "maintenance", "offline")
PROTOCOLS = ("wireguard", "ikev2")


def snapshot(s: SharedResource) -> dict[str, Any]:
    return {
        "name": s.name,
        "type": s.type,
        "status": s.status,
        "capacity": s.capacity,
        "attributes": s.attributes,
    }


def _validate(name: str, status: str, capacity: int, attributes: dict[str, Any]) -> None:
    if not name.strip():
        raise Invalid("name must not be empty", code="invalid_name", field="name")
    if status not in STATUSES:
        raise Invalid(f"status must be one of {', '.join(STATUSES)}", code="invalid_status", field="status")
    if capacity < 1:
        raise Invalid("capacity must be at least 1", code="invalid_capacity", field="capacity")
    proto = attributes.get("protocol")
    if proto is not None and proto not in PROTOCOLS:
        raise Invalid(
            "protocol must be wireguard or ikev2", code="invalid_protocol", field="attributes.protocol"
        )


def assignments(ctx: ServiceContext, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    ctx.require(Perm.SHARED_RESOURCE_MANAGE, global_scope=True)
    out: dict[uuid.UUID, list[uuid.UUID]] = {i: [] for i in ids}
    a = SharedResourceAssignment
    with scoping.cross_tenant(ctx.session):  # the admin view spans tenants by design
        for sid, tid in ctx.session.execute(
            select(a.shared_resource_id, a.tenant_id)
            .where(a.shared_resource_id.in_(ids))
            .order_by(a.created_at)
        ):
            out[sid].append(tid)
    return out


def list_shared(ctx: ServiceContext, *, limit: int, cursor: str | None = None) -> Page[SharedResource]:
    """Admin view (superadmins) or, in a tenant context, only what is assigned to that tenant.

    Ordered by name, then id (names need not be unique), paged on that keyset.
    """
    stmt = select(SharedResource)
    if ctx.tenant is not None:
        ctx.require(Perm.SHARED_RESOURCE_READ)
        assigned = select(SharedResourceAssignment.shared_resource_id)  # scoped to ctx.tenant
        stmt = stmt.where(SharedResource.id.in_(assigned))
    else:
        ctx.require(Perm.SHARED_RESOURCE_MANAGE, global_scope=True)
    if cursor:
        name, last_id = _decode_name_cursor(cursor)
        stmt = stmt.where(
            (SharedResource.name > name) | ((SharedResource.name == name) & (SharedResource.id > last_id))
        )
    rows = list(ctx.session.scalars(stmt.order_by(SharedResource.name, SharedResource.id).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor("shared_resources", rows[-1].name, str(rows[-1].id)) if more else None
    return Page(rows, next_cursor)


def _decode_name_cursor(cursor: str) -> tuple[str, uuid.UUID]:
    """Only a cursor we issued: `[name, id]`; anything else (tampered, other types) is a 422."""
    name, last_id = decode_cursor(cursor, "shared_resources", 2)
    return name, parse_uuid(last_id)


def get_shared(ctx: ServiceContext, shared_id: uuid.UUID) -> SharedResource:
    if ctx.tenant is not None:
        ctx.require(Perm.SHARED_RESOURCE_READ)
        assigned = ctx.session.scalar(
            select(SharedResourceAssignment.id).where(
                SharedResourceAssignment.shared_resource_id == shared_id
            )
        )
        if assigned is None:
            raise NotFound("shared resource")
    else:
        ctx.require(Perm.SHARED_RESOURCE_MANAGE, global_scope=True)
    s = ctx.session.scalar(select(SharedResource).where(SharedResource.id == shared_id))
    if s is None:
        raise NotFound("shared resource")
    return s


def create_shared(
    ctx: ServiceContext,
    *,
    name: str,
    type: str,
    status: str,
    capacity: int,
    attributes: dict[str, Any],
) -> SharedResource:
    ctx.require(Perm.SHARED_RESOURCE_MANAGE, global_scope=True)
    _validate(name, status, capacity, attributes)
    s = SharedResource(name=name.strip(), type=type, status=status, capacity=capacity, attributes=attributes)
    ctx.session.add(s)
    ctx.session.flush()
    audit.record(
        ctx,
        "shared_resource.create",
        target_type="shared_resource",
        target_id=s.id,
        after=snapshot(s),
        tenant_id=None,
    )
    return s


def update_shared(ctx: ServiceContext, s: SharedResource, changes: dict[str, Any]) -> SharedResource:
    ctx.require(Perm.SHARED_RESOURCE_MANAGE, global_scope=True)
    merged = snapshot(s) | changes
    _validate(merged["name"], merged["status"], merged["capacity"], merged["attributes"])
    if "capacity" in changes and changes["capacity"] < len(assignments(ctx, [s.id])[s.id]):
        raise Conflict("more tenants are assigned than the new capacity allows", code="capacity_exhausted")
    before = snapshot(s)
    for k, v in changes.items():
        setattr(s, k, v)
    ctx.session.flush()
    b, a = audit.diff(before, snapshot(s))
    if a:
        audit.record(
            ctx,
            "shared_resource.update",
            target_type="shared_resource",
            target_id=s.id,
            before=b,
            after=a,
            tenant_id=None,
        )
    return s


def delete_shared(ctx: ServiceContext, s: SharedResource) -> None:
    ctx.require(Perm.SHARED_RESOURCE_MANAGE, global_scope=True)
    if assignments(ctx, [s.id])[s.id]:
        raise Conflict("tenants are still assigned; unassign them first", code="in_use")
    s.deleted_at = utcnow()
    ctx.session.flush()
    audit.record(
        ctx,
        "shared_resource.delete",
        target_type="shared_resource",
        target_id=s.id,
        before=snapshot(s),
        tenant_id=None,
    )


def assign(ctx: ServiceContext, s: SharedResource, *, tenant_id: uuid.UUID) -> None:
    """Give a tenant a slot. The row lock makes the capacity check race-free."""
    ctx.require(Perm.SHARED_RESOURCE_MANAGE, global_scope=True)
    if ctx.session.scalar(select(Tenant.id).where(Tenant.id == tenant_id)) is None:
        raise Invalid("no such tenant", code="unknown_tenant", field="tenant_id")
    ctx.session.scalar(select(SharedResource.id).where(SharedResource.id == s.id).with_for_update())
    a = SharedResourceAssignment
    with scoping.cross_tenant(ctx.session):
        used = (
            ctx.session.scalar(select(func.count()).select_from(a).where(a.shared_resource_id == s.id)) or 0
        )
        if ctx.session.scalar(select(a.id).where(a.shared_resource_id == s.id, a.tenant_id == tenant_id)):
            raise Conflict("the tenant is already assigned", code="already_assigned")
        if used >= s.capacity:
            raise Conflict(f"all {s.capacity} slots are taken", code="capacity_exhausted")
        ctx.session.add(SharedResourceAssignment(tenant_id=tenant_id, shared_resource_id=s.id))
        ctx.session.flush()
    audit.record(
        ctx,
        "shared_resource.assign",
        target_type="shared_resource",
        target_id=s.id,
        after={"tenant_id": tenant_id},
        tenant_id=tenant_id,
    )


def unassign(ctx: ServiceContext, s: SharedResource, *, tenant_id: uuid.UUID) -> None:
    ctx.require(Perm.SHARED_RESOURCE_MANAGE, global_scope=True)
    a = SharedResourceAssignment
    with scoping.cross_tenant(ctx.session):
        row = ctx.session.scalar(select(a).where(a.shared_resource_id == s.id, a.tenant_id == tenant_id))
        if row is None:
            raise NotFound("assignment")
        row.deleted_at = utcnow()
        ctx.session.flush()
    audit.record(
        ctx,
        "shared_resource.unassign",
        target_type="shared_resource",
        target_id=s.id,
        before={"tenant_id": tenant_id},
        tenant_id=tenant_id,
    )

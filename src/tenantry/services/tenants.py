"""Tenants: create, find, list with counts, update, soft delete with the whole family, restore."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from tenantry.authz import Perm, visibility
from tenantry.db import core, scoping
from tenantry.db.base import Base as _Base
from tenantry.db.base import SoftDeletable, TenantOwned
from tenantry.db.tables import ApiKey, DeletionBatch, Membership, Resource, Tenant
from tenantry.errors import Conflict, Invalid, NotFound, PermissionDenied, PreconditionFailed
from tenantry.ids import uuid7
from tenantry.services import audit, membership_invitations, settings, trash, users
from tenantry.services.context import ServiceContext
from tenantry.services.pagination import Page, decode_cursor, encode_cursor, invalid_cursor

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
RESERVED_SLUGS = frozenset({"api", "admin", "static", "new", "all", "me", "www"})
STATUSES = ("active", "suspended")
EDITABLE = ("name", "description", "branding_color", "branding_logo_url", "status")


@dataclass
class TenantView:
    tenant: Tenant
    member_count: int
    resource_count: int


def normalise_slug(raw: str) -> str:
    slug = raw.strip().lower()
    if not SLUG_RE.match(slug):
        raise Invalid(
            "slug must be 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'",
            code="invalid_slug",
            field="slug",
        )
    if slug in RESERVED_SLUGS:
        raise Invalid(f"slug {slug!r} is reserved", code="slug_reserved", field="slug")
    return slug


def _validate_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise Invalid("name must not be empty", code="invalid_name", field="name")
    return name


def _validate_branding(color: str | None, logo_url: str | None) -> None:
    if color is not None and not COLOR_RE.match(color):
        raise Invalid("branding color must look like #rrggbb", code="invalid_color", field="branding.color")
    if logo_url is not None and not re.match(r"^https://[^\s/$.?#][^\s]*$", logo_url):
        raise Invalid("logo_url must be an https URL", code="invalid_logo_url", field="branding.logo_url")


def snapshot(t: Tenant) -> dict[str, Any]:
    return {
        "slug": t.slug,
        "name": t.name,
        "description": t.description,
        "branding_color": t.branding_color,
        "branding_logo_url": t.branding_logo_url,
        "status": t.status,
    }


def _lookup(session: Session, ref: str, *, deleted: bool) -> Tenant | None:
    try:
        cond = Tenant.id == uuid.UUID(ref)
    except ValueError:
        slug = ref.strip().lower()
        if not SLUG_RE.match(slug):
            return None  # cannot name a tenant; never send it (e.g. a NUL byte) to the database
        cond = Tenant.slug == slug
    stmt = select(Tenant).where(cond)
    if deleted:
        stmt = stmt.where(Tenant.deleted_at.is_not(None)).execution_options(include_deleted=True)
    return session.scalar(stmt)


def find_visible(ctx: ServiceContext, ref: str) -> Tenant:
    """Resolve `{tenant}` (id or slug) to a tenant the principal may see.

    Unknown, deleted and not-visible tenants raise the same NotFound (DESIGN §2). A suspended
    tenant is visible but closed to everyone except those who may suspend it.
    """
    tenant = _lookup(ctx.session, ref, deleted=False)
    if tenant is None:
        raise NotFound("tenant")
    if not visibility.can_see_tenant(ctx.session, ctx.principal, tenant.id):
        audit.note_hidden(ctx, "tenant", ref)  # exists, but not for this principal: a trace
        raise NotFound("tenant")
    if tenant.status == "suspended" and not ctx.can(Perm.TENANT_SUSPEND, global_scope=True):
        raise PermissionDenied("this tenant is suspended", code="tenant_suspended")
    return tenant


def enter_tenant(ctx: ServiceContext, ref: str) -> Tenant:
    """Select `{tenant}` as the context's tenant (console and API alike).

    A signed-in user who belongs to no tenant at all gets `no_tenant` rather than a 404 that
    would read as "this tenant does not exist" (DESIGN §1 Membership).
    """
    try:
        tenant = find_visible(ctx, ref)
    except NotFound:
        user_id = ctx.principal.user_id
        # An alias holds no memberships of its own: it works in its parent's tenants.
        alias = ctx.principal.kind == "alias"
        if user_id and not alias and not ctx.principal.is_superadmin and not users.user_tenants(ctx, user_id):
            raise PermissionDenied("you have no access to any tenant", code="no_tenant") from None
        raise
    ctx.enter(tenant)
    return tenant


def find_deleted(ctx: ServiceContext, ref: str) -> Tenant:
    """A tenant in the trash; only those who may delete tenants can see it there."""
    ctx.require(Perm.TENANT_DELETE, global_scope=True)
    tenant = _lookup(ctx.session, ref, deleted=True)
    if tenant is None:
        raise NotFound("tenant")
    return tenant


def counts(session: Session, tenant_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[int, int]]:
    """Member and resource counts for a page of tenants: two grouped queries, not N+1."""
    if not tenant_ids:
        return {}
    out = {t: [0, 0] for t in tenant_ids}
    with scoping.cross_tenant(session):
        models: tuple[type[Membership] | type[Resource], ...] = (Membership, Resource)
        for idx, model in enumerate(models):
            rows = session.execute(
                select(model.tenant_id, func.count())
                .where(model.tenant_id.in_(tenant_ids))
                .group_by(model.tenant_id)
            )
            for tid, n in rows:
                out[tid][idx] = n
    return {t: (v[0], v[1]) for t, v in out.items()}


def _count_columns(tenant_id: uuid.UUID | ColumnElement[uuid.UUID]) -> tuple[Any, Any]:
    """Live members and resources of a tenant as scalar subqueries (correlated for a list)."""
    m, r = core.memberships, core.resources
    return (
        select(func.count()).select_from(m).where(core.in_tenant(m, tenant_id)).scalar_subquery(),
        select(func.count()).select_from(r).where(core.in_tenant(r, tenant_id)).scalar_subquery(),
    )


def view(ctx: ServiceContext, tenant: Tenant) -> TenantView:
    """One tenant with its counts: a single statement of two scalar subqueries."""
    if not visibility.can_see_tenant(ctx.session, ctx.principal, tenant.id):
        raise NotFound("tenant")  # the same answer as for a tenant that does not exist
    with scoping.in_tenant(ctx.session, tenant.id):
        row = ctx.session.execute(select(*_count_columns(tenant.id))).one()
    return TenantView(tenant, row[0], row[1])


def get_tenant(ctx: ServiceContext, ref: str) -> TenantView:
    return view(ctx, find_visible(ctx, ref))


def list_tenants(
    ctx: ServiceContext,
    *,
    limit: int,
    cursor: str | None = None,
    q: str | None = None,
    status: str | None = None,
) -> Page[TenantView]:
    """Tenants the principal can see, ordered by slug (keyset pagination on the unique slug)."""
    stmt: Select[Tenant] = select(Tenant).where(visibility.tenant_filter(ctx.session, ctx.principal))
    if q:
        # A substring search: `%` and `_` in `q` are literal characters, not wildcards.
        needle = q.lower()
        stmt = stmt.where(
            or_(
                func.lower(Tenant.name).contains(needle, autoescape=True),
                Tenant.slug.contains(needle, autoescape=True),
            )
        )
    if status:
        if status not in STATUSES:
            raise Invalid("status must be active or suspended", code="invalid_status", field="status")
        stmt = stmt.where(Tenant.status == status)
    if cursor:
        after = decode_cursor(cursor, "tenants")[0]
        if not SLUG_RE.match(after):  # we only ever issue slugs; anything else was not ours
            raise invalid_cursor()
        stmt = stmt.where(Tenant.slug > after)
    # The visibility filter reads memberships across tenants for this one user, and the counts
    # span the page's tenants: escape RLS for this statement only; the filter itself is the
    # tenant boundary here. One statement: the counts are correlated subqueries per row.
    with scoping.cross_tenant(ctx.session):
        rows = ctx.session.execute(
            stmt.add_columns(*_count_columns(Tenant.id.expression)).order_by(Tenant.slug).limit(limit + 1)
        ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(
        items=[TenantView(t, members, res) for t, members, res in rows],
        next_cursor=encode_cursor("tenants", rows[-1][0].slug) if more else None,
    )


def _slug_taken(session: Session, slug: str) -> bool:
    stmt = select(Tenant.id).where(Tenant.slug == slug).execution_options(include_deleted=True)
    return session.scalar(stmt) is not None


def create_tenant(
    ctx: ServiceContext,
    *,
    slug: str,
    name: str,
    description: str = "",
    branding_color: str | None = None,
    branding_logo_url: str | None = None,
    status: str = "active",
) -> Tenant:
    ctx.require(Perm.TENANT_CREATE, global_scope=True)
    slug = normalise_slug(slug)
    name = _validate_name(name)
    _validate_branding(branding_color, branding_logo_url)
    if status not in STATUSES:
        raise Invalid("status must be active or suspended", code="invalid_status", field="status")
    if _slug_taken(ctx.session, slug):
        raise Conflict(f"slug {slug!r} is taken", code="slug_taken", field="slug")
    tenant = Tenant(
        id=uuid7(),
        slug=slug,
        name=name,
        description=description,
        branding_color=branding_color.lower() if branding_color else None,
        branding_logo_url=branding_logo_url,
        status=status,
    )
    ctx.session.add(tenant)
    ctx.session.flush()
    audit.record(
        ctx,
        "tenant.create",
        target_type="tenant",
        target_id=tenant.id,
        after=snapshot(tenant),
        tenant_id=tenant.id,
    )
    settings.apply_new_tenant_defaults(ctx, tenant)
    membership_invitations.creator_joins(ctx, tenant)
    return tenant


def update_tenant(
    ctx: ServiceContext, tenant: Tenant, changes: dict[str, Any], *, if_match: int | None = None
) -> Tenant:
    """Apply a partial update. `changes` holds only the fields the client sent."""
    ctx.require(Perm.TENANT_UPDATE, tenant_id=tenant.id)
    unknown = set(changes) - set(EDITABLE)
    if unknown:
        raise Invalid(f"cannot change {', '.join(sorted(unknown))}", code="field_not_editable")
    if "status" in changes:
        if changes["status"] not in STATUSES:
            raise Invalid("status must be active or suspended", code="invalid_status", field="status")
        if changes["status"] != tenant.status:
            ctx.require(Perm.TENANT_SUSPEND, global_scope=True)
    if "name" in changes:
        changes["name"] = _validate_name(changes["name"] or "")
    if changes.get("description") is None and "description" in changes:
        changes["description"] = ""
    _validate_branding(changes.get("branding_color"), changes.get("branding_logo_url"))
    if changes.get("branding_color"):
        changes["branding_color"] = changes["branding_color"].lower()
    if if_match is not None and if_match != tenant.version:
        raise PreconditionFailed("the tenant was changed by someone else; reload and retry")
    before = snapshot(tenant)
    for key, value in changes.items():
        setattr(tenant, key, value)
    after = snapshot(tenant)
    if before != after:
        ctx.session.flush()
        b, a = audit.diff(before, after)
        action = "tenant.update"
        if "status" in a:
            action = "tenant.suspend" if a["status"] == "suspended" else "tenant.reactivate"
        if a.keys() & {"branding_color", "branding_logo_url"}:
            settings.bump(ctx.session)  # the tenant's `branding` settings: mails read them cached
        audit.record(
            ctx, action, target_type="tenant", target_id=tenant.id, before=b, after=a, tenant_id=tenant.id
        )
    return tenant


def family(tenant: Tenant) -> trash.Family:
    """The tenant and everything it owns, plus API keys restricted to it."""
    parts: list[tuple[type[Any], Any]] = [
        (m.class_, m.class_.tenant_id == tenant.id)
        for m in _Base.registry.mappers
        if issubclass(m.class_, TenantOwned) and issubclass(m.class_, SoftDeletable)
    ]
    parts.append((ApiKey, ApiKey.tenant_id == tenant.id))
    parts.append((Tenant, Tenant.id == tenant.id))
    return trash.Family(parts)


def deletion_impact(ctx: ServiceContext, tenant: Tenant) -> dict[str, int]:
    ctx.require(Perm.TENANT_DELETE, global_scope=True)
    counts = family(tenant).counts(ctx)
    counts.pop("tenants", None)
    return counts


def delete_tenant(
    ctx: ServiceContext, tenant: Tenant, *, if_match: int | None = None
) -> tuple[uuid.UUID, dict[str, int]]:
    """Soft-delete the tenant and its whole family under one deletion batch (set-based)."""
    ctx.require(Perm.TENANT_DELETE, global_scope=True)
    if if_match is not None and if_match != tenant.version:
        raise PreconditionFailed("the tenant was changed by someone else; reload and retry")
    batch = trash.move_to_trash(
        ctx,
        family(tenant),
        root_type="tenant",
        root_id=tenant.id,
        root_name=f"{tenant.name} ({tenant.slug})",
        tenant_id=tenant.id,
        before=snapshot(tenant),
    )
    counts = dict(batch.counts)
    counts.pop("tenants", None)
    return batch.id, counts


def restore_tenant(ctx: ServiceContext, tenant: Tenant) -> Tenant:
    """Bring back exactly the family deleted with the tenant (same batch id, same row ids)."""
    ctx.require(Perm.TRASH_RESTORE, global_scope=True)
    batch = ctx.session.get(DeletionBatch, tenant.deletion_batch_id)
    if batch is None:
        raise NotFound("deletion batch")
    trash.restore_batch(ctx, batch.id)
    ctx.session.refresh(tenant)
    return tenant

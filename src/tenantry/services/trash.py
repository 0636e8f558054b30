"""The trash: soft delete under one deletion batch, exact restore, permanent purge.

Every statement is set-based (one UPDATE or DELETE per table, never a loop over rows) and a
whole operation is one transaction: a process killed midway leaves all or nothing.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, select, update
from sqlalchemy.exc import IntegrityError

from tenantry.authz import Perm, visibility
from tenantry.authz import cache as authz_cache
from tenantry.authz import engine as authz_engine
from tenantry.db import core, scoping
from tenantry.db.base import Base, SoftDeletable
from tenantry.db.tables import DeletionBatch

__all__ = ["DeletionBatch", "Family", "list_batches", "move_to_trash", "purge_batch", "restore_batch"]
from tenantry.db.types import utcnow
from tenantry.errors import Conflict, NotFound
from tenantry.ids import uuid7
from tenantry.services import audit, settings
from tenantry.services.context import ServiceContext
from tenantry.services.pagination import Page, decode_uuid_cursor, encode_cursor


def soft_deletable_models() -> list[type[Any]]:
    """Children before parents, so purges never trip a foreign key."""
    by_table = {
        m.persist_selectable.description: m.class_
        for m in Base.registry.mappers
        if issubclass(m.class_, SoftDeletable)
    }
    return [by_table[t.name] for t in reversed(Base.metadata.sorted_tables) if t.name in by_table]


def kind_name(model: type[Any]) -> str:
    return str(model.__tablename__)


@dataclass
class Family:
    """What goes to the trash together: a condition per table, all inside one transaction."""

    parts: list[tuple[type[Any], ColumnElement[bool]]]

    def counts(self, ctx: ServiceContext) -> dict[str, int]:
        out: dict[str, int] = {}
        with scoping.cross_tenant(ctx.session):
            for model, cond in self.parts:
                n = ctx.session.scalar(select(func.count()).select_from(model).where(cond)) or 0
                out[kind_name(model)] = out.get(kind_name(model), 0) + n
        return out


def move_to_trash(
    ctx: ServiceContext,
    family: Family,
    *,
    root_type: str,
    root_id: uuid.UUID,
    root_name: str,
    tenant_id: uuid.UUID | None,
    before: dict[str, Any] | None = None,
) -> DeletionBatch:
    """Soft-delete the family under a new batch and record the batch."""
    counts = family.counts(ctx)
    batch_id, now = uuid7(), utcnow()
    with scoping.cross_tenant(ctx.session):
        for model, cond in family.parts:
            ctx.session.execute(
                update(model).where(cond).values(deleted_at=now, deletion_batch_id=batch_id),
                execution_options={"synchronize_session": False},
            )
    batch = DeletionBatch(
        id=batch_id,
        tenant_id=tenant_id,
        root_type=root_type,
        root_id=root_id,
        root_name=root_name[:320],
        counts=counts,
        deleted_by_id=ctx.principal.user_id,
        deleted_by=ctx.principal.label,
        deleted_at=now,
        purge_after=now + timedelta(days=_retention_days(ctx)),
    )
    ctx.session.add(batch)
    ctx.session.flush()
    ctx.session.expire_all()  # ORM objects loaded earlier must not mask the bulk update
    authz_cache.bump(ctx.session)
    audit.record(
        ctx,
        f"{root_type}.delete",
        target_type=root_type,
        target_id=root_id,
        before=before,
        after={"deletion_batch_id": batch_id, "counts": counts},
        tenant_id=tenant_id,
    )
    return batch


def _visible_batches(ctx: ServiceContext) -> Select[DeletionBatch]:
    stmt = select(DeletionBatch).where(DeletionBatch.restored_at.is_(None), DeletionBatch.purged_at.is_(None))
    if ctx.tenant is not None:
        ctx.require(Perm.TRASH_READ)
        return stmt.where(DeletionBatch.tenant_id == ctx.tenant.id, DeletionBatch.root_type != "tenant")
    ctx.require(Perm.TRASH_READ, global_scope=True)
    return stmt


def list_batches(
    ctx: ServiceContext, *, limit: int, cursor: str | None = None, root_type: str | None = None
) -> Page[DeletionBatch]:
    """Newest first. Superadmins see every batch; tenant admins those inside their tenant."""
    stmt = _visible_batches(ctx)
    if root_type:
        stmt = stmt.where(DeletionBatch.root_type == root_type)
    if cursor:
        stmt = stmt.where(DeletionBatch.id < decode_uuid_cursor(cursor, "trash"))
    rows = list(ctx.session.scalars(stmt.order_by(DeletionBatch.id.desc()).limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(rows, encode_cursor("trash", str(rows[-1].id)) if more else None)


def get_batch(ctx: ServiceContext, batch_id: uuid.UUID, *, perm: str) -> DeletionBatch:
    """A batch the principal may act on with `perm`; other tenants' batches are 404."""
    authz_engine.mark_decided(perm)  # visibility below is part of this decision
    # Locked: a restore and a purge of one batch never both go ahead.
    batch = ctx.session.get(DeletionBatch, batch_id, with_for_update=True)
    if batch is None or batch.restored_at is not None or batch.purged_at is not None:
        raise NotFound("deletion batch")
    if ctx.tenant is not None:
        if batch.tenant_id != ctx.tenant.id or batch.root_type == "tenant":
            raise NotFound("deletion batch")
        ctx.require(perm)
    elif batch.tenant_id is None or batch.root_type == "tenant":
        ctx.require(perm, global_scope=True)
    else:
        if not ctx.can(perm, global_scope=True):
            if not visibility.can_see_tenant(ctx.session, ctx.principal, batch.tenant_id):
                raise NotFound("deletion batch")
            ctx.require(perm, tenant_id=batch.tenant_id)
    return batch


def _conflicts(ctx: ServiceContext, batch_id: uuid.UUID) -> list[str]:
    """Unique values taken meanwhile by live rows: restoring would break them."""
    out: list[str] = []
    uv, live = core.resource_unique_values, core.resource_unique_values.alias("live")
    rows = ctx.session.execute(
        select(uv.c.field, uv.c.value, live.c.resource_id)
        .join(
            live,
            (live.c.tenant_id == uv.c.tenant_id)
            & (live.c.type == uv.c.type)
            & (live.c.field == uv.c.field)
            & (live.c.value == uv.c.value)
            & core.live(live),
        )
        .where(uv.c.deletion_batch_id == batch_id)
        .limit(5)
    )
    out += [f"{f}={v} is now used by resource {rid}" for f, v, rid in rows]
    m, lm = core.memberships, core.memberships.alias("live_m")
    members = ctx.session.execute(
        select(m.c.user_id)
        .join(lm, core.in_tenant(lm, m.c.tenant_id) & (lm.c.user_id == m.c.user_id))
        .where(m.c.deletion_batch_id == batch_id)
        .limit(5)
    )
    out += [f"user {uid} is a member again" for (uid,) in members]
    # A resource whose parent went to the trash in another batch would come back as an orphan.
    r, parent = core.resources, core.resources.alias("parent")
    orphans = ctx.session.execute(
        select(r.c.id, r.c.parent_id)
        .join(parent, (parent.c.tenant_id == r.c.tenant_id) & (parent.c.id == r.c.parent_id))
        .where(
            r.c.deletion_batch_id == batch_id,
            parent.c.deleted_at.is_not(None),
            parent.c.deletion_batch_id != batch_id,
        )
        .limit(5)
    )
    out += [
        f"resource {rid} needs its parent {pid}, which is in the trash: restore that first"
        for rid, pid in orphans
    ]
    return out


def restore_batch(ctx: ServiceContext, batch_id: uuid.UUID) -> dict[str, int]:
    """Bring back exactly the batch's rows, with the same ids — or nothing, on a conflict."""
    batch = get_batch(ctx, batch_id, perm=Perm.TRASH_RESTORE)
    with scoping.cross_tenant(ctx.session), scoping.include_deleted(ctx.session):
        conflicts = _conflicts(ctx, batch.id)
        if conflicts:
            raise Conflict(
                "cannot restore: " + "; ".join(conflicts), code="restore_conflict", conflicts=conflicts
            )
        restored: dict[str, int] = {}
        try:
            with ctx.session.begin_nested():
                for model in soft_deletable_models():
                    n = ctx.session.execute(
                        update(model)
                        .where(model.deletion_batch_id == batch.id)
                        .values(deleted_at=None, deletion_batch_id=None),
                        execution_options={"synchronize_session": False},
                    ).rowcount  # type: ignore[attr-defined]
                    if n:
                        restored[kind_name(model)] = n
        except IntegrityError:
            raise Conflict(
                "cannot restore: a unique value was taken meanwhile", code="restore_conflict"
            ) from None
    batch.restored_at = utcnow()
    ctx.session.flush()
    ctx.session.expire_all()
    authz_cache.bump(ctx.session)
    audit.record(
        ctx,
        f"{batch.root_type}.restore",
        target_type=batch.root_type,
        target_id=batch.root_id,
        after={"deletion_batch_id": batch.id, "counts": restored},
        tenant_id=batch.tenant_id,
    )
    return restored


def purge_batch(ctx: ServiceContext, batch_id: uuid.UUID, *, confirm: bool) -> dict[str, int]:
    """Delete the batch's rows for ever (children first). Audit events keep ids, so they survive."""
    batch = get_batch(ctx, batch_id, perm=Perm.TRASH_PURGE)
    if not confirm:
        raise Conflict("purging is permanent; confirm it", code="confirmation_required")
    purged = _purge_rows(ctx, batch.id)
    batch.purged_at = utcnow()
    ctx.session.flush()
    audit.record(
        ctx,
        f"{batch.root_type}.purge",
        target_type=batch.root_type,
        target_id=batch.root_id,
        after={"deletion_batch_id": batch.id, "counts": purged},
        tenant_id=batch.tenant_id,
    )
    return purged


def _purge_rows(ctx: ServiceContext, batch_id: uuid.UUID) -> dict[str, int]:
    purged: dict[str, int] = {}
    with scoping.cross_tenant(ctx.session), scoping.include_deleted(ctx.session):
        for model in soft_deletable_models():
            in_batch = model.deletion_batch_id == batch_id
            # Counted first: SQLite's rowcount leaves out rows that an ON DELETE CASCADE from
            # the same statement removed (a purged host's services), so it would under-report.
            n = ctx.session.scalar(select(func.count()).select_from(model).where(in_batch)) or 0
            if n:
                ctx.session.execute(
                    delete(model).where(in_batch), execution_options={"synchronize_session": False}
                )
                purged[kind_name(model)] = n
    # Purging a parent cascades to children trashed earlier in batches of their own: those
    # batches now hold nothing, so they are purged too rather than listed as restorable.
    res = core.resources
    with scoping.cross_tenant(ctx.session), scoping.include_deleted(ctx.session):
        ctx.session.execute(
            update(DeletionBatch)
            .where(
                DeletionBatch.purged_at.is_(None),
                DeletionBatch.restored_at.is_(None),
                DeletionBatch.id != batch_id,
                DeletionBatch.root_type == "resource",
                DeletionBatch.root_id.not_in(
                    select(res.c.id).where(res.c.tenant_id == DeletionBatch.tenant_id)
                ),
            )
            .values(purged_at=utcnow()),
            execution_options={"synchronize_session": False},
        )
    ctx.session.expire_all()
    return purged


def _retention_days(ctx: ServiceContext) -> int:
    """The retention period now: the settings catalog's `trash.retention_days` (system-only)."""
    return settings.effective(ctx.session, ctx.settings, None).trash.retention_days


def due_for_purge(ctx: ServiceContext, *, limit: int = 10) -> list[DeletionBatch]:
    """Claim expired batches with a lease, so several instances never purge one twice.

    Expired: past the purge date set at deletion, or older than the retention period that
    applies now (a shorter retention brings purges forward).
    """
    ctx.require(Perm.TRASH_PURGE, global_scope=True)
    now = utcnow()
    retention_cut = now - timedelta(days=_retention_days(ctx))
    stmt = (
        select(DeletionBatch)
        .where(
            (DeletionBatch.purge_after <= now) | (DeletionBatch.deleted_at <= retention_cut),
            DeletionBatch.purged_at.is_(None),
            DeletionBatch.restored_at.is_(None),
            (DeletionBatch.purge_locked_until.is_(None)) | (DeletionBatch.purge_locked_until < now),
        )
        .order_by(DeletionBatch.purge_after)
        .limit(limit)
    )
    if ctx.session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    batches = list(ctx.session.scalars(stmt))
    for b in batches:
        b.purge_locked_until = now + timedelta(minutes=10)
    return batches

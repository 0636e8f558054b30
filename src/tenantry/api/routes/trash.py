"""`/api/v1/trash` and `/api/v1/tenants/{tenant}/trash`: list, restore, purge."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from tenantry.api.deps import CtxDep, TenantCtxDep
from tenantry.api.routing import ApiRoute
from tenantry.api.schemas import Page
from tenantry.api.schemas.resources import PurgeOut, RestoreOut, TrashBatchOut
from tenantry.services import trash
from tenantry.services.context import ServiceContext

router = APIRouter(tags=["trash"], route_class=ApiRoute)
Limit = Annotated[int, Query(ge=1, le=200)]
Cursor = Annotated[str | None, Query(max_length=200)]
RootType = Annotated[str | None, Query(max_length=32)]


def _page(ctx: ServiceContext, limit: int, cursor: str | None, root_type: str | None) -> Page[TrashBatchOut]:
    page = trash.list_batches(ctx, limit=limit, cursor=cursor, root_type=root_type)
    return Page(items=[TrashBatchOut.of(b) for b in page.items], next_cursor=page.next_cursor)


def _restore(ctx: ServiceContext, batch_id: uuid.UUID) -> RestoreOut:
    restored = trash.restore_batch(ctx, batch_id)
    ctx.commit()
    return RestoreOut(restored=restored)


def _purge(ctx: ServiceContext, batch_id: uuid.UUID, confirm: bool) -> PurgeOut:
    purged = trash.purge_batch(ctx, batch_id, confirm=confirm)
    ctx.commit()
    return PurgeOut(purged=purged)


@router.get("/api/v1/trash", response_model=Page[TrashBatchOut])
def list_trash(
    ctx: CtxDep, limit: Limit = 50, cursor: Cursor = None, root_type: RootType = None
) -> Page[TrashBatchOut]:
    return _page(ctx, limit, cursor, root_type)


@router.post("/api/v1/trash/{batch_id}/restore", response_model=RestoreOut)
def restore_batch(ctx: CtxDep, batch_id: uuid.UUID) -> RestoreOut:
    return _restore(ctx, batch_id)


@router.delete("/api/v1/trash/{batch_id}", response_model=PurgeOut)
def purge_batch(ctx: CtxDep, batch_id: uuid.UUID, confirm: bool = False) -> PurgeOut:
    """Permanent. Pass `?confirm=true`."""
    return _purge(ctx, batch_id, confirm)


@router.get("/api/v1/tenants/{tenant}/trash", response_model=Page[TrashBatchOut])
def list_tenant_trash(
    ctx: TenantCtxDep, limit: Limit = 50, cursor: Cursor = None, root_type: RootType = None
) -> Page[TrashBatchOut]:
    return _page(ctx, limit, cursor, root_type)


@router.post("/api/v1/tenants/{tenant}/trash/{batch_id}/restore", response_model=RestoreOut)
def restore_tenant_batch(ctx: TenantCtxDep, batch_id: uuid.UUID) -> RestoreOut:
    return _restore(ctx, batch_id)


@router.delete("/api/v1/tenants/{tenant}/trash/{batch_id}", response_model=PurgeOut)
def purge_tenant_batch(ctx: TenantCtxDep, batch_id: uuid.UUID, confirm: bool = False) -> PurgeOut:
    return _purge(ctx, batch_id, confirm)

"""`/api/v1/settings` (system values, superadmins) and `/api/v1/tenants/{tenant}/settings` (merged,
with overrides): the settings catalog (services/settings.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from tenantry.api.deps import CtxDep, TenantCtxDep
from tenantry.api.routing import ApiRoute
from tenantry.api.schemas.settings import CategoryOut, SettingsOut, SettingsUpdate
from tenantry.services import settings

router = APIRouter(tags=["settings"], route_class=ApiRoute)
CategoryName = Annotated[str, Path(max_length=32, pattern="^[a-z_]+$")]
KeyName = Annotated[str, Path(max_length=64, pattern="^[a-z0-9_]+$")]


@router.get("/api/v1/settings", response_model=SettingsOut)
def get_system_settings(ctx: CtxDep) -> SettingsOut:
    return SettingsOut.of(settings.get_system_settings(ctx))


@router.get("/api/v1/settings/{category}", response_model=CategoryOut)
def get_system_category(ctx: CtxDep, category: CategoryName) -> CategoryOut:
    return CategoryOut.of(category, settings.get_system_category(ctx, category))


@router.put("/api/v1/settings/{category}", response_model=CategoryOut)
def update_system_settings(ctx: CtxDep, category: CategoryName, body: SettingsUpdate) -> CategoryOut:
    view = settings.update_system_settings(ctx, category, body.changes())
    ctx.commit()
    return CategoryOut.of(category, view)


@router.get("/api/v1/tenants/{tenant}/settings", response_model=SettingsOut)
def get_tenant_settings(ctx: TenantCtxDep) -> SettingsOut:
    assert ctx.tenant is not None
    return SettingsOut.of(settings.get_tenant_settings(ctx, ctx.tenant))


@router.get("/api/v1/tenants/{tenant}/settings/{category}", response_model=CategoryOut)
def get_tenant_category(ctx: TenantCtxDep, category: CategoryName) -> CategoryOut:
    assert ctx.tenant is not None
    return CategoryOut.of(category, settings.get_tenant_category(ctx, ctx.tenant, category))


@router.put("/api/v1/tenants/{tenant}/settings/{category}", response_model=CategoryOut)
def update_tenant_settings(ctx: TenantCtxDep, category: CategoryName, body: SettingsUpdate) -> CategoryOut:
    assert ctx.tenant is not None
    view = settings.update_tenant_settings(ctx, ctx.tenant, category, body.changes())
    ctx.commit()
    return CategoryOut.of(category, view)


@router.delete("/api/v1/tenants/{tenant}/settings/{category}/{key}", response_model=CategoryOut)
def reset_tenant_setting(ctx: TenantCtxDep, category: CategoryName, key: KeyName) -> CategoryOut:
    assert ctx.tenant is not None
    view = settings.reset_tenant_setting(ctx, ctx.tenant, category, key)
    ctx.commit()
    return CategoryOut.of(category, view)

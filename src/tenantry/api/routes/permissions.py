"""`/api/v1/permissions`: the catalog with risk levels."""

from __future__ import annotations

from fastapi import APIRouter

from tenantry.api.deps import CtxDep
from tenantry.api.routing import ApiRoute
from tenantry.api.schemas.authz import PermissionOut
from tenantry.authz import CATALOG
from tenantry.authz.engine import require_authenticated

router = APIRouter(prefix="/api/v1/permissions", tags=["authorization"], route_class=ApiRoute)


@router.get("", response_model=list[PermissionOut])
def list_permissions(ctx: CtxDep) -> list[PermissionOut]:
    require_authenticated(ctx.principal)
    return [
        PermissionOut(
            key=p.key, description=p.description, risk=p.risk, scopes=list(p.scopes), read_only=p.read_only
        )
        for p in sorted(CATALOG.values(), key=lambda p: p.key)
    ]

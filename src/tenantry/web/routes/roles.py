"""Roles and permissions: the roles usable here (a tenant's, or the global ones in All-tenants
mode) with their permissions, and a form to create or edit a custom role from the permission
catalog. Dangerous permissions are marked and need the "I understand" box (the roles
service's acknowledgement rule); the service decides everything else.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Response

from tenantry.authz import CATALOG, Perm
from tenantry.authz.catalog import PermInfo
from tenantry.errors import Conflict, DomainError, Invalid, RiskNotAcknowledged
from tenantry.services import roles
from tenantry.web.console import (
    FormDep,
    PageCtx,
    Shell,
    TenantRequired,
    console_router,
    redirect,
    render,
    shell,
)

router = console_router()


async def _permissions(request: Request) -> list[str]:
    kind = request.headers.get("content-type", "")
    if not kind.startswith("application/x-www-form-urlencoded"):
        return []
    return [v for v in (await request.form()).getlist("permissions") if isinstance(v, str)]


PermsDep = Annotated[list[str], Depends(_permissions)]


def _field_errors(exc: DomainError) -> dict[str, str]:
    if isinstance(exc, RiskNotAcknowledged):
        return {"acknowledge_risk": exc.detail}
    name = str(exc.extra.get("field") or "form").split(".")[0]
    return {name: exc.detail}


def _shell(ctx: PageCtx, request: Request) -> Shell:
    s = shell(ctx, request)
    if s.tenant is None and not s.all_mode:
        raise TenantRequired
    return s


def _catalog(s: Shell) -> list[PermInfo]:
    """The permissions a role here may hold (inside a tenant: the tenant-scoped ones)."""
    rows = sorted(CATALOG.values(), key=lambda p: p.key)
    return [p for p in rows if s.tenant is None or "tenant" in p.scopes]


def _may_manage(ctx: PageCtx, s: Shell) -> bool:
    return ctx.can(Perm.ROLE_MANAGE, global_scope=s.tenant is None)


def _list(
    ctx: PageCtx,
    request: Request,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, object] | None = None,
) -> Response:
    s = _shell(ctx, request)
    return render(
        request,
        "roles.html",
        status=status,
        shell=s,
        roles=roles.list_roles(ctx),
        catalog=_catalog(s),
        may_manage=_may_manage(ctx, s),
        errors=errors or {},
        values=values or {"permissions": []},
        editing=None,
    )


@router.get("/roles")
def roles_page(ctx: PageCtx, request: Request) -> Response:
    return _list(ctx, request)


@router.post("/roles")
def create_role(ctx: PageCtx, form: FormDep, perms: PermsDep, request: Request) -> Response:
    _shell(ctx, request)
    values: dict[str, object] = {
        "key": form.get("key", ""),
        "name": form.get("name", ""),
        "description": form.get("description", ""),
        "permissions": perms,
    }
    try:
        roles.create_role(
            ctx,
            key=form.get("key", ""),
            name=form.get("name", ""),
            description=form.get("description", ""),
            permissions=perms,
            acknowledge_risk=form.get("acknowledge_risk") == "yes",
        )
    except (Invalid, Conflict, RiskNotAcknowledged) as exc:
        ctx.session.rollback()  # nothing half-written
        return _list(ctx, request, 409 if isinstance(exc, Conflict) else 400, _field_errors(exc), values)
    ctx.commit()
    return redirect("/roles")


def _edit(
    ctx: PageCtx,
    request: Request,
    key: str,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, object] | None = None,
) -> Response:
    s = _shell(ctx, request)
    role = roles.get_role(ctx, key)
    return render(
        request,
        "role.html",
        status=status,
        shell=s,
        role=role,
        catalog=_catalog(s),
        may_edit=_may_manage(ctx, s) and not role.builtin and (s.tenant is None or role.scope == "tenant"),
        errors=errors or {},
        values=values
        or {"name": role.name, "description": role.description, "permissions": role.permissions},
    )


@router.get("/roles/{key}")
def role_page(ctx: PageCtx, request: Request, key: str) -> Response:
    return _edit(ctx, request, key)


@router.post("/roles/{key}")
def update_role(ctx: PageCtx, form: FormDep, perms: PermsDep, request: Request, key: str) -> Response:
    _shell(ctx, request)
    changes: dict[str, object] = {
        "name": form.get("name", ""),
        "description": form.get("description", ""),
        "permissions": perms,
    }
    try:
        roles.update_role(ctx, key, changes, acknowledge_risk=form.get("acknowledge_risk") == "yes")
    except (Invalid, RiskNotAcknowledged) as exc:
        ctx.session.rollback()
        return _edit(ctx, request, key, 400, _field_errors(exc), changes)
    ctx.commit()
    return redirect(f"/roles/{key}")

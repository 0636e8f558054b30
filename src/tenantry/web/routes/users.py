"""Superadmin user administration: the users list (paginated, email/active filters), a user's
detail (tenants with roles, default tenant), deactivate/reactivate, invite a new user by email.

The same users service as the API's `/api/v1/users` (POST without a password invites by mail);
the service authorizes itself, the pages add only the superadmin guard for a clean 403.
"""

from __future__ import annotations

from fastapi import Request, Response

from tenantry.authz import Perm
from tenantry.errors import Conflict, DomainError, Invalid
from tenantry.services import users
from tenantry.web.console import FormDep, PageCtx, Shell, console_router, parse_uuid, redirect, render, shell

router = console_router()

PAGE_SIZE = 50
ACTIVE = {"": None, "true": True, "false": False}


def _field_errors(exc: DomainError) -> dict[str, str]:
    name = str(exc.extra.get("field") or "form").split(".")[0]
    return {name: exc.detail}


def _admin(ctx: PageCtx, request: Request) -> Shell:
    s = shell(ctx, request)
    ctx.require(Perm.USER_READ, global_scope=True)  # user administration: 403 for everybody else
    return s


def _list(
    ctx: PageCtx,
    request: Request,
    *,
    email: str = "",
    active: str = "",
    cursor: str | None = None,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    s = _admin(ctx, request)
    if active not in ACTIVE:
        raise Invalid("active is true, false or empty", code="invalid_filter", field="active")
    page = users.list_users(ctx, limit=PAGE_SIZE, cursor=cursor, email=email or None, active=ACTIVE[active])
    return render(
        request,
        "admin_users.html",
        status=status,
        shell=s,
        page=page,
        email=email,
        active=active,
        may_manage=ctx.can(Perm.USER_MANAGE, global_scope=True),
        errors=errors or {},
        values=values or {},
    )


@router.get("/admin/users")
def users_list(
    ctx: PageCtx, request: Request, email: str = "", active: str = "", cursor: str | None = None
) -> Response:
    return _list(ctx, request, email=email, active=active, cursor=cursor)


@router.post("/admin/users")
def invite_user(ctx: PageCtx, form: FormDep, request: Request) -> Response:
    _admin(ctx, request)
    values = {k: form.get(k, "") for k in ("email", "first_name", "last_name")}
    try:
        user = users.create_user(
            ctx, email=values["email"], first_name=values["first_name"], last_name=values["last_name"]
        )
    except (Invalid, Conflict) as exc:
        ctx.session.rollback()  # nothing half-written, no mail queued
        return _list(
            ctx,
            request,
            status=400 if isinstance(exc, Invalid) else 409,
            errors=_field_errors(exc),
            values=values,
        )
    ctx.commit()
    return redirect(f"/admin/users/{user.id}")


def _detail(
    ctx: PageCtx, request: Request, user_id: str, status: int = 200, errors: dict[str, str] | None = None
) -> Response:
    s = _admin(ctx, request)
    user = users.get_user(ctx, parse_uuid(user_id))
    return render(
        request,
        "admin_user.html",
        status=status,
        shell=s,
        user=user,
        memberships=users.user_tenants(ctx, user.id),
        may_manage=ctx.can(Perm.USER_MANAGE, global_scope=True),
        errors=errors or {},
    )


@router.get("/admin/users/{user_id}")
def user_detail(ctx: PageCtx, request: Request, user_id: str) -> Response:
    return _detail(ctx, request, user_id)


@router.post("/admin/users/{user_id}/active")
def set_active(ctx: PageCtx, form: FormDep, request: Request, user_id: str) -> Response:
    _admin(ctx, request)
    user = users.get_user(ctx, parse_uuid(user_id))
    value = form.get("active", "")
    try:
        if value not in ("true", "false"):
            raise Invalid("active is true or false", code="invalid_active", field="active")
        users.update_user(ctx, user, {"active": value == "true"})
    except (Invalid, Conflict) as exc:
        ctx.session.rollback()
        return _detail(
            ctx, request, user_id, 400 if isinstance(exc, Invalid) else 409, {"active": exc.detail}
        )
    ctx.commit()
    return redirect(f"/admin/users/{user_id}")

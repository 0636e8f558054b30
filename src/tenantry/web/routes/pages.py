"""Signed-in pages: dashboard, tenant switch, superadmin tenants, trash, profile, impersonation end.

Every page calls `shell()` (sign-in state, tenant context and menu, all decided by the engine)
and then the service it shows; the services authorize themselves.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response

from tenantry.authz import Perm
from tenantry.errors import Conflict, DomainError, Invalid
from tenantry.services import audit, impersonation, invitations, tenants, totp, trash, users
from tenantry.services.audit import AuditFilter
from tenantry.web.console import (
    ALL_TENANTS,
    TENANT_COOKIE,
    FormDep,
    PageCtx,
    Shell,
    console_router,
    parse_uuid,
    redirect,
    render,
    shell,
)
from tenantry.web.i18n import _

router = console_router()


def _field_errors(exc: DomainError) -> dict[str, str]:
    name = str(exc.extra.get("field") or "form").split(".")[0]
    return {name: exc.detail}


def _select_tenant(request: Request, response: Response, value: str) -> None:
    response.set_cookie(
        TENANT_COOKIE, value, httponly=True, secure=request.url.scheme == "https", samesite="lax", path="/"
    )


# --- dashboard and the tenant context -------------------------------------------------------------


@router.get("/dashboard")
def dashboard(ctx: PageCtx, request: Request) -> Response:
    s = shell(ctx, request)
    if s.tenant is None and not s.all_mode:
        # Tenants listed but none entered: the engine closed them (suspended), not "no tenant".
        return render(request, "no_tenant.html", shell=s, suspended=bool(s.tenants))
    row = next((r for r in s.tenants if s.tenant is not None and r.view.tenant.id == s.tenant.id), None)
    events = (
        audit.list_events(ctx, AuditFilter(), limit=10, cursor=None).items
        if (s.tenant is not None and ctx.can(Perm.AUDIT_READ))
        else []
    )
    return render(request, "dashboard.html", shell=s, row=row, events=events)


@router.post("/switch-tenant")
def switch_tenant(ctx: PageCtx, form: FormDep, request: Request) -> Response:
    value = form.get("tenant", "")
    if value == ALL_TENANTS:
        ctx.require(Perm.TENANT_READ, global_scope=True)  # All-tenants mode is for global readers
    elif value:
        value = str(tenants.enter_tenant(ctx, value).id)  # unknown or hidden: 404
    else:
        raise Invalid(_("choose a tenant"), code="invalid_tenant", field="tenant")
    response = redirect("/dashboard")
    _select_tenant(request, response, value)
    return response


# --- superadmin: tenants ----------------------------------------------------------------------------


def _admin(ctx: PageCtx, request: Request) -> Shell:
    s = shell(ctx, request)
    ctx.require(Perm.TENANT_READ, global_scope=True)  # superadmin pages: 403 for everybody else
    return s


@router.get("/admin/tenants")
def admin_tenants(ctx: PageCtx, request: Request) -> Response:
    s = _admin(ctx, request)
    return _tenants_page(ctx, request, s)


def _tenants_page(
    ctx: PageCtx,
    request: Request,
    s: Shell,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    page = tenants.list_tenants(ctx, limit=200)
    return render(
        request,
        "admin_tenants.html",
        status=status,
        shell=s,
        rows=page.items,
        may_create=ctx.can(Perm.TENANT_CREATE, global_scope=True),
        errors=errors or {},
        values=values or {},
    )


@router.post("/admin/tenants")
def create_tenant(ctx: PageCtx, form: FormDep, request: Request) -> Response:
    _admin(ctx, request)
    values = {"slug": form.get("slug", ""), "name": form.get("name", "")}
    try:
        tenant = tenants.create_tenant(ctx, slug=values["slug"], name=values["name"])
    except (Invalid, Conflict) as exc:
        ctx.session.rollback()  # nothing half-written; the page is drawn afresh
        return _tenants_page(ctx, request, shell(ctx, request), 400, _field_errors(exc), values)
    ctx.commit()
    return redirect(f"/admin/tenants/{tenant.id}")


def _detail(
    ctx: PageCtx, request: Request, tenant_id: str, status: int = 200, errors: dict[str, str] | None = None
) -> Response:
    s = _admin(ctx, request)
    view = tenants.get_tenant(ctx, str(parse_uuid(tenant_id)))
    return render(
        request,
        "admin_tenant.html",
        status=status,
        shell=s,
        view=view,
        may_update=ctx.can(Perm.TENANT_UPDATE, tenant_id=view.tenant.id),
        may_suspend=ctx.can(Perm.TENANT_SUSPEND, global_scope=True),
        may_delete=ctx.can(Perm.TENANT_DELETE, global_scope=True),
        errors=errors or {},
    )


@router.get("/admin/tenants/{tenant_id}")
def tenant_detail(ctx: PageCtx, request: Request, tenant_id: str) -> Response:
    return _detail(ctx, request, tenant_id)


@router.post("/admin/tenants/{tenant_id}/rename")
def rename_tenant(ctx: PageCtx, form: FormDep, request: Request, tenant_id: str) -> Response:
    _admin(ctx, request)
    tenant = tenants.get_tenant(ctx, str(parse_uuid(tenant_id))).tenant
    try:
        tenants.update_tenant(ctx, tenant, {"name": form.get("name", "")})
    except Invalid as exc:
        ctx.session.rollback()
        return _detail(ctx, request, tenant_id, 400, _field_errors(exc))
    ctx.commit()
    return redirect(f"/admin/tenants/{tenant_id}")


@router.post("/admin/tenants/{tenant_id}/status")
def set_tenant_status(ctx: PageCtx, form: FormDep, request: Request, tenant_id: str) -> Response:
    _admin(ctx, request)
    tenant = tenants.get_tenant(ctx, str(parse_uuid(tenant_id))).tenant
    tenants.update_tenant(ctx, tenant, {"status": form.get("status", "")})
    ctx.commit()
    return redirect(f"/admin/tenants/{tenant_id}")


@router.get("/admin/tenants/{tenant_id}/delete")
def delete_preview(ctx: PageCtx, request: Request, tenant_id: str) -> Response:
    s = _admin(ctx, request)
    view = tenants.get_tenant(ctx, str(parse_uuid(tenant_id)))
    impact = tenants.deletion_impact(ctx, view.tenant)
    return render(request, "admin_tenant_delete.html", shell=s, view=view, impact=impact, error=None)


@router.post("/admin/tenants/{tenant_id}/delete")
def delete_tenant(ctx: PageCtx, form: FormDep, request: Request, tenant_id: str) -> Response:
    s = _admin(ctx, request)
    view = tenants.get_tenant(ctx, str(parse_uuid(tenant_id)))
    impact = tenants.deletion_impact(ctx, view.tenant)
    if form.get("confirm", "").strip() != view.tenant.slug:
        error = _("Type the tenant's slug to confirm.")
        return render(
            request, "admin_tenant_delete.html", status=400, shell=s, view=view, impact=impact, error=error
        )
    tenants.delete_tenant(ctx, view.tenant)
    ctx.commit()
    response = redirect("/trash")
    _select_tenant(request, response, ALL_TENANTS)  # a deleted tenant's batch is in the global trash
    return response


# --- trash ---------------------------------------------------------------------------------------------


@router.get("/trash")
def trash_page(ctx: PageCtx, request: Request) -> Response:
    s = shell(ctx, request)
    batches = trash.list_batches(ctx, limit=200).items
    return render(
        request,
        "trash.html",
        shell=s,
        batches=batches,
        may_restore=ctx.can(Perm.TRASH_RESTORE, global_scope=s.tenant is None),
        may_purge=ctx.can(Perm.TRASH_PURGE, global_scope=s.tenant is None),
    )


@router.post("/trash/{batch_id}/restore")
def restore(ctx: PageCtx, request: Request, batch_id: str) -> Response:
    shell(ctx, request)
    trash.restore_batch(ctx, parse_uuid(batch_id))
    ctx.commit()
    return redirect("/trash")


@router.post("/trash/{batch_id}/purge")
def purge(ctx: PageCtx, form: FormDep, request: Request, batch_id: str) -> Response:
    shell(ctx, request)
    trash.purge_batch(ctx, parse_uuid(batch_id), confirm=form.get("confirm") == "yes")
    ctx.commit()
    return redirect("/trash")


# --- profile ---------------------------------------------------------------------------------------------


def _profile(
    ctx: PageCtx,
    request: Request,
    status: int = 200,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
) -> Response:
    s = shell(ctx, request)
    return render(
        request, "profile.html", status=status, shell=s, me=s.user, errors=errors or {}, notice=notice
    )


@router.get("/profile")
def profile(ctx: PageCtx, request: Request) -> Response:
    return _profile(ctx, request)


@router.post("/profile")
def update_profile(ctx: PageCtx, form: FormDep, request: Request) -> Response:
    changes: dict[str, Any] = {
        k: form[k] for k in ("first_name", "last_name", "language", "theme") if k in form
    }
    try:
        users.update_me(ctx, changes)
    except Invalid as exc:
        ctx.session.rollback()
        return _profile(ctx, request, 400, _field_errors(exc))
    ctx.commit()
    return redirect("/profile")


@router.post("/profile/password")
def change_password(ctx: PageCtx, form: FormDep, request: Request) -> Response:
    try:
        invitations.change_password(
            ctx, current_password=form.get("current_password", ""), new_password=form.get("new_password", "")
        )
    except Invalid as exc:
        ctx.session.rollback()
        errors = _field_errors(exc)
        if "password" in errors:
            errors["new_password"] = errors.pop("password")
        return _profile(ctx, request, 400, errors)
    ctx.commit()
    return _profile(ctx, request, notice=_("Your password was changed."))


@router.post("/profile/2fa/disable")
def disable_2fa(ctx: PageCtx, form: FormDep, request: Request) -> Response:
    try:
        totp.disable(ctx, password=form.get("password", ""), code=form.get("code", ""))
    except (Invalid, Conflict) as exc:
        ctx.session.rollback()
        return _profile(ctx, request, 400, {"disable_2fa": exc.detail})
    ctx.commit()
    return redirect("/profile")


@router.post("/impersonation/end")
def end_impersonation(ctx: PageCtx) -> Response:
    impersonation.end(ctx)
    ctx.commit()
    return redirect("/login")

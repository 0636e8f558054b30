"""My tenant: the selected tenant's profile, its members (paginated, searchable) with their
roles, adding a member by email, changing a role, removing a member, pending invitations.

Routes stay thin: `shell()` decides the tenant context, the memberships service authorizes
every read and write itself (and answers the same whether or not an address has an account).
"""

from __future__ import annotations

from fastapi import Request, Response

from tenantry.authz import Perm
from tenantry.errors import Conflict, DomainError, Invalid
from tenantry.services import memberships, roles, tenants
from tenantry.web.console import FormDep, PageCtx, console_router, parse_uuid, redirect, render, shell
from tenantry.web.i18n import _

router = console_router()

PAGE_SIZE = 50


def _field_errors(exc: DomainError) -> dict[str, str]:
    name = str(exc.extra.get("field") or "form").split(".")[0]
    return {name: exc.detail}


def _page(
    ctx: PageCtx,
    request: Request,
    *,
    q: str | None = None,
    cursor: str | None = None,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    notice: str | None = None,
) -> Response:
    s = shell(ctx, request, need_tenant=True)
    assert s.tenant is not None
    ctx.require(Perm.TENANT_READ)
    may_read = ctx.can(Perm.MEMBER_READ)
    may_manage = ctx.can(Perm.MEMBER_MANAGE)
    members = memberships.list_members(ctx, limit=PAGE_SIZE, cursor=cursor, q=q) if may_read else None
    invites = memberships.list_invitations(ctx, limit=PAGE_SIZE).items if may_manage else []
    role_keys = [r.key for r in roles.list_roles(ctx)] if may_manage and ctx.can(Perm.ROLE_READ) else []
    return render(
        request,
        "my_tenant.html",
        status=status,
        shell=s,
        view=tenants.view(ctx, s.tenant),
        members=members,
        invitations=invites,
        role_keys=role_keys,
        may_manage=may_manage,
        q=q or "",
        errors=errors or {},
        values=values or {},
        notice=notice,
    )


@router.get("/my-tenant")
def my_tenant(ctx: PageCtx, request: Request, q: str | None = None, cursor: str | None = None) -> Response:
    """The selected tenant's profile and members; without a tenant: back to the dashboard."""
    return _page(ctx, request, q=q, cursor=cursor)


@router.post("/my-tenant/members")
def add_member(ctx: PageCtx, form: FormDep, request: Request) -> Response:
    s = shell(ctx, request, need_tenant=True)
    assert s.tenant is not None
    values = {"email": form.get("email", ""), "role": form.get("role", "")}
    try:
        memberships.add_member(ctx, s.tenant, role=values["role"], email=values["email"])
    except (Invalid, Conflict) as exc:
        ctx.session.rollback()  # nothing half-written; the page is drawn afresh
        return _page(ctx, request, status=400, errors=_field_errors(exc), values=values)
    ctx.commit()
    # The same words whether or not the address had an account (the service's rule).
    return _page(ctx, request, notice=_("%(email)s was invited.", email=values["email"].strip()))


@router.post("/my-tenant/members/{user_id}/role")
def change_role(ctx: PageCtx, form: FormDep, request: Request, user_id: str) -> Response:
    shell(ctx, request, need_tenant=True)
    uid = parse_uuid(user_id)
    try:
        memberships.change_member_role(ctx, uid, role=form.get("role", ""))
    except (Invalid, Conflict) as exc:
        ctx.session.rollback()
        return _page(ctx, request, status=_status(exc), errors={f"role-{uid}": exc.detail})
    ctx.commit()
    return redirect("/my-tenant")


@router.post("/my-tenant/members/{user_id}/remove")
def remove_member(ctx: PageCtx, request: Request, user_id: str) -> Response:
    shell(ctx, request, need_tenant=True)
    uid = parse_uuid(user_id)
    try:
        memberships.remove_member(ctx, uid)
    except Conflict as exc:
        ctx.session.rollback()
        return _page(ctx, request, status=409, errors={f"remove-{uid}": exc.detail})
    ctx.commit()
    return redirect("/my-tenant")


@router.post("/my-tenant/invitations/{invitation_id}/revoke")
def revoke_invitation(ctx: PageCtx, request: Request, invitation_id: str) -> Response:
    shell(ctx, request, need_tenant=True)
    memberships.revoke_invitation(ctx, parse_uuid(invitation_id))
    ctx.commit()
    return redirect("/my-tenant")


def _status(exc: DomainError) -> int:
    return 409 if isinstance(exc, Conflict) else 400

"""Profile → API keys: one's own keys (create: the token is shown once; list; revoke).

The api_keys service decides everything (a signed-in session only, the scope the owner may
delegate, a tenant the owner can see); the page only shapes the form and the answer.
"""

from __future__ import annotations

import uuid

from fastapi import Request, Response

from tenantry.errors import DomainError, Invalid
from tenantry.services import api_keys
from tenantry.web.console import FormDep, PageCtx, console_router, parse_uuid, redirect, render, shell

router = console_router()


def _field_errors(exc: DomainError) -> dict[str, str]:
    name = str(exc.extra.get("field") or "form").split(".")[0]
    return {name: exc.detail}


def _page(
    ctx: PageCtx,
    request: Request,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    token: str | None = None,
) -> Response:
    s = shell(ctx, request)
    return render(
        request,
        "api_keys.html",
        status=status,
        shell=s,
        keys=api_keys.list_keys(ctx),
        scopes=api_keys.SCOPES,
        errors=errors or {},
        values=values or {},
        token=token,
    )


@router.get("/profile/api-keys")
def keys_page(ctx: PageCtx, request: Request) -> Response:
    return _page(ctx, request)


@router.post("/profile/api-keys")
def create_key(ctx: PageCtx, form: FormDep, request: Request) -> Response:
    shell(ctx, request)
    values = {k: form.get(k, "") for k in ("name", "scope", "tenant")}
    try:
        tenant_id: uuid.UUID | None = None
        if values["tenant"]:
            try:
                tenant_id = uuid.UUID(values["tenant"])
            except ValueError:
                raise Invalid("choose a tenant", code="invalid_tenant", field="tenant") from None
        created = api_keys.create_key(ctx, name=values["name"], scope=values["scope"], tenant_id=tenant_id)
    except Invalid as exc:
        ctx.session.rollback()  # nothing half-written
        return _page(ctx, request, 400, _field_errors(exc), values)
    ctx.commit()
    # The token exists only in this answer: shown once, never stored in clear.
    return _page(ctx, request, token=created.token)


@router.post("/profile/api-keys/{key_id}/revoke")
def revoke_key(ctx: PageCtx, request: Request, key_id: str) -> Response:
    shell(ctx, request)
    api_keys.revoke_key(ctx, parse_uuid(key_id))
    ctx.commit()
    return redirect("/profile/api-keys")

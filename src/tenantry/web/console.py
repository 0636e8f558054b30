"""The console's request plumbing: the route class, the signed-in context, the page shell.

Everything about the caller is the API's: the same `sign_in_request` (cookie session + CSRF
token bound to it, or a bearer token), the same services, the same engine. The console only
adds what a browser needs: the CSRF token comes from a form field (pages work without
JavaScript), refusals become pages or redirects instead of problem+json, and the selected
tenant lives in a cookie (`tenantry_tenant`) that the engine re-checks on every request.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from tenantry.api.deps import (
    CSRF_COOKIE,
    CSRF_HEADER,
    SAFE_METHODS,
    SESSION_COOKIE,
    SessionDep,
    clear_session_cookies,
    request_meta,
    sign_in_request,
)
from tenantry.api.routing import ApiRoute
from tenantry.authz import Perm, Principal
from tenantry.authz.engine import require_authenticated
from tenantry.db.tables import Tenant, User
from tenantry.errors import DomainError, NotFound, PermissionDenied, RateLimited, Unauthenticated
from tenantry.services import impersonation, memberships, tenants, users
from tenantry.services.context import ServiceContext
from tenantry.web.i18n import gettext

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
TENANT_COOKIE = "tenantry_tenant"
ALL_TENANTS = "all"
SETUP_2FA_PATH = "/setup-2fa"

templates = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(("html",), default=True),  # user text is always escaped
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.globals["_"] = gettext


def render(request: Request, name: str, status: int = 200, **values: Any) -> HTMLResponse:
    values.setdefault("shell", None)
    values.setdefault("theme", _theme(values["shell"]))
    html = templates.get_template(name).render(request=request, **values)
    return HTMLResponse(html, status_code=status)


def _theme(shell: Shell | None) -> str:
    return shell.user.theme if shell is not None and shell.user.theme in ("light", "dark") else "system"


def redirect(url: str) -> RedirectResponse:
    """After a form post (and for guards): a GET of `url` (303 See Other)."""
    return RedirectResponse(url, status_code=303)


# --- refusals as pages -------------------------------------------------------------------------


def refusal_page(request: Request, exc: DomainError) -> Response:
    """What a browser sees when a service refuses: the API's status and words, as a page."""
    if isinstance(exc, Unauthenticated):
        response: Response = redirect("/login")
        if request.cookies.get(SESSION_COOKIE):
            clear_session_cookies(response)  # expired or revoked: start over
        return response
    if isinstance(exc, PermissionDenied) and exc.code == "2fa_setup_required":
        return redirect(SETUP_2FA_PATH)  # the engine's rule: set-up first, nothing else
    if isinstance(exc, PermissionDenied) and exc.code == "no_tenant":
        return render(request, "no_tenant.html", status=403)
    status = 404 if isinstance(exc, NotFound) else _status(exc)
    response = render(
        request, "error.html", status=status, status_code=status, detail=exc.detail, code=exc.code
    )
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _status(exc: DomainError) -> int:
    from tenantry.api.problems import status_for

    return status_for(exc)


class ConsoleRoute(ApiRoute):
    """An API route (one thread-pool hop, strict query) whose refusals are pages, not JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except DomainError as exc:
                return refusal_page(request, exc)
            except TenantRequired:
                return redirect("/dashboard")  # a tenant page without a tenant: choose one there

        return page_handler


def console_router() -> APIRouter:
    return APIRouter(route_class=ConsoleRoute, include_in_schema=False)


# --- the signed-in context -----------------------------------------------------------------------


async def console_context(request: Request, session: SessionDep) -> ServiceContext:
    """The caller, exactly as the API signs it in; the CSRF token may come as a form field."""
    ctx = ServiceContext(session=session, principal=Principal.nobody(), meta=request_meta(request))
    header = request.headers.get("authorization", "")
    bearer = header[7:].strip() if header[:7].lower() == "bearer " else None
    csrf = request.headers.get(CSRF_HEADER)
    if csrf is None and request.method not in SAFE_METHODS and _is_form(request):
        value = (await request.form()).get("csrf_token")
        csrf = value if isinstance(value, str) and value else None
    await sign_in_request(request, ctx, bearer=bearer, cookie=request.cookies.get(SESSION_COOKIE), csrf=csrf)
    return ctx


def _is_form(request: Request) -> bool:
    kind = request.headers.get("content-type", "")
    return kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data"))


PageCtx = Annotated[ServiceContext, Depends(console_context)]


async def same_origin(request: Request) -> None:
    """Forms posted before sign-in (login, reset, invitation) carry no session to bind a CSRF
    token to: a post a browser marks as coming from another site is refused instead (login
    CSRF). Browsers say so in `Sec-Fetch-Site`; `Origin` is `null` under our no-referrer policy,
    and names the other site otherwise."""
    if request.method in SAFE_METHODS:
        return
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    own = {_origin(str(request.base_url)), _origin(request.app.state.settings.public_url), "null"}
    if site in ("cross-site", "same-site") or (origin is not None and origin not in own):
        raise PermissionDenied("this form was posted from another site", code="csrf_failed")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


SameOrigin = Depends(same_origin)


async def form_data(request: Request) -> dict[str, str]:
    """The posted form's text fields (files are not accepted anywhere in the console)."""
    if not _is_form(request):
        return {}
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


FormDep = Annotated[dict[str, str], Depends(form_data)]


@dataclass
class MenuItem:
    href: str
    label: str


@dataclass
class Shell:
    """What every signed-in page shows around its content."""

    user: User
    csrf_token: str
    tenants: list[memberships.MyTenant] = field(default_factory=list)
    tenant: Tenant | None = None
    all_mode: bool = False
    may_all: bool = False
    menu: list[MenuItem] = field(default_factory=list)
    impersonator: impersonation.Impersonator | None = None

    @property
    def show_switcher(self) -> bool:
        return len(self.tenants) > 1 or (self.may_all and len(self.tenants) > 0)

    @property
    def selected(self) -> str:
        return ALL_TENANTS if self.all_mode else str(self.tenant.id) if self.tenant else ""


def shell(ctx: ServiceContext, request: Request, *, need_tenant: bool = False) -> Shell:
    """Sign-in state, the tenant context (cookie → engine-checked tenant) and the menu.

    `need_tenant`: the page works inside one tenant; without one it is not reachable
    (the caller redirects to the dashboard, see `TenantRequired`).
    """
    require_authenticated(ctx.principal)  # the engine's rule: a 2FA set-up owed comes first
    me = users.me(ctx)
    out = Shell(user=me, csrf_token=request.cookies.get(CSRF_COOKIE, ""))
    out.impersonator = impersonation.impersonated_by(ctx)
    out.tenants = memberships.my_tenants(ctx)
    out.may_all = ctx.can(Perm.TENANT_READ, global_scope=True)
    choice = request.cookies.get(TENANT_COOKIE)
    by_id = {str(row.view.tenant.id): row for row in out.tenants}
    if choice == ALL_TENANTS and out.may_all:
        out.all_mode = True
    else:
        pick = by_id.get(choice or "")
        if pick is None:
            pick = next((row for row in out.tenants if row.is_default), None)
        if pick is None and not out.may_all:
            pick = next((row for row in out.tenants if row.view.tenant.status == "active"), None)
        if pick is not None:
            try:
                out.tenant = tenants.enter_tenant(ctx, str(pick.view.tenant.id))
            except PermissionDenied as exc:
                if exc.code != "tenant_suspended":
                    raise
        out.all_mode = out.tenant is None and out.may_all
    if need_tenant and out.tenant is None:
        raise TenantRequired
    out.menu = _menu(ctx, out)
    return out


class TenantRequired(Exception):
    """A tenant page asked for without a tenant selected: the dashboard says what to do."""


def _menu(ctx: ServiceContext, s: Shell) -> list[MenuItem]:
    """Only what the engine says the caller may use here; All-tenants mode holds global items only."""
    items = [MenuItem("/dashboard", gettext("Dashboard"))]
    if s.tenant is not None and ctx.can(Perm.TENANT_UPDATE):
        items.append(MenuItem("/my-tenant", gettext("My tenant")))
    if s.may_all:
        items.append(MenuItem("/admin/tenants", gettext("Tenants")))
    if ctx.can(Perm.USER_READ, global_scope=True):
        items.append(MenuItem("/admin/users", gettext("Users")))
    if (s.tenant is not None or s.all_mode) and ctx.can(Perm.ROLE_READ, global_scope=s.tenant is None):
        items.append(MenuItem("/roles", gettext("Roles")))
    if (s.tenant is not None or s.all_mode) and ctx.can(Perm.AUDIT_READ, global_scope=s.tenant is None):
        items.append(MenuItem("/audit", gettext("Audit log")))
    if ctx.can(Perm.TRASH_READ, global_scope=s.tenant is None):
        items.append(MenuItem("/trash", gettext("Trash")))
    items.append(MenuItem("/profile", gettext("Profile")))
    return items


def parse_uuid(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise NotFound("object") from None

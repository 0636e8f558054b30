"""Request dependencies: database session, principal, tenant context (Annotated aliases).

The dependencies themselves never block: each is `async` and only records what the request
needs (a session, the credentials to check, the tenant to enter). The blocking part runs in
the route's single thread-pool hop (`api/routing.py`), before the endpoint, in the order the
dependencies were declared; a thread-pool hop per dependency cost more CPU than the query it
carried. A context whose preparation never ran has no principal: it fails closed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from tenantry import i18n
from tenantry.api.client_address import client_address
from tenantry.api.routing import defers_work, prepare, request_work
from tenantry.authz import Principal
from tenantry.db.session import Database
from tenantry.db.tables import User
from tenantry.errors import PermissionDenied, Unauthenticated
from tenantry.mail.identity import tenant_mail_identity
from tenantry.services import auth, tenants
from tenantry.services.context import RequestMeta, ServiceContext

SESSION_COOKIE = "tenantry_session"
CSRF_COOKIE = "tenantry_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_bearer = HTTPBearer(auto_error=False, description="A session token (tnt_ses_…) or an API key (tnt_pat_…)")
_cookie = APIKeyCookie(
    name=SESSION_COOKIE, auto_error=False, description="Console session cookie (+ X-CSRF-Token)"
)


def get_db(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


async def get_session(request: Request) -> AsyncIterator[Session]:
    # Opening a Session does no I/O. On a deferring route its thread closes the session once the
    # endpoint is done, so the close here finds nothing left to do; elsewhere it closes here.
    session = get_db(request).sessions()
    deferred = defers_work(request)
    if deferred:
        request_work(request).sessions.append(session)
    try:
        yield session
    finally:
        if deferred:
            session.close()  # nothing left to do: the route's thread closed it
        else:
            await run_in_threadpool(session.close)


SessionDep = Annotated[Session, Depends(get_session)]


def request_meta(request: Request) -> RequestMeta:
    """Who is asking, from where. X-Forwarded-For counts only from TENANTRY_TRUSTED_PROXIES."""
    return RequestMeta(
        ip=client_address(
            request.client.host if request.client else None,
            request.headers.getlist("x-forwarded-for"),
            request.app.state.settings.trusted_proxies,
        ),
        user_agent=request.headers.get("user-agent"),
        request_id=getattr(request.state, "request_id", None),
        path=request.url.path,
    )


async def anonymous_context(request: Request, session: SessionDep) -> ServiceContext:
    return ServiceContext(session=session, principal=Principal.nobody(), meta=request_meta(request))


async def authenticated_context(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> ServiceContext:
    ctx = ServiceContext(session=session, principal=Principal.nobody(), meta=request_meta(request))
    bearer = (
        credentials.credentials
        if credentials is not None and credentials.scheme.lower() == "bearer"
        else None
    )
    await sign_in_request(request, ctx, bearer=bearer, cookie=cookie, csrf=request.headers.get(CSRF_HEADER))
    return ctx


async def sign_in_request(
    request: Request, ctx: ServiceContext, *, bearer: str | None, cookie: str | None, csrf: str | None
) -> None:
    """The request's credentials → `ctx.principal` (API and console share this one path).

    `csrf` is what the caller sent as the CSRF token (the API's header, the console's form
    field); it counts only for a cookie session on an unsafe method.
    """
    unsafe = request.method not in SAFE_METHODS
    if bearer is not None:
        token, csrf, from_cookie = bearer, None, False
    elif cookie:
        # Security: a cookie rides along with cross-site requests; unsafe methods must prove
        # they come from our own pages with the CSRF token bound to this session.
        if unsafe and not csrf:
            raise PermissionDenied("missing CSRF token", code="csrf_failed")
        token, from_cookie = cookie, True
        csrf = csrf if unsafe else None
    else:
        raise Unauthenticated("a bearer token is required", code="unauthenticated")

    def sign_in() -> None:
        # What the principal may do (key scope, 2FA set-up pending, …) is the engine's to decide.
        ctx.principal = auth.authenticate(ctx, token, cookie=from_cookie, csrf_token=csrf)
        request.state.principal = ctx.principal
        # The caller's language for problem details: authentication loaded the user already
        # (identity map), so this costs no query; not loaded → the tenant's default, else English.
        uid = ctx.principal.user_id
        user = ctx.session.identity_map.get(ctx.session.identity_key(User, uid)) if uid else None
        request.state.user_language = user.language if isinstance(user, User) else None

    await prepare(request, sign_in)


def set_session_cookies(request: Request, response: Response, issued: auth.IssuedSession) -> None:
    """The browser session: HttpOnly session cookie plus the (readable) CSRF token bound to it."""
    assert issued.csrf_token is not None
    secure = request.url.scheme == "https"
    for name, value, httponly in (
        (SESSION_COOKIE, issued.token, True),
        (CSRF_COOKIE, issued.csrf_token, False),
    ):
        response.set_cookie(
            name, value, httponly=httponly, secure=secure, samesite="lax", path="/", expires=issued.expires_at
        )


def clear_session_cookies(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


CtxDep = Annotated[ServiceContext, Depends(authenticated_context)]
AnonCtxDep = Annotated[ServiceContext, Depends(anonymous_context)]


async def tenant_context(tenant: str, ctx: CtxDep, request: Request) -> ServiceContext:
    """Resolve `{tenant}` (id or slug) once; unknown, deleted and hidden tenants are all 404."""

    def enter() -> None:
        tenants.enter_tenant(ctx, tenant)
        # The tenant row is in the identity map: reading its mail identity costs no query.
        request.state.tenant_language = tenant_mail_identity(
            ctx.session, ctx.settings, ctx.tenant_id
        ).default_language

    await prepare(request, enter)
    return ctx


def request_language(request: Request) -> str:
    """Problem details speak the signed-in user's language, else the tenant's default, else
    English; anonymous callers get the best match for their `Accept-Language`."""
    if hasattr(request.state, "user_language"):
        return i18n.pick(request.state.user_language, getattr(request.state, "tenant_language", None))
    return i18n.negotiate(request.headers.get("accept-language"))


TenantCtxDep = Annotated[ServiceContext, Depends(tenant_context)]

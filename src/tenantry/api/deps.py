"""Request dependencies: database session, principal, tenant context (Annotated aliases)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from tenantry.api.client_address import client_address
from tenantry.authz import Principal
from tenantry.db.session import Database
from tenantry.errors import PermissionDenied, Unauthenticated
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


def get_session(request: Request) -> Iterator[Session]:
    session = get_db(request).sessions()
    try:
        yield session
    finally:
        session.close()


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


def anonymous_context(request: Request, session: SessionDep) -> ServiceContext:
    return ServiceContext(session=session, principal=Principal.nobody(), meta=request_meta(request))


def authenticated_context(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> ServiceContext:
    ctx = ServiceContext(session=session, principal=Principal.nobody(), meta=request_meta(request))
    unsafe = request.method not in SAFE_METHODS
    if credentials is not None and credentials.scheme.lower() == "bearer":
        principal = auth.authenticate(ctx, credentials.credentials)
    elif cookie:
        # Security: a cookie rides along with cross-site requests; unsafe methods must prove
        # they come from our own pages with the CSRF token bound to this session.
        csrf = request.headers.get(CSRF_HEADER)
        if unsafe and not csrf:
            raise PermissionDenied("missing CSRF token", code="csrf_failed")
        principal = auth.authenticate(ctx, cookie, cookie=True, csrf_token=csrf if unsafe else None)
    else:
        raise Unauthenticated("a bearer token is required", code="unauthenticated")
    # What the principal may do (key scope, 2FA set-up pending, …) is the engine's to decide.
    ctx.principal = principal
    request.state.principal = principal
    return ctx


CtxDep = Annotated[ServiceContext, Depends(authenticated_context)]
AnonCtxDep = Annotated[ServiceContext, Depends(anonymous_context)]


def tenant_context(tenant: str, ctx: CtxDep) -> ServiceContext:
    """Resolve `{tenant}` (id or slug) once; unknown, deleted and hidden tenants are all 404."""
    tenants.enter_tenant(ctx, tenant)
    return ctx


TenantCtxDep = Annotated[ServiceContext, Depends(tenant_context)]

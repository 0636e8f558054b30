"""Request dependencies: database session, principal, tenant context (Annotated aliases)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from tenantry.authz import Principal
from tenantry.db.session import Database
from tenantry.errors import NotFound, PermissionDenied, Unauthenticated
from tenantry.services import auth, memberships, tenants
from tenantry.services.context import RequestMeta, ServiceContext

SESSION_COOKIE = "tenantry_session"
CSRF_COOKIE = "tenantry_csrf"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# What a session restricted to 2FA set-up may still reach.
RESTRICTED_ALLOWED = ("/api/v1/me/2fa", "/api/v1/auth/logout")

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
    return RequestMeta(
        ip=request.client.host if request.client else None,
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
    if principal.key_scope == "read" and unsafe:
        raise PermissionDenied("this API key may only read", code="key_read_only")
    if (
        principal.restricted
        and not request.url.path.startswith(RESTRICTED_ALLOWED)
        and not (request.url.path == "/api/v1/me" and not unsafe)
    ):
        raise PermissionDenied("set up two-factor authentication first", code="2fa_setup_required")
    ctx.principal = principal
    request.state.principal = principal
    return ctx


CtxDep = Annotated[ServiceContext, Depends(authenticated_context)]
AnonCtxDep = Annotated[ServiceContext, Depends(anonymous_context)]


def tenant_context(tenant: str, ctx: CtxDep) -> ServiceContext:
    """Resolve `{tenant}` (id or slug) once; unknown, deleted and hidden tenants are all 404."""
    try:
        ctx.enter(tenants.find_visible(ctx, tenant))
    except NotFound:
        if ctx.principal.user_id and not ctx.principal.is_superadmin and not memberships.has_any_tenant(ctx):
            raise PermissionDenied("you have no access to any tenant", code="no_tenant") from None
        raise
    return ctx


TenantCtxDep = Annotated[ServiceContext, Depends(tenant_context)]

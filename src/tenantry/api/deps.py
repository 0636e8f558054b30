"""Request dependencies: database session, principal, tenant context (Annotated aliases)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from tenantry.authz import Principal
from tenantry.db.session import Database
from tenantry.errors import Unauthenticated
from tenantry.services import auth, tenants
from tenantry.services.context import RequestMeta, ServiceContext

_bearer = HTTPBearer(auto_error=False, description="A session token (tnt_ses_…) or an API key (tnt_pat_…)")


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
    )


def anonymous_context(request: Request, session: SessionDep) -> ServiceContext:
    return ServiceContext(session=session, principal=Principal.nobody(), meta=request_meta(request))


def authenticated_context(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> ServiceContext:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("a bearer token is required", code="unauthenticated")
    ctx = ServiceContext(session=session, principal=Principal.nobody(), meta=request_meta(request))
    ctx.principal = auth.authenticate(ctx, credentials.credentials)
    request.state.principal = ctx.principal
    return ctx


CtxDep = Annotated[ServiceContext, Depends(authenticated_context)]
AnonCtxDep = Annotated[ServiceContext, Depends(anonymous_context)]


def tenant_context(tenant: str, ctx: CtxDep) -> ServiceContext:
    """Resolve `{tenant}` (id or slug) once; unknown, deleted and hidden tenants are all 404."""
    ctx.enter(tenants.find_visible(ctx, tenant))
    return ctx


TenantCtxDep = Annotated[ServiceContext, Depends(tenant_context)]

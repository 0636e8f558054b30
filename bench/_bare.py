"""Baselines served by the same uvicorn settings as the real app (`bench._harness.Server`).

`create_app`: the bare Starlette endpoint — the target's denominator. It returns the body of
a real `GET /api/v1/tenants/{slug}` response (read from the file named by
TENANTRY_BENCH_BARE_BODY), serialised again per request as a JSON endpoint would.

`create_fastapi_shape`: a diagnostic between the two. FastAPI with the app's middleware stack
(taken from the real factory, so it needs TENANTRY_DATABASE_URL; no connection is made) and the
same dependency chain as the real route (sync generator session dependency, bearer
credentials, sync auth dependency, sync tenant dependency, sync endpoint with
`response_model=TenantOut` and an ETag), but no database work. app ÷ this = cost of the data
layer and services; this ÷ bare = cost of the framework and the route's shape (each sync
dependency is one more thread-pool hop).

`create_sql_floor`: what the request inherently costs in Python. Bare Starlette doing by hand
what a GET of a tenant needs — find the session by token hash (joined with its user), find the
live tenant by slug, count its live members and resources (one statement; on PostgreSQL after
setting the RLS tenant, as the app role) — with SQLAlchemy Core `text()` on the app's engine
(`tenantry.db.engine.make_engine`: same pool, pragmas and BEGIN), in one thread-pool hop.
"""

# No `from __future__ import annotations`: FastAPI must resolve the local dependencies below.
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def _body() -> Any:
    return json.loads(Path(os.environ["TENANTRY_BENCH_BARE_BODY"]).read_bytes())


def create_app() -> Starlette:
    body = _body()

    async def tenant(_request: Request) -> Response:
        return JSONResponse(body)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/api/v1/tenants/{slug}", tenant), Route("/healthz", healthz)])


def create_fastapi_shape() -> Any:
    from fastapi import Depends, FastAPI
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    from tenantry.api.schemas.tenants import TenantOut

    body = _body()
    bearer = HTTPBearer(auto_error=False)
    app = FastAPI(max_body_size=1_048_576)  # as the real app

    def get_session(request: Request) -> Iterator[object]:
        session = object()
        try:
            yield session
        finally:
            del session

    def authenticated(
        request: Request,
        session: Annotated[object, Depends(get_session)],
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> dict[str, Any]:
        return {"session": session, "token": credentials.credentials if credentials else None}

    def tenant_context(tenant: str, ctx: Annotated[dict[str, Any], Depends(authenticated)]) -> dict[str, Any]:
        return {**ctx, "tenant": tenant}

    @app.get("/api/v1/tenants/{tenant}", response_model=TenantOut)
    def get_tenant(ctx: Annotated[dict[str, Any], Depends(tenant_context)], response: Response) -> TenantOut:
        response.headers["ETag"] = '"v1"'
        return TenantOut.model_validate(body)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.user_middleware = _app_middleware()
    return app


def _app_middleware() -> list[Any]:
    """The real app's middleware stack, with its arguments: built by the factory, not copied by hand."""
    try:
        from tenantry.api.app import create_app as create_real_app

        return list(create_real_app().user_middleware)
    except Exception as exc:  # measure without, and say so in the server log
        print(f"bench: FastAPI shape runs without the app's middleware: {exc!r}", file=sys.stderr)
        return []


def create_sql_floor() -> Starlette:
    import hashlib

    from sqlalchemy import text
    from starlette.concurrency import run_in_threadpool

    from tenantry.db.engine import make_engine, sqlite_write_intent

    engine = make_engine(os.environ["TENANTRY_DATABASE_URL"])
    postgres = engine.dialect.name == "postgresql"
    find_session = text(
        "SELECT s.id, s.revoked_at, s.expires_at, s.idle_expires_at, s.last_seen_at, u.id AS user_id, "
        "u.email, u.active, u.is_superadmin FROM auth_sessions s JOIN users u ON u.id = s.user_id "
        "WHERE s.token_hash = :h"
    )
    find_tenant = text(
        "SELECT id, slug, name, description, branding_color, branding_logo_url, status, version, created_at, "
        "updated_at FROM tenants WHERE slug = :slug AND deleted_at IS NULL"
    )
    enter_tenant = text("SELECT set_config('tenantry.tenant_id', :t, true)")
    count = text(
        "SELECT (SELECT count(*) FROM memberships WHERE tenant_id = :t AND deleted_at IS NULL), "
        "(SELECT count(*) FROM resources WHERE tenant_id = :t AND deleted_at IS NULL)"
    )

    def work(token: str, slug: str) -> dict[str, Any] | int:
        sqlite_write_intent.set(False)
        with engine.connect() as conn:
            who = conn.execute(find_session, {"h": hashlib.sha256(token.encode()).hexdigest()}).first()
            if who is None or not who.active:
                return 401
            t = conn.execute(find_tenant, {"slug": slug}).first()
            if t is None:
                return 404
            if postgres:
                conn.execute(enter_tenant, {"t": str(t.id)})
            members, resources = conn.execute(count, {"t": t.id}).one()
            conn.rollback()
        return {
            "id": str(t.id),
            "slug": t.slug,
            "name": t.name,
            "description": t.description,
            "branding": {"color": t.branding_color, "logo_url": t.branding_logo_url},
            "status": t.status,
            "member_count": members,
            "resource_count": resources,
            "created_at": str(t.created_at),
            "updated_at": str(t.updated_at),
        }

    async def tenant(request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        out = await run_in_threadpool(work, auth.removeprefix("Bearer "), request.path_params["slug"])
        if isinstance(out, int):
            return JSONResponse({"status": out}, status_code=out)
        return JSONResponse(out)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/api/v1/tenants/{slug}", tenant), Route("/healthz", healthz)])

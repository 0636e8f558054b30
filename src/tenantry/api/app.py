"""The application factory: routers, problem handlers, request ids, logs and metrics."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from prometheus_client import Counter, Histogram
from starlette.middleware.body_limit import RequestBodyLimitMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantry import __version__
from tenantry.api import problems
from tenantry.api.routes import (
    audit,
    auth,
    authz,
    docs,
    email_templates,
    grants,
    groups,
    health,
    impersonation,
    me,
    me_alias_roles,
    me_aliases,
    me_invitations,
    me_ssh_keys,
    members,
    permissions,
    resource_types,
    resources,
    roles,
    shared_resources,
    tenants,
    trash,
    users,
)
from tenantry.api.routes import settings as settings_routes
from tenantry.api.security_headers import SecurityHeadersMiddleware
from tenantry.authz import cache as authz_cache
from tenantry.authz.engine import start_decision_log
from tenantry.config import Settings, load_settings
from tenantry.db import rls
from tenantry.db.engine import sqlite_write_intent
from tenantry.db.session import Database
from tenantry.jobs.runner import JobRunner
from tenantry.logging import configure, request_id_var
from tenantry.security.passwords import dummy_hash
from tenantry.web.routes import api_keys as console_api_keys
from tenantry.web.routes import audit_log as console_audit
from tenantry.web.routes import members as console_members
from tenantry.web.routes import pages as console_pages
from tenantry.web.routes import resources as console_resources
from tenantry.web.routes import roles as console_roles
from tenantry.web.routes import sign_in as console_sign_in
from tenantry.web.routes import users as console_users

log = logging.getLogger("tenantry.http")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

REQUESTS = Counter("tenantry_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("tenantry_http_request_seconds", "HTTP request latency", ["method", "route"])


class RequestContextMiddleware:
    """Request id in and out, one access-log line, metrics by route template, authz decision log."""

    def __init__(self, app: ASGIApp, unenforced: list[tuple[str, str]], max_body: int) -> None:
        self.app = app
        self.unenforced = unenforced
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_body:
            # Refuse before reading a byte, as problem+json (Starlette's own limit answers in
            # plain text; it still guards chunked bodies without a Content-Length).
            await problems.problem(
                413, "payload_too_large", f"the body is larger than {self.max_body} bytes"
            )(scope, receive, send)
            return
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if incoming and len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        token = request_id_var.set(rid)
        # SQLite: read-only requests need not take the write lock at BEGIN. Set here, in the
        # request's own task, so the thread-pool copies of the context inherit it.
        sqlite_write_intent.set(scope["method"] not in _SAFE_METHODS)
        scope.setdefault("state", {})["request_id"] = rid
        scope["state"]["authz_decisions"] = start_decision_log()
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        decisions = scope["state"]["authz_decisions"]
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            principal = scope["state"].get("principal")
            if principal is not None and not decisions and 200 <= status < 400:
                # Keystone's lesson: an authenticated route that never asked the engine is a bug.
                # Only answers that gave something count: a refusal (401/403/404/409/422) without
                # a decision hands out nothing, and 5xx are failures of their own.
                log.error(
                    "unenforced route",
                    extra={
                        "fields": {"method": scope["method"], "path": getattr(route, "path", scope["path"])}
                    },
                )
                self.unenforced.append((scope["method"], str(getattr(route, "path", scope["path"]))))
            path = getattr(route, "path", "unmatched")
            elapsed = time.perf_counter() - started
            REQUESTS.labels(scope["method"], path, str(status)).inc()
            LATENCY.labels(scope["method"], path).observe(elapsed)
            if log.isEnabledFor(logging.INFO):
                log.info(
                    "request",
                    extra={
                        "fields": {
                            "method": scope["method"],
                            "path": scope["path"],
                            "status": status,
                            "ms": round(elapsed * 1000, 2),
                        }
                    },
                )
            request_id_var.reset(token)


class TenantryAPI(FastAPI):
    """FastAPI with the security headers outermost: Starlette puts its ServerErrorMiddleware
    outside every `add_middleware`, so a 500 would otherwise leave without them."""

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeadersMiddleware(super().build_middleware_stack())


def create_app(settings: Settings | None = None, db: Database | None = None) -> FastAPI:
    settings = settings or load_settings()
    configure(settings.log_level, settings.log_format)
    # A database handed in (tests, embedding) keeps its engine but serves this app's settings.
    database = db.with_settings(settings) if db is not None else Database(settings.database_url, settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        runner = JobRunner(database, settings) if settings.run_jobs else None
        if runner:
            runner.start()
        _warn_if_rls_bypassed(database)
        # Made now, once per process: otherwise the first sign-in with an unknown email would
        # cost one argon2 hash more than any other answer (a timing tell).
        dummy_hash(settings)
        if settings.redis_url:
            authz_cache.listen(settings.redis_url)  # other instances' grant changes clear ours at once
        yield
        if runner:
            runner.stop()
        if settings.redis_url:
            authz_cache.stop_listening()

    app = TenantryAPI(
        lifespan=lifespan,
        title="Tenantry",
        version=__version__,
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # routes/docs.py serves it from the package's own files
        redoc_url=None,
        responses=problems.openapi_responses(),
    )
    app.state.settings = settings
    app.state.db = database
    problems.install(app)
    for module in (
        health,
        auth,
        me,
        me_invitations,
        me_ssh_keys,
        me_alias_roles,
        me_aliases,
        impersonation,
        tenants,
        members,
        users,
        permissions,
        roles,
        grants,
        groups,
        authz,
        resource_types,
        resources,
        shared_resources,
        email_templates,
        trash,
        audit,
        settings_routes,
        docs,
    ):
        app.include_router(module.router)
    app.include_router(members.invitations_router)
    # The web console (server-rendered pages on the same services, engine and sign-in).
    app.include_router(console_sign_in.router)
    app.include_router(console_pages.router)
    app.include_router(console_members.router)
    app.include_router(console_users.router)
    app.include_router(console_audit.router)
    app.include_router(console_roles.router)
    app.include_router(console_api_keys.router)
    app.include_router(console_resources.router)
    app.mount("/static", StaticFiles(directory=docs.STATIC_DIR), name="static")
    app.state.unenforced = []
    # Inner guard for bodies without Content-Length (chunked); the outer middleware answers the
    # common case as problem+json before reading anything.
    app.add_middleware(RequestBodyLimitMiddleware, max_body_size=settings.max_body_bytes)
    app.add_middleware(
        RequestContextMiddleware, unenforced=app.state.unenforced, max_body=settings.max_body_bytes
    )
    return app


def _warn_if_rls_bypassed(db: Database) -> None:
    if db.dialect != "postgresql":
        return
    with db.engine.connect() as conn:
        if rls.role_bypasses_rls(conn):
            log.warning(
                "the database role bypasses row-level security (superuser or BYPASSRLS); "
                "connect as a plain role so RLS protects tenants"
            )

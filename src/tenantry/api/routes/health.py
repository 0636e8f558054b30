"""Liveness and readiness (public by design) and Prometheus metrics (allowed scrapers only)."""

from __future__ import annotations

import hmac
import ipaddress
import os

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from sqlalchemy import text
from starlette.exceptions import HTTPException

from tenantry.api.problems import problem
from tenantry.config import Settings
from tenantry.db import migrate

router = APIRouter(tags=["health"])
PUBLIC_PATHS = {"/healthz", "/livez", "/readyz", "/metrics"}


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/livez")
async def livez() -> dict[str, str]:
    """The process answers: no database, no dependencies, no thread-pool hop (`async`).

    Also the bare endpoint `bench/http.py` measures every route against, on the same server.
    """
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
def readyz(request: Request) -> dict[str, str] | Response:
    """Ready = database reachable and migrated to this code's head (a pending upgrade is not ready).

    Once the schema was seen at head the answer is remembered (migrations only move forward
    while the process runs), so later probes cost one `SELECT 1`.
    """
    state = request.app.state
    try:
        with state.db.engine.connect() as conn:
            if getattr(state, "schema_at_head", False):
                conn.execute(text("SELECT 1"))
            elif migrate.at_head(conn):
                state.schema_at_head = True
            else:
                return problem(
                    503,
                    "migrations_pending",
                    "the database is not migrated to this version; run `tenantry init` "
                    "(or `tenantry migrate`)",
                )
    except Exception as exc:  # any driver error means "not ready"
        return problem(503, "database_unavailable", f"database not reachable: {type(exc).__name__}")
    return {"status": "ready"}


@router.get(
    "/metrics",
    response_class=PlainTextResponse,  # documented as text
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text format"},
        404: {
            "content": {"application/problem+json": {}},
            "description": "Not an allowed scraper (the same answer as an unknown path)",
        },
    },
)
def metrics(request: Request) -> Response:
    if not metrics_allowed(request, request.app.state.settings):
        # 404, exactly like an unknown path: a scanner learns nothing, not even that it exists.
        raise HTTPException(404)
    return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)


def metrics_allowed(request: Request, settings: Settings) -> bool:
    """The metrics token (TENANTRY_METRICS_TOKEN) or a peer in TENANTRY_METRICS_ALLOW."""
    token = settings.metrics_token
    if token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), token.get_secret_value().encode()
        ):
            return True
    if "forwarded" in request.headers or "x-forwarded-for" in request.headers:
        # Relayed by a proxy: the peer address is the proxy's (often loopback), not the caller's.
        return False
    try:
        peer = ipaddress.ip_address(request.client.host if request.client else "")
    except ValueError:
        return False
    if isinstance(peer, ipaddress.IPv6Address) and peer.ipv4_mapped is not None:
        peer = peer.ipv4_mapped  # ::ffff:127.0.0.1 on a dual-stack socket
    return any(peer in network for network in settings.metrics_allow)


def _registry() -> CollectorRegistry:
    """Several worker processes (`tenantry serve --workers N`) write their samples to files in
    PROMETHEUS_MULTIPROC_DIR; the answer then sums all of them, whichever worker serves it."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY

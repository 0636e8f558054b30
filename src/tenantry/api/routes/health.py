"""Liveness, readiness and Prometheus metrics: public by design."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from tenantry.api.problems import problem
from tenantry.db import migrate

router = APIRouter(tags=["health"])
PUBLIC_PATHS = {"/healthz", "/readyz", "/metrics"}


@router.get("/healthz")
def healthz() -> dict[str, str]:
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


@router.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

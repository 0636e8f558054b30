"""Liveness, readiness and Prometheus metrics: public by design."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from tenantry.api.problems import problem

router = APIRouter(tags=["health"])
PUBLIC_PATHS = {"/healthz", "/readyz", "/metrics"}


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", response_model=None)
def readyz(request: Request) -> dict[str, str] | Response:
    try:
        with request.app.state.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not ready"
        return problem(503, "database_unavailable", f"database not reachable: {type(exc).__name__}")
    return {"status": "ready"}


@router.get("/metrics", response_class=PlainTextResponse)  # documented as text
def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

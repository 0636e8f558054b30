"""The baseline: a bare Starlette endpoint that returns a fixed JSON body.

Served by the same uvicorn settings as the real app (`bench._harness.Server`), so the ratio
app/bare measures what the application adds on top of the ASGI server and the HTTP parsing.
The body (a real `GET /api/v1/tenants/{slug}` response) is read from the file named by
TENANTRY_BENCH_BARE_BODY and serialised again per request, as a JSON endpoint would.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def create_app() -> Starlette:
    body = json.loads(Path(os.environ["TENANTRY_BENCH_BARE_BODY"]).read_bytes())

    async def tenant(_request: Request) -> Response:
        return JSONResponse(body)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/api/v1/tenants/{slug}", tenant), Route("/healthz", healthz)])

"""`/api/docs`: Swagger UI from the package's own files (works offline, no CDN).

FastAPI's built-in page loads its assets from a CDN and starts Swagger UI with an inline script;
this one serves the vendored `web/static/vendor/swagger-ui` and starts it from a served file, so
the page's Content-Security-Policy (`security_headers.PAGE_POLICY`) allows same-origin scripts only.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

STATIC_DIR = Path(__file__).resolve().parents[2] / "web" / "static"
SWAGGER = "/static/vendor/swagger-ui"

router = APIRouter(include_in_schema=False)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} - API docs</title>
<link rel="stylesheet" href="{root}{swagger}/swagger-ui.css">
<link rel="icon" type="image/png" href="{root}{swagger}/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{openapi_url}"></div>
<script src="{root}{swagger}/swagger-ui-bundle.js"></script>
<script src="{root}/static/docs/swagger-init.js"></script>
</body>
</html>
"""


@router.get("/api/docs", response_class=HTMLResponse)
def api_docs(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    return HTMLResponse(
        _PAGE.format(
            title=escape(request.app.title),
            root=escape(root),
            swagger=SWAGGER,
            openapi_url=escape(root + (request.app.openapi_url or "")),
        )
    )

"""Security headers on every response, whoever produced it (route, error handler, 404, static file).

Pure ASGI, wrapped around the whole application (outside Starlette's ServerErrorMiddleware, see
`api.app.TenantryAPI`), so a 500 carries the headers too.

- `X-Content-Type-Options: nosniff` — a JSON answer is never sniffed into script or HTML.
- `Content-Security-Policy` — JSON and other non-HTML answers get `default-src 'none'`: nothing
  may load from them if a browser renders one. HTML pages (the API docs today, the console later)
  get `PAGE_POLICY`: only same-origin scripts, styles and fetches, no inline script. Both forbid
  framing (`frame-ancestors 'none'`, clickjacking).
- `Referrer-Policy: no-referrer` — URLs (invitation and reset links carry tokens) never leak to
  another site.
- `Cache-Control: no-store` on everything except static assets: many API answers carry a session
  token, an API key, a TOTP secret or recovery codes, and the rest is tenant data; none of it may
  sit in a browser or proxy cache. Listing the credential-bearing routes one by one would miss the
  next one added; the API relies on ETag/If-Match for concurrency, not on caching, so nothing is
  lost.
- No `Server` header (uvicorn's own banner is switched off in `tenantry serve`).
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

API_POLICY: Mapping[str, str] = {
    "default-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'none'",
    "frame-ancestors": "'none'",
}
# For HTML pages: extend here (or pass another mapping) when the console needs more.
# `img-src data:` is for the icons Swagger UI's stylesheet embeds as data: URLs.
PAGE_POLICY: Mapping[str, str] = {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
# Paths whose answers hold no secret and may be cached (served files only).
CACHEABLE_PREFIXES = ("/static/",)


def render_policy(policy: Mapping[str, str]) -> str:
    return "; ".join(f"{directive} {value}" for directive, value in policy.items())


class SecurityHeadersMiddleware:
    """Set the headers above on every `http.response.start`."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_policy: Mapping[str, str] = API_POLICY,
        page_policy: Mapping[str, str] = PAGE_POLICY,
        cacheable_prefixes: tuple[str, ...] = CACHEABLE_PREFIXES,
    ) -> None:
        self.app = app
        self.api_csp = render_policy(api_policy)
        self.page_csp = render_policy(page_policy)
        self.cacheable_prefixes = cacheable_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = scope["path"].startswith(self.cacheable_prefixes)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                del headers["server"]
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "no-referrer"
                html = headers.get("content-type", "").startswith("text/html")
                headers["Content-Security-Policy"] = self.page_csp if html else self.api_csp
                if not cacheable:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)

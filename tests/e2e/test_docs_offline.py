"""The API docs page in a real browser with no way out: everything it needs comes from the app,
and it works under its own Content-Security-Policy (no inline script, no CDN)."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import uvicorn
from fastapi import FastAPI

pytestmark = pytest.mark.e2e

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_url(app: FastAPI) -> Iterator[str]:
    """The test app served by a real uvicorn (as `tenantry serve` runs it) in a thread."""
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", server_header=False)
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_docs_page_renders_offline_under_its_csp(live_url: str) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install -y chromium)")
    from playwright.sync_api import Route, expect, sync_playwright

    seen: list[str] = []
    left_loopback: list[str] = []
    csp_reports: list[str] = []

    def only_loopback(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("http", "https", "ws", "wss") and urlsplit(url).hostname not in LOOPBACK:
            left_loopback.append(url)
            route.abort()
        else:
            route.continue_()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", only_loopback)
            page.on("request", lambda request: seen.append(request.url))
            page.on(
                "console",
                lambda msg: csp_reports.append(msg.text) if "Content Security Policy" in msg.text else None,
            )
            response = page.goto(live_url + "/api/docs")
            assert response is not None and response.status == 200
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
            # Swagger UI fetched the OpenAPI document and rendered the operations. It renders the
            # tag sections as they scroll into view: scroll down until the tenants appear.
            expect(page.locator(".opblock").first).to_be_visible(timeout=20_000)
            operation = page.locator(".opblock-summary-path", has_text="/api/v1/tenants").first
            for _ in range(60):
                if operation.count():
                    break
                page.mouse.wheel(0, 2000)
                page.wait_for_timeout(250)
            operation.scroll_into_view_if_needed()
            expect(operation).to_be_visible(timeout=10_000)
            expect(page.locator(".opblock").first).to_be_visible()
            # Open one operation: its details render too (scripts work under the policy).
            operation.click()
            expect(page.locator(".opblock-body").first).to_be_visible(timeout=10_000)
        finally:
            browser.close()

    network = [u for u in seen if urlsplit(u).scheme in ("http", "https", "ws", "wss")]
    assert any(u.endswith("/api/v1/openapi.json") for u in network)
    assert any(u.endswith("/swagger-ui-bundle.js") for u in network)
    assert left_loopback == []
    assert [u for u in network if urlsplit(u).hostname not in LOOPBACK] == []
    assert csp_reports == []

"""/docs works offline: Swagger UI comes from the installed package, never from a CDN."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from .conftest import Browsing, LiveServer


def test_the_api_docs_render_from_this_server_alone(web: Browsing, server: LiveServer) -> None:
    page = web.page
    origins: set[str] = set()
    page.on("request", lambda r: origins.add(re.sub(r"^(\w+://[^/]+).*", r"\1", r.url)))
    page.goto(f"{server.url}/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    expect(page.locator(".opblock", has_text="/api/nano-banana/generate").first).to_be_visible()
    assert origins == {server.url}
    csp = page.evaluate("async () => (await fetch('/docs')).headers.get('content-security-policy')")
    assert "script-src 'self';" in csp and "unsafe-inline'; " not in csp.split("style-src")[0]

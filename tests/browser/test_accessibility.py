"""Every page checked with axe-core in Chromium, light and dark, desktop and phone: no serious
or critical violation (contrast, names, roles, landmarks...)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import expect

from .conftest import DESKTOP, PHONE, LiveServer, sign_in

pytestmark = pytest.mark.browser

BLOCKING = {"serious", "critical"}


@pytest.fixture(scope="module")
def account(demo_server: LiveServer) -> dict[str, Any]:
    username, token = demo_server.new_user("axe")
    first = demo_server.generate(token, prompt="a lighthouse at dusk", aspect_ratio="16:9")
    demo_server.generate(token, prompt="an otter reading", aspect_ratio="3:4", num_images=2)
    with demo_server.client(token) as c:
        session = c.post("/api/sessions", json={"title": "boats"}).json()["id"]
        c.post(f"/api/sessions/{session}/turns", json={"prompt": "a paper boat"})
    return {"username": username, "token": token, "generation": first["id"], "session": session}


def _ready(selector: str, attr: str | None = None, value: str = "true") -> Callable[[Any], None]:
    def wait(page: Any) -> None:
        locator = page.locator(selector).first
        if attr:
            expect(locator).to_have_attribute(attr, value)
        else:
            expect(locator).to_be_visible()

    return wait


def _open_viewer(page: Any) -> None:
    expect(page.locator(".tile.loaded").first).to_be_visible()
    page.locator(".tile").first.get_by_role("link").click()
    expect(page.locator("#viewer-facts dt").first).to_be_visible()


PAGES: list[tuple[str, Callable[[dict[str, Any]], str], bool, Callable[[Any], None]]] = [
    ("login", lambda a: "/login", False, _ready("#auth-form")),
    ("register", lambda a: "/register", False, _ready("#auth-form")),
    ("generator", lambda a: "/", True, _ready("#gen-form", "data-ready")),
    ("gallery", lambda a: "/gallery", True, _ready("#gallery", "data-loaded")),
    ("viewer", lambda a: "/gallery", True, _open_viewer),
    ("detail", lambda a: f"/gallery/{a['generation']}", True, _ready("#detail-params dt")),
    ("edit", lambda a: "/edit", True, _ready("#session-list li")),
    ("session", lambda a: f"/edit/{a['session']}", True, _ready("#stage-img[src^='blob:']")),
    ("settings", lambda a: "/settings", True, _ready("body", "data-ready")),
]


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_no_serious_violations(
    open_browser: Any,
    demo_server: LiveServer,
    account: dict[str, Any],
    viewport: dict[str, int],
    scheme: str,
) -> None:
    web = open_browser(viewport)
    page = web.page
    page.emulate_media(color_scheme=scheme)
    sign_in(page, demo_server, account["username"], account["token"])
    axe = Axe()
    found: dict[str, list[str]] = {}
    for name, path, signed_in, ready in PAGES:
        if not signed_in:
            page.evaluate("localStorage.clear()")
        else:
            sign_in(page, demo_server, account["username"], account["token"])
        page.goto(demo_server.url + path(account))
        ready(page)
        results = axe.run(page)
        for v in results.response["violations"]:
            if v["impact"] in BLOCKING:
                targets = [" ".join(map(str, n["target"])) for n in v["nodes"]][:5]
                found.setdefault(name, []).append(f"{v['id']} ({v['impact']}): {targets}")
    assert found == {}, found
    # The check itself works on these pages (their CSP lets it run): a nameless button is
    # found.
    page.evaluate("document.querySelector('main').append(document.createElement('button'))")
    flagged = {v["id"] for v in axe.run(page).response["violations"]}
    assert "button-name" in flagged

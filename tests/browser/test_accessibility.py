"""Every page checked with axe-core in Chromium, light and dark, desktop and phone: no serious
or critical violation (contrast, names, roles, landmarks...)."""

from __future__ import annotations

from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe

from .conftest import DESKTOP, PAGES, PHONE, LiveServer, sign_in

pytestmark = pytest.mark.browser

BLOCKING = {"serious", "critical"}


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_no_serious_violations(
    open_browser: Any,
    demo_server: LiveServer,
    site_account: dict[str, Any],
    viewport: dict[str, int],
    scheme: str,
) -> None:
    web = open_browser(viewport)
    page = web.page
    page.emulate_media(color_scheme=scheme)
    sign_in(page, demo_server, site_account["username"], site_account["token"])
    axe = Axe()
    found: dict[str, list[str]] = {}
    for name, path, signed_in, ready in PAGES:
        if not signed_in:
            page.evaluate("localStorage.clear()")
        else:
            sign_in(page, demo_server, site_account["username"], site_account["token"])
        page.goto(demo_server.url + path(site_account))
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

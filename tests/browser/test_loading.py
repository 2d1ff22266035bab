"""How the pages load: every module a page runs is named in its ``<link rel="modulepreload">``
list, so the browser fetches them all at once rather than one level of imports at a time.

Without the list, a module's fetch can only start once the module importing it has arrived;
with it, every fetch starts before the page's own script has finished arriving."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import DESKTOP, LiveServer, sign_in
from .test_accessibility import PAGES, account  # noqa: F401  (the fixture)

pytestmark = pytest.mark.browser

MODULES = """() => performance.getEntriesByType('resource')
    .filter(e => new URL(e.name).pathname.startsWith('/static/js/'))
    .map(e => [new URL(e.name).pathname, [e.startTime, e.responseEnd]])"""
PRELOADS = """() => [...document.querySelectorAll('link[rel=modulepreload]')]
    .map(l => new URL(l.href).pathname)"""


def test_every_module_is_preloaded(
    open_browser: Any,
    demo_server: LiveServer,
    account: dict[str, Any],  # noqa: F811
) -> None:
    page = open_browser(DESKTOP).page
    for name, path, _, ready in PAGES:
        sign_in(page, demo_server, account["username"], account["token"])
        page.goto(demo_server.url + path(account))
        ready(page)
        entry = page.evaluate("new URL(document.querySelector('script[type=module]').src).pathname")
        fetched = dict(page.evaluate(MODULES))
        preloaded = page.evaluate(PRELOADS)
        _, arrived = fetched.pop(entry)
        assert set(fetched) == set(preloaded), name
        late = {m: start for m, (start, _) in fetched.items() if start >= arrived}
        assert late == {}, (name, arrived, late)

"""How the pages load.

- Every module a page runs is named in its ``<link rel="modulepreload">`` list, so the browser
  fetches them all at once rather than one level of imports at a time. (Without the list, a
  module's fetch can only start once the module importing it has arrived; with it, every fetch
  starts before the page's own script has finished arriving.)
- Every static file is asked for at its version (``?v=``, imports too, through the page's
  import map, which its CSP allows by digest), and the next visit asks the service for none.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import DESKTOP, PAGES, LiveServer, sign_in

pytestmark = pytest.mark.browser

STATIC = """() => performance.getEntriesByType('resource')
    .filter(e => new URL(e.name).pathname.startsWith('/static/'))
    .map(e => [new URL(e.name).pathname, new URL(e.name).searchParams.get('v'),
               e.startTime, e.responseEnd, e.transferSize])"""
PRELOADS = """() => [...document.querySelectorAll('link[rel=modulepreload]')]
    .map(l => new URL(l.href).pathname)"""
ENTRY = "new URL(document.querySelector('script[type=module]:not([async])').src).pathname"


def test_modules_come_at_once_and_at_their_version(
    open_browser: Any,
    demo_server: LiveServer,
    site_account: dict[str, Any],
) -> None:
    page = open_browser(DESKTOP).page
    timed = 0
    for name, path, _, ready in PAGES:
        sign_in(page, demo_server, site_account["username"], site_account["token"])
        page.goto(demo_server.url + path(site_account))
        ready(page)
        static = page.evaluate(STATIC)
        unversioned = [p for p, version, *_ in static if not version]
        assert unversioned == [], name
        modules = {p: (start, end, size) for p, _, start, end, size in static if "/js/" in p}
        _, arrived, entry_size = modules.pop(page.evaluate(ENTRY))
        assert set(modules) == set(page.evaluate(PRELOADS)), name
        # (What an earlier page left in the cache arrives at once; the rest is timed.)
        late = {m: s for m, (s, _, size) in modules.items() if size and s >= arrived}
        assert not entry_size or late == {}, (name, arrived, late)
        timed += sum(1 for *_, size in modules.values() if size) if entry_size else 0
    assert timed >= 5  # the gallery's, the generator's... were fetched and timed

    # Coming back: nothing static is asked for again (all from the browser's cache).
    for name, path, _, ready in PAGES:
        sign_in(page, demo_server, site_account["username"], site_account["token"])
        page.goto(demo_server.url + path(site_account))
        ready(page)
        fetched = {p: size for p, _, _, _, size in page.evaluate(STATIC) if size}
        assert fetched == {}, name


def test_a_static_file_is_kept_for_good_only_at_its_current_version(
    demo_server: LiveServer,
) -> None:
    with demo_server.client(None) as c:
        page = c.get("/gallery").text
        start = page.index("/static/js/api.js?v=")
        versioned = page[start : page.index('"', start)]
        assert c.get(versioned).headers["cache-control"] == "public, max-age=31536000, immutable"
        for url in ("/static/js/api.js", "/static/js/api.js?v=0123456789abcdef"):
            r = c.get(url)
            assert r.status_code == 200 and r.headers["cache-control"] == "no-cache", url
        assert c.get("/static/js/no-such.js?v=1").status_code == 404

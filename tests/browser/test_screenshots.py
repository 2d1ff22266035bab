"""Every page at desktop and phone width: screenshots for the docs, and the checks a person would
make looking at them (nothing wider than the screen, every control labelled, no secret shown).

``make screenshots`` runs only this file with NANOBANANA_SCREENSHOTS_DIR=docs/screenshots.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import expect

from .conftest import DESKTOP, OPENROUTER_KEY, PHONE, Browsing, LiveServer, sign_in

pytestmark = pytest.mark.browser

FOCUSED = "document.activeElement.id || document.activeElement.textContent.trim()"
FORM_CONTROLS = (
    "prompt",
    "negative_prompt",
    "provider",
    "model",
    "aspect_ratio",
    "image_size",
    "num_images",
    "ref-pick",
)
#: Every form control has a label (a <label for>, a wrapping label or aria-label).
UNLABELLED = """() => [...document.querySelectorAll("input, select, textarea")]
    .filter(e => e.type !== "hidden" && !e.hidden && e.offsetParent !== null)
    .filter(e => !(e.labels && e.labels.length) && !e.getAttribute("aria-label")
                 && !e.getAttribute("aria-labelledby"))
    .map(e => e.id || e.name || e.outerHTML.slice(0, 80))"""


@pytest.fixture(scope="module")
def account(demo_server: LiveServer) -> dict[str, Any]:
    """A demo user (no key of their own: synthetic images) with a few generations to show."""
    username, token = demo_server.new_user("lena")
    for prompt, ratio in (
        ("a watercolor lighthouse shaped like a banana at dusk", "16:9"),
        ("an otter reading a newspaper, studio portrait", "3:4"),
        ("a tiny greenhouse on a windowsill, morning light", "1:1"),
    ):
        last = demo_server.generate(token, prompt=prompt, aspect_ratio=ratio)
    with demo_server.client(token) as c:
        session = c.post("/api/sessions", json={}).json()["id"]
        for instruction in ("a paper boat on a pond", "make the boat red"):
            c.post(f"/api/sessions/{session}/turns", json={"prompt": instruction})
    return {"username": username, "token": token, "generation": last["id"], "session": session}


def _check_page(web: Browsing, viewport: dict[str, int], secrets: list[str]) -> None:
    page = web.page
    assert page.evaluate(UNLABELLED) == [], "every form control needs a label"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= viewport["width"], f"page is {width}px wide on a {viewport['width']}px screen"
    html = page.content()
    for secret in secrets:
        assert secret not in html


def _shoot(page: Any, folder: Path, name: str, viewport: dict[str, int]) -> None:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    with Image.open(path) as im:
        assert im.size == (viewport["width"], viewport["height"])
        assert len(set(im.convert("L").getdata())) > 8, "the screenshot is blank"


PAGES: list[tuple[str, str, Callable[[Any], None]]] = [
    ("login", "/login", lambda p: expect(p.get_by_label("Username")).to_be_focused()),
    ("register", "/register", lambda p: expect(p.get_by_label("Username")).to_be_focused()),
    (
        "settings",
        "/settings",
        lambda p: expect(p.locator("#defaults-form")).to_have_attribute("data-ready", "true"),
    ),
    (
        "gallery",
        "/gallery",
        lambda p: expect(p.locator(".tile:not(.loaded)")).to_have_count(0),
    ),
]


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_page_screenshots(
    open_browser: Any,
    demo_server: LiveServer,
    account: dict[str, Any],
    screenshot_dir: Path,
    viewport: dict[str, int],
    scheme: str,
) -> None:
    suffix = ("desktop" if viewport is DESKTOP else "phone") + ("-dark" if scheme == "dark" else "")
    web: Browsing = open_browser(viewport)
    page = web.page
    page.emulate_media(color_scheme=scheme)
    secrets = [account["token"], OPENROUTER_KEY]
    for name, path, ready in PAGES[:2]:
        page.goto(demo_server.url + path)
        ready(page)
        _check_page(web, viewport, secrets)
        _shoot(page, screenshot_dir, f"{name}-{suffix}", viewport)

    sign_in(page, demo_server, account["username"], account["token"])
    for name, path, ready in PAGES[2:]:
        page.goto(demo_server.url + path)
        ready(page)
        _check_page(web, viewport, secrets)
        _shoot(page, screenshot_dir, f"{name}-{suffix}", viewport)

    page.goto(f"{demo_server.url}/gallery/{account['generation']}")
    expect(page.locator(".detail-figure img")).to_have_js_property("complete", True)
    _check_page(web, viewport, secrets)
    _shoot(page, screenshot_dir, f"detail-{suffix}", viewport)

    # The viewer, opened from the gallery, with what made the image beside it.
    page.goto(f"{demo_server.url}/gallery")
    expect(page.locator(".tile.loaded").first).to_be_visible()
    page.locator(".tile").first.get_by_role("link").click()
    expect(page.locator("#viewer-facts dt").first).to_be_visible()
    expect(page.locator("#viewer-img")).to_have_js_property("complete", True)
    _shoot(page, screenshot_dir, f"viewer-{suffix}", viewport)

    page.goto(f"{demo_server.url}/edit/{account['session']}")
    expect(page.locator("#stage-img")).to_have_js_property("complete", True)
    expect(page.locator("#turn-tree .turn")).to_have_count(2)
    _check_page(web, viewport, secrets)
    _shoot(page, screenshot_dir, f"edit-{suffix}", viewport)

    # The generator, mid-way through nothing: the form; then with a result on screen.
    page.goto(f"{demo_server.url}/")
    expect(page.locator("#gen-form")).to_have_attribute("data-ready", "true")
    _check_page(web, viewport, secrets)
    page.get_by_label("Prompt", exact=True).fill(
        f"a paper boat on a puddle, city reflections {uuid.uuid4().hex[:4]}"
    )
    page.get_by_label("Aspect ratio").select_option("16:9")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator(".result").first).to_have_attribute("data-loaded", "true", timeout=30_000)
    _check_page(web, viewport, secrets)
    if viewport is PHONE:
        page.locator(".result").first.scroll_into_view_if_needed()
    else:
        page.evaluate("window.scrollTo(0, 0)")
    _shoot(page, screenshot_dir, f"generator-{suffix}", viewport)


def test_keyboard_focus_order_on_the_generator(
    open_browser: Any, demo_server: LiveServer, account: dict[str, Any]
) -> None:
    web: Browsing = open_browser(DESKTOP)
    page = web.page
    sign_in(page, demo_server, account["username"], account["token"])
    page.goto(f"{demo_server.url}/")
    expect(page.locator("#gen-form")).to_have_attribute("data-ready", "true")
    page.locator("body").focus()
    order = []
    for _ in range(20):
        page.keyboard.press("Tab")
        order.append(page.evaluate(FOCUSED))
    # Skip link, header, then the form top to bottom.
    assert order[0] == "Skip to content"
    assert [x for x in order if x in FORM_CONTROLS] == list(FORM_CONTROLS)

"""The image viewer from the gallery: zoom, pan, fit and 1:1, previous and next with the arrow
keys, what made the image beside it, copy prompt, the links onwards, focus back on close; and
"Continue editing", which starts an editing session from the image."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import OPENROUTER_KEY, Browsing, LiveServer, sign_in

pytestmark = pytest.mark.browser


def _scale(page: object) -> float:
    return float(page.locator("#viewer").get_attribute("data-scale") or "nan")  # type: ignore[attr-defined]


def test_the_viewer_zooms_pans_steps_and_tells_what_made_the_image(
    web: Browsing, server: LiveServer
) -> None:
    page = web.page
    web.context.grant_permissions(["clipboard-read", "clipboard-write"])
    username, token = server.new_user("viewer")
    server.save_key(token, "openrouter", OPENROUTER_KEY)
    fox = server.generate(token, prompt="a fox in the fog", aspect_ratio="16:9", num_images=2)
    whale = server.generate(token, prompt="a whale", image_size="0.5K")
    with server.client(token) as c:
        items = c.get("/api/images").json()["items"]
    assert [i["generation_id"] for i in items] == [whale["id"], fox["id"], fox["id"]]
    sign_in(page, server, username, token)
    page.goto(f"{server.url}/gallery")
    tiles = page.locator(".tile")
    expect(tiles).to_have_count(3)

    opener = tiles.nth(1).get_by_role("link")
    opener.click()
    viewer = page.locator("#viewer")
    expect(viewer).to_be_visible()
    expect(viewer).to_have_attribute("data-image-id", items[1]["id"])
    expect(page.locator("#viewer-position")).to_have_text("2 / 3")
    expect(page.locator("#viewer-title")).to_have_text("a fox in the fog")
    expect(page.locator("#viewer-dims")).to_have_text(
        f"{items[1]['width']}×{items[1]['height']} pixels"
    )
    facts = page.locator("#viewer-facts")
    expect(facts).to_contain_text("16:9")
    expect(facts).to_contain_text("OpenRouter")
    expect(facts).to_contain_text(fox["id"])

    # Fit: the whole image on the stage, smaller than its pixels.
    expect(page.locator("#viewer-fit")).to_have_attribute("aria-pressed", "true")
    fitted = _scale(page)
    assert 0 < fitted < 1
    stage = page.locator("#viewer-stage").bounding_box()
    img = page.locator("#viewer-img").bounding_box()
    assert stage and img
    assert img["width"] <= stage["width"] + 1 and img["height"] <= stage["height"] + 1
    assert abs(img["width"] / img["height"] - items[1]["width"] / items[1]["height"]) < 0.02

    # 1:1, then drag: the image moves with the pointer.
    page.keyboard.press("1")
    expect(page.locator("#viewer-scale")).to_have_text("100%")
    expect(page.locator("#viewer-actual")).to_have_attribute("aria-pressed", "true")
    before = page.locator("#viewer-img").bounding_box()
    assert before
    cx, cy = stage["x"] + stage["width"] / 2, stage["y"] + stage["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down()
    page.mouse.move(cx + 60, cy + 20, steps=4)
    page.mouse.up()
    after = page.locator("#viewer-img").bounding_box()
    assert after and after["x"] > before["x"] and after["width"] == before["width"]
    # Zoom: the key and the wheel.
    page.keyboard.press("+")
    expect(page.locator("#viewer-scale")).to_have_text("125%")
    page.mouse.move(cx, cy)
    page.mouse.wheel(0, 300)
    page.wait_for_function("Number(document.querySelector('#viewer').dataset.scale) < 1.2")
    page.keyboard.press("0")
    assert _scale(page) == pytest.approx(fitted)

    # Next and previous with the arrow keys; the record follows the image.
    page.keyboard.press("ArrowRight")
    expect(viewer).to_have_attribute("data-image-id", items[2]["id"])
    expect(page.locator("#viewer-position")).to_have_text("3 / 3")
    expect(page.locator("#viewer-next")).to_be_disabled()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    expect(viewer).to_have_attribute("data-image-id", items[0]["id"])
    expect(page.locator("#viewer-title")).to_have_text("a whale")
    expect(facts).to_contain_text(whale["id"])

    # Copy prompt, and the ways onwards.
    page.get_by_role("button", name="Copy prompt").click()
    expect(page.locator("#viewer-status")).to_have_text("Prompt copied.")
    assert page.evaluate("navigator.clipboard.readText()") == "a whale"
    image = items[0]["id"]
    expect(viewer.get_by_role("link", name="Use as reference")).to_have_attribute(
        "href", f"/?ref={image}"
    )
    expect(viewer.get_by_role("link", name="Remix")).to_have_attribute(
        "href", f"/?remix={whale['id']}"
    )
    expect(viewer.get_by_role("link", name="Continue editing")).to_have_attribute(
        "href", f"/edit?image={image}"
    )
    expect(viewer.get_by_role("link", name="Download")).to_have_attribute(
        "href", re.compile("^blob:")
    )

    # Escape closes it, and focus is back on the tile that opened it.
    page.keyboard.press("Escape")
    expect(viewer).to_be_hidden()
    expect(opener).to_be_focused()


def test_continue_editing_starts_a_session_from_the_image(
    web: Browsing, server: LiveServer, emulator: Any
) -> None:
    page = web.page
    username, token = server.new_user("continue")
    server.save_key(token, "openrouter", OPENROUTER_KEY)
    server.generate(token, prompt="a red barn", model="gemini-3-pro-image")
    with server.client(token) as c:
        image = c.get("/api/images").json()["items"][0]
    sign_in(page, server, username, token)
    page.goto(f"{server.url}/gallery")
    page.locator(".tile").first.get_by_role("link").click()
    page.locator("#viewer").get_by_role("link", name="Continue editing").click()
    page.wait_for_url(re.compile(rf"/edit\?image={image['id']}$"))
    expect(page.locator("#start-from-img")).to_have_js_property("complete", True)
    page.get_by_role("button", name="New session").click()
    page.wait_for_url(re.compile(rf"/edit/[0-9a-f]{{32}}\?image={image['id']}$"))
    session_id = page.url.split("/edit/")[1].split("?")[0]
    expect(page.locator("#continues")).to_have_text("Starts a new first turn from the image shown.")
    expect(page.locator("#stage-img")).to_have_attribute("src", re.compile("^blob:"))
    page.get_by_label("Next instruction").fill("paint it blue")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#turn-tree .turn", has_text="paint it blue")).to_have_attribute(
        "aria-pressed", "true", timeout=30_000
    )
    assert page.url.endswith(f"/edit/{session_id}")  # a reload continues the session
    with server.client(token) as c:
        tree = c.get(f"/api/sessions/{session_id}").json()
    [turn] = tree["turns"]
    assert turn["status"] == "succeeded" and len(turn["request"]["images"]) == 1
    # The first turn sent the gallery image, byte for byte, with the instruction.
    [sent] = [r for r in emulator.requests() if "paint it blue" in json.dumps(r.get("body"))]
    urls = [
        part["image_url"]["url"]
        for message in sent["body"]["messages"]
        if isinstance(message["content"], list)
        for part in message["content"]
        if part.get("type") == "image_url"
    ]
    # (The emulator records an image as its length and the start of its bytes' sha256.)
    assert len(urls) == 1 and f"sha256:{image['sha256'][:12]}>" in urls[0]


def test_a_favourite_from_the_viewer_shows_on_its_tile(web: Browsing, server: LiveServer) -> None:
    page = web.page
    username, token = server.new_user("star")
    server.save_key(token, "openrouter", OPENROUTER_KEY)
    server.generate(token, prompt="a heron", image_size="0.5K", num_images=2)
    sign_in(page, server, username, token)
    page.goto(f"{server.url}/gallery")
    tiles = page.locator(".tile")
    expect(tiles).to_have_count(2)
    tiles.first.get_by_role("link").click()
    star = page.locator("#viewer").get_by_role("button", name="Favourite")
    expect(star).to_have_attribute("aria-pressed", "false")
    star.click()
    expect(star).to_have_attribute("aria-pressed", "true")
    expect(tiles.first).to_have_attribute("data-favourite", "true")
    expect(page.locator("#f-favourite-count")).to_have_text("(1)")
    # F on the next image; the first keeps its star when we come back.
    page.keyboard.press("ArrowRight")
    expect(star).to_have_attribute("aria-pressed", "false")
    page.keyboard.press("f")
    expect(star).to_have_attribute("aria-pressed", "true")
    expect(tiles.nth(1)).to_have_attribute("data-favourite", "true")
    page.keyboard.press("ArrowLeft")
    expect(star).to_have_attribute("aria-pressed", "true")
    star.click()
    expect(tiles.first).to_have_attribute("data-favourite", "false")
    with server.client(token) as c:
        favourites = c.get("/api/images", params={"favourite": "true"}).json()["items"]
        record = c.get(f"/api/generations/{favourites[0]['generation_id']}").json()
    assert [i["index"] for i in favourites] == [1]
    assert [i["favourite"] for i in record["images"]] == [False, True]


def _touch(cdp: Any, kind: str, points: list[tuple[float, float]]) -> None:
    cdp.send(
        "Input.dispatchTouchEvent",
        {
            "type": kind,
            "touchPoints": [{"x": x, "y": y, "id": i} for i, (x, y) in enumerate(points)],
        },
    )


def test_pinch_zooms_and_a_swipe_steps_on_a_touch_screen(browser: Any, server: LiveServer) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True
    )
    try:
        page = context.new_page()
        username, token = server.new_user("pinch")
        server.save_key(token, "openrouter", OPENROUTER_KEY)
        server.generate(token, prompt="a kite", aspect_ratio="1:1", num_images=2)
        sign_in(page, server, username, token)
        page.goto(f"{server.url}/gallery")
        expect(page.locator(".tile")).to_have_count(2)
        page.locator(".tile").first.get_by_role("link").click()
        expect(page.locator("#viewer-position")).to_have_text("1 / 2")
        # The image is in and fitted (the dimensions are written in the same step as the fit).
        expect(page.locator("#viewer-dims")).to_have_text(re.compile(r"^\d+×\d+ pixels$"))
        expect(page.locator("#viewer-fit")).to_have_attribute("aria-pressed", "true")
        fitted = _scale(page)
        assert 0 < fitted < 1
        box = page.locator("#viewer-stage").bounding_box()
        cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        cdp = context.new_cdp_session(page)

        # Two fingers 60 px apart move to 180 px apart: three times the scale, about the
        # midpoint (the image point under it stays under it).
        _touch(cdp, "touchStart", [(cx - 30, cy), (cx + 30, cy)])
        for d in (45, 60, 75, 90):
            _touch(cdp, "touchMove", [(cx - d, cy), (cx + d, cy)])
        _touch(cdp, "touchEnd", [])
        assert _scale(page) == pytest.approx(3 * fitted, rel=0.02)
        expect(page.locator("#viewer-fit")).to_have_attribute("aria-pressed", "false")
        img = page.locator("#viewer-img").bounding_box()
        assert img["x"] + img["width"] / 2 == pytest.approx(cx, abs=2)
        expect(page.locator("#viewer-position")).to_have_text("1 / 2")  # a pinch is no swipe

        # Zoomed in, a one-finger drag pans (and does not step).
        _touch(cdp, "touchStart", [(cx, cy)])
        _touch(cdp, "touchMove", [(cx - 40, cy)])
        _touch(cdp, "touchMove", [(cx - 80, cy)])
        _touch(cdp, "touchEnd", [])
        moved = page.locator("#viewer-img").bounding_box()
        assert moved["x"] == pytest.approx(img["x"] - 80, abs=2)
        expect(page.locator("#viewer-position")).to_have_text("1 / 2")

        # At fit, a swipe to the left shows the next image.
        page.locator("#viewer-fit").click()
        _touch(cdp, "touchStart", [(cx + 80, cy)])
        for x in (40, 0, -40, -80):
            _touch(cdp, "touchMove", [(cx + x, cy + 5)])
        _touch(cdp, "touchEnd", [])
        expect(page.locator("#viewer-position")).to_have_text("2 / 2")
    finally:
        context.close()

"""The generator as a workspace: several generations at once shown live, recent images beside
the form, prompt history, settings brought back from a PNG (nanobanana's provenance and A1111
infotext, chosen or dropped), remix showing its source, and each image's text apart."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import OPENROUTER_KEY, PHONE, Browsing, LiveServer, open_generator

pytestmark = pytest.mark.browser


def test_queued_generations_recent_images_and_prompt_history(
    web: Browsing, server: LiveServer
) -> None:
    page = web.page
    _, token = open_generator(page, server, "queue", {"openrouter": OPENROUTER_KEY})
    prompt = page.get_by_label("Prompt", exact=True)
    prompt.fill("a slow sunrise [emulator:latency:3]")
    prompt.press("Enter")
    expect(page.locator("#progress-state")).to_have_text(re.compile("Queued|Running|Starting"))
    # A second one while the first runs: queued, and followed in a line of its own.
    prompt.fill("a quick sketch of a cat")
    prompt.press("Enter")
    queued = page.locator("#queue .queued")
    expect(queued).to_have_count(1)
    expect(queued).to_contain_text("a quick sketch of a cat")
    expect(queued).to_have_attribute("data-status", "succeeded", timeout=30_000)
    expect(queued.locator(".queued-state")).to_contain_text("Done in")
    expect(queued.locator("img")).to_have_count(1)
    expect(page.locator("#progress-state")).to_contain_text("Done in", timeout=30_000)
    expect(page.locator("#results .result")).to_have_count(1)
    # Both are among the recent images; one opens in the viewer.
    recent = page.locator("#recent li")
    expect(recent).to_have_count(2)
    recent.first.get_by_role("button").click()
    expect(page.locator("#viewer")).to_be_visible()
    page.keyboard.press("Escape")
    # The queued one opens from its line too.
    queued.get_by_role("button").first.click()
    expect(page.locator("#viewer-title")).to_have_text("a quick sketch of a cat")
    page.keyboard.press("Escape")

    # Prompt history, from the service (so after a reload too): ↑ steps back, ↓ forward.
    page.reload()
    expect(page.locator("#gen-form")).to_have_attribute("data-ready", "true")
    page.locator("#history summary").click()
    items = page.locator("#history-list button")
    expect(items).to_have_text(["a quick sketch of a cat", "a slow sunrise [emulator:latency:3]"])
    prompt.fill("")
    prompt.press("ArrowUp")
    expect(prompt).to_have_value("a quick sketch of a cat")
    prompt.press("ArrowUp")
    expect(prompt).to_have_value("a slow sunrise [emulator:latency:3]")
    prompt.press("ArrowDown")
    expect(prompt).to_have_value("a quick sketch of a cat")
    items.nth(1).click()
    expect(prompt).to_have_value("a slow sunrise [emulator:latency:3]")
    with server.client(token) as c:
        assert len(c.get("/api/images").json()["items"]) == 2


def _a1111_png(text: str) -> bytes:
    from PIL import Image, PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    buf = io.BytesIO()
    Image.new("RGB", (64, 40), (10, 20, 30)).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def test_settings_come_back_from_a_png(web: Browsing, server: LiveServer, tmp_path: Path) -> None:
    page = web.page
    _, token = open_generator(page, server, "restore", {"openrouter": OPENROUTER_KEY})
    made = server.generate(
        token,
        prompt="a paper boat on a pond",
        negative_prompt="people",
        model="gemini-3-pro-image",
        aspect_ratio="4:3",
        seed=77,
    )
    with server.client(token) as c:
        png = c.get(made["image_urls"][0]).content
    ours = tmp_path / "boat.png"
    ours.write_bytes(png)

    # nanobanana's own provenance, chosen with the button.
    page.set_input_files("#restore-input", str(ours))
    status = page.locator("#restore-status")
    expect(status).to_contain_text("Restored from boat.png: its nanobanana settings")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a paper boat on a pond")
    expect(page.get_by_label("Negative prompt")).to_have_value("people")
    expect(page.get_by_label("Model", exact=True)).to_have_value("gemini-3-pro-image")
    expect(page.get_by_label("Aspect ratio")).to_have_value("4:3")
    expect(page.get_by_label("Seed")).to_have_value("77")

    # A1111 infotext, dropped on the prompt: its pixel size becomes the nearest ratio; its
    # model is not one of ours, and the page says so.
    infotext = (
        "a castle on a hill\nNegative prompt: fog, rain\n"
        "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 1344x768, "
        'Model: sd_xl_base, Lora hashes: "a: 1, b: 2"'
    )
    data = base64.b64encode(_a1111_png(infotext)).decode()
    transfer = page.evaluate_handle(
        "(b64) => { const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));"
        " const t = new DataTransfer();"
        " t.items.add(new File([bytes], 'castle.png', {type: 'image/png'})); return t; }",
        data,
    )
    page.locator("#prompt").dispatch_event("drop", {"dataTransfer": transfer})
    expect(status).to_contain_text("Restored from castle.png: its A1111 settings")
    expect(status).to_contain_text("sd_xl_base")
    expect(status).to_contain_text("1344×768 became 16:9")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a castle on a hill")
    expect(page.get_by_label("Negative prompt")).to_have_value("fog, rain")
    expect(page.get_by_label("Seed")).to_have_value("1234")
    expect(page.get_by_label("Aspect ratio")).to_have_value("16:9")
    expect(page.locator("#ref-list li")).to_have_count(0)  # not taken as a reference

    # A PNG without settings, and a file that is no PNG, change nothing and say why.
    bare = tmp_path / "bare.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(bare)
    page.set_input_files("#restore-input", str(bare))
    expect(status).to_contain_text("bare.png carries no settings")
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    page.set_input_files("#restore-input", str(text))
    expect(status).to_contain_text("notes.png is not a PNG")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a castle on a hill")


def test_remix_shows_its_source_and_texts_stay_apart(web: Browsing, server: LiveServer) -> None:
    page = web.page
    _, token = open_generator(page, server, "remixsrc", {"openrouter": OPENROUTER_KEY})
    made = server.generate(token, prompt="a lantern in the dark", model="gemini-3-pro-image")
    page.goto(f"{server.url}/?remix={made['id']}")
    expect(page.locator("#gen-form")).to_have_attribute("data-ready", "true")
    source = page.locator("#remix-source")
    expect(source).to_be_visible()
    expect(source).to_contain_text("Remixing “a lantern in the dark”")
    expect(page.locator("#remix-img")).to_have_js_property("complete", True)
    expect(page.get_by_label("Prompt", exact=True)).to_have_value("a lantern in the dark")
    page.get_by_role("button", name="Start afresh").click()
    expect(source).to_be_hidden()
    assert "remix=" not in page.url

    # Two images, each with the model's text: two paragraphs, each saying which image.
    page.get_by_label("Images", exact=True).select_option("2")
    page.get_by_label("Prompt", exact=True).fill("two owls")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#results .result")).to_have_count(2, timeout=30_000)
    parts = page.locator("#stream-text .stream-part")
    expect(parts).to_have_count(2)
    expect(parts.nth(0)).to_have_attribute("data-label", "Image 1")
    expect(parts.nth(1)).to_have_attribute("data-label", "Image 2")
    expect(parts.nth(0)).to_have_text(re.compile("two owls"))


def test_on_a_phone_the_result_lands_in_view(open_browser: Any, demo_server: LiveServer) -> None:
    """A phone in demo mode: the header and the demo notice leave most of the first screen to
    the page, and the first result is scrolled into view when it arrives."""
    web = open_browser(PHONE)
    page = web.page
    open_generator(page, demo_server, "phone")
    expect(page.locator("#demo-notice")).to_be_visible()
    top = page.evaluate("document.querySelector('main').getBoundingClientRect().top")
    assert top <= 120, f"the header and the notice take {top}px of a {PHONE['height']}px screen"
    page.get_by_label("Prompt", exact=True).fill("a tall cactus at noon")
    page.get_by_role("button", name="Generate").click()
    result = page.locator(".result").first
    expect(result).to_have_attribute("data-loaded", "true", timeout=30_000)
    expect(result).to_be_in_viewport()

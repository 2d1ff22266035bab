"""The generator in a real browser: the happy path, then every error path the page explains."""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
import uuid
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import expect

from .conftest import (
    GOOGLE_KEY,
    OPENROUTER_KEY,
    PASSWORD,
    PHONE,
    Browsing,
    LiveServer,
    open_generator,
    sign_in,
)

pytestmark = pytest.mark.browser


def _page_sha256(page, selector: str) -> str:
    """SHA-256 of the bytes an <img> on the page really shows (its blob: URL)."""
    return page.eval_on_selector(
        selector,
        """async (img) => {
            const buf = await (await fetch(img.src)).arrayBuffer();
            const digest = await crypto.subtle.digest("SHA-256", buf);
            const hex = b => b.toString(16).padStart(2, "0");
            return Array.from(new Uint8Array(digest), hex).join("");
        }""",
    )


def test_register_save_key_generate_gallery_remix(web: Browsing, server: LiveServer) -> None:
    page = web.page
    username = f"ada-{uuid.uuid4().hex[:6]}"
    # A third of a second upstream: the clock shown must have run (an answer within 50 ms
    # would read "0.0 s", the same as a clock that never started).
    prompt = (
        f"a lighthouse shaped like a banana at dusk {uuid.uuid4().hex[:6]} [emulator:latency:0.3]"
    )

    # Register with the keyboard only: Enter submits the form.
    page.goto(f"{server.url}/register")
    expect(page.get_by_label("Username")).to_be_focused()
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/settings\?welcome=1$"))
    expect(page.locator("#account-name")).to_have_text(username)
    expect(page.locator("#me-name")).to_have_text(username)

    # Save an OpenRouter key: it is shown masked, and the secret is not left in the page.
    expect(page.locator("#key-openrouter-state")).to_have_text("No key saved.")
    page.get_by_label("New OpenRouter key").fill(OPENROUTER_KEY)
    page.locator("#key-openrouter").get_by_role("button", name="Save").click()
    expect(page.locator("#key-openrouter-message")).to_have_text("OpenRouter key saved.")
    expect(page.locator("#key-openrouter-state")).to_contain_text(OPENROUTER_KEY[-4:])
    assert OPENROUTER_KEY not in page.content()
    assert page.get_by_label("New OpenRouter key").input_value() == ""
    page.locator("#key-openrouter").get_by_role("button", name="Test").click()
    expect(page.locator("#key-openrouter-message")).to_contain_text("works")

    # Generate a 16:9 image from the generator page.
    nav = page.get_by_role("navigation", name="Main")
    nav.get_by_role("link", name="Generate").click()
    page.wait_for_url(f"{server.url}/")
    expect(page.locator("#gen-form")).to_have_attribute("data-ready", "true")
    expect(page.get_by_label("Provider")).to_have_value("openrouter")
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_label("Negative prompt").fill("fog")
    page.get_by_label("Aspect ratio").select_option("16:9")
    page.get_by_label("Prompt", exact=True).press("Enter")

    expect(page.locator("#progress")).to_be_visible()
    card = page.locator(".result").first
    expect(card).to_have_attribute("data-loaded", "true", timeout=30_000)
    expect(page.locator("#progress-state")).to_contain_text("Done")
    expect(page.locator("#attempts .attempt-ok")).to_have_count(1)
    assert page.locator("#elapsed").inner_text() != "0.0 s"

    img = card.locator("img")
    size = img.evaluate("i => [i.naturalWidth, i.naturalHeight]")
    assert size == [1344, 768]
    expect(card.locator(".dims")).to_have_text("1344×768")

    # The bytes behind the picture are the stored image: a real 1344x768 PNG.
    image_id = card.get_attribute("data-image-id")
    token = page.evaluate("localStorage.getItem('token')")
    with server.client(token) as c:
        r = c.get(f"/api/images/{image_id}")
    assert r.status_code == 200
    assert r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).size == (1344, 768)
    assert (
        _page_sha256(page, f'.result[data-image-id="{image_id}"] img')
        == hashlib.sha256(r.content).hexdigest()
    )
    assert token not in page.content() and OPENROUTER_KEY not in page.content()

    # Full-size view opens in a dialog and closes with Escape.
    card.get_by_role("button", name="Full size", exact=True).click()
    expect(page.locator("#viewer")).to_be_visible()
    expect(page.locator("#viewer-download")).to_have_attribute("href", re.compile("^blob:"))
    page.keyboard.press("Escape")
    expect(page.locator("#viewer")).to_be_hidden()

    # It is in the gallery, and its detail view lists the parameters.
    nav.get_by_role("link", name="Gallery").click()
    entry = page.locator(".tile", has=page.get_by_role("link", name=re.compile(re.escape(prompt))))
    expect(entry).to_have_count(1)
    expect(entry.locator("img")).to_have_js_property("complete", True)
    entry.get_by_role("link").click()
    page.locator("#viewer").get_by_role("link", name="All details").click()
    page.wait_for_url(re.compile(r"/gallery/[0-9a-f]+$"))
    params = page.locator("#detail-params")
    expect(params).to_contain_text("16:9")
    expect(params).to_contain_text("fog")
    expect(params).to_contain_text("OpenRouter")
    expect(page.locator("#detail-attempts .attempt")).to_have_count(1)
    expect(page.locator(".detail-figure img")).to_have_js_property("naturalWidth", 1344)

    # Remix puts every parameter back into the generator.
    page.get_by_role("link", name="Remix").click()
    page.wait_for_url(re.compile(r"/\?remix="))
    expect(page.locator("#gen-form")).to_have_attribute("data-ready", "true")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value(prompt)
    expect(page.get_by_label("Negative prompt")).to_have_value("fog")
    expect(page.get_by_label("Provider")).to_have_value("openrouter")
    expect(page.get_by_label("Aspect ratio")).to_have_value("16:9")
    expect(page.get_by_label("Size", exact=True)).to_have_value("1K")
    expect(page.get_by_label("Images", exact=True)).to_have_value("1")
    expect(page.get_by_label("Model", exact=True)).not_to_have_value("")


def test_no_key_points_to_settings(web: Browsing, server: LiveServer) -> None:
    page = web.page
    web.console.allow(r"status of 400")  # the API's answer, shown to the user as a message
    open_generator(page, server, "nokey")
    page.get_by_label("Prompt", exact=True).fill("a red kite")
    page.get_by_role("button", name="Generate").click()

    error = page.locator("#gen-error")
    expect(error).to_be_visible()
    expect(error).to_have_attribute("data-code", "missing_api_key")
    expect(error.locator(".error-title")).to_have_text("No OpenRouter API key")
    expect(error).to_be_focused()
    link = error.get_by_role("link", name=re.compile("Add your OpenRouter key in Settings"))
    link.click()
    page.wait_for_url(re.compile(r"/settings#key-openrouter$"))
    expect(page.get_by_label("New OpenRouter key")).to_be_focused()
    expect(page.locator("#demo-notice")).to_be_hidden()


def test_google_quota_falls_back_to_openrouter(web: Browsing, quota_server: LiveServer) -> None:
    page = web.page
    server = quota_server
    open_generator(page, server, "quota", {"openrouter": OPENROUTER_KEY, "google": GOOGLE_KEY})
    page.get_by_label("Provider").select_option("google")
    page.get_by_label("Prompt", exact=True).fill("a quiet harbour")
    page.get_by_role("button", name="Generate").click()

    expect(page.locator(".result").first).to_have_attribute("data-loaded", "true", timeout=30_000)
    note = page.locator("#fallback-note")
    expect(note).to_be_visible()
    expect(note).to_contain_text("from Google to OpenRouter")
    expect(page.locator('#attempts .attempt[data-provider="google"]').first).to_have_attribute(
        "data-status", "error"
    )
    expect(page.locator('#attempts .attempt[data-provider="openrouter"]').last).to_have_attribute(
        "data-status", "ok"
    )
    expect(page.locator("#result-meta")).to_contain_text("via OpenRouter")
    expect(page.locator("#gen-error")).to_be_hidden()


def test_quota_without_fallback_says_what_to_do(web: Browsing, quota_server: LiveServer) -> None:
    page = web.page
    web.console.allow(r"status of 429")
    server = quota_server
    open_generator(page, server, "quota-only", {"google": GOOGLE_KEY})
    page.get_by_label("Provider").select_option("google")
    page.get_by_label("Prompt", exact=True).fill("a quiet harbour")
    page.get_by_role("button", name="Generate").click()

    error = page.locator("#gen-error")
    expect(error).to_be_visible(timeout=30_000)
    expect(error).to_have_attribute("data-code", "quota_exceeded")
    expect(error.locator(".error-title")).to_have_text("Google quota exceeded")
    fix = error.locator(".error-fix")
    expect(fix).to_contain_text("Try again in about")
    expect(fix.get_by_role("link", name="save a key for the other provider")).to_have_attribute(
        "href", "/settings#keys"
    )
    expect(page.locator('#attempts .attempt[data-provider="google"]').first).to_have_attribute(
        "data-status", "error"
    )


def test_blocked_prompt_shows_the_reason(web: Browsing, server: LiveServer) -> None:
    page = web.page
    open_generator(page, server, "blocked", {"openrouter": OPENROUTER_KEY})
    page.get_by_label("Prompt", exact=True).fill("something forbidden [emulator:safety]")
    page.get_by_role("button", name="Generate").click()

    error = page.locator("#gen-error")
    expect(error).to_be_visible(timeout=30_000)
    expect(error).to_have_attribute("data-code", "content_blocked")
    expect(error.locator(".error-title")).to_have_text("Blocked by the model's safety rules")
    expect(error).to_contain_text("The model blocked this request:")
    expect(error.locator(".error-fix")).to_contain_text("Rephrase the prompt")
    expect(page.locator("#progress-state")).to_have_text("Blocked")
    expect(page.locator(".result")).to_have_count(0)
    expect(page.get_by_role("button", name="Generate")).to_be_enabled()


def test_cancel_keeps_the_result_for_the_gallery(web: Browsing, server: LiveServer) -> None:
    page = web.page
    open_generator(page, server, "cancel", {"openrouter": OPENROUTER_KEY})
    prompt = f"a slow sunrise {uuid.uuid4().hex[:6]} [emulator:latency:3]"
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_role("button", name="Generate").click()

    cancel = page.get_by_role("button", name="Cancel", exact=True)
    expect(cancel).to_be_visible()
    expect(page.locator("#progress-link a")).to_be_visible()  # the job exists on the server
    started = time.monotonic()
    cancel.click()
    note = page.locator("#cancel-note")
    expect(note).to_be_visible()
    expect(note).to_contain_text("keeps running on the server")
    expect(note).to_be_focused()
    assert time.monotonic() - started < 2.5, "cancel must not wait for the upstream"
    expect(page.get_by_role("button", name="Generate")).to_be_enabled()
    expect(cancel).to_be_hidden()

    # The paid result is not lost: the detail page shows it once the job finishes.
    note.get_by_role("link", name="the Gallery").click()
    page.wait_for_url(re.compile(r"/gallery/[0-9a-f]+$"))
    job_id = page.url.rsplit("/", 1)[1]
    expect(page.locator("#detail")).to_have_attribute("data-status", "succeeded", timeout=20_000)
    expect(page.locator(".detail-figure img")).to_have_js_property("complete", True)
    page.goto(f"{server.url}/gallery")
    expect(page.locator(f'.tile[data-generation="{job_id}"] img')).to_have_js_property(
        "complete", True
    )


def test_a_generation_stopped_on_the_server_from_the_page(
    web: Browsing, server: LiveServer
) -> None:
    """After "Cancel" (stop waiting), the note offers to cancel the generation itself: the
    server ends it at once, the note says what that means for billing, and the Gallery shows
    it cancelled."""
    page = web.page
    open_generator(page, server, "stopper", {"openrouter": OPENROUTER_KEY})
    prompt = f"a very slow dawn {uuid.uuid4().hex[:6]} [emulator:latency:30]"
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#progress-state")).to_have_text("Running")
    page.get_by_role("button", name="Cancel", exact=True).click()
    note = page.locator("#cancel-note")
    started = time.monotonic()
    note.get_by_role("button", name="Cancel the generation too").click()
    expect(note).to_contain_text("Generation cancelled: nothing more is sent")
    expect(note).to_contain_text("may bill the call that was already sent")
    assert time.monotonic() - started < 5, "the server must not wait for the upstream"
    note.get_by_role("link", name="the Gallery").click()
    page.wait_for_url(re.compile(r"/gallery/[0-9a-f]+$"))
    expect(page.locator("#detail")).to_have_attribute("data-status", "failed")
    expect(page.locator("#detail")).to_contain_text("Cancelled while it ran")


def test_demo_mode_labels_synthetic_images(web: Browsing, demo_server: LiveServer) -> None:
    page = web.page
    open_generator(page, demo_server, "demo")
    page.get_by_label("Prompt", exact=True).fill("a banana on the moon")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator(".result").first).to_have_attribute("data-loaded", "true", timeout=30_000)
    notice = page.locator("#demo-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("synthetic")
    expect(page.locator(".result .synthetic-label").first).to_be_visible()


def test_the_picker_offers_a_model_only_the_listing_has(
    web: Browsing, demo_server: LiveServer
) -> None:
    """The demo emulator lists models the built-in catalog lacks; the service picks them up in
    the background and the generator offers them, labelled, and generates with them."""
    page = web.page
    username, token = demo_server.new_user("lister")
    with demo_server.client(token) as c:
        for _ in range(500):
            models = c.get("/api/nano-banana/models").json()["models"]
            if any(m["id"] == "openai/gpt-5-image-mini" for m in models):
                break
            time.sleep(0.02)
    sign_in(page, demo_server, username, token)
    page.goto(f"{demo_server.url}/")
    expect(page.locator("#gen-form")).to_have_attribute("data-ready", "true")
    option = page.locator("#model option[value='openai/gpt-5-image-mini']")
    expect(option).to_have_text("OpenAI: GPT-5 Image Mini (from the provider's listing)")
    page.get_by_label("Model", exact=True).select_option("openai/gpt-5-image-mini")
    page.get_by_label("Prompt", exact=True).fill("a banana drawn by a language model")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator(".result").first).to_have_attribute("data-loaded", "true", timeout=30_000)
    with demo_server.client(token) as c:
        [item] = c.get("/api/generations", params={"limit": 1}).json()["items"]
    assert item["model"] == "openai/gpt-5-image-mini"


def test_thinking_and_search_follow_the_model_and_come_back_on_remix(
    web: Browsing, demo_server: LiveServer
) -> None:
    """The Thinking choice offers what the chosen model takes (Nano Banana 2 Lite: minimal and
    high; a model whose levels are not known: all four), is sent, shown and remixed."""
    page = web.page
    _, token = open_generator(page, demo_server, "thinker")
    page.locator("details.more summary").click()
    thinking = page.get_by_label("Thinking")
    values = "Array.from(document.querySelectorAll('#thinking option'), o => o.value)"
    assert page.evaluate(values) == ["", "minimal", "low", "medium", "high"]
    page.get_by_label("Provider").select_option("google")
    page.get_by_label("Model", exact=True).select_option("gemini-3.1-flash-lite-image")
    assert page.evaluate(values) == ["", "minimal", "high"]
    thinking.select_option("high")
    page.get_by_label("Prompt", exact=True).fill("a banana that thought it over")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator(".result").first).to_have_attribute("data-loaded", "true", timeout=30_000)
    with demo_server.client(token) as c:
        [item] = c.get("/api/generations", params={"limit": 1}).json()["items"]
    assert item["request"]["thinking"] == "high"
    page.goto(f"{demo_server.url}/gallery/{item['id']}")
    expect(page.locator("#detail-params")).to_contain_text("Thinking")
    page.get_by_role("link", name="Remix").click()
    expect(page.locator("#gen-form")).to_have_attribute("data-ready", "true")
    expect(page.get_by_label("Model", exact=True)).to_have_value("gemini-3.1-flash-lite-image")
    expect(thinking).to_have_value("high")
    # Lite cannot search Google (its page says so); Nano Banana 2 is not known not to.
    search = page.get_by_label("Ground in Google Search")
    expect(search).to_be_disabled()
    page.get_by_label("Model", exact=True).select_option("gemini-3.1-flash-image")
    expect(search).to_be_enabled()
    search.check()
    page.get_by_role("button", name="Generate").click()
    expect(page.locator(".result").first).to_have_attribute("data-loaded", "true", timeout=30_000)
    with demo_server.client(token) as c:
        [item] = c.get("/api/generations", params={"limit": 1}).json()["items"]
    assert item["request"]["google_search"] is True and item["request"]["thinking"] == "high"


def test_model_options_are_sent_shown_checked_and_remixed(
    web: Browsing, demo_server: LiveServer
) -> None:
    page = web.page
    _, token = open_generator(page, demo_server, "optioner")
    page.locator("details.more summary").click()
    options = page.get_by_label("Model options")
    page.get_by_label("Prompt", exact=True).fill("a poster in the house style")
    options.fill("style: Photorealism")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#gen-error")).to_contain_text("Model options are a JSON object")
    options.fill('{"style": "Photorealism", "rgb_colors": [[255, 0, 0]]}')
    page.get_by_role("button", name="Generate").click()
    expect(page.locator(".result").first).to_have_attribute("data-loaded", "true", timeout=30_000)
    with demo_server.client(token) as c:
        [item] = c.get("/api/generations", params={"limit": 1}).json()["items"]
    wanted = {"style": "Photorealism", "rgb_colors": [[255, 0, 0]]}
    assert item["request"]["image_options"] == wanted
    page.goto(f"{demo_server.url}/gallery/{item['id']}")
    expect(page.locator("#detail-params")).to_contain_text('"style":"Photorealism"')
    page.get_by_role("link", name="Remix").click()
    expect(page.locator("#gen-form")).to_have_attribute("data-ready", "true")
    expect(options).to_be_visible()
    assert json.loads(options.input_value()) == wanted


def _png(width: int, height: int, color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buf, "PNG")
    return buf.getvalue()


#: Hand the page a PNG as a File through a synthetic paste or drop event (what a user's
#: clipboard or file manager would deliver).
DELIVER_FILE = """async ([kind, b64, name]) => {
    const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
    const dt = new DataTransfer();
    dt.items.add(new File([bytes], name, { type: "image/png" }));
    if (kind === "paste") {
        document.dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true }));
    } else {
        const zone = document.querySelector("#drop-zone");
        for (const type of ["dragenter", "dragover", "drop"]) {
            const init = { dataTransfer: dt, bubbles: true, cancelable: true };
            zone.dispatchEvent(new DragEvent(type, init));
        }
    }
}"""


def test_reference_images_pick_paste_drop_remove_and_reuse(
    web: Browsing, server: LiveServer
) -> None:
    import base64

    page = web.page
    web.console.allow(r"status of 4\d\d")  # the refused file below
    _, token = open_generator(page, server, "refs", {"openrouter": OPENROUTER_KEY})
    # A model that takes at most 3 references, so that the limit is reached below.
    page.get_by_label("Model", exact=True).select_option("gemini-2.5-flash-image")
    refs = page.locator("#ref-list .ref")

    page.locator("#ref-input").set_input_files(
        files=[{"name": "red.png", "mimeType": "image/png", "buffer": _png(64, 48, (200, 0, 0))}]
    )
    expect(refs).to_have_count(1)
    expect(refs.first).to_have_attribute("data-status", "ready")
    expect(refs.first.locator(".ref-state")).to_have_text("64×48")

    page.evaluate(
        DELIVER_FILE, ["paste", base64.b64encode(_png(32, 32, (0, 200, 0))).decode(), "g.png"]
    )
    page.evaluate(
        DELIVER_FILE, ["drop", base64.b64encode(_png(40, 20, (0, 0, 200))).decode(), "b.png"]
    )
    expect(refs).to_have_count(3)
    expect(page.locator('#ref-list .ref[data-status="ready"]')).to_have_count(3)

    # A fourth is one too many for this model (3), and a text file is refused with a message.
    page.evaluate(
        DELIVER_FILE, ["paste", base64.b64encode(_png(8, 8, (9, 9, 9))).decode(), "x.png"]
    )
    expect(page.locator("#ref-error")).to_contain_text("at most 3 reference images")
    refs.nth(1).get_by_role("button", name="Remove g.png").click()
    expect(refs).to_have_count(2)
    expect(page.get_by_role("button", name="Choose files…")).to_be_focused()
    page.locator("#ref-input").set_input_files(
        files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}]
    )
    expect(page.locator("#ref-error")).to_contain_text("not a PNG, JPEG or WebP image")
    expect(refs).to_have_count(2)

    page.get_by_label("Prompt", exact=True).fill("combine these two colours")
    page.get_by_role("button", name="Generate").click()
    card = page.locator(".result").first
    expect(card).to_have_attribute("data-loaded", "true", timeout=30_000)
    gen_id = page.locator("#result-meta a").get_attribute("href").rsplit("/", 1)[1]
    with server.client(token) as c:
        job = c.get(f"/api/generations/{gen_id}").json()
    assert len(job["request"]["images"]) == 2

    # "Use as reference" turns the result into the next edit's input.
    page.locator("#ref-list .ref").first.get_by_role("button").click()
    page.locator("#ref-list .ref").first.get_by_role("button").click()
    expect(refs).to_have_count(0)
    card.get_by_role("button", name="Use as reference").click()
    expect(refs).to_have_count(1)
    expect(refs.first).to_have_attribute("data-status", "ready")
    expect(refs.first.locator(".ref-state")).to_have_text("1024×1024")
    expect(page.get_by_label("Prompt", exact=True)).to_be_focused()


def test_on_a_phone_the_progress_and_results_come_into_view(
    open_browser: Any, server: LiveServer
) -> None:
    b = open_browser(PHONE)
    page = b.page
    open_generator(page, server, "phone", {"openrouter": OPENROUTER_KEY})
    assert page.evaluate("window.scrollY") == 0
    page.get_by_label("Prompt", exact=True).fill("a kite on a phone")
    page.get_by_role("button", name="Generate").click()
    expect(page.locator(".result").first).to_have_attribute("data-loaded", "true", timeout=30_000)
    page.wait_for_function(
        "() => { const r = document.querySelector('.result').getBoundingClientRect();"
        " return r.top >= 0 && r.top < window.innerHeight - 120; }"
    )


def test_a_grounded_generation_lists_its_searches_and_pages(
    web: Browsing, demo_server: LiveServer
) -> None:
    """The detail view shows what the search looked up, as text and links, never as markup."""
    page = web.page
    username, token = demo_server.new_user("searcher")
    prompt = 'the tallest tower <img src=x onerror="window.pwned=1">'
    with demo_server.client(token) as c:
        r = c.post(
            "/api/nano-banana/generate",
            json={"prompt": prompt, "provider": "google", "google_search": True},
        )
        assert r.status_code == 200, r.text
    sign_in(page, demo_server, username, token)
    page.goto(f"{demo_server.url}/gallery/{r.json()['id']}")
    expect(page.locator("#detail-sources-section")).to_be_visible()
    expect(page.locator("#detail-queries")).to_have_text(f"Searched: {prompt}")
    links = page.locator("#detail-sources a")
    expect(links).to_have_count(2)
    expect(links.first).to_have_attribute("rel", "noopener noreferrer")
    assert links.first.get_attribute("href").startswith("https://")
    assert page.evaluate("window.pwned") is None

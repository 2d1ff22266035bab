"""Gallery and settings in a real browser: search, paging, delete with confirmation, keys."""

from __future__ import annotations

import re
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from playwright.sync_api import expect

from .conftest import (
    GOOGLE_KEY,
    OPENROUTER_KEY,
    Browsing,
    LiveServer,
    sign_in,
    sign_in_with_form,
)

pytestmark = pytest.mark.browser


def test_gallery_search_page_and_delete(web: Browsing, server: LiveServer) -> None:
    page = web.page
    username, token = server.new_user("gallery")
    server.save_key(token, "openrouter", OPENROUTER_KEY)
    tag = uuid.uuid4().hex[:6]

    # 31 images: more than one page (30), so scrolling has to fetch the rest.  Small images,
    # two per generation, two at a time (the per-user concurrency); the otter last, so it is
    # the newest.
    def kite(i: int) -> None:
        server.generate(
            token,
            prompt=f"kite {tag} number {i}",
            model="gemini-3.1-flash-image",
            image_size="0.5K",
            num_images=2,
        )

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(kite, range(15)))
    server.generate(token, prompt=f"an otter {tag}", aspect_ratio="9:16")

    sign_in(page, server, username, token)
    page.goto(f"{server.url}/gallery")
    tiles = page.locator(".tile")
    expect(tiles).to_have_count(30)
    expect(tiles.first).to_have_attribute("data-ratio", "9:16")  # newest first
    expect(tiles.first.get_by_role("link")).to_have_accessible_name(re.compile(f"an otter {tag}"))
    page.locator("#sentinel").scroll_into_view_if_needed()
    expect(tiles).to_have_count(31)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    expect(page.locator("#gallery-count")).to_have_text("31 images in all")

    page.get_by_label("Search prompts").fill("otter")
    page.get_by_label("Search prompts").press("Enter")
    expect(tiles).to_have_count(1)
    assert "q=otter" in page.url
    page.get_by_label("Search prompts").fill("no-such-prompt-anywhere")
    page.get_by_label("Search prompts").press("Enter")
    expect(tiles).to_have_count(0)
    expect(page.locator("#gallery-empty")).to_contain_text("No image matches")

    # Delete asks first; "Cancel" keeps it, "Delete" removes it (and the API forgets it).
    page.goto(f"{server.url}/gallery?q=otter")
    tiles.first.get_by_role("link").click()
    page.locator("#viewer").get_by_role("link", name="All details").click()
    page.wait_for_url(re.compile(r"/gallery/([0-9a-f]+)$"))
    gen_id = page.url.rsplit("/", 1)[1]
    expect(page.locator(".detail-figure img")).to_have_js_property("naturalHeight", 1344)
    page.get_by_role("button", name="Delete…").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#confirm-cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    with server.client(token) as c:
        assert c.get(f"/api/generations/{gen_id}").status_code == 200
    page.get_by_role("button", name="Delete…").click()
    dialog.get_by_role("button", name="Delete").click()
    page.wait_for_url(re.compile(r"/gallery\?deleted=1$"))
    expect(page.locator("#gallery-status")).to_have_text("Deleted.")
    expect(tiles).to_have_count(30)
    with server.client(token) as c:
        assert c.get(f"/api/generations/{gen_id}").status_code == 404


def test_gallery_filters_favourites_and_a_selection(web: Browsing, server: LiveServer) -> None:
    """Tiles in their images' shapes; a filter narrows and stays in the address; a favourite
    is marked from its tile; a selection is downloaded as a zip, then deleted."""
    page = web.page
    username, token = server.new_user("tiles")
    server.save_key(token, "openrouter", OPENROUTER_KEY)
    server.save_key(token, "google", GOOGLE_KEY)
    fox = server.generate(token, prompt="a fox", aspect_ratio="16:9", num_images=2)
    whale = server.generate(token, prompt="a whale", provider="google")
    sign_in(page, server, username, token)
    page.goto(f"{server.url}/gallery")
    tiles = page.locator(".tile")
    expect(tiles).to_have_count(3)
    # Aspect-true: each tile has its image's shape, nothing cropped to a square.
    wide = tiles.nth(1).locator("img")
    expect(wide).to_have_js_property("complete", True)
    box = wide.bounding_box()
    assert box is not None and abs(box["width"] / box["height"] - 16 / 9) < 0.05, box
    square = tiles.first.locator("img").bounding_box()
    assert square is not None and abs(square["width"] / square["height"] - 1) < 0.05

    # Filters: the choices come with their counts; the address keeps them.
    ratio = page.get_by_label("Ratio", exact=True)
    expect(ratio.locator("option", has_text="16:9 (2)")).to_have_count(1)
    ratio.select_option("16:9")
    expect(tiles).to_have_count(2)
    assert "aspect_ratio=16%3A9" in page.url
    page.reload()
    expect(tiles).to_have_count(2)
    expect(page.get_by_label("Ratio", exact=True)).to_have_value("16:9")
    page.get_by_role("button", name="Clear filters").click()
    expect(tiles).to_have_count(3)
    page.get_by_label("Provider").select_option("google")
    expect(tiles).to_have_count(1)
    expect(tiles.first).to_have_attribute("data-generation", whale["id"])
    page.get_by_label("Provider").select_option("")
    page.get_by_label("By generation").check()
    expect(page.locator(".tile-group")).to_have_count(2)
    expect(page.locator(".tile-group").first).to_contain_text("a whale")
    page.get_by_label("By generation").uncheck()

    # A favourite from its tile.
    star = tiles.first.get_by_role("button", name="Favourite")
    tiles.first.hover()
    star.click()
    expect(star).to_have_attribute("aria-pressed", "true")
    page.get_by_role("checkbox", name=re.compile("Favourites")).check()
    expect(tiles).to_have_count(1)
    with server.client(token) as c:
        favourites = c.get("/api/images", params={"favourite": "true"}).json()["items"]
    assert [i["generation_id"] for i in favourites] == [whale["id"]]
    page.get_by_role("checkbox", name=re.compile("Favourites")).uncheck()
    expect(tiles).to_have_count(3)

    # A selection: the fox's two images, as a zip, then deleted.
    page.get_by_role("button", name="Select", exact=True).click()
    tiles.nth(1).get_by_role("link").click()
    tiles.nth(2).get_by_role("link").click()
    expect(page.locator("#bulk-count")).to_have_text("2 selected")
    with page.expect_download() as download:
        page.get_by_role("button", name="Download zip").click()
    path = download.value.path()
    with zipfile.ZipFile(path) as z:
        assert len(z.namelist()) == 2 and all("a-fox" in n for n in z.namelist())
    page.get_by_role("button", name="Delete…").click()
    page.locator("#confirm-dialog").get_by_role("button", name="Delete").click()
    expect(tiles).to_have_count(1)
    expect(page.locator("#gallery-status")).to_have_text("Deleted 2 images.")
    with server.client(token) as c:
        left = c.get("/api/images").json()["items"]
        record = c.get(f"/api/generations/{fox['id']}").json()
    assert [i["generation_id"] for i in left] == [whale["id"]]
    assert record["images"] == [] and record["prompt"] == "a fox"


def test_other_users_generation_is_not_shown(web: Browsing, server: LiveServer) -> None:
    page = web.page
    web.console.allow(r"status of 404")
    _, owner_token = server.new_user("owner")
    server.save_key(owner_token, "openrouter", OPENROUTER_KEY)
    secret_prompt = f"private sketch {uuid.uuid4().hex[:6]}"
    gen = server.generate(owner_token, prompt=secret_prompt)
    username, token = server.new_user("intruder")
    sign_in(page, server, username, token)
    page.goto(f"{server.url}/gallery/{gen['id']}")
    expect(page.locator("#detail-error")).to_contain_text("does not exist, or it is not yours")
    expect(page.locator("#detail")).to_be_hidden()
    assert secret_prompt not in page.content()


def test_the_first_page_is_asked_for_once_while_the_page_loads(
    web: Browsing, server: LiveServer
) -> None:
    page = web.page
    username, token = server.new_user("early")
    server.save_key(token, "openrouter", OPENROUTER_KEY)
    server.generate(token, prompt="a wide dune", aspect_ratio="16:9", image_size="0.5K")
    server.generate(token, prompt="a square tile", aspect_ratio="1:1", image_size="0.5K")
    sign_in(page, server, username, token)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/api/images?" in r.url else None)
    tiles = page.locator(".tile")
    for address, shown in (
        ("/gallery?aspect_ratio=16:9", 1),
        ("/gallery?favourite=true&sort=oldest&since=2000-01-01", 0),
        ("/gallery", 2),
    ):
        asked.clear()
        page.goto(server.url + address)
        expect(page.locator("#gallery")).to_have_attribute("data-loaded", "true")
        expect(tiles).to_have_count(shown)
        # The request the page starts early is the one it shows: not asked twice.
        assert len(asked) == 1, (address, asked)
    # An address the form cannot hold as it is (no such day): the page asks again, for what
    # the form shows (every image), and nothing breaks.
    asked.clear()
    page.goto(f"{server.url}/gallery?since=not-a-day")
    expect(tiles).to_have_count(2)
    assert len(asked) == 1 and "since" not in asked[0]

    # The request leaves before the gallery's own script can run: with one of the modules it
    # imports held back (viewer.js; gallerypage.js does not need it), the first page is asked
    # for all the same, and shown once the module comes.
    held: list[Any] = []
    page.route(re.compile(r"/static/js/viewer\.js"), lambda route: held.append(route))
    asked.clear()
    page.goto(f"{server.url}/gallery", wait_until="commit")
    for _ in range(100):
        if held and asked:
            break
        page.wait_for_timeout(50)
    assert held and len(asked) == 1, (held, asked)
    expect(tiles).to_have_count(0)
    held[0].continue_()
    expect(tiles).to_have_count(2)
    assert len(asked) == 1


def test_thumbnails_come_from_the_browser_cache_of_their_account_only(
    web: Browsing, server: LiveServer
) -> None:
    page = web.page
    web.console.allow(r"status of 404")
    username, token = server.new_user("cached")
    server.save_key(token, "openrouter", OPENROUTER_KEY)
    server.generate(token, prompt="a cached heron", image_size="0.5K", num_images=2)
    sign_in(page, server, username, token)
    thumbs = (
        "performance.getEntriesByType('resource').filter(e => e.name.includes('thumb=1'))"
        ".map(e => e.transferSize)"
    )
    for visit in ("first", "again"):
        page.goto(f"{server.url}/gallery")
        expect(page.locator(".tile.loaded")).to_have_count(2)
        sizes = page.evaluate(thumbs)
        assert len(sizes) == 2
        if visit == "first":
            assert all(size > 0 for size in sizes)  # from the service
        else:
            assert sizes == [0, 0]  # from the browser's cache: no request at all
    url = page.locator(".tile img").first.get_attribute("data-src")

    # Another account on the same browser is not answered from that cache: the service says
    # 404 (the image is not theirs), as it would in a fresh browser.
    other, other_token = server.new_user("neighbour")
    sign_in(page, server, other, other_token)
    page.goto(f"{server.url}/gallery")
    expect(page.locator("#gallery-empty")).to_be_visible()
    status = page.evaluate(
        """async (url) => {
            const { imageBlob } = await import("/static/js/api.js");
            try { await imageBlob(url); return 200; } catch (err) { return err.status; }
        }""",
        url,
    )
    assert status == 404


def test_signed_in_through_the_form_the_first_page_comes_with_the_page(
    web: Browsing, server: LiveServer
) -> None:
    page = web.page
    username, token = server.new_user("cookie")
    server.save_key(token, "openrouter", OPENROUTER_KEY)
    server.generate(token, prompt="a heron by the jar", image_size="0.5K", num_images=2)
    server.generate(token, prompt="a wide heron", image_size="0.5K", aspect_ratio="16:9")
    sign_in_with_form(page, server, username)
    asked: list[Any] = []
    page.on("request", lambda r: asked.append(r))
    page.goto(f"{server.url}/gallery")
    tiles = page.locator(".tile")
    expect(page.locator(".tile.loaded")).to_have_count(3)
    expect(page.locator("#gallery-count")).to_have_text("3 images in all")
    # The first page came within the HTML: nothing was asked for it.
    assert [r.url for r in asked if "/api/images?" in r.url] == []
    # The thumbnails are plain images, fetched by the browser with the session cookie: no
    # bearer header, no token in their URLs.
    srcs = tiles.locator("img").evaluate_all("imgs => imgs.map(i => i.getAttribute('src'))")
    assert all(re.fullmatch(r"/api/images/[0-9a-f]{32}\?thumb=1", s) for s in srcs), srcs
    thumbs = [r for r in asked if "thumb=1" in r.url]
    assert len(thumbs) == 3 and not any("authorization" in r.all_headers() for r in thumbs)
    assert not any(token in r.url for r in asked)

    # A thumbnail the cookie no longer brings (it expired since the page came) is fetched
    # with the stored token instead.
    web.console.allow(r"status of 401")

    def refuse_without_bearer(route: Any) -> None:
        if "authorization" in route.request.headers:
            route.continue_()
        else:
            route.fulfill(status=401, body="")

    page.route(re.compile(r"thumb=1"), refuse_without_bearer)
    page.reload()
    expect(page.locator(".tile.loaded")).to_have_count(3)
    srcs = tiles.locator("img").evaluate_all("imgs => imgs.map(i => i.getAttribute('src'))")
    assert all(s.startswith("blob:") for s in srcs), srcs
    page.unroute(re.compile(r"thumb=1"))

    # The stored session is another account's (the cookie is still the first one's): the page
    # sent for the cookie is not shown; the stored session's own images are.
    other, other_token = server.new_user("cookie-other")
    server.save_key(other_token, "openrouter", OPENROUTER_KEY)
    server.generate(other_token, prompt="an owl of its own", image_size="0.5K")
    sign_in(page, server, other, other_token)
    asked.clear()
    page.goto(f"{server.url}/gallery")
    expect(tiles).to_have_count(1)
    expect(tiles.first.get_by_role("link")).to_have_accessible_name(re.compile("an owl"))
    expect(page.locator(".tile.loaded")).to_have_count(1)
    assert len([r for r in asked if "/api/images?" in r.url]) == 1
    assert tiles.locator("img").first.get_attribute("src").startswith("blob:")


def test_settings_keys_and_defaults(web: Browsing, server: LiveServer) -> None:
    page = web.page
    username, token = server.new_user("settings")
    sign_in(page, server, username, token)
    page.goto(f"{server.url}/settings")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")

    # An empty key is refused on the page, before any request.
    page.locator("#key-google").get_by_role("button", name="Save").click()
    expect(page.locator("#key-google-message")).to_contain_text("Paste your Google key")
    expect(page.get_by_label("New Google key")).to_be_focused()

    page.get_by_label("New Google key").fill(GOOGLE_KEY)
    page.get_by_label("New Google key").press("Enter")
    expect(page.locator("#key-google-state")).to_have_text(re.compile(r"Saved: .*G42$"))
    page.reload()
    expect(page.locator("#key-google-state")).to_have_text(re.compile(r"Saved: .*G42$"))
    assert GOOGLE_KEY not in page.content()
    card = page.locator("#key-google")
    card.get_by_role("button", name="Test").click()
    expect(page.locator("#key-google-message")).to_contain_text("The Google key works: ")

    # A key the provider refuses: "Test" says so (the emulator refuses keys saying "invalid").
    page.get_by_label("New Google key").fill("AIzaCANARYinvalid0000000000000000000GG43")
    card.get_by_role("button", name="Save").click()
    expect(page.locator("#key-google-state")).to_have_text(re.compile(r"Saved: .*G43$"))
    card.get_by_role("button", name="Test").click()
    expect(page.locator("#key-google-message")).to_contain_text("The Google key was refused")

    card.get_by_role("button", name="Remove").click()
    page.locator("#confirm-dialog").get_by_role("button", name="Remove").click()
    expect(page.locator("#key-google-message")).to_have_text("Google key removed.")
    expect(page.locator("#key-google-state")).to_have_text("No key saved.")

    # Defaults offer only what the chosen model supports, and the generator starts from them.
    page.get_by_label("Provider").select_option("google")
    model = page.get_by_label("Model", exact=True)
    model.select_option("gemini-3.1-flash-image")
    ratios = page.get_by_label("Aspect ratio").locator("option").all_inner_texts()
    assert "8:1" in ratios
    page.get_by_label("Aspect ratio").select_option("21:9")
    page.get_by_label("Size", exact=True).select_option("2K")
    model.select_option("gemini-2.5-flash-image")
    assert page.get_by_label("Size", exact=True).locator("option").all_inner_texts() == ["1K"]
    assert "8:1" not in page.get_by_label("Aspect ratio").locator("option").all_inner_texts()
    expect(page.get_by_label("Aspect ratio")).to_have_value("21:9")
    page.get_by_role("button", name="Save defaults").click()
    expect(page.locator("#defaults-message")).to_contain_text("Defaults saved")

    page.goto(f"{server.url}/")
    expect(page.locator("#gen-form")).to_have_attribute("data-ready", "true")
    expect(page.get_by_label("Provider")).to_have_value("google")
    expect(page.get_by_label("Model", exact=True)).to_have_value("gemini-2.5-flash-image")
    expect(page.get_by_label("Aspect ratio")).to_have_value("21:9")


def test_sign_in_errors_and_sign_out(web: Browsing, server: LiveServer) -> None:
    page = web.page
    web.console.allow(r"status of (401|409|422)")
    username, _ = server.new_user("signin")
    page.goto(f"{server.url}/gallery")
    page.wait_for_url(re.compile(r"/login\?next=%2Fgallery$"))

    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill("wrong password!")
    page.get_by_label("Password").press("Enter")
    error = page.locator("#auth-error")
    expect(error).to_contain_text("Wrong username or password.")
    expect(error.get_by_role("link", name="Create one")).to_be_visible()

    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.url}/gallery")
    expect(page.locator("#account-name")).to_have_text(username)

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/login\?signed_out=1$"))
    expect(page.locator("#auth-status")).to_have_text("You are signed out.")
    assert page.evaluate("localStorage.getItem('nanobanana.session')") is None

    page.goto(f"{server.url}/register")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill("correct horse battery")
    page.get_by_label("Repeat the password").fill("different horse battery")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#auth-error")).to_contain_text("differ")
    page.get_by_label("Repeat the password").fill("correct horse battery")
    page.get_by_role("button", name="Create account").click()
    expect(page.locator("#auth-error")).to_contain_text("taken")


def test_a_running_generation_is_cancelled_from_its_page(web: Browsing, server: LiveServer) -> None:
    """The detail page of a running generation offers "Cancel generation…"; once confirmed,
    the page shows it cancelled at once, and the button goes away."""
    page = web.page
    username, token = server.new_user("detailstop")
    server.save_key(token, "openrouter", OPENROUTER_KEY)
    sign_in(page, server, username, token)
    with server.client(token) as c:
        r = c.post("/api/generations", json={"prompt": "a long night [emulator:latency:30]"})
        job = r.json()["id"]
        for _ in range(100):  # until it is sent
            if c.get(f"/api/generations/{job}").json()["status"] == "running":
                break
            time.sleep(0.05)
    page.goto(f"{server.url}/gallery/{job}")
    expect(page.locator("#detail")).to_have_attribute("data-status", "running")
    page.get_by_role("button", name="Cancel generation…").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_contain_text("Stop this generation?")
    dialog.get_by_role("button", name="Stop it").click()
    expect(page.locator("#detail")).to_have_attribute("data-status", "failed")
    expect(page.locator("#detail-outcome")).to_contain_text("Cancelled while it ran")
    expect(page.get_by_role("button", name="Cancel generation…")).to_be_hidden()

"""Errors in the web UI say what to fix, where it is fixed, and go away once it is."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from .conftest import OPENROUTER_KEY, Browsing, LiveServer, sign_in


def test_a_bad_key_is_explained_at_its_field_and_cleared_by_a_good_one(
    web: Browsing, server: LiveServer
) -> None:
    web.console.allow(r"status of 422")  # the API's answer, shown at the field
    page = web.page
    username, token = server.new_user("badkey")
    sign_in(page, server, username, token)
    page.goto(f"{server.url}/settings")
    field = page.get_by_label("New OpenRouter key")
    message = page.locator("#key-openrouter-message")

    field.fill("sk-or has spaces")
    page.locator("#key-openrouter").get_by_role("button", name="Save").click()
    expect(message).to_have_text(
        "The API key must be 8 to 512 visible ASCII characters with no spaces: paste the key "
        "exactly as the provider shows it."
    )
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_be_focused()
    expect(page.locator("#settings-error")).to_be_hidden()
    assert "\\x21" not in page.content()

    field.fill(OPENROUTER_KEY)
    page.locator("#key-openrouter").get_by_role("button", name="Save").click()
    expect(message).to_have_text("OpenRouter key saved.")
    expect(field).not_to_have_attribute("aria-invalid", "true")


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("validation_error", "The prompt is empty: describe the image you want."),
        ("too_many_attempts", "Too many attempts; wait a minute."),
        ("missing_api_key", "No key."),
    ],
)
def test_error_boxes_have_no_stray_null_line(
    web: Browsing, server: LiveServer, code: str, message: str
) -> None:
    page = web.page
    username, token = server.new_user("nullline")
    sign_in(page, server, username, token)
    page.goto(f"{server.url}/")
    expect(page.locator("#gen-form")).to_have_attribute("data-ready", "true")
    page.evaluate(
        """async ([code, message]) => {
            const { showError } = await import("/static/js/ui.js");
            const { ApiError } = await import("/static/js/api.js");
            showError(document.querySelector("#gen-error"),
                      new ApiError({ status: 422, code, message }));
        }""",
        [code, message],
    )
    error = page.locator("#gen-error")
    expect(error).to_be_visible()
    texts = error.evaluate("e => [...e.childNodes].map(n => n.textContent.trim())")
    assert "null" not in texts and all(texts), texts
    assert message in error.inner_text()


def test_the_welcome_says_whether_generating_works_already(
    web: Browsing, server: LiveServer, demo_server: LiveServer
) -> None:
    page = web.page
    message = page.locator("#key-openrouter-message")
    username, token = demo_server.new_user("welcome")
    sign_in(page, demo_server, username, token)
    page.goto(f"{demo_server.url}/settings?welcome=1")
    expect(message).to_contain_text("demo mode: you can generate synthetic images right away")

    username, token = server.new_user("welcome")
    sign_in(page, server, username, token)
    page.goto(f"{server.url}/settings?welcome=1")
    expect(message).to_have_text("Welcome! Save an OpenRouter or Google key to start generating.")

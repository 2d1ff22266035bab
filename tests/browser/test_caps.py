"""Spending on the settings page: each user sees what they spent and their caps; an
administrator sets every account's caps and the whole service's."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.sync_api import expect

from .conftest import OPENROUTER_KEY, Browsing, LiveServer, open_generator, sign_in

pytestmark = pytest.mark.browser


def usd(value: float) -> str:
    """As the page writes an amount below a dollar: up to four decimals, at least two."""
    return "$" + re.sub(r"0{1,2}$", "", f"{value:.4f}")


@pytest.fixture(scope="module")
def admin(team_server: LiveServer) -> tuple[str, str]:
    """The module's service's first account: its admin."""
    return team_server.new_user("boss")


def test_an_admin_caps_an_account_on_the_settings_page(
    web: Browsing, team_server: LiveServer, admin: tuple[str, str]
) -> None:
    server = team_server
    boss, boss_token = admin
    ann, ann_token = server.new_user("ann")
    server.save_key(ann_token, "openrouter", OPENROUTER_KEY)
    done = server.generate(ann_token, prompt="a heron with a price", image_size="0.5K")
    assert done["cost"] > 0

    page = web.page
    sign_in(page, server, boss, boss_token)
    page.goto(f"{server.url}/settings")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#caps")).to_be_visible()
    expect(page.locator("#caps-body tr").first).to_contain_text("Whole service")
    row = page.locator("#caps-body tr", has_text=ann)
    expect(row.locator("td").nth(1)).to_have_text(usd(done["cost"]))  # spent today

    # An amount that is none says what to fix; nothing is saved.
    daily = page.get_by_label(f"Cap per day for {ann} (USD)")
    daily.fill("-1")
    page.get_by_role("button", name=f"Save the caps for {ann}").click()
    message = page.locator("#caps-message")
    expect(message).to_contain_text("Enter an amount in USD (0 or more)")
    expect(daily).to_be_focused()

    # A cap below what ann has spent today: her next request is refused before any call.
    daily.fill("0.01")
    page.get_by_role("button", name=f"Save the caps for {ann}").click()
    expect(message).to_have_text(f"Saved the caps for {ann}.")
    expect(page.get_by_role("button", name=f"Save the caps for {ann}")).to_be_focused()
    expect(page.get_by_label(f"Cap per day for {ann} (USD)")).to_have_value("0.01")
    with server.client(ann_token) as c:
        r = c.post("/api/nano-banana/generate", json={"prompt": f"refused {uuid.uuid4().hex}"})
    assert r.status_code == 402, r.text
    assert r.json()["error"]["code"] == "budget_exceeded"

    # Ann sees her spending and her cap, and no one else's.
    sign_in(page, server, ann, ann_token)
    page.goto(f"{server.url}/settings")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#spend-day")).to_have_text(
        re.compile(
            rf"^Today: {re.escape(usd(done['cost']))} spent of a \$0\.01 cap\. The day ends .+\.$"
        )
    )
    expect(page.locator("#spend-month")).to_have_text(
        f"This month: {usd(done['cost'])} spent, no cap."
    )
    expect(page.locator("#caps")).to_be_hidden()


def test_a_fan_out_cut_short_by_a_cap_shows_what_was_made_and_why(
    web: Browsing, team_server: LiveServer, admin: tuple[str, str]
) -> None:
    server = team_server
    page = web.page
    cid, _ = open_generator(page, server, "cid", {"openrouter": OPENROUTER_KEY})
    with server.client(admin[1]) as c:
        models = {m["id"]: m for m in c.get("/api/nano-banana/models").json()["models"]}
        price = models[page.get_by_label("Model", exact=True).input_value()]["price_per_image"]
        users = c.get("/api/admin/users").json()["users"]
        cid_id = next(u["id"] for u in users if u["username"] == cid)
        cap = round(price["1K"] * 2.5, 6)  # room for two images, not three
        c.put(f"/api/admin/users/{cid_id}/budget", json={"daily_usd": cap}).raise_for_status()

    page.get_by_label("Images", exact=True).select_option("3")
    page.get_by_label("Prompt", exact=True).fill("three herons, two allowed")
    page.get_by_role("button", name="Generate").click()

    expect(page.locator(".result")).to_have_count(2, timeout=30_000)
    warning = page.locator("#result-meta .warning")
    expect(warning).to_contain_text("1 of the 3 images asked for was not made.")
    expect(warning).to_contain_text("would pass your daily spending cap of $")
    expect(page.locator("#gen-error")).to_be_hidden()

"""Webhooks in the browser: the default webhook and its signing secret on the settings page,
and a generation's delivery log on its page."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from playwright.sync_api import expect

from .conftest import OPENROUTER_KEY, Browsing, LiveServer, _serve, _settings, sign_in

pytestmark = pytest.mark.browser


class _Receiver(BaseHTTPRequestHandler):
    got: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).got.append({"headers": dict(self.headers), "body": body})
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    got: ClassVar[list[dict[str, Any]]] = []
    handler = type("Receiver", (_Receiver,), {"got": got})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", got
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def hook_server(
    tmp_path_factory: pytest.TempPathFactory, emulator: Any, receiver: Any
) -> Iterator[LiveServer]:
    """A service whose webhooks may reach the loopback receiver."""
    url = receiver[0]
    settings = _settings(tmp_path_factory.mktemp("hook-data"), demo=False, emulator=emulator)
    settings = settings.model_copy(update={"webhook_allow_hosts": [url.split("//", 1)[1]]})
    with _serve(settings) as served:
        yield LiveServer(url=served, demo=False)


def test_a_default_webhook_is_set_on_the_settings_page_and_its_deliveries_shown(
    web: Browsing, hook_server: LiveServer, receiver: Any
) -> None:
    url, got = receiver
    page, server = web.page, hook_server
    user, token = server.new_user("hook")
    server.save_key(token, "openrouter", OPENROUTER_KEY)
    sign_in(page, server, user, token)
    page.goto(f"{server.url}/settings")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")

    # The secret is there, hidden until asked for.
    secret = page.locator("#webhook-secret")
    expect(page.get_by_label("Signing secret")).to_be_visible()
    expect(secret).to_have_attribute("type", "password")
    page.get_by_role("button", name="Show").click()
    expect(secret).to_have_attribute("type", "text")
    expect(secret).to_have_value(re.compile(r"^whsec_[A-Za-z0-9+/]{43}=$"))
    first_secret = secret.input_value()

    # A private address says what is wrong, on the field.
    web.console.allow(r"status of 422")
    field = page.get_by_label("Default webhook URL")
    field.fill("http://10.1.2.3/hooks")
    page.get_by_role("button", name="Save webhook").click()
    message = page.locator("#webhook-message")
    expect(message).to_contain_text("a private address")
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_be_focused()

    field.fill(f"{url}/images")
    page.get_by_role("button", name="Save webhook").click()
    expect(message).to_contain_text("Saved")
    expect(field).not_to_have_attribute("aria-invalid", "true")

    # A generation that names no webhook reports to the default one.
    before = len(got)
    done = server.generate(token, prompt="a heron that reports", image_size="0.5K")
    page.goto(f"{server.url}/gallery/{done['id']}")
    section = page.locator("#detail-webhook-section")
    expect(section).to_have_attribute("data-state", "delivered", timeout=15_000)
    expect(page.locator("#detail-webhook")).to_contain_text("Delivered (1 attempt) to")
    expect(page.locator("#detail-webhook")).to_contain_text(f"msg_{done['id']}")
    expect(page.locator("#detail-webhook-log tbody tr")).to_have_count(1)
    expect(page.locator("#detail-webhook-log tbody td").first).to_have_text("HTTP 200 (ok)")
    delivered = got[before:]
    assert len(delivered) == 1
    assert json.loads(delivered[0]["body"])["data"]["id"] == done["id"]

    # Rotating asks first, then shows the new secret and how long the old one still signs.
    page.goto(f"{server.url}/settings")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.get_by_role("button", name="Rotate…").click()
    page.locator("#confirm-dialog").get_by_role("button", name="Rotate").click()
    expect(message).to_contain_text("A new signing secret is in use.")
    expect(page.locator("#webhook-previous")).to_contain_text("also signed with the previous")
    page.get_by_role("button", name="Show").click()
    expect(secret).not_to_have_value(first_secret)

    # A generation without a webhook shows no webhook section (and asks for none).
    page.get_by_label("Default webhook URL").fill("")
    page.get_by_role("button", name="Save webhook").click()
    expect(message).to_contain_text("Removed the default webhook.")
    quiet = server.generate(token, prompt="a heron that keeps quiet", image_size="0.5K")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    page.goto(f"{server.url}/gallery/{quiet['id']}")
    expect(page.locator("#detail")).to_have_attribute("data-status", "succeeded")
    expect(section).to_be_hidden()
    assert not any(u.endswith("/webhook") for u in asked)

"""OpenAI's Node SDK, as published on npm (pinned in tests/compat/node/package-lock.json and
installed by ``make node-clients``), drives the service: the Images API (generate, an edit
uploaded as a file, URLs), chat completions plain and streamed with OpenRouter's image fields,
both model listings, and its typed errors."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from ..support import image_size
from .conftest import OPENROUTER_CANARY, Live
from .test_docs import run_js_example, run_node

NODE_DIR = Path(__file__).parent / "node"


@pytest.fixture(scope="module")
def sdk_run(live: Live) -> tuple[dict[str, Any], str]:
    assert (NODE_DIR / "node_modules" / "openai" / "package.json").exists(), (
        "OpenAI's Node SDK is not installed: run `make node-clients`."
    )
    token = live.new_user(keys={"openrouter": OPENROUTER_CANARY})
    out = run_node(NODE_DIR / "openai_sdk.mjs", NODE_DIR, NB_URL=live.url, NB_TOKEN=token)
    return json.loads(out), token


def test_the_docs_example_runs(live: Live, tmp_path: Path) -> None:
    (tmp_path / "node_modules").symlink_to(NODE_DIR / "node_modules", target_is_directory=True)
    run_js_example("### OpenAI's Node SDK", live, tmp_path)
    assert image_size((tmp_path / "fox.png").read_bytes()) == (1344, 768)
    assert image_size((tmp_path / "purple.png").read_bytes()) == (1344, 768)
    assert image_size((tmp_path / "lighthouse.png").read_bytes()) == (768, 1344)  # 9:16 at 1K


def test_the_sdk_is_the_published_one() -> None:
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())
    installed = json.loads((NODE_DIR / "node_modules" / "openai" / "package.json").read_text())
    assert installed["version"] == lock["packages"]["node_modules/openai"]["version"]


def test_images_generate_edit_and_urls(sdk_run: tuple[dict[str, Any], str], live: Live) -> None:
    out, token = sdk_run
    generated = [base64.b64decode(b) for b in out["generate"]["b64"]]
    assert [image_size(b) for b in generated] == [(1344, 768), (1344, 768)]
    assert out["generate"]["size"] == "1344x768" and out["generate"]["output_format"] == "png"
    usage = out["generate"]["usage"]
    assert usage["output_tokens"] > 0 and "image_tokens" in usage["input_tokens_details"]
    [edited] = [base64.b64decode(b) for b in out["edit"]["b64"]]
    assert image_size(edited) == (1344, 768)  # the input's 16:9 kept
    assert out["edit"]["usage"]["input_tokens_details"]["image_tokens"] > 0
    with live.http(token) as c:
        fetched = c.get(out["url"])
    assert fetched.status_code == 200 and image_size(fetched.content)


def test_chat_plain_and_streamed(sdk_run: tuple[dict[str, Any], str]) -> None:
    out, _ = sdk_run
    [image] = out["chat"]["images"]
    assert image["type"] == "image/png"
    assert image_size(base64.b64decode(image["b64"])) == (1344, 768)
    assert out["chat"]["finish_reason"] == "stop" and out["chat"]["provider"]
    [tall] = out["stream"]["images"]
    width, height = image_size(base64.b64decode(tall["b64"]))
    assert height == 4 * width  # 1:4, asked through image_config
    assert out["stream"]["finish_reason"] == "stop"


def test_model_listings(sdk_run: tuple[dict[str, Any], str]) -> None:
    out, _ = sdk_run
    assert "google/gemini-3.1-flash-image" in out["models"]
    assert "gemini-3.1-flash-image" in out["image_models"]


def test_typed_errors(sdk_run: tuple[dict[str, Any], str]) -> None:
    errors = sdk_run[0]["errors"]
    bad_size = errors["bad_size"]
    assert bad_size["class"] == "BadRequestError" and bad_size["status"] == 400
    assert bad_size["param"] == "size" and "1344x768" in bad_size["message"]
    unknown = errors["unknown_model"]
    assert unknown["status"] == 400 and unknown["class"] == "BadRequestError"
    assert "no-such/model" in unknown["message"]
    bad_token = errors["bad_token"]
    assert bad_token["class"] == "AuthenticationError" and bad_token["status"] == 401
    assert "nbt_not-a-token" not in json.dumps(errors)


def test_every_call_became_one_job(sdk_run: tuple[dict[str, Any], str], live: Live) -> None:
    _, token = sdk_run
    with live.http(token) as c:
        items = c.get("/api/generations", params={"limit": 50}).json()["items"]
    kinds = sorted(i["kind"] for i in items)
    assert kinds == ["openai", "openai", "openai", "openrouter", "openrouter"]
    assert all(i["status"] == "succeeded" for i in items)

"""The nodes run as ComfyUI runs them, against the emulator: outputs, references, caching,
seeds and the errors a ComfyUI user sees."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch

from nanobanana import errors

from ..batch.support import generation_calls as image_calls
from .comfy import Executor, ValidationFailed
from .conftest import GEMINI_CANARY, OPENROUTER_CANARY, edit_node, generate_node

RED = {"class_type": "TestImage", "inputs": {"colors": "255,0,0;0,0,255", "width": 16, "height": 8}}


def test_generate_gives_an_image_batch(comfy: Executor, emu_env: Any) -> None:
    out = comfy.execute({"1": generate_node("a fox [emulator:size:64x48]", num_images=3)})
    images, text, info = out["1"]
    assert images.dtype == torch.float32 and tuple(images.shape) == (3, 48, 64, 3)
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    assert float(images.std()) > 0.01  # a picture, not a blank
    assert "a fox" in text
    meta = json.loads(info)
    assert meta["model"] == "gemini-2.5-flash-image" and meta["provider"] == "openrouter"
    assert meta["images"] == [{"width": 64, "height": 48}] * 3 and meta["cost"] > 0
    assert len(image_calls(emu_env)) == 3


def test_parameters_reach_the_provider(comfy: Executor, emu_env: Any) -> None:
    comfy.execute(
        {
            "1": generate_node(
                "a tower [emulator:size:64x36]",
                model="gemini-3-pro-image",
                aspect_ratio="16:9",
                image_size="2K",
                provider="google",
                negative_prompt="people",
                seed=0xFFFFFFFFFFFFFFFF,
            )
        }
    )
    (call,) = image_calls(emu_env)
    assert "gemini-3-pro-image" in call["path"]
    config = call["body"]["generationConfig"]
    assert config["imageConfig"] == {"aspectRatio": "16:9", "imageSize": "2K"}
    assert config["seed"] == 0xFFFFFFFFFFFFFFFF % 2**31  # folded into the API's range
    assert "Avoid the following in the image: people" in json.dumps(call["body"])


def test_reference_images_are_sent(comfy: Executor, emu_env: Any) -> None:
    comfy.execute({"1": RED, "2": generate_node("combine these", images=["1", 0])})
    (call,) = image_calls(emu_env)
    content = call["body"]["messages"][0]["content"]
    urls = [p["image_url"]["url"] for p in content if p["type"] == "image_url"]
    assert len(urls) == 2 and all(u.startswith("data:image/png;base64,") for u in urls)


def test_edit_edits_each_image_of_the_batch(comfy: Executor, emu_env: Any) -> None:
    out = comfy.execute({"1": RED, "2": edit_node(["1", 0], "make it night")})
    images, _, info, session = out["2"]
    assert session is None  # a conversation follows one image: a batch starts none
    assert images.shape[0] == 2 and images.shape[-1] == 3
    calls = image_calls(emu_env)
    assert len(calls) == 2
    for call in calls:
        parts = call["body"]["messages"][0]["content"]
        assert [p["type"] for p in parts].count("image_url") == 1
        assert any(p.get("text") == "make it night" for p in parts)
    assert len(json.loads(info)["edits"]) == 2


def test_same_inputs_are_cached_and_a_new_seed_calls_again(comfy: Executor, emu_env: Any) -> None:
    prompt = {"1": generate_node("a cached fox", seed=5)}
    first = comfy.execute(prompt)["1"][0]
    assert comfy.executed == ["1"]
    second = comfy.execute(prompt)["1"][0]
    assert comfy.executed == [] and second is first
    assert len(image_calls(emu_env)) == 1
    comfy.execute({"1": generate_node("a cached fox", seed=6)})  # "increment" after queueing
    assert comfy.executed == ["1"] and len(image_calls(emu_env)) == 2
    comfy.execute({"1": generate_node("a cached fox", seed=6)})
    assert len(image_calls(emu_env)) == 2


def test_downstream_edit_reruns_only_when_its_input_changed(comfy: Executor, emu_env: Any) -> None:
    prompt = {"1": generate_node("a boat"), "2": edit_node(["1", 0], "add a sail")}
    comfy.execute(prompt)
    comfy.execute(prompt)
    assert len(image_calls(emu_env)) == 2
    prompt["1"] = generate_node("a boat", seed=9)
    comfy.execute(prompt)
    assert comfy.executed == ["1", "2"] and len(image_calls(emu_env)) == 4


# ----------------------------------------------------------------------------- errors
def _run_error(comfy: Executor, prompt_text: str, **inputs: Any) -> errors.NanobananaError:
    with pytest.raises(errors.NanobananaError) as info:
        comfy.execute({"1": generate_node(prompt_text, **inputs)})
    message = str(info.value)
    for secret in (OPENROUTER_CANARY, GEMINI_CANARY):
        assert secret not in message
    return info.value


def test_no_key_says_where_keys_go(comfy: Executor, emu: Any) -> None:
    exc = _run_error(comfy, "a fox")
    assert isinstance(exc, errors.MissingKeyError)
    assert "OPENROUTER_API_KEY" in str(exc) and "never go in a node" in str(exc)
    assert "server profile" in str(exc) and "nanobanana keys set" in str(exc)


def test_the_keys_file_is_used_when_the_environment_has_no_key(
    comfy: Executor, emu: Any, isolated_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nanobanana.config import KeysFile

    monkeypatch.setenv("OPENROUTER_BASE_URL", emu.openrouter_url)
    KeysFile(isolated_env / "keys.json").set("openrouter", OPENROUTER_CANARY)
    images = comfy.execute({"1": generate_node("a fox [emulator:size:32x32]")})["1"][0]
    assert tuple(images.shape) == (1, 32, 32, 3)
    assert [r["api_key"] for r in image_calls(emu)] == [OPENROUTER_CANARY]


def test_quota_is_named(comfy: Executor, emu_env: Any) -> None:
    exc = _run_error(comfy, "a fox [emulator:quota-day]", provider="google")
    assert isinstance(exc, errors.QuotaError)
    assert str(exc).startswith("Quota exceeded at ")
    assert "other provider" in str(exc)


@pytest.mark.parametrize(
    ("spec", "reason"),
    [("safety", "IMAGE_SAFETY"), ("blocked-prompt", "PROHIBITED_CONTENT")],
)
def test_blocked_content_gives_the_reason(
    comfy: Executor, emu_env: Any, spec: str, reason: str
) -> None:
    exc = _run_error(comfy, f"a fox [emulator:{spec}]", provider="google")
    assert isinstance(exc, errors.BlockedError)
    assert str(exc).startswith("Blocked by google") and reason in str(exc)


def test_text_only_answer_shows_what_the_model_said(comfy: Executor, emu_env: Any) -> None:
    exc = _run_error(comfy, "a fox [emulator:text-only]")
    assert isinstance(exc, errors.NoImageError)
    assert str(exc).startswith("No image") and "The model said:" in str(exc)


def test_unknown_profile_is_explained(comfy: Executor, pack: Any, isolated_env: Any) -> None:
    from nanobanana.remote import ProfilesFile

    ProfilesFile(isolated_env / "profiles.json").set("studio", "http://127.0.0.1:9", "t0k")
    node = generate_node("a fox", server_profile="studio")
    ProfilesFile(isolated_env / "profiles.json").remove("studio")
    with pytest.raises(errors.UsageError, match="No server profile named 'studio'"):
        comfy.mappings["NanoBananaGenerate"]().generate(**node["inputs"])


# ------------------------------------------------------------------------ server profile
def test_a_server_profile_runs_the_job_on_the_server(
    comfy: Executor, emu: Any, tmp_path: Any, isolated_env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nanobanana.remote import ProfilesFile

    from ..batch.support import SERVER_KEY_CANARY, live_server

    monkeypatch.setenv("OPENROUTER_API_KEY", OPENROUTER_CANARY)  # must not be used
    with live_server(tmp_path, emu) as server:
        ProfilesFile(isolated_env / "profiles.json").set("studio", server.url, server.token)
        prompt = {
            "1": RED,
            "2": generate_node(
                "a poster [emulator:size:48x64]", server_profile="studio", images=["1", 0]
            ),
            "3": edit_node(["2", 0], "add a title", server_profile="studio"),
        }
        out = comfy.execute(prompt)
        with server.client() as c:
            jobs = c.get("/api/generations").json()["items"]
    images, _, info = out["2"]
    assert tuple(images.shape) == (1, 64, 48, 3)
    meta = json.loads(info)
    assert meta["where"] == "server" and meta["profile"] == "studio" and meta["job_id"]
    assert out["3"][0].shape[0] == 1
    # Both jobs are in the user's gallery, made with the key stored on the server.
    assert sorted(j["prompt"] for j in jobs) == ["a poster [emulator:size:48x64]", "add a title"]
    assert {r["api_key"] for r in image_calls(emu)} == {SERVER_KEY_CANARY}
    saved = json.dumps({"prompt": prompt, "outputs": [out["2"][1:], out["3"][1:3]]})
    assert server.token not in saved and OPENROUTER_CANARY not in saved


def test_a_workflow_with_the_design_notes_model_id_runs_and_warns(
    comfy: Executor, emu_env: Any
) -> None:
    out = comfy.execute(
        {"1": generate_node("a fox", model="google/gemini-2.5-flash-image-preview")}
    )
    meta = json.loads(out["1"][2])
    assert meta["model"] == "gemini-2.5-flash-image"
    assert any("retired preview id" in w for w in meta["warnings"])


def test_an_unknown_model_is_refused_before_running(comfy: Executor, emu_env: Any) -> None:
    with pytest.raises(ValidationFailed, match="Unknown model 'no-such-model'"):
        comfy.execute({"1": generate_node("a fox", model="no-such-model")})
    assert image_calls(emu_env) == []


def test_a_model_only_the_listing_has_runs_and_joins_the_list(
    comfy: Executor, pack: Any, emu_env: Any
) -> None:
    node = pack.NODE_CLASS_MAPPINGS["NanoBananaGenerate"]
    assert "openai/gpt-5-image-mini" not in node.INPUT_TYPES()["required"]["model"][0]
    out = comfy.execute({"1": generate_node("a fox", model="openai/gpt-5-image-mini")})
    assert json.loads(out["1"][2])["model"] == "openai/gpt-5-image-mini"
    # The listing that run kept offers the model in the node's list from then on.
    choices = node.INPUT_TYPES()["required"]["model"][0]
    assert "openai/gpt-5-image-mini" in choices and "black-forest-labs/flux.2-klein-4b" in choices
    assert choices[0] == "gemini-3.1-flash-image"  # the catalog's models first
    # An author/model id no listing has is refused by the generation, before any image call.
    with pytest.raises(errors.UnknownModelError, match="Unknown model 'acme/painter'"):
        comfy.execute({"1": generate_node("a fox", model="acme/painter")})
    assert len(image_calls(emu_env)) == 1


def test_the_thinking_level_reaches_the_provider_or_is_refused_first(
    comfy: Executor, emu_env: Any
) -> None:
    out = comfy.execute({"1": generate_node("a fox [emulator:size:64x48]", thinking="high")})
    assert json.loads(out["1"][2])["thinking"] == "high"
    (call,) = image_calls(emu_env)
    assert call["body"]["reasoning"] == {"effort": "high"}
    node = generate_node("a fox", model="gemini-3.1-flash-lite-image", thinking="low")
    with pytest.raises(errors.ValidationError, match="Thinking level 'low' is not supported"):
        comfy.execute({"1": node})
    assert len(image_calls(emu_env)) == 1


def test_google_search_reaches_the_provider(comfy: Executor, emu_env: Any) -> None:
    node = generate_node("a fox [emulator:size:64x48]", google_search=True, provider="google")
    out = comfy.execute({"1": node})
    assert json.loads(out["1"][2])["google_search"] is True
    (call,) = image_calls(emu_env)
    assert call["body"]["tools"] == [{"googleSearch": {}}]


def test_image_options_reach_openrouter_or_are_refused_first(comfy: Executor, emu_env: Any) -> None:
    node = generate_node(
        "a fox [emulator:size:64x48]", image_options='{"style": "Photorealism", "strength": 0.4}'
    )
    out = comfy.execute({"1": node})
    assert json.loads(out["1"][2])["image_options"] == {"style": "Photorealism", "strength": 0.4}
    (call,) = image_calls(emu_env)
    assert call["body"]["image_config"]["style"] == "Photorealism"
    for bad in ("style=x", "[1]", '{"on": true}'):
        with pytest.raises(errors.ValidationError, match=r"image_options must be|is bool"):
            comfy.execute({"1": generate_node("a fox", image_options=bad)})
    assert len(image_calls(emu_env)) == 1


# ------------------------------------------------------------------------------ sessions
ONE = {"class_type": "TestImage", "inputs": {"colors": "255,0,0", "width": 16, "height": 8}}
PRO = {"model": "gemini-3-pro-image", "provider": "google"}


def _conversation(**inputs: Any) -> dict[str, Any]:
    """An image edited, then two edits that both continue that first edit (a branch)."""
    inputs = {**PRO, **inputs}
    return {
        "1": ONE,
        "2": edit_node(["1", 0], "make it night", **inputs),
        "3": edit_node(None, "add stars", session=["2", 3], **inputs),
        "4": edit_node(None, "add a moon", session=["2", 3], **inputs),
    }


def test_a_session_carries_the_conversation_between_edit_nodes(
    comfy: Executor, emu_env: Any
) -> None:
    from nanobanana.emulator import signatures

    out = comfy.execute(_conversation())
    assert all(out[n][0].shape[0] == 1 for n in ("2", "3", "4"))
    first, stars, moon = image_calls(emu_env)
    assert len(first["body"]["contents"]) == 1
    for call, asked in ((stars, "add stars"), (moon, "add a moon")):
        user, model, now = call["body"]["contents"]
        assert user["parts"][0]["text"] == "make it night" and "inlineData" in user["parts"][1]
        assert model["role"] == "model"
        assert all(signatures.verify(p["thoughtSignature"], PRO["model"]) for p in model["parts"])
        assert now["parts"] == [{"text": asked}]
    # Both branches sent the first edit's answer, the same way.
    assert stars["body"]["contents"][1] == moon["body"]["contents"][1]
    assert json.loads(out["3"][2])["turn"] == 2


def test_an_edit_needs_an_image_or_a_session(comfy: Executor, emu_env: Any) -> None:
    with pytest.raises(errors.UsageError, match="Connect an image to edit, or a session"):
        comfy.execute({"1": edit_node(None, "make it night")})


def test_a_session_stays_where_it_started(comfy: Executor, emu_env: Any, isolated_env: Any) -> None:
    from nanobanana.remote import ProfilesFile

    ProfilesFile(isolated_env / "profiles.json").set("studio", "http://127.0.0.1:9", "tok")
    prompt = _conversation()
    prompt["3"]["inputs"]["server_profile"] = "studio"
    with pytest.raises(errors.UsageError, match="runs with local keys"):
        comfy.execute(prompt)


def test_a_session_on_a_server_profile_is_the_servers_session(
    comfy: Executor, emu: Any, tmp_path: Any, isolated_env: Any
) -> None:
    from nanobanana.remote import ProfilesFile

    from ..batch.support import live_server

    with live_server(tmp_path, emu) as server:
        ProfilesFile(isolated_env / "profiles.json").set("studio", server.url, server.token)
        # The server's user stored an OpenRouter key: the turns go there.
        out = comfy.execute(_conversation(server_profile="studio", provider="openrouter"))
        with server.client() as c:
            (listed,) = c.get("/api/sessions").json()["items"]
            tree = c.get(f"/api/sessions/{listed['id']}").json()
    night = tree["turns"][0]
    assert [t["prompt"] for t in tree["turns"]] == ["make it night", "add stars", "add a moon"]
    assert [t["parent_turn_id"] for t in tree["turns"]] == [None, night["id"], night["id"]]
    assert json.loads(out["4"][2])["session_id"] == listed["id"]
    assert len(image_calls(emu)) == 3

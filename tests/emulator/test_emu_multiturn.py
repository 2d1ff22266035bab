"""Multi-turn Gemini: thought signatures handed out by Gemini 3 image models and checked when an
earlier model turn comes back, and the history each request carried, as recorded."""

from __future__ import annotations

import base64
import copy
from typing import Any

import httpx
import pytest
from google import genai
from google.genai import types

from nanobanana.emulator import EmulatorServer
from nanobanana.emulator.recorder import digest

from .helpers import CHAT, GEMINI_HEADERS, GEMINI_KEY, OR_HEADERS, gen_path, sse_data

PRO = "gemini-3-pro-image-preview"
MISSING = "Image part is missing a thought_signature in content position 1, part position 1."


def _post(http: httpx.Client, model: str, contents: list[Any], **kw: Any) -> httpx.Response:
    method = kw.pop("method", "generateContent")
    return http.post(
        gen_path(model, method) + kw.pop("query", ""),
        json={"contents": contents},
        headers=GEMINI_HEADERS,
    )


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


def _model_turn(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    content: dict[str, Any] = response.json()["candidates"][0]["content"]
    return content


@pytest.mark.parametrize(
    "model", [PRO, "gemini-3.1-flash-image-preview", "gemini-3.1-flash-lite-image"]
)
def test_gemini_3_image_models_sign_the_text_and_every_image_part(
    http: httpx.Client, model: str
) -> None:
    parts = _model_turn(_post(http, model, [_user("a red fox")]))["parts"]
    assert [("text" in p, "inlineData" in p) for p in parts] == [(True, False), (False, True)]
    signatures = [p["thoughtSignature"] for p in parts]
    assert all(isinstance(s, str) and s for s in signatures) and len(set(signatures)) == 2


def test_gemini_2_5_image_signs_nothing_and_takes_unsigned_history(http: httpx.Client) -> None:
    model = "gemini-2.5-flash-image"
    turn = _model_turn(_post(http, model, [_user("a red fox")]))
    assert not any("thoughtSignature" in p for p in turn["parts"])
    again = _post(http, model, [_user("a red fox"), turn, _user("make it blue")])
    assert again.status_code == 200


def test_an_earlier_image_part_without_its_signature_is_refused(
    http: httpx.Client, emu: EmulatorServer
) -> None:
    turn = _model_turn(_post(http, PRO, [_user("a red fox")]))
    # The text part may lose its signature; the image part may not.
    turn["parts"][0].pop("thoughtSignature")
    assert _post(http, PRO, [_user("a red fox"), turn, _user("purple sky")]).status_code == 200
    turn["parts"][1].pop("thoughtSignature")
    r = _post(http, PRO, [_user("a red fox"), turn, _user("purple sky")])
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["status"] == "INVALID_ARGUMENT" and error["message"].startswith(MISSING)
    assert "ai.google.dev/gemini-api/docs/thought-signatures" in error["message"]
    assert emu.requests()[-1]["status"] == 400


def test_an_altered_or_foreign_signature_is_corrupted(http: httpx.Client) -> None:
    turn = _model_turn(_post(http, PRO, [_user("a red fox")]))
    altered = copy.deepcopy(turn)
    sig = altered["parts"][1]["thoughtSignature"]
    altered["parts"][1]["thoughtSignature"] = sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")
    flash = _model_turn(_post(http, "gemini-3.1-flash-image-preview", [_user("a red fox")]))
    for bad in (altered, flash):  # flash's signatures are not Pro's
        r = _post(http, PRO, [_user("a red fox"), bad, _user("purple sky")])
        assert r.status_code == 400
        assert r.json()["error"]["message"] == "Corrupted thought signature."
    # The preview and the stable name are one model.
    assert _post(http, "gemini-3-pro-image", [_user("x"), turn, _user("y")]).status_code == 200


def test_not_base64_signature_is_a_parse_error(http: httpx.Client) -> None:
    turn = _model_turn(_post(http, PRO, [_user("a red fox")]))
    turn["parts"][1]["thoughtSignature"] = "@@not base64@@"
    r = _post(http, PRO, [_user("a red fox"), turn, _user("purple sky")])
    assert r.status_code == 400
    assert "contents[1].parts[1].thought_signature' (TYPE_BYTES)" in r.json()["error"]["message"]


@pytest.mark.parametrize(
    "placeholder", ["skip_thought_signature_validator", "context_engineering_is_the_way_to_go"]
)
def test_documented_placeholders_pass_for_turns_from_elsewhere(
    http: httpx.Client, placeholder: str
) -> None:
    turn = _model_turn(_post(http, "gemini-2.5-flash-image", [_user("a red fox")]))
    r = _post(http, PRO, [_user("a red fox"), turn, _user("purple sky")])
    assert r.status_code == 400 and r.json()["error"]["message"].startswith(MISSING)
    for part in turn["parts"]:
        part["thoughtSignature"] = placeholder
    assert _post(http, PRO, [_user("a red fox"), turn, _user("purple sky")]).status_code == 200


def test_streamed_answers_carry_the_same_signatures(http: httpx.Client) -> None:
    r = _post(http, PRO, [_user("a red fox")], method="streamGenerateContent", query="?alt=sse")
    parts = [p for e in sse_data(r.content) for p in e["candidates"][0]["content"].get("parts", [])]
    assert len(parts) == 2 and all(p.get("thoughtSignature") for p in parts)
    history = [_user("a red fox"), {"role": "model", "parts": parts}, _user("purple sky")]
    assert _post(http, PRO, history).status_code == 200


def test_the_sdk_chat_sends_back_every_signature_and_the_emulator_records_it(
    emu: EmulatorServer,
) -> None:
    options = types.HttpOptions(base_url=emu.gemini_url, api_version="v1beta")
    client = genai.Client(api_key=GEMINI_KEY, http_options=options)
    try:
        chat = client.chats.create(
            model=PRO, config=types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"])
        )
        answers = [chat.send_message(m) for m in ("a red fox", "purple sky", "remove the fox")]
    finally:
        client.close()
    bodies = [e["body"] for e in emu.requests()[-3:]]
    assert [len(b["contents"]) for b in bodies] == [1, 3, 5]
    for n, body in enumerate(bodies[1:], start=1):
        for turn, answer in zip(body["contents"][1::2], answers[:n], strict=True):
            sent = answer.candidates[0].content.parts
            assert turn["role"] == "model"
            got = [p.get("thoughtSignature") for p in turn["parts"]]
            want = [p.thought_signature for p in sent]
            assert all(got) and len(got) == len(want) == 2
            # The SDK sends the bytes back as it received them (base64 of the same bytes).
            decoded = [types.Part.model_validate({"thought_signature": g}) for g in got]
            assert [p.thought_signature for p in decoded] == want
            image = turn["parts"][1]["inlineData"]["data"]
            assert image.endswith(f"sha256:{digest_of(sent[1].inline_data.data)}>")


def digest_of(raw: bytes | None) -> str:
    assert raw is not None
    return digest(base64.b64encode(raw).decode())


# -- OpenRouter ---------------------------------------------------------------------------------

OR_PRO = "google/gemini-3-pro-image-preview"


def _chat(
    http: httpx.Client, messages: list[Any], model: str = OR_PRO, **extra: Any
) -> httpx.Response:
    body = {"model": model, "messages": messages, "modalities": ["image", "text"], **extra}
    return http.post(CHAT, json=body, headers=OR_HEADERS)


def test_openrouter_hands_on_gemini_signatures_as_reasoning_details(http: httpx.Client) -> None:
    r = _chat(http, [{"role": "user", "content": "a red fox"}])
    message = r.json()["choices"][0]["message"]
    (detail,) = message["reasoning_details"]
    assert detail["type"] == "reasoning.encrypted" and detail["format"] == "google-gemini-v1"
    assert detail["data"]
    url = message["images"][0]["image_url"]["url"]
    history = [
        {"role": "user", "content": "a red fox"},
        {"role": "assistant", "content": message["content"], "reasoning_details": [detail]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "purple sky"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        },
    ]
    assert _chat(http, history).status_code == 200
    flat = _chat(http, [{"role": "user", "content": "x"}], model="google/gemini-2.5-flash-image")
    assert "reasoning_details" not in flat.json()["choices"][0]["message"]
    streamed = _chat(http, [{"role": "user", "content": "x"}], stream=True)
    chunks = [c for c in sse_data(streamed.content) if isinstance(c, dict) and c.get("choices")]
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert any(d.get("reasoning_details") for d in deltas)


def test_openrouter_refuses_a_tampered_signature_as_googles_error(http: httpx.Client) -> None:
    detail = _chat(http, [{"role": "user", "content": "a"}]).json()["choices"][0]["message"][
        "reasoning_details"
    ][0]
    detail["data"] = detail["data"][:-6] + "AAAAAA"
    history = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "", "reasoning_details": [detail]},
        {"role": "user", "content": "b"},
    ]
    r = _chat(http, history)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["message"] == "Provider returned error"
    assert "Corrupted thought signature." in error["metadata"]["raw"]


def test_openrouter_takes_image_parts_only_in_user_messages(http: httpx.Client) -> None:
    url = _chat(http, [{"role": "user", "content": "a"}]).json()["choices"][0]["message"]["images"][
        0
    ]["image_url"]["url"]
    history = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": url}}]},
        {"role": "user", "content": "b"},
    ]
    r = _chat(http, history)
    assert r.status_code == 400
    assert "only accepted in user messages" in r.json()["error"]["message"]

"""Multi-turn editing through the OpenRouter-compatible endpoint: a client sends the whole
conversation (each answer with its images, as OpenRouter gave them) and the next instruction;
the earlier turns reach the model as history, on either provider."""

from __future__ import annotations

import base64
import json
from typing import Any

import openai
import pytest

from nanobanana.emulator import EmulatorServer
from nanobanana.emulator.recorder import digest

from ..support import png_bytes
from .conftest import Live, decode_data_url, tag, upstream_prompts

pytestmark = pytest.mark.timeout(60)
MODEL = "google/gemini-3-pro-image"


def sdk(live: Live) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{live.url}/api/v1", api_key=live.token, max_retries=0)


PLACEHOLDER = b"skip_thought_signature_validator"


def kept_message(reply: Any, *, details: bool) -> dict[str, Any]:
    """The assistant message as a chat app keeps it and sends it back: its text, its images
    as OpenRouter's ``images`` field has them, and (``details``: an app that follows
    OpenRouter's reasoning guide) its ``reasoning_details`` unchanged."""
    message = reply.choices[0].message
    extra = message.model_extra or {}
    kept = {"role": "assistant", "content": message.content or "", "images": extra["images"]}
    if details:
        kept["reasoning_details"] = extra["reasoning_details"]
    return kept


def two_turns(live: Live, provider: str, *, details: bool) -> tuple[str, dict[str, Any], Any]:
    """A first turn, then "make the sky purple" with the first answer sent back: (the marker
    in the first prompt, the answer as kept, the second reply)."""
    marker = tag()
    body = {"modalities": ["image", "text"], "provider": provider}
    first = [{"role": "user", "content": f"a red fox {marker}"}]
    with sdk(live) as client:
        one = client.chat.completions.create(model=MODEL, messages=first, extra_body=body)  # type: ignore[arg-type]
        kept = kept_message(one, details=details)
        messages = [*first, kept, {"role": "user", "content": "make the sky purple"}]
        two = client.chat.completions.create(model=MODEL, messages=messages, extra_body=body)  # type: ignore[arg-type]
    return marker, kept, two


def signature_bytes(signature: str) -> bytes:
    """A ``thoughtSignature`` as the SDK sent it (URL-safe alphabet), decoded."""
    return base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))


@pytest.mark.parametrize("provider", ["openrouter", "google"])
def test_the_conversation_before_the_prompt_goes_upstream(
    live: Live, emulator: EmulatorServer, provider: str
) -> None:
    marker, drawn, two = two_turns(live, provider, details=False)
    assert two.choices[0].message.content
    _, first_png = decode_data_url(drawn["images"][0]["image_url"]["url"])
    first_image = f"sha256:{digest(base64.b64encode(first_png).decode())}>"
    sent = upstream_prompts(emulator, marker)
    assert len(sent) == 2 and sent[1]["status"] == 200
    if provider == "openrouter":
        history = sent[1]["body"]["messages"]
        assert [m["role"] for m in history] == ["user", "assistant", "user"]
        assert history[1]["content"] == drawn["content"]
        # The answer's image opens the next user message.
        assert history[2]["content"][0]["image_url"]["url"].endswith(first_image)
        assert history[2]["content"][1]["text"] == "make the sky purple"
    else:
        contents = sent[1]["body"]["contents"]
        assert [c["role"] for c in contents] == ["user", "model", "user"]
        text, image = contents[1]["parts"]
        assert text["text"] == drawn["content"]
        assert image["inlineData"]["data"].endswith(first_image)
        # Not this model's turn as far as the service knows: the documented placeholder.
        assert signature_bytes(image["thoughtSignature"]) == PLACEHOLDER
    # The job keeps the conversation it was asked with (the images as stored uploads).
    with live.http(live.token) as c:
        record = c.get(f"/api/generations/{two.id.removeprefix('gen-')}").json()["request"]
    (turn,) = record["history"]
    assert turn["prompt"] == f"a red fox {marker}" and len(turn["images"]) == 1
    assert turn["text"] == drawn["content"] and turn["images_left_out"] == 0


def test_the_same_prompt_after_another_conversation_is_another_request(
    live: Live, emulator: EmulatorServer
) -> None:
    marker = tag()
    body = {"modalities": ["image", "text"]}
    png = "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    last = {"role": "user", "content": f"now make it blue {marker}"}
    with sdk(live) as client:
        replies = [
            client.chat.completions.create(
                model=MODEL,
                messages=[  # type: ignore[list-item]
                    {"role": "user", "content": f"a {thing}"},
                    {
                        "role": "assistant",
                        "content": "",
                        "images": [{"type": "image_url", "image_url": {"url": png}}],
                    },
                    last,
                ],
                extra_body=body,
            )
            for thing in ("cat", "dog")
        ]
    assert replies[0].id != replies[1].id  # not answered as a blind retry of the first
    sent = upstream_prompts(emulator, marker)
    assert [s["body"]["messages"][0]["content"][0]["text"] for s in sent] == ["a cat", "a dog"]


def test_images_not_sent_as_data_are_told_not_fetched(live: Live, emulator: EmulatorServer) -> None:
    marker = tag()
    messages = [
        {"role": "user", "content": "a fox"},
        {
            "role": "assistant",
            "content": "Here it is",
            "images": [{"type": "image_url", "image_url": {"url": "https://example.com/fox.png"}}],
        },
        {"role": "user", "content": f"purple sky {marker}"},
    ]
    with sdk(live) as client:
        client.chat.completions.create(
            model=MODEL,
            messages=messages,  # type: ignore[arg-type]
            extra_body={"modalities": ["image", "text"]},
        )
    (sent,) = upstream_prompts(emulator, marker)
    history = sent["body"]["messages"]
    assert history[1] == {
        "role": "assistant",
        "content": "Here it is [1 image of this turn not repeated here]",
    }
    assert history[2]["content"] == [{"type": "text", "text": f"purple sky {marker}"}]


@pytest.mark.parametrize("provider", ["google", "openrouter"])
def test_reasoning_details_sent_back_continue_the_model_turn_exactly(
    live: Live, emulator: EmulatorServer, provider: str
) -> None:
    from nanobanana.emulator import signatures

    marker, kept, _ = two_turns(live, provider, details=True)
    (entry,) = kept["reasoning_details"]
    assert entry["type"] == "reasoning.encrypted" and entry["format"] == "nanobanana-v1"
    second = upstream_prompts(emulator, marker)[1]
    assert second["status"] == 200
    if provider == "google":
        model_turn = second["body"]["contents"][1]["parts"]
        # The model's own signatures, as it gave them: not the placeholder.
        sent = [p.get("thoughtSignature", "") for p in model_turn]
        assert len(sent) == 2 and all(signatures.verify(s, "gemini-3-pro-image") for s in sent)
        assert PLACEHOLDER not in [signature_bytes(s) for s in sent]
    else:
        (upstream,) = second["body"]["messages"][1]["reasoning_details"]
        assert upstream["format"] == "google-gemini-v1"
        assert signatures.verify(upstream["data"], "google/gemini-3-pro-image")


@pytest.mark.parametrize(
    "details",
    [
        "not a list",
        [{"format": "nanobanana-v1", "data": "@@@"}],
        [{"format": "nanobanana-v1", "data": "eyJwcm92aWRlciI6ICJnb29nbGUifQ"}],  # no model
        # Ours in shape, with parts no provider made: each bad part is dropped, not sent.
        [
            {
                "type": "reasoning.encrypted",
                "format": "nanobanana-v1",
                "data": base64.urlsafe_b64encode(
                    json.dumps(
                        {
                            "provider": "google",
                            "model": "gemini-3-pro-image",
                            "continuation": {
                                "parts": [
                                    1,
                                    {"text": 5},
                                    {"image": "0"},
                                    {"text": "hi", "thoughtSignature": "@@"},
                                ]
                            },
                        }
                    ).encode()
                ).decode(),
            }
        ],
    ],
)
def test_reasoning_details_a_client_made_up_are_read_with_care(
    live: Live, emulator: EmulatorServer, details: Any
) -> None:
    marker = tag()
    messages = [
        {"role": "user", "content": "a fox"},
        {"role": "assistant", "content": "Here it is", "reasoning_details": details},
        {"role": "user", "content": f"purple sky {marker}"},
    ]
    with sdk(live) as client:
        reply = client.chat.completions.create(
            model=MODEL,
            messages=messages,  # type: ignore[arg-type]
            extra_body={"modalities": ["image", "text"], "provider": "google"},
        )
    assert reply.choices[0].message.content
    (sent,) = upstream_prompts(emulator, marker)
    assert sent["status"] == 200
    model_turn = sent["body"]["contents"][1]["parts"]
    assert all(isinstance(p.get("text"), str) for p in model_turn)
    assert "@@" not in json.dumps(model_turn)


def test_a_streamed_answer_hands_back_its_reasoning_details(live: Live) -> None:
    with live.http(live.token) as c:
        r = c.post(
            "/api/v1/chat/completions",
            json={
                "model": MODEL,
                "messages": [{"role": "user", "content": "a fox"}],
                "stream": True,
                "provider": "google",
            },
        )
    chunks = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: {")]
    deltas = [c["choices"][0]["delta"] for c in chunks if c.get("choices")]
    (with_images,) = [d for d in deltas if d.get("images")]
    assert with_images["reasoning_details"][0]["format"] == "nanobanana-v1"

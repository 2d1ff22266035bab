"""Conversational editing in the library: a session's turns, branches, and exactly the history
each turn sends upstream (as the emulator recorded it), on both providers."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import pytest
from google import genai
from google.genai import types

from nanobanana import Client, PriorTurn, errors
from nanobanana.conversation import AsyncSession, Turn, history_for
from nanobanana.emulator import EmulatorServer
from nanobanana.types import ReferenceImage

from .test_client_emulator import KEYS, client_for, endpoints

MODEL = "gemini-3-pro-image"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def _posts(emu: EmulatorServer) -> list[dict[str, Any]]:
    return [r for r in emu.requests() if r["method"] == "POST"]


def _gemini_shape(contents: list[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """Each content as (role, parts): a text, or an image by the digest of its bytes, each with
    its signature (or None)."""
    shape = []
    for content in contents:
        parts = []
        for part in content["parts"]:
            data = part.get("inlineData", {}).get("data")
            what = part["text"] if "text" in part else data.rsplit("sha256:", 1)[1].rstrip(">")
            parts.append((what, _bytes(part.get("thoughtSignature"))))
        shape.append((content["role"], parts))
    return shape


def _bytes(signature: str | None) -> bytes | None:
    """A signature's bytes: the SDK sends them in the URL-safe alphabet, as proto3 JSON may."""
    if signature is None:
        return None
    return base64.b64decode(signature.replace("-", "+").replace("_", "/") + "==")


async def _three_turns_and_a_branch(session: AsyncSession) -> list[Turn]:
    t1 = await session.send("a red fox in the snow")
    t2 = await session.send("make the sky purple")
    t3 = await session.send("now remove the fox")
    t4 = await session.branch(t1).send("make it autumn instead")
    return [t1, t2, t3, t4]


async def test_gemini_turns_send_exactly_their_ancestor_path_with_every_signature(
    emu: EmulatorServer,
) -> None:
    async with client_for(emu) as client:
        session = client.session(model=MODEL, provider="google")
        t1, t2, t3, t4 = await _three_turns_and_a_branch(session)
    assert [t.parent for t in (t1, t2, t3, t4)] == [None, t1, t2, t1]
    assert session.children(t1) == [t2, t4] and session.head is t4
    assert all(t.provider == "google" and len(t.images) == 1 for t in (t1, t2, t3, t4))
    sent = [_gemini_shape(p["body"]["contents"]) for p in _posts(emu)]
    assert len(sent) == 4

    def model_turn(turn: Turn) -> tuple[str, list[Any]]:
        # What the emulator signed: the text part and the image part, each signature as made.
        parts = turn.images[0].continuation["parts"]  # type: ignore[index]
        assert [bool(p.get("thoughtSignature")) for p in parts] == [True, True]
        return (
            "model",
            [
                (turn.text, _bytes(parts[0]["thoughtSignature"])),
                (_digest(turn.images[0].data), _bytes(parts[1]["thoughtSignature"])),
            ],
        )

    def user(text: str) -> tuple[str, list[Any]]:
        return ("user", [(text, None)])

    assert sent[0] == [user(t1.prompt)]
    assert sent[1] == [user(t1.prompt), model_turn(t1), user(t2.prompt)]
    assert sent[2] == [
        user(t1.prompt),
        model_turn(t1),
        user(t2.prompt),
        model_turn(t2),
        user(t3.prompt),
    ]
    # The branch: t1's answer, not t2's or t3's.
    assert sent[3] == [user(t1.prompt), model_turn(t1), user(t4.prompt)]


async def test_openrouter_turns_send_the_path_with_images_in_user_messages(
    emu: EmulatorServer,
) -> None:
    async with client_for(emu) as client:
        session = client.session(model=MODEL, provider="openrouter")
        t1, t2, t3, t4 = await _three_turns_and_a_branch(session)
    assert all(t.provider == "openrouter" for t in (t1, t2, t3, t4))
    bodies = [p["body"]["messages"] for p in _posts(emu)]

    def user(text: str, drawn: Turn | None = None) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if drawn is not None:
            data = drawn.images[0].data
            url = f"data:image/png;base64,<{len(_b64(data))} chars, sha256:{_digest(data)}>"
            content.append({"type": "image_url", "image_url": {"url": url}})
        return {"role": "user", "content": [*content, {"type": "text", "text": text}]}

    def answer(turn: Turn) -> dict[str, Any]:
        details = turn.images[0].continuation["reasoning_details"]  # type: ignore[index]
        assert details[0]["type"] == "reasoning.encrypted"
        return {"role": "assistant", "content": turn.text, "reasoning_details": details}

    assert bodies[0] == [user(t1.prompt)]
    assert bodies[1] == [user(t1.prompt), answer(t1), user(t2.prompt, t1)]
    assert bodies[2] == [
        user(t1.prompt),
        answer(t1),
        user(t2.prompt, t1),
        answer(t2),
        user(t3.prompt, t2),
    ]
    assert bodies[3] == [user(t1.prompt), answer(t1), user(t4.prompt, t1)]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.mark.parametrize("provider", ["google", "openrouter"])
async def test_streamed_turns_continue_as_well(emu: EmulatorServer, provider: str) -> None:
    async with client_for(emu) as client:
        session = client.session(model=MODEL, provider=provider)
        t1 = await session.send("a red fox", stream=True)
        t2 = await session.send("purple sky", stream=True)
    assert t1.images[0].continuation and t2.parent is t1
    last = _posts(emu)[-1]["body"]
    if provider == "google":
        model_turn = last["contents"][1]
        assert model_turn["role"] == "model" and all(
            p["thoughtSignature"] for p in model_turn["parts"]
        )
    else:
        assert last["messages"][1]["reasoning_details"]


async def test_a_fallback_inside_a_session_keeps_working_and_says_who_served(
    emu: EmulatorServer,
) -> None:
    async with client_for(emu) as client:
        session = client.session(model=MODEL, provider="google")
        t1 = await session.send("a red fox")
        t2 = await session.send("[emulator@gemini:quota-day] purple sky")
        t3 = await session.send("remove the fox")
    assert [t.provider for t in (t1, t2, t3)] == ["google", "openrouter", "google"]
    assert t2.result.fallback_used
    posts = _posts(emu)
    # Turn 2 on OpenRouter: Google's signatures are not OpenRouter's, so turn 1 goes as text and
    # its image, without reasoning_details.
    fallen = posts[2]["body"]["messages"]
    assert posts[2]["service"] == "openrouter" and "reasoning_details" not in fallen[1]
    assert fallen[2]["content"][0]["type"] == "image_url"
    # Turn 3 back on Google: turn 1 with its own signatures, turn 2 (OpenRouter's) under the
    # placeholder the Gemini 3 guide allows for turns from elsewhere.
    contents = posts[3]["body"]["contents"]
    assert posts[3]["status"] == 200
    own, foreign = contents[1]["parts"], contents[3]["parts"]
    kept = t1.images[0].continuation["parts"][1]["thoughtSignature"]  # type: ignore[index]
    assert _bytes(own[1]["thoughtSignature"]) == _bytes(kept)
    placeholder = {"thought_signature": foreign[-1]["thoughtSignature"]}
    assert (
        types.Part.model_validate(placeholder).thought_signature
        == b"skip_thought_signature_validator"
    )


async def test_old_turns_lose_their_images_by_the_documented_rule(emu: EmulatorServer) -> None:
    async with client_for(emu) as client:
        session = client.session(model=MODEL, provider="google", image_turns=2)
        for prompt in ("a fox", "purple sky", "a moon", "two moons"):
            await session.send(prompt)
    contents = _posts(emu)[-1]["body"]["contents"]
    models = [c["parts"] for c in contents if c["role"] == "model"]
    assert [sum("inlineData" in p for p in parts) for parts in models] == [0, 1, 1]
    assert models[0][-1]["text"] == "[1 image of this turn not repeated here]"
    assert _posts(emu)[-1]["status"] == 200


def test_history_for_keeps_the_last_turns_whole() -> None:
    png = ReferenceImage(b"\x89PNG fake", "image/png", 1, 1)
    path = [
        PriorTurn(prompt=f"p{i}", references=(png,), text=f"t{i}", images=(png, png))
        for i in range(4)
    ]
    sent = history_for(path, image_turns=1)
    assert [len(t.images) + len(t.references) for t in sent] == [0, 0, 0, 3]
    assert [t.images_left_out for t in sent] == [3, 3, 3, 0]
    assert [t.prompt for t in sent] == ["p0", "p1", "p2", "p3"]
    assert history_for(path, image_turns=0)[-1].images == ()
    assert history_for(path, image_turns=9) == tuple(path)


async def test_references_go_with_their_turn(emu: EmulatorServer) -> None:
    async with client_for(emu) as client:
        first = await client.generate("a cat", provider="google", model=MODEL)
        session = client.session(model=MODEL, provider="google")
        t1 = await session.send("this cat, in a hat", images=[first.images[0]])
        await session.send("a bigger hat")
    contents = _posts(emu)[-1]["body"]["contents"]
    assert contents[0]["parts"][1]["inlineData"]["data"].endswith(
        f"sha256:{_digest(first.images[0].data)}>"
    )
    assert t1.references[0].data == first.images[0].data


async def test_a_failed_turn_adds_nothing_and_bad_parents_are_refused(
    emu: EmulatorServer,
) -> None:
    async with client_for(emu) as client:
        session = client.session(model=MODEL, provider="google", fallback=False)
        t1 = await session.send("a fox")
        with pytest.raises(errors.QuotaError):
            await session.send("[emulator@gemini:quota-day] purple")
        assert session.turns == [t1] and session.head is t1
        other = client.session(model=MODEL, provider="google")
        with pytest.raises(errors.ValidationError, match="not part of this session"):
            await other.send("x", parent=t1)
        with pytest.raises(errors.ValidationError, match="not part of this session"):
            other.branch(t1)
        fresh = await session.send("a new start", parent=None)
    assert fresh.parent is None and session.children(None) == [t1, fresh]


async def test_a_bad_image_turns_is_refused_when_the_session_is_made(
    emu: EmulatorServer,
) -> None:
    async with client_for(emu) as client:
        for bad in (-1, 1.5, True):
            with pytest.raises(errors.ValidationError, match="image_turns"):
                client.session(image_turns=bad)  # type: ignore[arg-type]


async def test_history_must_be_prior_turns(emu: EmulatorServer) -> None:
    async with client_for(emu) as client:
        with pytest.raises(errors.ValidationError, match="PriorTurn"):
            await client.generate("x", provider="google", history=[{"prompt": "a"}])  # type: ignore[list-item]


def test_the_blocking_client_has_sessions(emu: EmulatorServer) -> None:
    with Client(**endpoints(emu)) as client:
        session = client.session(model=MODEL, provider="google")
        t1 = session.send("a fox")
        t2 = session.send("purple sky")
        t3 = session.branch(t1).send("winter")
    assert t2.parent is t1 and t3.parent is t1 and session.turns == [t1, t2, t3]
    assert session.history(t2)[-1].prompt == "purple sky"


async def test_the_sdk_chat_and_a_session_send_the_same_history(emu: EmulatorServer) -> None:
    """Fidelity: google-genai's own ``chats`` and a nanobanana session, three turns each, send
    histories of the same shape: the same roles, the same texts, and every model part with the
    signature it came with."""
    prompts = ("a red fox", "make the sky purple", "now remove the fox")
    options = types.HttpOptions(base_url=emu.gemini_url, api_version="v1beta")
    sdk = genai.Client(api_key=KEYS["google"], http_options=options)
    try:
        chat = sdk.chats.create(
            model=MODEL, config=types.GenerateContentConfig(response_modalities=["TEXT", "IMAGE"])
        )
        for prompt in prompts:
            chat.send_message(prompt)
    finally:
        sdk.close()
    theirs = [_gemini_shape(p["body"]["contents"]) for p in _posts(emu)]
    emu.reset()
    async with client_for(emu) as client:
        session = client.session(model=MODEL, provider="google")
        for prompt in prompts:
            await session.send(prompt)
    ours = [_gemini_shape(p["body"]["contents"]) for p in _posts(emu)]

    def general(shape: list[tuple[str, list[Any]]]) -> list[Any]:
        # Images and signatures differ between runs (new images, new responses); what must
        # match is where they are: a signed image, a signed text, an unsigned user text.
        return [
            (role, [(what if role == "user" else "*", sig is not None) for what, sig in parts])
            for role, parts in shape
        ]

    assert [general(s) for s in ours] == [general(s) for s in theirs]
    assert len(ours[-1]) == 5

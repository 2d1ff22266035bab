"""Grounding in Google Search (``GenerationRequest.google_search``): Gemini's ``google_search``
tool, OpenRouter's web plugin with the provider's own (native) search; refused before the call
for a model that cannot search Google."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from nanobanana import AsyncClient, GenerationRequest, errors
from nanobanana.catalog import Catalog
from nanobanana.providers import gemini_wire, openrouter_wire
from nanobanana.providers.base import ProviderCall

from ..support import emulator_client

GOOGLE_KEY = "AIzaCANARY-search-0001"
OPENROUTER_KEY = "sk-or-v1-CANARY-search-0001"


def both_client(emu: Any) -> AsyncClient:
    client: AsyncClient = emulator_client(
        emu, openrouter_api_key=OPENROUTER_KEY, google_api_key=GOOGLE_KEY
    )
    return client


def posted(emu: Any) -> list[dict[str, Any]]:
    return [r["body"] for r in emu.requests() if r["method"] == "POST"]


def call(search: bool) -> ProviderCall:
    spec = Catalog().get("gemini-3.1-flash-image")
    return ProviderCall(model=spec, wire_model=spec.id, prompt="a fox", google_search=search)


def test_each_wire_asks_for_google_search_as_its_docs_do() -> None:
    assert gemini_wire.build_request(call(True))["tools"] == [{"googleSearch": {}}]
    _, config = gemini_wire.sdk_request(call(True))
    assert config.tools is not None and config.tools[0].google_search is not None
    assert openrouter_wire.build_request(call(True))["plugins"] == [
        {"id": "web", "engine": "native"}
    ]
    assert "tools" not in gemini_wire.build_request(call(False))
    assert gemini_wire.sdk_request(call(False))[1].tools is None
    assert "plugins" not in openrouter_wire.build_request(call(False))


@pytest.mark.parametrize("provider", ["google", "openrouter"])
async def test_a_grounded_image_through_either_provider(emu: Any, provider: str) -> None:
    async with both_client(emu) as client:
        result = await client.generate(
            "today's weather in Paris", google_search=True, **{"provider": provider}
        )
    [body] = posted(emu)
    if provider == "google":
        assert body["tools"] == [{"googleSearch": {}}]
    else:
        assert body["plugins"] == [{"id": "web", "engine": "native"}]
    assert result.google_search is True
    assert result.images[0].metadata["google_search"] is True


@pytest.mark.parametrize(
    ("model", "why"),
    [
        ("gemini-3.1-flash-lite-image", "Google's page: not supported"),
        ("black-forest-labs/flux.2-pro", "not a Google model"),
    ],
)
async def test_a_model_that_cannot_search_google_is_refused_before_any_call(
    emu: Any, model: str, why: str
) -> None:
    async with both_client(emu) as client:
        with pytest.raises(errors.ValidationError) as info:
            await client.run(GenerationRequest(prompt="a fox", model=model, google_search=True))
    assert info.value.field == "google_search", why
    assert "cannot ground its images in Google Search" in info.value.message
    assert emu.requests() == []
    assert Catalog().get(model).can_search_google is False
    assert Catalog().get("gemini-3-pro-image").can_search_google is None  # not known: sent


def test_the_emulated_gemini_refuses_search_for_lite(emu: Any) -> None:
    url = f"{emu.gemini_url}/v1beta/models/gemini-3.1-flash-lite-image:generateContent"
    body: dict[str, Any] = {
        "contents": [{"role": "user", "parts": [{"text": "a fox"}]}],
        "tools": [{"googleSearch": {}}],
    }
    headers = {"x-goog-api-key": GOOGLE_KEY}
    reply = httpx.post(url, json=body, headers=headers)
    assert reply.status_code == 400 and "Search Grounding is not supported" in reply.text
    body["tools"] = [{"googleSearchh": {}}]
    reply = httpx.post(url, json=body, headers=headers)
    assert reply.status_code == 400
    assert 'Unknown name "googleSearchh"' in reply.json()["error"]["message"]
    del body["tools"]
    assert httpx.post(url, json=body, headers=headers).status_code == 200


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("provider", ["google", "openrouter"])
async def test_what_the_search_found_comes_back_with_the_result(
    emu: Any, provider: str, stream: bool
) -> None:
    """Gemini's groundingMetadata (queries, pages, search suggestions) and OpenRouter's
    url_citation annotations, plain and streamed, become ``Result.grounding``; each page once,
    over every image of the request."""
    async with both_client(emu) as client:
        result = await client.generate(
            "the <b>tallest</b> tower", provider=provider, google_search=True, n=2, stream=stream
        )
    grounding = result.grounding
    assert grounding is not None
    assert {s.title is not None for s in grounding.sources} == {True}
    if provider == "google":
        # Google links each page through a redirect of that answer's own: two per image.
        assert len(grounding.sources) == 4
        assert {s.url.split("/")[2] for s in grounding.sources} == {
            "vertexaisearch.cloud.google.com"
        }
        assert grounding.queries == ("the <b>tallest</b> tower",)  # once for both images
        assert grounding.search_entry_point is not None
        assert "&lt;b&gt;tallest&lt;/b&gt;" in grounding.search_entry_point
    else:
        # The same two pages cited for both images: each once.
        assert [s.url.split("/")[2] for s in grounding.sources] == ["example.com", "example.org"]
        assert grounding.queries == () and grounding.search_entry_point is None
    provenance = result.provenance()["grounding"]
    assert "search_entry_point" not in provenance  # HTML stays out of the PNG text chunks
    assert [s["url"] for s in provenance["sources"]] == [s.url for s in grounding.sources]


async def test_an_answer_without_search_has_no_grounding(emu: Any) -> None:
    async with both_client(emu) as client:
        result = await client.generate("a fox", provider="google")
    assert result.grounding is None and "grounding" not in result.provenance()


def test_grounding_is_read_from_both_wires_whatever_they_leave_out() -> None:
    from google.genai import types

    meta = types.GroundingMetadata.model_validate(
        {
            "webSearchQueries": ["eiffel tower height"],
            "imageSearchQueries": ["eiffel tower"],
            "groundingChunks": [
                {"web": {"uri": "https://a.example/1", "title": "A"}},
                {"image": {"sourceUri": "https://b.example/p", "domain": "b.example"}},
                {"web": {"uri": "https://a.example/1", "title": "A again"}},
                {"web": {"title": "no address"}},
                {"retrievedContext": {"uri": "gs://bucket/x"}},
            ],
        }
    )
    found = gemini_wire.parse_grounding(meta)
    assert found is not None
    assert found.queries == ("eiffel tower height", "eiffel tower")
    assert [(s.url, s.title) for s in found.sources] == [
        ("https://a.example/1", "A"),
        ("https://b.example/p", "b.example"),
    ]
    assert found.search_entry_point is None
    assert gemini_wire.parse_grounding(types.GroundingMetadata()) is None
    assert gemini_wire.parse_grounding(None) is None

    cited = openrouter_wire.parse_annotations(
        [
            {"type": "url_citation", "url_citation": {"url": "https://c.example", "title": "C"}},
            {"type": "url_citation", "url_citation": {"title": "no url"}},
            {"type": "file", "file": {}},
            "junk",
        ]
    )
    assert cited is not None and [s.url for s in cited.sources] == ["https://c.example"]
    assert openrouter_wire.parse_annotations(None) is None
    assert openrouter_wire.parse_annotations([{"type": "file"}]) is None

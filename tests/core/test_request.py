"""The one request type and the one rule for choosing model and provider."""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable

import pytest

from nanobanana import AsyncClient, GenerationRequest
from nanobanana.catalog import Catalog
from nanobanana.errors import UnknownModelError, ValidationError
from nanobanana.request import resolve_target
from nanobanana.types import Attempt, ImageFailure, Usage, flat_dict

CATALOG = Catalog()
FLUX = "black-forest-labs/flux.2-pro"  # served by OpenRouter alone


def keys(*have: str) -> Callable[[str], bool]:
    return lambda provider: provider in have


def target(model: str | None, provider: str | None = None, **kw: object) -> tuple[str, str]:
    t = resolve_target(CATALOG, model, provider, **kw)  # type: ignore[arg-type]
    return t.choice.name, t.provider


def test_the_provider_asked_for_wins() -> None:
    assert target("gemini-3-pro-image", "google", has_key=keys()) == (
        "gemini-3-pro-image",
        "google",
    )
    assert target("nano-banana-pro", "OpenRouter", default_provider="google") == (
        "gemini-3-pro-image",
        "openrouter",
    )


def test_a_variant_goes_to_openrouter_and_nowhere_else() -> None:
    assert target("gemini-2.5-flash-image:free", default_provider="google") == (
        "gemini-2.5-flash-image:free",
        "openrouter",
    )
    with pytest.raises(ValidationError, match="OpenRouter model variant"):
        target("gemini-2.5-flash-image:free", "google")


def test_the_default_provider_when_it_serves_the_model_even_without_a_key() -> None:
    # Whether it has a key is the caller's next check: a missing key is then said, not dodged.
    assert target(None, default_provider="google", has_key=keys("openrouter")) == (
        "gemini-3.1-flash-image",
        "google",
    )
    # A default provider that does not serve the model gives way.
    assert target(FLUX, default_provider="google", has_key=keys("openrouter", "google")) == (
        FLUX,
        "openrouter",
    )


def test_without_a_default_the_first_provider_with_a_key() -> None:
    assert target("gemini-3-pro-image", has_key=keys("google")) == ("gemini-3-pro-image", "google")
    assert target("gemini-3-pro-image", has_key=keys("openrouter", "google"))[1] == "openrouter"
    # No key at all: the first that serves it, for the caller to say which key is missing.
    assert target("gemini-3-pro-image", has_key=keys())[1] == "openrouter"
    assert target("gemini-3-pro-image")[1] == "openrouter"


def test_the_target_keeps_the_name_it_was_chosen_by() -> None:
    """As spelled, so that the generation can warn about an old spelling."""
    spelled = "gemini-2.5-flash-image-preview"
    assert resolve_target(CATALOG, spelled).named == spelled
    assert resolve_target(CATALOG, None, default_model="nano-banana-pro").named == (
        "nano-banana-pro"
    )
    assert resolve_target(CATALOG, None, "google", default_model=FLUX).named is None
    assert resolve_target(CATALOG, None).named is None


def test_a_default_model_gives_way_to_the_providers_default() -> None:
    # A saved default model of the other provider does not block the provider asked for.
    assert target(None, "google", default_model=FLUX) == ("gemini-3.1-flash-image", "google")
    # A model asked for does not give way: the mismatch is an error that names the provider.
    with pytest.raises(ValidationError):
        target(FLUX, "google")
    assert target(None, default_model="nano-banana-pro", has_key=keys("google")) == (
        "gemini-3-pro-image",
        "google",
    )


def test_an_unknown_model_is_refused_with_the_closest_ids() -> None:
    with pytest.raises(UnknownModelError, match="gemini-3-pro-image"):
        target("gemini-3-pro-imag")


def test_the_request_has_the_fields_generate_takes() -> None:
    """One source: a parameter added to ``generate`` without a field here (or the reverse)
    fails this test."""
    params = set(inspect.signature(AsyncClient.generate).parameters) - {
        "self",
        "on_event",
        "stream",
    }
    assert {f.name for f in dataclasses.fields(GenerationRequest)} == params


def test_a_record_round_trips_without_its_images() -> None:
    request = GenerationRequest(
        prompt="a fox",
        model="nano-banana-2",
        aspect_ratio="16:9",
        n=2,
        images=(b"png bytes",),
        seed=7,
        fallback=False,
    )
    record = request.record()
    assert "images" not in record and record["n"] == 2 and record["seed"] == 7
    assert GenerationRequest.from_record(record, images=(b"png bytes",)) == request
    # Older records: unknown keys left out, a missing or null n is one image.
    old = GenerationRequest.from_record({"prompt": "a fox", "n": None, "retired": 1})
    assert old == GenerationRequest(prompt="a fox")


def test_a_record_is_what_asdict_gave_without_the_images_and_detached() -> None:
    options = {"style": "flat", "font_inputs": [{"text": "SALE"}]}
    request = GenerationRequest(prompt="a fox", images=(b"png bytes",), image_options=options)
    expected = dataclasses.asdict(request)
    del expected["images"], expected["history"]
    record = request.record()
    assert record == expected
    record["image_options"]["font_inputs"].append({"text": "changed"})
    assert options == {"style": "flat", "font_inputs": [{"text": "SALE"}]}


@pytest.mark.parametrize(
    "value",
    [
        Attempt(provider="google", model="m", status="error", error="quota", http_status=429),
        Usage(input_tokens=3, cost=0.04, cost_is_estimate=True),
        ImageFailure(index=1, error="blocked", error_code="blocked"),
    ],
)
def test_flat_dict_is_asdict_for_the_recorded_types(value: object) -> None:
    """``flat_dict`` copies no value: these types must hold only scalars."""
    got = flat_dict(value)  # type: ignore[arg-type]
    assert got == dataclasses.asdict(value)  # type: ignore[call-overload]
    assert all(v is None or isinstance(v, str | int | float | bool) for v in got.values())


def test_fields_are_keyword_only_and_misspellings_are_errors() -> None:
    with pytest.raises(TypeError):
        GenerationRequest("a fox")  # type: ignore[misc]
    with pytest.raises(TypeError):
        GenerationRequest(prompt="a fox").with_(aspect="16:9")
    assert GenerationRequest(prompt="a fox").with_(n=3).n == 3

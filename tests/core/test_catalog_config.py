from __future__ import annotations

import os
import stat
from datetime import UTC, date, datetime

import pytest

from nanobanana import errors
from nanobanana.catalog import (
    DEFAULT_MODEL,
    Catalog,
    expected_pixels,
    normalize_ratio,
    normalize_size,
)
from nanobanana.config import KeysFile, mask_key
from nanobanana.providers import INFOS, canonical_provider, resolve_provider_configs


@pytest.mark.parametrize(
    ("raw", "norm"), [("1k", "1K"), (" 2K ", "2K"), ("4k", "4K"), ("0.5k", "0.5K")]
)
def test_size_normalisation(raw, norm):
    assert normalize_size(raw) == norm


def test_ratio_normalisation():
    assert normalize_ratio("16x9") == "16:9" and normalize_ratio(" 4 : 3 ") == "4:3"


def test_pixel_table():
    assert expected_pixels("16:9", "1K") == (1344, 768)
    assert expected_pixels("16:9", "2K") == (2688, 1536)
    assert expected_pixels(None, None) == (1024, 1024)
    assert expected_pixels("9:16", "0.5K") == (384, 672)


def test_aliases_and_provider_ids_resolve_to_one_model():
    cat = Catalog()
    for name in (
        "gemini-3-pro-image",
        "nano-banana-pro",
        "gemini-3-pro-image-preview",
        "google/gemini-3-pro-image-preview",
        "GEMINI-3-PRO-IMAGE",
        "google/nano-banana-pro",
    ):
        assert cat.get(name).id == "gemini-3-pro-image"
    assert cat.get("google/gemini-2.5-flash-image-preview").id == "gemini-2.5-flash-image"
    spec = cat.get("gemini-3.1-flash-image")
    assert spec.wire_id("openrouter") == "google/gemini-3.1-flash-image-preview"
    assert spec.wire_id("google") == "gemini-3.1-flash-image"


def test_image_only_models_ask_for_image_modality_only():
    cat = Catalog()
    assert cat.get("black-forest-labs/flux.2-pro").modalities == ["image"]
    assert cat.get("gemini-2.5-flash-image").modalities == ["image", "text"]


def test_capabilities_are_checked():
    cat = Catalog()
    flash31 = cat.get("gemini-3.1-flash-image")
    assert cat.validate(flash31, aspect_ratio="8:1", image_size="0.5k", n_images=0) == (
        "8:1",
        "0.5K",
    )
    with pytest.raises(errors.ValidationError, match="Allowed"):
        cat.validate(cat.get("gemini-3-pro-image"), aspect_ratio="8:1", image_size=None, n_images=0)
    with pytest.raises(errors.ValidationError, match="at most 3"):
        cat.validate(
            cat.get("gemini-2.5-flash-image"), aspect_ratio=None, image_size=None, n_images=4
        )


def test_price_estimate_per_image():
    cat = Catalog()
    assert cat.get("gemini-2.5-flash-image").pricing.image_cost("1K") == pytest.approx(0.0387)
    assert cat.get("gemini-3-pro-image").pricing.image_cost("4K") == pytest.approx(0.24)


def test_key_resolution_order(tmp_path):
    keys = KeysFile(tmp_path / "keys.json")
    keys.set("google", "AIzaFROMFILE")
    keys.set("openrouter", "sk-or-FROMFILE")
    env = {
        "NANOBANANA_KEYS_FILE": str(keys.path),
        "OPENROUTER_API_KEY": "sk-or-FROMENV",
        "GEMINI_BASE_URL": "http://127.0.0.1:9",
    }
    cfg = resolve_provider_configs(api_keys={"openrouter": "sk-or-EXPLICIT"}, env=env)
    assert cfg["openrouter"].api_key == "sk-or-EXPLICIT"
    cfg = resolve_provider_configs(env=env)
    assert cfg["openrouter"].api_key == "sk-or-FROMENV"
    assert cfg["google"].api_key == "AIzaFROMFILE"
    assert INFOS["google"].url(cfg["google"]) == "http://127.0.0.1:9"
    assert INFOS["openrouter"].url(cfg["openrouter"]) == "https://openrouter.ai/api/v1"
    assert "FROMENV" not in repr(cfg["openrouter"])  # keys are kept out of reprs


def test_keys_file_is_private(tmp_path):
    keys = KeysFile(tmp_path / "sub" / "keys.json")
    keys.set(canonical_provider("gemini"), "AIzaCANARY")
    mode = stat.S_IMODE(os.stat(keys.path).st_mode)
    assert mode == 0o600
    assert keys.load() == {"google": "AIzaCANARY"}
    assert keys.remove("google") and keys.load() == {}
    with pytest.raises(errors.ValidationError, match="Use one of: openrouter, google"):
        canonical_provider("dalle")


def test_mask_key_shows_only_the_end():
    masked = mask_key("sk-or-v1-CANARY-1234567890abcd")
    assert masked.endswith("abcd") and "CANARY" not in masked


def test_the_default_model_is_not_past_an_announced_shutdown() -> None:
    # A default that Google may already have switched off would fail every call that names no
    # model; this fails as soon as the default's announced date passes.
    catalog = Catalog()
    today = datetime.now(UTC).date()
    for spec in (
        catalog.get(DEFAULT_MODEL),
        *(catalog.default_for(p) for p in ("openrouter", "google")),
    ):
        assert spec.shutdown is None or spec.shutdown > today, spec.id
    assert catalog.get(DEFAULT_MODEL).recommended


def test_shutdown_note_is_worded_for_before_and_after_the_date() -> None:
    spec = Catalog().get("gemini-2.5-flash-image")
    assert spec.shutdown == date(2026, 10, 2)
    assert spec.shutdown_note(date(2026, 9, 1)) == (
        "gemini-2.5-flash-image has an announced shutdown date of 2026-10-02; "
        "consider gemini-3.1-flash-image."
    )
    past = spec.shutdown_note(date(2026, 10, 2))
    assert past == (
        "gemini-2.5-flash-image is past its announced shutdown date (2026-10-02) and may be "
        "refused at any time; use gemini-3.1-flash-image."
    )
    assert Catalog().get("gemini-3-pro-image").shutdown_note() is None

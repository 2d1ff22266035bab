"""``nanobanana models``: the catalog as a table or JSON, merged with live discovery."""

from __future__ import annotations

import json

import pytest

from nanobanana.catalog import BUILTIN_MODELS
from nanobanana.emulator import EmulatorServer

from .conftest import GEMINI_CANARY, OPENROUTER_CANARY


def test_offline_table_lists_the_catalog(cli) -> None:
    r = cli("models", "--offline")
    assert r.code == 0
    for col in ("id", "providers", "aspect ratios", "sizes", "price / image", "shutdown"):
        assert col in r.out
    for spec in BUILTIN_MODELS:
        assert spec.id in r.out
    row = next(line for line in r.out.splitlines() if "gemini-2.5-flash-image" in line)
    assert "2026-10-02" in row and "$0.039" in row and "google, openrouter" in row
    # The names people type are beside each id; retired preview ids are not offered.
    for alias in ("nano-banana", "nano-banana-pro", "nano-banana-2"):
        assert f"also: {alias}" in r.out
    assert "preview" not in r.out


def test_json_lists_capabilities(cli) -> None:
    r = cli("models", "--offline", "--json")
    data = {m["id"]: m for m in json.loads(r.out)}
    assert set(data) == {s.id for s in BUILTIN_MODELS}
    flash = data["gemini-3.1-flash-image"]
    assert flash["providers"] == ["google", "openrouter"]
    assert "8:1" in flash["aspect_ratios"] and flash["sizes"] == ["0.5K", "1K", "2K", "4K"]
    assert flash["price_per_image"]["1K"] == pytest.approx(1120 * 60.0 / 1e6)
    assert data["gemini-2.5-flash-image"]["shutdown"] == "2026-10-02"
    # Nano Banana 2 Lite with the limits Google's model page gives (no published price).
    lite = data["gemini-3.1-flash-lite-image"]
    assert lite["providers"] == ["google"] and lite["aliases"] == ["nano-banana-2-lite"]
    assert lite["sizes"] == ["1K"] and len(lite["aspect_ratios"]) == 10
    assert "1:4" not in lite["aspect_ratios"] and lite["price_per_image"] == {"1K": None}


def test_provider_filter(cli) -> None:
    data = json.loads(cli("models", "--offline", "--json", "-p", "gemini").out)
    assert data and all("google" in m["providers"] for m in data)
    assert not any(m["id"].startswith("black-forest-labs/") for m in data)


def urls(emu: EmulatorServer) -> list[str]:
    return ["--openrouter-base-url", emu.openrouter_url, "--gemini-base-url", emu.gemini_url]


def test_without_keys_only_openrouters_public_listing_is_read(cli, emu: EmulatorServer) -> None:
    """OpenRouter's /models needs no key, so a user without one still sees its image models;
    Google's models.list needs one, so Google is not called."""
    r = cli("models", "--json", *urls(emu))
    assert r.code == 0, r.err
    [call] = emu.requests()
    assert (call["service"], call["path"]) == ("openrouter", "/api/v1/models")
    assert call["auth_header"] is None and "authorization" not in call["headers"]
    found = {m["id"]: m for m in json.loads(r.out)}
    assert found["openai/gpt-5-image-mini"]["discovered"] is True
    # --offline calls nothing at all.
    emu.reset()
    r = cli("models", "--json", "--offline", "--openrouter-base-url", emu.openrouter_url)
    assert r.code == 0 and emu.requests() == []


def test_live_discovery_merges_models_from_the_emulator(
    cli, emu: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", OPENROUTER_CANARY)
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_CANARY)
    r = cli("models", "--json", *urls(emu))
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert {s.id for s in BUILTIN_MODELS} <= {m["id"] for m in data}
    found = {m["id"]: m for m in data}
    assert found["openai/gpt-5-image-mini"]["discovered"]  # only the listing has it
    assert not found["gemini-3.1-flash-lite-image"]["discovered"]  # the catalog knows it
    # The listing has the GA id: that is the one the default model is sent by.
    assert found["gemini-3.1-flash-image"]["provider_ids"]["openrouter"] == (
        "google/gemini-3.1-flash-image"
    )
    paths = {q["path"] for q in emu.requests()}
    assert "/api/v1/models" in paths
    assert any(p.endswith("/models") and not p.startswith("/api/") for p in paths)
    assert OPENROUTER_CANARY not in r.out + r.err


def test_a_failing_listing_is_a_warning_not_an_error(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENROUTER_API_KEY", OPENROUTER_CANARY)
    r = cli("models", "-p", "openrouter", "--openrouter-base-url", "http://127.0.0.1:9/api/v1")
    assert r.code == 0
    assert r.err.startswith("warning: could not list openrouter's models")
    assert "black-forest-labs/flux.2-pro" in r.out

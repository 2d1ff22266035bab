"""Models the catalog does not know, found in the providers' listings and kept for later runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from nanobanana import AsyncClient, errors
from nanobanana.catalog import BUILTIN_MODELS, Catalog
from nanobanana.discovery import ListingCache, spec_from_record, spec_record
from nanobanana.providers.openrouter_wire import parse_models
from nanobanana.retry import NO_RETRY

KEY = "sk-or-v1-CANARY-discovery-0001"
#: Listed by OpenRouter (and the emulator), left out of this catalog: only discovery finds it.
UNLISTED = "recraft/recraft-v4"


def narrow_catalog() -> Catalog:
    return Catalog(m for m in BUILTIN_MODELS if UNLISTED not in m.provider_ids.values())


def client_for(emu: Any, cache: ListingCache, **kw: Any) -> AsyncClient:
    return AsyncClient(
        openrouter_api_key=KEY,
        openrouter_base_url=emu.openrouter_url,
        env={},
        use_keys_file=False,
        catalog=narrow_catalog(),
        listing_cache=cache,
        **kw,
    )


def listing_calls(emu: Any) -> int:
    return sum(1 for r in emu.requests() if r["method"] == "GET" and r["path"].endswith("/models"))


def chat_bodies(emu: Any) -> list[dict[str, Any]]:
    return [
        r["body"]
        for r in emu.requests()
        if r["method"] == "POST" and r["path"].endswith("/chat/completions")
    ]


def test_a_listed_spec_survives_the_cache_whole(tmp_path: Path) -> None:
    body = {
        "data": [
            {
                "id": "acme/painter-2",
                "name": "Acme: Painter 2",
                "architecture": {"input_modalities": ["text"], "output_modalities": ["image"]},
                "pricing": {"prompt": "0.000001", "image_output": "0.00003"},
                "supported_parameters": ["seed"],
            }
        ]
    }
    [spec] = parse_models(json.dumps(body).encode())
    assert spec_from_record(json.loads(json.dumps(spec_record(spec)))) == spec
    cache = ListingCache(tmp_path)
    cache.save("openrouter", "http://a.example/api/v1", [spec], now=1000.0)
    listing = cache.load("openrouter", "http://a.example/api/v1")
    assert listing is not None and listing.models == (spec,) and listing.fetched_at == 1000.0
    assert cache.load("openrouter", "http://b.example/api/v1") is None  # kept per endpoint
    [path] = tmp_path.iterdir()
    path.write_text("{not json")
    assert cache.load("openrouter", "http://a.example/api/v1") is None  # only a cache


async def test_a_model_only_the_listing_has_is_generated_by_its_id(
    emu: Any, tmp_path: Path
) -> None:
    cache = ListingCache(tmp_path)
    async with client_for(emu, cache) as client:
        result = await client.generate("a fox", model=UNLISTED)
    assert (result.model, result.provider) == (UNLISTED, "openrouter")
    assert client.catalog.get(UNLISTED).discovered
    [body] = chat_bodies(emu)
    assert body["model"] == UNLISTED
    assert body["modalities"] == ["image"]  # an image-only model, as its listing says
    assert listing_calls(emu) == 1

    # The next run finds it in the kept listing: no listing call.
    emu.reset()
    async with client_for(emu, cache) as client:
        again = await client.generate("a fox", model=UNLISTED)
    assert again.model == UNLISTED and listing_calls(emu) == 0


async def test_known_models_never_wait_for_a_listing(emu: Any, tmp_path: Path) -> None:
    async with client_for(emu, ListingCache(tmp_path)) as client:
        await client.generate("a fox", model="gemini-3.1-flash-image")
    assert listing_calls(emu) == 0
    assert not list(tmp_path.iterdir())


async def test_an_unknown_id_costs_one_listing_then_none_for_a_while(
    emu: Any, tmp_path: Path
) -> None:
    cache = ListingCache(tmp_path)
    async with client_for(emu, cache) as client:
        with pytest.raises(errors.UnknownModelError, match="nanobanana models"):
            await client.generate("a fox", model="acme/no-such-model")
    assert listing_calls(emu) == 1
    async with client_for(emu, cache) as client:
        with pytest.raises(errors.UnknownModelError):
            await client.generate("a fox", model="acme/still-no-such-model")
    assert listing_calls(emu) == 1  # the listing fetched a moment ago is trusted
    assert chat_bodies(emu) == []


async def test_a_provider_that_cannot_list_leaves_the_catalog_as_it_is(
    closed_port: int, tmp_path: Path
) -> None:
    async with AsyncClient(
        openrouter_api_key=KEY,
        openrouter_base_url=f"http://127.0.0.1:{closed_port}/api/v1",
        env={},
        use_keys_file=False,
        catalog=narrow_catalog(),
        listing_cache=ListingCache(tmp_path),
        retry=NO_RETRY,
    ) as client:
        with pytest.raises(errors.UnknownModelError):
            await client.generate("a fox", model=UNLISTED)


async def test_discovery_can_be_turned_off(emu: Any, tmp_path: Path) -> None:
    async with client_for(emu, ListingCache(tmp_path), discover=False) as client:
        with pytest.raises(errors.UnknownModelError):
            await client.generate("a fox", model=UNLISTED)
    assert listing_calls(emu) == 0


async def test_listing_the_models_keeps_them_for_later_runs(emu: Any, tmp_path: Path) -> None:
    cache = ListingCache(tmp_path)
    async with client_for(emu, cache) as client:
        ids = [m.id for m in await client.models()]
    assert UNLISTED in ids
    emu.reset()
    async with client_for(emu, cache) as client:
        await client.generate("a fox", model=UNLISTED)
    assert listing_calls(emu) == 0


async def test_a_cache_that_cannot_be_written_does_not_stop_the_call(
    emu: Any, tmp_path: Path
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a folder")
    async with client_for(emu, ListingCache(blocked / "models")) as client:
        result = await client.generate("a fox", model=UNLISTED)
    assert result.model == UNLISTED


async def test_a_client_reads_each_kept_listing_once(emu: Any, tmp_path: Path) -> None:
    reads: list[str] = []

    class Counting(ListingCache):
        def load(self, provider: str, base_url: str) -> Any:
            reads.append(provider)
            return super().load(provider, base_url)

    async with client_for(emu, Counting(tmp_path)) as client:
        await client.generate("a fox", model=UNLISTED)
        for _ in range(2):
            with pytest.raises(errors.UnknownModelError):
                await client.generate("a fox", model="acme/no-such-model")
    assert reads == []  # what this client fetched and kept is not read back
    assert listing_calls(emu) == 1  # the listing fetched by the first call is trusted after
    async with client_for(emu, Counting(tmp_path)) as client:
        for _ in range(2):
            with pytest.raises(errors.UnknownModelError):
                await client.generate("a fox", model="acme/no-such-model")
    assert reads == ["openrouter"]  # another client (or process) reads the kept file once
    assert listing_calls(emu) == 1


async def test_every_provider_with_a_key_is_asked(emu: Any, tmp_path: Path) -> None:
    async with AsyncClient(
        api_keys={"openrouter": KEY, "google": "AIzaCANARY-discovery-0001"},
        base_urls={"openrouter": emu.openrouter_url, "google": emu.gemini_url},
        env={},
        use_keys_file=False,
        listing_cache=ListingCache(tmp_path),
    ) as client:
        with pytest.raises(errors.UnknownModelError):
            await client.generate("a fox", model="acme/no-such-model")
    listed = {
        r["service"]
        for r in emu.requests()
        if r["method"] == "GET" and r["path"].endswith("/models")
    }
    assert listed == {"openrouter", "gemini"}
    assert len(list(tmp_path.iterdir())) == 2  # one kept listing each


def discovery_script(emu: Any, cache_dir: Path) -> str:
    """A user's script: generate with a model only the listing has, then print the model and
    the kept listings' files (run by the install tests in the environments users get)."""
    return (
        "import asyncio, pathlib\n"
        "from nanobanana import AsyncClient\n"
        "from nanobanana.catalog import BUILTIN_MODELS, Catalog\n"
        "from nanobanana.discovery import ListingCache\n"
        f"catalog = Catalog(m for m in BUILTIN_MODELS if m.id != {UNLISTED!r})\n"
        "async def main():\n"
        "    async with AsyncClient(\n"
        f"        openrouter_api_key={KEY!r}, openrouter_base_url={emu.openrouter_url!r},\n"
        f"        env={{}}, use_keys_file=False, catalog=catalog,\n"
        f"        listing_cache=ListingCache(pathlib.Path({str(cache_dir)!r})),\n"
        "    ) as client:\n"
        f"        r = await client.generate('a fox', model={UNLISTED!r})\n"
        "    print(r.model)\n"
        f"    print(len(list(pathlib.Path({str(cache_dir)!r}).glob('openrouter-*.json'))))\n"
        "asyncio.run(main())\n"
    )


def test_the_script_the_install_tests_run(emu: Any, tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", discovery_script(emu, tmp_path / "c")],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [UNLISTED, "1"]
    [kept] = (tmp_path / "c").glob("*.json")
    assert UNLISTED in kept.read_text() and KEY not in kept.read_text()  # listings, no keys


async def test_a_client_without_an_openrouter_key_still_reads_its_public_listing(
    emu: Any, tmp_path: Path
) -> None:
    """A Google-only user naming a model only OpenRouter lists learns that it exists, and that
    it needs an OpenRouter key, instead of hearing that no such model exists."""
    client = AsyncClient(
        google_api_key="AIzaCANARY-discovery-0001",
        openrouter_base_url=emu.openrouter_url,
        gemini_base_url=emu.gemini_url,
        env={},
        use_keys_file=False,
        listing_cache=ListingCache(tmp_path / "listings"),
    )
    async with client:
        with pytest.raises(errors.MissingKeyError) as info:
            await client.generate("a fox", model="openai/gpt-5-image-mini")
    assert info.value.provider == "openrouter"
    [listing] = [r for r in emu.requests() if r["service"] == "openrouter"]
    assert listing["path"] == "/api/v1/models" and listing["auth_header"] is None
    assert [r for r in emu.requests() if r["method"] == "POST"] == []


async def test_no_test_reaches_the_real_openrouter(tmp_path: Path) -> None:
    """Without a base URL the public listing would be read from openrouter.ai: in the tests
    that name is not resolved, so the listing fails at once and the catalog is used."""
    client = AsyncClient(env={}, use_keys_file=False, listing_cache=ListingCache(tmp_path))
    async with client:
        with pytest.raises(errors.ConnectError):
            await client.models("openrouter")

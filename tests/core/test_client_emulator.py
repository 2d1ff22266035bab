"""The client end to end through the real providers against the emulator."""

from __future__ import annotations

import pytest

from nanobanana import AsyncClient, Client, errors
from nanobanana.files import read_metadata

KEYS = {"openrouter": "sk-or-v1-CANARY-e2e-0001", "google": "AIzaCANARY-e2e-0001"}


def endpoints(emu):
    """The client arguments that point at the emulator, with the canary keys."""
    return {
        "api_keys": KEYS,
        "base_urls": {"openrouter": emu.openrouter_url, "google": emu.gemini_url},
        "env": {},
        "use_keys_file": False,
    }


def client_for(emu, **kw):
    return AsyncClient(**{**endpoints(emu), "api_keys": kw.pop("keys", KEYS)}, **kw)


@pytest.mark.parametrize("provider", ["openrouter", "google"])
async def test_generate_returns_the_requested_size(emu, provider):
    async with client_for(emu) as client:
        r = await client.generate("a fox", provider=provider, aspect_ratio="16:9")
    (img,) = r.images
    assert (img.width, img.height) == (1344, 768) and img.mime_type == "image/png"
    assert r.provider == provider
    assert not [w for w in r.warnings if "should be" in w]  # no size mismatch
    assert r.usage.cost and r.usage.cost > 0
    assert r.usage.cost_is_estimate == (provider == "google")


async def test_google_quota_falls_back_to_openrouter(emu):
    async with client_for(emu) as client:
        r = await client.generate("[emulator@gemini:quota-day] a fox", provider="google")
    assert r.provider == "openrouter"
    assert [(a.provider, a.status) for a in r.attempts] == [
        ("google", "error"),
        ("openrouter", "ok"),
    ]
    assert r.attempts[0].error_code == "quota_exceeded"
    services = [req["service"] for req in emu.requests()]
    assert services.count("gemini") == 1 and services.count("openrouter") == 1


async def test_minute_quota_is_retried_after_retry_info(emu):
    async with client_for(emu) as client:
        r = await client.generate("[emulator@gemini:flaky:1:429:e2e-q] a fox", provider="google")
    assert r.provider == "google"
    assert [a.status for a in r.attempts] == ["error", "ok"]


async def test_safety_block_is_typed_and_not_fallen_back(emu):
    async with client_for(emu) as client:
        with pytest.raises(errors.BlockedError) as info:
            await client.generate("[emulator:safety] a fox", provider="google")
    assert info.value.reason == "IMAGE_SAFETY"
    assert all(req["service"] == "gemini" for req in emu.requests() if req["method"] == "POST")


async def test_reset_after_send_is_not_resent(emu):
    async with client_for(emu) as client:
        with pytest.raises(errors.AmbiguousError):
            await client.generate("[emulator:reset] a fox", provider="openrouter")
    posts = [req for req in emu.requests() if req["method"] == "POST"]
    assert len(posts) == 1


async def test_n_images_against_the_emulator(emu):
    async with client_for(emu) as client:
        r = await client.generate("a fox", n=3, model="gemini-3-pro-image", image_size="2K")
    assert len(r.images) == 3 and {(i.width, i.height) for i in r.images} == {(2048, 2048)}
    assert len([q for q in emu.requests() if q["method"] == "POST"]) == 3


async def test_size_mismatch_is_reported(emu):
    async with client_for(emu) as client:
        r = await client.generate("[emulator:size:640x480] a fox", aspect_ratio="4:3")
    assert any("640x480" in w and "1184x864" in w for w in r.warnings)


def test_seed_flow_through_the_sync_client(emu, tmp_path):
    with Client(
        openrouter_api_key=KEYS["openrouter"],
        openrouter_base_url=emu.openrouter_url,
        env={},
        use_keys_file=False,
    ) as client:
        r = client.generate("a red fox", aspect_ratio="16:9")
        paths = r.save(tmp_path)
    assert [p.name for p in paths] == ["image-1.png"]
    meta = read_metadata(paths[0].read_bytes())
    assert meta["provider"] == "openrouter" and meta["aspect_ratio"] == "16:9"
    raw = paths[0].read_bytes()
    assert all(k.encode() not in raw for k in KEYS.values())


async def test_a_request_object_runs_as_generate_does(emu):
    from nanobanana import GenerationRequest

    request = GenerationRequest(prompt="a fox", provider="google", aspect_ratio="16:9", n=2)
    async with client_for(emu) as client:
        result = await client.run(request)
    assert result.provider == "google" and len(result.images) == 2
    assert all(img.width > img.height for img in result.images) and not result.warnings
    with Client(**endpoints(emu)) as sync:
        assert sync.run(request.with_(n=1)).provider == "google"


async def test_streaming_through_openrouter(emu):
    async with client_for(emu) as client:
        kinds = [ev.type async for ev in client.stream("a fox", provider="openrouter")]
    assert kinds.index("text") < kinds.index("image") < kinds.index("done")


async def test_synthetic_results_cost_nothing(emu):
    async with client_for(emu, synthetic=True) as client:
        r = await client.generate("a fox")
    assert r.synthetic and r.usage.cost is None and not r.usage.cost_is_estimate
    assert r.provenance()["cost"] is None


async def test_check_key_asks_an_endpoint_that_authenticates_it(emu):
    async with client_for(emu) as c:
        await c.generate("a fox", provider="openrouter")
        status = await c.check_key("openrouter")
        assert status.usage is not None and status.usage > 0 and status.limit is None
        google = await c.check_key("google")
        assert google.models and google.usage is None
    async with client_for(emu, keys={"openrouter": "sk-or-invalid-0000"}) as c:
        with pytest.raises(errors.AuthenticationError):
            await c.check_key("openrouter")
    with (
        Client(api_keys={}, env={}, use_keys_file=False) as sync,
        pytest.raises(errors.MissingKeyError),
    ):
        sync.check_key("google")


def run_quietly(script: str, python: str | None = None) -> list[str]:
    """Run ``script`` in a fresh interpreter where a ResourceWarning is an error; its output."""
    import subprocess
    import sys

    run = subprocess.run(
        [python or sys.executable, "-W", "error::ResourceWarning", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    assert "Unclosed" not in run.stderr and run.stderr == ""
    return run.stdout.split()


def test_a_client_used_without_with_closes_itself_quietly(emu):
    """As with OpenAI(): no close() needed, and no "Unclosed client session" at exit."""
    script = (
        "from nanobanana import Client\n"
        f"c = Client(api_keys={KEYS!r}, env={{}}, use_keys_file=False, base_urls="
        f"{{'openrouter': {emu.openrouter_url!r}, 'google': {emu.gemini_url!r}}})\n"
        "a, b = c.generate('a fox'), c.generate('a fox', provider='google')\n"
        "print(len(a.images), len(b.images))\n"
        "Client(api_keys={}, env={}, use_keys_file=False)  # collected at once\n"
    )
    assert run_quietly(script) == ["1", "1"]


def async_client_without_with(emu) -> str:
    """A script that uses an AsyncClient as AsyncOpenAI() is used: never closed."""
    return (
        "import asyncio, gc\n"
        "from nanobanana import AsyncClient\n"
        f"kw = dict(api_keys={KEYS!r}, env={{}}, use_keys_file=False, base_urls="
        f"{{'openrouter': {emu.openrouter_url!r}, 'google': {emu.gemini_url!r}}})\n"
        "c = AsyncClient(**kw)\n"
        "async def main():\n"
        "    a = await c.generate('a fox')\n"
        "    b = await c.generate('a fox', provider='google')\n"
        "    print(len(a.images), len(b.images))\n"
        "    dropped = AsyncClient(**kw)\n"
        "    await dropped.generate('a fox', provider='google')\n"
        "    del dropped\n"
        "    gc.collect()\n"
        "    await asyncio.sleep(0.1)\n"
        "asyncio.run(main())\n"
        "asyncio.run(main())  # the same client on a second loop\n"
    )


def test_an_async_client_used_without_async_with_closes_with_its_loop(emu):
    """As with AsyncOpenAI(): asyncio.run ends quietly, also across two runs and for a client
    dropped while its loop still runs."""
    assert run_quietly(async_client_without_with(emu)) == ["1", "1", "1", "1"]


@pytest.mark.parametrize(
    ("model", "provider"),
    [
        ("black-forest-labs/flux.2-pro", "openrouter"),  # draws a square unless told
        ("gemini-2.5-flash-image", "google"),
        ("gemini-2.5-flash-image", "openrouter"),
    ],
)
async def test_an_edit_without_a_ratio_keeps_the_input_shape(emu, model, provider):
    from ..support import png_bytes

    async with client_for(emu) as client:
        r = await client.generate(
            "make the sky purple", model=model, provider=provider, images=[png_bytes(320, 180)]
        )
    (img,) = r.images
    assert (img.width, img.height) == (1344, 768)
    assert not [w for w in r.warnings if "should be" in w]
    sent = [q["body"] for q in emu.requests() if q["method"] == "POST"][-1]
    ratio = (
        sent["image_config"]["aspect_ratio"]
        if provider == "openrouter"
        else sent["generationConfig"]["imageConfig"]["aspectRatio"]
    )
    assert ratio == "16:9"  # sent, so that every model keeps the shape
    # Asked for, a ratio wins over the input's shape.
    async with client_for(emu) as client:
        r = await client.generate(
            "make it square",
            model=model,
            provider=provider,
            images=[png_bytes(320, 180)],
            aspect_ratio="1:1",
        )
    assert (r.images[0].width, r.images[0].height) == (1024, 1024)

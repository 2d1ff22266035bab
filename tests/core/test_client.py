"""The client's own behaviour (validation, fan-out, retry, fallback, deadline, verification),
with scripted providers so every path is exercised without a network."""

from __future__ import annotations

import asyncio
import random

import pytest

from nanobanana import errors
from nanobanana.catalog import DEFAULT_MODEL, Catalog
from nanobanana.client import NEGATIVE_PROMPT_TEMPLATE, AsyncClient, Client
from nanobanana.files import read_metadata
from nanobanana.retry import RetryPolicy
from nanobanana.types import AttemptEvent, DoneEvent, ImageEvent, TextDelta, UsageEvent

from .fakes import FakeProvider

#: What a call without a model runs on OpenRouter.
DEFAULT_ON_OPENROUTER = Catalog().get(DEFAULT_MODEL).wire_id("openrouter")

KEYS = {"openrouter": "sk-or-v1-CANARY-openrouter-0000", "google": "AIzaCANARY-google-0000"}


def make(keys=KEYS, **kw):
    g = kw.pop("google", FakeProvider("google"))
    o = kw.pop("openrouter", FakeProvider("openrouter"))
    client = AsyncClient(
        api_keys=keys, env={}, use_keys_file=False, providers={"google": g, "openrouter": o}, **kw
    )
    sleeps: list[float] = []

    async def fake_sleep(s: float) -> None:
        sleeps.append(s)

    client._sleep = fake_sleep
    return client, g, o, sleeps


def quota(**kw):
    return errors.QuotaError("quota", provider=kw.pop("provider", "google"), **kw)


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"aspect_ratio": "7:3"}, "aspect_ratio"),
        ({"model": "gemini-2.5-flash-image", "image_size": "4K"}, "image_size"),  # 1K only
        ({"n": 0}, "n"),
        ({"n": 11}, "n"),
        ({"n": True}, "n"),
        ({"seed": -1}, "seed"),
        ({"model": "no-such-model"}, "model"),
    ],
)
async def test_bad_parameters_are_refused_before_any_call(kwargs, field):
    client, g, o, _ = make()
    with pytest.raises(errors.ValidationError) as info:
        await client.generate("a fox", **kwargs)
    assert info.value.field == field
    assert not g.calls and not o.calls


async def test_refusal_lists_the_allowed_values():
    client, *_ = make()
    with pytest.raises(errors.ValidationError) as info:
        await client.generate("a fox", aspect_ratio="7:3")
    assert "16:9" in str(info.value) and "16:9" in (info.value.allowed or [])


async def test_empty_and_oversized_prompts_are_refused():
    client, g, o, _ = make()
    with pytest.raises(errors.ValidationError, match="empty"):
        await client.generate("   ")
    with pytest.raises(errors.ValidationError, match="limit"):
        await client.generate("x" * 40_000)
    assert not g.calls and not o.calls


async def test_size_is_normalised_and_sent():
    client, _, o, _ = make()
    result = await client.generate("a fox", model="gemini-3-pro-image", image_size="2k")
    assert o.calls[0].image_size == "2K"
    assert result.image_size == "2K"
    assert (result.images[0].width, result.images[0].height) == (2048, 2048)


async def test_missing_key_names_the_fix_and_sends_nothing():
    client, g, o, _ = make(keys={})
    with pytest.raises(errors.MissingKeyError) as info:
        await client.generate("a fox")
    assert "OPENROUTER_API_KEY" in str(info.value)
    assert "nanobanana keys set" in str(info.value)
    assert not g.calls and not o.calls


async def test_model_not_on_the_chosen_provider():
    client, *_ = make()
    with pytest.raises(errors.ValidationError, match="openrouter"):
        await client.generate("a fox", provider="google", model="black-forest-labs/flux.2-pro")


async def test_default_provider_is_openrouter_then_google():
    client, g, o, _ = make()
    r = await client.generate("a fox")
    assert r.provider == "openrouter" and r.provider_model == DEFAULT_ON_OPENROUTER
    client, g, o, _ = make(keys={"google": "AIzaCANARY"})
    r = await client.generate("a fox")
    assert r.provider == "google" and g.calls and not o.calls


async def test_preview_alias_maps_to_ga_with_a_warning():
    client, g, _, _ = make()
    r = await client.generate("a fox", provider="google", model="gemini-3-pro-image-preview")
    assert g.calls[0].wire_model == "gemini-3-pro-image"
    assert any("preview" in w for w in r.warnings)


# ---------------------------------------------------------------------- prompt and result
async def test_negative_prompt_is_folded_by_the_documented_template():
    client, _, o, _ = make()
    r = await client.generate("a fox", negative_prompt="text, watermark")
    expected = NEGATIVE_PROMPT_TEMPLATE.format(prompt="a fox", negative_prompt="text, watermark")
    assert o.calls[0].prompt == expected == r.effective_prompt
    assert r.prompt == "a fox" and r.negative_prompt == "text, watermark"


async def test_n_images_run_in_parallel_and_sum_usage():
    o = FakeProvider("openrouter", delay=0.2)
    client, _, o, _ = make(openrouter=o)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    r = await client.generate("a fox", n=3)
    assert loop.time() - t0 < 0.5  # parallel, not 3 x 0.2 s
    assert [i.index for i in r.images] == [0, 1, 2]
    assert r.usage.cost == pytest.approx(0.12)
    assert len(o.calls) == 3


async def test_partial_success_is_reported_image_by_image():
    bad = errors.UpstreamBadRequest("refused", provider="openrouter", status=400)
    o = FakeProvider("openrouter", outcomes=["ok", bad, "ok"])
    client, *_ = make(openrouter=o)
    r = await client.generate("a fox", n=3)
    assert len(r.images) == 2
    assert [(f.index, f.error_code) for f in r.failures] == [(1, "upstream_bad_request")]


async def test_size_mismatch_becomes_a_warning():
    client, *_ = make(openrouter=FakeProvider("openrouter", size=(100, 60)))
    r = await client.generate("a fox", aspect_ratio="16:9")
    assert any("100x60" in w and "1344x768" in w for w in r.warnings)


async def test_provenance_is_written_and_holds_no_secret(tmp_path):
    client, *_ = make()
    r = await client.generate("a fox", aspect_ratio="16:9", seed=7)
    (path,) = r.save(tmp_path / "fox.png")
    meta = read_metadata(path.read_bytes())
    assert meta["prompt"] == "a fox" and meta["aspect_ratio"] == "16:9" and meta["seed"] == 7
    assert meta["provider"] == "openrouter" and meta["model"] == DEFAULT_MODEL
    raw = path.read_bytes()
    for secret in KEYS.values():
        assert secret.encode() not in raw


# ------------------------------------------------------------------------------ retries
async def test_quota_is_retried_after_the_servers_delay():
    g = FakeProvider("google", outcomes=[quota(retry_after=2.5), "ok"])
    client, _, o, sleeps = make(google=g)
    r = await client.generate("a fox", provider="google")
    assert r.provider == "google" and len(g.calls) == 2 and not o.calls
    assert sleeps and sleeps[0] >= 2.5
    assert [a.status for a in r.attempts] == ["error", "ok"]


async def test_per_day_quota_is_not_retried_but_falls_back():
    g = FakeProvider("google", outcomes=[quota(per_day=True)])
    client, _, _o, sleeps = make(google=g)
    r = await client.generate("a fox", provider="google")
    assert len(g.calls) == 1 and not sleeps
    assert r.provider == "openrouter" and r.provider_model == DEFAULT_ON_OPENROUTER
    assert [(a.provider, a.status) for a in r.attempts] == [
        ("google", "error"),
        ("openrouter", "ok"),
    ]
    assert any("fallback" in w for w in r.warnings)


async def test_a_long_retry_after_is_not_waited_for():
    g = FakeProvider("google", outcomes=[quota(retry_after=86400)])
    client, _, _o, sleeps = make(google=g)
    r = await client.generate("a fox", provider="google")
    assert not sleeps and r.provider == "openrouter"


async def test_5xx_is_retried_up_to_the_policy_then_falls_back():
    down = [errors.UpstreamUnavailable("down", provider="google", status=503) for _ in range(5)]
    g = FakeProvider("google", outcomes=down)
    client, _, _o, sleeps = make(google=g, retry=RetryPolicy(max_attempts=3))
    r = await client.generate("a fox", provider="google")
    assert len(g.calls) == 3 and len(sleeps) == 2 and r.provider == "openrouter"


async def test_ambiguous_failure_is_never_resent_nor_fallen_back():
    amb = errors.AmbiguousError("reset after send", provider="google")
    g = FakeProvider("google", outcomes=[amb])
    client, _, o, _ = make(google=g)
    with pytest.raises(errors.AmbiguousError) as info:
        await client.generate("a fox", provider="google")
    assert len(g.calls) == 1 and not o.calls
    assert info.value.attempts and info.value.attempts[0].may_be_billed


@pytest.mark.parametrize(
    "err",
    [
        errors.UpstreamBadRequest("bad", provider="google", status=400),
        errors.BlockedError("blocked", provider="google", reason="IMAGE_SAFETY"),
        errors.InvalidResponseError("junk", provider="google"),
    ],
)
async def test_no_fallback_on_errors_that_would_repeat_or_were_billed(err):
    g = FakeProvider("google", outcomes=[err])
    client, _, o, _ = make(google=g)
    with pytest.raises(type(err)):
        await client.generate("a fox", provider="google")
    assert not o.calls


async def test_no_fallback_without_the_other_key_or_when_disabled():
    for kw in ({"keys": {"google": "AIzaCANARY"}}, {"fallback": False}):
        g = FakeProvider("google", outcomes=[quota(per_day=True)])
        client, _, o, _ = make(google=g, **kw)
        with pytest.raises(errors.QuotaError) as info:
            await client.generate("a fox", provider="google")
        assert info.value.per_day and not o.calls


async def test_connection_error_before_send_is_retried():
    g = FakeProvider("google", outcomes=[errors.ConnectError("refused", provider="google"), "ok"])
    client, *_ = make(google=g)
    r = await client.generate("a fox", provider="google")
    assert r.provider == "google" and len(g.calls) == 2


async def test_overall_deadline_stops_a_slow_call_and_marks_it_possibly_billed():
    client, *_ = make(openrouter=FakeProvider("openrouter", delay=5), deadline=0.2)
    with pytest.raises(errors.DeadlineExceeded) as info:
        await client.generate("a fox")
    assert info.value.may_be_billed
    assert info.value.attempts[-1].may_be_billed


def test_retry_delays_are_jittered_and_capped():
    from nanobanana.retry import retry_delay

    policy = RetryPolicy(initial_delay=0.5, max_delay=8.0)
    rng = random.Random(1)
    err = errors.UpstreamUnavailable("x", provider="google")
    delays = [retry_delay(err, attempt, policy, rng) for attempt in range(1, 8) for _ in range(150)]
    assert all(0 <= d <= 8.0 for d in delays)
    assert len(set(delays)) > 100  # jitter present
    first = [retry_delay(err, 1, policy, rng) for _ in range(100)]
    assert max(first) <= 0.5


# ------------------------------------------------------------------------------ streaming
async def test_stream_yields_text_image_usage_then_done():
    client, *_ = make()
    events = [ev async for ev in client.stream("a fox", aspect_ratio="16:9")]
    kinds = [type(e) for e in events]
    assert kinds[:3] == [TextDelta, TextDelta, ImageEvent]
    assert UsageEvent in kinds and AttemptEvent in kinds
    assert isinstance(events[-1], DoneEvent)
    assert events[-1].result.text == "hello world"
    assert events[-1].result.first_image_s is not None


async def test_an_image_carries_its_provenance_when_it_arrives():
    """An image event comes with the parameters and who served it, so it can be saved (and is,
    by the service) before the rest of the request is done; its cost once the call said it."""
    for stream, cost in ((True, None), (False, 0.04)):
        client, *_ = make()
        arrived = []

        def keep(ev, arrived=arrived):  # type: ignore[no-untyped-def]
            if isinstance(ev, ImageEvent):
                arrived.append(dict(ev.image.metadata))

        await client.generate(
            "a fox", negative_prompt="rain", aspect_ratio="16:9", n=2, on_event=keep, stream=stream
        )
        assert sorted(m["index"] for m in arrived) == [0, 1]
        meta = arrived[0]
        assert meta["prompt"] == "a fox" and meta["negative_prompt"] == "rain"
        assert meta["aspect_ratio"] == "16:9" and meta["provider"] == "openrouter"
        assert meta["provider_model"] and meta["synthetic"] is False
        assert meta.get("cost") == cost


async def test_stream_error_after_text_is_not_retried():
    err = errors.UpstreamUnavailable("mid-stream", provider="openrouter", status=502)
    err.after_text = True  # the fake raises it after the first delta
    o = FakeProvider("openrouter", outcomes=[err, "ok"])
    client, *_ = make(openrouter=o)
    seen = []
    with pytest.raises(errors.UpstreamUnavailable):
        async for ev in client.stream("a fox"):
            seen.append(ev)
    assert len(o.calls) == 1
    assert isinstance(seen[0], TextDelta)


# ------------------------------------------------------------------------------ discovery
async def test_models_merge_catalog_with_live_discovery():
    client, *_ = make()
    ids = {m.id for m in await client.models("openrouter")}
    assert "gemini-2.5-flash-image" in ids and "acme/new-image-model" in ids
    new = client.catalog.get("acme/new-image-model")
    assert new.discovered
    # a discovered model is usable, validated by what discovery said
    r = await client.generate("a fox", model="acme/new-image-model")
    assert r.model == "acme/new-image-model"


async def test_models_without_keys_is_the_catalog():
    client, *_ = make(keys={})
    ids = {m.id for m in await client.models()}
    assert {"gemini-3-pro-image", "black-forest-labs/flux.2-pro"} <= ids


# ------------------------------------------------------------------------------ sync facade
def test_sync_client_shares_the_implementation():
    g, o = FakeProvider("google"), FakeProvider("openrouter")
    with Client(
        api_keys=KEYS, env={}, use_keys_file=False, providers={"google": g, "openrouter": o}
    ) as c:
        r = c.generate("a fox", n=2)
        assert len(r.images) == 2
        events = list(c.stream("a fox"))
        assert isinstance(events[-1], DoneEvent)
        with pytest.raises(errors.ValidationError):
            c.generate("a fox", aspect_ratio="9:9")


async def test_a_seed_the_model_does_not_document_is_sent_with_a_warning():
    client, _g, o, _ = make()
    r = await client.generate("a fox", model="gemini-3-pro-image", provider="openrouter", seed=7)
    assert o.calls[-1].seed == 7
    assert any("does not document a seed" in w for w in r.warnings)
    r = await client.generate("a fox", model="black-forest-labs/flux.2-pro", seed=7)
    assert not any("seed" in w for w in r.warnings)

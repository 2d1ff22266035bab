"""The models the providers list, in the service: the library's discovery, shared.

One ``Listings`` per process, kept under ``data_dir`` so that the processes sharing it see what
any of them fetched (the demo emulator's are kept in memory: its port changes each run).  A
background task brings them into the catalog and fetches them again, with the server's keys
(without them, the listings that are public: OpenRouter's) or the demo emulator, once they are
older than ``model_listing_max_age_seconds``: no generation
waits for a listing.  A model that no listing has yet is looked up once, with the user's own
keys, when a request names it (at most every ``LISTING_REFRESH_AFTER`` seconds per provider).
"""

from __future__ import annotations

import asyncio
import logging

from ..client import AsyncClient
from ..errors import UnknownModelError
from ..request import Target, resolve_target
from ..retry import RetryPolicy
from .services import Services
from .upstream import Upstream, demo_upstream

__all__ = ["client_for", "refresh", "refresh_forever", "resolve"]

log = logging.getLogger("nanobanana.server")

#: How often the background task looks for listings another process fetched.
SYNC_EVERY = 60.0


def client_for(services: Services, upstream: Upstream) -> AsyncClient:
    """A client for ``upstream``'s keys, on the service's connections, catalog and listings."""
    settings = services.settings
    return AsyncClient(
        api_keys=upstream.api_keys,
        base_urls=upstream.base_urls,
        env={},
        use_keys_file=False,
        session=services.http,
        catalog=services.catalog,  # built once per process, not per job
        synthetic=upstream.synthetic,
        listings=services.demo_listings if upstream.synthetic else services.listings,
        deadline=settings.job_deadline_seconds,
        retry=RetryPolicy(max_attempts=settings.retry_max_attempts),
    )


async def resolve(
    services: Services,
    upstream: Upstream,
    model: str | None,
    provider: str | None,
    *,
    default_model: str | None,
    default_provider: str | None,
) -> Target:
    """``nanobanana.request.resolve_target`` on the service's catalog; a model it does not
    know is looked up in the providers' listings before it is refused."""

    def target() -> Target:
        return resolve_target(
            services.catalog,
            model,
            provider,
            default_model=default_model,
            default_provider=default_provider,
            has_key=upstream.has,
        )

    try:
        return target()
    except UnknownModelError:
        client = client_for(services, upstream)
        try:
            found = await client.find_model(model or default_model or "")
        finally:
            await client.aclose()
        if found is None:
            raise
        return target()


def background_upstream(services: Services) -> Upstream:
    """What the background refresh lists with: the server's keys, else the demo emulator,
    else no key (a provider whose listing is public is still listed: OpenRouter's)."""
    settings = services.settings
    keys = settings.server_keys()
    if keys:
        return Upstream(keys, settings.base_urls(), False, dict.fromkeys(keys, "server"))
    if services.demo is not None:
        return demo_upstream(services.demo)
    return Upstream({}, settings.base_urls(), False, {})


async def refresh(services: Services) -> None:
    """One round: the kept listings into the catalog, the stale ones fetched again."""
    client = client_for(services, background_upstream(services))
    try:
        await client.refresh_listings(max_age=services.settings.model_listing_max_age_seconds)
    finally:
        await client.aclose()


async def refresh_forever(services: Services) -> None:
    """``refresh`` now, then every ``SYNC_EVERY`` seconds (or the max age, when shorter), until
    cancelled.  A failed round is logged and the next one tried."""
    every = min(SYNC_EVERY, services.settings.model_listing_max_age_seconds)
    while True:
        try:
            await refresh(services)
        except Exception:  # a background task must outlive a bad round
            log.exception("Refreshing the model listings failed; trying again later.")
        await asyncio.sleep(every)

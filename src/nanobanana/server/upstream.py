"""Which keys and base URLs a user's generation uses.

Order per provider: the user's own stored key -> the server's key from the environment, when an
admin allows it.  A user with neither gets, in demo mode, the built-in emulator for every
provider, labelled synthetic; outside demo mode, nothing (400 ``missing_api_key``).  A key of
one's own switches the user to the real providers: real and synthetic images are never mixed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..providers import PROVIDERS
from .db.models import ProviderKey, ServerConfig
from .services import Services

if TYPE_CHECKING:
    from .demo import DemoUpstream

ALLOW_SERVER_KEYS = "allow_server_keys"
#: The emulator accepts any key without "invalid" in it.
DEMO_KEY = "demo-key-synthetic"


@dataclass(frozen=True)
class Upstream:
    api_keys: dict[str, str] = field(repr=False)
    base_urls: dict[str, str | None]
    synthetic: bool
    #: provider -> "user" | "server" | "demo"
    sources: dict[str, str]

    def has(self, provider: str) -> bool:
        return provider in self.api_keys


async def server_keys_allowed(session: AsyncSession, services: Services) -> bool:
    cached = services.key_cache.get_allowed()
    if cached is not None:
        return cached
    row = await session.get(ServerConfig, ALLOW_SERVER_KEYS)
    value = services.settings.allow_server_keys if row is None else bool(row.value)
    services.key_cache.put_allowed(value)
    return value


async def _user_keys(session: AsyncSession, services: Services, user_id: str) -> dict[str, str]:
    cached = services.key_cache.get(user_id)
    if cached is not None:
        return dict(cached)
    rows = (
        await session.execute(
            select(ProviderKey.provider, ProviderKey.ciphertext).where(
                ProviderKey.user_id == user_id
            )
        )
    ).all()
    keys = {provider: services.vault.decrypt(ciphertext) for provider, ciphertext in rows}
    services.key_cache.put(user_id, keys)
    return dict(keys)


async def resolve_upstream(session: AsyncSession, services: Services, user_id: str) -> Upstream:
    keys = await _user_keys(session, services, user_id)
    sources = dict.fromkeys(keys, "user")
    server = services.settings.server_keys()
    if server and await server_keys_allowed(session, services):
        for provider, key in server.items():
            if provider not in keys:
                keys[provider] = key
                sources[provider] = "server"
    if keys:
        return Upstream(keys, services.settings.base_urls(), False, sources)
    if services.demo is not None:
        return demo_upstream(services.demo)
    return Upstream({}, services.settings.base_urls(), False, {})


def demo_upstream(demo: DemoUpstream) -> Upstream:
    """Every provider answered by the built-in emulator, labelled synthetic."""
    return Upstream(
        dict.fromkeys(PROVIDERS, DEMO_KEY),
        dict(demo.base_urls),
        True,
        dict.fromkeys(PROVIDERS, "demo"),
    )

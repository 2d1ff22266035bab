"""Checking a user's stored provider key with a free call that authenticates it (OpenRouter's
``GET /key``, which also reports the key's credit; Google's model list).  No HTTP here."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from ..client import AsyncClient
from ..errors import AuthenticationError, MissingKeyError, NanobananaError
from ..providers import INFOS
from ..providers.base import KeyStatus
from .db.models import ProviderKey
from .services import Services


@dataclass(frozen=True)
class KeyTest:
    provider: str
    ok: bool
    #: One sentence for the settings page.
    message: str
    error_code: str | None = None
    #: What the provider said of the key, when it accepted it.
    status: KeyStatus | None = None


async def check_stored_key(
    session: AsyncSession, services: Services, user_id: str, provider: str
) -> KeyTest:
    """The verdict on the user's stored key; ``MissingKeyError`` when none is stored."""
    row = await session.scalar(
        select(ProviderKey).where(ProviderKey.user_id == user_id, ProviderKey.provider == provider)
    )
    await session.commit()
    if row is None:
        raise MissingKeyError(provider)
    client = AsyncClient(
        api_keys={provider: services.vault.decrypt(row.ciphertext)},
        base_urls=services.settings.base_urls(),
        env={},
        use_keys_file=False,
        session=services.http,
        fallback=False,
    )
    name = INFOS[provider].label
    try:
        status = await client.check_key(provider)
    except AuthenticationError as exc:
        refused = f"The {name} key was refused: {name} does not accept it."
        return KeyTest(provider, False, refused, exc.code)
    except NanobananaError as exc:
        return KeyTest(provider, False, f"Could not check the {name} key: {exc.message}", exc.code)
    finally:
        await client.aclose()
    return KeyTest(provider, True, _accepted(name, status), status=status)


def _accepted(name: str, status: KeyStatus) -> str:
    """``The OpenRouter key works: $74.50 of its $100.00 limit left (resets monthly).``"""
    said = []
    if status.limit is not None and status.limit_remaining is not None:
        reset = f" (resets {status.limit_reset})" if status.limit_reset else ""
        said.append(f"${status.limit_remaining:.2f} of its ${status.limit:.2f} limit left{reset}")
    elif status.usage is not None:
        said.append(f"no spending limit on the key, ${status.usage:.2f} used so far")
    if status.free_tier:
        said.append("a free-tier key (free models only, lower rate limits)")
    if status.models is not None:
        said.append(f"{status.models} image models available")
    return f"The {name} key works" + (f": {'; '.join(said)}." if said else ".")

"""What the providers' live model listings said, kept between runs.

The built-in catalog knows its models precisely; a provider lists more (OpenRouter adds image
models every few weeks).  A listing is fetched when a caller names a model the catalog does not
know (or lists the models), kept on disk per provider and endpoint
(``<user cache dir>/nanobanana/models/``, or ``$NANOBANANA_CACHE_DIR/models/``), and read back by
the next run: a model found once is usable by id from then on without a listing call, and a
model the catalog knows never waits for one.  The emulator's listing and a real provider's are
kept apart by their base URLs.

``Listings`` is what one process knows: the newest listing of each provider and endpoint, read
back from the cache when another process (a second service worker, a later CLI run) wrote a
newer one.  A service shares one ``Listings`` between all its clients.

Nothing here calls a provider: the client fetches and hands the specs to ``Listings.keep``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from .catalog import ModelSpec, Pricing
from .files import atomic_write, user_file_mode

__all__ = [
    "CACHE_DIR_ENV",
    "Listing",
    "ListingCache",
    "Listings",
    "spec_from_record",
    "spec_record",
]

log = logging.getLogger("nanobanana.discovery")

CACHE_DIR_ENV = "NANOBANANA_CACHE_DIR"
LISTING_VERSION = 1


@dataclass(frozen=True)
class Listing:
    """One provider's image models as its listing gave them, and when."""

    provider: str
    models: tuple[ModelSpec, ...]
    fetched_at: float

    def age(self, now: float | None = None) -> float:
        return (time.time() if now is None else now) - self.fetched_at


def spec_record(spec: ModelSpec) -> dict[str, Any]:
    """A discovered spec as JSON (every field, so that reading it back loses nothing)."""
    p = spec.pricing
    return {
        "id": spec.id,
        "name": spec.name,
        "description": spec.description,
        "provider_ids": dict(spec.provider_ids),
        "aspect_ratios": list(spec.aspect_ratios),
        "sizes": list(spec.sizes),
        "outputs_text": spec.outputs_text,
        "accepts_images": spec.accepts_images,
        "max_input_images": spec.max_input_images,
        "gemini_sizes": spec.gemini_sizes,
        "supports_seed": spec.supports_seed,
        "thinking_levels": None if spec.thinking_levels is None else list(spec.thinking_levels),
        "pricing": {
            "input_per_mtok": p.input_per_mtok,
            "output_image_per_mtok": p.output_image_per_mtok,
            "output_text_per_mtok": p.output_text_per_mtok,
            "image_tokens": dict(p.image_tokens),
            "input_image_tokens": p.input_image_tokens,
        },
        "aliases": list(spec.aliases),
        "shutdown": spec.shutdown.isoformat() if spec.shutdown else None,
        "replaced_by": spec.replaced_by,
    }


def spec_from_record(d: Mapping[str, Any]) -> ModelSpec:
    p = d.get("pricing") or {}
    return ModelSpec(
        id=str(d["id"]),
        name=str(d.get("name") or d["id"]),
        description=str(d.get("description") or ""),
        provider_ids={str(k): str(v) for k, v in d["provider_ids"].items()},
        aspect_ratios=tuple(d["aspect_ratios"]),
        sizes=tuple(d["sizes"]),
        outputs_text=bool(d["outputs_text"]),
        accepts_images=bool(d["accepts_images"]),
        max_input_images=int(d["max_input_images"]),
        gemini_sizes=bool(d["gemini_sizes"]),
        supports_seed=bool(d["supports_seed"]),
        # Files kept before levels were read say nothing: not known.
        thinking_levels=(None if d.get("thinking_levels") is None else tuple(d["thinking_levels"])),
        pricing=Pricing(
            input_per_mtok=p.get("input_per_mtok"),
            output_image_per_mtok=p.get("output_image_per_mtok"),
            output_text_per_mtok=p.get("output_text_per_mtok"),
            image_tokens={str(k): int(v) for k, v in (p.get("image_tokens") or {}).items()},
            input_image_tokens=p.get("input_image_tokens"),
        ),
        aliases=tuple(d.get("aliases") or ()),
        shutdown=date.fromisoformat(d["shutdown"]) if d.get("shutdown") else None,
        replaced_by=d.get("replaced_by"),
        discovered=True,
    )


class ListingCache:
    """Listings on disk, one JSON file per provider, written atomically.  A file that cannot
    be read counts as no listing (it is only a cache): the next fetch replaces it."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    @classmethod
    def default(cls, env: Mapping[str, str] | None = None) -> ListingCache:
        """``$NANOBANANA_CACHE_DIR``, else the user's cache folder, then ``models/``."""
        env = os.environ if env is None else env
        if env.get(CACHE_DIR_ENV):
            return cls(Path(env[CACHE_DIR_ENV]) / "models")
        from platformdirs import user_cache_path

        return cls(user_cache_path("nanobanana", appauthor=False) / "models")

    def _path(self, provider: str, base_url: str) -> Path:
        where = hashlib.sha256(base_url.encode()).hexdigest()[:16]
        return self.folder / f"{provider}-{where}.json"

    def version(self, provider: str, base_url: str) -> int | None:
        """A number that changes whenever the listing's file is replaced (None: no file)."""
        try:
            return self._path(provider, base_url).stat().st_mtime_ns
        except OSError:
            return None

    def load(self, provider: str, base_url: str) -> Listing | None:
        """What ``provider`` at ``base_url`` listed last, or ``None``."""
        return _read(self._path(provider, base_url), provider)

    def every_model(self) -> list[ModelSpec]:
        """The models of every kept listing, of any provider and endpoint (for a picker that
        cannot wait for a listing call)."""
        found: dict[str, ModelSpec] = {}
        for path in sorted(self.folder.glob("*-*.json")):
            listing = _read(path, path.stem.rpartition("-")[0])
            for spec in listing.models if listing is not None else ():
                found.setdefault(spec.id, spec)
        return list(found.values())

    def save(
        self, provider: str, base_url: str, models: list[ModelSpec], *, now: float | None = None
    ) -> Listing:
        listing = Listing(provider, tuple(models), time.time() if now is None else now)
        body = {
            "version": LISTING_VERSION,
            "provider": provider,
            "fetched_at": listing.fetched_at,
            "models": [spec_record(m) for m in models],
        }
        text = json.dumps(body, ensure_ascii=False, indent=1)
        atomic_write(self._path(provider, base_url), text.encode(), mode=user_file_mode())
        return listing


def _read(path: Path, provider: str) -> Listing | None:
    """A kept listing file, or ``None`` when it is missing, unreadable or of another version
    (it is only a cache: the next fetch replaces it)."""
    try:
        data = json.loads(path.read_text("utf-8"))
        if data.get("version") != LISTING_VERSION:
            return None
        models = tuple(spec_from_record(m) for m in data["models"])
        return Listing(provider, models, float(data["fetched_at"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


class Listings:
    """The newest listing of each provider and endpoint that this process knows.

    ``cache`` keeps them on disk (``None``: in memory only, e.g. for an emulator on a new port
    each run).  A kept file is read once, and again only after it was replaced: a listing
    another process fetched is seen here without a listing call of our own.
    """

    def __init__(self, cache: ListingCache | None) -> None:
        self.cache = cache
        self._known: dict[tuple[str, str], Listing] = {}
        self._seen: dict[tuple[str, str], int | None] = {}

    async def kept(self, provider: str, base_url: str) -> Listing | None:
        key = (provider, base_url)
        if self.cache is not None:
            version = await asyncio.to_thread(self.cache.version, provider, base_url)
            if version is not None and (key not in self._seen or version != self._seen[key]):
                self._seen[key] = version
                listing = await asyncio.to_thread(self.cache.load, provider, base_url)
                known = self._known.get(key)
                if listing is not None and (known is None or listing.fetched_at > known.fetched_at):
                    self._known[key] = listing
        return self._known.get(key)

    async def keep(
        self, provider: str, base_url: str, models: list[ModelSpec], *, now: float | None = None
    ) -> Listing:
        """Remember a listing just fetched, and keep it on disk (a failure to write is only
        logged: the listing is used all the same)."""
        listing = Listing(provider, tuple(models), time.time() if now is None else now)
        key = (provider, base_url)
        self._known[key] = listing
        if self.cache is not None:
            try:
                await asyncio.to_thread(
                    self.cache.save, provider, base_url, models, now=listing.fetched_at
                )
                self._seen[key] = await asyncio.to_thread(self.cache.version, provider, base_url)
            except OSError as exc:
                log.warning("Could not keep %s's model listing: %s", provider, exc)
        return listing

"""The long-lived objects of one running service, built in the app's lifespan."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from ..catalog import Catalog
from ..discovery import Listings
from .authcache import AuthCache
from .db.direct import Transactions
from .db.models import utcnow
from .defaultscache import DefaultsCache
from .events import Bus
from .keycache import KeyCache
from .security import KeyVault, LoginGuard, Passwords, RateLimiter
from .settings import Settings
from .storage import ImageStore

if TYPE_CHECKING:
    from .demo import DemoUpstream
    from .jobs import JobManager
    from .sharedlimits import RedisUserSlots


@dataclass
class Services:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    #: Short write transactions in one step (``db.direct.Transactions``).
    tx: Transactions
    store: ImageStore
    vault: KeyVault
    passwords: Passwords
    login_guard: LoginGuard
    #: New generations per user and minute.
    generation_limiter: RateLimiter
    catalog: Catalog
    bus: Bus
    #: The shared aiohttp.ClientSession every provider call goes through.
    http: Any
    demo: DemoUpstream | None = None
    jobs: JobManager | None = field(default=None, repr=False)
    #: Decrypted provider keys, briefly (``keycache.KeyCache``).
    key_cache: KeyCache = field(default_factory=KeyCache, repr=False)
    #: Who a bearer token belongs to, briefly (``authcache.AuthCache``).
    auth_cache: AuthCache = field(default_factory=AuthCache, repr=False)
    #: Users' saved generation defaults, briefly (``defaultscache.DefaultsCache``).
    defaults_cache: DefaultsCache = field(default_factory=DefaultsCache, repr=False)
    #: The providers' model listings (``listings``): kept under data_dir and shared by the
    #: processes that share it; the demo emulator's in memory only.
    listings: Listings = field(default_factory=lambda: Listings(None), repr=False)
    demo_listings: Listings = field(default_factory=lambda: Listings(None), repr=False)
    #: With Redis: a user's running jobs counted across processes.
    user_slots: RedisUserSlots | None = field(default=None, repr=False)
    #: This process as the owner of the jobs it runs (``leases.Leases.id``).
    worker_id: str | None = None
    #: Sends webhook deliveries (``webhooks``); ``wake`` it when one is written.
    webhooks: Any = field(default=None, repr=False)
    #: The clock for expiry and idempotency windows (tests move it).
    now: Callable[[], datetime] = utcnow

    @property
    def job_manager(self) -> JobManager:
        assert self.jobs is not None, "the job manager starts with the app"
        return self.jobs

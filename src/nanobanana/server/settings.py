"""The service's settings: read once at the edge (``nanobanana serve`` or ``create_app``).

Every field can be set by an environment variable ``NANOBANANA_<FIELD>`` (e.g.
``NANOBANANA_DATA_DIR``); the server-wide provider keys use the usual names
(``OPENROUTER_API_KEY``, ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``).  Nothing here runs at import
time: a ``Settings()`` reads the environment when it is built.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from platformdirs import user_data_path
from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DAY = 24 * 3600


def _default_data_dir() -> Path:
    return user_data_path("nanobanana", appauthor=False)


class Settings(BaseSettings):
    """Configuration of one ``nanobanana serve`` process."""

    model_config = SettingsConfigDict(
        env_prefix="NANOBANANA_",
        extra="ignore",
        validate_default=True,
        populate_by_name=True,
    )

    # ---------------------------------------------------------------- storage and database
    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="Holds the SQLite database, the images and the generated master key.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy async URL; default sqlite+aiosqlite in data_dir. "
        "PostgreSQL: postgresql+asyncpg://user:pass@host/db",
    )
    storage_url: str | None = Field(
        default=None,
        description="Where images are kept: s3://bucket/prefix (credentials and region from "
        "the standard AWS_* variables); default: data_dir/images on this host.",
    )
    s3_endpoint_url: str | None = Field(
        default=None,
        description="The S3 endpoint of a store other than AWS (SeaweedFS, MinIO, R2...), e.g. "
        "http://127.0.0.1:8333.",
    )

    redis_url: SecretStr | None = Field(
        default=None,
        description="Redis shared by the service's processes, e.g. redis://host:6379/0: job "
        "events follow a job from any web process (live event streams, and synchronous "
        "requests woken at once instead of reading the database).",
    )

    # ----------------------------------------------------------------------- secrets
    master_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Fernet keys, comma separated; the first encrypts, all decrypt. Empty: a key "
        "file in data_dir (created with mode 0600 on first start).",
    )
    master_key_file: Path | None = Field(
        default=None,
        description="Where the generated master key lives (default data_dir/master.key).",
    )

    # ------------------------------------------------------------------ providers
    demo: bool | None = Field(
        default=None,
        description="Demo mode: users without a key get synthetic images from the built-in "
        "emulator. None: on when no provider key is in the environment.",
    )
    openrouter_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("NANOBANANA_OPENROUTER_BASE_URL", "OPENROUTER_BASE_URL"),
    )
    gemini_base_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("NANOBANANA_GEMINI_BASE_URL", "GEMINI_BASE_URL"),
    )
    openrouter_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("OPENROUTER_API_KEY", "NANOBANANA_OPENROUTER_API_KEY"),
    )
    gemini_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "GEMINI_API_KEY", "GOOGLE_API_KEY", "NANOBANANA_GEMINI_API_KEY"
        ),
    )
    allow_server_keys: bool = Field(
        default=False,
        description="Initial value of the admin switch letting every user use the server's keys.",
    )

    # ------------------------------------------------------------------ HTTP surface
    webhook_allow_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Hosts (`host` or `host:port`, comma separated) webhooks may go to although "
        "they are private, loopback or link-local: a receiver on this machine or network. "
        "Every other webhook target must be a public address.",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Allowed CORS origins, comma separated; empty: CORS off."
    )
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Addresses or networks (comma separated) of the reverse proxies in front of "
        "the service, whose X-Forwarded-For and X-Forwarded-Proto are believed. Empty (the "
        "default): those headers are ignored, and a client is known by its own address.",
    )
    public_url: str | None = Field(
        default=None,
        description="The address clients reach the service at (e.g. https://images.example.com), "
        "for the absolute links it hands out (the Images API's `url` results). Unset: the "
        "address and port the client's connection arrived on; never the request's Host header.",
    )
    docs_enabled: bool = Field(default=True, description="Serve /docs and /openapi.json.")
    allow_registration: bool = Field(
        default=True, description="Let anyone register (the first user can always register)."
    )

    # ---------------------------------------------------------------------- accounts
    token_ttl_seconds: int = Field(default=7 * DAY, ge=60)
    max_api_tokens_per_user: int = Field(
        default=100, ge=1, description="Live personal API tokens a user may have."
    )
    max_sessions_per_user: int = Field(
        default=50, ge=1, description="Live sign-in sessions per user; the oldest end first."
    )
    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=10, ge=1)
    login_window_seconds: float = Field(default=300.0, gt=0)
    #: Argon2id parameters (argon2-cffi's RFC 9106 low-memory profile by default).
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)

    # -------------------------------------------------------------------------- jobs
    # Why these defaults: a running job is an upstream call that waits 5-60 s and costs the
    # service almost nothing meanwhile (one parked coroutine and socket, ~50-90 KB), so the
    # service can hold hundreds at once; a low cap only queued them behind each other.  What a
    # user may spend is bounded by the per-user limits and, above all, by
    # ``generations_per_minute`` (new generations a user may start; the budget guard).
    jobs: Literal["embedded", "external"] = Field(
        default="embedded",
        description="Who runs the generation jobs: this process (embedded), or the "
        "`nanobanana worker` processes sharing its PostgreSQL database (external; the web "
        "process then only queues them).",
    )
    max_concurrent_jobs: int = Field(
        default=512, ge=1, description="Generations running at once, all users together."
    )
    max_concurrent_jobs_per_user: int = Field(
        default=16, ge=1, description="Generations one user may have running at once."
    )
    max_queued_jobs_per_user: int = Field(
        default=64, ge=1, description="Generations one user may have queued or running."
    )
    generations_per_minute: int = Field(
        default=60, ge=1, description="New generations a user may start per minute."
    )
    job_deadline_seconds: float = Field(default=300.0, gt=0)
    retry_max_attempts: int = Field(
        default=3, ge=1, le=10, description="Attempts per provider for a retryable failure."
    )
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    worker_lease_seconds: float = Field(
        default=30.0,
        ge=1,
        description="How long a process sharing the database may go without a heartbeat "
        "before another ends its jobs as interrupted (at once when it ran on the same host and "
        "its process is gone).",
    )
    model_listing_max_age_seconds: float = Field(
        default=3600.0,
        ge=1,
        description="How old the providers' model listings may get before the service fetches "
        "them again, in the background, with the server's keys (without them, OpenRouter's "
        "public listing; in demo mode, the emulator).",
    )
    idempotency_window_seconds: int = Field(default=DAY, ge=1)
    retry_replay_seconds: int = Field(
        default=3600,
        ge=0,
        description="How long a drop-in call (OpenRouter or OpenAI dialect) sent again with the "
        "same body by the same user, after a failure that may have been billed, is answered "
        "with that failure instead of paying again (clients that retry blindly, such as "
        "OpenRouter's SDK for an hour); 0 turns this off.",
    )

    # ------------------------------------------------------------------------ uploads
    max_request_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="Largest request body (JSON with data-URL references included).",
    )
    max_upload_bytes: int = Field(default=7 * 1024 * 1024, ge=1024)
    max_upload_pixels: int = Field(default=40_000_000, ge=1)

    @field_validator("master_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return [k.strip() for k in value.split(",") if k.strip()]
        return value

    @field_validator("storage_url")
    @classmethod
    def _storage_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        from .storage.s3 import parse_storage_url

        parse_storage_url(value)
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.netloc
            or parts.query
            or parts.fragment
        ):
            raise ValueError(
                "NANOBANANA_PUBLIC_URL must be an http(s) URL without query or fragment, "
                "e.g. https://images.example.com"
            )
        return value.rstrip("/")

    @field_validator("cors_origins", "trusted_proxies", "webhook_allow_hosts", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip() for o in value.split(",") if o.strip()]
        return value

    @model_validator(mode="after")
    def _external_jobs_need_postgresql(self) -> Settings:
        if self.jobs == "external" and not self.uses_postgresql:
            raise ValueError(
                "NANOBANANA_JOBS=external needs a PostgreSQL database shared by the web and "
                "worker processes: set NANOBANANA_DATABASE_URL=postgresql+asyncpg://user@host/db "
                "(SQLite serves one process, which runs its jobs itself)"
            )
        return self

    # ------------------------------------------------------------------ derived values
    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'nanobanana.db'}"

    @property
    def uses_postgresql(self) -> bool:
        return self.resolved_database_url.startswith("postgresql")

    @property
    def resolved_master_key_file(self) -> Path:
        return self.master_key_file or self.data_dir / "master.key"

    @property
    def images_dir(self) -> Path:
        return self.data_dir / "images"

    @property
    def listings_dir(self) -> Path:
        """The providers' model listings, shared by the processes that share ``data_dir``."""
        return self.data_dir / "listings"

    def server_keys(self) -> dict[str, str]:
        """Server-wide provider keys from the environment (usable only when the admin allows)."""
        out: dict[str, str] = {}
        if self.openrouter_api_key and self.openrouter_api_key.get_secret_value():
            out["openrouter"] = self.openrouter_api_key.get_secret_value()
        if self.gemini_api_key and self.gemini_api_key.get_secret_value():
            out["google"] = self.gemini_api_key.get_secret_value()
        return out

    @property
    def demo_enabled(self) -> bool:
        """Demo mode: explicitly on, or auto (None) with no provider key in the environment."""
        if self.demo is not None:
            return self.demo
        return not self.server_keys()

    def base_urls(self) -> dict[str, str | None]:
        return {"openrouter": self.openrouter_base_url, "google": self.gemini_base_url}

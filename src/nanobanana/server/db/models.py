"""The service's tables (SQLAlchemy 2, typed ORM), the same on SQLite and PostgreSQL.

Ids are random (``uuid4().hex``) so they reveal nothing and cannot be enumerated; every
user-owned row carries ``user_id`` and every query that reads one filters on it.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement

#: Constraint names Alembic can refer to on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "blocked", "interrupted")
ACTIVE_STATUSES = ("queued", "running")


def new_id() -> str:
    return uuid.uuid4().hex


_ID = re.compile(r"^[0-9a-f]{32}$")


def is_object_id(value: str) -> bool:
    """Whether ``value`` could be an id this service made.  Routes check it before any query:
    another string is simply not found (and a NUL byte never reaches PostgreSQL)."""
    return bool(_ID.match(value))


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the zone on the way back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime()}


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(64))
    #: Lower-cased username: the unique login name.
    username_key: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Token(Base):
    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    #: SHA-256 (hex) of the opaque token; the token itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # "session" | "api"
    name: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()


class ProviderKey(Base):
    __tablename__ = "provider_keys"
    __table_args__ = (UniqueConstraint("user_id", "provider"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    #: Fernet token (MultiFernet, first master key).
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    #: The last four characters, for the masked view without decrypting.
    last4: Mapped[str] = mapped_column(String(4))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class UserSettings(Base):
    __tablename__ = "user_settings"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    provider: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(200))
    aspect_ratio: Mapped[str | None] = mapped_column(String(16))
    image_size: Mapped[str | None] = mapped_column(String(16))
    #: Where each generation's final state is POSTed unless it names its own (``webhooks``).
    webhook_url: Mapped[str | None] = mapped_column(String(2048))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookSecret(Base):
    """A user's webhook signing secret (``whsec_...``, encrypted at rest like provider keys)
    and, for a day after a rotation, the one before it: deliveries are signed with both."""

    __tablename__ = "webhook_secrets"

    user_id: Mapped[str] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    secret_enc: Mapped[bytes] = mapped_column(LargeBinary)
    previous_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    previous_until: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """The POST of a generation's final state to its webhook: written in the transaction that
    ends the job (so it is sent at least once), then tried until the receiver answers 2xx or a
    day has passed.  One per generation: its ``webhook-id`` (``msg_<job id>``) is the same on
    every attempt, for the receiver to drop duplicates."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_user", "user_id", "created_at"),
    )

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    event: Mapped[str] = mapped_column(String(64))
    #: ``pending`` (tried at ``next_attempt_at``), ``delivered`` or ``failed`` (gave up).
    state: Mapped[str] = mapped_column(String(16), default="pending")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: The body as first sent: every retry sends the same bytes.
    payload: Mapped[str | None] = mapped_column(Text)
    #: Each attempt: when, the status code or the error, how long it took (the last 30).
    log: Mapped[list[Any] | None] = mapped_column(JSON)
    delivered_at: Mapped[datetime | None] = mapped_column()


class ServerConfig(Base):
    """Switches an admin changes at run time (e.g. ``allow_server_keys``)."""

    __tablename__ = "server_config"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)


class Budget(Base):
    """A spending cap in USD per UTC day and per UTC month (``None``: no cap), for one user
    (``scope`` = the user's id) or for the whole service (``scope`` = ``SERVICE_SCOPE``)."""

    __tablename__ = "budgets"

    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    daily_usd: Mapped[float | None] = mapped_column(Float)
    monthly_usd: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


#: ``Budget.scope`` of the caps on the whole service (a user's id is 32 hex digits).
SERVICE_SCOPE = "service"


class Spend(Base):
    """What each generation costs or may cost: the ledger spending caps are checked against.
    A row is written with its job and kept when the job is deleted (deleting a generation
    gives back no money), and when the account is deleted (the service's spend stays true)."""

    __tablename__ = "spend"
    __table_args__ = (
        Index("ix_spend_user_created", "user_id", "created_at"),
        Index("ix_spend_created", "created_at"),
    )

    job_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column()
    #: The estimate held while the job runs, and after it ended when it may have been billed
    #: more than its recorded cost (a failure after the call was sent); else 0.
    held_usd: Mapped[float] = mapped_column(Float, default=0.0)
    #: The job's recorded cost once it ended (``None``: unknown or free).
    cost_usd: Mapped[float | None] = mapped_column(Float)
    #: What usage is told by (``usage``): the provider and model that answered (those asked
    #: for until the job ends), and how many images it stored.
    provider: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(200))
    images: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Worker(Base):
    """A process that runs jobs, alive while its heartbeat is fresh (``leases``)."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)


class EditSession(Base):
    """A conversational editing session: a tree of turns, each a job (``Job.session_id``,
    ``Job.parent_id``): docs/sessions.md."""

    __tablename__ = "edit_sessions"
    __table_args__ = (Index("ix_edit_sessions_user_updated", "user_id", "updated_at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key"),
        Index("ix_jobs_user_created", "user_id", "created_at"),
        # A drop-in call's look for an identical earlier one (``find_blind_retry``).
        Index("ix_jobs_user_hash", "user_id", "request_hash", "created_at"),
        Index("ix_jobs_status", "status"),
        Index("ix_jobs_session", "session_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    #: Which endpoint made it ("seed" for /api/nano-banana/generate, "async" for /api/generations).
    kind: Mapped[str] = mapped_column(String(16), default="async")
    #: The normalised request (references as upload ids).
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    prompt: Mapped[str] = mapped_column(Text)
    effective_prompt: Mapped[str | None] = mapped_column(Text)
    provider: Mapped[str | None] = mapped_column(String(32))
    model: Mapped[str | None] = mapped_column(String(200))
    provider_model: Mapped[str | None] = mapped_column(String(200))
    text: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    failures: Mapped[list[Any]] = mapped_column(JSON, default=list)
    warnings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    cost: Mapped[float | None] = mapped_column(Float)
    cost_is_estimate: Mapped[bool] = mapped_column(Boolean, default=False)
    #: elapsed_s, first_image_s, queued_s.
    timings: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: What a search-grounded generation looked up (``Grounding.to_dict``); None otherwise.
    grounding: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    error_details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    synthetic: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    #: The worker (``Worker.id``) that runs it; its lease is that worker's heartbeat.
    owner: Mapped[str | None] = mapped_column(String(32))
    #: Raised when the job is taken from its owner: the owner's later writes of the job's end
    #: name the attempt they began with, and match nothing (the fence).
    attempt: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    #: A turn of an editing session: the session, the turn it continues (``None``: a first
    #: turn), and what the provider needs to continue from its answer (``PriorTurn``).
    session_id: Mapped[str | None] = mapped_column(
        ForeignKey("edit_sessions.id", ondelete="CASCADE")
    )
    parent_id: Mapped[str | None] = mapped_column(String(32))
    continuation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    #: Where its final state is POSTed (``webhooks``): the request's, else the user's default.
    webhook_url: Mapped[str | None] = mapped_column(String(2048))


def prompt_contains(text: str) -> ColumnElement[bool]:
    """Jobs whose prompt holds ``text``, case aside; ``%``, ``_`` and ``\\`` are characters,
    not wildcards.  (On PostgreSQL the trigram index of migration 0002 serves it.)"""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return Job.prompt.ilike(f"%{escaped}%", escape="\\")


class StoredImage(Base):
    __tablename__ = "images"
    __table_args__ = (Index("ix_images_sha256", "sha256"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    index: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    mime_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(200))
    thumb_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: The standard ratio and the output size nearest to the pixels (``catalog.nearest_ratio``,
    #: ``catalog.size_class``): what the gallery filters on, whatever was asked for.
    aspect_ratio: Mapped[str | None] = mapped_column(String(8))
    image_size: Mapped[str | None] = mapped_column(String(8))
    favourite: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Upload(Base):
    __tablename__ = "uploads"
    __table_args__ = (Index("ix_uploads_sha256", "sha256"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    mime_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

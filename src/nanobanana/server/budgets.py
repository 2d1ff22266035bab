"""Spending caps: USD per UTC day and per UTC month, for each user and for the whole service.

The ledger (``Spend``) has one row per generation, written in the transaction that inserts the
job and kept when the job is deleted.  What a row counts against a cap is the larger of the
two amounts it holds:

- ``held_usd``: the request's estimate (every image it makes, at the catalog's price for
  its model and size, with the prompt and input images each call sends), held from the
  moment the job is accepted until it ends; after the end, still held when the job failed in
  a way that may have been billed (its real cost is not known), released (0) otherwise;
- ``cost_usd``: the cost the job recorded when it ended (the provider's figure, or the
  catalog's price for its usage).

So a cap is checked **before** any paid call, with the whole request's estimate, and reconciled
with the real cost afterwards.  A request for several images that does not fit whole makes as
many as fit (the fan-out stops at the cap: the others are reported as failed with the cap's
reason); one that has no room for a single image is refused.

An image model's price is the same on either provider (OpenRouter passes Google's price on),
so a fallback does not change the estimate.  A model the catalog has no price for (most
models found by discovery) is estimated, under a cap, at the most one of its images cost in
the last 30 days (``learned_price``); one never used before is estimated at 0 and counts with
its real cost once it has one.  Demo mode's synthetic images (the built-in emulator's) cost
nothing and are estimated at 0.

Checking and holding are one step (``reserve``), inside the transaction that inserts the job:
on SQLite that transaction holds the database's write lock (``BEGIN IMMEDIATE``), on
PostgreSQL it first takes an advisory lock (the whole service's when a service cap is set,
else the user's).  Concurrent requests against a nearly spent cap are therefore checked one
after another, each seeing the others' holds: a cap is never overshot by an estimate.  It may
be overshot by what the estimates missed (the model's text and thinking, the first use of a
model without a price); no request is accepted once the spend has reached the cap.

Periods are UTC: a day from 00:00, a month from the first day at 00:00.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Connection, case, delete, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from .db.models import SERVICE_SCOPE, Budget, Job, Spend, StoredImage, User
from .errors import BudgetExceeded
from .reports import may_have_billed

PeriodName = Literal["day", "month"]
#: Advisory-lock namespace of the caps' checks (PostgreSQL's two-key form).
_LOCK_NAMESPACE = 0x6E42
#: Rounding slack: sums of floats must not refuse a request that exactly meets a cap.
_EPSILON = 1e-9
#: The key of a job's request record that says it was cut short by a cap: ``{"n": how many
#: images it makes, "message": why not the others}``.
CUT = "cut_by_cap"
#: How far back the ledger is read for the price of a model the catalog has none for.
LEARNED_OVER = timedelta(days=30)


@dataclass(frozen=True)
class Caps:
    """A scope's caps (``None``: no cap)."""

    daily_usd: float | None = None
    monthly_usd: float | None = None

    def cap(self, period: PeriodName) -> float | None:
        return self.daily_usd if period == "day" else self.monthly_usd

    @property
    def any(self) -> bool:
        return self.daily_usd is not None or self.monthly_usd is not None


@dataclass(frozen=True)
class Period:
    name: PeriodName
    start: datetime
    resets_at: datetime


def periods(now: datetime) -> tuple[Period, Period]:
    """The UTC day and the UTC month ``now`` is in."""
    now = now.astimezone(UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    month = day.replace(day=1)
    next_month = (month + timedelta(days=32)).replace(day=1)
    return Period("day", day, day + timedelta(days=1)), Period("month", month, next_month)


def charge() -> ColumnElement[float]:
    """What a ledger row counts against a cap: the larger of its hold and its cost."""
    cost = func.coalesce(Spend.cost_usd, 0.0)
    return case((cost > Spend.held_usd, cost), else_=Spend.held_usd)


def _spent_query(scope: str, since: datetime) -> Any:
    query = select(func.coalesce(func.sum(charge()), 0.0)).where(Spend.created_at >= since)
    if scope != SERVICE_SCOPE:
        query = query.where(Spend.user_id == scope)
    return query


def spent(conn: Connection, scope: str, since: datetime) -> float:
    """The spend of ``scope`` (a user's id, or ``SERVICE_SCOPE``) since ``since``."""
    return float(conn.execute(_spent_query(scope, since)).scalar_one())


async def spent_async(session: AsyncSession, scope: str, since: datetime) -> float:
    return float((await session.execute(_spent_query(scope, since))).scalar_one())


def _caps(rows: Any) -> dict[str, Caps]:
    return {row.scope: Caps(row.daily_usd, row.monthly_usd) for row in rows}


async def caps_of(session: AsyncSession, scope: str) -> Caps:
    row = await session.get(Budget, scope)
    return Caps(row.daily_usd, row.monthly_usd) if row is not None else Caps()


async def set_caps(session: AsyncSession, scope: str, caps: Caps, now: datetime) -> None:
    """Set (or clear, with ``Caps()``) the caps of ``scope``; the caller commits."""
    row = await session.get(Budget, scope)
    if row is None:
        session.add(
            Budget(
                scope=scope,
                daily_usd=caps.daily_usd,
                monthly_usd=caps.monthly_usd,
                updated_at=now,
            )
        )
    else:
        row.daily_usd, row.monthly_usd, row.updated_at = caps.daily_usd, caps.monthly_usd, now


def _out(scope: str, caps: Caps, spent: dict[PeriodName, float], now: datetime) -> dict[str, Any]:
    """A scope's caps and what it spent in each period (``schemas.BudgetOut``)."""
    out: dict[str, Any] = {
        "scope": "service" if scope == SERVICE_SCOPE else "user",
        "user_id": None if scope == SERVICE_SCOPE else scope,
        "daily_usd": caps.daily_usd,
        "monthly_usd": caps.monthly_usd,
    }
    for period in periods(now):
        out[period.name] = {
            "cap_usd": caps.cap(period.name),
            "spent_usd": round(spent.get(period.name, 0.0), 9),
            "resets_at": period.resets_at,
        }
    return out


async def view(session: AsyncSession, scope: str, now: datetime) -> dict[str, Any]:
    """A scope's caps and what it has spent in each period (``schemas.BudgetOut``)."""
    spent = {p.name: await spent_async(session, scope, p.start) for p in periods(now)}
    return _out(scope, await caps_of(session, scope), spent, now)


async def overview(session: AsyncSession, now: datetime) -> dict[str, Any]:
    """The service's caps and spend, and every account's (``schemas.AdminBudgetsOut``): one
    grouped sum per period, whatever the number of accounts."""
    caps = _caps((await session.execute(select(Budget))).scalars())
    sums: dict[PeriodName, dict[str, float]] = {}
    for period in periods(now):
        rows = await session.execute(
            select(Spend.user_id, func.sum(charge()))
            .where(Spend.created_at >= period.start)
            .group_by(Spend.user_id)
        )
        sums[period.name] = {user_id: float(total or 0.0) for user_id, total in rows.all()}
    service = {name: sum(by_user.values()) for name, by_user in sums.items()}
    users = (await session.execute(select(User.id, User.username).order_by(User.created_at))).all()
    return {
        "service": _out(SERVICE_SCOPE, caps.get(SERVICE_SCOPE, Caps()), service, now),
        "users": [
            {
                **_out(
                    user_id,
                    caps.get(user_id, Caps()),
                    {name: by_user.get(user_id, 0.0) for name, by_user in sums.items()},
                    now,
                ),
                "username": name,
            }
            for user_id, name in users
        ],
    }


def _lock(conn: Connection, scope: str) -> None:
    """Serialise the checks of ``scope`` across processes (PostgreSQL; SQLite's write lock
    already does), until the transaction ends."""
    if conn.dialect.name != "postgresql":
        return
    key = 0 if scope == SERVICE_SCOPE else zlib.crc32(scope.encode()) - 2**31
    conn.execute(
        text("SELECT pg_advisory_xact_lock(:ns, :key)"), {"ns": _LOCK_NAMESPACE, "key": key}
    )


@dataclass(frozen=True)
class Grant:
    """What ``reserve`` let a job make: ``images`` of those it asked for; ``limit`` says
    which cap left the others out (``None`` when all fit)."""

    images: int
    limit: BudgetExceeded | None = None


def reserve(
    conn: Connection,
    *,
    user_id: str,
    job_id: str,
    estimate: float | None,
    now: datetime,
    images: int = 1,
    provider: str | None = None,
    model: str | None = None,
) -> Grant:
    """In the transaction that inserts job ``job_id`` (asking for ``images`` images,
    estimated at ``estimate`` together): grant as many of them as fit under the caps of the
    user and of the service on top of what is spent and held, refusing the job
    (``BudgetExceeded``) when none does, and write its ledger row holding the estimate of
    those granted (with the provider and model asked for, until the job's end tells which
    answered)."""
    amount = max(estimate or 0.0, 0.0)
    rows = conn.execute(
        select(Budget.scope, Budget.daily_usd, Budget.monthly_usd).where(
            Budget.scope.in_((user_id, SERVICE_SCOPE))
        )
    )
    caps = {scope: c for scope, c in _caps(rows).items() if c.any}
    grant = Grant(images)
    if caps:
        _lock(conn, SERVICE_SCOPE if SERVICE_SCOPE in caps else user_id)
        if estimate is None and model is not None:  # no catalog price: what it cost lately
            amount = learned_price(conn, model, now) * images
        for scope in (user_id, SERVICE_SCOPE):
            if scope in caps:
                grant = _fit(conn, scope, caps[scope], amount, grant, images, now)
    conn.execute(
        insert(Spend).values(
            job_id=job_id,
            user_id=user_id,
            created_at=now,
            held_usd=amount * grant.images / images,
            cost_usd=None,
            provider=provider,
            model=model,
            images=0,
        )
    )
    return grant


def learned_price(conn: Connection, model: str, now: datetime) -> float:
    """The most one image of ``model`` cost in the last ``LEARNED_OVER`` (a job's recorded
    cost over the images it stored), from the ledger; 0 when none was recorded."""
    per_image = select(func.max(Spend.cost_usd / Spend.images)).where(
        Spend.model == model,
        Spend.images > 0,
        Spend.cost_usd.is_not(None),
        Spend.created_at >= now - LEARNED_OVER,
    )
    return float(conn.execute(per_image).scalar_one() or 0.0)


def _fit(
    conn: Connection,
    scope: str,
    caps: Caps,
    amount: float,
    grant: Grant,
    asked: int,
    now: datetime,
) -> Grant:
    """``grant``, cut to what the caps of ``scope`` leave room for; raises when that is no
    image at all (or a cap is already reached)."""
    for period in periods(now):
        cap = caps.cap(period.name)
        if cap is None:
            continue
        used = spent(conn, scope, period.start)
        if used >= cap - _EPSILON:
            raise _exceeded(scope, period, cap, used, amount)
        per_image = amount / asked
        if used + per_image * grant.images <= cap + _EPSILON:
            continue
        room = int((cap - used + _EPSILON) // per_image)
        if room < 1:
            raise _exceeded(scope, period, cap, used, amount)
        if room < grant.images:
            grant = Grant(room, _exceeded(scope, period, cap, used, amount))
    return grant


def _exceeded(scope: str, period: Period, cap: float, used: float, amount: float) -> BudgetExceeded:
    whose = "The service's" if scope == SERVICE_SCOPE else "Your"
    when = "today" if period.name == "day" else "this month"
    resets = period.resets_at.strftime("%Y-%m-%d %H:%M UTC")
    if used >= cap - _EPSILON:
        said = f"{whose} {_label(period.name)} spending cap of ${cap:.2f} is reached"
    else:
        said = (
            f"This request (estimated at ${amount:.4f}) would pass {whose.lower()} "
            f"{_label(period.name)} spending cap of ${cap:.2f}"
        )
    return BudgetExceeded(
        f"{said}: ${used:.4f} spent {when} (UTC). It resets at {resets}"
        + ("." if scope == SERVICE_SCOPE else "; an admin can raise it."),
        scope="service" if scope == SERVICE_SCOPE else "user",
        period=period.name,
        cap_usd=cap,
        spent_usd=round(used, 9),
        estimate_usd=round(amount, 9),
        resets_at=period.resets_at.isoformat().replace("+00:00", "Z"),
    )


def _label(period: PeriodName) -> str:
    return "daily" if period == "day" else "monthly"


def _settle(which: ColumnElement[bool], release: bool) -> Any:
    """The ledger rows ``which`` of jobs that have just ended (in the same transaction, after
    the jobs' rows and images were written): each takes its job's recorded cost, provider,
    model and number of images, and its hold is released unless the job may have been billed
    more than that (``release`` False)."""
    job = Job.id == Spend.job_id
    values: dict[str, Any] = {
        "cost_usd": select(Job.cost).where(job).scalar_subquery(),
        "provider": select(Job.provider).where(job).scalar_subquery(),
        "model": select(Job.model).where(job).scalar_subquery(),
        "images": select(func.count())
        .select_from(StoredImage)
        .where(StoredImage.job_id == Spend.job_id)
        .scalar_subquery(),
    }
    if release:
        values["held_usd"] = 0.0
    return update(Spend).where(which).values(**values).execution_options(synchronize_session=False)


def settle(job_id: str, *, release: bool) -> Any:
    """``_settle`` for job ``job_id``."""
    return _settle(Spend.job_id == job_id, release)


def settle_end(job_id: str, values: dict[str, Any]) -> Any:
    """``settle`` for a job ended with ``values`` (its status, error code and details): its
    hold released unless the failure may have been billed."""
    billed = may_have_billed(
        values["status"], values.get("error_code"), values.get("error_details")
    )
    return settle(job_id, release=not billed)


def settle_where(jobs: Any, *, release: bool) -> Any:
    """``_settle`` for every job ``jobs`` (a select of job ids) names."""
    return _settle(Spend.job_id.in_(jobs), release)


def drop(job_id: str) -> Any:
    """The statement removing the ledger row of a job refused after its row went in (it never
    ran)."""
    return delete(Spend).where(Spend.job_id == job_id)

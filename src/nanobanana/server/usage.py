"""Usage: what was spent and made over a range of UTC days, by day, model, provider and user.

It is read from the spend ledger (``budgets``), so it is the same money the spending caps
count, and it stays true when generations or accounts are deleted.  For each group:

- ``generations``: the requests accepted (failed and cancelled ones included);
- ``images``: the images they stored;
- ``cost_usd``: their recorded costs (the provider's figures, or the catalog's price for the
  usage reported), the sum of what ``GET /api/generations`` shows as ``cost``;
- ``held_usd``: what is held on top of that against the caps: the estimate of a generation
  still running, or of one that failed after its call was sent (it may have been billed).

``cost_usd + held_usd`` is what the caps count.  Days are UTC days, as the caps' periods are.
One grouped query reads a range, whatever the number of generations in it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import String, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from .db.models import Spend, User
from .errors import InvalidPeriod

#: The range shown when none is asked for: the last 30 days, today included.
DEFAULT_DAYS = 30
#: The longest range one request reads.
MAX_DAYS = 366
#: The name of an account deleted since (its spend stays in the service's usage).
DELETED = "(deleted account)"


class utc_day(FunctionElement[str]):
    """The UTC day (``YYYY-MM-DD``) of a ledger row's time, on each backend."""

    type = String()
    inherit_cache = True


@compiles(utc_day, "postgresql")
def _utc_day_postgresql(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = element.clauses
    return f"to_char({compiler.process(column, **kw)} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


@compiles(utc_day)
def _utc_day_default(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps UTC times as ``YYYY-MM-DD HH:MM:SS...`` text (``UTCDateTime``).
    (column,) = element.clauses
    return f"substr({compiler.process(column, **kw)}, 1, 10)"


@dataclass(frozen=True)
class Window:
    """A range of UTC days, both ends included."""

    first: date
    last: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first, time(), tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.last + timedelta(days=1), time(), tzinfo=UTC)

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range((self.last - self.first).days + 1)]


def window(first: date | None, last: date | None, now: datetime) -> Window:
    """The range ``first``..``last`` (each optional: the last ``DEFAULT_DAYS`` days up to
    today, UTC), refused (``InvalidPeriod``) when it ends before it starts or is longer than
    ``MAX_DAYS``."""
    today = now.astimezone(UTC).date()
    if last is None:
        last = today if first is None else max(first, min(today, first + timedelta(MAX_DAYS - 1)))
    first = first or last - timedelta(days=DEFAULT_DAYS - 1)
    if last < first:
        raise InvalidPeriod(
            f"The range ends ({last}) before it starts ({first}): swap `from` and `to`.",
            first=first.isoformat(),
            last=last.isoformat(),
        )
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidPeriod(
            f"The range from {first} to {last} is {(last - first).days + 1} days long; ask for "
            f"at most {MAX_DAYS} days at a time.",
            first=first.isoformat(),
            last=last.isoformat(),
        )
    return Window(first, last)


@dataclass
class Totals:
    generations: int = 0
    images: int = 0
    cost_usd: float = 0.0
    held_usd: float = 0.0

    def add(self, other: Totals) -> None:
        self.generations += other.generations
        self.images += other.images
        self.cost_usd += other.cost_usd
        self.held_usd += other.held_usd

    def out(self) -> dict[str, Any]:
        return {
            "generations": self.generations,
            "images": self.images,
            "cost_usd": round(self.cost_usd, 9),
            "held_usd": round(self.held_usd, 9),
        }


@dataclass(frozen=True)
class Group:
    """One line of the grouped query: a day, a user, a provider and a model."""

    day: str
    user_id: str
    provider: str | None
    model: str | None
    totals: Totals


async def _groups(session: AsyncSession, span: Window, user_id: str | None) -> list[Group]:
    cost = func.coalesce(Spend.cost_usd, 0.0)
    held = case((Spend.held_usd > cost, Spend.held_usd - cost), else_=0.0)
    day = utc_day(Spend.created_at)
    query = (
        select(
            day,
            Spend.user_id,
            Spend.provider,
            Spend.model,
            func.count(),
            func.coalesce(func.sum(Spend.images), 0),
            func.coalesce(func.sum(cost), 0.0),
            func.coalesce(func.sum(held), 0.0),
        )
        .where(Spend.created_at >= span.start, Spend.created_at < span.end)
        .group_by(day, Spend.user_id, Spend.provider, Spend.model)
    )
    if user_id is not None:
        query = query.where(Spend.user_id == user_id)
    rows = (await session.execute(query)).all()
    return [
        Group(d, u, p, m, Totals(int(n), int(i), float(c), float(h)))
        for d, u, p, m, n, i, c, h in rows
    ]


def _by(groups: list[Group], key: str) -> dict[Any, Totals]:
    out: dict[Any, Totals] = {}
    for g in groups:
        out.setdefault(getattr(g, key), Totals()).add(g.totals)
    return out


def _ranked(by: dict[Any, Totals], name: str) -> list[dict[str, Any]]:
    """Largest spend first, then most images, then by name."""
    items = sorted(by.items(), key=lambda kv: (-kv[1].cost_usd, -kv[1].images, str(kv[0] or "")))
    return [{name: k, **t.out()} for k, t in items]


async def report(
    session: AsyncSession, span: Window, *, user_id: str | None = None, by_user: bool = False
) -> dict[str, Any]:
    """The usage of ``span`` (``schemas.UsageReport``): the user ``user_id``'s, or the whole
    service's (``None``); ``by_user`` (the admin's view) adds each account's totals and names
    the account on each line."""
    groups = await _groups(session, span, user_id)
    total = Totals()
    for g in groups:
        total.add(g.totals)
    by_day = _by(groups, "day")
    out: dict[str, Any] = {
        "from": span.first,
        "to": span.last,
        "timezone": "UTC",
        "user_id": user_id,
        "total": total.out(),
        "days": [{"date": d, **by_day.get(d.isoformat(), Totals()).out()} for d in span.days()],
        "models": _ranked(_by(groups, "model"), "model"),
        "providers": _ranked(_by(groups, "provider"), "provider"),
        "users": None,
        "lines": [
            {
                "date": g.day,
                "user_id": g.user_id,
                "provider": g.provider,
                "model": g.model,
                **g.totals.out(),
            }
            for g in sorted(
                groups, key=lambda g: (g.day, g.user_id, g.provider or "", g.model or "")
            )
        ],
    }
    if by_user:
        names = await _usernames(session, {g.user_id for g in groups})
        out["users"] = [
            {**line, "username": names.get(line["user_id"], DELETED)}
            for line in _ranked(_by(groups, "user_id"), "user_id")
        ]
        for line in out["lines"]:
            line["username"] = names.get(line["user_id"], DELETED)
    return out


async def _usernames(session: AsyncSession, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    rows = await session.execute(select(User.id, User.username).where(User.id.in_(ids)))
    return {user_id: name for user_id, name in rows.all()}


#: The CSV's columns: one row per day, (user,) provider and model with any usage.
CSV_COLUMNS = ("date", "provider", "model", "generations", "images", "cost_usd", "held_usd")


def to_csv(usage: dict[str, Any]) -> str:
    """``report``'s lines as CSV (with the user's id and name in the whole service's)."""
    columns: tuple[str, ...] = CSV_COLUMNS
    if usage["users"] is not None:
        columns = (CSV_COLUMNS[0], "user_id", "username", *CSV_COLUMNS[1:])
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for line in usage["lines"]:
        writer.writerow([_cell(line[c]) for c in columns])
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.9f}".rstrip("0").rstrip(".") or "0"
    text = str(value)
    # A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text

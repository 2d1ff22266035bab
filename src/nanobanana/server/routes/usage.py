"""Usage: what you spent and made, by day, model and provider (``usage``), as JSON or CSV.

The whole service's, by user too, is the admin's (``GET /api/admin/usage``, ``admin.py``).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import Response

from .. import usage
from ..deps import CurrentUser, ServicesDep, SessionDep
from ..problems import ApiError, json_response
from ..schemas import UsageReport
from .common import errors

router = APIRouter(prefix="/api/usage", tags=["usage"])

DAY_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
First = Annotated[
    str | None,
    Query(
        alias="from",
        pattern=DAY_PATTERN,
        description="The first UTC day (`2026-12-01`); default: 29 days before `to`.",
    ),
]
Last = Annotated[
    str | None,
    Query(
        alias="to", pattern=DAY_PATTERN, description="The last UTC day, included; default: today."
    ),
]


def day(value: str | None, name: str) -> date | None:
    """A ``YYYY-MM-DD`` query parameter as a date; a day that does not exist is a 422."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ApiError(
            422, "validation_error", f"query.{name} is not a real day: {value!r} (use YYYY-MM-DD)."
        ) from None


Format = Annotated[
    Literal["json", "csv"],
    Query(description="`csv`: one row per day, provider and model, as a download."),
]
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}


async def answer(
    services: ServicesDep,
    session: SessionDep,
    first: str | None,
    last: str | None,
    fmt: str,
    *,
    user_id: str | None,
    by_user: bool,
    name: str,
) -> Response:
    """The usage of the range asked for (``usage.report``) as JSON (``UsageReport``) or as a
    CSV file named after ``name`` and its range; neither is kept by a cache (it changes with
    every generation)."""
    span = usage.window(day(first, "from"), day(last, "to"), services.now())
    report = await usage.report(session, span, user_id=user_id, by_user=by_user)
    await session.commit()
    headers = {"Cache-Control": "no-store"}
    if fmt == "csv":
        filename = f"{name}-{report['from']}-to-{report['to']}.csv"
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        return Response(usage.to_csv(report), media_type="text/csv", headers=headers)
    out = UsageReport.model_validate(report).model_dump(mode="json", by_alias=True)
    return json_response(out, headers=headers)


@router.get("", response_model=UsageReport, responses={**errors(401, 422), **CSV_RESPONSE})
async def get_usage(
    user: CurrentUser,
    services: ServicesDep,
    session: SessionDep,
    first: First = None,
    last: Last = None,
    format: Format = "json",
) -> Response:
    """Your usage over a range of UTC days (the last 30 by default, at most 366): generations,
    images, recorded cost and what is still held against your caps, per day (every day of the
    range), per model and per provider.  Deleted generations still count: the money was
    spent."""
    return await answer(
        services,
        session,
        first,
        last,
        format,
        user_id=user.id,
        by_user=False,
        name="nanobanana-usage",
    )

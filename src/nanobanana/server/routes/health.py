"""GET /healthz: liveness and database reachability (no authentication)."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from ... import __version__
from ..deps import ServicesDep
from ..problems import ApiError
from ..schemas import HealthOut
from .common import errors

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthOut, responses=errors(503))
async def healthz(services: ServicesDep) -> HealthOut:
    """`ok` when the service can reach its database."""
    try:
        async with services.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError) as exc:
        raise ApiError(503, "database_unavailable", "The database is unreachable.") from exc
    return HealthOut(
        status="ok", version=__version__, database="ok", demo=services.demo is not None
    )

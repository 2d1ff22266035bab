"""Admin: list and disable users, the switch that lets users use the server's keys, the
spending caps (per user and for the whole service: ``budgets``) and the whole service's usage.

Every route here needs an admin token; a user token gets 403.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy import select, update

from ...providers import PROVIDERS
from .. import budgets
from ..db.models import SERVICE_SCOPE, ServerConfig, Token, User, is_object_id
from ..deps import AdminUser, ServicesDep, SessionDep
from ..problems import ApiError, not_found
from ..schemas import (
    OBJECT_ID_PATTERN,
    AdminBudgetsOut,
    AdminSettingsIn,
    AdminSettingsOut,
    BudgetIn,
    BudgetOut,
    UsageReport,
    UserList,
    UserOut,
    UserPatch,
)
from ..upstream import ALLOW_SERVER_KEYS, server_keys_allowed
from .common import errors
from .usage import CSV_RESPONSE, First, Format, Last, answer

router = APIRouter(prefix="/api/admin", tags=["admin"])


@router.get("/users", response_model=UserList, responses=errors(401, 403))
async def list_users(admin: AdminUser, session: SessionDep) -> UserList:
    rows = (await session.scalars(select(User).order_by(User.created_at))).all()
    await session.commit()
    return UserList(users=[UserOut.model_validate(u) for u in rows])


async def _user(session: SessionDep, user_id: str) -> User:
    user = await session.get(User, user_id) if is_object_id(user_id) else None
    if user is None:
        raise not_found("user")
    return user


@router.patch("/users/{user_id}", response_model=UserOut, responses=errors(401, 403, 404, 409))
async def patch_user(
    user_id: str, body: UserPatch, admin: AdminUser, services: ServicesDep, session: SessionDep
) -> User:
    """Disable (or enable) a user, or change their admin flag.  Disabling revokes their
    tokens."""
    user = await _user(session, user_id)
    if user.id == admin.id and (body.is_active is False or body.is_admin is False):
        raise ApiError(409, "cannot_demote_self", "You cannot disable or demote yourself.")
    if body.is_admin is not None:
        user.is_admin = body.is_admin
    if body.is_active is not None:
        user.is_active = body.is_active
        if not body.is_active:
            await session.execute(
                update(Token)
                .where(Token.user_id == user.id, Token.revoked_at.is_(None))
                .values(revoked_at=services.now())
            )
    await session.commit()
    services.auth_cache.forget_user(user.id)  # a disabled account or a new role: at once
    return user


async def _settings_view(services: ServicesDep, session: SessionDep) -> AdminSettingsOut:
    allowed = await server_keys_allowed(session, services)
    await session.commit()
    present = services.settings.server_keys()
    return AdminSettingsOut(
        allow_server_keys=allowed,
        server_keys={p: p in present for p in PROVIDERS},
        demo=services.demo is not None,
    )


@router.get("/settings", response_model=AdminSettingsOut, responses=errors(401, 403))
async def get_settings(
    admin: AdminUser, services: ServicesDep, session: SessionDep
) -> AdminSettingsOut:
    return await _settings_view(services, session)


@router.put("/settings", response_model=AdminSettingsOut, responses=errors(401, 403, 422))
async def put_settings(
    body: AdminSettingsIn, admin: AdminUser, services: ServicesDep, session: SessionDep
) -> AdminSettingsOut:
    """`allow_server_keys`: let users without a key of their own use the server's keys
    (OPENROUTER_API_KEY, GEMINI_API_KEY in the service's environment)."""
    row = await session.get(ServerConfig, ALLOW_SERVER_KEYS)
    if row is None:
        session.add(ServerConfig(key=ALLOW_SERVER_KEYS, value=body.allow_server_keys))
    else:
        row.value = body.allow_server_keys
    await session.commit()
    services.key_cache.forget_allowed()
    return await _settings_view(services, session)


# ------------------------------------------------------------------------ spending caps
async def _budget(services: ServicesDep, session: SessionDep, scope: str) -> BudgetOut:
    out = BudgetOut.model_validate(await budgets.view(session, scope, services.now()))
    await session.commit()
    return out


async def _set_budget(
    services: ServicesDep, session: SessionDep, scope: str, body: BudgetIn
) -> BudgetOut:
    caps = budgets.Caps(body.daily_usd, body.monthly_usd)
    await budgets.set_caps(session, scope, caps, services.now())
    await session.commit()
    return await _budget(services, session, scope)


@router.get("/budgets", response_model=AdminBudgetsOut, responses=errors(401, 403))
async def list_budgets(
    admin: AdminUser, services: ServicesDep, session: SessionDep
) -> AdminBudgetsOut:
    """The service's caps and every account's, each with what it spent today and this
    month."""
    out = AdminBudgetsOut.model_validate(await budgets.overview(session, services.now()))
    await session.commit()
    return out


@router.get("/budget", response_model=BudgetOut, responses=errors(401, 403))
async def get_service_budget(
    admin: AdminUser, services: ServicesDep, session: SessionDep
) -> BudgetOut:
    """The whole service's spending caps, and what all users spent today and this month."""
    return await _budget(services, session, SERVICE_SCOPE)


@router.put("/budget", response_model=BudgetOut, responses=errors(401, 403, 422))
async def put_service_budget(
    body: BudgetIn, admin: AdminUser, services: ServicesDep, session: SessionDep
) -> BudgetOut:
    """Set the whole service's caps (USD per UTC day and month; null: none).  A request for
    several images makes as many as fit under them; one with room for none is refused with
    402 `budget_exceeded` before any call."""
    return await _set_budget(services, session, SERVICE_SCOPE, body)


@router.get("/users/{user_id}/budget", response_model=BudgetOut, responses=errors(401, 403, 404))
async def get_user_budget(
    user_id: str, admin: AdminUser, services: ServicesDep, session: SessionDep
) -> BudgetOut:
    """A user's spending caps, and what they spent today and this month."""
    user = await _user(session, user_id)
    return await _budget(services, session, user.id)


@router.put(
    "/users/{user_id}/budget", response_model=BudgetOut, responses=errors(401, 403, 404, 422)
)
async def put_user_budget(
    user_id: str, body: BudgetIn, admin: AdminUser, services: ServicesDep, session: SessionDep
) -> BudgetOut:
    """Set a user's caps (USD per UTC day and month; null: none)."""
    user = await _user(session, user_id)
    return await _set_budget(services, session, user.id, body)


# ------------------------------------------------------------------------ usage
@router.get(
    "/usage", response_model=UsageReport, responses={**errors(401, 403, 422), **CSV_RESPONSE}
)
async def get_service_usage(
    admin: AdminUser,
    services: ServicesDep,
    session: SessionDep,
    first: First = None,
    last: Last = None,
    user_id: Annotated[
        str | None, Query(pattern=OBJECT_ID_PATTERN, description="Only this account's.")
    ] = None,
    format: Format = "json",
) -> Response:
    """The whole service's usage over a range of UTC days, as `GET /api/usage` gives each
    user's, with a line per account (an account deleted since keeps its spend, named
    `(deleted account)`); `user_id` narrows it to one account."""
    return await answer(
        services,
        session,
        first,
        last,
        format,
        user_id=user_id,
        by_user=True,
        name="nanobanana-service-usage",
    )

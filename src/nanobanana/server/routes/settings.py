"""Per-user settings: provider keys (stored encrypted, shown masked) and generation defaults."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response
from sqlalchemy import select

from ...catalog import normalize_ratio, normalize_size
from ...errors import ValidationError
from ...providers import PROVIDERS
from .. import budgets, keytest, webhooks
from ..db.models import ProviderKey, UserSettings
from ..deps import CurrentUser, ServicesDep, SessionDep
from ..problems import ApiError
from ..schemas import (
    BudgetOut,
    DefaultsIn,
    DefaultsOut,
    KeyIn,
    KeyOut,
    KeysOut,
    KeyTestOut,
    ProviderName,
    WebhookIn,
    WebhookOut,
)
from ..upstream import resolve_upstream
from .common import errors

router = APIRouter(prefix="/api/settings", tags=["settings"])

ProviderPath = Annotated[ProviderName, Path(description="`openrouter` or `google`.")]


def _masked(last4: str) -> str:
    return f"…{last4}"


async def _keys_view(session: SessionDep, services: ServicesDep, user_id: str) -> KeysOut:
    rows = {
        r.provider: r
        for r in await session.scalars(select(ProviderKey).where(ProviderKey.user_id == user_id))
    }
    upstream = await resolve_upstream(session, services, user_id)
    await session.commit()
    keys = []
    for provider in PROVIDERS:
        row = rows.get(provider)
        keys.append(
            KeyOut(
                provider=provider,  # type: ignore[arg-type]
                configured=row is not None,
                masked=_masked(row.last4) if row else None,
                updated_at=row.updated_at if row else None,
                effective_source=upstream.sources.get(provider),  # type: ignore[arg-type]
            )
        )
    return KeysOut(keys=keys)


@router.get("/keys", response_model=KeysOut, responses=errors(401))
async def list_keys(user: CurrentUser, services: ServicesDep, session: SessionDep) -> KeysOut:
    """Your provider keys, masked (only the last four characters)."""
    return await _keys_view(session, services, user.id)


@router.put("/keys/{provider}", response_model=KeyOut, responses=errors(401, 422))
async def put_key(
    provider: ProviderPath,
    body: KeyIn,
    user: CurrentUser,
    services: ServicesDep,
    session: SessionDep,
) -> KeyOut:
    """Store (or replace) your key for a provider, encrypted at rest."""
    now = services.now()
    row = await session.scalar(
        select(ProviderKey).where(ProviderKey.user_id == user.id, ProviderKey.provider == provider)
    )
    ciphertext = services.vault.encrypt(body.api_key)
    if row is None:
        row = ProviderKey(
            user_id=user.id, provider=provider, created_at=now, ciphertext=b"", last4=""
        )
        session.add(row)
    row.ciphertext = ciphertext
    row.last4 = body.api_key[-4:]
    row.updated_at = now
    await session.commit()
    services.key_cache.forget(user.id)  # the next generation uses the new key
    view = await _keys_view(session, services, user.id)
    return next(k for k in view.keys if k.provider == provider)


@router.delete("/keys/{provider}", status_code=204, responses=errors(401, 404, 422))
async def delete_key(
    provider: ProviderPath, user: CurrentUser, services: ServicesDep, session: SessionDep
) -> Response:
    """Remove your key for a provider."""
    row = await session.scalar(
        select(ProviderKey).where(ProviderKey.user_id == user.id, ProviderKey.provider == provider)
    )
    if row is None:
        raise ApiError(404, "not_found", f"You have no {provider} key stored.")
    await session.delete(row)
    await session.commit()
    services.key_cache.forget(user.id)
    return Response(status_code=204)


@router.post("/keys/{provider}/test", response_model=KeyTestOut, responses=errors(400, 401, 422))
async def test_key(
    provider: ProviderPath, user: CurrentUser, services: ServicesDep, session: SessionDep
) -> KeyTestOut:
    """Check your stored key with a free call that authenticates it (OpenRouter's `GET /key`,
    which also reports the key's credit; Google's model list)."""
    verdict = await keytest.check_stored_key(session, services, user.id, provider)
    status = verdict.status
    return KeyTestOut(
        provider=provider,
        ok=verdict.ok,
        message=verdict.message,
        error_code=verdict.error_code,
        models=status.models if status else None,
        credit_limit=status.limit if status else None,
        credit_remaining=status.limit_remaining if status else None,
        credit_used=status.usage if status else None,
        limit_reset=status.limit_reset if status else None,
        free_tier=status.free_tier if status else None,
    )


# ---------------------------------------------------------------------------- defaults
def _any_model_allows(services: ServicesDep, body: DefaultsIn) -> tuple[str | None, str | None]:
    """Without a model, a ratio or size is fine when some model of the provider takes it
    (a generation drops a default its model cannot do)."""
    specs = [
        s for s in services.catalog if body.provider is None or body.provider in s.provider_ids
    ]
    ratio = normalize_ratio(body.aspect_ratio) if body.aspect_ratio else None
    size = normalize_size(body.image_size) if body.image_size else None
    ratios = sorted({r for s in specs for r in s.aspect_ratios})
    sizes = sorted({z for s in specs for z in s.sizes})
    if ratio is not None and ratio not in ratios:
        raise ValidationError(
            f"Aspect ratio {body.aspect_ratio!r} is not offered by any model. Allowed: "
            f"{', '.join(ratios)}.",
            field="aspect_ratio",
            allowed=ratios,
        )
    if size is not None and size not in sizes:
        raise ValidationError(
            f"Image size {body.image_size!r} is not offered by any model. Allowed: "
            f"{', '.join(sizes)}.",
            field="image_size",
            allowed=sizes,
        )
    return ratio, size


@router.get("/defaults", response_model=DefaultsOut, responses=errors(401))
async def get_defaults(user: CurrentUser, session: SessionDep) -> DefaultsOut:
    """Your defaults for provider, model, aspect ratio and size."""
    row = await session.get(UserSettings, user.id)
    await session.commit()
    if row is None:
        return DefaultsOut()
    return DefaultsOut(
        provider=row.provider,  # type: ignore[arg-type]
        model=row.model,
        aspect_ratio=row.aspect_ratio,
        image_size=row.image_size,
    )


@router.put("/defaults", response_model=DefaultsOut, responses=errors(401, 422))
async def put_defaults(
    body: DefaultsIn, user: CurrentUser, services: ServicesDep, session: SessionDep
) -> DefaultsOut:
    """Replace your defaults (checked against the model catalog; null clears a field)."""
    catalog = services.catalog
    spec = catalog.get(body.model) if body.model else None
    if spec is not None and body.provider is not None:
        spec.wire_id(body.provider)
    if spec is not None:
        ratio, size = catalog.validate(
            spec, aspect_ratio=body.aspect_ratio, image_size=body.image_size, n_images=0
        )
    else:
        ratio, size = _any_model_allows(services, body)
    row = await session.get(UserSettings, user.id)
    if row is None:
        row = UserSettings(user_id=user.id)
        session.add(row)
    row.provider = body.provider
    row.model = spec.id if spec else None
    row.aspect_ratio = ratio
    row.image_size = size
    row.updated_at = services.now()
    await session.commit()
    services.defaults_cache.forget(user.id)  # the next generation uses the new defaults
    return DefaultsOut(provider=body.provider, model=row.model, aspect_ratio=ratio, image_size=size)


@router.get("/budget", response_model=BudgetOut, responses=errors(401))
async def get_budget(user: CurrentUser, services: ServicesDep, session: SessionDep) -> BudgetOut:
    """Your spending caps (an admin sets them) and what you spent today and this month (UTC):
    your generations' recorded costs, and the estimates still held for those running."""
    out = BudgetOut.model_validate(await budgets.view(session, user.id, services.now()))
    await session.commit()
    return out


# ------------------------------------------------------------------------ webhooks
async def _webhook(
    services: ServicesDep, session: SessionDep, user_id: str, response: Response
) -> WebhookOut:
    """The answer of the webhook routes: it holds the signing secret, so no cache keeps it."""
    response.headers["Cache-Control"] = "no-store"
    now = services.now()
    row = await session.get(UserSettings, user_id)
    signing = await webhooks.secrets_of(session, services.vault, user_id, now)
    await session.commit()
    return WebhookOut(
        url=row.webhook_url if row else None,
        secret=signing.current,
        previous_secret_valid_until=signing.previous_valid_until(now),
    )


@router.get("/webhook", response_model=WebhookOut, responses=errors(401))
async def get_webhook(
    user: CurrentUser, services: ServicesDep, session: SessionDep, response: Response
) -> WebhookOut:
    """Your default webhook URL and your signing secret (made on first use).  Each delivery
    carries `webhook-id`, `webhook-timestamp` and `webhook-signature` (Standard Webhooks)."""
    return await _webhook(services, session, user.id, response)


@router.put("/webhook", response_model=WebhookOut, responses=errors(401, 422))
async def put_webhook(
    body: WebhookIn,
    user: CurrentUser,
    services: ServicesDep,
    session: SessionDep,
    response: Response,
) -> WebhookOut:
    """Set (or clear, with null) the webhook every generation of yours uses when it names
    none.  A public http(s) address: private, loopback and link-local ones are refused, and
    so is a name that resolves to one."""
    if body.url is not None:
        webhooks.check_url(body.url, services.settings.webhook_allow_hosts)
        await webhooks.check_name(body.url, services.settings.webhook_allow_hosts)
    row = await session.get(UserSettings, user.id)
    if row is None:
        session.add(UserSettings(user_id=user.id, webhook_url=body.url, updated_at=services.now()))
    else:
        row.webhook_url, row.updated_at = body.url, services.now()
    await session.commit()
    services.defaults_cache.forget(user.id)  # the next generation uses it
    return await _webhook(services, session, user.id, response)


@router.post("/webhook/rotate", response_model=WebhookOut, responses=errors(401))
async def rotate_webhook_secret(
    user: CurrentUser, services: ServicesDep, session: SessionDep, response: Response
) -> WebhookOut:
    """A new signing secret.  For a day, deliveries are signed with both (two `v1,...`
    signatures): move your receiver to the new one meanwhile."""
    await webhooks.rotate(session, services.vault, user.id, services.now())
    await session.commit()
    return await _webhook(services, session, user.id, response)

"""Request and response bodies: one schema per use.

Input schemas forbid unknown fields and are strict (no ``"1"`` for 1, no ``false`` for 0), so a
field such as ``is_admin`` or ``user_id`` sent by a client is an error, never silently applied.
Text fields refuse NUL and other control characters and lone surrogates, which PostgreSQL and
UTF-8 cannot store.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from ..client import MAX_IMAGES_PER_REQUEST, MAX_PROMPT_CHARS, MAX_SEED
from ..references import MAX_REFERENCES

ProviderName = Literal["openrouter", "google"]
#: ``nanobanana.catalog.THINKING_LEVELS`` (a test holds the two the same).
ThinkingLevel = Literal["minimal", "low", "medium", "high"]
JobStatus = Literal["queued", "running", "succeeded", "failed", "blocked", "interrupted"]

#: No NUL or other C0 control characters except tab, newline and carriage return.
NO_CONTROL = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
#: Text a database can store: no NUL character.
NO_NUL = r"^[^\x00]*$"


def _no_surrogates(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode (a lone surrogate); send UTF-8 text") from None
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("is blank (only spaces): describe the image you want")
    return value


Text = Annotated[str, Field(pattern=NO_CONTROL), AfterValidator(_no_surrogates)]


def _integral(value: object) -> object:
    # JSON Schema's "integer" includes 2.0; strict mode would refuse it.  Booleans and
    # strings stay refused.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# Strict integers that also take ``2.0``; the bounds come before the validator so that the
# JSON schema says minimum/maximum.
Days = Annotated[int, Field(ge=1, le=3650), BeforeValidator(_integral)]
NumImages = Annotated[int, Field(ge=1, le=MAX_IMAGES_PER_REQUEST), BeforeValidator(_integral)]
Seed = Annotated[int, Field(ge=0, le=MAX_SEED), BeforeValidator(_integral)]
RATIO_PATTERN = r"^[0-9]{1,2}[:x/][0-9]{1,2}$"
SIZE_PATTERN = r"^(0\.5|[124])[kK]$"
#: The Images API's ``size`` (OpenAI's form); the model's own sizes are checked after.
PIXEL_SIZE_PATTERN = r"^(auto|[0-9]{2,5}x[0-9]{2,5})$"
MODEL_PATTERN = r"^[A-Za-z0-9._:/@-]{1,200}$"
USERNAME_PATTERN = r"^[A-Za-z0-9_.-]{3,64}$"
API_KEY_PATTERN = r"^[\x21-\x7e]{8,512}$"
#: The ids the service gives out (images, generations, sessions).
OBJECT_ID_PATTERN = r"^[0-9a-f]{32}$"
#: A day (``2026-12-07``) or a time with its offset (``2026-12-07T10:00:00Z``).
WHEN_PATTERN = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2}))?$"
)

#: What each pattern asks for, in words: validation errors say this, not the regex.
PATTERN_HINTS: dict[str, str] = {
    NO_CONTROL: "must not contain control characters",
    NO_NUL: "must not contain a NUL character (\\x00)",
    RATIO_PATTERN: "must be an aspect ratio such as 16:9",
    SIZE_PATTERN: "must be 0.5K, 1K, 2K or 4K",
    PIXEL_SIZE_PATTERN: "must be WIDTHxHEIGHT, such as 1024x1024 or 1344x768, or auto",
    MODEL_PATTERN: "must be a model id such as gemini-3.1-flash-image",
    USERNAME_PATTERN: "must be 3 to 64 characters: letters, digits, _ . or -",
    OBJECT_ID_PATTERN: "must be an id as the service gave it: 32 lowercase hex characters",
    WHEN_PATTERN: "must be a day such as 2026-12-07, or a time with its offset such as "
    "2026-12-07T10:00:00Z",
    API_KEY_PATTERN: (
        "must be 8 to 512 visible ASCII characters with no spaces: paste the key exactly as "
        "the provider shows it"
    ),
}


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Output(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# --------------------------------------------------------------------------------- errors
class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str = Field(description="Stable machine-readable code, e.g. `quota_exceeded`.")
    message: str = Field(description="What happened and how to fix it, for people.")


class ErrorResponse(BaseModel):
    """Every error: `{"error": {"code", "message", ...details}}`."""

    error: ErrorBody


# --------------------------------------------------------------------------------- auth
Username = Annotated[str, Field(pattern=USERNAME_PATTERN)]
Password = Annotated[Text, Field(min_length=8, max_length=1024)]


class RegisterIn(Input):
    username: Username = Field(description="3-64 characters: letters, digits, `_ . -`.")
    password: Password = Field(description="At least 8 characters.")


class LoginIn(Input):
    username: Annotated[Text, Field(min_length=1, max_length=64)]
    password: Annotated[Text, Field(min_length=1, max_length=1024)]


class UserOut(Output):
    id: str
    username: str
    is_admin: bool
    is_active: bool
    created_at: datetime


class MeOut(UserOut):
    demo: bool = Field(
        description="True when generations without a key of your own give synthetic images."
    )


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the scheme name, not a secret)
    expires_at: datetime | None


class ApiTokenIn(Input):
    name: Annotated[Text, Field(min_length=1, max_length=100)]
    expires_in_days: Days | None = Field(
        default=None, description="Lifetime in days; none: until revoked."
    )


class ApiTokenOut(Output):
    id: str
    name: str | None
    kind: str
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    current: bool = False


class ApiTokenCreated(ApiTokenOut):
    token: str = Field(description="Shown once; store it now.")


class ApiTokenList(BaseModel):
    tokens: list[ApiTokenOut]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` for the next page; null on the last."
    )


# -------------------------------------------------------------------------- settings
class KeyIn(Input):
    api_key: Annotated[str, Field(pattern=API_KEY_PATTERN)] = Field(
        description="The provider's API key (8-512 printable characters, no spaces)."
    )


KeySource = Literal["user", "server", "demo"]


class KeyOut(BaseModel):
    provider: ProviderName
    configured: bool = Field(description="You stored a key of your own for this provider.")
    masked: str | None = Field(description="Only the last four characters, e.g. `…a1b2`.")
    updated_at: datetime | None
    effective_source: KeySource | None = Field(
        description="What a generation with this provider would use: your key, the server's "
        "key (when the admin allows it), the demo emulator, or nothing (400 missing_api_key)."
    )


class KeysOut(BaseModel):
    keys: list[KeyOut]


class KeyTestOut(BaseModel):
    provider: ProviderName
    ok: bool
    message: str
    error_code: str | None = None
    models: int | None = Field(default=None, description="Image models the key can see.")
    credit_limit: float | None = Field(
        default=None, description="USD the provider lets this key spend (null: no limit)."
    )
    credit_remaining: float | None = Field(default=None, description="USD left of that limit.")
    credit_used: float | None = Field(default=None, description="USD this key has spent.")
    limit_reset: str | None = Field(
        default=None, description="When the limit starts over (`daily`, `monthly`...)."
    )
    free_tier: bool | None = Field(
        default=None, description="A free-tier key: no credits bought, free models only."
    )


class DefaultsIn(Input):
    provider: ProviderName | None = None
    model: Annotated[str, Field(pattern=MODEL_PATTERN)] | None = None
    aspect_ratio: Annotated[str, Field(pattern=RATIO_PATTERN)] | None = None
    image_size: Annotated[str, Field(pattern=SIZE_PATTERN)] | None = None


class DefaultsOut(BaseModel):
    provider: ProviderName | None = None
    model: str | None = None
    aspect_ratio: str | None = None
    image_size: str | None = None


# ----------------------------------------------------------------------------- uploads
class UploadOut(Output):
    id: str = Field(description="Pass it in `images` of a generation request.")
    mime_type: str
    width: int
    height: int
    size: int
    sha256: str
    created_at: datetime


# --------------------------------------------------------------------------- generation
class GenerateIn(Input):
    prompt: Annotated[
        Text, Field(min_length=1, max_length=MAX_PROMPT_CHARS), AfterValidator(_not_blank)
    ]
    negative_prompt: Annotated[Text, Field(max_length=MAX_PROMPT_CHARS)] | None = Field(
        default=None, description="What to avoid; folded into the prompt."
    )
    num_images: NumImages = 1
    provider: ProviderName = Field(
        default="openrouter",
        description="Default: your saved default provider when it serves the model, else the "
        "first of `openrouter` and `google` that serves it and has a key (`openrouter` when "
        "none has).",
    )
    model: Annotated[str, Field(pattern=MODEL_PATTERN)] | None = Field(
        default=None,
        description="Catalog id, alias or provider id (see /api/nano-banana/models); default: "
        "your saved default, else the provider's default model.",
    )
    aspect_ratio: Annotated[str, Field(pattern=RATIO_PATTERN)] | None = Field(
        default=None, description="e.g. `16:9`; the allowed values depend on the model."
    )
    image_size: Annotated[str, Field(pattern=SIZE_PATTERN)] | None = Field(
        default=None, description="`0.5K`, `1K`, `2K` or `4K`, as the model allows."
    )
    seed: Seed | None = None
    thinking: ThinkingLevel | None = Field(
        default=None,
        description="How much the model thinks before it draws (default: the model's own). "
        "A model whose levels are known (`thinking_levels` in /api/nano-banana/models) "
        "refuses another level before anything is paid for.",
    )
    google_search: StrictBool = Field(
        default=False,
        description="Ground the image in Google Search results (Google's models; "
        "`google_search` in /api/nano-banana/models is false for a model that cannot).",
    )
    image_options: dict[str, Any] = Field(
        default_factory=dict,
        description="Model-specific image options, sent as they are in OpenRouter's "
        '`image_config` (Recraft: `{"style": "Photorealism"}`; Sourceful: `font_inputs`...). '
        "At most 16 snake_case keys, each value a string, number or array; not with "
        "`provider: google`, which has none.",
    )
    images: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        max_length=MAX_REFERENCES,
        description="Reference images: `data:image/...;base64,...` URLs (7 MB per image, "
        "within the request size limit) or ids from POST /api/uploads.",
    )
    webhook_url: Annotated[str, Field(min_length=1, max_length=2048)] | None = Field(
        default=None,
        description="Where to POST the generation's final state, signed per the Standard "
        "Webhooks spec with your webhook secret (GET /api/settings/webhook); default: your "
        "saved webhook URL, if any. A public http(s) address.",
    )


class UsageOut(BaseModel):
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    image_tokens: int | None = None
    cost: float | None = None
    cost_is_estimate: bool = False


class AttemptOut(BaseModel):
    provider: str
    model: str
    status: str
    index: int = 0
    error: str | None = None
    error_code: str | None = None
    http_status: int | None = None
    request_id: str | None = None
    duration_s: float = 0.0
    may_be_billed: bool = False


class FailureOut(BaseModel):
    index: int
    error: str
    error_code: str


class ImageOut(BaseModel):
    id: str
    index: int
    url: str = Field(description="GET it with your token: the image bytes.")
    thumb_url: str | None
    mime_type: str
    width: int
    height: int
    size: int
    sha256: str
    favourite: bool = Field(description="Marked as a favourite (`PATCH /api/images/{id}`).")


class SeedResponse(BaseModel):
    """The design note's response (`images`, `prompt`, `model`) plus additive fields."""

    id: str = Field(description="The job id (GET /api/generations/{id}).")
    images: list[str] = Field(description="Base64 image bytes (PNG unless `mime_types` says).")
    mime_types: list[str]
    image_urls: list[str]
    prompt: str
    model: str | None
    provider: str | None
    provider_model: str | None
    text: str | None
    usage: UsageOut | None
    cost: float | None
    cost_is_estimate: bool
    fallback: list[AttemptOut] = Field(description="Every attempt made, in order.")
    failures: list[FailureOut]
    warnings: list[str]
    grounding: GroundingOut | None = Field(
        default=None, description="What a search-grounded generation looked up."
    )
    synthetic: bool = Field(description="True: images from the built-in emulator, not a model.")


class SourceOut(BaseModel):
    url: str
    title: str | None


class GroundingOut(BaseModel):
    """What a generation grounded in Google Search looked up."""

    queries: list[str]
    sources: list[SourceOut] = Field(description="The pages it drew on.")
    search_entry_point: str | None = Field(
        description="Google's search suggestions as HTML: Google's terms for Grounding with "
        "Google Search ask an app to show them with the result (render it in a sandboxed "
        "frame; it is Google's markup, not the service's)."
    )


class GenerationError(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str
    message: str
    status: int = Field(description="The HTTP status the synchronous endpoint answered with.")


class Generation(BaseModel):
    id: str
    status: JobStatus
    kind: str
    prompt: str
    negative_prompt: str | None
    effective_prompt: str | None
    request: dict[str, Any]
    provider: str | None
    model: str | None
    provider_model: str | None
    text: str | None
    usage: UsageOut | None
    cost: float | None
    cost_is_estimate: bool
    fallback: list[AttemptOut]
    failures: list[FailureOut]
    warnings: list[str]
    grounding: GroundingOut | None = None
    synthetic: bool
    error: GenerationError | None
    images: list[ImageOut]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    timings: dict[str, Any] | None
    events_url: str
    webhook: bool = Field(
        False, description="Its end is POSTed to a webhook: GET /api/generations/{id}/webhook."
    )


class GenerationAccepted(BaseModel):
    id: str
    status: JobStatus
    url: str
    events_url: str


class GenerationList(BaseModel):
    items: list[Generation]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


# ----------------------------------------------------------------------------- gallery
ImageId = Annotated[str, Field(pattern=OBJECT_ID_PATTERN)]
#: The most images one bulk call (delete, zip, favourite) takes.
MAX_BULK_IMAGES = 500


class GalleryImage(ImageOut):
    """An image as the gallery lists it: the image, with what made it."""

    generation_id: str
    prompt: str
    model: str | None
    provider: str | None
    aspect_ratio: str | None = Field(description="The standard ratio nearest its pixels.")
    image_size: str | None = Field(description="The output size (1K, 2K...) nearest its pixels.")
    synthetic: bool
    created_at: datetime


class GalleryPage(BaseModel):
    items: list[GalleryImage]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class FacetCount(BaseModel):
    value: str
    count: int


class GalleryFacets(BaseModel):
    """What the gallery's filters can choose from, with how many of your images each has."""

    models: list[FacetCount]
    providers: list[FacetCount]
    aspect_ratios: list[FacetCount]
    image_sizes: list[FacetCount]
    total: int
    favourites: int
    synthetic: int


class ImageIdsIn(Input):
    ids: list[ImageId] = Field(min_length=1, max_length=MAX_BULK_IMAGES, description="Image ids.")


class FavouriteIn(Input):
    favourite: StrictBool


class FavouritesIn(ImageIdsIn):
    favourite: StrictBool


class GalleryImages(BaseModel):
    items: list[GalleryImage]


class DeletedImages(BaseModel):
    deleted: list[str] = Field(description="The ids of the images deleted.")


# ---------------------------------------------------------------------------- sessions
TURN_ID_PATTERN = OBJECT_ID_PATTERN


class SessionIn(Input):
    title: Annotated[Text, Field(max_length=200)] | None = Field(
        default=None, description="A name for the session (default: its first prompt)."
    )


class TurnIn(GenerateIn):
    parent_turn_id: Annotated[str, Field(pattern=TURN_ID_PATTERN)] | None = Field(
        default=None,
        description="The turn this one continues: its history is the path from the first "
        "turn to that one. Default: the session's latest turn that succeeded. `null` with "
        "the field given starts a new first turn.",
    )


class Turn(Generation):
    """A turn is a generation of its session: the same record, with its place in the tree."""

    session_id: str
    parent_turn_id: str | None


class SessionSummary(BaseModel):
    id: str
    title: str
    created_at: datetime
    updated_at: datetime
    turn_count: int


class SessionOut(BaseModel):
    id: str
    title: str
    created_at: datetime
    updated_at: datetime
    turns: list[Turn] = Field(description="Every turn, oldest first; `parent_turn_id` links them.")
    latest_turn_id: str | None = Field(
        description="The turn a new turn continues unless it names another."
    )


class SessionList(BaseModel):
    items: list[SessionSummary]


# ------------------------------------------------------------------------------ models
class ModelOut(BaseModel):
    id: str
    name: str
    provider: ProviderName
    provider_model: str
    description: str
    requires_api_key: bool
    recommended: bool
    available: bool = Field(description="You can use it now (a key, the server's or the demo).")
    aspect_ratios: list[str]
    sizes: list[str]
    outputs_text: bool
    accepts_images: bool
    max_input_images: int
    supports_seed: bool
    thinking_levels: list[str] | None = Field(
        description="The `thinking` levels the model takes; null when not known (a level is "
        "passed on for the provider to judge), empty when it takes none."
    )
    google_search: bool | None = Field(
        description="Whether the model can ground its images in Google Search; null when not "
        "known (asked for, it is passed on for the provider to judge)."
    )
    price_per_image: dict[str, float | None]
    aliases: list[str]
    shutdown: str | None
    replaced_by: str | None
    discovered: bool = Field(
        description="Found in the provider's live model listing, not in the built-in catalog: "
        "ratios and sizes the listing does not state are passed on for the provider to judge."
    )


class ModelsOut(BaseModel):
    models: list[ModelOut]


# ------------------------------------------------------------------------------- admin
class UserPatch(Input):
    is_active: bool | None = None
    is_admin: bool | None = None


class UserList(BaseModel):
    users: list[UserOut]


class AdminSettingsIn(Input):
    allow_server_keys: bool


class AdminSettingsOut(BaseModel):
    allow_server_keys: bool
    server_keys: dict[str, bool] = Field(description="Which providers have a key in the env.")
    demo: bool


class BudgetIn(Input):
    """A scope's spending caps; each left out or null: no cap of that period."""

    daily_usd: float | None = Field(
        default=None, ge=0, le=1_000_000, allow_inf_nan=False, description="USD per UTC day."
    )
    monthly_usd: float | None = Field(
        default=None, ge=0, le=1_000_000, allow_inf_nan=False, description="USD per UTC month."
    )


class PeriodSpendOut(BaseModel):
    cap_usd: float | None = Field(description="The cap of this period; null: none.")
    spent_usd: float = Field(
        description="Spent and held so far this period (what the cap is checked against)."
    )
    resets_at: datetime = Field(description="When the period ends (UTC).")


class BudgetOut(BaseModel):
    scope: Literal["user", "service"]
    user_id: str | None = None
    daily_usd: float | None
    monthly_usd: float | None
    day: PeriodSpendOut
    month: PeriodSpendOut


class UserBudgetOut(BudgetOut):
    username: str


class AdminBudgetsOut(BaseModel):
    service: BudgetOut
    users: list[UserBudgetOut] = Field(description="Every account, oldest first.")


class UsageTotals(BaseModel):
    generations: int = Field(description="Requests accepted (failed and cancelled included).")
    images: int = Field(description="Images they stored.")
    cost_usd: float = Field(description="Their recorded costs (each generation's `cost`).")
    held_usd: float = Field(
        description="Held on top of that against the caps: estimates of generations still "
        "running, or that failed after their call was sent (they may have been billed)."
    )


class UsageDay(UsageTotals):
    date: date


class UsageModel(UsageTotals):
    model: str | None


class UsageProvider(UsageTotals):
    provider: str | None


class UsageUser(UsageTotals):
    user_id: str
    username: str = Field(description="`(deleted account)` for an account deleted since.")


class UsageLine(UsageTotals):
    date: date
    user_id: str
    username: str | None = Field(None, description="In the whole service's usage only.")
    provider: str | None
    model: str | None


class UsageReport(BaseModel):
    from_: date = Field(alias="from", description="The first day (UTC), included.")
    to: date = Field(description="The last day (UTC), included.")
    timezone: Literal["UTC"]
    user_id: str | None = Field(description="Whose usage; null: the whole service's.")
    total: UsageTotals
    days: list[UsageDay] = Field(description="Every day of the range, oldest first.")
    models: list[UsageModel] = Field(description="Largest spend first.")
    providers: list[UsageProvider] = Field(description="Largest spend first.")
    users: list[UsageUser] | None = Field(
        description="Each account's (the whole service's usage only), largest spend first."
    )
    lines: list[UsageLine] = Field(
        description="One per day, user, provider and model with any usage (the CSV's rows)."
    )

    model_config = ConfigDict(populate_by_name=True)


class WebhookIn(Input):
    url: Annotated[str, Field(min_length=1, max_length=2048)] | None = Field(
        description="Where every generation of yours that names no `webhook_url` POSTs its "
        "final state; null: none."
    )


class WebhookOut(BaseModel):
    url: str | None = Field(description="Your default webhook URL; null: none.")
    secret: str = Field(
        description="The signing secret (`whsec_...`): verify each delivery's "
        "`webhook-signature` with it, per the Standard Webhooks spec."
    )
    previous_secret_valid_until: datetime | None = Field(
        description="After a rotation, deliveries are signed with the previous secret too "
        "until then."
    )


class WebhookAttemptOut(BaseModel):
    at: str
    status_code: int | None = Field(description="The receiver's answer; null: none came.")
    error: str | None
    duration_ms: int


class WebhookDeliveryOut(BaseModel):
    id: str = Field(description="Its `webhook-id`, the same on every attempt.")
    generation_id: str
    url: str
    event: str = Field(description="`generation.succeeded`, `.failed`, `.blocked`, `.interrupted`.")
    state: Literal["pending", "delivered", "failed"]
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    log: list[WebhookAttemptOut] = Field(description="Each attempt, oldest first (the last 30).")


class HealthOut(BaseModel):
    status: Literal["ok", "degraded"]
    version: str
    database: Literal["ok", "unavailable"]
    demo: bool

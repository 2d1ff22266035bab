"""OpenAPI documentation of the compatibility answers (the bodies themselves are built as bytes
by the builders; these models describe them, and the API tests check the two agree)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Doc(BaseModel):
    model_config = ConfigDict(extra="allow")


# ----------------------------------------------------------------------------- OpenRouter
class ImageUrlOut(_Doc):
    url: str = Field(description="`data:image/png;base64,...`")


class ImageOut(_Doc):
    type: Literal["image_url"]
    image_url: ImageUrlOut


class AssistantMessage(_Doc):
    role: Literal["assistant"]
    content: str
    refusal: None = None
    reasoning: None = None
    images: list[ImageOut] | None = Field(default=None, description="Absent when no image came.")


class Choice(_Doc):
    logprobs: None = None
    finish_reason: str | None
    native_finish_reason: str | None
    index: int
    message: AssistantMessage


class ChatUsage(_Doc):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float | None = Field(description="USD.")
    is_byok: bool


class ChatCompletion(_Doc):
    """OpenRouter's chat completion (with `stream: true`: server-sent `chat.completion.chunk`
    events, `: OPENROUTER PROCESSING` comments while waiting, then `data: [DONE]`)."""

    id: str = Field(description="`gen-<job id>`, also in the `X-Generation-Id` header.")
    provider: str
    model: str
    object: Literal["chat.completion"]
    created: int
    system_fingerprint: None = None
    choices: list[Choice]
    usage: ChatUsage


#: One server-sent event of a streamed completion (``: OPENROUTER PROCESSING`` comments are not
#: events).
CHAT_STREAM_EVENT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "enum": ["message"]},
        "data": {
            "type": "string",
            "description": "A `chat.completion.chunk` as JSON (images in "
            "`choices[0].delta.images`, `usage` in the last chunk; a top-level `error` and "
            '`finish_reason: "error"` if the generation failed), or `[DONE]`.',
        },
    },
    "required": ["data"],
}


class OpenRouterErrorBody(_Doc):
    code: int = Field(description="The HTTP status.")
    message: str
    metadata: dict[str, Any] = Field(description="`error_type`, `reason`, `param`, ...")


class OpenRouterError(BaseModel):
    error: OpenRouterErrorBody


class Architecture(_Doc):
    modality: str
    input_modalities: list[str]
    output_modalities: list[str]
    tokenizer: str
    instruct_type: str | None


class OpenRouterModel(_Doc):
    id: str
    canonical_slug: str
    name: str
    created: int
    description: str
    context_length: int | None
    architecture: Architecture
    pricing: dict[str, str] = Field(description="USD per token, as strings; `-1`: unknown.")
    top_provider: dict[str, Any]
    per_request_limits: dict[str, Any] | None
    supported_parameters: list[str]
    default_parameters: dict[str, Any] | None
    supported_voices: list[str] | None
    links: dict[str, str] = Field(description="`details`: where the model's maker describes it.")
    expiration_date: str | None


class OpenRouterModels(_Doc):
    data: list[OpenRouterModel]
    total_count: int = Field(description="Models that match, on every page.")
    links: dict[str, str | None] = Field(description="`next`: the next page's URL, or null.")


class GeneratedImageData(_Doc):
    b64_json: str
    media_type: str = Field(
        description="`image/png`, sometimes `image/jpeg`: as the model made it."
    )


class ImageGenerationUsage(_Doc):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float | None = Field(description="USD.")


class ImageGenerationResponse(_Doc):
    """OpenRouter's Image API answer."""

    created: int
    data: list[GeneratedImageData]
    usage: ImageGenerationUsage


class ImageModel(_Doc):
    id: str
    name: str
    created: int
    description: str
    architecture: dict[str, list[str]]
    endpoints: str = Field(description="The model's endpoints, relative to the service.")
    supported_parameters: dict[str, dict[str, Any]] = Field(
        description='Capability descriptors: `{"type": "enum", "values": [...]}`, '
        '`{"type": "range", "min", "max"}`, `{"type": "boolean"}`.'
    )
    supports_streaming: bool


class ImageModels(_Doc):
    data: list[ImageModel]


class ImageModelEndpoints(_Doc):
    id: str
    endpoints: list[dict[str, Any]] = Field(description="One per provider that serves it.")


# --------------------------------------------------------------------------------- OpenAI
class GeneratedImage(_Doc):
    b64_json: str | None = Field(default=None, description="With response_format=b64_json.")
    url: str | None = Field(
        default=None, description="With response_format=url: GET it with the same token."
    )


class TokensDetails(_Doc):
    image_tokens: int
    text_tokens: int


class ImagesUsage(_Doc):
    input_tokens: int
    input_tokens_details: TokensDetails = Field(
        description="Image tokens: the references' by the catalog; the rest is text."
    )
    output_tokens: int
    output_tokens_details: TokensDetails
    total_tokens: int
    cost: float | None = Field(
        description="USD (extension): 0 for the demo's synthetic images, null when unknown."
    )


class ImagesResponse(_Doc):
    created: int
    data: list[GeneratedImage]
    size: str = Field(description="`WxH` of the (first) image, as made.")
    output_format: str | None = Field(default=None, description="`png` or `jpeg`, as made.")
    usage: ImagesUsage


class OpenAIErrorBody(_Doc):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIError(BaseModel):
    error: OpenAIErrorBody


class OpenAIModel(_Doc):
    id: str
    object: Literal["model"]
    created: int
    owned_by: str


class OpenAIModels(_Doc):
    object: Literal["list"]
    data: list[OpenAIModel]


# --------------------------------------------------------------------------------- helpers
_DESCRIPTIONS = {
    400: "Bad parameters, or no provider key configured (the message says where to add one).",
    401: "Missing, invalid, expired or revoked token.",
    402: "The provider account has no credits.",
    404: "No such model output (e.g. `modalities` without `image`).",
    408: "The generation ran past its deadline (it may have been billed).",
    409: "A request with the same Idempotency-Key is still running.",
    413: "The request is too large.",
    422: "The Idempotency-Key was used with another body.",
    429: "Quota exceeded, with `Retry-After`.",
    502: "The provider failed (`x-should-retry: false` when it may have billed).",
    503: "The provider is unavailable, or the service is stopping.",
}


def error_responses(model: type[BaseModel], *codes: int) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {
        code: {"model": model, "description": _DESCRIPTIONS[code]} for code in codes
    }
    out["4XX"] = {"model": model, "description": "Any other client error."}
    out["5XX"] = {"model": model, "description": "Any other server or upstream error."}
    return out

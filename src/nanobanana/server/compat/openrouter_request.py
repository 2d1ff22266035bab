"""OpenRouter chat-completions requests, as image generation calls.

What is read (reference §1.2): ``model`` (catalog ids, aliases, OpenRouter ids such as
``google/gemini-2.5-flash-image``), ``messages`` (the text of the last user message that has
text is the prompt; that message's ``image_url`` parts with ``data:`` URLs are the reference
images; the messages before it are the conversation so far: each user message with the
assistant's answer, its text and its images, whether in ``images`` as OpenRouter answers or
in ``content`` parts, sent upstream as the history of a multi-turn edit), ``modalities``,
``image_config`` (``aspect_ratio``, ``image_size``, and any other key as a model-specific
image option, passed on to OpenRouter as given), ``seed``, ``reasoning.effort`` (the thinking
level; ``xhigh`` and ``max`` mean ``high``, as OpenRouter maps them for Gemini; ``none`` is
refused: an image model cannot be told not to think here), the ``web`` plugin (Google Search
grounding: its ``native`` engine, the default for Google's models; another engine is refused),
``stream``, and our extension
``provider`` (``"openrouter"`` or ``"google"``; OpenRouter's own routing object is accepted and
ignored).  Everything else OpenAI and OpenRouter clients send (``temperature``, ``usage``,
``stream_options``...) is accepted and ignored.

Choices where OpenRouter's behaviour would not help an image client:
- ``modalities`` left out means ``["image", "text"]`` here (OpenRouter would answer text only);
  ``modalities`` without ``"image"`` is refused with OpenRouter's 404 "No endpoints found";
  ``"text"`` asked of an image-only model is not an error, the answer simply has no text.
- Image URLs that are not ``data:`` URLs are refused: the service never fetches a URL for a
  client (that would be a server-side request forgery).
- ``n`` other than 1 is refused: chat completions make one image (the Images API makes more).
- Control characters are dropped from the prompt rather than refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ...client import MAX_PROMPT_CHARS, MAX_SEED
from ...conversation import first_whole_turn
from ..generation import Exchange
from . import continuation
from .errors import Problem, ProblemError, bad_request

#: A string with at least one visible character (JSON Schema ``pattern``: a search).
VISIBLE = r"[^\s\x00-\x1f\x7f]"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: What ``messages`` must contain: a user message with some text (the prompt).
_USER_WITH_TEXT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "role": {"const": "user"},
        "content": {
            "anyOf": [
                {"type": "string", "pattern": VISIBLE},
                {
                    "type": "array",
                    "contains": {
                        "type": "object",
                        "properties": {
                            "type": {"const": "text"},
                            "text": {"type": "string", "pattern": VISIBLE},
                        },
                        "required": ["type", "text"],
                    },
                },
            ]
        },
    },
    "required": ["role", "content"],
}


class _Open(BaseModel):
    # Unknown fields are kept and ignored (clients send many); known ones are strict.
    model_config = ConfigDict(extra="allow", strict=True)


Text = Annotated[str, Field(max_length=MAX_PROMPT_CHARS)]


class TextPart(_Open):
    type: Literal["text"]
    text: Text


class ImageUrl(_Open):
    url: str = Field(description="A `data:image/...;base64,...` URL.")
    detail: str | None = None


class ImagePart(_Open):
    type: Literal["image_url"]
    image_url: ImageUrl | str


ContentPart = Annotated[TextPart | ImagePart, Field(discriminator="type")]


class Message(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Text | list[ContentPart] | None = None


#: Every ratio and size of the catalog (a test keeps them equal); which ones a request may use
#: depends on its model.
AspectRatio = Literal[
    "1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9",
    "1:4", "4:1", "1:8", "8:1",
]  # fmt: skip
ImageSize = Literal["0.5K", "1K", "2K", "4K"]


class ImageConfig(_Open):
    """Ratio and size, checked against the model; any other key is a model-specific image
    option (Recraft's `style`, Sourceful's `font_inputs`...), passed on to OpenRouter."""

    aspect_ratio: AspectRatio | None = Field(
        default=None, description="e.g. `16:9`; which ones depends on the model."
    )
    image_size: ImageSize | None = Field(
        default=None, description="`0.5K`, `1K`, `2K` or `4K`, as the model allows."
    )


class ChatRequest(_Open):
    """OpenRouter's chat-completions request, as far as image generation reads it."""

    model: str | None = Field(
        default=None,
        description="A catalog id, alias or OpenRouter id (`google/gemini-3.1-flash-image`); "
        "default: your saved default model.",
    )
    messages: list[Message] = Field(
        min_length=1,
        description="The prompt is the text of the last user message that has text.",
        json_schema_extra={"contains": _USER_WITH_TEXT},
    )
    modalities: list[Literal["text", "image", "audio"]] | None = Field(
        default=None, description='Default `["image", "text"]`; must include `image`.'
    )
    image_config: ImageConfig | None = None
    provider: Literal["openrouter", "google"] | dict[str, Any] | None = Field(
        default=None,
        description="Extension: `openrouter` or `google` picks the route; OpenRouter's routing "
        "object is accepted and ignored. Default: your default provider if it has a key.",
    )
    seed: int | None = Field(default=None, ge=0, le=MAX_SEED)
    reasoning: Reasoning | None = None
    plugins: list[Plugin] | None = Field(
        default=None,
        description='`[{"id": "web"}]` grounds the image in Google Search (Google\'s own '
        "search: the `native` engine); other plugins are accepted and ignored.",
    )
    stream: bool = False
    n: Annotated[int, Field(ge=1, le=1)] | None = Field(
        default=None, description="Only 1: one image per completion."
    )


class Reasoning(_Open):
    effort: Literal["max", "xhigh", "high", "medium", "low", "minimal", "none"] | None = Field(
        default=None,
        description="The thinking level: `minimal`, `low`, `medium` or `high` (`xhigh` and "
        "`max` mean `high`); `max_tokens`, `exclude` and `enabled` are accepted and ignored.",
    )


class Plugin(_Open):
    id: str
    engine: str | None = None


#: The efforts above Gemini's highest level, mapped down as OpenRouter maps them for Gemini;
#: the others are the thinking levels by name.
_ABOVE_HIGH = ("max", "xhigh")


@dataclass(frozen=True)
class ChatCall:
    """A chat request reduced to what a generation needs."""

    prompt: str
    #: Reference images, as ``data:`` URLs, in order.
    images: tuple[str, ...]
    model: str | None
    provider: str | None
    aspect_ratio: str | None
    image_size: str | None
    seed: int | None
    stream: bool
    thinking: str | None = None
    google_search: bool = False
    image_options: dict[str, Any] = field(default_factory=dict)
    #: The exchanges before the prompt, oldest first (multi-turn editing).
    history: tuple[Exchange, ...] = ()


def clean_text(text: str, field_name: str = "prompt") -> str:
    """A prompt as sent, or a 400 naming the character to remove: NUL and other control
    characters (tab, newline and carriage return are fine) and lone surrogates cannot be
    stored and mean nothing to a model.  The native API refuses them the same way."""
    bad = _CONTROL.search(text)
    if bad is not None:
        raise bad_request(
            f"The {field_name} contains the control character U+{ord(bad.group()):04X} at "
            f"position {bad.start() + 1}; remove it.",
            field_name,
        )
    if _has_surrogates(text):
        raise bad_request(
            f"The {field_name} is not valid Unicode (a lone surrogate); send it as UTF-8 text.",
            field_name,
        )
    return text


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _split(message: Message) -> tuple[str, list[str]]:
    content = message.content
    if content is None:
        return "", []
    if isinstance(content, str):
        return clean_text(content), []
    texts: list[str] = []
    urls: list[str] = []
    for part in content:
        if isinstance(part, TextPart):
            texts.append(clean_text(part.text))
        else:
            ref = part.image_url
            urls.append(ref if isinstance(ref, str) else ref.url)
    return "\n".join(t for t in texts if t.strip()), urls


def _prompt_message(messages: list[Message]) -> tuple[int, str, list[str]]:
    """The index, text and images of the last user message that has text."""
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.role == "user":
            text, urls = _split(message)
            if text.strip():
                return index, text, urls
    raise bad_request(
        "No user message with text: the last user message that has text is the image prompt.",
        "prompt",
    )


def _answer_images(message: Message) -> list[str]:
    """The images of an assistant message as OpenRouter answers them (``images``: a list of
    ``{"type": "image_url", "image_url": {"url": ...}}``, or of URLs), as clients send them
    back."""
    items = (message.model_extra or {}).get("images")
    urls: list[str] = []
    for item in items if isinstance(items, list) else ():
        ref = item.get("image_url") if isinstance(item, dict) else item
        url = ref.get("url") if isinstance(ref, dict) else ref
        if isinstance(url, str):
            urls.append(url)
    return urls


def _history(messages: list[Message]) -> tuple[Exchange, ...]:
    """The exchanges before the prompt message: each user message with the assistant message
    that answers it (system and tool messages are not part of an image conversation).  Images
    that are not ``data:`` URLs are left out (this service fetches no URL), and so are those of
    turns older than the history keeps."""
    Said = tuple[str, str, dict[str, Any]] | None
    turns: list[tuple[str, list[str], str, list[str], Said]] = []
    asked: tuple[str, list[str]] | None = None
    for message in messages:
        if message.role == "user":
            text, urls = _split(message)
            asked = (f"{asked[0]}\n{text}".strip(), asked[1] + urls) if asked else (text, urls)
        elif message.role == "assistant":
            text, urls = _split(message)
            prompt, refs = asked or ("", [])
            said = continuation.read((message.model_extra or {}).get("reasoning_details"))
            turns.append((prompt, refs, text, urls + _answer_images(message), said))
            asked = None
    if asked is not None:  # asked, never answered: a turn without an answer
        turns.append((asked[0], asked[1], "", [], None))
    whole = first_whole_turn(len(turns))
    out = []
    for i, (prompt, refs, text, drawn, said) in enumerate(turns):
        kept_refs = [u for u in refs if u.startswith("data:")] if i >= whole else []
        kept_drawn = [u for u in drawn if u.startswith("data:")] if i >= whole else []
        left = len(refs) + len(drawn) - len(kept_refs) - len(kept_drawn)
        provider, model, state = said or (None, None, None)
        out.append(
            Exchange(
                prompt, tuple(kept_refs), text, tuple(kept_drawn), left, provider, model, state
            )
        )
    return tuple(out)


def require_data_urls(urls: Sequence[str], name: Callable[[int], str]) -> None:
    """Refuse reference images that are not ``data:`` URLs (``name``: how the request calls
    the image at an index): the service never fetches a URL for a client (that would be a
    server-side request forgery)."""
    for index, url in enumerate(urls):
        if not url.startswith("data:"):
            raise ProblemError(
                Problem(
                    400,
                    "invalid_reference_image",
                    f"{name(index)} is not a data URL: send images as "
                    "data:image/png;base64,... (this service does not fetch URLs).",
                    field_name="images",
                )
            )


def parse_chat(req: ChatRequest) -> ChatCall:
    """The generation a chat request asks for (raises ``ProblemError`` when it cannot be one)."""
    if req.modalities is not None and "image" not in req.modalities:
        wanted = ", ".join(req.modalities) or "none"
        raise ProblemError(
            Problem(
                404,
                "unsupported_modalities",
                "No endpoints found that support the requested output modalities: "
                f'{wanted}. This service generates images: ask for ["image", "text"] or '
                '["image"].',
                field_name="modalities",
                details={"allowed": ["image", "text"]},
            )
        )
    index, prompt, urls = _prompt_message(req.messages)
    require_data_urls(urls, lambda i: f"Image {i + 1}")
    config = req.image_config or ImageConfig()
    provider = req.provider if isinstance(req.provider, str) else None
    effort = req.reasoning.effort if req.reasoning else None
    if effort == "none":
        raise bad_request(
            "reasoning.effort 'none' is not supported: image models here cannot be told not to "
            "think. Leave reasoning out, or name a level (minimal, low, medium, high).",
            "thinking",
        )
    web = next((p for p in req.plugins or () if p.id == "web"), None)
    if web is not None and web.engine not in (None, "native"):
        raise bad_request(
            f"The web plugin's engine {web.engine!r} is not offered here: images are grounded "
            "in Google Search only (engine native, or leave engine out).",
            "google_search",
        )
    return ChatCall(
        prompt=prompt,
        images=tuple(urls),
        model=req.model,
        provider=provider,
        aspect_ratio=config.aspect_ratio,
        image_size=config.image_size,
        seed=req.seed,
        stream=req.stream,
        thinking="high" if effort in _ABOVE_HIGH else effort,
        google_search=web is not None,
        image_options=dict(config.model_extra or {}),
        history=_history(req.messages[:index]),
    )

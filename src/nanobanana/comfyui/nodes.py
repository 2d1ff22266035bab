"""The ComfyUI nodes: **Nano Banana Generate** and **Nano Banana Edit**.

They follow ComfyUI's node protocol (``INPUT_TYPES``, ``RETURN_TYPES``, ``RETURN_NAMES``,
``FUNCTION``, ``CATEGORY``) and import torch only when they run, so ComfyUI lists them quickly.

No widget holds a secret: the key comes from the environment or the keys file, or the job runs on
the server a profile names.  Caching is ComfyUI's own, on the inputs: queueing the same inputs
again reuses the result (no new paid call), and a changed seed (ComfyUI's "control after
generate") makes a new call.  The nodes therefore define no ``IS_CHANGED``.
"""

from __future__ import annotations

import json
from typing import Any

from nanobanana.catalog import DEFAULT_MODEL, THINKING_LEVELS, Catalog, image_options_from
from nanobanana.providers import PROVIDERS
from nanobanana.request import GenerationRequest

from .backend import LOCAL, NodeSession, profile_choices, run_requests, run_turn

__all__ = ["NanoBananaEdit", "NanoBananaGenerate"]

CATEGORY = "Nano Banana"
AUTO = "auto"
#: The type of a conversation between Edit nodes (``backend.NodeSession``).
SESSION = "NANOBANANA_SESSION"
#: The library's largest seed; ComfyUI's seed widget goes to 2**64 - 1 and is folded into range.
MAX_SEED = 2**31 - 1
SIZES = (AUTO, "0.5K", "1K", "2K", "4K")
PROVIDER_CHOICES = (AUTO, *PROVIDERS)


def _models() -> list[str]:
    """The catalog's ids, then those of the models kept from the providers' listings (read
    from the cache: ComfyUI's start never waits for a listing call)."""
    catalog = Catalog()
    ids = sorted(
        (m.id for m in catalog),
        key=lambda i: (i != DEFAULT_MODEL, not i.startswith("gemini"), i),
    )
    listed = {m.id for m in _kept_models() if catalog.find(m.id) is None}
    return ids + sorted(listed)


def _kept_models() -> list[Any]:
    from nanobanana.discovery import ListingCache

    try:
        return ListingCache.default().every_model()
    except OSError:
        return []


def _ratios() -> list[str]:
    seen: list[str] = []
    for m in Catalog():
        seen.extend(r for r in m.aspect_ratios if r not in seen)
    return [AUTO, *seen]


def _common_inputs(default_ratio: str) -> dict[str, Any]:
    return {
        "model": (_models(), {"default": DEFAULT_MODEL, "tooltip": "Catalog model id."}),
        "aspect_ratio": (
            _ratios(),
            {
                "default": default_ratio,
                "tooltip": "auto: the model's default (1:1), or the input image's shape.",
            },
        ),
        "image_size": (list(SIZES), {"default": AUTO, "tooltip": "auto: the model's default."}),
        "seed": (
            "INT",
            {
                "default": 0,
                "min": 0,
                "max": 0xFFFFFFFFFFFFFFFF,
                "control_after_generate": True,
                "tooltip": "A new seed makes a new (paid) call; the same inputs reuse the "
                "cached result. Sent to models that accept a seed.",
            },
        ),
        "provider": (
            list(PROVIDER_CHOICES),
            {"default": AUTO, "tooltip": "auto: OpenRouter if it has a key, else Google."},
        ),
        "thinking": (
            [AUTO, *THINKING_LEVELS],
            {
                "default": AUTO,
                "tooltip": "How much the model thinks before it draws; auto: the model's "
                "default. A model that does not take the level refuses it before any call.",
            },
        ),
        "google_search": (
            "BOOLEAN",
            {
                "default": False,
                "tooltip": "Ground the image in Google Search results (Google's models).",
            },
        ),
        "image_options": (
            "STRING",
            {
                "default": "",
                "tooltip": "Model-specific image options as a JSON object, sent in "
                'OpenRouter\'s image_config: {"style": "Photorealism"} for Recraft, '
                "font_inputs for Sourceful. Empty: none.",
            },
        ),
        "server_profile": (
            profile_choices(),
            {
                "default": LOCAL,
                "tooltip": "Run on a nanobanana server (profiles.json) with the keys stored "
                "there, or locally with keys from the environment / keys file.",
            },
        ),
    }


def _validate_model(model: str) -> bool | str:
    """ComfyUI's check of the ``model`` input, in place of "value not in list": a workflow may
    name a model by an older id (``gemini-2.5-flash-image-preview``) or with an OpenRouter
    variant (``:free``); the generation maps it and warns.  An ``author/model`` id the catalog
    does not know is left to the generation, which looks it up in the providers' listings."""
    from nanobanana.errors import UnknownModelError

    if model in ("", AUTO) or "/" in model.strip("/"):
        return True
    try:
        Catalog().resolve(model)
    except UnknownModelError as exc:
        return exc.message
    return True


def _opt(value: str) -> str | None:
    return None if value in ("", AUTO) else value


def _encode(tensor: Any) -> list[bytes]:
    from nanobanana.imaging import MAX_REFERENCE_BYTES

    from .tensors import tensor_to_png_list

    return tensor_to_png_list(tensor, max_bytes=MAX_REFERENCE_BYTES)


def _request(prompt: str, refs: tuple[bytes, ...], n: int, **kw: Any) -> GenerationRequest:
    return GenerationRequest(
        prompt=prompt,
        model=_opt(kw["model"]),
        provider=_opt(kw["provider"]),
        aspect_ratio=_opt(kw["aspect_ratio"]),
        image_size=_opt(kw["image_size"]),
        n=n,
        negative_prompt=(kw.get("negative_prompt") or "").strip() or None,
        seed=int(kw["seed"]) % (MAX_SEED + 1),
        thinking=_opt(kw.get("thinking", AUTO)),
        google_search=bool(kw.get("google_search", False)),
        image_options=image_options_from(kw.get("image_options", "")),
        images=refs,
    )


class NanoBananaGenerate:
    """Prompt (+ optional reference images) -> an IMAGE batch, the model's text, and info."""

    DESCRIPTION = (
        "Generate images with Gemini (Nano Banana) or OpenRouter image models. Keys come from "
        "the environment, the keys file or a server profile, never from the workflow."
    )
    CATEGORY = CATEGORY
    FUNCTION = "generate"
    RETURN_TYPES = ("IMAGE", "STRING", "STRING")
    RETURN_NAMES = ("images", "text", "info")
    OUTPUT_TOOLTIPS = (
        "The images; different sizes are letterboxed to the first one's size.",
        "What the model said, if anything.",
        "Model, provider, cost, seed and warnings as JSON.",
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, dict[str, Any]]:
        common = _common_inputs(default_ratio="1:1")
        return {
            "required": {
                "prompt": ("STRING", {"multiline": True, "default": "", "tooltip": "The image."}),
                "model": common["model"],
                "aspect_ratio": common["aspect_ratio"],
                "image_size": common["image_size"],
                "seed": common["seed"],
                "num_images": ("INT", {"default": 1, "min": 1, "max": 10, "tooltip": "Images."}),
                "provider": common["provider"],
                "server_profile": common["server_profile"],
            },
            "optional": {
                "negative_prompt": (
                    "STRING",
                    {"multiline": True, "default": "", "tooltip": "What to avoid."},
                ),
                "images": ("IMAGE", {"tooltip": "Reference images (each image of the batch)."}),
                "thinking": common["thinking"],
                "google_search": common["google_search"],
                "image_options": common["image_options"],
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, model: str) -> bool | str:
        return _validate_model(model)

    def generate(
        self,
        prompt: str,
        num_images: int,
        server_profile: str,
        images: Any = None,
        **kw: Any,
    ) -> tuple[Any, str, str]:
        from .tensors import images_to_tensor

        refs = tuple(_encode(images)) if images is not None else ()
        request = _request(prompt, refs, int(num_images), **kw)
        [result] = run_requests([request], profile=server_profile)
        info = json.dumps(result.info, indent=2, ensure_ascii=False, default=str)
        return images_to_tensor(result.images), result.text, info


class NanoBananaEdit:
    """IMAGE + instruction -> the edited IMAGE (each image of the batch edited on its own); or,
    with a session, the next turn of a conversation (docs/comfyui.md)."""

    DESCRIPTION = (
        "Edit images with an instruction. Each image of the input batch is edited separately, "
        "with the optional references added to every call. Connect a session (from another "
        "Edit node) to continue that conversation instead: the model sees the turns before."
    )
    CATEGORY = CATEGORY
    FUNCTION = "edit"
    RETURN_TYPES = ("IMAGE", "STRING", "STRING", SESSION)
    RETURN_NAMES = ("images", "text", "info", "session")
    OUTPUT_TOOLTIPS = (
        "The edited images.",
        "What the model said, if anything.",
        "Model, provider, cost and warnings as JSON.",
        "The conversation so far, for the next Edit node (one image edited: it starts one).",
    )

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, dict[str, Any]]:
        common = _common_inputs(default_ratio=AUTO)
        return {
            "required": {
                "instruction": (
                    "STRING",
                    {"multiline": True, "default": "", "tooltip": "What to change."},
                ),
                "model": common["model"],
                "aspect_ratio": common["aspect_ratio"],
                "image_size": common["image_size"],
                "seed": common["seed"],
                "provider": common["provider"],
                "server_profile": common["server_profile"],
            },
            "optional": {
                "image": (
                    "IMAGE",
                    {"tooltip": "The image(s) to edit; with a session, added to the turn."},
                ),
                "session": (
                    SESSION,
                    {"tooltip": "Continue this conversation (an Edit node's session output)."},
                ),
                "references": ("IMAGE", {"tooltip": "Extra reference images for every edit."}),
                "thinking": common["thinking"],
                "google_search": common["google_search"],
                "image_options": common["image_options"],
            },
        }

    @classmethod
    def VALIDATE_INPUTS(cls, model: str) -> bool | str:
        return _validate_model(model)

    def edit(
        self,
        instruction: str,
        server_profile: str,
        image: Any = None,
        session: NodeSession | None = None,
        references: Any = None,
        **kw: Any,
    ) -> tuple[Any, str, str, NodeSession | None]:
        from nanobanana.errors import UsageError

        from .tensors import images_to_tensor

        extra = tuple(_encode(references)) if references is not None else ()
        edited = _encode(image) if image is not None else []
        if session is None and not edited:
            raise UsageError("Connect an image to edit, or a session to continue.")
        if session is not None or len(edited) == 1:
            # One turn: the conversation's next, or the first of a new one.
            request = _request(instruction, (*edited, *extra), 1, **kw)
            result, after = run_turn(request, profile=server_profile, session=session)
            info_text = json.dumps(result.info, indent=2, ensure_ascii=False, default=str)
            return images_to_tensor(result.images), result.text, info_text, after
        requests = [_request(instruction, (img, *extra), 1, **kw) for img in edited]
        results = run_requests(requests, profile=server_profile)
        images = [img for r in results for img in r.images]
        text = "\n".join(r.text for r in results if r.text)
        info: Any = {"edits": [r.info for r in results]}
        info_text = json.dumps(info, indent=2, ensure_ascii=False, default=str)
        # A conversation follows one image: a batch starts none.
        return images_to_tensor(images), text, info_text, None

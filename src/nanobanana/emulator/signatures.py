"""Thought signatures as Gemini 3 image models hand them out and check them (docs/providers.md).

A Gemini 3 image model signs the first text part of its answer and every image part
(``thoughtSignature``, opaque bytes). A later request that sends that model turn back must carry
each image part's signature unchanged, or the Gemini API answers ``400 INVALID_ARGUMENT`` "Image
part is missing a thought_signature in content position N, part position M."; a signature
that was altered, or made for another model, is "Corrupted thought signature.". The two
documented placeholders (``skip_thought_signature_validator``,
``context_engineering_is_the_way_to_go``) pass, as Google's Gemini 3 guide allows for model
turns that did not come from this model: as the JSON string itself (REST callers write it so)
or as the base64 of its bytes (the SDKs' ``thought_signature=b"..."``).

The emulator's signatures are HMACs over (model, response id, part index), so any process of it
can check one without remembering what it issued.
"""

from __future__ import annotations

import hashlib
import hmac

import pybase64

from .inputs import decode_base64

__all__ = ["PLACEHOLDERS", "family", "sign", "verify"]

PLACEHOLDERS = frozenset(
    {"skip_thought_signature_validator", "context_engineering_is_the_way_to_go"}
)
_KEY = b"nanobanana-emulator-thought-signature"
_MAC = 16


def family(model: str) -> str:
    """The model a signature is bound to: ``-preview`` and ``models/`` and an OpenRouter
    ``google/`` prefix do not make another model."""
    name = model.removeprefix("models/").removeprefix("google/")
    return name.removesuffix("-preview")


def sign(model: str, response_id: str, index: int) -> str:
    body = f"{family(model)}|{response_id}|{index}".encode()
    mac = hmac.new(_KEY, body, hashlib.sha256).digest()[:_MAC]
    return pybase64.b64encode(body + mac).decode("ascii")


def verify(signature: str, model: str) -> bool:
    """Whether ``signature`` is one the emulator issued for ``model`` (or a placeholder)."""
    if signature in PLACEHOLDERS:
        return True
    try:
        raw = decode_base64(signature)
    except ValueError:
        return False
    if raw.decode("latin-1") in PLACEHOLDERS:
        return True
    body, mac = raw[:-_MAC], raw[-_MAC:]
    if not body or not hmac.compare_digest(
        mac, hmac.new(_KEY, body, hashlib.sha256).digest()[:_MAC]
    ):
        return False
    return body.split(b"|", 1)[0] == family(model).encode()
